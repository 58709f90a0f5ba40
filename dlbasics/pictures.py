"""The pictures of a run, one callback each: saved as PNG in the run directory and sent to TensorBoard and wandb.

    dlbasics fit --config configs/fashion_mnist_cnn.yaml   # learning curves; after the test, the test pictures

Models compute and expose what a picture needs (``closed_form()``, ``test_confusion``, ``block_outputs()``,
``forecast()``, ``predict_step``'s classes and probabilities); these callbacks draw it, on global rank 0 only,
and skip ``fast_dev_run`` smoke tests. Each is a default entry of ``trainer.callbacks`` (see ``dlbasics fit
--print_config``) and does nothing for a model that lacks what it draws, so the same list serves every
experiment; drop one by listing the others in YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from torch import Tensor

from dlbasics import plots
from dlbasics.runs import atomic_write, metrics_rows, run_dir


def log_figure(trainer: L.Trainer, name: str, fig: Figure) -> Path | None:
    """Save ``fig`` as ``<run dir>/<name>.png`` and log it to every logger that shows images.

    Only global rank 0 writes; other ranks, and ``fast_dev_run`` smoke tests, return ``None``. ``name`` may
    hold ``/`` (e.g. ``test/confusion_matrix``): the PNG goes to ``<run dir>/test_confusion_matrix.png``.

    Returns:
        The PNG's path on rank 0.
    """
    if not trainer.is_global_zero or trainer.fast_dev_run:
        return None
    path = run_dir(trainer) / f"{name.replace('/', '_')}.png"  # trainer.log_dir is a collective
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(name, fig, global_step=trainer.global_step, close=False)
            logger.experiment.flush()
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=name, images=[str(path)], step=trainer.global_step)
    return path


def _drawing(trainer: L.Trainer) -> bool:
    return trainer.is_global_zero and not trainer.fast_dev_run


def _class_names(trainer: L.Trainer, n: int) -> list[str]:
    names = getattr(trainer.datamodule, "class_names", None)
    return list(names) if names and len(names) == n else [str(i) for i in range(n)]


class LearningCurves(Callback):
    """At the end of fit, ``learning_curves.png`` from ``metrics.csv``: the training loss every logged step (so a
    one-epoch run has a curve), validation and accuracies per epoch.

    The mean training loss of every ``log_every_n_steps`` steps is summed on the loss's device and logged once per
    epoch as ``train/loss_step`` (one host read per epoch, not per step), on the scale of ``train/loss``.
    """

    def __init__(self) -> None:
        self.steps: list[tuple[int, Tensor]] = []
        self.total: Tensor | None = None
        self.count = 0

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None or not _drawing(trainer):
            return
        loss = getattr(pl_module, "reported_loss", lambda value: value)(loss.detach()).float()
        self.total, self.count = loss if self.total is None else self.total + loss, self.count + 1
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self.steps.append((trainer.global_step, self.total / self.count))
            self.total, self.count = None, 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.steps:
            values = torch.stack([value for _, value in self.steps]).tolist()
            for logger in trainer.loggers:
                for (step, _), value in zip(self.steps, values, strict=True):
                    logger.log_metrics({"train/loss_step": value}, step=step)
            self.steps = []

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        csv_logger = next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
        if csv_logger is None or not _drawing(trainer):
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


class ConfusionMatrix(Callback):
    """``test_confusion_matrix.png`` after a test: the model's ``test_confusion`` metric, drawn by torchmetrics."""

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metric = getattr(pl_module, "test_confusion", None)
        if metric is None:
            return
        matrix = metric.compute()  # every rank takes part in the sync
        if _drawing(trainer):
            fig = plots.new_figure(7.0, 6.0)
            ax = fig.add_subplot()
            metric.plot(val=matrix, ax=ax, labels=_class_names(trainer, len(matrix)))
            ax.set_title("test confusion matrix (rows: true, columns: predicted)")
            log_figure(trainer, "test/confusion_matrix", fig)


class MisclassifiedImages(Callback):
    """``test_misclassified.png`` after a test of an image classifier: a grid titled "predicted (true …)".

    Args:
        max_images: Misclassified images kept for the grid.
    """

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
        if self.wrong and _drawing(trainer):
            images, preds, targets = (torch.cat(t) for t in zip(*self.wrong, strict=True))
            names = getattr(trainer.datamodule, "class_names", None)
            log_figure(trainer, "test/misclassified", plots.misclassified_grid_figure(images, preds, targets, names))


class ActivationMaps(Callback):
    """``test_activations.png`` after a test of a model with ``block_outputs``: what each block sees.

    Args:
        num_images: Test images shown (rows).
    """

    def __init__(self, num_images: int = 4) -> None:
        self.num_images = num_images
        self.probe: Tensor | None = None

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.probe = None

    def on_test_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0):
        if self.probe is None and hasattr(pl_module, "block_outputs"):
            self.probe = batch[0][: self.num_images]

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.probe is None or not _drawing(trainer):
            return
        if maps := pl_module.block_outputs(self.probe):
            log_figure(trainer, "test/activations", plots.activation_maps_figure(self.probe.float(), maps))


class ActivationHistograms(Callback):
    """``activation_histograms.png`` at the end of fit, for models with ``hidden_activations`` (the MLPs): each
    hidden layer's activations on the first training batch, at the start of training and at the end (the fish
    book's figures for weight initialization: collapsed, saturated or spread).

    Args:
        max_samples: Images of the first batch used.
    """

    RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, 2.0), "leaky_relu": (-0.1, 2.0)}

    def __init__(self, max_samples: int = 1000) -> None:
        self.max_samples = max_samples
        self.probe: Tensor | None = None
        self.start: list[Tensor] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.probe, self.start = None, []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.probe is None and hasattr(pl_module, "hidden_activations") and _drawing(trainer):
            self.probe = batch[0][: self.max_samples].detach()
            self.start = self.activations(pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.probe is None or not _drawing(trainer):
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


class PredictionGrid(Callback):
    """``predictions.png`` after ``predict`` of an image classifier: the 28x28 inputs as the model saw them
    (after preprocessing), titled "label (probability)", in sample order (under DDP: global rank 0's share).

    Args:
        max_images: Images drawn (the first ones).
    """

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
        if not self.seen or not _drawing(trainer):
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
        elif series is not None and self.user_forecast and _drawing(trainer):
            title = f"{type(pl_module).__name__}: forecast of {Path(trainer.datamodule.predict_path).name}"
            fig = plots.series_forecast_figure(series, self.user_forecast[0][0], title=title)
            rank_zero_info(f"forecast: {log_figure(trainer, 'forecast', fig)}")

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if not hasattr(pl_module, "forecast") or not hasattr(datamodule, "continuation") or not _drawing(trainer):
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


#: The picture callbacks, in the order of the default ``trainer.callbacks``.
PICTURES = (
    LearningCurves, FittedCurve, ConfusionMatrix, MisclassifiedImages, ActivationMaps, Forecast, PredictionGrid,
    ActivationHistograms,
)  # fmt: skip
