"""Figures of a run: saved as PNG in the run directory and sent to TensorBoard and wandb.

    python -m dlbasics.plots lightning_logs/version_3   # learning curves of an existing run

Every figure is built by a pure function returning a matplotlib ``Figure`` (no pyplot state, so
nothing needs a display) and logged with :func:`log_figure`, which writes on global rank 0 only.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from matplotlib.figure import Figure
from torch import Tensor, nn

from dlbasics.runs import run_dir

#: Metrics drawn as learning curves (one panel each, when the run logged them) and their axis labels.
CURVES = {"loss": "loss", "acc": "accuracy", "mse": "MSE"}


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A matplotlib Figure that needs no display (no pyplot state)."""
    return Figure(figsize=(width, height), layout="constrained")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(name, fig, global_step=trainer.global_step, close=False)
            logger.experiment.flush()
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=name, images=[str(path)], step=trainer.global_step)
    return path


def read_epoch_metrics(csv_path: str | Path) -> dict[str, dict[int, float]]:
    """``{"train/loss": {epoch: value}, ...}`` for every ``train/``/``val/`` column of a ``metrics.csv``."""
    curves: dict[str, dict[int, float]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            epoch = row.get("epoch")
            for key, value in row.items():
                if epoch and value and key.startswith(("train/", "val/")):
                    curves.setdefault(key, {})[int(float(epoch))] = float(value)
    return curves


def learning_curves_figure(curves: Mapping[str, Mapping[int, float]], title: str = "") -> Figure:
    """One panel per metric of :data:`CURVES` that was logged: train and val per epoch (1-based)."""
    names = [n for n in CURVES if f"train/{n}" in curves or f"val/{n}" in curves] or ["loss"]
    fig = new_figure(4.5 * len(names), 3.5)
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names, strict=True):
        values = []
        for stage, style in (("train", "-o"), ("val", "--s")):
            points = sorted(curves.get(f"{stage}/{name}", {}).items())
            if points:
                ax.plot([e + 1 for e, _ in points], [v for _, v in points], style, ms=3, label=stage)
                values += [v for _, v in points]
        if name == "loss" and values and min(values) > 0 and max(values) / min(values) > 100:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=CURVES[name], title=CURVES[name])
        ax.xaxis.get_major_locator().set_params(integer=True)
        if values:
            ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def save_learning_curves(run_dir: str | Path) -> Path:
    """Draw ``<run_dir>/metrics.csv`` as ``<run_dir>/learning_curves.png`` and return the PNG's path."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        raise FileNotFoundError(f"{metrics} does not exist: pass a run directory such as lightning_logs/version_0")
    path = run_dir / "learning_curves.png"
    learning_curves_figure(read_epoch_metrics(metrics), title=run_dir.name).savefig(path, dpi=100)
    return path


@torch.no_grad()
def fitted_curve_figure(x: Tensor, y: Tensor, predict: Callable[[Tensor], Tensor], max_points: int = 1000) -> Figure:
    """A regression's fit: the curve over the data for 1-D inputs, predicted vs true ``y`` otherwise."""
    x, y = x[:max_points], y[:max_points].reshape(-1).float().cpu()
    fig = new_figure(5.0, 4.0)
    ax = fig.add_subplot()
    if x.shape[1] == 1:
        grid = torch.linspace(float(x.min()), float(x.max()), 200, device=x.device, dtype=x.dtype).unsqueeze(1)
        ax.scatter(x[:, 0].float().cpu(), y, s=6, alpha=0.5, label="data")
        ax.plot(grid[:, 0].float().cpu(), predict(grid).reshape(-1).float().cpu(), color="C1", lw=2, label="fitted")
        ax.set(xlabel="x", ylabel="y", title="fitted curve vs data")
    else:
        pred = predict(x).reshape(-1).float().cpu()
        ax.scatter(y, pred, s=6, alpha=0.5, label="samples")
        low, high = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        ax.plot([low, high], [low, high], color="C1", lw=1, label="predicted = true")
        ax.set(xlabel="true y", ylabel="predicted y", title="predictions vs data")
    ax.legend()
    return fig


