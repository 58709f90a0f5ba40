"""dlbasics against plain PyTorch doing the same work (``peer_same_recipe.py``), whole processes, interleaved.

    python benchmarks/same_recipe.py            # check round + 3 repeats, start-up x5, steps.py x3 (~20 min, 2 cores)
    python benchmarks/same_recipe.py --quick    # check round + 1 repeat, start-up x2, no steps.py (~4 min)
    python benchmarks/same_recipe.py --check    # only the check: the same metrics on both sides?

For each experiment (``linear_regression``, ``rule_classifier``, ``sine_lstm``, ``fashion_mnist_cnn_sprint``) it
runs ``dlbasics fit --config <name>`` as a user does (the console script, in a fresh directory; plus the
``bench_callbacks.Timeline`` callback) and the peer, alternating which goes first, and times each process from
spawn to exit. Both print the same epoch boundaries, so both split the same way (``split``): start-up (spawn to
the first training step), training steps, each epoch's fixed cost (its last step to the next epoch's first step:
validation, epoch-end metrics, loggers, checkpoints, callbacks), test (end of training to the end of the test,
dlbasics' end-of-fit pictures included) and exit. Ratios are taken pair by pair, then summarised (median,
min-max); ``peer_plain`` (the peer with ``--plain-process``, full runs only) shows what the process-level
settings that both sides share are worth. The first round is not timed: it warms the caches and checks that both
sides reach the same metrics (``metrics.csv``, every common column and epoch; equal to 1e-5), as every timed round
does again. Start-up: ``python -c "import torch"``, ``python -c "import lightning"``, ``dlbasics --version`` and
``dlbasics fit --help``, interleaved. Results: ``results/same_recipe[_quick].{json,md}`` (see ``same_recipe_report``).
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from same_recipe_report import summarise, write_outputs

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EXPERIMENTS = ("linear_regression", "rule_classifier", "sine_lstm", "fashion_mnist_cnn_sprint")
BIN = Path(sys.executable).parent
TOLERANCE = 1e-5


def spawn(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` in ``cwd``: its JSON event lines, wall and CPU seconds (spawn to exit), peak RSS in MiB.

    CPU seconds (user + system, from ``wait4``) hardly move when other jobs share the cores; wall seconds do.
    """
    env = {
        **os.environ,
        "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "BENCH_SPAWN_TIME": repr(time.time()),
        "PYTHONUNBUFFERED": "1",
    }
    with open(cwd / "stdout", "wb") as out, open(cwd / "stderr", "wb") as err:
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.time() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(cmd[:4])}… failed:\n{(cwd / 'stderr').read_text()[-2000:]}")
    lines = (cwd / "stdout").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith('{"event"')]
    cpu = usage.ru_utime + usage.ru_stime
    return {"events": events, "wall": wall, "cpu": cpu, "peak_rss_mib": usage.ru_maxrss / 1024}


def command(side: str, experiment: str) -> list[str]:
    if side.startswith("peer"):
        plain = ["--plain-process"] if side == "peer_plain" else []
        return [sys.executable, str(HERE / "peer_same_recipe.py"), "--experiment", experiment, "--out", ".", *plain]
    return [str(BIN / "dlbasics"), "fit", "--config", experiment, "--trainer.callbacks+=bench_callbacks.Timeline"]


def epoch_metrics(path: Path) -> dict[tuple[str, int], float]:
    """``{(column, epoch): value}`` of a ``metrics.csv`` (dlbasics writes train and val on separate rows)."""
    values = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("epoch"):
                for key, value in row.items():
                    if "/" in key and value:
                        values[key, int(row["epoch"])] = float(value)
    return values


def split(events: list[dict], wall: float, cpu: float) -> dict:
    """Where one process's seconds went, from its ``epoch``/``train_end``/``test_end`` events (see the module doc):
    wall seconds, and the same split in process CPU seconds (``cpu_*``), which other jobs hardly move."""
    at = {e["event"]: e for e in events}
    epochs = sorted((e for e in events if e["event"] == "epoch"), key=lambda e: e["epoch"])
    end = at.get("test_end") or at.get("fit_end") or at["train_end"]  # a fit without its test
    out = {}
    for prefix, clock, total in (("", "since_start", wall), ("cpu_", "cpu", cpu)):
        first, last = ("first_step_cpu", "last_step_cpu") if prefix else ("first_step_at", "last_step_at")
        ends = [e[first] for e in epochs[1:]] + [at["train_end"][clock]]
        spans = [(e[last] - e[first]) / e["steps"] for e in epochs]
        fixed = [end - e[last] for e, end in zip(epochs, ends, strict=True)]
        startup = epochs[0][first]
        out |= {
            f"{prefix}startup": startup,
            f"{prefix}after_startup": total - startup,
            f"{prefix}training": at["train_end"][clock] - startup,  # steps + every epoch's fixed cost
            f"{prefix}steps": sum(e[last] - e[first] for e in epochs),
            f"{prefix}step_ms": 1e3 * statistics.median(spans[1:] or spans),  # epoch 1 pays the warm-up
            f"{prefix}fixed_per_epoch": statistics.median(fixed),
            f"{prefix}fixed": sum(fixed),
            f"{prefix}test": end[clock] - at["train_end"][clock],
            f"{prefix}exit": total - end[clock],
        }
    return out | {"wall": wall, "cpu": cpu, "imports": at["imports"]["since_start"]}


