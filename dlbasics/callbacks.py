"""Callbacks of the run itself (the CLI's default ``trainer.callbacks``): progress, prediction file, NaN guard.

    dlbasics predict --config configs/rule_classifier.yaml --ckpt_path <ckpt>   # writes predictions.csv

Pictures come from :mod:`dlbasics.pictures`. ``dlbasics fit --print_config`` lists every default callback;
a ``trainer.callbacks`` list in YAML replaces them (``--trainer.callbacks+=X`` on the command line appends).
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, RichProgressBar
from torch import Tensor

from dlbasics.runs import run_dir


class PredictionWriter(BasePredictionWriter):
    """Write ``predict_step``'s dict of tensors as one CSV, ``<run dir>/<filename>``, in sample order.

    Each rank keeps its own predictions; at the end of the epoch they are gathered on global rank 0,
    put back in dataset order and written once, so a DDP predict produces one combined file.
    Columns: ``index`` then one per key (``key_0 … key_{K-1}`` for ``(N, K)`` outputs).

    The DataModule may name the columns itself: a method ``prediction_table(index, columns)`` returning a
    ``{column: values}`` dict (strings allowed, e.g. file names and class names) replaces the default table;
    returning ``None`` keeps it. :class:`~dlbasics.data.MNISTDataModule` adds ``file`` and ``label``,
    :class:`~dlbasics.data.SineData` turns a forecast of the user's series into ``step, forecast`` rows.

    It writes once per epoch (``write_interval="epoch"``: Lightning keeps the epoch's predictions for it).

    Args:
        filename: Name of the CSV inside the run directory.
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer, pl_module, predictions: Any, batch_indices: Any) -> None:
        batches = [p if isinstance(p, dict) else {"prediction": p} for p in predictions]
        batches = [{k: v.detach().cpu() for k, v in b.items()} for b in batches]
        columns = {k: torch.cat([b[k] for b in batches]) for k in batches[0]} if batches else {}
        loader = trainer.predict_dataloaders
        n = len(next(iter(columns.values()))) if columns else 0
        indices = loader.indices()[:n] if hasattr(loader, "indices") else torch.arange(n)
        shards = [(indices, columns)]
        if trainer.world_size > 1:
            gathered: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, (indices, columns))
            shards = gathered
        if not trainer.is_global_zero:
            return
        shards = [s for s in shards if s[1]] or [(torch.arange(0), {})]  # a rank may have had no sample
        index, order = torch.cat([s[0] for s in shards]).sort(stable=True)
        first = torch.ones_like(index, dtype=torch.bool)  # a sample every rank predicted is written once
        first[1:] = index[1:] != index[:-1]
        order, index = order[first], index[first]
        merged = {k: torch.cat([s[1][k] for s in shards])[order] for k in shards[0][1]}
        hook = getattr(trainer.datamodule, "prediction_table", None)
        table = (hook(index, merged) if callable(hook) else None) or default_table(index, merged)
        self.path = run_dir(trainer) / self.filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_table(self.path, table)
        print(f"predictions: {self.path}")


def default_table(index: Tensor, columns: dict[str, Tensor]) -> dict[str, list]:
    """``index`` then one column per key (``key_0 … key_{K-1}`` for ``(N, K)`` tensors)."""
    table: dict[str, list] = {"index": index.long().tolist()}
    for key, value in columns.items():
        value = value.reshape(len(value), -1)
        names = [key] if value.shape[1] == 1 else [f"{key}_{j}" for j in range(value.shape[1])]
        table |= {name: col.tolist() for name, col in zip(names, value.T, strict=True)}
    return table


def write_table(path: Path, table: dict[str, list]) -> None:
    """Write ``{column: values}`` as a CSV: whole numbers as integers, other floats with 6 digits, strings as is."""

    def fmt(v: Any) -> str:
        if isinstance(v, str):
            return v
        return str(int(v)) if float(v).is_integer() else f"{float(v):.6g}"

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(table))
        for row in zip(*table.values(), strict=True):
            writer.writerow([fmt(v) for v in row])


