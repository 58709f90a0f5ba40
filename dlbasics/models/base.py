"""What every dlbasics LightningModule shares: one step for all stages, metrics per stage, optimizers.

    dlbasics fit --config configs/rule_classifier.yaml   # any experiment runs through it

Subclasses implement ``forward`` and ``compute_loss``; classifiers pass a torchmetrics ``MetricCollection`` to
:class:`Experiment`. Optimizer and schedule are injected the LightningCLI way (``optimizer: OptimizerCallable``,
``lr_scheduler: LRSchedulerCallable | None``), e.g. in YAML::

    optimizer: {class_path: torch.optim.Adam, init_args: {lr: 0.01}}
    lr_scheduler: {class_path: torch.optim.lr_scheduler.OneCycleLR, init_args: {max_lr: 0.01}}

Models compute; they read and write no files. Pictures come from the callbacks in :mod:`dlbasics.pictures`, the
user's files from :mod:`dlbasics.use`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import ConfusionMatrix, MeanMetric, MetricCollection
from torchmetrics import classification as tmc

from dlbasics import trust
from dlbasics.models.schedules import run_length_kwargs


def check_positive(**values: float) -> None:
    """Raise a one-line ``ValueError`` for the first value that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def classification_metrics(num_classes: int) -> MetricCollection:
    """Accuracy (the plain fraction correct, ``average="micro"``) plus F1, precision and recall, macro-averaged so
    that every class counts the same (binary metrics when ``num_classes == 2``)."""
    if num_classes == 2:
        metrics = [tmc.BinaryAccuracy(), tmc.BinaryF1Score(), tmc.BinaryPrecision(), tmc.BinaryRecall()]
    else:
        kw: dict[str, Any] = {"num_classes": num_classes, "average": "macro"}
        accuracy = tmc.MulticlassAccuracy(num_classes=num_classes, average="micro")
        metrics = [accuracy, tmc.MulticlassF1Score(**kw), tmc.MulticlassPrecision(**kw), tmc.MulticlassRecall(**kw)]
    return MetricCollection(dict(zip(("acc", "f1", "precision", "recall"), metrics, strict=True)))


