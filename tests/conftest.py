"""Shared test helpers: run the CLI the way users do, in a temporary directory, and read its outputs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

os.environ.setdefault("WANDB_MODE", "disabled")  # no test talks to a wandb server


def latest_run(root: Path = Path("lightning_logs")) -> Path | None:
    """The newest ``version_N`` directory under ``root`` (``None`` when loggers were off, e.g. fast_dev_run)."""
    runs = sorted(root.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    return runs[-1] if runs else None


def read_metrics(run_dir: Path) -> dict[str, list[float]]:
    """Every non-empty value of each column of ``metrics.csv``, in logging order."""
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if value not in ("", None):
                columns.setdefault(key, []).append(float(value))
    return columns


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``cli("fit", "--config", ...)`` runs ``dlbasics`` in-process inside ``tmp_path``; returns the run dir."""
    from dlbasics.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Path | None:
        main([str(a) for a in args])
        return latest_run(tmp_path / "lightning_logs")

    return run
