"""The tour: every experiment with its reference recipe, checked against the original material.

    dlbasics-tour --quick        # a few minutes on 2 CPU cores
    dlbasics-tour                # the full recipes (under 10 minutes on 2 CPU cores)
    python -m dlbasics.tour --quick --only linear_regression rule_classifier

Runs go through the same LightningCLI configs users run by hand, one after the other in this process,
into ``lightning_logs/tour/<date-time>/runs/version_N``: one ``fit`` per experiment, which also tests the
best checkpoint (``test_after_fit``), so training and test metrics and pictures share one run directory.
``REPORT.md`` beside them holds, per experiment, the reference value from the original material, the
measured value, pass/fail, wall time, the run directory and its pictures. The exit status is non-zero when
an experiment that ran misses its reference threshold; an experiment whose data cannot be had is reported
as skipped, with how to get it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dlbasics.resources import config_dir, load_yaml
from dlbasics.runs import atomic_write, read_csv_rows, read_metrics
from dlbasics.sweep import curriculum
from dlbasics.sweep import main as sweep

CONFIGS = config_dir()
Judge = Callable[[dict[str, float], float], tuple[str, bool]]


@dataclass
class Stop:
    """One tour stop: a config, how to judge its metrics against a bar, and what the quick tour overrides.

    ``bars`` maps the data's label (``""`` for the experiments with their own data, else ``MNIST`` and
    ``Fashion-MNIST``: those run on MNIST when it can be had, else on Fashion-MNIST) to its ``(quick, full)``
    bars; ``judge(metrics, bar)`` says what was measured and whether it passed.
    """

    name: str
    config: str
    reference: str
    judge: Judge
    bars: dict[str, tuple[float, float]]
    quick: list[str] = field(default_factory=list)
    fashion: tuple[str, str] | None = None  # the (full, quick) configs on Fashion-MNIST, when not ``config``


def close_to(keys: list[str], truth: list[float]) -> Judge:
    def judge(metrics: dict[str, float], bar: float) -> tuple[str, bool]:
        got = [metrics.get(k, float("nan")) for k in keys]
        ok = all(abs(g - t) <= bar for g, t in zip(got, truth, strict=True))
        return "[" + ", ".join(f"{g:.4f}" for g in got) + "]", ok

    return judge


def at_least(key: str) -> Judge:
    return lambda m, bar: (f"{key} = {m.get(key, float('nan')):.4f} (bar {bar})", m.get(key, 0.0) >= bar)


def at_most(key: str) -> Judge:
    return lambda m, bar: (f"{key} = {m.get(key, float('nan')):.2e} (bar {bar:g})", m.get(key, float("inf")) <= bar)


#: The curriculum in order (the quick tour applies each stop's ``quick`` overrides and quick bars).
EXPERIMENTS = [
    Stop("linear_regression", "linear_regression.yaml", "d2l 3.2: w = [2, -3.4], b = 4.2 (error ~1e-3)",
         close_to(["fit/w0", "fit/w1", "fit/b"], [2.0, -3.4, 4.2]), {"": (0.01, 0.01)}),
    Stop("polynomial_regression", "polynomial_regression.yaml", "seed task: y = 2x² + 3x + 4 → [4, 3, 2]",
         close_to(["fit/b", "fit/w0", "fit/w1"], [4.0, 3.0, 2.0]), {"": (0.05, 0.05)},
         quick=["--trainer.max_epochs", "10"]),
    Stop("rule_classifier", "rule_classifier.yaml", "x[0] > x[4] is linearly separable: ≥ 0.99 accuracy",
         at_least("test/acc"), {"": (0.99, 0.99)}),
    Stop("mnist_mlp_fishbook", "mnist_mlp_fishbook.yaml",
         "fish book ch. 4: 784-50-10 sigmoid SGD ≈ 0.95 on MNIST; Zalando's MLP ≈ 0.87 on Fashion-MNIST",
         at_least("test/acc"), {"MNIST": (0.92, 0.94), "Fashion-MNIST": (0.75, 0.83)},
         quick=["--trainer.max_steps", "3000"]),
    Stop("mnist_cnn", "mnist_cnn.yaml",
         "2-conv CNN: ≥ 0.992 on MNIST; Zalando's table 0.876 to 0.932 for 2-conv nets on Fashion-MNIST",
         at_least("test/acc"), {"MNIST": (0.985, 0.992), "Fashion-MNIST": (0.90, 0.92)},
         fashion=("fashion_mnist_cnn.yaml", "fashion_mnist_cnn_sprint.yaml")),
    Stop("sine_lstm", "sine_lstm.yaml", "seed 003: next-value forecast, MSE ≤ 1e-3",
         at_most("val/loss"), {"": (1e-3, 1e-3)}),
    Stop("sine_gru", "sine_gru.yaml", "seed 003 (GRU): next-value forecast, MSE ≤ 1e-3",
         at_most("val/loss"), {"": (1e-3, 1e-3)}),
]  # fmt: skip


def loggers(tour_dir: Path) -> str:
    """The CLI's CSV + TensorBoard loggers, writing into the tour's own folder (``<tour_dir>/runs/version_N``)."""
    from dlbasics.callbacks import LOGGERS

    return json.dumps([{**logger, "init_args": {"save_dir": str(tour_dir), "name": "runs"}} for logger in LOGGERS])


def restore_pictures(config: Path) -> list[str]:
    """Arguments that append the picture callbacks to a config whose ``trainer.callbacks`` leaves them out (the
    sprint recipe, which saves their time); the report shows every experiment's pictures."""
    from dlbasics.pictures import PICTURES

    callbacks = ((load_yaml(config) or {}).get("trainer") or {}).get("callbacks")
    if callbacks is None or "dlbasics.pictures" in str(callbacks):
        return []
    names = [f"{cls.__module__}.{cls.__qualname__}" for cls in PICTURES if cls.__name__ != "PredictionGrid"]
    return [f"--trainer.callbacks+={name}" for name in names]


