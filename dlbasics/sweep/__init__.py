"""``dlbasics sweep``: compare and search on Optuna; every trial is an ordinary ``dlbasics fit`` run.

    dlbasics sweep --config mnist_mlp_fishbook --study optimizers
    dlbasics sweep --config fashion_mnist_cnn_sprint --study lr --trials 16 --workers 2

Everything is checked before a trial starts, each problem one line, with no sweep folder and no ``version_N`` left
behind: the study file (:mod:`.study`), the experiment and every parameter value through the CLI's own parser
(``--print_config`` parses without building anything), the storage. Trials run in :mod:`.runner` and
:mod:`.coordinate`; :mod:`.report` writes the sweep folder. Optuna, an optional extra (``pip install
'dlbasics[sweep]'``), is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

import yaml

from dlbasics.resources import expand_config_args
from dlbasics.sweep.study import ERROR, SweepError, cli_value, label, load_study

HELP = """Run a study: the experiment once per trial (each an ordinary run in lightning_logs/version_N), then
compare. Options not listed below go to every trial's `dlbasics fit` (e.g. --trainer.max_epochs 3).

The study (--study NAME for a shipped one: optimizers, init, activations, recurrent, lr; or a YAML path):
  metric: val/acc            # a metric the runs log; a trial's value is its best over the epochs
  direction: maximize        # or minimize
  sampler: grid              # grid | tpe | random
  trials: 8                  # grid: defaults to the grid's size
  pruner: none               # none | median (after each validation, on metric; Optuna's defaults) |
                             #   {name: median, startup_trials: 2, warmup_epochs: 1}
  params:                    # keys exactly as `dlbasics fit` takes them on its command line, without --
    model.init_args.optimizer.init_args.lr: [0.003, 0.03]            # a list of values (one value: all trials use it)
    data.init_args.batch_size: {low: 32, high: 256, step: 32}        # a range (int, or float with log: true)
    model.init_args.optimizer:                                       # a class choice: class and arguments
      - {class_path: torch.optim.SGD, init_args: {lr: 0.01}}
      - {class_path: torch.optim.Adam, init_args: {lr: 0.001}}
    model: [dlbasics.models.SineLSTM, dlbasics.models.SineGRU]       # or a model class (its settings carry over)

