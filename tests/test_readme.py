"""README is true: every `dlbasics …` command it shows parses as written, the documented fish-book-on-Fashion-MNIST
command starts (it runs to the end in test_scratch_vs_mlp.py), the pictures it lists per config are the ones the
config's callbacks draw, `--help` lists `export`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from helpers import CONFIGS, ROOT

from dlbasics.data.idx import DEBIAN_FASHION_MNIST

README = (ROOT / "README.md").read_text()
FASHION = pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="apt-get install dataset-fashion-mnist")


def readme_commands() -> list[str]:
    """Every ``dlbasics fit|validate|test|predict|export …`` command in README: in code blocks and in backticks."""
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    lines = [ln.split("#")[0] for block in blocks for ln in block.replace("\\\n", " ").splitlines()]
    inline = re.findall(r"`(dlbasics (?:fit|validate|test|predict|export) [^`]*)`", README)
    found = [" ".join(c.split()) for c in [*lines, *inline]]
    commands = {c[c.index("dlbasics ") :] for c in found if re.search(r"dlbasics (fit|validate|test|predict|ex)", c)}
    return sorted(c for c in commands if not re.search(r"\bX\b|_N\b|<", c))  # placeholders: `--config X`


COMMANDS = readme_commands()


def test_readme_shows_the_commands_users_type():
    assert len(COMMANDS) >= 15
    assert "dlbasics fit --config mnist_mlp_fishbook --data.dataset fashion_mnist" in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_parses_as_written(command, monkeypatch, printed):
    monkeypatch.chdir(ROOT)  # `--config configs/…` paths are written for a checkout
    args = [a for a in shlex.split(command)[1:] if "<" not in a]
    assert yaml.safe_load(printed(*args, "--print_config"))["trainer"]


@FASHION
def test_the_fish_book_net_on_fashion_mnist_starts_as_documented(cli):
    cli("fit", "--config", "mnist_mlp_fishbook", "--data.dataset", "fashion_mnist", "--trainer.fast_dev_run", "2")


def drawn(config: str) -> set[str]:
    """The pictures a fit of ``config`` draws: its callbacks' pictures, for what its model has."""
    from dlbasics.callbacks import DEFAULTS

    loaded = yaml.safe_load((CONFIGS / f"{config}.yaml").read_text())
    callbacks = (loaded.get("trainer") or {}).get("callbacks")
    names = {c.__name__ for c, _ in DEFAULTS} if callbacks is None else {str(c).rsplit(".", 1)[-1] for c in callbacks}
    model = loaded["model"]["class_path"].rsplit(".", 1)[-1]
    pictures = {"learning_curves.png"} if "LearningCurves" in names else set()
    by_model = {"LinearRegression": {"fitted_curve.png"}, "RuleClassifier": {"test_confusion_matrix.png"},
                "MNISTMLP": {"test_confusion_matrix.png", "test_misclassified.png", "activation_histograms.png"},
                "MNISTCNN": {"test_confusion_matrix.png", "test_misclassified.png", "test_activations.png"},
                **{sine: {"forecast.png"} for sine in ("SineLSTM", "SineGRU", "SinePlainRNN")}}  # fmt: skip
    return pictures | by_model[model] if "LearningCurves" in names else pictures


def test_the_pictures_readme_lists_per_config_are_the_ones_drawn():
    table = README.split("The pictures each shipped config writes")[1].split("\n\n")[1]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    listed = {}
    for configs, pictures in rows:
        for config in re.findall(r"`(\w+)`", configs):
            listed[config] = set(re.findall(r"`(\w+\.png)`", pictures.split(":")[0]))
    shipped = {p.stem for p in CONFIGS.glob("*.yaml")}
    assert set(listed) == shipped
    for config in shipped:
        assert listed[config] == drawn(config), config


def test_help_lists_every_subcommand(printed):
    usage = printed("--help").splitlines()[0]
    assert "{fit,validate,test,predict,export}" in usage
