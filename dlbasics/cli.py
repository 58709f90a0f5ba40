"""The dlbasics command line: LightningCLI in subclass mode over ``dlbasics.models`` and ``dlbasics.data``.

    dlbasics fit --config linear_regression   # trains, then tests the best checkpoint (more examples: --help)

Every run gets, visible in ``--print_config`` and ``config.yaml``: CSV + TensorBoard loggers (``lightning_logs/``),
the best checkpoint by ``checkpoint.monitor``, :data:`dlbasics.callbacks.DEFAULTS` and a seed (42 unless configured).
A ``--ckpt_path`` is data until proven otherwise (:mod:`dlbasics.checkpoints`). LightningCLI's public API only.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import textwrap
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
from dlbasics import __version__, checkpoints, console
from dlbasics.callbacks import DEFAULTS, LOGGERS, as_config
from dlbasics.dashboards import SaveConfig, resume_wandb_run, wandb_loggers
from dlbasics.resources import expand_config_args, experiment_names
from dlbasics.runs import SHAPES, STATISTICS, discard_run, keep_rows, read_csv_rows, run_dir

DESCRIPTION = f"""dlbasics {__version__}: the deep-learning-basics curriculum as PyTorch Lightning experiments.

Experiments (configs shipped with the package; pass a bare name or a path to your own YAML):
{textwrap.fill(", ".join(experiment_names()), 110, initial_indent="  ", subsequent_indent="  ")}
Overlays after the experiment: trainer/ddp, trainer/ddp_cpu, trainer/bf16, trainer/fp16, logger/wandb.

  dlbasics fit --config fashion_mnist_cnn            # train, then test the best checkpoint
  dlbasics test --config fashion_mnist_cnn --ckpt_path best
  dlbasics export --config fashion_mnist_cnn --ckpt_path best   # model.onnx
  dlbasics sweep --config mnist_mlp_fishbook --study optimizers # compare or search (Optuna): sweep --help

--ckpt_path: a file, a URL, or Lightning's keywords; 'last' and 'best' mean the newest run of the same experiment
(model and architecture, data and source) under lightning_logs/, so `fit --ckpt_path last` resumes it. A checkpoint
of another model, or one naming code that is not an optimizer or schedule already imported, is refused."""


class HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's help, with the description's line breaks kept."""


