"""Shared test helpers: run the CLI the way users do, in a temporary directory, and read its outputs."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from dlbasics.runs import read_metrics  # noqa: F401  (tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

os.environ.setdefault("WANDB_MODE", "disabled")  # no test talks to a wandb server


def latest_run(root: Path = Path("lightning_logs")) -> Path | None:
    """The newest ``version_N`` directory under ``root`` (``None`` when loggers were off, e.g. fast_dev_run)."""
    runs = sorted(root.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    return runs[-1] if runs else None


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``cli("fit", "--config", ...)`` runs ``dlbasics`` in-process inside ``tmp_path``; returns the run dir."""
    from dlbasics.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Path | None:
        main([str(a) for a in args])
        return latest_run(tmp_path / "lightning_logs")

    return run


# --- tiny MNIST-format data (never a download) ---------------------------------------------------------------

N_TRAIN, N_TEST, N_VAL = 200, 100, 50
MNIST_FILES = [f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in the IDX format: magic 0 0 8 ndim, big-endian dims, data."""
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return bytes([0, 0, 8, array.ndim]) + dims + array.astype(np.uint8).tobytes()


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images with a bright bar at a row given by the label; pixels (0, 0) and (0, 1) hold the index."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    images = rng.integers(0, 80, (n, 28, 28))
    images[np.arange(n), 4 + 2 * labels, 4:24] = 255
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return images.astype(np.uint8), labels.astype(np.uint8)


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


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def fixture_data(idx: dict) -> list[str]:
    """Point any MNIST-family config at the generated files (never a download)."""
    return ["--data.root", str(idx["flat"]), "--data.download", "false", "--data.verify", "false",
            "--data.num_val", str(N_VAL)]  # fmt: skip
