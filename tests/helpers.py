"""Helpers shared by the tests: paths, the newest run directory, tiny MNIST-format data (never a download)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import Callback

from dlbasics.runs import read_metrics  # noqa: F401  (tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
N_TRAIN, N_TEST, N_VAL = 200, 100, 50
MNIST_FILES = [f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]


def latest_run(root: Path = Path("lightning_logs")) -> Path | None:
    """The newest ``version_N`` directory under ``root`` (``None`` when loggers were off, e.g. fast_dev_run)."""
    runs = sorted(root.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    return runs[-1] if runs else None


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


def fixture_data(idx: dict) -> list[str]:
    """Point any MNIST-family config at the generated files (never a download)."""
    return ["--data.root", str(idx["flat"]), "--data.download", "false", "--data.verify", "false",
            "--data.num_val", str(N_VAL)]  # fmt: skip


class HardExit(Callback):
    """Kill the process without any cleanup (``os._exit``) when epoch ``epoch`` starts: a deterministic crash.

    Used from a subprocess: ``--trainer.callbacks+=helpers.HardExit --trainer.callbacks.epoch 5`` with the
    tests folder on ``PYTHONPATH``. Epoch ``epoch - 1``'s checkpoint is on disk by then.
    """

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            os._exit(137)