class DLBasicsTrainer(L.Trainer):
    """The Trainer: Lightning's, with one more subcommand (``dlbasics export``) and quiet DDP workers."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled first in every process ``ddp_spawn`` starts: filter what the parent filters, before the rest.
        console.quiet_third_parties()
        self.__dict__.update(state)

    def export(
        self, model: L.LightningModule, datamodule: Any = None, ckpt_path: str | None = None, opset: int | None = None
    ) -> Path:
        """Export a trained model to ONNX: model.onnx in its checkpoint's run, checked against PyTorch.

        ``model`` is built from the checkpoint's hyperparameters; ``datamodule`` is not used.
        """
        if ckpt_path is None:
            raise ValueError("export needs --ckpt_path: a .ckpt file, 'last' or 'best' of the config's experiment")
        from dlbasics.use.onnx import export_checkpoint

        return export_checkpoint(model, Path(ckpt_path), opset)


class DLBasicsCLI(LightningCLI):
    """LightningCLI with dlbasics' defaults (loggers, checkpoint, callbacks, links), ``test_after_fit`` and ``export``.

    A run refused or failed before it trained (a bad file to predict, a bad optimizer setting) leaves no ``version_N``.
    """

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        #: The ``--ckpt_path`` checkpoint, once checked (``None``: no checkpoint).
        self.checkpoint: dict[str, Any] | None = None
        #: The subcommand asked for, whose parser alone is built (building all five cost ~0.25 s a run).
        self.asked = next(iter(sys.argv[1:] if args is None else args), None)
        try:
            super().__init__(
                model_class=L.LightningModule,
                datamodule_class=L.LightningDataModule,
                trainer_class=DLBasicsTrainer,
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
        except Exception:
            trainer = getattr(self, "trainer", None)  # None: refused before the trainer was made
            if trainer is not None and trainer.is_global_zero and trainer.global_step == 0 and trainer.loggers:
                discard_run(run_dir(trainer))
            raise

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        """Lightning's subcommands and ``export``; only the one asked for, when the command line starts with it."""
        every = {**LightningCLI.subcommands(), "export": {"model", "datamodule"}}
        return {self.asked: every[self.asked]} if self.asked in every else every

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
                "trainer.callbacks": as_config(DEFAULTS),
                "trainer.plugins": as_config([(checkpoints.AtomicCheckpointIO, {})]),
            }
        )
        # With a checkpoint, the shapes must agree with its model's (after_instantiate_classes), and the statistics
        # are its own, given to the DataModule, which then reads nothing to compute them (before_instantiate_classes).
        for name in SHAPES + STATISTICS:  # skipped for a model without the parameter or data without the attribute
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand and self.config[subcommand].get("ckpt_path"):
            config = self.config[subcommand]
            # Before Lightning copies the checkpoint's hyperparameters into the config (and imports what they name).
            config.ckpt_path, self.checkpoint = checkpoints.open_checkpoint(config)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if self.checkpoint is not None and config.get("data"):
            stored, data_args = self.checkpoint.get("hyper_parameters") or {}, config.data.init_args
            for name in STATISTICS:  # the normalization the checkpoint's model was trained with
                if stored.get(name) is not None and name in data_args:
                    data_args[name] = stored[name]
        if config.get("num_threads"):
            torch.set_num_threads(config.num_threads)  # process-wide: `main` restores it afterwards
        if self.subcommand == "fit" and self.checkpoint is not None:
            resume_wandb_run(config, self.checkpoint)  # log into the checkpoint's wandb run
        for logger in wandb_loggers(config):  # spawned DDP workers put the run's media there
            os.environ.setdefault("WANDB_DIR", os.path.abspath(logger.init_args.get("save_dir") or "."))
        trainer = config.trainer
        # The user switched these off: drop their default callbacks rather than fail on the contradiction.
        drop = (["Progress", "ProgressBar"] if trainer.get("enable_progress_bar") is False else []) + (
            ["LearningRateMonitor"] if trainer.get("logger") in (False, None) else []
        )
        if drop and trainer.get("callbacks"):
            trainer.callbacks = [c for c in trainer.callbacks if c.class_path.rsplit(".", 1)[-1] not in drop]

    def after_instantiate_classes(self) -> None:
        """With a checkpoint: refuse, in one line, data whose shapes cannot feed its model (before anything runs)."""
        stored = (self.checkpoint or {}).get("hyper_parameters") or {}
        for name in SHAPES:
            if stored.get(name) is None or not hasattr(self.datamodule, name):  # no datamodule: hasattr is False
                continue
            value = getattr(self.datamodule, name)
            if checkpoints.plain(value) != checkpoints.plain(stored[name]):
                shown = lambda v: ", ".join(map(str, v[:3])) + ", …" if isinstance(v, list) else v  # noqa: E731
                raise ValueError(
                    f"the checkpoint's model takes {name} {shown(stored[name])} but the config's data "
                    f"({type(self.datamodule).__name__}) give {shown(value)}: pass the data it was trained on"
                )

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


def skip_nvml_probe() -> None:
    """Without NVIDIA's management library there is no GPU for ``torch.cuda.is_available()`` to find over NVML.

    ``import lightning`` asks torch to check CUDA through NVML (safe before forking workers), and torch then tries to
    load the library at every call (62 µs instead of 4), which Adam makes every step; the plain check is instant.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1":
        try:
            ctypes.CDLL("libnvidia-ml.so.1")
        except OSError:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


def main(args: list[str] | None = None) -> None:
    """What ``dlbasics`` and ``python -m dlbasics`` run (through :mod:`dlbasics.launch`).

    Errors print as one line (exit status 1, 2 for command-line errors; ``DLBASICS_DEBUG=1`` shows the traceback);
    Ctrl-C (SIGINT) and SIGTERM stop gracefully (the last checkpoint stays usable) with exit status 130 and 143.
    """
    threads = torch.get_num_threads()
    console.quiet_third_parties()
    skip_nvml_probe()
    try:
        with console.exit_on_interrupt(), console.errors_as_one_line():
            if args is None:  # the console: LightningCLI reads sys.argv itself (and DDP relaunches from it)
                sys.argv[1:] = expand_config_args(sys.argv[1:])
                DLBasicsCLI()
            else:
                DLBasicsCLI(args=expand_config_args([str(a) for a in args]))
    finally:
        torch.set_num_threads(threads)
