"""The dlbasics command line: LightningCLI in subclass mode over ``dlbasics.models`` and ``dlbasics.data``.

    dlbasics fit --config configs/linear_regression.yaml      # trains, then tests the best checkpoint
    dlbasics test --config rule_classifier --ckpt_path last    # a shipped config by its bare name
    dlbasics fit --model RuleClassifier --data RuleData --print_config

Every run gets, visible in ``--print_config`` and ``config.yaml``: CSV + TensorBoard loggers writing to
``lightning_logs/version_N/``, the best checkpoint by the experiment's ``checkpoint.monitor``, the default
``trainer.callbacks`` (``last.ckpt`` after every epoch, progress, prediction writer, NaN guard, LR monitor,
pictures) and a seed (42 unless configured). Built on LightningCLI's public API only.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.model_helpers import is_overridden

import dlbasics.data
import dlbasics.models  # noqa: F401  (registers the classes so short names resolve)
from dlbasics import __version__
from dlbasics.dashboards import SaveConfig, resume_wandb_run
from dlbasics.errors import one_line
from dlbasics.models.base import check_format
from dlbasics.resources import expand_config_args, experiment_names
from dlbasics.runs import LOG_ROOT, find_checkpoint, keep_rows, read_csv_rows

DEBUG_ENV = "DLBASICS_DEBUG"
DEFAULT_THREADS = torch.get_num_threads()  # torch's choice, restored for runs that set no num_threads
#: What a DataModule defines and a model needs; a link is skipped for a model without the parameter.
LINKED = (
    "num_features", "num_classes", "horizon", "n_steps", "series_mean", "series_std", "pixel_mean", "pixel_std",
    "class_names",
)  # fmt: skip
LOGGERS = [
    {"class_path": f"lightning.pytorch.loggers.{name}", "init_args": {"save_dir": ".", "name": LOG_ROOT}}
    for name in ("CSVLogger", "TensorBoardLogger")
]
CALLBACKS = [
    {  # last.ckpt after every epoch (save_last=True only refreshes it when a best checkpoint is written)
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"filename": "last", "monitor": None, "save_top_k": 1, "enable_version_counter": False},
    },
    {"class_path": "dlbasics.callbacks.Progress"},
    {"class_path": "dlbasics.callbacks.PredictionWriter"},
    {"class_path": "dlbasics.callbacks.FiniteLossGuard"},
    {"class_path": "lightning.pytorch.callbacks.LearningRateMonitor", "init_args": {"logging_interval": "epoch"}},
    *({"class_path": f"dlbasics.pictures.{name}"} for name in (
        "LearningCurves", "FittedCurve", "ConfusionMatrix", "MisclassifiedImages", "ActivationMaps", "Forecast",
        "PredictionGrid", "ActivationHistograms",
    )),
]  # fmt: skip
DESCRIPTION = f"""dlbasics {__version__}: the deep-learning-basics curriculum as PyTorch Lightning experiments.

Experiments (configs shipped with the package; pass a bare name or a path to your own YAML):
{textwrap.fill(", ".join(experiment_names()), 110, initial_indent="  ", subsequent_indent="  ")}
Overlays after the experiment: trainer/ddp, trainer/ddp_cpu, trainer/bf16, trainer/fp16, logger/wandb.

  dlbasics fit --config fashion_mnist_cnn            # train, then test the best checkpoint
  dlbasics test --config fashion_mnist_cnn --ckpt_path best
  dlbasics export --config fashion_mnist_cnn --ckpt_path best   # model.onnx
  dlbasics sweep --config mnist_mlp_fishbook --study optimizers # compare or search (Optuna): sweep --help

--ckpt_path: a file, a URL, or Lightning's keywords; 'last' and 'best' mean the newest run of the same model
and data under lightning_logs/ (its last.ckpt / best checkpoint), so `fit --ckpt_path last` resumes it."""


class HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's help, with the description's line breaks kept."""


