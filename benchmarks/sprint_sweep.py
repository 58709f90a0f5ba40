"""The sweep behind ``configs/fashion_mnist_cnn_sprint.yaml``: variants of the recipe and seeds, each one process.

    python benchmarks/sprint_sweep.py [--seeds 0 1 2 42]   # writes benchmarks/results/sprint.md

Every run is ``dlbasics fit --config configs/fashion_mnist_cnn_sprint.yaml`` with a variant's overrides and
``--seed_everything``, spawned by ``run.spawn`` with ``bench_callbacks.Phases``: test accuracy of the
best-by-validation checkpoint, training-epoch seconds (without validation) and the process's wall time. Variants
run interleaved seed by seed (all variants for seed 0, then seed 1, …), so a slow spell of the machine hits them
alike. The recipe is honest only if it holds for every seed: the table gives the minimum test accuracy.
"""

from __future__ import annotations

import argparse
import json
import statistics

from run import RESULTS, dlbasics_command, machine, spawn

# name: (overrides of the config, why it is here)
VARIANTS: dict[str, tuple[dict[str, str], str]] = {
    "shipped: [16, 48] + hidden 128, batch 256, 1 epoch": ({}, "the recipe"),
    "[16, 32] + hidden 128, batch 256": ({"model.channels": "[16,32]"}, "narrower second block"),
    "[16, 32] + hidden 128, batch 128, lr 0.02": (
        {"model.channels": "[16,32]", "data.batch_size": "128", "model.optimizer.lr": "0.02"}
        | {"model.lr_scheduler.max_lr": "0.02"},
        "more, smaller steps",
    ),
    "[16, 48], no hidden layer": ({"model.hidden": "0"}, "what the hidden layer buys"),
    "[16, 48, 96], no hidden layer": (
        {"model.channels": "[16,48,96]", "model.hidden": "0"},
        "the previous recipe's blocks (BatchNorm now after the pool), one epoch",
    ),
    "[16, 48, 96], no hidden layer, 2 epochs": (
        {"model.channels": "[16,48,96]", "model.hidden": "0", "trainer.max_epochs": "2"},
        "the previous recipe's blocks and 2 epochs",
    ),
}


def one_run(overrides: dict[str, str], seed: int) -> dict:
    options = [arg for key, value in overrides.items() for arg in (f"--{key}", value)]
    res = spawn([*dlbasics_command(quick=False), *options, "--seed_everything", str(seed)])
    at = {e["event"]: e for e in res["events"]}
    epochs = [e["epoch_seconds"] for e in res["events"] if e.get("event") == "epoch"]
    return {"test_acc": at["test_end"]["test_acc"], "epoch_seconds": statistics.mean(epochs), "wall": res["wall"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 42])
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for seed in args.seeds:
        for name, (overrides, _) in VARIANTS.items():
            runs[name].append({"seed": seed, **one_run(overrides, seed)})
            print(f"seed {seed}: {name}: {json.dumps(runs[name][-1])}", flush=True)
    m = machine()
    lines = [
        "# The sprint recipe and its neighbours: test accuracy on every seed, time",
        "",
        f"{m['cpu']}, {m['cores']} cores · Python {m['python']} · torch {m['torch']} · {m['date']}",
        "",
        f"    python benchmarks/sprint_sweep.py --seeds {' '.join(map(str, args.seeds))}",
        "",
        "One `dlbasics fit --config configs/fashion_mnist_cnn_sprint.yaml` process per cell with the variant's",
        "overrides; test accuracy of the best-by-validation checkpoint; epoch = training seconds of one epoch",
        "(median over seeds, validation excluded); wall = spawn to exit (median). This machine's speed drifts by",
        "±25 % within minutes: compare times only within a row's seeds, or use benchmarks/run.py's ratios.",
        "",
        f"| variant | why | test acc, seeds {', '.join(map(str, args.seeds))} | min | epoch s | wall s |",
        "|---|---|---|---:|---:|---:|",
    ]
    for name, (_, why) in VARIANTS.items():
        accs = [r["test_acc"] for r in runs[name]]
        epoch = statistics.median(r["epoch_seconds"] for r in runs[name])
        wall = statistics.median(r["wall"] for r in runs[name])
        cells = ", ".join(f"{a:.4f}" for a in accs)
        lines.append(f"| {name} | {why} | {cells} | **{min(accs):.4f}** | {epoch:.2f} | {wall:.2f} |")
    (RESULTS / "sprint.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "sprint.json").write_text(json.dumps({"machine": m, "runs": runs}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
