"""The pictures of a test or a prediction: confusion matrix, misclassified images, activation maps, forecasts.

dlbasics test --config fashion_mnist_cnn --ckpt_path best   # test_confusion_matrix.png, test_misclassified.png, …
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from dlbasics import plots
from dlbasics.pictures.figure import drawing, log_figure
from dlbasics.runs import atomic_write


class ConfusionMatrix(Callback):
    """``test_confusion_matrix.png`` after a test: the model's ``test_confusion`` metric, drawn by torchmetrics."""

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metric = getattr(pl_module, "test_confusion", None)
        if metric is None:
            return
        matrix = metric.compute()  # every rank takes part in the sync
        if drawing(trainer):
            names = getattr(trainer.datamodule, "class_names", None)
            labels = list(names) if names and len(names) == len(matrix) else None  # None: the class indices
            fig = plots.new_figure(7.0, 6.0)
            ax = fig.add_subplot()
            metric.plot(val=matrix, ax=ax, labels=labels)
            ax.set_title("test confusion matrix (rows: true, columns: predicted)")
            log_figure(trainer, "test/confusion_matrix", fig)


class MisclassifiedImages(Callback):
    """``test_misclassified.png`` after a test of an image classifier: its first ``max_images`` misclassified images."""

    def __init__(self, max_images: int = 25) -> None:
        self.max_images = max_images
        self.wrong: list[tuple[Tensor, Tensor, Tensor]] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.wrong = []

    def on_test_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0):
        kept = sum(len(w[0]) for w in self.wrong)
        if not isinstance(outputs, Tensor) or outputs.ndim != 2 or batch[0].ndim != 4 or kept >= self.max_images:
            return
        pred = outputs.argmax(-1)
        miss = (pred != batch[1]).nonzero().reshape(-1)[: self.max_images - kept]
        self.wrong.append((batch[0][miss].cpu(), pred[miss].cpu(), batch[1][miss].cpu()))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.wrong and drawing(trainer):
            images, preds, targets = (torch.cat(t) for t in zip(*self.wrong, strict=True))
            names = getattr(trainer.datamodule, "class_names", None)
            fig = plots.misclassified_grid_figure(images, preds, targets, names, max_images=self.max_images)
            log_figure(trainer, "test/misclassified", fig)


class ActivationMaps(Callback):
    """``test_activations.png`` after a test of a model with ``block_outputs``: what each block sees, for the first
    ``num_images`` test images (rows)."""

    def __init__(self, num_images: int = 4) -> None:
        self.num_images = num_images
        self.probe: Tensor | None = None

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.probe = None

    def on_test_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0):
        if self.probe is None and hasattr(pl_module, "block_outputs"):
            self.probe = batch[0][: self.num_images]

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.probe is not None and drawing(trainer) and (maps := pl_module.block_outputs(self.probe)):
            log_figure(trainer, "test/activations", plots.activation_maps_figure(self.probe.float(), maps))


class PredictionGrid(Callback):
    """``predictions.png`` after ``predict`` of an image classifier: the first ``max_images`` 28x28 inputs as the
    model saw them (after preprocessing), titled "label (probability)", in sample order (under DDP: global rank 0's
    share)."""

    def __init__(self, max_images: int = 64) -> None:
        self.max_images = max_images
        self.seen: list[tuple[Tensor, Tensor, Tensor]] = []

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen = []

    def on_predict_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0):
        kept = sum(len(s[0]) for s in self.seen)
        if not isinstance(outputs, dict) or not {"class", "probability"} <= outputs.keys() or kept >= self.max_images:
            return
        x = batch[0][: self.max_images - kept]
        if x.ndim != 4 or tuple(x.shape[-2:]) != (28, 28):
            return
        n = len(x)
        self.seen.append((x.detach().float().cpu() * 255, outputs["class"][:n].cpu(), outputs["probability"][:n].cpu()))

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.seen or not drawing(trainer):
            return
        images, classes, probs = (torch.cat(t) for t in zip(*self.seen, strict=True))
        names = getattr(trainer.datamodule, "class_names", None) or [str(i) for i in range(int(classes.max()) + 1)]
        titles = [f"{names[int(c)]} ({float(p):.2f})" for c, p in zip(classes, probs, strict=True)]
        fig = plots.prediction_grid_figure(images, titles, max_images=self.max_images)
        rank_zero_info(f"prediction grid: {log_figure(trainer, 'predictions', fig)}")


class Forecast(Callback):
    """After ``test`` and ``predict`` of a forecaster (``forecast()``, DataModule with ``continuation()``): roll
    the forecast out from the end of the validation data over the test part; ``forecast.png`` and ``forecast.csv``
    (step, time, truth, one_step, rollout). A ``predict`` of the user's series (``data.predict_path``) draws
    that series and the forecast continuing it instead (``forecast.png``; the values are in ``predictions.csv``).
    """

    def __init__(self) -> None:
        self.user_forecast: list[Tensor] = []

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write(trainer, pl_module)

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.user_forecast = []

    def on_predict_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0):
        if isinstance(outputs, dict) and "forecast" in outputs:
            self.user_forecast.append(outputs["forecast"].detach().cpu())

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        series = getattr(trainer.datamodule, "predict_series", None)
        if getattr(trainer.datamodule, "predict_path", None) is None:
            self.write(trainer, pl_module)
        elif series is not None and self.user_forecast and drawing(trainer):
            title = f"{type(pl_module).__name__}: forecast of {Path(trainer.datamodule.predict_path).name}"
            fig = plots.series_forecast_figure(series, self.user_forecast[0][0], title=title)
            rank_zero_info(f"forecast: {log_figure(trainer, 'forecast', fig)}")

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if not hasattr(pl_module, "forecast") or not hasattr(datamodule, "continuation") or not drawing(trainer):
            return
        history, truth, start = datamodule.continuation("test")
        rollout = pl_module.forecast(history, len(truth)).cpu()
        windows = torch.cat([history, truth]).unfold(0, len(history), 1)[:-1]  # true past of every test value
        one_step = pl_module.forecast(windows, 1)[:, 0].cpu()
        time = np.arange(start, start + len(truth))
        fig = plots.forecast_figure(time, truth, one_step, rollout, title=f"{type(pl_module).__name__}: forecast")
        path = log_figure(trainer, "forecast", fig)
        table = np.column_stack([np.arange(1, len(truth) + 1), time, truth, one_step, rollout])
        with atomic_write(path.with_suffix(".csv")) as tmp:
            np.savetxt(tmp, table, "%.7g", ",", header="step,time,truth,one_step,rollout", comments="")
        err = (rollout - truth).abs()
        rank_zero_info(
            f"forecast: {path} and .csv; rollout max |error| vs the series {err[:100].max():.4f} over the first "
            f"{min(100, len(err))} steps, {err.max():.4f} over all {len(err)}"
        )