Writes lightning_logs/sweeps/NAME/: trials.csv, best.yaml (`dlbasics fit --config …/best.yaml` reproduces the
best trial), comparison.png (every trial's curves), Optuna's history.png and importance.png where they say
something, and the study's storage (journal.log). Each trial's own output is in its run's console.log; the
console shows one line per trial, then the table. Rerunning the same command continues the sweep (Ctrl-C
stops it: exit 130). Several processes or machines: the same command with the same --name and a shared
--storage (a PostgreSQL/MySQL URL, or the journal file on a shared filesystem) work on one study, no grid
point twice. Watch it live: optuna-dashboard lightning_logs/sweeps/NAME/journal.log (or the --storage URL)."""
OPTIONS = ("--study", "--trials", "--workers", "--storage", "--name")
INSTALL = "dlbasics sweep needs Optuna: pip install 'dlbasics[sweep]' (or: pip install optuna optuna-integration)"


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one :class:`SweepError` line."""

    def error(self, message: str) -> NoReturn:
        raise SweepError(message)


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own options, and the arguments for every trial's ``fit`` (in their order, ``--config`` too)."""
    parser = Parser(prog="dlbasics sweep", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="the experiment (then overlays), as for fit")
    parser.add_argument("--study", required=True, help="a shipped study's name or a study YAML")
    parser.add_argument("--trials", type=int, help="trials in all (overrides the study's trials)")
    parser.add_argument("--workers", type=int, default=1, help="trials at once, in N processes (default 1)")
    parser.add_argument("--storage", help="Optuna storage URL, or a journal file (default: in the sweep folder)")
    parser.add_argument("--name", help="the sweep's name (default: EXPERIMENT-STUDY); the same name continues it")
    args, _ = parser.parse_known_args(argv)
    if (args.trials is not None and args.trials < 1) or args.workers < 1:
        raise SweepError("--trials and --workers must be >= 1")
    fit_args, skip = [], False
    for arg in argv:
        if skip or arg in OPTIONS or arg.startswith(tuple(f"{o}=" for o in OPTIONS)):
            skip = not skip and arg in OPTIONS
            continue
        fit_args.append(arg)
    return args, fit_args


def check_params(fit_args: list[str], study: Any) -> None:
    """Show every parameter value to the CLI's parser (a few values at once; one by one to name a culprit)."""
    from dlbasics.sweep.runner import print_config

    checks = {p.key: [p.low, p.high] if p.is_range else list(p.values) for p in study.params}  # a range: its ends
    for i in range(max(map(len, checks.values()))):
        pairs = [(key, values[i % len(values)]) for key, values in checks.items()]
        try:
            print_config([*fit_args, *(a for key, value in pairs for a in (f"--{key}", cli_value(value)))])
        except SweepError:
            for key, value in pairs:
                try:
                    print_config([*fit_args, f"--{key}", cli_value(value)])
                except SweepError as err:
                    raise SweepError(f"study param {key} = {label(value)}: {err}") from None
            raise


def prepare(args: argparse.Namespace, fit_args: list[str]) -> Any:
    """Check everything and return the sweep's :class:`~dlbasics.sweep.runner.Plan` (nothing written yet)."""
    from dlbasics.sweep.runner import Plan, print_config

    study = load_study(args.study, args.trials)
    loggers = (yaml.safe_load(print_config(fit_args)).get("trainer") or {}).get("logger")
    loggers = loggers if isinstance(loggers, list) else [loggers]
    csv = [lg for lg in loggers if isinstance(lg, dict) and str(lg.get("class_path")).endswith(".CSVLogger")]
    if not csv:
        raise SweepError("a sweep reads each trial's metrics.csv: trainer.logger must include a CSVLogger")
    csv_args = csv[0].get("init_args") or {}  # its folder holds the version_N runs
    log_root = Path(csv_args.get("save_dir") or ".") / (csv_args.get("name") or "")
    check_params(fit_args, study)
    name = args.name or f"{Path(args.config[0]).stem}-{Path(study.path).stem}"
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.=-]*", name):
        raise SweepError(f"--name {name!r}: use letters, digits, '_', '-', '.' (it names a folder)")
    sweep_dir = log_root / "sweeps" / name
    storage = args.storage or str(sweep_dir / "journal.log")
    return Plan(name, sweep_dir, storage, study, fit_args, loggers, log_root, study.budget(args.trials), args.workers)


def fail(message: str, status: int = 2) -> NoReturn:
    print(f"{ERROR}{message}", file=sys.stderr)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    """``dlbasics sweep …`` (``argv``: what follows ``sweep``; the console's by default); exits 0, 1 (a run's metric
    is missing), 2 (bad input, before any trial) or 130 (Ctrl-C)."""
    argv = expand_config_args(sys.argv[2:] if argv is None else [str(a) for a in argv])
    try:
        import optuna
        import optuna_integration  # noqa: F401
    except ImportError:
        fail(INSTALL, 1)
    from dlbasics.sweep import coordinate, report

    coordinate.quiet()
    made: Path | None = None  # the outermost folder this sweep creates (removed again if it cannot go on)
    try:
        args, fit_args = parse(argv)
        plan = prepare(args, fit_args)
        storage = coordinate.open_storage(args.storage) if args.storage else None  # before any folder is made
        made = next((p for p in [*reversed(plan.sweep_dir.parents), plan.sweep_dir] if not p.exists()), None)
        plan.sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = storage or coordinate.open_storage(plan.storage)
        study, created = coordinate.create_or_join(plan, storage)
    except SweepError as err:
        if made:
            shutil.rmtree(made, ignore_errors=True)
        fail(str(err))
    try:
        status = coordinate.run_all(plan, study, storage)
    except coordinate.MetricMissing as missing:
        outcome = missing.args[0]
        if created:  # the sweep was wrong from its start: leave nothing of it
            optuna.delete_study(study_name=plan.name, storage=storage)
            shutil.rmtree(outcome.run_dir, ignore_errors=True)
            if made:
                shutil.rmtree(made, ignore_errors=True)
        fail(f"metric {plan.study.metric!r} is not logged by these runs; they log {', '.join(outcome.metrics)}", 1)
    report.write_outputs(plan, study)
    sys.exit(status)