def _show(ax, image: Tensor, title: str) -> None:
    """Draw a ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)`` tensor (gray or RGB, rescaled to its own range)."""
    image = image.detach().float().cpu()
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 3:
        image = image.permute(1, 2, 0)
        image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
    ax.imshow(image.numpy(), cmap="gray")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def confusion_matrix_figure(matrix: Tensor, class_names: Sequence[str]) -> Figure:
    """Counts of (true, predicted) pairs, annotated, true classes as rows."""
    fig = new_figure(7.0, 6.0)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    for i, row in enumerate(matrix.tolist()):
        for j, count in enumerate(row):
            color = "white" if count > matrix.max() / 2 else "black"
            ax.text(j, i, count, ha="center", va="center", fontsize=7, color=color)
    ticks = range(len(class_names))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title="test confusion matrix")
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    return fig


def misclassified_grid_figure(
    images: Tensor, preds: Tensor, targets: Tensor, class_names: Sequence[str] | None = None, max_images: int = 25
) -> Figure:
    """A grid of the first ``max_images`` images with ``preds != targets``, titled "predicted (true …)"."""
    wrong = (preds.reshape(-1) != targets.reshape(-1)).nonzero().reshape(-1)[:max_images].cpu()
    name = (lambda i: class_names[i]) if class_names else str
    cols = max(1, math.ceil(math.sqrt(len(wrong))))
    rows = max(1, math.ceil(len(wrong) / cols))
    fig = new_figure(1.6 * cols + 0.4, 1.7 * rows + 0.4)
    if len(wrong) == 0:
        fig.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        return fig
    for ax, i in zip(fig.subplots(rows, cols, squeeze=False).flat, wrong.tolist(), strict=False):
        _show(ax, images[i], f"{name(int(preds[i]))} (true {name(int(targets[i]))})")
    for ax in fig.axes[len(wrong) :]:
        ax.set_axis_off()
    fig.suptitle("misclassified: predicted (true)")
    return fig


def activation_maps_figure(images: Tensor, maps_per_block: Sequence[Tensor] | Mapping[str, Tensor]) -> Figure:
    """Each image (row) beside every block's activations summed over channels, as grayscale images.

    Args:
        images: ``(N, C, H, W)`` inputs.
        maps_per_block: Per block, its ``(N, C_b, H_b, W_b)`` output (or ``(N, H_b, W_b)`` already summed);
            a mapping gives the column titles.
    """
    if not isinstance(maps_per_block, Mapping):
        maps_per_block = {f"block {i + 1}": m for i, m in enumerate(maps_per_block)}
    columns = {"input": images, **{k: m.sum(dim=1) if m.ndim == 4 else m for k, m in maps_per_block.items()}}
    fig = new_figure(1.8 * len(columns), 1.8 * len(images) + 0.3)
    axes = fig.subplots(len(images), len(columns), squeeze=False)
    for row in range(len(images)):
        for ax, (title, maps) in zip(axes[row], columns.items(), strict=True):
            _show(ax, maps[row], title if row == 0 else "")
    return fig


@torch.no_grad()
def block_outputs(model: nn.Module, blocks: Sequence[nn.Module], x: Tensor) -> list[Tensor]:
    """Run ``model(x)`` and return what each of ``blocks`` (submodules of ``model``) produced."""
    outputs: dict[int, Tensor] = {}

    def keep(index: int) -> Callable:
        return lambda _module, _inputs, out: outputs.__setitem__(index, out.detach())

    handles = [block.register_forward_hook(keep(i)) for i, block in enumerate(blocks)]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return [outputs[i] for i in range(len(blocks))]


def main(argv: list[str] | None = None) -> None:
    """``python -m dlbasics.plots RUN_DIR…``: write ``learning_curves.png`` into each run directory."""
    parser = argparse.ArgumentParser(prog="python -m dlbasics.plots", description=main.__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories, e.g. lightning_logs/version_3")
    args = parser.parse_args(argv)
    try:
        for run_dir in args.run_dirs:
            print(save_learning_curves(run_dir))
    except (OSError, ValueError) as err:
        print(f"dlbasics.plots: error: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
