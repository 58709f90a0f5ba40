"""One trial of a sweep: an ordinary ``dlbasics fit`` run, in this process, with its own ``version_N``.

    dlbasics sweep --config rule_classifier --study my_study.yaml     # runs trials through this module

A trial is ``dlbasics.cli.main(["fit", "--config", EXPERIMENT, ..., "--<key>", "<value>", ...])``: its own
``lightning_logs/version_N/`` with ``config.yaml``, checkpoints, ``metrics.csv``, pictures and ``console.log``
(everything the fit printed). The ``version_N`` is claimed with ``os.mkdir`` and handed to the CSV and TensorBoard
loggers, so concurrent trials never share one.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback

from dlbasics.launch import exit_status
from dlbasics.runs import read_metrics
from dlbasics.sweep.study import ERROR, Study, SweepError, cli_value, exact


def print_config(fit_args: list[str]) -> str:
    """``dlbasics fit <fit_args> --print_config``'s output: the complete config, parsed and checked, not built (the
    CLI's own one-line error as a :class:`SweepError`)."""
    from dlbasics.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(["fit", *fit_args, "--print_config"])
        except SystemExit as stop:
            if stop.code:
                raise SweepError(error_in(err.getvalue()) or f"dlbasics fit exited with status {stop.code}") from None
    return out.getvalue()


def error_in(output: str) -> str | None:
    """The CLI's last one-line error in a fit's output (``dlbasics: error: …``), without the debug hint."""
    found = [ln.removeprefix(ERROR) for ln in output.splitlines() if ln.startswith(ERROR)]
    return found[-1].split("  [DLBASICS_DEBUG")[0] if found else None


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
    run_dir: Path | None  # None: refused before it trained (the CLI removed its run directory)
    seconds: float
    reason: str = ""
    metrics: list[str] = field(default_factory=list)


