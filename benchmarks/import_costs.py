"""What ``import dlbasics.cli`` costs, by top-level package, from ``python -X importtime`` (median of repeats).

    python benchmarks/import_costs.py [--repeats 5] [--module dlbasics.cli] [--why matplotlib]

Each repeat is a fresh interpreter importing the module with the garbage collector paused, as ``dlbasics``'s
console script does (``dlbasics/launch.py``). A package's cost is the *self* time of its modules (what their own
top-level code took, the modules they import left out), so the rows add up to the whole import. ``--why PKG``
prints the chain of imports through which the module first pulls ``PKG`` in.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from collections import defaultdict

LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def importtime(module: str) -> list[tuple[int, int, int, str]]:
    """``(self µs, cumulative µs, depth, module)`` per imported module, in the order Python reports them."""
    code = f"import gc; gc.disable(); import {module}"
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True).stderr
    return [(int(m[1]), int(m[2]), len(m[3]) // 2, m[4]) for m in map(LINE.match, err.splitlines()) if m]


def by_package(rows: list[tuple[int, int, int, str]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for self_us, _, _, name in rows:
        totals[name.split(".")[0]] += self_us / 1e6
    return totals


def chain(rows: list[tuple[int, int, int, str]], package: str) -> list[str]:
    """The importers of the first module of ``package``: importtime lists a module after what it imports."""
    for i, (_, _, depth, name) in enumerate(rows):
        if name.split(".")[0] == package:
            path, want = [name], depth - 1
            for _, _, d, parent in rows[i + 1 :]:
                if d == want:
                    path.append(parent)
                    want -= 1
            return list(dict.fromkeys(path[::-1]))  # a package's __init__ may be listed around its submodules
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", default="dlbasics.cli")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=18)
    parser.add_argument("--why", nargs="*", default=["matplotlib", "torchvision", "sympy", "triton", "tensorboard"])
    args = parser.parse_args()
    runs = [importtime(args.module) for _ in range(args.repeats)]
    packages = [by_package(r) for r in runs]
    names = sorted({n for p in packages for n in p}, key=lambda n: -statistics.median(p.get(n, 0) for p in packages))
    whole = statistics.median(sum(p.values()) for p in packages)
    print(f"import {args.module}: {whole:.2f} s (median of {args.repeats}, self time by top-level package)")
    for name in names[: args.top]:
        values = [p.get(name, 0.0) for p in packages]
        print(f"  {statistics.median(values):6.3f} s  ({min(values):.3f}-{max(values):.3f})  {name}")
    rest = [sum(v for n, v in p.items() if n not in names[: args.top]) for p in packages]
    print(f"  {statistics.median(rest):6.3f} s  the other {len(names) - args.top} packages")
    for package in args.why:
        print(f"why {package}: {' -> '.join(chain(runs[0], package)) or 'not imported'}")


if __name__ == "__main__":
    main()