def one_run(side: str, experiment: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"{experiment}-{side}-", dir=RESULTS / "tmp"))
    try:
        res = spawn(command(side, experiment), work)
        csv_path = work / ("lightning_logs/version_0/metrics.csv" if side == "dlbasics" else "metrics.csv")
        metrics = epoch_metrics(csv_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = {"side": side, "experiment": experiment, "metrics": metrics, "cpu": res["cpu"]}
    return info | {"peak_rss_mib": res["peak_rss_mib"]} | split(res["events"], res["wall"], res["cpu"])


def compare(peer: dict, ours: dict) -> dict:
    """Largest |difference| of the metrics both runs logged: validation/test, and training."""
    common = sorted(peer["metrics"].keys() & ours["metrics"].keys())
    diff = {k: abs(peer["metrics"][k] - ours["metrics"][k]) for k in common}
    evaluation = [d for (name, _), d in diff.items() if not name.startswith("train/")]
    training = [d for (name, _), d in diff.items() if name.startswith("train/")]
    worst = max(diff, key=diff.get) if diff else None
    return {
        "compared": len(common),
        "max_eval_diff": max(evaluation, default=float("nan")),
        "max_train_diff": max(training, default=float("nan")),
        "worst": f"{worst[0]} epoch {worst[1]}" if worst else None,
        "equal": bool(common) and max(diff.values()) <= TOLERANCE,
        "test": {k[0]: (peer["metrics"][k], ours["metrics"][k]) for k in common if k[0].startswith("test/")},
    }


def startup_runs(repeats: int) -> list[dict]:
    """Whole-process seconds of the start-up commands, interleaved."""
    commands = {
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "python -c 'import lightning'": [sys.executable, "-c", "import lightning"],
        "dlbasics --version": [str(BIN / "dlbasics"), "--version"],
        "dlbasics fit --help": [str(BIN / "dlbasics"), "fit", "--help"],
    }
    runs = []
    work = Path(tempfile.mkdtemp(dir=RESULTS / "tmp"))
    for repeat in range(repeats + 1):  # the first round warms the page cache
        for name, cmd in commands.items():
            res = spawn(cmd, work)
            if repeat:
                runs.append({"command": name, "wall": res["wall"], "cpu": res["cpu"]})
    shutil.rmtree(work, ignore_errors=True)
    return runs


def steps_runs(repeats: int) -> list[dict]:
    """``steps.py``: dlbasics' training step against a raw loop in one process (tiny experiments)."""
    work = Path(tempfile.mkdtemp(dir=RESULTS / "tmp"))
    res = spawn([sys.executable, str(HERE / "steps.py"), "--repeats", str(repeats), "--epochs", "4"], work)
    shutil.rmtree(work, ignore_errors=True)
    return [e for e in res["events"] if e["event"] == "steps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 timed repeat, start-up x2, no steps.py")
    parser.add_argument("--check", action="store_true", help="only the untimed check round")
    parser.add_argument("--repeats", type=int, help="timed repeats (default 3, quick 1)")
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    parser.add_argument("--plain-peer", action=argparse.BooleanOptionalAction, help="also time the peer with "
                        "--plain-process (default: on, off with --quick)")  # fmt: skip
    args = parser.parse_args()
    repeats = 0 if args.check else args.repeats or (1 if args.quick else 3)
    sides = ("peer", "dlbasics") + (
        ("peer_plain",) if (args.plain_peer is None and not args.quick) or args.plain_peer else ()
    )
    (RESULTS / "tmp").mkdir(parents=True, exist_ok=True)
    for folder in (HERE.parent / "dlbasics", HERE):  # bytecode, as a regular install leaves it
        compileall.compile_dir(folder, quiet=1)
    runs, checks = [], []
    for repeat in range(repeats + 1):
        for i, experiment in enumerate(args.experiments):
            shift = (repeat + i) % len(sides)  # each side takes each place in turn
            pair = {side: one_run(side, experiment) for side in sides[shift:] + sides[:shift]}
            check = compare(pair["peer"], pair["dlbasics"]) | {"experiment": experiment, "timed": repeat > 0}
            checks.append(check)
            print(
                f"{'round ' + str(repeat) if repeat else 'check'} {experiment}: "
                f"dlbasics {pair['dlbasics']['wall']:.2f} s, peer {pair['peer']['wall']:.2f} s; "
                f"metrics max |diff| {check['max_eval_diff']:.2g} (val/test), {check['max_train_diff']:.2g} (train)",
                flush=True,
            )
            if repeat:
                runs += [run | {"repeat": repeat} for run in pair.values()]
    if args.check:
        sys.exit(0 if all(c["equal"] for c in checks) else 1)
    print("start-up commands …", flush=True)
    startup = startup_runs(2 if args.quick else 5)
    steps = [] if args.quick else (print("steps.py …", flush=True) or steps_runs(repeats))
    result = summarise(runs, checks, startup, steps, args.quick)
    print(write_outputs(result, RESULTS))


if __name__ == "__main__":
    main()
