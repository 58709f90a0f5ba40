"""Figures of a run: saved as PNG in the run directory and sent to TensorBoard and wandb.

    python -m dlbasics.plots lightning_logs/version_3   # learning curves of an existing run

Every figure is built by a pure function returning a matplotlib ``Figure`` (no pyplot state, so
nothing needs a display); the callbacks of :mod:`dlbasics.pictures` save and log them. No Lightning import.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from dlbasics.runs import atomic_write, metrics_rows

#: Metrics drawn as learning curves (one panel each, when the run logged them) and their axis labels.
CURVES = {"loss": "loss", "acc": "accuracy", "mse": "MSE"}


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def curve_points(rows: Sequence[Mapping[str, float]]) -> dict[str, list[tuple[float, float]]]:
    """``{metric: [(epochs, value), …]}`` of ``metrics.csv``'s rows, on one axis counted in epochs.

    Epoch metrics sit at the end of their epoch (epoch ``e`` at ``e + 1``); ``train/loss_step`` (logged every few
    steps) at its step divided by the steps of an epoch, so a one-epoch run still draws a curve.
    """
    ends: dict[int, float] = {}
    for row in rows:
        if "epoch" in row and "step" in row:
            ends[int(row["epoch"])] = max(ends.get(int(row["epoch"]), 0.0), row["step"])
    # an epoch-end row carries the index of its last step: epoch e ends at step (e + 1) * per_epoch - 1
    per_epoch = (ends[min(ends)] + 1) / (min(ends) + 1) if ends else None
    points: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if "train/loss_step" in row and per_epoch:
            points.setdefault("train/loss_step", []).append((row["step"] / per_epoch, row["train/loss_step"]))
        if "epoch" in row:
            for key, value in row.items():
                if key.startswith(("train/", "val/")) and key != "train/loss_step":
                    points.setdefault(key, []).append((row["epoch"] + 1, value))
    return {key: sorted(values) for key, values in points.items()}


def learning_curves_figure(rows: Sequence[Mapping[str, float]], title: str = "") -> Figure:
    """One panel per metric of :data:`CURVES` that was logged, at the points of :func:`curve_points`."""
    points = curve_points(rows)
    names = [n for n in CURVES if f"train/{n}" in points or f"val/{n}" in points] or ["loss"]
    fig = new_figure(4.5 * len(names), 3.5)
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names, strict=True):
        values = []
        stages = [(f"train/{name}", "-o", "train (epoch mean)"), (f"val/{name}", "--s", "val")]
        if name == "loss" and "train/loss_step" in points:
            stages[0] = ("train/loss_step", "-.", "train (logged steps)")
        for key, style, label in stages:
            if data := points.get(key):
                ax.plot(*zip(*data, strict=True), style, ms=4, lw=1, label=label)
                values += [v for _, v in data]
        if name == "loss" and values and min(values) > 0 and max(values) / min(values) > 100:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=CURVES[name], title=CURVES[name], xlim=(0, None))
        ax.xaxis.get_major_locator().set_params(integer=True)
        if values:
            ax.legend()
    if title:
        fig.suptitle(title)
    return fig


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
    """Draw a ``(H, W)`` or ``(1, H, W)`` tensor in gray."""
    ax.imshow(image.detach().float().cpu().reshape(image.shape[-2:]).numpy(), cmap="gray")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def _grid(n: int, width: float, height: float, empty: str) -> tuple[Figure, list]:
    """A figure of about ``sqrt(n) x sqrt(n)`` panels (each ``width x height`` inches), their axes hidden; with
    ``n == 0``, ``empty`` written in it and no axes."""
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    fig = new_figure(width * cols + 0.4, height * rows + 0.4)
    if n == 0:
        fig.text(0.5, 0.5, empty, ha="center", va="center")
        return fig, []
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes:
        ax.set_axis_off()
    return fig, axes


def misclassified_grid_figure(
    images: Tensor, preds: Tensor, targets: Tensor, class_names: Sequence[str] | None = None, max_images: int = 25
) -> Figure:
    """A grid of the first ``max_images`` images with ``preds != targets``, titled "predicted (true …)"."""
    wrong = (preds.reshape(-1) != targets.reshape(-1)).nonzero().reshape(-1)[:max_images].cpu()
    name = (lambda i: class_names[i]) if class_names else str
    fig, axes = _grid(len(wrong), 1.6, 1.7, "no misclassified images")
    for ax, i in zip(axes, wrong.tolist(), strict=False):
        _show(ax, images[i], f"{name(int(preds[i]))} (true {name(int(targets[i]))})")
    if axes:
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


def activation_histograms_figure(
    rows: Mapping[str, Sequence[Tensor]], value_range: tuple[float, float], title: str = ""
) -> Figure:
    """Each hidden layer's activations as a histogram (columns), for each moment of training (rows): the fish
    book's ch. 6 figures. Exact zeros (ReLU's off units) are left out and counted in the panel's title.

    Args:
        rows: ``{"start of training": [layer 1 activations, ...], ...}``, any shapes (flattened).
        value_range: The x range of every panel (values outside it are counted in the title).
    """
    n_layers = max(len(layers) for layers in rows.values())
    fig = new_figure(2.1 * n_layers + 0.6, 2.1 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), n_layers, squeeze=False, sharex=True, sharey=True)
    for r, (moment, layers) in enumerate(rows.items()):
        for c, values in enumerate(layers):
            values = values.detach().float().flatten().cpu()
            zeros = float((values == 0).float().mean())
            kept = values[values != 0].numpy()
            outside = float(((values < value_range[0]) | (values > value_range[1])).float().mean())
            weights = np.full(len(kept), 1 / max(len(values), 1))
            axes[r, c].hist(kept, bins=30, range=value_range, weights=weights, color=f"C{r}")
            notes = [f"std {float(values.std()):.2g}"] + [f"{zeros:.0%} zero"] * (zeros > 0.01)
            notes += [f"{outside:.0%} outside"] * (outside > 0.01)
            axes[r, c].set_title(f"layer {c + 1}: " + ", ".join(notes), fontsize=7)
        axes[r, 0].set_ylabel(f"{moment}\nfraction of values", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("activation", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def forecast_figure(time: np.ndarray, truth: Tensor, one_step: Tensor, rollout: Tensor, title: str = "") -> Figure:
    """A series' test part: truth vs one-step predictions vs a rollout from the end of the validation data."""
    fig = new_figure(8.0, 3.5)
    ax = fig.add_subplot()
    ax.plot(time, truth, color="black", lw=2, alpha=0.4, label="truth")
    ax.plot(time, one_step, color="tab:blue", lw=1, label="one-step prediction")
    ax.plot(time, rollout, color="tab:red", lw=1, ls="--", label="rollout from the end of val")
    ax.set(xlabel="time step", ylabel="value", title=title or "forecast of the test part")
    ax.margins(y=0.3)
    ax.legend(loc="upper center", ncol=3, fontsize="small")
    return fig


