"""One trial of a sweep: an ordinary ``dlbasics fit`` run, in this process, with its own ``version_N``.

    dlbasics sweep --config rule_classifier --study my_study.yaml     # runs trials through this module

A trial is ``dlbasics.cli.main(["fit", "--config", EXPERIMENT, ..., "--<key>", "<value>", ...])``: its own
``lightning_logs/version_N/`` with ``config.yaml``, checkpoints, ``metrics.csv`` and pictures, plus
``console.log`` (everything the fit printed, which the sweep's console leaves out). The ``version_N`` is claimed
with ``os.mkdir`` (atomic: of several processes exactly one creates a folder) and handed to the CSV and
TensorBoard loggers, so concurrent trials never share one. :class:`SweepTrial`, appended to the run's callbacks,
records the sweep, trial number and parameters in ``config.yaml`` and the loggers' hyperparameters and prunes
through Optuna's own ``PyTorchLightningPruningCallback``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback

from dlbasics.launch import exit_status
from dlbasics.runs import read_metrics
from dlbasics.sweep.study import Study, cli_value, exact

ERROR_PREFIX = "dlbasics: error: "


@dataclass
class Plan:
    """Everything a process needs to run a sweep's trials (picklable: worker processes get a copy)."""

    name: str
    sweep_dir: Path
    storage: str
    study: Study
    fit_args: list[str]
    loggers: list[dict[str, Any]]
    log_root: Path
    trials: int
    workers: int = 1


@dataclass
class Outcome:
    """How a trial ended: ``COMPLETE``, ``PRUNED``, ``FAIL``, ``INTERRUPTED`` or ``MISSING`` (metric not logged)."""

    state: str
    value: float | None
    run_dir: Path
    seconds: float
    reason: str = ""
    metrics: list[str] = field(default_factory=list)


@dataclass
class Active:
    """The trial this process is running (:class:`SweepTrial` reports to it); ``pruned``: why it was pruned."""

    trial: Any
    pruned: str | None = None


ACTIVE: Active | None = None


class SweepTrial(Callback):
    """A sweep's trial inside its run: sweep name, trial number and parameters as hyperparameters; pruning.

    Appended to ``trainer.callbacks`` by ``dlbasics sweep`` (so ``config.yaml`` records it too). Pruning uses
    Optuna's ``optuna_integration.PyTorchLightningPruningCallback`` on ``metric`` after every validation, for
    the trial this process is running; a fit without one (e.g. rerun from ``config.yaml``) is not pruned.

    Args:
        sweep: The sweep's name (its folder ``lightning_logs/sweeps/<sweep>``).
        trial: The trial's number in the study.
        params: The trial's parameters, ``{key: value}`` (a structured value by its label).
        metric: The study's metric.
        prune: Whether the study prunes.
    """

    def __init__(
        self,
        sweep: str,
        trial: int,
        params: dict[str, Any] | None = None,
        metric: str = "val/loss",
        prune: bool = False,
    ) -> None:
        self.sweep, self.trial, self.params, self.metric, self.prune = sweep, trial, params or {}, metric, prune
        self.pruning: Callback | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        hparams = {"sweep": self.sweep, "sweep_trial": self.trial} | {f"sweep/{k}": v for k, v in self.params.items()}
        for logger in trainer.loggers:
            logger.log_hyperparams(hparams)
        if self.prune and ACTIVE is not None and ACTIVE.trial.number == self.trial:
            from optuna_integration import PyTorchLightningPruningCallback

            self.pruning = PyTorchLightningPruningCallback(ACTIVE.trial, monitor=self.metric)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.pruning is not None:
            self.pruning.on_fit_start(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.pruning is None:
            return
        try:
            self.pruning.on_validation_end(trainer, pl_module)
        except optuna.TrialPruned as pruned:
            if ACTIVE is not None:
                ACTIVE.pruned = str(pruned) or "pruned"
            raise


def claim_version(root: Path) -> Path:
    """Create and return the next free ``root/version_N`` (``os.mkdir`` fails for all but one claimant)."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[8:]) for p in root.glob("version_*") if p.name[8:].isdigit()]
    number = max(taken, default=-1) + 1
    while True:
        path = root / f"version_{number}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            number += 1


def with_version(loggers: list[dict[str, Any]], version: int, group: str) -> list[dict[str, Any]]:
    """The experiment's loggers writing to ``version_<version>``; wandb runs grouped under the sweep's name."""
    loggers = copy.deepcopy(loggers)
    for logger in loggers:
        init_args = logger.setdefault("init_args", {})
        name = str(logger.get("class_path", "")).rsplit(".", 1)[-1]
        if name in ("CSVLogger", "TensorBoardLogger"):
            init_args["version"] = version
        elif "Wandb" in name and not init_args.get("group"):
            init_args["group"] = group
    return loggers


def trial_args(plan: Plan, number: int, choices: dict[str, Any], version: int) -> list[str]:
    """A trial's ``dlbasics fit`` arguments: the experiment, its parameters, its loggers and :class:`SweepTrial`."""
    values = {p.key: p.value(choices[p.key]) for p in plan.study.params}
    pairs = [arg for key, value in values.items() for arg in (f"--{key}", cli_value(value))]
    callback = {
        "class_path": f"{__name__}.SweepTrial",
        "init_args": {
            "sweep": plan.name,
            "trial": number,
            "params": {key: exact(value) for key, value in values.items()},
            "metric": plan.study.metric,
            "prune": plan.study.pruner["name"] != "none",
        },
    }
    loggers = json.dumps(with_version(plan.loggers, version, plan.name))
    return ["fit", *plan.fit_args, *pairs, "--trainer.logger", loggers, f"--trainer.callbacks+={json.dumps(callback)}"]


@contextmanager
def console_to(path: Path) -> Iterator[None]:
    """Send everything this process prints, Python's streams and the file descriptors 1 and 2, to ``path``."""
    streams = [s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None]
    for stream in streams:
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "a", buffering=1) as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            with redirect_stdout(log), redirect_stderr(log):
                yield
            for stream in streams:
                stream.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def error_line(console: Path) -> str:
    """The CLI's one-line error in a trial's console log (what made it fail), without the debug hint."""
    lines = console.read_text(errors="replace").splitlines() if console.is_file() else []
    found = [ln[len(ERROR_PREFIX) :] for ln in lines if ln.startswith(ERROR_PREFIX)]
    return found[-1].split("  [DLBASICS_DEBUG")[0] if found else "the run failed (see its console.log)"


