"""What each candidate removal would save in a ``dlbasics fit`` run: whole processes, interleaved, paired.

    python benchmarks/ablations.py rule_classifier [--rounds 4] [--only baseline,no_pictures]
    python benchmarks/ablations.py rule_classifier --warm --rounds 6       # steadier: fits in warm processes
    python benchmarks/ablations.py rule_classifier --only tty,tty_bar_every_10 --tag tty

Every variant is one ``dlbasics fit --config <experiment>`` process (``ablation_patches.py``: patches applied, then
the console script's own entry point; the baseline goes the same way with no patch), with the
``bench_callbacks.Timeline`` callback for the split. A round runs every variant once, in a rotated order; what
a variant saves is the baseline's seconds minus its own *in the same round*, summarised over rounds (median,
min-max), as process CPU seconds (user + system: what other jobs on the machine hardly move) and wall seconds,
whole and per phase. ``tty*`` variants get a terminal as their output (Rich's live progress bar instead of
plain lines): compare them with ``tty``, not with the baseline. Each run's files (``lightning_logs/version_0``)
and ``metrics.csv`` values are compared with the baseline's, so the table says whether a user would see the same
run. Results: ``results/ablations_<experiment>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import machine, median_spread
from same_recipe import HERE, RESULTS, epoch_metrics, spawn, split

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
#: name: (patches, extra arguments, what a user loses; "" = nothing)
VARIANTS = {
    "baseline": ("none", [], ""),
    "tty": ("none", [], ""),
    "tty_bar_every_10": ("bar_every_10", [], ""),
    "epoch_metrics": ("epoch_metrics", [], ""),
    "no_validate_args": ("no_validate_args", [], ""),
    "no_nvml_probe": ("no_nvml_probe", [], ""),
    "fit_parser_only": ("fit_parser_only", [], ""),
    "single_render": ("single_render", [], ""),
    "no_model_summary": ("none", ["--trainer.enable_model_summary", "false"], "the model summary table"),
    "no_sanity_check": ("none", ["--trainer.num_sanity_val_steps", "0"], "the early check of validation_step"),
    "no_progress": ("none", ["--trainer.enable_progress_bar", "false"], "the epoch lines"),
    "no_pictures": ("no_pictures", [], "the pictures"),
    "no_lr_monitor": ("no_lr_monitor", [], "the lr column"),
    "no_loss_guard": ("no_loss_guard", [], "the NaN guard"),
    "no_last_ckpt": ("no_last_ckpt", [], "last.ckpt"),
    "csv_only": ("csv_only", [], "TensorBoard"),
    "no_test": ("none", ["--test_after_fit", "false"], "the test"),
    "keep_all": ("epoch_metrics+no_validate_args+no_nvml_probe+fit_parser_only+single_render", [], ""),
    "floor": ("floor", [*QUIET, "--trainer.num_sanity_val_steps", "0"], "all but the best checkpoint and test"),
    "floor_epoch_metrics": ("floor+epoch_metrics+no_nvml_probe", [*QUIET, "--trainer.num_sanity_val_steps", "0"],
                            "all but the best checkpoint and test"),
}  # fmt: skip
PHASES = ("startup", "steps", "fixed", "test", "exit")


def run_variant(name: str, experiment: str) -> dict:
    patches, extra, _ = VARIANTS[name]
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=RESULTS / "tmp"))
    cmd = [sys.executable, str(HERE / "ablation_patches.py"), patches, "fit", "--config", experiment]
    cmd += ["--trainer.callbacks+=bench_callbacks.Timeline", *extra]
    try:
        res = on_tty(cmd, work) if name.startswith("tty") else spawn(cmd, work)
        run = work / "lightning_logs" / "version_0"
        files = files_of([str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()])
        metrics = epoch_metrics(run / "metrics.csv") if (run / "metrics.csv").is_file() else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"variant": name, "files": files, "metrics": metrics} | split(res["events"], res["wall"], res["cpu"])


def files_of(paths: list[str]) -> list[str]:
    """A run's file names without what changes from run to run (timestamps, host, epoch and step numbers)."""
    return sorted({re.sub(r"\.\d.*|=.*", "", p) for p in paths})


