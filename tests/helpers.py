"""Helpers shared by the tests: paths, running the CLI, one-line errors, tiny MNIST-format data (never a download)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lightning.pytorch.callbacks import Callback

from dlbasics.runs import read_metrics  # noqa: F401  (tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
N_TRAIN, N_TEST, N_VAL = 200, 100, 50
MNIST_FILES = [f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
#: Where the official MNIST test split (``t10k-*-ubyte.gz``) may be: beside the checkout, or the shared data folder.
MNIST_TEST_DIRS = [ROOT.parent / "shared" / "data" / "mnist-test", Path("/work/shared/data/mnist-test")]


def mnist_test_dir() -> Path | None:
    """The folder holding ``t10k-images-idx3-ubyte.gz`` and its labels, or ``None``."""
    for folder in MNIST_TEST_DIRS:
        if (folder / "t10k-images-idx3-ubyte.gz").is_file() and (folder / "t10k-labels-idx1-ubyte.gz").is_file():
            return folder
    return None


def run_cli(root: Path, *args: str | Path) -> Path | None:
    """``dlbasics ARGS`` in-process inside ``root``; returns the newest run dir there.

    The ``cli`` fixture is this in the test's ``tmp_path``; module-scoped fixtures that train once call it directly.
    """
    from dlbasics.cli import main

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        main([str(a) for a in args])
    return latest_run(Path(root) / "lightning_logs")


def one_line_error(error_type: type[Exception], call, name: str) -> str:
    """``call()`` must raise ``error_type`` with a one-line message naming ``name``; returns the message."""
    with pytest.raises(error_type) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and name in message, message
    return message


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


#: What a plain run must never print (third-party tips, deprecations, warnings, Lightning's repeated notices).
NOISE = ("Tip", "deprecated", "Warning", "warn(", "Total FLOPs: 0", "dirpath has changed", "stopped", "not supported")


def quiet_console(cwd: Path, *args: str) -> str:
    """Run ``dlbasics *args`` with every warning shown; assert it succeeds without :data:`NOISE`; its console."""
    env = {**os.environ, "PYTHONWARNINGS": "default", "PYTHONUNBUFFERED": "1"}  # every warning shown, in order
    proc = subprocess.run([sys.executable, "-m", "dlbasics", *args], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]
    for noise in NOISE:
        assert noise not in proc.stdout, (noise, proc.stdout)
    return proc.stdout


def assert_in_order(console: str, markers: list[str]) -> None:
    positions = [console.index(marker) for marker in markers]
    assert positions == sorted(positions), console
