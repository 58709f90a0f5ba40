"""The console entry points (``dlbasics``, ``dlbasics-tour``, ``python -m dlbasics``): fast start-up, then the CLI.

    dlbasics fit --config configs/fashion_mnist_cnn_sprint.yaml

Importing torch and Lightning creates about a million objects that live as long as the process. With the cyclic
garbage collector running, every collection during the imports walks all of them again, and so does every full
collection afterwards: ~1 s of each process on our 2-core machines (``benchmarks/results/gc_freeze.md``). So the
imports run with the collector paused; then ``gc.freeze()`` moves what they created out of its reach, and the
collector runs as usual for everything the run itself allocates.
"""

from __future__ import annotations

import gc
import importlib
from types import ModuleType


def import_frozen(name: str) -> ModuleType:
    """Import module ``name`` with the garbage collector paused, then freeze what exists and resume collecting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def main() -> int | None:
    """``dlbasics``: :func:`dlbasics.cli.main`."""
    return import_frozen("dlbasics.cli").main()


def tour() -> int:
    """``dlbasics-tour``: :func:`dlbasics.tour.main` (which runs the experiments through :mod:`dlbasics.cli`)."""
    import_frozen("dlbasics.cli")
    return import_frozen("dlbasics.tour").main()
