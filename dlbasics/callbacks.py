"""Callbacks every dlbasics run gets from the CLI: prediction file, plain progress lines.

dlbasics predict --config configs/rule_classifier.yaml --ckpt_path <ckpt>   # writes predictions.csv
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, ProgressBar
from torch import Tensor

from dlbasics.runs import run_dir


class PredictionWriter(BasePredictionWriter):
    """Write ``predict_step``'s dict of tensors as one CSV, ``<run dir>/<filename>``, in sample order.

    Each rank keeps its own predictions; at the end of the epoch they are gathered on global rank 0,
    put back in dataset order and written once, so a DDP predict produces one combined file.
    Columns: ``index`` then one per key (``key_0 … key_{K-1}`` for ``(N, K)`` outputs).

    Args:
        filename: Name of the CSV inside the run directory.
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="batch")
        self.filename = filename
        self.batches: list[dict[str, Tensor]] = []
        self.path: Path | None = None

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.batches = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        if not isinstance(prediction, dict):
            prediction = {"prediction": prediction}
        self.batches.append({k: v.detach().float().cpu() for k, v in prediction.items()})

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        columns = {k: torch.cat([b[k] for b in self.batches]) for k in self.batches[0]} if self.batches else {}
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
        order = torch.cat([s[0] for s in shards]).argsort()
        merged = {k: torch.cat([s[1][k] for s in shards])[order] for k in shards[0][1]}
        self.path = run_dir(trainer) / self.filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_columns(self.path, torch.cat([s[0] for s in shards])[order], merged)
        print(f"predictions: {self.path}")


def write_columns(path: Path, index: Tensor, columns: dict[str, Tensor]) -> None:
    """Write ``index`` and named 1-D/2-D tensors as a CSV (integers stay integers)."""
    header, cols = ["index"], [index.long()]
    for key, value in columns.items():
        value = value.reshape(len(value), -1)
        names = [key] if value.shape[1] == 1 else [f"{key}_{j}" for j in range(value.shape[1])]
        header += names
        cols += list(value.T)
    fmt = [lambda v: str(int(v)) if float(v).is_integer() else f"{float(v):.6g}"] * len(cols)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in zip(*(c.tolist() for c in cols), strict=True):
            writer.writerow([fn(v) for fn, v in zip(fmt, row, strict=True)])


class LineProgress(ProgressBar):
    """One plain line per epoch (for logs and CI, where a live bar would only add noise).

    The line of epoch E is printed when epoch E+1 starts (or training ends): the LightningModule logs
    its epoch metrics after the callbacks' ``on_train_epoch_end``, so only then are they all known.
    """

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True
        self.start = time.perf_counter()
        self.pending: str | None = None

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epochs = "?" if trainer.max_epochs in (None, -1) else trainer.max_epochs
        seconds = time.perf_counter() - self.start
        self.pending = f"epoch {trainer.current_epoch + 1}/{epochs} step {trainer.global_step} {seconds:.1f}s"

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)

    def _flush(self, trainer: L.Trainer) -> None:
        if self.pending and self.enabled and trainer.is_global_zero:
            metrics = {k: v for k, v in self.get_metrics(trainer, trainer.lightning_module).items() if "/" in k}
            shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items()))
            print(f"{self.pending} {shown}", flush=True)
        self.pending = None

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return {k: (v.item() if isinstance(v, Tensor) else v) for k, v in trainer.callback_metrics.items()}


def default_progress_bar() -> ProgressBar:
    """Rich's live bar in a terminal, plain lines otherwise."""
    if sys.stdout.isatty():
        from lightning.pytorch.callbacks import RichProgressBar

        return RichProgressBar()
    return LineProgress()


class FiniteLossGuard(Callback):
    """Stop training with a clear error as soon as the training loss is NaN or infinite.

    The exception ends the run before any checkpoint of the diverged weights is written, so the last
    good ``last.ckpt`` stays what it was; ``dlbasics`` then exits non-zero with the message.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None or bool(torch.isfinite(loss).all()):
            return
        ckpt = trainer.checkpoint_callback
        last = getattr(ckpt, "last_model_path", "") or getattr(ckpt, "best_model_path", "")
        kept = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
        raise FloatingPointError(
            f"training loss became {loss.item()} at epoch {trainer.current_epoch}, step {trainer.global_step}: "
            f"lower the learning rate or check the data ({kept})"
        )
