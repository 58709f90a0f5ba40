"""Run directories: where a run writes, how it writes (atomically), what it logged.

    python -m dlbasics.plots lightning_logs/version_3   # reads a run's metrics.csv through this module

No Lightning import: ``dlbasics-tour`` and ``python -m dlbasics.plots`` read runs without paying for it.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from dlbasics.resources import load_yaml

#: What a DataModule defines and a model needs, linked by the CLI from the one to the other (so a saved
#: ``config.yaml`` never lists them under the model): its shapes, and the statistics the model standardizes with.
SHAPES = ("num_features", "num_classes", "horizon", "n_steps", "class_names", "image_style")
STATISTICS = ("series_mean", "series_std", "pixel_mean", "pixel_std")
#: Data settings that say how an experiment's data are served, not what they are (ignored when matching runs).
SERVING = frozenset({
    "batch_size", "eval_batch_size", "seed", "num_train", "num_val", "num_test", "shift", "predict_path",
    "predict_steps", "download", "verify", *STATISTICS,
})  # fmt: skip


def experiment(config: dict[str, Any]) -> dict[str, Any]:
    """What makes two configs the same experiment: model class and architecture, data class and source.

    Optimizer, schedule, trainer settings and :data:`SERVING` data settings do not count, so a resumed fit with
    more epochs or a test with a larger batch is still the same experiment.
    """
    model, data = config.get("model") or {}, config.get("data") or {}
    skip = {"optimizer", "lr_scheduler", *SHAPES, *STATISTICS}
    architecture = {k: v for k, v in (model.get("init_args") or {}).items() if k not in skip}
    source = {k: v for k, v in (data.get("init_args") or {}).items() if k not in SERVING}
    return {"model": model.get("class_path"), "architecture": architecture, "data": data.get("class_path"),
            "source": source}  # fmt: skip


def find_checkpoint(which: str, wanted: dict[str, Any], readable: Callable[[Path], bool]) -> tuple[Path, list[Path]]:
    """``--ckpt_path last|best``: the newest readable ``last.ckpt`` / best checkpoint of a run of this experiment.

    Lightning resolves these names only inside the current run, and every run (a resumed one too) gets a fresh
    ``version_N``; here every run under ``lightning_logs`` whose saved ``config.yaml`` is the :func:`experiment`
    ``wanted`` counts, newest first, passing over the checkpoints ``readable`` refuses (a truncated file).

    Returns:
        The checkpoint, and the newer ones of the same experiment passed over as unreadable.

    Raises:
        FileNotFoundError: No run of this experiment has one; the message names the experiments found instead.
    """
    pattern = "last.ckpt" if which == "last" else "best-*.ckpt"
    root = Path("lightning_logs")
    candidates, others = [], set()
    for ckpt in root.glob(f"version_*/checkpoints/{pattern}"):
        try:
            found = experiment(load_yaml(ckpt.parent.parent / "config.yaml") or {})
        except (OSError, ValueError, yaml.YAMLError, AttributeError):
            continue
        if found == wanted:
            candidates.append(ckpt)
        else:
            model, data = (str(found[k]).rsplit(".", 1)[-1] for k in ("model", "data"))
            others.add(f"{model} on {data} ({ckpt.parent.parent.name})")
    skipped = []
    for ckpt in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        if readable(ckpt):
            return ckpt, skipped
        skipped.append(ckpt)
    seen = f"; found {', '.join(sorted(others))}" if others else ""
    bad = f" ({len(skipped)} unreadable)" if skipped else ""
    raise FileNotFoundError(
        f"--ckpt_path {which}: no {pattern} of a {wanted['model']} run of this experiment{bad} under "
        f"{root.resolve()}{seen}: run `dlbasics fit` first or pass the path of a checkpoint"
    )


def run_dir(trainer: Any) -> Path:
    """The run directory (``lightning_logs/version_N``) without a collective call.

    ``trainer.log_dir`` broadcasts from rank 0, so calling it on rank 0 alone deadlocks under DDP;
    file writers that run on rank 0 only use this instead.
    """
    if trainer.loggers and trainer.loggers[0].log_dir:
        return Path(trainer.loggers[0].log_dir)
    return Path(trainer.default_root_dir)


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path`` in one rename.

    A failure (a full disk, an exception, Ctrl-C) removes the partial file and leaves the previous ``path`` as it was,
    so a reader never sees half a checkpoint, CSV or ONNX file. The temporary name starts with a dot and ends in
    ``.tmp``, so nothing that looks for ``*.ckpt`` or ``*.csv`` picks it up.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def discard_run(run: Path) -> None:
    """Remove a run directory that holds no checkpoint (a refused or failed run: nothing to resume from), and its
    parent if that is empty."""
    if run.is_dir() and not any(run.glob("checkpoints/*.ckpt")):
        shutil.rmtree(run, ignore_errors=True)
        with contextlib.suppress(OSError):
            run.parent.rmdir()  # only when empty: lightning_logs/ itself when this was its first run


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings (``[]`` when it does not exist)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> None:
    """Write ``rows`` (dicts) as a CSV at ``path``, atomically; ``header`` defaults to every key, sorted."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or sorted({key for row in rows for key in row}))
        writer.writeheader()
        writer.writerows(rows)


def _filled(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v not in ("", None)}


def keep_rows(path: Path, earlier: list[dict[str, str]]) -> None:
    """Make the CSV at ``path`` start with the rows ``earlier`` (unless it already does), header widened to fit."""
    rows = read_csv_rows(path)
    if [_filled(r) for r in rows[: len(earlier)]] != [_filled(r) for r in earlier]:
        write_csv(path, earlier + rows)


def metrics_rows(run: str | Path) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` (the CSV logger's file), each with its non-empty values as floats."""
    path = Path(run) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass a run directory such as lightning_logs/version_0")
    return [{k: float(v) for k, v in _filled(row).items()} for row in read_csv_rows(path)]


def read_metrics(run: str | Path) -> dict[str, list[float]]:
    """Every non-empty value of each column of a run's ``metrics.csv``, in logging order."""
    columns: dict[str, list[float]] = {}
    for row in metrics_rows(run):
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    return columns


def epoch_metrics(run: str | Path) -> dict[str, dict[int, float]]:
    """``{"val/acc": {epoch: value}, ...}`` for every ``train/`` and ``val/`` column of ``metrics.csv``."""
    curves: dict[str, dict[int, float]] = {}
    for row in metrics_rows(run):
        if "epoch" in row:
            for key, value in row.items():
                if key.startswith(("train/", "val/")):
                    curves.setdefault(key, {})[int(row["epoch"])] = value
    return curves
