"""dlbasics side by side with the usual ways, as ratios: one entry point, results under benchmarks/results/.

    python benchmarks/run.py            # full protocol: 3 interleaved repeats (about 25 minutes on 2 cores)
    python benchmarks/run.py --quick    # 1 repeat, capped epochs (a few minutes)

Peers: (a) ``peer_pytorch.py``, the conventional pytorch/examples MNIST CNN script; (b)
``peer_lightning.py``, the same model and DataLoader in Lightning; (c) one ``dlbasics fit --config
configs/fashion_mnist_cnn_sprint.yaml`` process, which tests its best-by-validation checkpoint at the end of
fit (``test_after_fit``); ``bench_callbacks.Phases`` splits its time (imports, data, training, test).
Every process is started by this script, which times it from the spawn (so import and data loading count)
and reads its peak RSS from ``wait4``. Runs are interleaved (a b c a b c …); each ratio is computed pair by
pair within a repeat, then summarised by its median.
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
#: Where the same-recipe section of ``results.md`` starts (``same_recipe.py`` writes it; this script what comes before).
MARK = "<!-- same_recipe.py writes from here on -->"
FMNIST = Path("/usr/share/datasets/fashion-mnist")
TARGET = 0.90


def torchvision_root() -> Path:
    """Fashion-MNIST in torchvision's layout (``FashionMNIST/raw``, uncompressed), for the peers."""
    raw = HERE / ".data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in FMNIST.glob("*-ubyte.gz"):
        target = raw / gz.name.removesuffix(".gz")
        if not target.exists():
            with gzip.open(gz) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return HERE / ".data"


