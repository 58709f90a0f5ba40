"""Measurement callbacks the benchmarks add to dlbasics runs (``--trainer.callbacks+=bench_callbacks.Phases``).

    python benchmarks/run.py --quick   # runs `dlbasics fit --config configs/fashion_mnist_cnn_sprint.yaml` with it

``Phases`` prints one JSON line per phase boundary of a ``dlbasics fit`` process (which trains, then tests
the best-by-validation checkpoint on the test split), each with ``since_start``: seconds since the driver
spawned the process (``BENCH_SPAWN_TIME``), so interpreter start-up, imports and data loading count.
It only observes: it never evaluates the test split itself, so what it reports is the CLI's own
test-after-fit result. ``EpochReport`` (``benchmarks/steps.py``, ``benchmarks/malloc.py``) prints one line per
training epoch: seconds, samples, minor page faults. ``Timeline`` (``benchmarks/same_recipe.py``) prints the
epoch boundaries that ``benchmarks/peer_same_recipe.py`` prints, so the two split the same way.
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

import lightning as L
import torch

START = float(os.environ.get("BENCH_SPAWN_TIME", time.time()))
IMPORTED = time.time()  # jsonargparse imports this module while parsing: torch and lightning are loaded


def report(event: str, **fields: Any) -> None:
    """Print one JSON line ``{"event": …, "since_start": …, …}`` for the benchmark driver (appended to the file
    ``BENCH_EVENTS`` instead when it is set: ``ablations.py`` gives the run a terminal as its output)."""
    line = json.dumps({"event": event, "since_start": time.time() - START, **fields})
    if path := os.environ.get("BENCH_EVENTS"):
        with open(path, "a") as f:
            f.write(line + "\n")
    else:
        print(line, flush=True)


class Phases(L.Callback):
    """JSON lines at each phase: ``imports`` (CLI parsed, model and data constructed), ``data_ready``
    (the DataModule's ``setup`` done), ``train_start``, ``first_step`` (first optimizer step done: oneDNN
    warm-up), ``epoch`` (training seconds without validation, samples, steps), ``fit_end`` (with the
    best ``val/acc``), ``test_start`` and ``test_end`` (with ``test/acc``)."""

    def __init__(self) -> None:
        report("imports", imported=IMPORTED - START)
        self.epoch_start = self.val_seconds = 0.0
        self.samples = self.steps = 0
        self.data_reported = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Lightning calls the DataModule's setup just before the callbacks' setup.
        if not self.data_reported:
            self.data_reported = True
            report("data_ready", stage=stage)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report("train_start")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_start, self.val_seconds, self.samples, self.steps = time.perf_counter(), 0.0, 0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.samples += len(batch[0])
        self.steps += 1
        if trainer.global_step == 1:
            report("first_step", seconds=time.perf_counter() - self.epoch_start)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self.val_seconds += time.perf_counter() - self.val_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs the epoch's validation before this hook: its time is left out.
        seconds = time.perf_counter() - self.epoch_start - self.val_seconds
        report(
            "epoch",
            epoch=trainer.current_epoch + 1,
            epoch_seconds=seconds,
            val_seconds=self.val_seconds,
            samples=self.samples,
            steps=self.steps,
            val_acc=_metric(trainer, "val/acc"),
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        scores = [c.best_model_score for c in trainer.checkpoint_callbacks if c.best_model_score is not None]
        best = float(scores[0]) if scores else None
        report("fit_end", best_val_acc=best, steps=trainer.global_step)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report("test_start", ckpt_path=trainer.ckpt_path)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report("test_end", test_acc=_metric(trainer, "test/acc"))


class Timeline(L.Callback):
    """The same JSON lines as ``peer_same_recipe.py`` prints, for ``same_recipe.py``: ``epoch`` (the start of its
    first and the end of its last training step, as ``since_start``), ``train_end``, ``fit_end``, ``test_end``.

    What lies between an epoch's last step and the next epoch's first step (or ``train_end``) is the epoch's
    fixed cost: validation, epoch-end metrics, loggers, checkpoints, callbacks. Each time also as process CPU
    seconds (``cpu``, ``*_cpu``), which other jobs on the machine hardly move. Two clock reads per step.
    """

    def __init__(self) -> None:
        report("imports", imported=IMPORTED - START, cpu=time.process_time())
        self.first = self.last = (0.0, 0.0)  # (since_start, process CPU seconds)
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.first, self.steps = (time.time() - START, time.process_time()), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.last = (time.time(), time.process_time())
        self.steps += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        (first, first_cpu), (last, last_cpu) = self.first, self.last
        report(
            "epoch", epoch=trainer.current_epoch + 1, steps=self.steps, first_step_at=first, last_step_at=last - START,
            first_step_cpu=first_cpu, last_step_cpu=last_cpu,
        )  # fmt: skip

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report("train_end", cpu=time.process_time())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report("fit_end", cpu=time.process_time())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report("test_end", cpu=time.process_time())


def _metric(trainer: L.Trainer, name: str) -> float | None:
    value = trainer.callback_metrics.get(name)
    return None if value is None else float(value)


class EpochReport(L.Callback):
    """Per-epoch timing (training steps only) and, with ``target``, test accuracy after every epoch.

    Args:
        target: Stop training once test accuracy reaches this (> 1: never evaluate).
    """

    def __init__(self, target: float = 2.0) -> None:
        self.target, self.start, self.samples, self.steps = target, 0.0, 0, 0
        self.records: list[dict] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start, self.samples, self.steps = time.perf_counter(), 0, 0
        self.faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.samples += len(batch[0])
        self.steps += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs validation before this hook; exclude it from the epoch time.
        seconds = time.perf_counter() - self.start - getattr(self, "val_seconds", 0.0)
        record = {
            "event": "epoch",
            "epoch": trainer.current_epoch + 1,
            "epoch_seconds": seconds,
            "samples": self.samples,
            "steps": self.steps,
            "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.faults,  # validation included
        }
        if self.target <= 1.0:
            record["test_acc"] = self.test_accuracy(trainer, pl_module)
            trainer.should_stop = record["test_acc"] >= self.target
        record["since_start"] = time.time() - START
        self.records.append(record)
        print(json.dumps(record), flush=True)
        self.val_seconds = 0.0

    def on_validation_start(self, trainer, pl_module) -> None:
        self.val_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        self.val_seconds = getattr(self, "val_seconds", 0.0) + time.perf_counter() - self.val_start

    @torch.no_grad()
    def test_accuracy(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float:
        datamodule = trainer.datamodule
        was_training = pl_module.training
        pl_module.eval()
        correct = total = 0
        for batch in datamodule.test_dataloader():
            x, y = datamodule.on_after_batch_transfer(batch, 0)
            correct += (pl_module(x).argmax(-1) == y).sum().item()
            total += len(y)
        pl_module.train(was_training)
        return correct / total