class Progress(RichProgressBar):
    """Rich's live bar in a terminal; one plain line per epoch otherwise (logs and CI, where a bar is noise).

    The line of epoch E is printed when epoch E+1 starts (or training ends): the LightningModule logs its
    epoch metrics after the callbacks' ``on_train_epoch_end``, so only then are they all known.

    Args:
        live: ``True``: always the live bar; ``False``: always plain lines; ``None``: a bar when stdout is a terminal.
    """

    def __init__(self, live: bool | None = None) -> None:
        super().__init__()
        self.live = sys.stdout.isatty() if live is None else live
        self.lines = True
        self.start = time.perf_counter()
        self.pending: str | None = None

    @property
    def is_enabled(self) -> bool:
        return self.live and super().is_enabled

    def disable(self) -> None:
        super().disable()
        self.lines = False

    def enable(self) -> None:
        super().enable()
        self.lines = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._flush(trainer)
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        epochs = "?" if trainer.max_epochs in (None, -1) else trainer.max_epochs
        seconds = time.perf_counter() - self.start
        self.pending = f"epoch {trainer.current_epoch + 1}/{epochs} step {trainer.global_step} {seconds:.1f}s"

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._flush(trainer)

    def _flush(self, trainer: L.Trainer) -> None:
        if self.pending and not self.live and self.lines and trainer.is_global_zero:
            metrics = {k: v.item() if isinstance(v, Tensor) else v for k, v in trainer.callback_metrics.items()}
            shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if "/" in k)
            print(f"{self.pending} {shown}", flush=True)
        self.pending = None


class FiniteLossGuard(Callback):
    """Stop training with a clear error when the training loss became NaN or infinite.

    On an accelerator, reading a loss on the host waits for the device every step, so the guard keeps its
    record there (which step first had a non-finite loss, and that loss, via ``torch.where``) and reads it
    every ``stride`` steps, at the end of each epoch and before every checkpoint is written. On the CPU a read
    costs nothing, so the record is kept on the host (cheaper than the device bookkeeping; see
    ``benchmarks/results/guard.md``) and read on the same schedule. The error names the epoch and step where
    the loss first went bad; it ends the run before a checkpoint of diverged weights is written, so the last
    good ``last.ckpt`` stays what it was, and ``dlbasics`` exits non-zero.

    Args:
        stride: Read the record every ``stride`` training steps (1: every step).
        on_device: Keep the record on the loss's device (``None``: on accelerators, not on the CPU).
    """

    def __init__(self, stride: int = 50, on_device: bool | None = None) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride, self.on_device = stride, on_device
        self.bad: tuple[int, int, float] | None = None  # (epoch, step, loss) of the first non-finite loss
        self.steps: list[tuple[int, int]] = []  # (epoch, global step) of each step since the last read
        self.count = self.bad_index = self.bad_loss = None  # the device-side record

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach().reshape(-1)[0]
        self.steps.append((trainer.current_epoch, trainer.global_step))
        if not (self.on_device if self.on_device is not None else loss.device.type != "cpu"):
            if self.bad is None and not math.isfinite(value := loss.item()):
                self.bad = (*self.steps[-1], value)
        else:
            if self.count is None or self.count.device != loss.device:
                self.count = torch.zeros((), dtype=torch.long, device=loss.device)
                self.bad_index, self.bad_loss = torch.full_like(self.count, -1), torch.zeros_like(loss.float())
            fresh = (self.bad_index < 0) & ~torch.isfinite(loss)
            self.bad_index = torch.where(fresh, self.count, self.bad_index)
            self.bad_loss = torch.where(fresh, loss.float(), self.bad_loss)
            self.count += 1
        if len(self.steps) >= self.stride:
            self.check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self.check(trainer)

    def check(self, trainer: L.Trainer) -> None:
        """Raise ``FloatingPointError`` if a non-finite loss was recorded (at most one device read)."""
        if self.bad is None and self.bad_index is not None and (index := int(self.bad_index)) >= 0:
            self.bad = (*self.steps[index], float(self.bad_loss))
        if self.bad is None:
            self.steps.clear()
            if self.count is not None:
                self.count.zero_()
            return
        epoch, step, loss = self.bad
        ckpt = trainer.checkpoint_callback
        last = getattr(ckpt, "last_model_path", "") or getattr(ckpt, "best_model_path", "")
        kept = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
        raise FloatingPointError(
            f"training loss became {loss} at epoch {epoch}, step {step}: "
            f"lower the learning rate or check the data ({kept})"
        )