def spawn(cmd: list[str], env_extra: dict[str, str] | None = None) -> dict:
    """Run ``cmd``; return its JSON event lines, wall seconds and peak RSS in MiB (from ``wait4``)."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "BENCH_SPAWN_TIME": repr(time.time()),
        "PYTHONUNBUFFERED": "1",
        **(env_extra or {}),
    }
    work = RESULTS / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(work / "stdout", "wb") as out, open(work / "stderr", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd[:5]))}… failed: {(work / 'stderr').read_text()[-1500:]}")
    lines = (work / "stdout").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith('{"')]
    return {"events": events, "wall": wall, "peak_rss_mib": usage.ru_maxrss / 1024}


PEERS = {"a": "peer_pytorch.py", "b": "peer_lightning.py"}


SPRINT = ROOT / "configs" / "fashion_mnist_cnn_sprint.yaml"


def dlbasics_command(quick: bool) -> list[str]:
    """One ``dlbasics fit`` of the sprint recipe: it trains, then tests the best-by-validation checkpoint."""
    limit = ["--trainer.limit_train_batches", "40"] if quick else []
    return [
        sys.executable,
        "-m",
        "dlbasics",
        "fit",
        "--config",
        str(SPRINT),
        "--trainer.callbacks+=bench_callbacks.Phases",
        "--trainer.enable_progress_bar",
        "false",
        *limit,
    ]


def cnn_runs(kind: str, quick: bool, root: Path) -> dict:
    """One CNN run of peer ``kind`` (a, b or c): epoch time, phases and time to ``TARGET`` test accuracy.

    The peers test after every epoch and stop at the target: their time to target is the epoch's
    ``since_start``. dlbasics (c) is one ``dlbasics fit`` process of the sprint recipe, whose test of the
    best checkpoint at the end of fit is its only look at the test split: its time to target is the
    whole process, spawn to exit, when that test accuracy reaches the target.
    """
    if kind in PEERS:
        cap = ["--max-batches", "150"] if quick else []
        args = ["--root", str(root), "--epochs", "3", "--target", str(TARGET), *cap]
        res = spawn([sys.executable, str(HERE / PEERS[kind]), *args])
        epochs = [e for e in res["events"] if e.get("event") == "epoch"]
        ready = next((e["since_start"] for e in res["events"] if e.get("event") == "ready"), None)
        final_acc = epochs[-1]["test_acc"]
        reached = next((e["since_start"] for e in epochs if e["test_acc"] >= TARGET), None)
        phases = {"ready": ready}
    else:
        res = spawn(dlbasics_command(quick))
        at = {e["event"]: e for e in res["events"]}
        if "test_end" not in at:
            raise RuntimeError(
                "dlbasics fit did not test the best checkpoint after fitting (no test_end event): "
                "the benchmark needs the CLI's test_after_fit (on by default)"
            )
        epochs = [e for e in res["events"] if e.get("event") == "epoch"]
        final_acc = at["test_end"]["test_acc"]
        reached = res["wall"] if final_acc >= TARGET else None
        since = {name: at[name]["since_start"] for name in ("imports", "data_ready", "train_start", "fit_end")}
        phases = {
            "interpreter_imports": since["imports"],
            "data_ready": since["data_ready"] - since["imports"],
            "setup_to_train": since["train_start"] - since["data_ready"],
            "training": since["fit_end"] - since["train_start"],
            "test": at["test_end"]["since_start"] - since["fit_end"],
            "exit": res["wall"] - at["test_end"]["since_start"],
            "best_val_acc": at["fit_end"]["best_val_acc"],
        }
    return {
        "kind": kind,
        "epochs": epochs,
        "phases": phases,
        "time_to_target": reached,
        "peak_rss_mib": res["peak_rss_mib"],
        "epoch_seconds": epochs[0]["epoch_seconds"],
        "samples_per_s": epochs[0]["samples"] / epochs[0]["epoch_seconds"],
        "final_test_acc": final_acc,
        "wall": res["wall"],
    }


def sprint_epochs() -> float:
    """Epochs of the sprint recipe (fractional with ``limit_train_batches`` < 1), read from its config."""
    import yaml

    trainer = yaml.safe_load(SPRINT.read_text()).get("trainer", {})
    limit = trainer.get("limit_train_batches", 1.0)
    return trainer.get("max_epochs", 1) * (limit if isinstance(limit, float) else 1.0)


def spread_cells(r: dict, fmt: str = ".3f", n: bool = True) -> str:
    """``median | min | max [| n]`` of a :func:`median_spread` summary, as Markdown table cells."""
    cells = [f"{r[k]:{fmt}}" for k in ("median", "min", "max")] + ([str(r["n"])] if n else [])
    return " | ".join(cells)


def median_spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def machine() -> dict:
    import torch

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "allocator": "glibc malloc (dlbasics raises its mmap/trim thresholds)",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def summarise(cnn: list[dict], steps: list[dict], quick: bool) -> dict:
    by = {k: [r for r in cnn if r["kind"] == k] for k in "abc"}
    pairs = list(zip(by["a"], by["b"], by["c"], strict=True))
    ratios: dict[str, dict] = {}

    def add(name: str, values: list[float], target: str) -> None:
        if values:
            ratios[name] = {**median_spread(values), "target": target}

    tta = [(a["time_to_target"], c["time_to_target"]) for a, _, c in pairs]
    add("time to 90% FMNIST: (a) / dlbasics", [a / c for a, c in tta if a and c], ">= 10")
    add(
        "time to 90% FMNIST: (b) / dlbasics",
        [b["time_to_target"] / c["time_to_target"] for _, b, c in pairs if b["time_to_target"] and c["time_to_target"]],
        "",
    )
    add("CNN epoch seconds: dlbasics / (a)", [c["epoch_seconds"] / a["epoch_seconds"] for a, _, c in pairs], "<= 0.7")
    add("samples/s: dlbasics / (a)", [c["samples_per_s"] / a["samples_per_s"] for a, _, c in pairs], "")
    add("samples/s: (b) / (a)", [b["samples_per_s"] / a["samples_per_s"] for a, b, _ in pairs], "")
    add("peak RSS: dlbasics / (a)", [c["peak_rss_mib"] / a["peak_rss_mib"] for a, _, c in pairs], "<= 1.1")
    for case in sorted({s["case"] for s in steps}):
        values = [s["ratio"] for s in steps if s["case"] == case]
        add(f"{case} step time: dlbasics / raw loop", values, "<= 3" if case != "sine_lstm" else "")
    absolute = {
        k: {
            m: median_spread([r[m] for r in rs if r[m] is not None])
            for m in ("time_to_target", "epoch_seconds", "samples_per_s", "peak_rss_mib", "final_test_acc", "wall")
            if any(r[m] is not None for r in rs)
        }
        for k, rs in by.items()
    }
    for k, rs in by.items():  # where the seconds go: spawn → imports → data → training → test → exit
        for phase in rs[0]["phases"] if rs else []:
            values = [r["phases"][phase] for r in rs if r["phases"].get(phase) is not None]
            if values:
                absolute[k][f"phase:{phase}"] = median_spread(values)
    for case in sorted({s["case"] for s in steps}):
        absolute[f"steps:{case}"] = {
            m: median_spread([s[m] for s in steps if s["case"] == case]) for m in ("raw_us", "dlbasics_us")
        }
    return {
        "machine": machine(),
        "quick": quick,
        "target_acc": TARGET,
        "dlbasics_epochs": sprint_epochs(),
        "ratios": ratios,
        "absolute": absolute,
        "runs": {"cnn": cnn, "steps": steps},
    }


def write_outputs(result: dict) -> None:
    name = "results_quick" if result["quick"] else "results"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    m = result["machine"]
    epochs = f"{result['dlbasics_epochs']:g} epoch" + ("" if result["dlbasics_epochs"] == 1 else "s")
    lines = [
        f"# dlbasics benchmarks ({'quick' if result['quick'] else 'full'})",
        "",
        f"{m['cpu']}, {m['cores']} cores · Python {m['python']} · torch {m['torch']} · {m['allocator']} · {m['date']}",
        "",
        "(a) pytorch/examples MNIST CNN script · (b) the same in Lightning · dlbasics: "
        f"`configs/fashion_mnist_cnn_sprint.yaml` ({epochs}) as one `dlbasics fit` "
        "process, which tests its best-by-validation checkpoint at the end (its time to target: spawn to exit). "
        f"Fashion-MNIST, target {result['target_acc']:.0%} test accuracy.",
        "",
        "| ratio | median | min | max | n | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for key, r in result["ratios"].items():
        lines.append(f"| {key} | {spread_cells(r, '.2f')} | {r['target']} |")
    lines += ["", "| run | metric | median | min | max |", "|---|---|---:|---:|---:|"]
    for kind, metrics in result["absolute"].items():
        for metric, r in metrics.items():
            lines.append(f"| {kind} | {metric} | {spread_cells(r, '.4g', n=False)} |")
    kept = ""  # same_recipe.py's section of results.md stays
    if (RESULTS / f"{name}.md").is_file() and MARK in (RESULTS / f"{name}.md").read_text():
        kept = "\n" + MARK + (RESULTS / f"{name}.md").read_text().split(MARK, 1)[1]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n" + kept)
    chart(result, RESULTS / f"{name}.png")


def chart(result: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    items = list(result["ratios"].items())
    fig = Figure(figsize=(9, 0.45 * len(items) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    names = [k for k, _ in items]
    ax.barh(
        names,
        [r["median"] for _, r in items],
        xerr=[[r["median"] - r["min"] for _, r in items], [r["max"] - r["median"] for _, r in items]],
    )
    ax.axvline(1.0, color="gray", lw=0.8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ratio (median, min-max)")
    ax.set_title("dlbasics vs the usual ways")
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, capped epochs: a few minutes")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3, quick 1)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    if not FMNIST.is_dir():
        sys.exit(f"benchmarks need Fashion-MNIST in {FMNIST}: apt-get install dataset-fashion-mnist")
    RESULTS.mkdir(exist_ok=True)
    root = torchvision_root()
    # Bytecode for dlbasics, as a regular pip install leaves it; an editable install writes it on first import,
    # unless PYTHONDONTWRITEBYTECODE is set (as on our CI machines), which would charge every run its compilation.
    compileall.compile_dir(ROOT / "dlbasics", quiet=1)
    cnn = []
    for repeat in range(repeats):
        for kind in "abc":
            print(f"repeat {repeat + 1}/{repeats}: CNN peer ({kind}) …", flush=True)
            cnn.append({**cnn_runs(kind, args.quick, root), "repeat": repeat})
            r = cnn[-1]
            print(
                f"  {r['wall']:.1f} s in all, epoch {r['epoch_seconds']:.1f} s, {r['samples_per_s']:.0f} samples/s, "
                f"test acc {r['final_test_acc']:.4f}, "
                f"to {TARGET:.0%}: {r['time_to_target'] or '—'} s, peak RSS {r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    print("tiny models and the sine LSTM: dlbasics vs raw loop …", flush=True)
    steps_run = spawn([sys.executable, str(HERE / "steps.py"), "--repeats", str(max(repeats, 2)), "--epochs", "4"])
    steps = [e for e in steps_run["events"] if e.get("event") == "steps"]
    result = summarise(cnn, steps, args.quick)
    write_outputs(result)
    print((RESULTS / ("results_quick.md" if args.quick else "results.md")).read_text())


if __name__ == "__main__":
    main()
