"""The dlbasics command line: LightningCLI in subclass mode over ``dlbasics.models`` and ``dlbasics.data``.

    dlbasics fit --config configs/linear_regression.yaml
    dlbasics test --config configs/rule_classifier.yaml --ckpt_path last
    dlbasics fit --model RuleClassifier --data RuleData --print_config

Every run gets, with no extra configuration: TensorBoard events and ``metrics.csv`` in
``lightning_logs/version_N/``, the resolved ``config.yaml`` beside them, ``checkpoints/last.ckpt``
plus the best checkpoint by the experiment's monitored metric, and a seed (42 unless configured).
"""

from __future__ import annotations

import ctypes
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, _get_module_type, _InstantiatorFn
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

import dlbasics.data
import dlbasics.models  # noqa: F401  (registers the classes so short names resolve)
from dlbasics.callbacks import FiniteLossGuard, PredictionWriter, default_progress_bar
from dlbasics.dashboards import LearningCurves, SaveConfig
from dlbasics.errors import one_line
from dlbasics.runs import LOG_ROOT, align_logger_versions, find_checkpoint

DEBUG_ENV = "DLBASICS_DEBUG"


class DLBasicsCLI(LightningCLI):
    """LightningCLI with dlbasics' defaults: loggers, checkpoints, prediction writer, progress, links."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        loggers = [
            {
                "class_path": f"lightning.pytorch.loggers.{cls.__name__}",
                "init_args": {"save_dir": ".", "name": LOG_ROOT},
            }
            for cls in (CSVLogger, TensorBoardLogger)
        ]
        super().__init__(
            model_class=L.LightningModule,
            datamodule_class=L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=42,
            save_config_callback=SaveConfig,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"logger": loggers},
            parser_kwargs={"exit_on_error": False},
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--num_threads",
            type=int | None,
            default=None,
            help="torch intra-op CPU threads (default: torch's choice). 1 is fastest for tiny models, whose "
            "ops are too small to split and stall when a thread has to wait for a busy core.",
        )
        # What the data defines and the model needs; ignored for models without the parameter.
        for name in ("num_features", "num_classes", "horizon", "series_mean", "series_std"):
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("num_threads"):
            torch.set_num_threads(config.num_threads)

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        if subcommand and self.config[subcommand].get("ckpt_path") in ("last", "best"):
            cfg = self.config[subcommand]
            model, data = (cfg.get(k).class_path if cfg.get(k) else None for k in ("model", "data"))
            cfg.ckpt_path = str(find_checkpoint(cfg.ckpt_path, model, data))
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"checkpoint {ckpt_path!r} does not exist: pass a .ckpt file, 'last' or 'best'")
        try:
            super()._parse_ckpt_path()
        except Exception as err:  # an unreadable file: say which, not torch's unpickling essay
            raise ValueError(
                f"{ckpt_path} is not a readable checkpoint ({type(err).__name__}): pass a .ckpt "
                "written by `dlbasics fit`"
            ) from err

    def _add_instantiators(self) -> None:
        for key, cls, subclasses in (
            ("model", self._model_class, self.subclass_mode_model),
            ("data", self._datamodule_class, self.subclass_mode_data),
        ):
            self.parser.add_instantiator(
                _LinkFilteringInstantiator(cli=self, key=key), _get_module_type(cls), subclasses
            )

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        config = self._get(self.config_init, "trainer", default={}) or {}
        # kwargs["callbacks"] replaces trainer.callbacks in LightningCLI: keep the configured ones in the list.
        callbacks = list(config.get("callbacks") or []) + list(kwargs.pop("callbacks", []) or [])
        monitor, mode = getattr(self.model, "monitor", ("val/loss", "min"))
        defaults: list[tuple[type, Callable[[], Any], bool]] = [
            (
                ModelCheckpoint,
                lambda: ModelCheckpoint(monitor=monitor, mode=mode, save_last=True, filename="best-{epoch}-{step}"),
                config.get("enable_checkpointing") is not False,
            ),
            (ProgressBar, default_progress_bar, config.get("enable_progress_bar") is not False),
            (PredictionWriter, PredictionWriter, True),
            (FiniteLossGuard, FiniteLossGuard, True),
            (LearningRateMonitor, lambda: LearningRateMonitor(logging_interval="epoch"), bool(config.get("logger"))),
            (LearningCurves, LearningCurves, True),
        ]
        # A callback of the same kind configured by the user (trainer.callbacks) replaces the default.
        given = list(callbacks)
        callbacks += [
            make() for kind, make, wanted in defaults if wanted and not any(isinstance(c, kind) for c in given)
        ]
        trainer = super().instantiate_trainer(callbacks=callbacks, **kwargs)
        align_logger_versions(trainer)
        return trainer


class _LinkFilteringInstantiator(_InstantiatorFn):
    """Lightning's instantiator, minus links to parameters the selected class does not take.

    A link such as ``data.num_classes -> model.init_args.num_classes`` is skipped by jsonargparse for a
    model without ``num_classes``, but Lightning would still record it in the saved hyperparameters,
    which then breaks ``--ckpt_path`` and ``load_from_checkpoint``.
    """

    def __call__(self, class_type: type, *args: Any, applied_instantiation_links: dict, **kwargs: Any) -> Any:
        params = inspect.signature(class_type.__init__).parameters
        links = {k: v for k, v in applied_instantiation_links.items() if k.rsplit(".", 1)[-1] in params}
        return super().__call__(class_type, *args, applied_instantiation_links=links, **kwargs)


def tune_malloc() -> bool:
    """Stop glibc from handing activation-sized buffers back to the OS after every training step.

    By default glibc serves large allocations with mmap and returns freed memory at once, so each step
    page-faults its activations back in (measured at ~15 % of a CPU CNN epoch). Raising the mmap and trim
    thresholds keeps them in the heap for reuse. Skipped when the user set ``MALLOC_*`` variables, when
    ``DLBASICS_MALLOC=default``, or off glibc.

    Returns:
        Whether the thresholds were changed.
    """
    if os.environ.get("DLBASICS_MALLOC") == "default" or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def main(args: list[str] | None = None) -> None:
    """Entry point of ``dlbasics`` and ``python -m dlbasics``.

    Errors print as one line on stderr with exit status 1 (2 for command-line errors); set
    ``DLBASICS_DEBUG=1`` for the full traceback.
    """
    tune_malloc()
    try:
        DLBasicsCLI(args=args)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as err:
        if os.environ.get(DEBUG_ENV):
            raise
        parse_error = type(err).__name__ == "ArgumentError"
        print(f"dlbasics: error: {one_line(err)}  [{DEBUG_ENV}=1 shows the traceback]", file=sys.stderr)
        sys.exit(2 if parse_error else 1)


__all__ = ["DLBasicsCLI", "main"]
