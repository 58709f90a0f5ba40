"""Hostile and careless input (issue 20): bounded configs and files, atomic writes, no trace of a refused run, Ctrl-C.

Every probe here failed on the landed main before the trust-boundary work: a YAML bomb grew memory until killed,
1e39 became inf predictions, a folder was "does not exist", a huge PNG took gigabytes, a full disk left half a
last.ckpt, refused predict/test runs left version_N, Ctrl-C during the imports printed a traceback.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CONFIGS, N_VAL, fixture_data
from PIL import Image

from dlbasics.checkpoints import AtomicCheckpointIO
from dlbasics.data import MNISTDataModule
from dlbasics.runs import atomic_write

RULE = CONFIGS / "rule_classifier.yaml"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)
DLBASICS = [sys.executable, "-m", "dlbasics"]


def test_a_yaml_bomb_is_refused_before_it_is_expanded(refused, tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB)  # nine levels of nine aliases: 9**9 values for the parser
    line = refused("fit", "--config", tmp_path / "bomb.yaml")
    assert "bomb.yaml expands to more than 100,000 values through YAML aliases (a YAML bomb?)" in line
    inline = "{" + BOMB.strip().replace("\n", ", ") + "}"  # the same bomb as one command-line value
    line = refused("fit", "--config", RULE, "--model.init_args.optimizer", inline)
    assert "a YAML value expands to more than" in line
    (tmp_path / "big.yaml").write_text("# " + "x" * (2 << 20))
    assert "is larger than 1 MiB" in refused("fit", "--config", tmp_path / "big.yaml")


def test_a_yaml_bomb_in_a_fresh_process_ends_at_once(tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    proc = subprocess.run([*DLBASICS, "fit", "--config", "bomb.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)  # before: memory grew ~40 MB/s with no output until killed  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "YAML bomb" in proc.stderr


@pytest.mark.parametrize(
    ("config", "text", "message"),
    [
        (RULE, "1e39,1,1,1,1\n", "row 1 holds 1e39, beyond float32's range"),
        (CONFIGS / "sine_lstm.yaml", "value\n" + "0.5\n" * 19 + "-4e38\n", "row 21 holds -4e38, beyond float32's"),
    ],
)
def test_values_beyond_float32_are_refused(refused, tmp_path, config, text, message):
    (tmp_path / "rows.csv").write_text(text)
    assert message in refused("predict", "--config", config, "--data.predict_path", tmp_path / "rows.csv")


def test_a_folder_where_a_file_belongs_is_named_a_folder(refused, tmp_path):
    (tmp_path / "rows").mkdir()
    line = refused("predict", "--config", RULE, "--data.predict_path", tmp_path / "rows")
    assert f"predict_path '{tmp_path / 'rows'}' is a folder: pass a CSV file" in line
    line = refused("test", "--config", RULE, "--ckpt_path", "rows")
    assert "checkpoint 'rows' is a folder: pass a .ckpt file" in line


def test_a_huge_image_is_refused_unread_and_quietly(refused, tmp_path, idx, recwarn):
    Image.new("1", (12000, 12000)).save(tmp_path / "huge.png")  # 144 megapixels, a few kB on disk
    warnings.simplefilter("always")
    line = refused("predict", "--config", CONFIGS / "mnist_mlp.yaml", *fixture_data(idx), "--data.predict_path",
                   tmp_path / "huge.png")  # fmt: skip
    assert "huge.png is 12000x12000 pixels, over the 64 MP this reads: shrink it first" in line
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_refused_predict_and_test_runs_leave_no_run_directory(cli, refused, tmp_path):
    ckpt = cli("fit", "--config", RULE, "--trainer.max_epochs", "1", "--data.num_train", "320") / "checkpoints"
    (tmp_path / "bad.csv").write_text("1,2,3\n")
    sine = cli("fit", "--config", CONFIGS / "sine_lstm.yaml", "--trainer.max_epochs", "1") / "checkpoints"
    for args in (  # each failed on the landed main after its run directory had been made
        ["predict", "--config", RULE, "--ckpt_path", ckpt / "last.ckpt", "--data.predict_path", "bad.csv"],
        ["predict", "--config", RULE, "--ckpt_path", sine / "last.ckpt"],
        ["test", "--config", RULE, "--ckpt_path", "http://127.0.0.1:9/last.ckpt"],
        ["validate", "--config", RULE, "--ckpt_path", sine / "last.ckpt"],
        ["export", "--config", RULE, "--ckpt_path", sine / "last.ckpt"],
    ):
        refused(*args)


def test_an_optimizer_refusing_its_settings_leaves_nothing(refused, tmp_path):
    line = refused("fit", "--config", RULE, "--model.init_args.optimizer.init_args.lr", "-1")
    assert "model.optimizer: Invalid learning rate: -1.0" in line and not (tmp_path / "lightning_logs").exists()


def test_a_full_disk_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 0}, path)
    good = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 1}, path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "predictions.csv") as tmp:
        tmp.write_text("index,class\n0,")
        raise RuntimeError("interrupted half way")
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no half predictions.csv, no temporary file


@pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux", reason="mounting a small tmpfs needs root")
def test_a_fit_on_a_really_full_disk_keeps_a_readable_last_checkpoint(tmp_path, idx):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("tmpfs cannot be mounted here")
    try:  # MLP 784-512-256 with Adam: a 6.4 MB checkpoint; the second copy does not fit beside the first
        args = ["fit", "--config", CONFIGS / "mnist_mlp.yaml", *fixture_data(idx), "--trainer.max_epochs", "3",
                "--trainer.logger", "false", "--trainer.default_root_dir", disk,
                "--test_after_fit", "false"]  # fmt: skip
        proc = subprocess.run([*DLBASICS, *map(str, args)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        error = proc.stderr.splitlines()[-1]
        assert proc.returncode == 1 and "the previous checkpoint is kept" in error, proc.stderr[-2000:]
        assert "could not write" in error and "MiB free on its disk" in error
        (last,) = disk.glob("**/last.ckpt")
        assert torch.load(last, weights_only=True)["epoch"] == 0 and not list(disk.glob("**/.*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch):
    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error no network>\n")

    monkeypatch.setattr("torchvision.datasets.MNIST.download", offline)
    data = MNISTDataModule(root=str(tmp_path / "data"), download=True, num_val=N_VAL)
    with pytest.raises(RuntimeError, match="could not download mnist"):
        data.read("train")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_imports_exits_quietly(tmp_path, signum, status):
    proc = subprocess.Popen([*DLBASICS, "fit", "--config", RULE], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.5)  # torch and Lightning take seconds to import
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status and len((out + err).strip().splitlines()) <= 1, out + err
    assert not (tmp_path / "lightning_logs").exists()


def test_npy_images_beyond_float32_or_uint8_are_refused(tmp_path):
    from dlbasics.use.files import load_images

    np.save(tmp_path / "f64.npy", np.full((2, 28, 28), 1e300))
    with pytest.raises(ValueError, match=r"holds values in \[1e\+300, 1e\+300\]"):
        load_images(tmp_path / "f64.npy")
