"""The console entry points (``dlbasics``, ``dlbasics-tour``, ``python -m dlbasics``): fast start-up and exit.

    dlbasics fit --config configs/fashion_mnist_cnn_sprint.yaml

Importing torch and Lightning creates about a million objects that live as long as the process; with the cyclic
garbage collector running, every collection walks all of them again: ~1 s of each process on our 2-core machines
(``benchmarks/results/gc_freeze.md``). So the imports run with the collector paused, then ``gc.freeze()`` moves
what they created out of its reach. At exit, Python would free them one by one and tear down every module
(~0.3 s): the entry points skip only that part (:func:`run_then_skip_teardown`). Ctrl-C works from the first
moment: during the imports too it ends the process with status 130 and no traceback, even if an import swallows it.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType

from dlbasics.console import exit_on_interrupt


def import_frozen(name: str) -> ModuleType:
    """Import module ``name`` with the garbage collector paused, then freeze what exists and resume collecting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        with exit_on_interrupt():
            return importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def run_main(module: str) -> int | None:
    """``module.main()``, once :mod:`dlbasics.cli` (every entry's runs go through it) and ``module`` are imported."""
    import_frozen("dlbasics.cli")
    return import_frozen(module).main()


def exit_status(code: object) -> int:
    """The process exit status Python gives ``sys.exit(code)``: ``None`` 0, an int itself, anything else 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run_then_skip_teardown(entry: Callable[[], int | None]) -> int | None:
    """Run ``entry`` as a console script; at exit, after threads and ``atexit`` handlers, skip the module teardown.

    The last ``atexit`` handler flushes the standard streams and ends the process with the status ``sys.exit``
    would give: the return value, a ``SystemExit`` code, or 1 for an exception (whose traceback Python prints first).
    """
    code: object = 1  # an exception, until ``entry`` returns or exits

    def end() -> None:  # registered first, so it runs after every handler registered during the run
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os._exit(exit_status(code))

    atexit.register(end)
    try:
        with exit_on_interrupt():
            code = entry()
    except SystemExit as stop:
        code = stop.code
        raise
    return code


def tune_malloc() -> bool:
    """Stop glibc from handing activation-sized buffers back to the OS after every training step.

    By default glibc serves large allocations with mmap and returns freed memory at once, so each step
    page-faults its activations back in (see ``benchmarks/results/malloc.md`` for the A/B). Raising the mmap
    and trim thresholds keeps them in the heap for reuse. Skipped when the user set ``MALLOC_*`` variables or
    ``GLIBC_TUNABLES``, when ``DLBASICS_MALLOC=default``, or off glibc.

    Returns:
        Whether the thresholds were changed.
    """
    if os.environ.get("DLBASICS_MALLOC") == "default" or any(
        k == "GLIBC_TUNABLES" or k.startswith("MALLOC_") for k in os.environ
    ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def main() -> int | None:
    """``dlbasics``: :func:`dlbasics.cli.main`, or :func:`dlbasics.sweep.main` for ``dlbasics sweep`` (many fits, each
    through :mod:`dlbasics.cli`, so the sweep stands above the CLI rather than inside it)."""
    tune_malloc()
    entry = "dlbasics.sweep" if sys.argv[1:2] == ["sweep"] else "dlbasics.cli"
    return run_then_skip_teardown(lambda: run_main(entry))


def tour() -> int | None:
    """``dlbasics-tour``: :func:`dlbasics.tour.main` (which runs the experiments through :mod:`dlbasics.cli`)."""
    tune_malloc()
    return run_then_skip_teardown(lambda: run_main("dlbasics.tour"))