def series_forecast_figure(series: Tensor, forecast: Tensor, title: str = "") -> Figure:
    """The user's series (time 0 … N-1) and the forecast continuing it (time N … N+steps-1)."""
    series, forecast = series.detach().float().cpu().reshape(-1), forecast.detach().float().cpu().reshape(-1)
    fig = new_figure(8.0, 3.5)
    ax = fig.add_subplot()
    n = len(series)
    ax.plot(np.arange(n), series.numpy(), color="black", lw=1.5, label="given series")
    # start the forecast's line at the last given value so the two join
    ax.plot(np.arange(n - 1, n + len(forecast)), np.r_[series[-1:].numpy(), forecast.numpy()], color="tab:red",
            lw=1.5, ls="--", label=f"forecast ({len(forecast)} steps)")  # fmt: skip
    ax.axvline(n - 0.5, color="gray", lw=0.8, ls=":")
    ax.set(xlabel="time step", ylabel="value", title=title or "forecast of the given series")
    ax.margins(y=0.3)
    ax.legend(loc="upper center", ncol=2, fontsize="small")
    return fig


def prediction_grid_figure(images: Tensor, titles: Sequence[str], max_images: int = 64) -> Figure:
    """A grid of the first ``max_images`` 28x28 inputs as the model saw them, titled e.g. "7 (0.98)" (one title per
    image). ``images``: ``(N, 28, 28)`` uint8 images (or ``(N, 1, 28, 28)``), drawn gray on a fixed 0-255 scale."""
    images = images.detach().cpu().reshape(len(images), *images.shape[-2:])[:max_images]
    fig, axes = _grid(len(images), 1.3, 1.45, "no images")
    for ax, image, title in zip(axes, images, titles, strict=False):
        ax.imshow(image.float().numpy(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> None:
    """``python -m dlbasics.plots RUN_DIR…``: write ``learning_curves.png`` into each run directory."""
    parser = argparse.ArgumentParser(prog="python -m dlbasics.plots", description=main.__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories, e.g. lightning_logs/version_3")
    args = parser.parse_args(argv)
    try:
        for run_dir in args.run_dirs:
            fig = learning_curves_figure(metrics_rows(run_dir), title=run_dir.name)  # no metrics.csv: FileNotFoundError
            with atomic_write(run_dir / "learning_curves.png") as tmp:
                fig.savefig(tmp, dpi=100, format="png")
            print(run_dir / "learning_curves.png")
    except (OSError, ValueError) as err:
        parser.exit(1, f"dlbasics.plots: error: {type(err).__name__}: {err}\n")


if __name__ == "__main__":
    main()
