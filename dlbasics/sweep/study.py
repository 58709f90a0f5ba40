"""The study YAML of ``dlbasics sweep``: what to search, how, and what a trial's value is.

    dlbasics sweep --config mnist_mlp_fishbook --study optimizers

The file's format is in :data:`dlbasics.sweep.HELP` (``dlbasics sweep --help``). Structured values (a class with
its arguments, a class path) reach the CLI as JSON and are labelled ``SGD(lr=0.1)`` / ``SineGRU`` in tables and
pictures. Only the shape of the file is checked here (:class:`SweepError`, one line); whether a value suits its
key is the CLI parser's business (:func:`dlbasics.sweep.check_params`).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dlbasics.resources import config_dir, resolve_config

KEYS = ("metric", "direction", "sampler", "trials", "pruner", "params")
SCALARS = (str, int, float, bool, type(None))
ERROR = "dlbasics: error: "  #: how the CLI and the sweep begin the one line of an error


class SweepError(Exception):
    """A sweep that cannot start or go on; the message is the one line the user sees."""


def label(value: Any) -> str:
    """A short, readable name of a parameter value: ``SGD(lr=0.1, momentum=0.9)``, ``SineGRU``, ``0.003``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and "." in value and value.replace(".", "").replace("_", "").isalnum():
        return value.rsplit(".", 1)[-1] if not value[0].isdigit() else value  # a class path
    if isinstance(value, dict) and "class_path" in value:
        args = ", ".join(f"{k}={label(v)}" for k, v in (value.get("init_args") or {}).items())
        return f"{label(value['class_path'])}({args})"
    if isinstance(value, SCALARS):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def exact(value: Any) -> Any:
    """``value`` itself when it is a scalar (a number keeps every digit), else its :func:`label`."""
    return value if isinstance(value, SCALARS) else label(value)


def cli_value(value: Any) -> str:
    """``value`` as the command line takes it: scalars as YAML (``true``, ``null``, ``0.003``), the rest as JSON."""
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else json.dumps(value)


@dataclass(frozen=True)
class Param:
    """One searched setting: a list of values, or a ``{low, high, step, log}`` range."""

    key: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None

    @property
    def is_int(self) -> bool:
        return self.is_range and all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))

    @property
    def name(self) -> str:
        """The key's last part that is not ``init_args`` (``lr``, ``batch_size``, ``optimizer``)."""
        return [part for part in self.key.split(".") if part != "init_args"][-1]

    def choices(self) -> list[Any]:
        """What Optuna sees for a list: scalars as they are, structured values by their label."""
        return [exact(v) for v in self.values]

    def value(self, choice: Any) -> Any:
        """The setting a trial's choice stands for (the structured value behind a label)."""
        return choice if self.is_range else self.values[self.choices().index(choice)]

    def grid(self) -> list[Any]:
        """Every choice of a list, or every step of a range (a grid needs a step for float ranges)."""
        if not self.is_range:
            return self.choices()
        if self.step is None and not self.is_int:
            raise SweepError(f"params.{self.key}: a grid needs a list or a range with a step, got a float range")
        step = self.step or 1
        count = round((self.high - self.low) / step) + 1
        return [self.low + i * step if self.is_int else float(f"{self.low + i * step:.12g}") for i in range(count)]

    def suggest(self, trial: Any) -> Any:
        """The trial's choice (an enqueued grid point returns its own)."""
        if not self.is_range:
            return trial.suggest_categorical(self.key, self.choices())
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)


def parse_param(key: Any, spec: Any) -> Param:
    """A :class:`Param` from one ``params`` entry, or a :class:`SweepError` saying what is wrong with it."""
    where = f"params.{key}"
    if not isinstance(key, str) or not key or key.startswith("-") or " " in key:
        raise SweepError(f"params: {key!r} is not a setting: write keys as `dlbasics fit` takes them, without --")
    if isinstance(spec, list):
        if not spec:
            raise SweepError(f"{where}: an empty list")
        param = Param(key, tuple(spec))
        if len(set(map(json.dumps, param.choices()))) < len(spec):
            raise SweepError(f"{where}: two values look the same ({', '.join(map(label, spec))})")
        return param
    if not isinstance(spec, dict) or not {"low", "high"} <= spec.keys() or spec.keys() - {"low", "high", "step", "log"}:
        raise SweepError(f"{where}: give a list of values or a range {{low, high, step}} / {{low, high, log: true}}")
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    numbers = [v for v in (low, high, step) if v is not None]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        raise SweepError(f"{where}: low, high and step must be numbers, got {spec}")
    if not isinstance(log, bool) or not low < high or (step is not None and step <= 0) or (log and low <= 0):
        raise SweepError(f"{where}: a range needs low < high, step > 0, log true/false (and low > 0 with log)")
    if log and step is not None and step != 1:
        raise SweepError(f"{where}: a log range takes no step")
    if step is not None and abs((high - low) / step - round((high - low) / step)) > 1e-9:
        raise SweepError(f"{where}: high - low ({high - low:g}) is not a multiple of step {step:g}")
    return Param(key, (), low, high, step, log)


