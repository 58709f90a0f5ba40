"""Saving a picture of a run: PNG in the run directory (global rank 0), TensorBoard and wandb.

dlbasics fit --config rule_classifier   # every picture callback saves through log_figure
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from dlbasics.runs import atomic_write, run_dir


def drawing(trainer: L.Trainer) -> bool:
    return trainer.is_global_zero and not trainer.fast_dev_run


def log_figure(trainer: L.Trainer, name: str, fig: Figure) -> Path | None:
    """Save ``fig`` as ``<run dir>/<name>.png``, log it to every logger that shows images and return the PNG's path.

    Only global rank 0 writes; other ranks, and ``fast_dev_run`` smoke tests, return ``None``. ``name`` may
    hold ``/`` (e.g. ``test/confusion_matrix``): the PNG goes to ``<run dir>/test_confusion_matrix.png``. The figure
    is drawn once (at 100 dpi): the PNG and TensorBoard's image are the same pixels.
    """
    if not drawing(trainer):
        return None
    path = run_dir(trainer) / f"{name.replace('/', '_')}.png"  # trainer.log_dir is a collective
    fig.set_dpi(100)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    with atomic_write(path) as tmp:
        Image.fromarray(rgba).save(tmp, format="png")
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(name, rgba[..., :3], global_step=trainer.global_step, dataformats="HWC")
            logger.experiment.flush()
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=name, images=[str(path)], step=trainer.global_step)
    return path
