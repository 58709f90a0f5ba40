"""Run directories: which ``lightning_logs/version_N`` a run writes to, and which checkpoint ``last`` means.

dlbasics fit --config configs/rule_classifier.yaml --ckpt_path last   # resume the newest such run
"""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

LOG_ROOT = "lightning_logs"


def find_checkpoint(which: str, model: str | None = None, data: str | None = None, root: str | Path = LOG_ROOT) -> Path:
    """Resolve ``--ckpt_path last|best`` across runs: the newest matching run's ``last.ckpt`` / best checkpoint.

    Lightning resolves these names only inside the current run, and every run (a resumed one too) gets
    a fresh ``version_N``, so without this ``last`` would silently start from scratch. Only runs whose
    saved ``config.yaml`` names the same model and data classes count.
    """
    pattern = "last.ckpt" if which == "last" else "best-*.ckpt"

    def matches(ckpt: Path) -> bool:
        config_file = ckpt.parent.parent / "config.yaml"
        if not config_file.is_file():
            return False
        config = yaml.safe_load(config_file.read_text()) or {}
        return all(
            want is None or (config.get(key) or {}).get("class_path") == want
            for key, want in (("model", model), ("data", data))
        )

    found = [p for p in Path(root).glob(f"version_*/checkpoints/{pattern}") if matches(p)]
    if not found:
        raise FileNotFoundError(
            f"--ckpt_path {which}: no {pattern} of a {model or 'matching'} run under {Path(root).resolve()}; "
            "run `dlbasics fit` first or pass the path of a checkpoint"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def align_logger_versions(trainer: L.Trainer) -> None:
    """Make file loggers under one root share the first logger's ``version_N`` directory.

    TensorBoard and CSV each pick "the next free version" on their own; the second would see the
    first's fresh directory and pick N+1. Explicitly configured versions are left alone.
    """
    loggers = [lg for lg in trainer.loggers if isinstance(lg, (TensorBoardLogger, CSVLogger))]
    if len(loggers) < 2:
        return
    version = loggers[0].version
    for lg in loggers[1:]:
        if lg._version is None and lg.root_dir == loggers[0].root_dir:
            lg._version = version


def run_dir(trainer: L.Trainer) -> Path:
    """The run directory (``lightning_logs/version_N``) without a collective call.

    ``trainer.log_dir`` broadcasts from rank 0, so calling it on rank 0 alone deadlocks under DDP;
    file writers that run on rank 0 only use this instead.
    """
    if trainer.loggers and trainer.loggers[0].log_dir:
        return Path(trainer.loggers[0].log_dir)
    return Path(trainer.default_root_dir)


def read_metrics(run: str | Path) -> dict[str, list[float]]:
    """Every non-empty value of each column of a run's ``metrics.csv``, in logging order."""
    columns: dict[str, list[float]] = {}
    with open(Path(run) / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if value not in ("", None):
                    columns.setdefault(key, []).append(float(value))
    return columns
