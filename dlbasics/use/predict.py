"""Predict the user's files with a trained model: ``predictions.csv`` from the CLI, the same table from Python.

    dlbasics predict --config mnist_cnn --ckpt_path best --data.predict_path my_digits/

One path from a file to a prediction: the files are read by :mod:`dlbasics.use.files` (images made MNIST-like in the
style the checkpoint records), the model's own ``predict_step`` runs on them, and the columns are named by the
functions below, which the DataModules also use for ``dlbasics predict``. :class:`PredictionWriter` is the CLI's
callback that writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from dlbasics.runs import run_dir, write_csv
from dlbasics.use.files import load_images, read_features, read_series
from dlbasics.use.images import to_pixels


class Predictions(dict):
    """What :func:`predict` returns: ``{column: values}`` of ``predictions.csv`` (e.g. ``file``, ``class``, ``label``,
    ``probability``); ``inputs``: the images (uint8 ``(N, 28, 28)``), the window forecast from, or the feature rows."""

    def __init__(self, table: dict[str, list], inputs: Tensor) -> None:
        super().__init__(table)
        self.inputs = inputs


def load(path: str | Path, map_location: str = "cpu") -> Any:
    """The model of a dlbasics checkpoint, in eval mode, after the checks of :func:`dlbasics.trust.check`."""
    import dlbasics.models  # noqa: F401  (the classes a checkpoint may name must be imported, not by the file)
    from dlbasics import trust

    checkpoint = trust.read(path)
    cls = trust.loaded(trust.model_name(checkpoint) or "")
    if not isinstance(cls, type) or not issubclass(cls, L.LightningModule):
        raise ValueError(f"{path} names no dlbasics model ({trust.model_name(checkpoint)!r}): pass a dlbasics .ckpt")
    return cls.load_from_checkpoint(path, map_location=map_location).eval()


@torch.no_grad()
def predict(model: Any, source: Any, steps: int = 50, style: str | None = None, batch_size: int = 1000) -> Predictions:
    """Predict ``source`` with ``model`` as ``dlbasics predict --data.predict_path`` does (same columns, same numbers).

    Args:
        model: A dlbasics model (e.g. from :func:`load`).
        source: A path (image file, folder of images, ``.npy``, CSV) or an array: uint8 ``(N, 28, 28)`` images,
            a series' values, or feature rows.
        steps: Values to forecast after a series (sine models).
        style: Image preprocessing, ``mnist`` or ``fashion``; ``None``: the one the checkpoint records.
    """
    model.eval()
    is_path = isinstance(source, str | Path)
    if hasattr(model, "input_style"):
        images, names = load_images(source, style or model.input_style) if is_path else _images(source)
        columns = _batched(model, to_pixels(images), batch_size)
        return Predictions(image_table(torch.arange(len(images)), columns, model.hparams.class_names, names), images)
    if hasattr(model, "forecast"):
        series = read_series(source) if is_path else torch.as_tensor(source, dtype=torch.float32).reshape(-1)
        window = series[-model.hparams.n_steps :].reshape(1, -1, 1)
        forecast = model.forecast(window, steps).reshape(-1).float().tolist()
        return Predictions({"step": list(range(1, len(forecast) + 1)), "forecast": forecast}, window[0, :, 0])
    rows = read_features(source, model.hparams.num_features) if is_path else torch.as_tensor(source).float()
    columns = _batched(model, rows, batch_size)
    return Predictions(default_table(torch.arange(len(rows)), columns), rows)


def _images(array: Any) -> tuple[Tensor, list[str]]:
    images = torch.as_tensor(np.asarray(array))
    images = images.unsqueeze(0) if images.ndim == 2 else images
    if images.dtype != torch.uint8 or images.ndim != 3 or tuple(images.shape[1:]) != (28, 28):
        raise ValueError(f"images must be uint8 (N, 28, 28) or (28, 28) in MNIST form, got {images.dtype} "
                         f"{tuple(images.shape)}: pass files, or arrays light on black")  # fmt: skip
    return images, [f"[{i}]" for i in range(len(images))]


def _batched(model: Any, inputs: Tensor, batch_size: int) -> dict[str, Tensor]:
    outputs = [model.predict_step((chunk.to(model.device),), i) for i, chunk in enumerate(inputs.split(batch_size))]
    return {key: torch.cat([o[key].cpu() for o in outputs]) for key in outputs[0]}


def image_table(
    index: Tensor, columns: dict[str, Tensor], class_names: list[str] | None, files: list[str] | None = None
) -> dict[str, list]:
    """``index[, file], class, label, probability`` of an image classifier's predictions."""
    classes = columns["class"].long().tolist()
    names = class_names or [str(c) for c in range(max(classes, default=0) + 1)]
    table: dict[str, list] = {"index": index.long().tolist()}
    if files is not None:
        table["file"] = [files[i] for i in table["index"]]
    return table | {"class": classes, "label": [names[c] for c in classes],
                    "probability": columns["probability"].float().tolist()}  # fmt: skip


def default_table(index: Tensor, columns: dict[str, Tensor]) -> dict[str, list]:
    """``index`` then one column per key (``key_0 … key_{K-1}`` for ``(N, K)`` tensors)."""
    table: dict[str, list] = {"index": index.long().tolist()}
    for key, value in columns.items():
        value = value.reshape(len(value), -1)
        names = [key] if value.shape[1] == 1 else [f"{key}_{j}" for j in range(value.shape[1])]
        table |= {name: col.tolist() for name, col in zip(names, value.T, strict=True)}
    return table


def write_table(path: Path, table: dict[str, list]) -> None:
    """Write ``{column: values}`` as a CSV, atomically: whole numbers as integers, other floats with 6 digits."""

    def fmt(v: Any) -> str:
        if isinstance(v, str):
            return v
        return str(int(v)) if float(v).is_integer() else f"{float(v):.6g}"

    rows = [{k: fmt(v) for k, v in zip(table, row, strict=True)} for row in zip(*table.values(), strict=True)]
    write_csv(path, rows, list(table))


class PredictionWriter(BasePredictionWriter):
    """Write ``predict_step``'s dict of tensors as one CSV, ``<run dir>/<filename>``, in sample order.

    Each rank keeps its own predictions; at the end of the epoch they are gathered on global rank 0, put back in
    dataset order and written once, so a DDP predict produces one combined file. The DataModule names the
    columns with ``prediction_table(index, columns)`` when it has one (files and labels, a forecast's steps);
    otherwise :func:`default_table`.
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename

    def write_on_epoch_end(self, trainer, pl_module, predictions: Any, batch_indices: Any) -> None:
        batches = [p if isinstance(p, dict) else {"prediction": p} for p in predictions]
        columns = {k: torch.cat([b[k].detach().cpu() for b in batches]) for k in batches[0]} if batches else {}
        loader = trainer.predict_dataloaders
        n = len(next(iter(columns.values()))) if columns else 0
        indices = loader.indices()[:n] if hasattr(loader, "indices") else torch.arange(n)
        shards: list[Any] = [(indices, columns)]
        if trainer.world_size > 1:
            shards = [None] * trainer.world_size
            torch.distributed.all_gather_object(shards, (indices, columns))
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
        path = run_dir(trainer) / self.filename
        write_table(path, table)
        print(f"predictions: {path}")
