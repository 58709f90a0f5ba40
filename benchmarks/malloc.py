"""A/B of ``dlbasics.launch.tune_malloc``: the same short CNN training with glibc's thresholds raised and without.

    PYTHONPATH=$PWD python benchmarks/malloc.py     # 5 interleaved pairs + 1 GLIBC_TUNABLES run (~5 minutes)

Each run is ``python -m dlbasics fit --config fashion_mnist_cnn_sprint`` for ``--batches`` training steps of one
epoch (no validation, no test, no logger), spawned by ``run.spawn`` with ``bench_callbacks.EpochReport`` added, so
the epoch time covers the training steps only. Variant A is the CLI as shipped (thresholds raised), B the same
with ``DLBASICS_MALLOC=default``; they alternate A B A B … and each ratio A/B is taken within a pair. Minor page
faults are counted twice: over the epoch (``getrusage(RUSAGE_SELF)`` inside the run) and over the whole process
(``wait4``'s rusage). One more run sets ``GLIBC_TUNABLES`` as a user would, which must switch the tuning off;
``tune_malloc()`` is also asked directly, in a fresh interpreter per environment, whether it applied.
Results: ``benchmarks/results/malloc.md`` and ``malloc.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from run import FMNIST, RESULTS, machine, median_spread, spawn, spread_cells

USER_TUNABLES = "glibc.malloc.mmap_threshold=32000000"
VARIANTS = {
    "tuned": {},  # as shipped
    "default": {"DLBASICS_MALLOC": "default"},
    "user_tunables": {"GLIBC_TUNABLES": USER_TUNABLES},
}


def command(batches: int, threads: int) -> list[str]:
    """The measured ``dlbasics fit`` command line."""
    cmd = [sys.executable, "-m", "dlbasics", "fit", "--config", "fashion_mnist_cnn_sprint"]
    cmd += ["--trainer.max_epochs", "1", "--test_after_fit", "false", "--trainer.limit_train_batches", str(batches)]
    cmd += ["--trainer.limit_val_batches", "0", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    cmd += ["--trainer.callbacks+=bench_callbacks.EpochReport"]
    return cmd + (["--num_threads", str(threads)] if threads else [])


def one_run(variant: str, batches: int, threads: int) -> dict:
    """One training process of ``variant``: epoch seconds, per-step ms and page faults."""
    res = spawn(command(batches, threads), VARIANTS[variant])
    epoch = next(e for e in res["events"] if e.get("event") == "epoch")
    return {
        "variant": variant,
        "epoch_seconds": epoch["epoch_seconds"],
        "step_ms": 1e3 * epoch["epoch_seconds"] / epoch["steps"],
        "steps": epoch["steps"],
        "epoch_minor_faults": epoch["minor_faults"],
        "process_minor_faults": res["minor_faults"],
        "process_major_faults": res["major_faults"],
        "peak_rss_mib": res["peak_rss_mib"],
        "wall": res["wall"],
    }


def tune_applies(env_extra: dict[str, str]) -> bool:
    """Whether ``tune_malloc()`` changes the thresholds under ``env_extra`` (asked in a fresh interpreter)."""
    code = "from dlbasics.launch import tune_malloc; print(tune_malloc())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env_extra}, capture_output=True, text=True)
    return out.stdout.strip() == "True"


def summarise(runs: list[dict], checks: dict, args: argparse.Namespace) -> dict:
    tuned = [r for r in runs if r["variant"] == "tuned"]
    default = [r for r in runs if r["variant"] == "default"]
    pairs = list(zip(tuned, default, strict=True))
    metrics = ("epoch_seconds", "epoch_minor_faults", "process_minor_faults", "peak_rss_mib")
    return {
        "machine": {**machine(), "allocator": "glibc malloc"},
        "command": " ".join(["python", *command(args.batches, args.threads)[1:]]),
        "batches": args.batches,
        "threads": args.threads or "config default",
        "tune_malloc_applies": checks,
        "ratios_tuned_over_default": {m: median_spread([a[m] / b[m] for a, b in pairs]) for m in metrics},
        "absolute": {
            v: {m: median_spread([r[m] for r in runs if r["variant"] == v]) for m in (*metrics, "step_ms")}
            for v in VARIANTS
            if any(r["variant"] == v for r in runs)
        },
        "runs": runs,
    }


NOTES = [
    "Notes. The runs use `--num_threads 1`: the machine is shared, and with torch's default two threads a waiting "
    "OpenMP thread spins while the other cores are busy (a trial 100-step run took 64 s under load 6), which would "
    "drown the allocator's effect. The step's tensors are the same with one thread or two; faults with two threads "
    "were not measured here.",
    "",
    "Untuned fault counts vary several-fold from run to run: glibc's dynamic mmap threshold rises whenever an "
    "mmapped chunk is freed, so how many activation-sized buffers keep being mmapped and unmapped depends on the "
    "order of the first frees. Tuned runs are steady. The epoch-time ratio is noisier than the fault ratio because "
    "other jobs share the two cores; look at its spread, not only its median.",
    "",
    "`GLIBC_TUNABLES` check: `tune_malloc()` reports that it did not apply (above), and the user_tunables run's "
    "faults are in the untuned range: dlbasics leaves the allocator to the user's setting. That setting (a fixed "
    "mmap threshold, trim threshold left at glibc's default) evidently does not by itself stop the churn, most "
    "likely because freed memory at the heap top is still trimmed.",
]


def write_outputs(result: dict) -> None:
    (RESULTS / "malloc.json").write_text(json.dumps(result, indent=1))
    m = result["machine"]
    lines = [
        "# glibc malloc tuning A/B (`dlbasics.launch.tune_malloc`)",
        "",
        f"{m['cpu']}, {m['cores']} cores (shared with other jobs) · Python {m['python']} · torch {m['torch']} · "
        f"{m['date']}",
        "",
        "    PYTHONPATH=$PWD python benchmarks/malloc.py",
        "",
        f"Each run (variant tuned = as shipped; default = `DLBASICS_MALLOC=default`; user_tunables = "
        f"`GLIBC_TUNABLES={USER_TUNABLES}`):",
        "",
        f"    {result['command']}",
        "",
        "Epoch time: the training steps only (`bench_callbacks.EpochReport`). Epoch faults: minor page faults of the "
        "process during that epoch; process faults: the whole run (import, data loading, epoch) from `wait4`. "
        "Runs alternate tuned, default; ratios are taken pair by pair.",
        "",
        "`tune_malloc()` applies: "
        + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in result["tune_malloc_applies"].items()),
        "",
        "| ratio tuned / default | median | min | max | n |",
        "|---|---:|---:|---:|---:|",
    ]
    for metric, r in result["ratios_tuned_over_default"].items():
        lines.append(f"| {metric} | {spread_cells(r)} |")
    lines += ["", "| variant | metric | median | min | max | n |", "|---|---|---:|---:|---:|---:|"]
    for variant, metrics in result["absolute"].items():
        for metric, r in metrics.items():
            lines.append(f"| {variant} | {metric} | {spread_cells(r, '.4g')} |")
    lines += [
        "",
        "Per run, in order:",
        "",
        "| # | variant | epoch s | step ms | epoch minor faults | process minor faults | peak RSS MiB |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(result["runs"]):
        lines.append(
            f"| {i + 1} | {r['variant']} | {r['epoch_seconds']:.2f} | {r['step_ms']:.1f} | "
            f"{r['epoch_minor_faults']} | {r['process_minor_faults']} | {r['peak_rss_mib']:.0f} |"
        )
    lines += ["", *NOTES]
    (RESULTS / "malloc.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved tuned/default pairs")
    parser.add_argument("--batches", type=int, default=60, help="training steps per run (batch 256)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="--num_threads of each run (0: torch's default; 1 steadies timings "
        "on a shared machine, where waiting OpenMP threads spin)",
    )
    args = parser.parse_args()
    if not FMNIST.is_dir():
        sys.exit(f"benchmarks need Fashion-MNIST in {FMNIST}: apt-get install dataset-fashion-mnist")
    RESULTS.mkdir(exist_ok=True)
    for key in [k for k in os.environ if k in ("GLIBC_TUNABLES", "DLBASICS_MALLOC") or k.startswith("MALLOC_")]:
        del os.environ[key]  # every variant starts from a clean allocator environment
    checks = {name: tune_applies(extra) for name, extra in VARIANTS.items()}
    checks["MALLOC_ARENA_MAX=2"] = tune_applies({"MALLOC_ARENA_MAX": "2"})
    print(f"tune_malloc() applies: {checks}", flush=True)
    order = [v for _ in range(args.repeats) for v in ("tuned", "default")]
    order.insert(len(order) // 2, "user_tunables")  # once, in the middle of the sequence
    runs = []
    start = time.time()
    for i, variant in enumerate(order):
        runs.append({**one_run(variant, args.batches, args.threads), "index": i})
        r = runs[-1]
        print(
            f"{i + 1}/{len(order)} {variant}: epoch {r['epoch_seconds']:.2f} s, epoch faults "
            f"{r['epoch_minor_faults']}, process faults {r['process_minor_faults']} ({time.time() - start:.0f} s)",
            flush=True,
        )
    result = summarise(runs, checks, args)
    write_outputs(result)
    for metric, r in result["ratios_tuned_over_default"].items():
        print(f"tuned/default {metric}: median {r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f}, n={r['n']})")
    print(statistics.median([r["wall"] for r in runs]), "s median wall per run")


if __name__ == "__main__":
    main()