@dataclass(frozen=True)
class Study:
    """A parsed study file (see the module docstring)."""

    path: str
    metric: str
    direction: str
    sampler: str
    trials: int | None
    params: tuple[Param, ...]
    pruner: dict[str, Any]  # {name: none or median, startup_trials, warmup_epochs}

    def grid_points(self) -> list[dict[str, Any]]:
        """Every combination of the parameters' grids, in the file's order (the first key varies slowest)."""
        keys = [p.key for p in self.params]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(p.grid() for p in self.params))]

    def budget(self, override: int | None = None) -> int:
        """Trials to run in all: ``--trials``, else ``trials``; a grid's size at most (and by default)."""
        wanted = override if override is not None else self.trials
        if self.sampler != "grid":
            if wanted is None:
                raise SweepError(f"{self.path}: sampler {self.sampler} needs `trials:` (or --trials N)")
            return wanted
        size = len(self.grid_points())
        return size if wanted is None else min(wanted, size)

    def make_sampler(self, budget: int) -> Any:
        """Optuna's ``TPESampler`` or ``RandomSampler`` for ``budget`` trials; a grid's points are enqueued instead.

        TPE samples at random for its first trials (a third of the budget, 2 to 10), then models the rest. A grid
        needs no sampler (not Optuna's GridSampler, which fails on trials it did not assign: see :mod:`.coordinate`).
        """
        from optuna.samplers import RandomSampler, TPESampler

        if self.sampler == "tpe":
            return TPESampler(n_startup_trials=max(2, min(10, budget // 3)))
        return RandomSampler(seed=0 if self.sampler == "grid" else None)

    def make_pruner(self) -> Any:
        from optuna.pruners import MedianPruner, NopPruner

        if self.pruner["name"] == "none":
            return NopPruner()
        return MedianPruner(n_startup_trials=self.pruner["startup_trials"], n_warmup_steps=self.pruner["warmup_epochs"])

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {p.key: p.suggest(trial) for p in self.params}

    def signature(self) -> str:
        """What must match for a second process to join the study under the same name."""
        params = {p.key: list(p.values) if not p.is_range else [p.low, p.high, p.step, p.log] for p in self.params}
        return json.dumps([self.metric, self.direction, self.sampler, params], sort_keys=True, default=str)


def load_study(value: str, override: int | None = None) -> Study:
    """Read and check the study file ``--study`` names: a path, or a shipped study (``optimizers`` =
    ``configs/studies/optimizers.yaml``); ``override``: ``--trials``, which may supply the budget."""
    path = Path(value) if Path(value).is_file() else Path(resolve_config(f"studies/{value.removeprefix('studies/')}"))
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in (config_dir() / "studies").glob("*.yaml")))
        raise SweepError(f"study {value!r} not found: give a file or a shipped study ({names})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f", line {line + 1}" if line is not None else ""
        raise SweepError(f"{path}: not valid YAML ({getattr(err, 'problem', err)}{where})") from None
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: a study is a mapping with {', '.join(KEYS)}")
    if unknown := sorted(map(str, raw.keys() - set(KEYS))):
        raise SweepError(f"{path}: unknown key(s) {', '.join(unknown)}: a study has {', '.join(KEYS)}")
    metric, direction, sampler = raw.get("metric"), raw.get("direction"), raw.get("sampler", "grid")
    if not isinstance(metric, str) or not metric:
        raise SweepError(f"{path}: metric must name a logged metric such as val/acc, got {metric!r}")
    if direction not in ("maximize", "minimize"):
        raise SweepError(f"{path}: direction must be maximize or minimize, got {direction!r}")
    if sampler not in ("grid", "tpe", "random"):
        raise SweepError(f"{path}: sampler must be grid, tpe or random, got {sampler!r}")
    trials = raw.get("trials")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool) or trials < 1):
        raise SweepError(f"{path}: trials must be a whole number >= 1, got {trials!r}")
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{path}: params must map settings to a list of values or a range, got {params!r}")
    parsed = tuple(parse_param(key, spec) for key, spec in params.items())
    pruner = raw.get("pruner", "none")  # none, median or {name: median, ...}; defaults: Optuna's
    spec = {"name": pruner} if isinstance(pruner, str) else pruner
    if not isinstance(spec, dict) or spec.get("name") not in ("none", "median"):
        raise SweepError(f"{path}: pruner must be none or median (or {{name: median, ...}}), got {pruner!r}")
    extra = spec.keys() - {"name", "startup_trials", "warmup_epochs"}
    numbers = {k: spec.get(k, default) for k, default in (("startup_trials", 5), ("warmup_epochs", 0))}
    if extra or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers.values()):
        raise SweepError(f"{path}: pruner takes name, startup_trials and warmup_epochs (integers >= 0), got {pruner!r}")
    study = Study(str(path), metric, direction, sampler, trials, parsed, {"name": spec["name"], **numbers})
    study.budget(override)  # a grid's float ranges need a step; tpe/random need a number of trials (or --trials)
    return study
