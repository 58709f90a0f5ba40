"""Run directories: which ``lightning_logs/version_N`` a run writes to, which checkpoint ``last`` means, metrics.

    dlbasics fit --config configs/rule_classifier.yaml --ckpt_path last   # resume the newest such run

No Lightning import: ``dlbasics-tour`` and ``python -m dlbasics.plots`` read runs without paying for it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

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


def run_dir(trainer: Any) -> Path:
    """The run directory (``lightning_logs/version_N``) without a collective call.

    ``trainer.log_dir`` broadcasts from rank 0, so calling it on rank 0 alone deadlocks under DDP;
    file writers that run on rank 0 only use this instead.
    """
    if trainer.loggers and trainer.loggers[0].log_dir:
        return Path(trainer.loggers[0].log_dir)
    return Path(trainer.default_root_dir)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings (``[]`` when it does not exist)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def keep_rows(path: Path, earlier: list[dict[str, str]]) -> None:
    """Make the CSV at ``path`` start with the rows ``earlier`` (unless it already does), header widened to fit."""
    rows = read_csv_rows(path)
    strip = lambda row: {k: v for k, v in row.items() if v not in ("", None)}  # noqa: E731
    if [strip(r) for r in rows[: len(earlier)]] == [strip(r) for r in earlier]:
        return
    rows = earlier + rows
    header = sorted({key for row in rows for key in row})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def metrics_rows(run: str | Path) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` (the CSV logger's file), each with its non-empty values as floats."""
    path = Path(run) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass a run directory such as lightning_logs/version_0")
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in read_csv_rows(path)]


def read_metrics(run: str | Path) -> dict[str, list[float]]:
    """Every non-empty value of each column of a run's ``metrics.csv``, in logging order."""
    columns: dict[str, list[float]] = {}
    for row in metrics_rows(run):
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    return columns


def epoch_metrics(run: str | Path, prefixes: tuple[str, ...] = ("train/", "val/")) -> dict[str, dict[int, float]]:
    """``{"train/loss": {epoch: value}, ...}`` for every column of ``metrics.csv`` starting with ``prefixes``."""
    curves: dict[str, dict[int, float]] = {}
    for row in metrics_rows(run):
        if "epoch" in row:
            for key, value in row.items():
                if key.startswith(prefixes):
                    curves.setdefault(key, {})[int(row["epoch"])] = value
    return curves
