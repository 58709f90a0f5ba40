"""Measurement callbacks the benchmark adds to dlbasics runs through ``--config <overlay>``.

    python benchmarks/run.py   # writes the overlays that name these classes

``EpochReport`` prints one JSON line per training epoch (seconds, samples, minor page faults of the process,
optionally test accuracy computed the way the peers compute it) and stops training once a target accuracy is
reached.
"""

from __future__ import annotations

import json
import os
import resource
import time

import lightning as L
import torch

START = float(os.environ.get("BENCH_SPAWN_TIME", time.time()))


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
