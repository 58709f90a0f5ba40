"""Fixtures: run the CLI the way users do, in a temporary directory; tiny MNIST-format data files."""

from __future__ import annotations

import gzip
import os
from functools import partial

import pytest
import torch
from helpers import MNIST_FILES, N_TEST, N_TRAIN, idx_bytes, make_split, run_cli

os.environ.setdefault("WANDB_MODE", "disabled")  # no test talks to a wandb server


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``cli("fit", "--config", ...)`` runs ``dlbasics`` in-process inside ``tmp_path``; returns the run dir."""
    monkeypatch.chdir(tmp_path)
    return partial(run_cli, tmp_path)


@pytest.fixture
def refused(tmp_path, monkeypatch, capsys):
    """``refused("test", "--config", ...)``: ``dlbasics`` must stop with one error line, exit status 1 (2 for a bad
    command line), no traceback and no new ``version_N``; returns that line.

    The line is all the command printed: nothing else on stderr, nothing on stdout.
    """
    from dlbasics.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLBASICS_DEBUG", raising=False)

    def run(*args: str, code: int = 1) -> str:
        before = sorted(tmp_path.glob("**/version_*"))
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        errors = [line for line in err.splitlines() if line.startswith("dlbasics: error:")]
        assert exit_info.value.code == code and len(errors) == 1 and "Traceback" not in err, err[-2000:]
        assert err == errors[0] + "\n" and out == "", f"more than the error line: {out[-1000:]}{err[-1000:]}"
        assert sorted(tmp_path.glob("**/version_*")) == before, "a refused run left a run directory"
        return errors[0]

    return run


@pytest.fixture
def printed(capsys):
    """``printed("fit", "--print_config")``: ``dlbasics`` must print and exit with status 0 (``--help``, ``--version``,
    ``--print_config``); returns its stdout. Runs in the current folder."""
    from dlbasics.cli import main

    def run(*args: str) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert exit_info.value.code == 0, err[-2000:]
        return out

    return run


@pytest.fixture(scope="module")
def idx(tmp_path_factory) -> dict:
    """The same tiny data set flat (four .gz files) and in torchvision's layout (uncompressed, both classes)."""
    root = tmp_path_factory.mktemp("idx")
    arrays = {"train": make_split(N_TRAIN, 0), "t10k": make_split(N_TEST, 1)}
    folders = [root / "flat", root / "tv" / "MNIST" / "raw", root / "tv" / "FashionMNIST" / "raw"]
    for folder in folders:
        folder.mkdir(parents=True)
    for name in MNIST_FILES:
        data = idx_bytes(arrays[name.split("-")[0]][0 if "images" in name else 1])
        (folders[0] / f"{name}.gz").write_bytes(gzip.compress(data))
        for folder in folders[1:]:
            (folder / name).write_bytes(data)
    return {"flat": root / "flat", "tv": root / "tv", "arrays": arrays}


def pytest_collection_modifyitems(config, items):
    """Long runs (``slow``: real data, DDP) run in CI (``CI=true``) or when a ``-m`` expression asks for them;
    a plain local ``pytest`` skips them, saying so, and stays under ~8 minutes on 2 cores."""
    if os.environ.get("CI", "").lower() in ("1", "true") or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow (real data or DDP): CI=true pytest, or pytest -m slow, runs it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models (RNNs, small MLPs): intra-op threads only add synchronization (10x slower on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
