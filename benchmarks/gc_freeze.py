"""A/B of ``gc.freeze()`` in ``dlbasics.cli.main``: the sprint recipe as one process, with and without it.

    python benchmarks/gc_freeze.py [--repeats 3]   # writes benchmarks/results/gc_freeze.md

The imports leave about a million objects that never become garbage; without ``gc.freeze()`` the cyclic
collector walks them at every full collection and once more at interpreter exit. Runs alternate (with,
without), each timed from spawn to exit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from run import RESULTS, machine, median_spread, spread_cells

CONFIG = ["fit", "--config", "fashion_mnist_cnn_sprint"]
WITHOUT = "import gc; gc.freeze = lambda: None; from dlbasics.cli import main; main()"
VARIANTS = {
    "with gc.freeze (as shipped)": [sys.executable, "-m", "dlbasics", *CONFIG],
    "without": [sys.executable, "-c", WITHOUT, *CONFIG],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for i in range(args.repeats):
        for name, cmd in VARIANTS.items():
            with tempfile.TemporaryDirectory() as work:
                start = time.perf_counter()
                subprocess.run(cmd, cwd=work, check=True, capture_output=True)
                walls[name].append(time.perf_counter() - start)
            print(f"repeat {i + 1}: {name}: {walls[name][-1]:.2f} s", flush=True)
    walls_with, walls_without = walls.values()
    ratio = median_spread([a / b for a, b in zip(walls_with, walls_without, strict=True)])
    m = machine()
    lines = [
        "# `gc.freeze()` at CLI start: process wall time, with / without",
        "",
        f"{m['cpu']}, {m['cores']} cores · Python {m['python']} · torch {m['torch']} · {m['date']}",
        "",
        f"    python benchmarks/gc_freeze.py --repeats {args.repeats}",
        "",
        f"`dlbasics {' '.join(CONFIG)}` (train 2 epochs, test the best checkpoint), spawn to exit, alternating.",
        "",
        "| variant | median s | min | max | n |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {spread_cells(median_spread(v), '.2f')} |" for name, v in walls.items()),
        "",
        f"Ratio with / without, pair by pair: {spread_cells(ratio, '.3f', n=False)} (median, min, max).",
    ]
    (RESULTS / "gc_freeze.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