@dataclass
class Result:
    """What the report says of one experiment (``passed`` is ``None`` when it was skipped)."""

    name: str
    reference: str
    measured: str
    passed: bool | None
    seconds: float = 0.0
    runs: list[Path] = field(default_factory=list)
    data: str = ""
    details: str = ""  # markdown under the pictures (the comparisons' tables and orderings)


def run_experiment(exp: Stop, quick: bool, tour_dir: Path) -> Result:
    """Fit through the CLI (which tests the best checkpoint at its end), then judge the last logged metrics."""
    from dlbasics.cli import main
    from dlbasics.data.mnist import first_available

    config, extra, label = exp.config, [], ""
    if "MNIST" in exp.bars:  # MNIST when its files are there (or download), else Fashion-MNIST
        picked = first_available()
        if isinstance(picked, str):
            return Result(exp.name, exp.reference, picked, None)
        label, extra = picked
        if label == "Fashion-MNIST" and exp.fashion:
            config = exp.fashion[1 if quick else 0]
    args = ["fit", "--config", str(CONFIGS / config), *extra, "--trainer.logger", loggers(tour_dir)]
    args += [*restore_pictures(CONFIGS / config), "--test_after_fit", "true", *(exp.quick if quick else [])]
    start = time.perf_counter()
    runs: list[Path] = []
    try:
        main(args)
        runs.append(max((tour_dir / "runs").glob("version_*"), key=lambda p: int(p.name.split("_")[1])))
        metrics = {key: values[-1] for key, values in read_metrics(runs[0]).items()}
        measured, passed = exp.judge(metrics, exp.bars[label][0 if quick else 1])
    except SystemExit as err:
        measured, passed = f"run failed (exit {err.code})", False
    return Result(exp.name, exp.reference, measured, passed, time.perf_counter() - start, runs, label)


def run_comparison(comp: curriculum.Comparison, quick: bool, tour_dir: Path) -> Result:
    """One comparison as one ``dlbasics sweep``, judged by the notes' claims."""
    from dlbasics.data.mnist import first_available

    print(f"\n[comparison] {comp.study} ({comp.config})", flush=True)
    picked = first_available() if comp.data else ("", [])  # (label, CLI arguments), or why there is none
    if importlib.util.find_spec("optuna") is None:
        picked = "skipped: needs Optuna (pip install 'dlbasics[sweep]')"
    if isinstance(picked, str):
        return Result(comp.study, comp.reference, picked, None)
    label, extra = picked
    start, sweep_dir = time.perf_counter(), tour_dir / "runs" / "sweeps" / comp.study
    args = ["--config", str(CONFIGS / comp.config), "--study", comp.study, "--name", comp.study, *extra]
    args += ["--trainer.logger", loggers(tour_dir), *(comp.quick if quick else comp.full)]
    try:
        sweep(args)
    except SystemExit as stop:
        if stop.code:
            return Result(comp.study, comp.reference, f"sweep failed (exit {stop.code})", False)
    trials = read_csv_rows(sweep_dir / "trials.csv")
    claims, measured, held = curriculum.judge(comp, trials)
    text = curriculum.details(comp, trials, claims, tour_dir)
    return Result(comp.study, comp.reference, measured, held, time.perf_counter() - start, [sweep_dir], label, text)


