"""Learning-rate schedules whose length is the run's: the step count comes from the trainer, in one place.

    dlbasics fit --config rule_classifier   # lr_scheduler: dlbasics.models.schedules.CosineAnnealingLR

The models take ``lr_scheduler: LRSchedulerCallable`` (any ``torch.optim.lr_scheduler`` class); the arguments that
mean "the length of the run in steps" (:data:`RUN_LENGTH_ARGS`), left out, follow ``max_epochs``/``max_steps``.
"""

from __future__ import annotations

from typing import Any

import torch

RUN_LENGTH_ARGS = ("total_steps", "T_max")


class CosineAnnealingLR(torch.optim.lr_scheduler.CosineAnnealingLR):
    """torch's ``CosineAnnealingLR`` with ``T_max`` optional: left out, it is the run's number of optimizer steps.

    torch requires ``T_max`` and the config parser enforces that before any run starts, hence this subclass.

    Args:
        T_max: Steps of the half cosine (``None``: the whole run, filled in by :meth:`Experiment.configure_optimizers`).
        eta_min: Final learning rate.
        last_epoch: Index of the last step (-1 to start).
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, T_max: int | None = None, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if T_max is None:
            raise ValueError("CosineAnnealingLR needs T_max: give it, or let the model fill in the run's step count")
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min, last_epoch=last_epoch)


def run_length_kwargs(scheduler: Any, steps: int) -> dict[str, int]:
    """``{name: steps}`` for the run-length arguments (:data:`RUN_LENGTH_ARGS`) the config left out.

    The CLI hands the model a ``functools.partial`` of the schedule class whose ``keywords`` hold every argument,
    defaults included, so "left out" is an argument there set to ``None``. ``OneCycleLR`` given ``epochs`` and
    ``steps_per_epoch`` has its length already.
    """
    given = getattr(scheduler, "keywords", {})
    fill = {name: steps for name in RUN_LENGTH_ARGS if name in given and given[name] is None}
    if "total_steps" in fill and given.get("epochs") and given.get("steps_per_epoch"):
        fill.pop("total_steps")
    return fill