class Experiment(L.LightningModule, ABC):
    """Base LightningModule: ``_shared_step`` for train/val/test, exact per-epoch loss means, optimizers.

    Args:
        optimizer: Builds the optimizer from the parameters (any ``torch.optim`` class, with its ``init_args``).
        lr_scheduler: Builds a learning-rate schedule from the optimizer, or ``None``. Schedules whose length is a
            number of steps (``OneCycleLR``'s ``total_steps``, :class:`CosineAnnealingLR`'s ``T_max``) get the
            run's step count when it is left out and are stepped after every optimizer step; others (``StepLR``,
            ``ExponentialLR``, …) once per epoch.
        metrics: For subclasses (not a config setting): the metrics each stage computes on its own copy.
    """

    def __init__(
        self,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        metrics: MetricCollection | None = None,
    ):
        super().__init__()
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        # Per stage: the mean loss (MeanMetric weights every sample equally and syncs exactly across DDP ranks) and
        # its own copy of the metrics, logged as {stage}/... Both are updated once per epoch with what the stage's
        # steps kept: torchmetrics' updates cost ~0.5 ms a step, more than a tiny model's forward and backward.
        # In float64: one epoch's sum of thousands of float32 losses keeps every digit the logs show.
        self.train_loss, self.val_loss, self.test_loss = (MeanMetric().set_dtype(torch.float64) for _ in range(3))
        self.kept: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {"train": [], "val": [], "test": []}
        self.train_metrics = metrics.clone(prefix="train/") if metrics else None
        self.val_metrics = metrics.clone(prefix="val/") if metrics else None
        self.test_metrics = metrics.clone(prefix="test/") if metrics else None

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """The model's output for a batch of inputs."""

    @abstractmethod
    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The training objective for a batch."""

    def metric_preds(self, output: Tensor) -> Tensor:
        """Turn ``forward``'s output into what the metrics expect (e.g. probabilities)."""
        return output

    def reported_loss(self, loss: Tensor) -> Tensor:
        """The loss as logged (``{stage}/loss``), on the same scale for every stage; the objective by default."""
        return loss

    def _shared_step(self, batch: tuple[Tensor, ...], stage: str) -> tuple[Tensor, Tensor]:
        """Loss and output of a batch; keeps the loss, the output and the target for the stage's epoch metrics."""
        output, y = self(batch[0]), batch[1]
        loss = self.compute_loss(output, y)
        self.kept[stage].append((self.reported_loss(loss.detach()), output.detach(), y))
        return loss, output.detach()

    def _log_epoch(self, stage: str) -> None:
        # Logging metric objects once per epoch instead of on every step keeps Lightning's per-step
        # bookkeeping out of the hot loop; Lightning computes (synced across ranks) and resets them.
        if not self.kept[stage]:
            return
        mean_loss, metrics = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_metrics")
        losses, outputs, targets = zip(*self.kept[stage], strict=True)
        self.kept[stage] = []
        weights = torch.tensor([len(y) for y in targets], device=losses[0].device)
        mean_loss.update(torch.stack(losses).double(), weights.double())
        self.log(f"{stage}/loss", mean_loss, prog_bar=True)
        if metrics is not None:
            metrics.update(self.metric_preds(torch.cat(outputs)), torch.cat(targets))
            self.log_dict(metrics, prog_bar=stage != "train")

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")[0]

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """The batch's output (callbacks that draw test pictures receive it in ``on_test_batch_end``)."""
        return self._shared_step(batch, "test")[1]

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        """Predictions for a batch as named columns (see :class:`dlbasics.callbacks.PredictionWriter`)."""
        return {"prediction": self(batch[0]).float()}  # float32 even under bf16 autocast

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # torch's RNG states (dropout, augmentation) so that a resumed run continues bit for bit.
        # Plain tensors only: LightningCLI reads checkpoints with torch.load(weights_only=True).
        checkpoint["rng_states"] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["dlbasics_format_version"] = trust.FORMAT_VERSION
        checkpoint["dlbasics_model"] = trust.full_name(type(self))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if states and self._trainer is not None and self.trainer.training:
            torch.set_rng_state(states["cpu"])
            if "cuda" in states and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(states["cuda"])

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
        """Lightning's ``load_from_checkpoint``, after :func:`dlbasics.trust.check`: a checkpoint of an older dlbasics
        or of another model, or one naming code, is refused with one line before anything in it is imported.

        A checkpoint holding Python objects (a model built in Python keeps ``optimizer=torch.optim.Adam``) cannot
        be read as data: pass ``weights_only=False`` to trust it, as for ``torch.load``.
        """
        if isinstance(checkpoint_path, str | Path) and kwargs.get("weights_only") is not False:
            path = Path(checkpoint_path)
            trust.check(trust.read(path), path, cls, {cls.__module__.split(".")[0]})
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def inference(self, x: Tensor) -> Tensor:
        """Raw input → what an exported model returns (:mod:`dlbasics.use.onnx`): here ``forward``'s output."""
        return self(x)

    def example_input(self, batch: int = 1) -> Tensor:
        """A raw input of ``batch`` rows that :meth:`inference` takes: uniform ``(batch, num_features)`` float32,
        drawn from a fixed seed of its own, so the global random state is left alone."""
        return torch.rand(batch, self.hparams.num_features, generator=torch.Generator().manual_seed(0))

    def configure_optimizers(self) -> Any:
        try:  # torch's own check of the settings (lr < 0 …), as one line naming the setting
            optimizer = self.optimizer(self.parameters())
        except (ValueError, TypeError) as err:
            raise ValueError(f"model.optimizer: {err}") from None
        if self.lr_scheduler is None:
            return optimizer
        fill = run_length_kwargs(self.lr_scheduler, int(self.trainer.estimated_stepping_batches))
        scheduler = self.lr_scheduler(optimizer, **fill)
        counted_in_steps = fill or isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
        interval = "step" if counted_in_steps else "epoch"
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}


class Classifier(Experiment):
    """Base for classifiers: cross-entropy on logits (binary: one logit, BCE-with-logits).

    Args:
        num_classes: Classes (2: binary, one logit).
    """

    def __init__(
        self,
        num_classes: int,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        super().__init__(optimizer, lr_scheduler, classification_metrics(num_classes))
        self.binary = num_classes == 2
        task = "binary" if self.binary else "multiclass"
        #: The test confusion matrix (true classes as rows), summed over ranks; drawn by a callback.
        self.test_confusion = ConfusionMatrix(task=task, num_classes=num_classes)

    def on_test_epoch_start(self) -> None:
        self.test_confusion.reset()

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        output = super().test_step(batch, batch_idx)
        self.test_confusion.update(self.metric_preds(output), batch[1])
        return output

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.binary:
            return nn.functional.binary_cross_entropy_with_logits(output, target.float())
        return nn.functional.cross_entropy(output, target)

    def metric_preds(self, output: Tensor) -> Tensor:
        # Binary metrics get probabilities: torchmetrics only applies sigmoid to values outside [0, 1].
        return output.sigmoid() if self.binary else output

    def inference(self, x: Tensor) -> Tensor:
        """Probabilities: of class 1 for a binary classifier (``forward``'s shape, one per row), else softmax."""
        output = self(x).float()  # under bf16 autocast the logits are bf16: probabilities in float32
        return output.sigmoid() if self.binary else output.softmax(dim=-1)

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        prob = self.inference(batch[0])
        if self.binary:
            return {"class": (prob > 0.5).long(), "probability": prob}
        prob, cls = prob.max(dim=-1)
        return {"class": cls, "probability": prob}


def check_input(module: nn.Module, x: Tensor, *trailing: int) -> None:
    """Raise a one-line ``ValueError`` unless ``x`` has shape ``(N, *trailing)``."""
    if tuple(x.shape[1:]) != trailing:
        expected = ", ".join(["N", *map(str, trailing)])
        raise ValueError(f"{type(module).__name__} expects input of shape ({expected}), got {tuple(x.shape)}")
