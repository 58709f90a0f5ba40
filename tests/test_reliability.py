"""Reliability: exact resume after SIGKILL, the NaN guard, and `--ckpt_path last|best` resolution."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import CONFIGS, read_metrics

from dlbasics.cli import main
from dlbasics.models import LinearRegression

RULE = CONFIGS / "rule_classifier.yaml"
EPOCHS = 12
SHORT = ["--trainer.max_epochs", str(EPOCHS), "--data.num_train", "2000", "--trainer.enable_progress_bar", "false"]
DLBASICS = [sys.executable, "-m", "dlbasics"]


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(Path(__file__).parent)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The run never killed, as a process of its own: what every resumed run must end at."""
    root = tmp_path_factory.mktemp("uninterrupted")
    full = subprocess.run([*DLBASICS, "fit", "--config", RULE, *SHORT], cwd=root, env=ENV, capture_output=True)
    assert full.returncode == 0, full.stderr[-2000:]
    return root / "lightning_logs/version_0"


@pytest.mark.parametrize("killed_in", [3, EPOCHS - 1])
def test_resume_after_a_hard_crash_matches_uninterrupted_run(tmp_path, uninterrupted, killed_in):
    crash = ["--trainer.callbacks+=helpers.HardExit", "--trainer.callbacks.epoch", str(killed_in)]
    victim = subprocess.run([*DLBASICS, "fit", "--config", RULE, *SHORT, *crash], cwd=tmp_path, env=ENV)
    assert victim.returncode == 137, "the crash callback did not fire"
    last = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == killed_in - 1

    resumed = subprocess.run([*DLBASICS, "fit", "--config", RULE, *SHORT, "--ckpt_path", "last"], cwd=tmp_path,
                             env=ENV, capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    runs = tmp_path / "lightning_logs"
    assert (runs / "version_1").is_dir()  # the resumed run never overwrites the killed one
    a, b = weights(uninterrupted / "checkpoints/last.ckpt"), weights(runs / "version_1/checkpoints/last.ckpt")
    assert a.keys() == b.keys() and a
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    full_metrics, resumed_metrics = read_metrics(uninterrupted), read_metrics(runs / "version_1")
    for key in ("val/loss", "val/acc", "train/loss"):
        assert resumed_metrics[key][-1] == pytest.approx(full_metrics[key][-1], abs=1e-6), key


class DivergingRegression(LinearRegression):
    """Test double: a loss that turns NaN in the second epoch."""

    def compute_loss(self, output, target):
        loss = super().compute_loss(output, target)
        return loss * float("nan") if self.current_epoch == 1 else loss


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "linear_regression.yaml"),
              "--model", "test_reliability.DivergingRegression"])  # fmt: skip
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "training loss became nan at epoch 1, step 101" in err and "last.ckpt" in err, err
    ckpt = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_huge_learning_rate_diverges_with_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "linear_regression.yaml"), "--model.optimizer.init_args.lr", "1e9"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "training loss became" in err and "at epoch 0, step" in err and "lower the learning rate" in err


def test_ckpt_path_last_and_best_resolve_across_runs(cli, refused):
    line = refused("test", "--config", RULE, "--ckpt_path", "last")
    assert "no last.ckpt of a dlbasics.models.RuleClassifier run" in line
    fast = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5")
    run = cli("fit", "--config", RULE, *fast)
    resumed = cli("fit", "--config", RULE, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "5",
                  "--ckpt_path", "last")  # fmt: skip
    assert resumed != run
    assert torch.load(resumed / "checkpoints/last.ckpt", weights_only=True)["epoch"] == 1
    tested = cli("test", "--config", RULE, "--ckpt_path", "best")
    assert "test/acc" in read_metrics(tested)
    line = refused("test", "--config", CONFIGS / "linear_regression.yaml", "--ckpt_path", "last")
    assert "no last.ckpt of a dlbasics.models.LinearRegression run" in line  # never another experiment's checkpoint


def test_wrongly_shaped_input_to_model_is_one_line():
    from dlbasics.models import MNISTCNN, MNISTMLP, RuleClassifier, SineLSTM

    for model, bad in ((RuleClassifier(), torch.zeros(3, 4)), (LinearRegression(), torch.zeros(3)),
                       (MNISTMLP(), torch.zeros(2, 3, 28, 28)), (MNISTCNN(), torch.zeros(2, 784)),
                       (SineLSTM(), torch.zeros(2, 20))):  # fmt: skip
        with pytest.raises(ValueError, match="expects") as info:
            model(bad)
        assert "\n" not in str(info.value)