class DLBasicsCLI(LightningCLI):
    """LightningCLI with dlbasics' defaults (loggers, checkpoint, callbacks, links) and ``test_after_fit``."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            model_class=L.LightningModule,
            datamodule_class=L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=42,
            save_config_callback=SaveConfig,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={
                "exit_on_error": False,
                "description": DESCRIPTION,
                "version": __version__,
                "formatter_class": HelpFormatter,
            },
            auto_configure_optimizers=False,  # models take `optimizer` / `lr_scheduler` (dependency injection)
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
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="fit only: at the end, test the best checkpoint (by checkpoint.monitor) on the test split, in the "
            "same process and run directory.",
        )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.filename": "best-{epoch}-{step}",
                "trainer.logger": LOGGERS,
                "trainer.callbacks": CALLBACKS,
            }
        )
        for name in LINKED:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand and self.config[subcommand].get("ckpt_path"):
            cfg = self.config[subcommand]
            classes = (cfg.get(k).class_path if cfg.get(k) else None for k in ("model", "data"))
            cfg.ckpt_path = resolve_ckpt_path(cfg.ckpt_path, *classes)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        # Process-wide: an earlier run in this process (the tour, tests) must not leave its setting behind.
        torch.set_num_threads(config.get("num_threads") or DEFAULT_THREADS)
        if self.subcommand == "fit":
            resume_wandb_run(config)  # from a checkpoint: log into its wandb run
        trainer = config.trainer
        # The user switched these off: drop their default callbacks rather than fail on the contradiction.
        drop = (["Progress", "ProgressBar"] if trainer.get("enable_progress_bar") is False else []) + (
            ["LearningRateMonitor"] if trainer.get("logger") in (False, None) else []
        )
        if drop and trainer.get("callbacks"):
            trainer.callbacks = [c for c in trainer.callbacks if c.class_path.rsplit(".", 1)[-1] not in drop]

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        # CSV and TensorBoard each take "the next free version_N" when first asked; asking both now, before
        # either has made its directory, gives them the same one.
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger | TensorBoardLogger):
                _ = logger.version
        return trainer

    def before_fit(self) -> None:
        if not self.config.fit.get("test_after_fit"):
            return
        for name, obj, hook in (("data", self.datamodule, "test_dataloader"), ("model", self.model, "test_step")):
            if obj is None or not is_overridden(hook, obj):
                what = f"{type(obj).__name__} has no {hook}" if obj is not None else f"no {name}"
                raise ValueError(f"test_after_fit: {what}, so there is nothing to test: pass --test_after_fit false")

    def after_fit(self) -> None:
        if not self.config.fit.get("test_after_fit") or self.trainer.interrupted:
            return
        best = next((c.best_model_path for c in self.trainer.checkpoint_callbacks if c.monitor), "")
        csv_logger = next((lg for lg in self.trainer.loggers if isinstance(lg, CSVLogger)), None)
        fit_rows = read_csv_rows(Path(csv_logger.log_dir) / "metrics.csv") if csv_logger else []
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None, weights_only=True)
        if fit_rows and self.trainer.is_global_zero:
            # Spawned DDP workers start a fresh CSV writer for the test, replacing metrics.csv: put fit's rows back.
            keep_rows(Path(csv_logger.log_dir) / "metrics.csv", fit_rows)


def resolve_ckpt_path(value: str, model: str | None, data: str | None) -> str:
    """``last``/``best``: the newest matching run's checkpoint; a path must be a readable checkpoint; URLs and
    Lightning's other keywords (``registry``, ``hpc``, …) pass through untouched."""
    if value in ("last", "best"):
        return str(find_checkpoint(value, model, data))
    if "://" in value or value in ("hpc", "registry") or value.startswith("registry:"):
        return value
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {value!r} does not exist: pass a .ckpt file, 'last' or 'best'")
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # say which file, not torch's unpickling essay
        raise ValueError(
            f"{value} is not a readable checkpoint ({type(err).__name__}): pass a .ckpt written by `dlbasics fit`"
        ) from None
    check_format(path)  # an older dlbasics' checkpoint: one line saying to retrain
    return value


