"""The run's callbacks: :data:`DEFAULTS` (what every run gets in ``trainer.callbacks``), progress and the NaN guard.

    dlbasics fit --config rule_classifier --print_config   # trainer.callbacks: these, by class

Pictures come from :mod:`dlbasics.pictures`, the prediction file from :mod:`dlbasics.use.predict`. A
``trainer.callbacks`` list in YAML replaces the defaults (``--trainer.callbacks+=X`` on the command line appends).
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, RichProgressBar

from dlbasics.pictures import PICTURES
from dlbasics.trust import full_name
from dlbasics.use.predict import PredictionWriter


class Progress(RichProgressBar):
    """Rich's live bar in a terminal; one plain line per epoch otherwise (logs and CI, where a bar is noise).

    The line of epoch E is printed when epoch E+1 starts (or training ends): the LightningModule logs its
    epoch metrics after the callbacks' ``on_train_epoch_end``, so only then are they all known. The live bar is
    redrawn every ``every`` batches and at the last: redrawing it each batch cost a tiny model's run more than a
    second (``benchmarks/results/same_recipe_profile.md``).

    Args:
        live: ``True``: always the live bar; ``False``: always plain lines; ``None``: a bar when stdout is a terminal.
    """

    def __init__(self, live: bool | None = None, every: int = 10) -> None:
        super().__init__()
        self.live = sys.stdout.isatty() if live is None else live
        self.every = every
        self.start = time.perf_counter()
        self.pending: str | None = None

    @property
    def is_enabled(self) -> bool:
        return self.live and super().is_enabled

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

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.is_enabled and ((batch_idx + 1) % self.every == 0 or batch_idx + 1 == self.total_train_batches):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx=0) -> None:
        if self.is_enabled and (batch_idx + 1) % self.every == 0:
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def _flush(self, trainer: L.Trainer) -> None:
        # super().is_enabled: not disabled (as on DDP ranks other than 0, or while a tuner searches)
        if self.pending and not self.live and super().is_enabled:
            metrics = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in trainer.callback_metrics.items()}
            shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if "/" in k)
            print(f"{self.pending} {shown}", flush=True)
        self.pending = None


class FiniteLossGuard(Callback):
    """Stop training with a clear error when the training loss became NaN or infinite.

    On an accelerator, reading a loss on the host waits for the device every step, so the guard keeps its
    record there (which step first had a non-finite loss, and that loss, via ``torch.where``) and reads it
    every ``stride`` steps, at the end of each epoch and before every checkpoint is written. On the CPU a read
    costs nothing, so the record is kept on the host (cheaper than the device bookkeeping; see
    ``benchmarks/results/guard.md``); ``on_device`` overrides the choice. The error names the epoch and step where
    the loss first went bad; it ends the run before a checkpoint of diverged weights is written, so the last good
    ``last.ckpt`` stays what it was.
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


#: The default ``trainer.callbacks``, as ``(class, init_args)``: ``last.ckpt`` after every epoch (``save_last`` would
#: only refresh it when a best checkpoint is written), progress, ``predictions.csv``, the NaN guard, the learning
#: rate per epoch, and the pictures (each draws only for models that have what it needs).
DEFAULTS: list[tuple[type, dict[str, Any]]] = [
    (ModelCheckpoint, {"filename": "last", "monitor": None, "save_top_k": 1, "enable_version_counter": False}),
    (Progress, {}),
    (PredictionWriter, {}),
    (FiniteLossGuard, {}),
    (LearningRateMonitor, {"logging_interval": "epoch"}),
    *((picture, {}) for picture in PICTURES),
]
#: CSV (``metrics.csv``) and TensorBoard, both writing ``lightning_logs/version_N``.
LOGGERS = [
    {"class_path": f"lightning.pytorch.loggers.{name}", "init_args": {"save_dir": ".", "name": "lightning_logs"}}
    for name in ("CSVLogger", "TensorBoardLogger")
]


def as_config(entries: list[tuple[type, dict[str, Any]]]) -> list[dict[str, Any]]:
    """``(class, init_args)`` pairs as the config writes them: ``{class_path, init_args}``."""
    return [{"class_path": full_name(cls), "init_args": dict(args)} for cls, args in entries]
