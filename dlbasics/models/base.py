"""What every dlbasics LightningModule shares: one step for all stages, metrics per stage, optimizers.

    dlbasics fit --config configs/rule_classifier.yaml   # any experiment runs through it

Subclasses implement ``forward`` and ``compute_loss``; classifiers pass a torchmetrics
``MetricCollection`` to :meth:`Experiment.init_metrics`. Optimizer and schedule come from the
hyperparameters ``lr``, ``optimizer``, ``momentum``, ``weight_decay`` and ``scheduler`` that each
subclass declares in its ``__init__`` signature (the signature is the config schema).
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import ConfusionMatrix, MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

STAGES = ("train", "val", "test")
OptimizerName = Literal["sgd", "adam", "adamw", "adadelta"]
SchedulerName = Literal["none", "onecycle", "cosine", "step"]
_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adadelta": torch.optim.Adadelta,
}


def check_positive(**values: float) -> None:
    """Raise a one-line ``ValueError`` for the first value that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def classification_metrics(num_classes: int) -> MetricCollection:
    """Accuracy plus macro-averaged F1, precision and recall (binary metrics when ``num_classes == 2``).

    Accuracy is the plain fraction of correct predictions (``average="micro"``); the others are
    macro averages so that every class counts the same.
    """
    if num_classes == 2:
        return MetricCollection(
            {
                "acc": BinaryAccuracy(),
                "f1": BinaryF1Score(),
                "precision": BinaryPrecision(),
                "recall": BinaryRecall(),
            }
        )
    kw: dict[str, Any] = {"num_classes": num_classes, "average": "macro"}
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes=num_classes, average="micro"),
            "f1": MulticlassF1Score(**kw),
            "precision": MulticlassPrecision(**kw),
            "recall": MulticlassRecall(**kw),
        }
    )


class Experiment(L.LightningModule):
    """Base LightningModule: ``_shared_step`` for train/val/test, exact per-epoch loss means, optimizers."""

    #: Metric that ModelCheckpoint/EarlyStopping should watch for this experiment, and its mode.
    monitor: tuple[str, str] = ("val/loss", "min")

    def __init__(self) -> None:
        super().__init__()
        # MeanMetric weights every sample equally and syncs exactly across DDP ranks.
        for stage in STAGES:
            setattr(self, f"{stage}_loss", MeanMetric())
        self.has_metrics = False

    def init_metrics(self, collection: MetricCollection) -> None:
        """Give each stage its own copy of ``collection`` (``self.{stage}_metrics``), logged as ``{stage}/…``."""
        for stage in STAGES:
            setattr(self, f"{stage}_metrics", collection.clone(prefix=f"{stage}/"))
        self.has_metrics = True

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The training objective for a batch; subclasses override."""
        raise NotImplementedError

    def metric_preds(self, output: Tensor) -> Tensor:
        """Turn ``forward``'s output into what the metrics expect (e.g. probabilities)."""
        return output

    def _shared_step(self, batch: tuple[Tensor, ...], stage: str) -> Tensor:
        """Loss of a batch; updates the stage's metric objects (logged once per epoch, see ``_log_epoch``)."""
        x, y = batch[0], batch[1]
        output = self(x)
        loss = self.compute_loss(output, y)
        getattr(self, f"{stage}_loss").update(loss.detach(), len(y))
        if self.has_metrics:
            getattr(self, f"{stage}_metrics").update(self.metric_preds(output.detach()), y)
        if stage == "test":
            self.record_test_batch(x, y, output.detach())
        return loss

    def record_test_batch(self, x: Tensor, y: Tensor, output: Tensor) -> None:
        """Hook for test-only bookkeeping (confusion matrix, example images); nothing by default."""

    def _log_epoch(self, stage: str) -> None:
        # Logging metric objects once per epoch instead of on every step keeps Lightning's per-step
        # bookkeeping out of the hot loop; Lightning computes (synced across ranks) and resets them.
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), prog_bar=True)
        if self.has_metrics:
            self.log_dict(getattr(self, f"{stage}_metrics"), prog_bar=stage != "train")

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        """Predictions for a batch as named columns (see :class:`dlbasics.callbacks.PredictionWriter`)."""
        return {"prediction": self(batch[0])}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # torch's RNG states (dropout, augmentation) so that a resumed run continues bit for bit.
        # Plain tensors only: LightningCLI reads checkpoints with torch.load(weights_only=True).
        checkpoint["rng_states"] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if states and self._trainer is not None and self.trainer.training:
            torch.set_rng_state(states["cpu"])
            if "cuda" in states and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(states["cuda"])

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        name = hp.get("optimizer", "sgd")
        kwargs: dict[str, Any] = {"lr": hp.lr, "weight_decay": hp.get("weight_decay", 0.0)}
        if name == "sgd":
            kwargs["momentum"] = hp.get("momentum", 0.0)
        optimizer = _OPTIMIZERS[name](self.parameters(), **kwargs)
        scheduler = hp.get("scheduler", "none")
        if scheduler == "none":
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        if scheduler == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=steps)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)  # per epoch
        return {"optimizer": optimizer, "lr_scheduler": sched}


class Classifier(Experiment):
    """Base for classifiers: cross-entropy on logits (binary: one logit, BCE-with-logits)."""

    monitor = ("val/acc", "max")

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.binary = num_classes == 2
        self.init_metrics(classification_metrics(num_classes))
        task = "binary" if self.binary else "multiclass"
        self.test_confusion = ConfusionMatrix(task=task, num_classes=num_classes)

    def record_test_batch(self, x: Tensor, y: Tensor, output: Tensor) -> None:
        self.test_confusion.update(self.metric_preds(output), y)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        matrix = self.test_confusion.compute().cpu()  # summed over all ranks
        self.test_confusion.reset()
        if self.trainer.is_global_zero and not self.trainer.fast_dev_run:
            from dlbasics.plots import confusion_matrix_figure, log_figure

            names = getattr(self.trainer.datamodule, "class_names", None) or [str(i) for i in range(len(matrix))]
            log_figure(self.trainer, "test/confusion_matrix", confusion_matrix_figure(matrix, names))

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.binary:
            return nn.functional.binary_cross_entropy_with_logits(output, target.float())
        return nn.functional.cross_entropy(output, target)

    def metric_preds(self, output: Tensor) -> Tensor:
        # Binary metrics get probabilities: torchmetrics only applies sigmoid to values outside [0, 1].
        return output.sigmoid() if self.binary else output

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        output = self(batch[0])
        if self.binary:
            prob = output.sigmoid()
            return {"class": (prob > 0.5).long(), "probability": prob}
        prob, cls = output.softmax(dim=-1).max(dim=-1)
        return {"class": cls, "probability": prob}


def check_input(module: nn.Module, x: Tensor, *trailing: int) -> None:
    """Raise a one-line ``ValueError`` unless ``x`` has shape ``(N, *trailing)``."""
    if x.ndim != len(trailing) + 1 or tuple(x.shape[1:]) != trailing:
        expected = ", ".join(["N", *map(str, trailing)])
        raise ValueError(f"{type(module).__name__} expects input of shape ({expected}), got {tuple(x.shape)}")