class SweepTrial(Callback):
    """A sweep's trial inside its run, appended to ``trainer.callbacks`` by ``dlbasics sweep`` (so ``config.yaml``
    records it): sweep name, trial number and ``params`` (``{key: value}``, a structured value by its label) as
    hyperparameters. With ``prune``, Optuna's ``PyTorchLightningPruningCallback`` watches ``metric`` after every
    validation of the trial this process is running (:attr:`active`); a fit without one (e.g. rerun from
    ``config.yaml``) is not pruned.
    """

    #: The Optuna trial this process is running (set by :func:`run_trial`), and why it was pruned if it was.
    active: Any = None
    pruned: str | None = None

    def __init__(
        self, sweep: str, trial: int, params: dict | None = None, metric: str = "val/loss", prune: bool = False
    ) -> None:
        self.sweep, self.trial, self.params, self.metric, self.prune = sweep, trial, params or {}, metric, prune
        self.pruning = Callback()  # a no-op: Optuna's pruning callback once setup finds this process running the trial

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        hparams = {"sweep": self.sweep, "sweep_trial": self.trial} | {f"sweep/{k}": v for k, v in self.params.items()}
        for logger in trainer.loggers:
            logger.log_hyperparams(hparams)
        if self.prune and SweepTrial.active is not None and SweepTrial.active.number == self.trial:
            from optuna_integration import PyTorchLightningPruningCallback

            self.pruning = PyTorchLightningPruningCallback(SweepTrial.active, monitor=self.metric)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.pruning.on_fit_start(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        try:
            self.pruning.on_validation_end(trainer, pl_module)
        except optuna.TrialPruned as pruned:
            SweepTrial.pruned = str(pruned) or "pruned"
            raise


def claim_version(root: Path) -> Path:
    """Create and return the next free ``root/version_N`` (``os.mkdir`` fails for all but one claimant)."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[8:]) for p in root.glob("version_*") if p.name[8:].isdigit()]
    for number in itertools.count(max(taken, default=-1) + 1):
        with suppress(FileExistsError):
            (root / f"version_{number}").mkdir()
            return root / f"version_{number}"


def trial_args(plan: Plan, number: int, choices: dict[str, Any], version: int) -> list[str]:
    """A trial's ``dlbasics fit`` arguments: the experiment, its parameters, :class:`SweepTrial`, and the
    experiment's loggers writing to ``version_<version>`` (wandb runs grouped under the sweep's name)."""
    values = {p.key: p.value(choices[p.key]) for p in plan.study.params}
    pairs = [arg for key, value in values.items() for arg in (f"--{key}", cli_value(value))]
    init_args = {"sweep": plan.name, "trial": number, "params": {key: exact(v) for key, v in values.items()}}
    init_args |= {"metric": plan.study.metric, "prune": plan.study.pruner["name"] != "none"}
    callback = {"class_path": f"{__name__}.SweepTrial", "init_args": init_args}
    loggers = copy.deepcopy(plan.loggers)
    for logger in loggers:
        logger_args = logger.setdefault("init_args", {})
        name = str(logger.get("class_path", "")).rsplit(".", 1)[-1]
        if name in ("CSVLogger", "TensorBoardLogger"):
            logger_args["version"] = version
        elif "Wandb" in name and not logger_args.get("group"):
            logger_args["group"] = plan.name
    callbacks = f"--trainer.callbacks+={json.dumps(callback)}"
    return ["fit", *plan.fit_args, *pairs, "--trainer.logger", json.dumps(loggers), callbacks]


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
        for fd, copied in zip((1, 2), saved, strict=True):
            os.dup2(copied, fd)
            os.close(copied)


def run_trial(plan: Plan, trial: Any) -> Outcome:
    """Run ``trial`` as an ordinary ``dlbasics fit`` in this process and say how it ended (Optuna is not told)."""
    from dlbasics.cli import main

    choices = plan.study.suggest(trial)
    run_dir = claim_version(plan.log_root)
    trial.set_user_attr("run_dir", str(run_dir))
    args = trial_args(plan, trial.number, choices, int(run_dir.name[8:]))
    console = plan.sweep_dir / f".trial_{trial.number}.console.log"
    SweepTrial.active, SweepTrial.pruned, status, start = trial, None, 0, time.perf_counter()
    argv, sys.argv = sys.argv, [sys.argv[0], *args]  # what a DDP launcher would start its other ranks with
    try:
        with console_to(console):
            try:
                main(args)
            except SystemExit as stop:
                status = exit_status(stop.code)
    finally:
        SweepTrial.active, sys.argv = None, argv
        seconds = time.perf_counter() - start
        output = console.read_text(errors="replace") if console.is_file() else ""
        if not run_dir.is_dir():  # refused before it trained: the CLI removed the run, whose number is free again
            console.unlink(missing_ok=True)
            trial.set_user_attr("run_dir", "")
            run_dir = None
        elif console.is_file():
            os.replace(console, run_dir / "console.log")
    if status in (130, 143):
        return Outcome("INTERRUPTED", None, run_dir, seconds, "Ctrl-C: queued again")
    if SweepTrial.pruned:
        return Outcome("PRUNED", None, run_dir, seconds, SweepTrial.pruned)
    if status or run_dir is None:
        return Outcome("FAIL", None, run_dir, seconds, error_in(output) or "the run failed (see its console.log)")
    logged = read_metrics(run_dir) if (run_dir / "metrics.csv").is_file() else {}
    if plan.study.metric not in logged:
        names = sorted(k for k in logged if "/" in k)
        return Outcome("MISSING", None, run_dir, seconds, f"{plan.study.metric} is not logged", names)
    if not (finite := [v for v in logged[plan.study.metric] if math.isfinite(v)]):
        return Outcome("FAIL", None, run_dir, seconds, f"{plan.study.metric} was never finite")
    best = max if plan.study.direction == "maximize" else min  # a trial's value: its best epoch's
    return Outcome("COMPLETE", best(finite), run_dir, seconds)
