"""``dlbasics sweep`` on tiny synthetic experiments: grids shared by workers and processes, best.yaml, pruning,
reruns, Ctrl-C, and every bad input as one line before any trial."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import CONFIGS, read_metrics
from lightning.pytorch.callbacks import Callback

from dlbasics.cli import main
from dlbasics.sweep import main as sweep_main

optuna = pytest.importorskip("optuna")
LINEAR = str(CONFIGS / "linear_regression.yaml")
FAST = ["--data.init_args.num_train", "200", "--data.init_args.num_val", "100", "--data.init_args.num_test", "100",
        "--trainer.max_epochs", "3"]  # fmt: skip
LR = "model.init_args.optimizer.init_args.lr"
GRID = f"metric: val/loss\ndirection: minimize\nsampler: grid\nparams:\n  {LR}: [0.01, 0.03]\n"


class CtrlC(Callback):
    """Send this process SIGINT (a real Ctrl-C) when epoch 1 starts, once: while ``flag`` exists."""

    def __init__(self, flag: str = "") -> None:
        self.flag = Path(flag)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1 and self.flag.is_file():
            self.flag.unlink()
            os.kill(os.getpid(), signal.SIGINT)


def sweep(tmp_path: Path, study: str, *args: str) -> int:
    """Run ``dlbasics sweep`` in-process on ``study`` (YAML text) in ``tmp_path``; its exit status."""
    (tmp_path / "study.yaml").write_text(study)
    with pytest.raises(SystemExit) as stop:
        sweep_main(["--config", LINEAR, "--study", "study.yaml", *FAST, *args])
    return stop.value.code


def rows(tmp_path: Path, name: str = "linear_regression-study") -> list[dict[str, str]]:
    with open(tmp_path / "lightning_logs" / "sweeps" / name / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def versions(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "lightning_logs").glob("version_*"))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_grid_with_two_workers_runs_each_point_once(tmp_path, capsys):
    study = GRID + "  data.init_args.batch_size: [10, 20]\n"
    assert sweep(tmp_path, study, "--workers", "2") == 0
    trials = rows(tmp_path)
    points = {(t[LR], t["data.init_args.batch_size"]) for t in trials}
    assert len(trials) == 4 and len(points) == 4 and all(t["state"] == "COMPLETE" for t in trials)
    assert len({t["run_dir"] for t in trials}) == 4 and versions(tmp_path) == [f"version_{i}" for i in range(4)]
    run = Path(trials[0]["run_dir"])
    assert {"config.yaml", "metrics.csv", "console.log", "checkpoints"} <= {p.name for p in run.iterdir()}
    callbacks = yaml.safe_load((run / "config.yaml").read_text())["trainer"]["callbacks"]
    assert callbacks[-1]["init_args"]["trial"] == 0 and callbacks[-1]["init_args"]["sweep"] == "linear_regression-study"
    assert yaml.safe_load((run / "hparams.yaml").read_text())["sweep_trial"] == 0
    out = capsys.readouterr().out
    assert "trial 0   lr=0.01  batch_size=10  val/loss" in out and "Seed set" not in out  # fits talk to console.log


def test_two_processes_share_one_storage(tmp_path):
    (tmp_path / "store").mkdir()
    study = GRID.replace("[0.01, 0.03]", "[0.01, 0.02, 0.03]") + "  data.init_args.batch_size: [10, 20]\n"
    (tmp_path / "study.yaml").write_text(study)
    command = [str(Path(sys.executable).with_name("dlbasics")), "sweep", "--config", LINEAR, "--study", "study.yaml",
               *FAST, "--name", "shared", "--storage", str(tmp_path / "store" / "journal.log")]  # fmt: skip
    procs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    journal = optuna.storages.journal.JournalFileBackend(str(tmp_path / "store" / "journal.log"))
    storage = optuna.storages.JournalStorage(journal)
    trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    points = [tuple(t.params.values()) for t in trials]
    assert len(trials) == 6 and len(set(points)) == 6 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["run_dir"] for t in trials}) == 6 and len(versions(tmp_path)) == 6


def test_best_yaml_reproduces_the_best_trial_a_failure_goes_on_and_a_rerun_starts_nothing(tmp_path, capsys):
    assert sweep(tmp_path, GRID.replace("[0.01, 0.03]", "[1000000.0, 0.01, 0.03]")) == 0
    trials = rows(tmp_path)
    assert [t["state"] for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert "training loss became inf" in trials[0]["reason"]
    out = capsys.readouterr().out
    assert "trial 0   lr=1e+06    FAIL (training loss became" in out
    assert "best: trial 2, val/loss" in out and "state     val/loss" in out
    best = tmp_path / "lightning_logs" / "sweeps" / "linear_regression-study" / "best.yaml"
    assert f"reproduce: dlbasics fit --config {best.relative_to(tmp_path)}" in out
    assert {"comparison.png", "best.yaml", "trials.csv"} <= {p.name for p in best.parent.iterdir()}
    main(["fit", "--config", str(best)])
    again = max(tmp_path.glob("lightning_logs/version_*"), key=lambda p: int(p.name[8:]))
    assert read_metrics(again)["val/loss"] == read_metrics(trials[2]["run_dir"])["val/loss"]
    assert min(read_metrics(again)["val/loss"]) == float(trials[2]["value"])
    before = versions(tmp_path)
    assert sweep(tmp_path, GRID.replace("[0.01, 0.03]", "[1000000.0, 0.01, 0.03]")) == 0  # a finished grid
    assert versions(tmp_path) == before and len(rows(tmp_path)) == 3


def test_a_trial_refused_before_training_says_why_and_leaves_no_run(tmp_path, capsys):
    assert sweep(tmp_path, GRID.replace("[0.01, 0.03]", "[-1.0, 0.03]")) == 0
    trials = rows(tmp_path)
    assert [t["state"] for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[0]["reason"].startswith("model.optimizer: Invalid learning rate: -1.0") and trials[0]["run_dir"] == ""
    assert versions(tmp_path) == ["version_0"] and trials[1]["run_dir"] == str(Path("lightning_logs", "version_0"))
    assert not list(tmp_path.glob("lightning_logs/sweeps/*/.trial_*")), "a trial's console was left behind"
    assert "trial 0   lr=-1    FAIL (model.optimizer: Invalid learning rate" in capsys.readouterr().out


def test_median_pruner_prunes_a_diverging_learning_rate(tmp_path):
    study = GRID.replace("[0.01, 0.03]", "[0.03, 0.05, 1.2]") + "pruner: {name: median, startup_trials: 2}\n"
    assert sweep(tmp_path, study, "--trainer.max_epochs", "4") == 0
    trials = rows(tmp_path)
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"], trials
    assert "pruned at epoch 0" in trials[2]["reason"]
    assert len(read_metrics(trials[2]["run_dir"])["val/loss"]) == 1  # stopped after its first validation


def test_ctrl_c_stops_the_sweep_and_a_rerun_continues(tmp_path):
    flag = tmp_path / "ctrl-c"
    flag.touch()
    args = ["--trainer.callbacks+=test_sweep.CtrlC", "--trainer.callbacks.init_args.flag", str(flag)]
    assert sweep(tmp_path, GRID, *args) == 130
    assert [(t["state"], t["reason"][:11]) for t in rows(tmp_path)] == [("FAIL", "interrupted")]
    assert sweep(tmp_path, GRID, *args) == 0
    trials = rows(tmp_path)
    assert [t["state"] for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert sorted(t[LR] for t in trials[1:]) == ["0.01", "0.03"]  # the interrupted point ran again, once


BAD = [
    (GRID.replace(LR, "model.init_args.nosuch"), [], "param model.init_args.nosuch = 0.01: model: Option 'nosuch'"),
    (GRID.replace("0.03", "fast"), [], f"study param {LR} = fast: model.optimizer.lr: Expected a <class 'float'>"),
    ("metric: val/loss\ndirection: minimize\nsampler: grid\nparams: {}\n", [], "params must map settings"),
    (GRID + "  data.init_args.batch_size: {low: 1}\n", [], "give a list of values or a range"),
    (GRID + "  data.init_args.batch_size: {low: 20, high: 10}\n", [], "a range needs low < high"),
    (GRID + "  data.init_args.batch_size: []\n", [], "an empty list"),
    (GRID.replace("grid", "bayes"), [], "sampler must be grid, tpe or random, got 'bayes'"),
    (GRID + "pruner: hyperband\n", [], "pruner must be none or median"),
    (GRID.replace("minimize", "down"), [], "direction must be maximize or minimize, got 'down'"),
    (GRID + "metrics: [val/acc]\n", [], "unknown key(s) metrics"),
    ("metric: [a\n", [], "not valid YAML"),
    (GRID.replace("grid", "tpe"), [], "sampler tpe needs `trials:`"),
    (GRID.replace("[0.01, 0.03]", "{low: 0.01, high: 0.1, log: true}"), [], "a grid needs a list or a range with"),
    (GRID, ["--trainer.max_epochs", "ten"], "trainer.max_epochs: Expected a <class 'int'>"),
    (GRID, ["--storage", "sqlite:////nonexistent/folder/s.db"], "storage 'sqlite:////nonexistent/folder/s.db' cannot"),
    (GRID, ["--storage", "/nonexistent/folder/journal.log"], "folder /nonexistent/folder does not exist"),
    (GRID, ["--workers", "0"], "--trials and --workers must be >= 1"),
    (GRID, ["--name", "../up"], "--name '../up'"),
]  # fmt: skip


@pytest.mark.parametrize(("study", "args", "message"), BAD)
def test_bad_input_is_one_line_before_any_trial(tmp_path, capsys, study, args, message):
    assert sweep(tmp_path, study, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlbasics: error: ") and message in err[0], err
    assert not (tmp_path / "lightning_logs").exists() or not any((tmp_path / "lightning_logs").iterdir())


def test_unknown_study_and_a_metric_no_run_logs(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        sweep_main(["--config", LINEAR, "--study", "nope"])
    assert stop.value.code == 2 and "study 'nope' not found: give a file or a shipped study (activations, init" in (
        capsys.readouterr().err
    )
    assert sweep(tmp_path, GRID.replace("val/loss", "val/acc")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlbasics: error: metric 'val/acc' is not logged by these runs; they")
    assert "train/loss" in err[0] and "val/loss" in err[0]
    assert not (tmp_path / "lightning_logs").exists()  # no sweep folder, no version_N


def test_without_optuna_one_line_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(SystemExit) as stop:
        sweep_main(["--config", LINEAR, "--study", "optimizers"])
    assert stop.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "dlbasics: error: dlbasics sweep needs Optuna: pip install 'dlbasics[sweep]' (or: pip install optuna "
        "optuna-integration)"
    ]


def test_help_explains_the_study(capsys):
    with pytest.raises(SystemExit) as stop:
        sweep_main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    assert all(word in out for word in ("metric:", "direction:", "sampler:", "pruner:", "params:", "optuna-dashboard"))


@pytest.mark.parametrize("name", ["optimizers", "init", "activations", "recurrent", "lr"])
def test_shipped_studies_check_against_the_experiment_they_name(name):
    from dlbasics.sweep import parse, prepare

    path = CONFIGS / "studies" / f"{name}.yaml"
    command = next(line for line in path.read_text().splitlines() if "dlbasics sweep --config" in line)
    args, fit_args = parse(command.split("dlbasics sweep ", 1)[1].split())
    plan = prepare(args, fit_args)  # the study and each of its values through the CLI's parser: nothing runs
    assert plan.trials == {"optimizers": 5, "init": 6, "activations": 4, "recurrent": 3, "lr": 12}[name]


def test_plain_rnn_leaky_relu_xavier_and_hidden_activations():
    from dlbasics import plots
    from dlbasics.models import MNISTMLP, SinePlainRNN

    rnn = SinePlainRNN(n_steps=30)
    assert isinstance(rnn.rnn, torch.nn.RNN) and rnn.rnn.nonlinearity == "tanh"
    assert rnn(torch.zeros(4, 30, 1)).shape == (4, 1)
    mlp = MNISTMLP(hidden_sizes=[400, 400], activation="leaky_relu", init="xavier")
    assert float(mlp.net[3].weight.detach().std()) == pytest.approx((2 / 800) ** 0.5, rel=0.05)  # Glorot: gain 1
    found = mlp.hidden_activations(torch.rand(8, 1, 28, 28))
    assert [tuple(a.shape) for a in found] == [(8, 400), (8, 400)] and (found[0] < 0).any()
    fig = plots.activation_histograms_figure({"start": found, "end": found}, (-0.1, 2.0), "t")
    assert len(fig.axes) == 4


def test_trials_on_the_command_line_are_a_searchs_budget(tmp_path):
    search = GRID.replace("grid", "tpe").replace("[0.01, 0.03]", "{low: 0.01, high: 0.1, log: true}")
    assert sweep(tmp_path, search, "--trials", "2") == 0  # the study file names no `trials:`
    assert [t["state"] for t in rows(tmp_path)] == ["COMPLETE", "COMPLETE"]
