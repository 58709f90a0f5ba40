"""Shipped configs by name: ``--config mnist_cnn`` anywhere, a real file always winning, and what the wheel lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbasics.resources import config_dir, expand_config_args, experiment_names, resolve_config, shipped_configs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from an empty folder, as after ``pip install dlbasics``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_config_dir_is_the_checkouts_configs():
    assert config_dir() == ROOT / "configs"


def test_names():
    experiments = experiment_names()
    assert {"linear_regression", "rule_classifier", "mnist_cnn", "sine_lstm"} <= set(experiments)
    assert all("/" not in name for name in experiments)
    assert {"trainer/ddp", "trainer/bf16", "logger/wandb"} <= set(shipped_configs())
    assert shipped_configs()[: len(experiments)] == experiments  # experiments first, then the overlays


@pytest.mark.parametrize(
    ("value", "file"),
    [
        ("mnist_cnn", "mnist_cnn.yaml"),
        ("mnist_cnn.yaml", "mnist_cnn.yaml"),
        ("configs/mnist_cnn.yaml", "mnist_cnn.yaml"),
        ("trainer/ddp", "trainer/ddp.yaml"),
        ("trainer/ddp.yaml", "trainer/ddp.yaml"),
        ("logger/wandb", "logger/wandb.yaml"),
    ],
)
def test_shipped_names_resolve(elsewhere, value, file):
    assert resolve_config(value) == str(ROOT / "configs" / file)


@pytest.mark.parametrize("value", ["nope", "nope.yaml", "trainer/nope", "configs", "", "{trainer: {max_epochs: 1}}"])
def test_unknown_values_pass_through(elsewhere, value):
    assert resolve_config(value) == value


def test_existing_file_wins(elsewhere):
    for local in ("mnist_cnn.yaml", "mnist_cnn", "trainer/ddp.yaml"):
        (elsewhere / local).parent.mkdir(exist_ok=True)
        (elsewhere / local).write_text("trainer: {max_epochs: 1}\n")
        assert resolve_config(local) == local


def test_checkout_paths_stay_as_given(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert resolve_config("configs/mnist_cnn.yaml") == "configs/mnist_cnn.yaml"


def test_expand_config_args(elsewhere):
    shipped = ROOT / "configs"
    argv = ["fit", "--config", "rule_classifier", "--config=trainer/bf16", "--print_config", "--model.lr", "mnist_cnn"]
    assert expand_config_args(argv) == [
        "fit", "--config", str(shipped / "rule_classifier.yaml"), f"--config={shipped / 'trainer/bf16.yaml'}",
        "--print_config", "--model.lr", "mnist_cnn",
    ]  # fmt: skip
    assert expand_config_args(["fit", "--config", "nope"]) == ["fit", "--config", "nope"]
    assert expand_config_args(["fit", "--config"]) == ["fit", "--config"]  # LightningCLI reports the missing value


def test_cli_takes_a_bare_name(cli):
    cli("fit", "--config", "rule_classifier", "--trainer.fast_dev_run", "true")


def test_pyproject_lists_every_package_and_overlay_folder():
    """``packages`` is explicit (``configs/`` is mapped into the package): a new folder must be listed there."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    code = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dlbasics").rglob("__init__.py")}
    configs = {".".join(("dlbasics", *p.relative_to(ROOT).parts)) for p in (ROOT / "configs").rglob("*") if p.is_dir()}
    assert code | configs | {"dlbasics.configs"} == listed
