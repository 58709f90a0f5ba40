"""The pictures of training, drawn at the end of fit: learning curves, a regression's fit, hidden activations.

dlbasics fit --config configs/mnist_mlp_fishbook.yaml   # learning_curves.png, activation_histograms.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from dlbasics import plots
from dlbasics.pictures.figure import drawing, log_figure
from dlbasics.runs import metrics_rows


class LearningCurves(Callback):
    """At the end of fit, ``learning_curves.png`` from ``metrics.csv``: the training loss every logged step (so a
    one-epoch run has a curve), validation and accuracies per epoch.

    The mean training loss of every ``log_every_n_steps`` steps is taken on the loss's device and logged once per
    epoch as ``train/loss_step`` (one host read per epoch, not per step), on the scale of ``train/loss``.
    """

    def __init__(self) -> None:
        self.steps: list[tuple[int, Tensor]] = []
        self.losses: list[Tensor] = []  # since the last logged step

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None or not drawing(trainer):
            return
        self.losses.append(getattr(pl_module, "reported_loss", lambda value: value)(loss.detach()).float())
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self.steps.append((trainer.global_step, torch.stack(self.losses).mean()))
            self.losses = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.steps:
            values = torch.stack([value for _, value in self.steps]).tolist()
            for logger in trainer.loggers:
                for (step, _), value in zip(self.steps, values, strict=True):
                    logger.log_metrics({"train/loss_step": value}, step=step)
            self.steps = []

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        csv_logger = next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
        if csv_logger is None or not drawing(trainer):
            return
        csv_logger.save()
        if (Path(csv_logger.log_dir) / "metrics.csv").is_file():
            title = f"{type(pl_module).__name__}, {Path(csv_logger.log_dir).name}"
            fig = plots.learning_curves_figure(metrics_rows(csv_logger.log_dir), title=title)
            rank_zero_info(f"learning curves: {log_figure(trainer, 'learning_curves', fig)}")


class FittedCurve(Callback):
    """For regressions (models with ``closed_form``): learned vs closed-form ``(w, b)``, printed and logged as
    ``fit/w0…``, ``fit/b``, ``fit/closed_form_…``, and ``fitted_curve.png`` at the end of fit."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        train = getattr(trainer.datamodule, "splits", {}).get("train")
        if not hasattr(pl_module, "closed_form") or train is None or not trainer.is_global_zero:
            return
        (w, b), (w_cf, b_cf) = pl_module.learned(), pl_module.closed_form(*train[:2])
        fmt = lambda t: "[" + ", ".join(f"{v:.4f}" for v in t.tolist()) + "]"  # noqa: E731
        print(
            f"learned     w = {fmt(w)}, b = {b:.4f}\nclosed-form w = {fmt(w_cf)}, b = {b_cf:.4f}\n"
            f"max |learned - closed-form| = {max((w - w_cf).abs().max(), (b - b_cf).abs()):.2e}",
            flush=True,
        )
        values = {f"fit/w{i}": v for i, v in enumerate(w.tolist())} | {"fit/b": float(b)}
        values |= {f"fit/closed_form_w{i}": v for i, v in enumerate(w_cf.tolist())} | {"fit/closed_form_b": float(b_cf)}
        for logger in trainer.loggers:
            logger.log_metrics(values, step=trainer.global_step)
            logger.save()
        log_figure(trainer, "fitted_curve", plots.fitted_curve_figure(*train[:2], pl_module))


class ActivationHistograms(Callback):
    """``activation_histograms.png`` at the end of fit, for models with ``hidden_activations`` (the MLPs): each
    hidden layer's activations on the first ``max_samples`` images of the first training batch, at the start of
    training and at the end (the fish book's figures for weight initialization: collapsed, saturated or spread)."""

    RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, 2.0), "leaky_relu": (-0.1, 2.0)}

    def __init__(self, max_samples: int = 1000) -> None:
        self.max_samples = max_samples
        self.probe: Tensor | None = None
        self.start: list[Tensor] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.probe, self.start = None, []

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        if self.probe is None and hasattr(pl_module, "hidden_activations") and drawing(trainer):
            self.probe = batch[0][: self.max_samples].detach()
            self.start = self.activations(pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.probe is None or not drawing(trainer):
            return
        hp = pl_module.hparams
        rows = {"start of training": self.start, "end of training": self.activations(pl_module)}
        title = f"{type(pl_module).__name__}: {hp.get('activation')}, init {hp.get('init')} — hidden activations"
        fig = plots.activation_histograms_figure(rows, self.RANGES.get(hp.get("activation"), (-1.0, 1.0)), title)
        log_figure(trainer, "activation_histograms", fig)

    def activations(self, pl_module: L.LightningModule) -> list[Tensor]:
        was_training = pl_module.training
        pl_module.eval()
        found = [a.float().cpu() for a in pl_module.hidden_activations(self.probe)]
        pl_module.train(was_training)
        return found