class Worker:
    """``ablation_patches.py --worker``: one warm process of a variant; :meth:`fit` runs one more fit in it."""

    def __init__(self, name: str, experiment: str) -> None:
        patches, extra, _ = VARIANTS[name]
        cmd = [sys.executable, str(HERE / "ablation_patches.py"), "--worker", patches, "fit", "--config", experiment]
        env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.log = open(RESULTS / "tmp" / f"{name}.stderr", "w")  # noqa: SIM115
        args = [*cmd, "--trainer.callbacks+=bench_callbacks.Timeline", *extra]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env
        )
        self.name = name

    def fit(self) -> dict:
        self.proc.stdin.write(f"{RESULTS / 'tmp'}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"worker {self.name} died: {(RESULTS / 'tmp' / f'{self.name}.stderr').read_text()[-2000:]}"
            )
        res = json.loads(line)
        with tempfile.NamedTemporaryFile("w", suffix=".csv") as f:
            f.write(res["csv"])
            f.flush()
            metrics = epoch_metrics(Path(f.name)) if res["csv"] else {}
        info = {"variant": self.name, "files": files_of(res["files"]), "metrics": metrics}
        return info | split(res["events"], res["wall"], res["cpu"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


def warm_runs(names: list[str], experiment: str, rounds: int, group: int) -> list[dict]:
    """Variants in warm worker processes, ``group`` at a time (the baseline in every group), fits interleaved;
    round 0 is not counted (its fit pays the first calls). Rounds are keyed (group, round) for the pairing."""
    runs, others = [], [n for n in names if n != "baseline" and not n.startswith("tty")]
    for g in range(0, len(others), group - 1):
        workers = [Worker(n, experiment) for n in ["baseline", *others[g : g + group - 1]]]
        for i in range(rounds + 1):
            for w in workers[i % len(workers) :] + workers[: i % len(workers)]:
                r = w.fit() | {"round": f"{g}.{i}"}
                print(f"group {g} round {i} {w.name}: CPU {r['cpu']:.2f} s, wall {r['wall']:.2f} s", flush=True)
                runs += [r] if i else []
        for w in workers:
            w.close()
    return runs


def on_tty(cmd: list[str], cwd: Path) -> dict:
    """:func:`spawn` with a pseudo-terminal (120x40) as stdout and stderr; the events go through a file."""
    import fcntl
    import struct
    import termios

    events = cwd / "events.jsonl"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {
        **os.environ,
        "BENCH_EVENTS": str(events),
        "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    start = time.time()
    pid = os.fork()
    if pid == 0:  # the child: the terminal as its standard streams
        os.setsid()
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.chdir(cwd)
        os.execve(cmd[0], cmd, env | {"BENCH_SPAWN_TIME": repr(start), "TERM": "xterm-256color"})
    os.close(slave)
    while True:  # drain the terminal so the child never blocks on it
        try:
            if not os.read(master, 1 << 16):
                break
        except OSError:
            break
    _, status, usage = os.wait4(pid, 0)
    wall = time.time() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{cmd[:6]} failed on a terminal")
    lines = events.read_text().splitlines()
    return {"events": [json.loads(line) for line in lines], "wall": wall, "cpu": usage.ru_utime + usage.ru_stime}


def summarise(runs: list[dict], experiment: str) -> dict:
    rounds = sorted({r["round"] for r in runs})
    base = {r["round"]: r for r in runs if r["variant"] == "baseline"}
    out = {}
    for name, (_, _, loses) in VARIANTS.items():
        rs = {r["round"]: r for r in runs if r["variant"] == name}
        if not rs:
            continue
        saved = {}
        for key in ("cpu", "wall", *(f"cpu_{p}" for p in PHASES), *PHASES):
            saved[key] = median_spread([base[i][key] - rs[i][key] for i in rounds if i in rs])
        first = next(iter(rs.values()))
        diffs = [
            abs(first["metrics"][k] - base[i]["metrics"][k])
            for i in rs
            for k in first["metrics"].keys() & base[i]["metrics"].keys()
        ]
        out[name] = {
            "saves": saved,
            "seconds": {k: median_spread([r[k] for r in rs.values()]) for k in ("cpu", "wall")},
            "files_same": first["files"] == base[rounds[0]]["files"],
            "files_missing": sorted(set(base[rounds[0]]["files"]) - set(first["files"])),
            "metrics_max_diff": max(diffs, default=None),
            "loses": loses,
        }
    return {"experiment": experiment, "machine": machine(), "rounds": len(rounds), "variants": out}


def markdown(result: dict) -> str:
    lines = [
        f"# Candidate removals: `dlbasics fit --config {result['experiment']}` ({result['rounds']} rounds"
        + (", warm processes: no interpreter start, imports or first calls)" if result.get("warm") else ")"),
        "",
        f"{result['machine']['cpu']}, {result['machine']['cores']} cores · {result['machine']['date']} · "
        "saved = baseline - variant in the same round, median (min-max); CPU: process user+system seconds.",
        "",
        "| variant | CPU s saved | wall s saved | "
        + " | ".join(f"{p} CPU saved" for p in PHASES)
        + " | metrics max diff | files | user loses |",
        "|---|" + "---:|" * (2 + len(PHASES)) + "---:|---|---|",
    ]
    cell = lambda r: f"{r['median']:+.3f} ({r['min']:+.2f}..{r['max']:+.2f})"  # noqa: E731
    for name, v in result["variants"].items():
        s = v["saves"]
        files = (
            "same" if v["files_same"] else "missing " + ", ".join(v["files_missing"]) if v["files_missing"] else "other"
        )
        diff = "-" if v["metrics_max_diff"] is None else f"{v['metrics_max_diff']:.1g}"
        lines.append(
            f"| {name} | {cell(s['cpu'])} | {cell(s['wall'])} | "
            + " | ".join(f"{s[f'cpu_{p}']['median']:+.3f}" for p in PHASES)
            + f" | {diff} | {files} | {v['loses'] or 'nothing'} |"
        )
    b = result["variants"]["baseline"]["seconds"]
    lines += ["", f"baseline: CPU {b['cpu']['median']:.2f} s, wall {b['wall']['median']:.2f} s (medians)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--only", help="comma-separated variants (the baseline is always run)")
    warm = "fits in warm worker processes (no interpreter start, imports or first calls): steadier figures"
    parser.add_argument("--warm", action="store_true", help=warm)
    parser.add_argument("--group", type=int, default=5, help="--warm: worker processes at a time (~1 GB each)")
    parser.add_argument("--tag", default="", help="appended to the results' file name (e.g. tty)")
    args = parser.parse_args()
    names = ["baseline", *(n for n in (args.only.split(",") if args.only else VARIANTS) if n != "baseline")]
    (RESULTS / "tmp").mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(0 if args.warm else args.rounds + 1):  # round 0 warms the caches and is not counted
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            r = run_variant(name, args.experiment) | {"round": i}
            print(f"round {i} {name}: CPU {r['cpu']:.2f} s, wall {r['wall']:.2f} s", flush=True)
            runs += [r] if i else []
    if args.warm:
        runs = warm_runs(names, args.experiment, args.rounds, args.group)
    result = summarise(runs, args.experiment) | {"warm": args.warm}
    stem = RESULTS / f"ablations_{args.experiment}{'_warm' if args.warm else ''}{'_' + args.tag if args.tag else ''}"
    stem.with_suffix(".json").write_text(
        json.dumps(result | {"runs": [{k: v for k, v in r.items() if k != "metrics"} for r in runs]}, indent=1)
    )
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
