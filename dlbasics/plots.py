"""Figures of a run: saved as PNG in the run directory and sent to TensorBoard and wandb.

python -m dlbasics.plots lightning_logs/version_3   # learning curves of an existing run
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from matplotlib.figure import Figure


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A matplotlib Figure that needs no display (no pyplot state)."""
    return Figure(figsize=(width, height), layout="constrained")


def log_figure(trainer: L.Trainer, name: str, fig: Figure) -> Path | None:
    """Save ``fig`` as ``<run dir>/<name>.png`` and log it to every logger that shows images.

    Only global rank 0 writes; other ranks return ``None``. ``name`` may hold ``/`` (e.g.
    ``test/confusion_matrix``): the PNG goes to ``<run dir>/test_confusion_matrix.png``.

    Returns:
        The PNG's path on rank 0.
    """
    if not trainer.is_global_zero:
        return None
    path = Path(trainer.log_dir or ".") / f"{name.replace('/', '_')}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(name, fig, global_step=trainer.global_step, close=False)
            logger.experiment.flush()
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=name, images=[str(path)], step=trainer.global_step)
    return path
