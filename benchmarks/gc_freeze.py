"""Start-up and exit as ``dlbasics.launch`` runs them, against plain Python: the sprint recipe as one process.

    python benchmarks/gc_freeze.py [--repeats 3]   # writes benchmarks/results/gc_freeze.md

The imports leave about a million objects that never become garbage. Plain: the cyclic collector runs during
the imports and walks them at every full collection afterwards, and the interpreter frees them one by one at
exit. Frozen after the imports: ``gc.freeze()`` once the CLI is imported (what dlbasics did before
``dlbasics.launch``). As shipped (``python -m dlbasics``): the collector paused during the imports, then
``gc.freeze()``, and at exit the module teardown skipped after every ``atexit`` handler has run. Runs alternate,
each timed from spawn to exit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from run import RESULTS, machine, median_spread, spread_cells

CONFIG = ["fit", "--config", "fashion_mnist_cnn_sprint"]
PLAIN = "import sys; from dlbasics.cli import main; sys.exit(main())"
FREEZE_ONLY = "import gc, sys; from dlbasics.cli import main; gc.freeze(); sys.exit(main())"
VARIANTS = {
    "as shipped: paused, frozen, no teardown": [sys.executable, "-m", "dlbasics", *CONFIG],
    "frozen after the imports": [sys.executable, "-c", FREEZE_ONLY, *CONFIG],
    "plain": [sys.executable, "-c", PLAIN, *CONFIG],
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
    shipped, frozen, plain = walls.values()
    ratios = {
        f"{name} / plain": median_spread([a / b for a, b in zip(variant, plain, strict=True)])
        for name, variant in (("as shipped", shipped), ("frozen after the imports", frozen))
    }
    m = machine()
    lines = [
        "# Start-up and exit (dlbasics.launch): process wall time",
        "",
        f"{m['cpu']}, {m['cores']} cores · Python {m['python']} · torch {m['torch']} · {m['date']}",
        "",
        f"    python benchmarks/gc_freeze.py --repeats {args.repeats}",
        "",
        f"`dlbasics {' '.join(CONFIG)}` (train, then test the best checkpoint), spawn to exit, alternating.",
        "",
        "| variant | median s | min | max | n |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {spread_cells(median_spread(v), '.2f')} |" for name, v in walls.items()),
        "",
        "Ratios, pair by pair (median, min, max):",
        "",
        *(f"- {name}: {spread_cells(r, '.3f', n=False)}" for name, r in ratios.items()),
    ]
    (RESULTS / "gc_freeze.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