def run_scratch() -> tuple[Result, str]:
    """The NumPy reference's check table (analytic vs numerical vs autograd gradients, Adam, gates)."""
    from dlbasics.scratch.check import format_table, run_checks

    start = time.perf_counter()
    checks = run_checks()
    ok = sum(r.passed for r in checks)
    reference, measured = "hand-written gradients = numerical = torch autograd", f"{ok}/{len(checks)} checks pass"
    result = Result("scratch", reference, measured, ok == len(checks), time.perf_counter() - start)
    return result, format_table(checks)


def write_report(tour_dir: Path, results: list[Result], scratch_table: str, quick: bool, seconds: float) -> Path:
    """``REPORT.md``: summary table, then each experiment's run directories and pictures."""
    import torch

    mark = {True: "pass", False: "**FAIL**", None: "skipped"}
    lines = [
        f"# dlbasics tour — {tour_dir.name} ({'quick' if quick else 'full'})",
        "",
        f"{platform.node()} · {platform.processor() or platform.machine()} · torch {torch.__version__} · "
        f"{torch.get_num_threads()} threads (1 for the tiny models) · total {seconds:.0f} s",
        "",
        "| experiment | data | reference (original material) | measured | result | time | run |",
        "|---|---|---|---|---|---:|---|",
    ]
    for r in results:
        run = ", ".join(f"[{p.name}]({p.relative_to(tour_dir)})" for p in r.runs) or "—"
        cells = [r.name, r.data or "—", r.reference, r.measured, mark[r.passed], f"{r.seconds:.1f} s", run]
        lines.append("| " + " | ".join(cells) + " |")
    counts = {k: sum(r.passed is k for r in results) for k in (True, False, None)}
    lines += ["", f"**{counts[True]} passed, {counts[False]} failed, {counts[None]} skipped**", ""]
    for r in results:
        pictures = [p for run in r.runs for p in sorted(run.glob("*.png"))]
        if pictures or r.details:
            lines += [f"## {r.name}", ""] + [f"![{p.stem}]({p.relative_to(tour_dir)})" for p in pictures] + [""]
            lines += [r.details, ""] if r.details else []
    lines += ["## scratch: the NumPy reference against torch", "", scratch_table, ""]
    path = tour_dir / "REPORT.md"
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the tour; returns (and exits with) 1 when an experiment that ran missed its reference."""
    parser = argparse.ArgumentParser(prog="dlbasics-tour", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (minutes on 2 CPU cores)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments (and scratch)")
    parser.add_argument("--out", default="lightning_logs/tour", help="folder of the dated tour folders")
    args = parser.parse_args(argv)
    names = [e.name for e in EXPERIMENTS] + curriculum.NAMES  # the experiments, then the comparisons (dlbasics sweep)
    if args.only and (unknown := set(args.only) - {"scratch", *names}):
        parser.error(f"unknown experiment(s) {sorted(unknown)}: use {names}")
    todo = [e for e in EXPERIMENTS if not args.only or e.name in args.only]
    tour_dir = Path(args.out) / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    tour_dir.mkdir(parents=True, exist_ok=True)
    start, results = time.perf_counter(), []
    for i, exp in enumerate(todo, start=1):
        print(f"\n[{i}/{len(todo) + 1}] {exp.name} ({time.perf_counter() - start:.0f} s elapsed)", flush=True)
        r = run_experiment(exp, args.quick, tour_dir)
        verdict = "skipped" if r.passed is None else "pass" if r.passed else "FAIL"
        print(f"[{i}/{len(todo) + 1}] {exp.name}: {r.measured} → {verdict} ({r.seconds:.1f} s)", flush=True)
        results.append(r)
    comparisons = [c for c in curriculum.COMPARISONS if not args.only or c.study in args.only]
    results += [run_comparison(c, args.quick, tour_dir) for c in comparisons]
    print(f"\n[{len(todo) + 1}/{len(todo) + 1}] scratch check table", flush=True)
    scratch, table = run_scratch()
    results.append(scratch)
    report = write_report(tour_dir, results, table, args.quick, time.perf_counter() - start)
    summary = report.read_text().split("\n\n## ")[0]  # the table and the counts
    print(f"\n{summary}\n\nreport: {report}", flush=True)
    return 1 if any(r.passed is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