def tune_malloc() -> bool:
    """Stop glibc from handing activation-sized buffers back to the OS after every training step.

    By default glibc serves large allocations with mmap and returns freed memory at once, so each step
    page-faults its activations back in (see ``benchmarks/results/malloc.md`` for the A/B). Raising the mmap
    and trim thresholds keeps them in the heap for reuse. Skipped when the user set ``MALLOC_*`` variables or
    ``GLIBC_TUNABLES``, when ``DLBASICS_MALLOC=default``, or off glibc.

    Returns:
        Whether the thresholds were changed.
    """
    if os.environ.get("DLBASICS_MALLOC") == "default" or "GLIBC_TUNABLES" in os.environ:
        return False
    if any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def quiet_third_parties() -> None:
    """Silence what third parties print on every plain run, narrowly (by module and message); ours stay visible.

    ``DLBASICS_DEBUG=1`` keeps everything.
    """
    if os.environ.get(DEBUG_ENV):
        return
    for module, message in (
        ("torch.utils._pytree", r".*LeafSpec.* is deprecated"),  # Lightning 2.6's pytree shim on torch >= 2.9
        ("lightning.pytorch.utilities._pytree", r".*LeafSpec.* is deprecated"),
        ("lightning.pytorch.callbacks.model_checkpoint", r"The dirpath has changed"),  # every run has its own dir
        # jsonargparse >= 4.49 deprecates calls Lightning 2.6 makes (add_instantiator, instantiate_classes, skip_none)
        ("lightning.pytorch.cli", r"\s*(By default only one JsonargparseDeprecationWarning|.*deprecated in v4\.)"),
        ("lightning.pytorch.trainer.connectors.data_connector", r".*does not have many workers"),  # resident data
        # Resident-tensor loaders are not DataLoaders; PredictionWriter restores the sample order itself.
        ("lightning.pytorch.loops.prediction_loop", r"Couldn't infer the batch indices"),
        # Mixed precision keeps float32 weights, so the summary's fallback to 32 bits is the right size.
        ("lightning.pytorch.utilities.model_summary.model_summary", r"Precision \S+-mixed is not supported"),
    ):
        warnings.filterwarnings("ignore", message=message, module=module)
    # An advertisement; the epoch lines already say where fit stopped; the next line names the checkpoint again;
    # a schedule's step count is internal bookkeeping.
    noise = (
        "💡 Tip:",
        "`Trainer.fit` stopped:",
        "Restoring states from the checkpoint path at",
        "Loading `train_dataloader` to estimate number of stepping batches",
    )
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith(noise)
    )


def main(args: list[str] | None = None) -> None:
    """What ``dlbasics`` and ``python -m dlbasics`` run (through :mod:`dlbasics.launch`).

    Errors print as one line on stderr with exit status 1 (2 for command-line errors); set ``DLBASICS_DEBUG=1``
    for the full traceback. Ctrl-C (SIGINT) and SIGTERM stop gracefully (the last checkpoint stays usable) with
    exit status 130 and 143.
    """
    if args is None:  # the console: LightningCLI reads sys.argv itself (and DDP relaunches from it)
        sys.argv[1:] = args = expand_config_args(sys.argv[1:])
        cli_args = None
    else:
        cli_args = args = expand_config_args(list(args))
    if args[:1] == ["export"]:
        from dlbasics.export import main as export_main

        return export_main(args[1:])
    if args[:1] == ["sweep"]:
        from dlbasics.sweep import main as sweep_main

        return sweep_main(args[1:])
    tune_malloc()
    quiet_third_parties()
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    handlers = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        DLBasicsCLI(args=cli_args)
    except SystemExit as err:
        if received:
            sys.exit(128 + received[0])
        raise err from None
    except KeyboardInterrupt:
        sys.exit(128 + (received[0] if received else signal.SIGINT))
    except Exception as err:
        if os.environ.get(DEBUG_ENV):
            raise
        parse_error = type(err).__name__ == "ArgumentError"
        print(f"dlbasics: error: {one_line(err)}  [{DEBUG_ENV}=1 shows the traceback]", file=sys.stderr)
        sys.exit(2 if parse_error else 1)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


__all__ = ["DLBasicsCLI", "main"]