def best_value(values: list[float], direction: str) -> float:
    """The best finite value (``nan`` if none)."""
    finite = [v for v in values if math.isfinite(v)]
    return (max if direction == "maximize" else min)(finite) if finite else math.nan


def run_trial(plan: Plan, trial: Any) -> Outcome:
    """Run ``trial`` as an ordinary ``dlbasics fit`` in this process and say how it ended (Optuna is not told)."""
    global ACTIVE
    from dlbasics.cli import main

    choices = plan.study.suggest(trial)
    run_dir = claim_version(plan.log_root)
    trial.set_user_attr("run_dir", str(run_dir))
    args = trial_args(plan, trial.number, choices, int(run_dir.name[8:]))
    console = plan.sweep_dir / f".trial_{trial.number}.console.log"
    ACTIVE, status, start = Active(trial), 0, time.perf_counter()
    argv, sys.argv = sys.argv, [sys.argv[0], *args]  # what a DDP launcher would start its other ranks with
    try:
        with console_to(console):
            try:
                main(args)
            except SystemExit as stop:
                status = exit_status(stop.code)
    finally:
        active, ACTIVE, sys.argv = ACTIVE, None, argv
        seconds = time.perf_counter() - start
        if console.is_file():
            os.replace(console, run_dir / "console.log")
        console = run_dir / "console.log"
    if status in (130, 143):
        return Outcome("INTERRUPTED", None, run_dir, seconds, "Ctrl-C: queued again")
    if active.pruned:
        return Outcome("PRUNED", None, run_dir, seconds, active.pruned)
    if status:
        return Outcome("FAIL", None, run_dir, seconds, error_line(console))
    logged = read_metrics(run_dir) if (run_dir / "metrics.csv").is_file() else {}
    if plan.study.metric not in logged:
        names = sorted(k for k in logged if "/" in k)
        return Outcome("MISSING", None, run_dir, seconds, f"{plan.study.metric} is not logged", names)
    value = best_value(logged[plan.study.metric], plan.study.direction)
    if math.isnan(value):
        return Outcome("FAIL", None, run_dir, seconds, f"{plan.study.metric} was never finite")
    return Outcome("COMPLETE", value, run_dir, seconds)
