"""Per-call costs behind the per-step candidates, A/B interleaved in one process (thread CPU µs, median of rounds).

    python benchmarks/micro_costs.py [--rounds 7] [--calls 2000]

What a training step of dlbasics pays that the same-recipe peer does not, measured call by call so that small
differences show through a busy machine: the torchmetrics updates of a step (``Experiment._shared_step``: the
stage's MetricCollection and MeanMetric) against keeping the step's output for one update at the epoch end,
``validate_args``, and ``torch.cuda.is_available()`` once ``import lightning`` has set
``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (Adam asks it in every ``step``). Multiply by the calls in a run
(``profile_fit.py`` counts them) for seconds per run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch


def cpu_us(fn: Callable[[], object], calls: int) -> float:
    start = time.thread_time_ns()
    for _ in range(calls):
        fn()
    return (time.thread_time_ns() - start) / calls / 1e3


def metric_cases(batch: int, classes: int) -> dict[str, Callable[[], object]]:
    """One step's metric work, per step and kept for the epoch end (that end's update amortized over the epoch)."""
    import dlbasics.models.base as base

    make = lambda: (base.classification_metrics(classes), base.MeanMetric())  # noqa: E731
    binary = classes == 2
    logits = torch.randn(batch) if binary else torch.randn(batch, classes)
    target = torch.randint(0, classes, (batch,))
    loss = torch.tensor(0.3)
    preds = lambda out: out.sigmoid() if binary else out  # noqa: E731
    collection, mean = make()

    def per_step() -> None:
        mean.update(loss, batch)
        collection.update(preds(logits), target)

    kept: list = []
    state = {"sum": torch.zeros(()), "n": 0}
    end_collection, end_mean = make()
    epoch = 125

    def kept_for_epoch_end() -> None:
        state["sum"] = state["sum"] + loss * float(batch)
        state["n"] += batch
        kept.append((logits, target))
        if len(kept) == epoch:  # the epoch end: one update with everything, then reset
            end_collection.update(preds(torch.cat([k[0] for k in kept])), torch.cat([k[1] for k in kept]))
            end_mean.mean_value += state["sum"]
            end_collection.reset()
            kept.clear()

    original = {n: getattr(base, n) for n in dir(base) if n.startswith(("Binary", "Multiclass"))}
    try:
        for name, cls in original.items():
            setattr(base, name, lambda *a, cls=cls, **k: cls(*a, validate_args=False, **k))
        fast_collection, fast_mean = make()
    finally:
        for name, cls in original.items():
            setattr(base, name, cls)

    def per_step_no_validation() -> None:
        fast_mean.update(loss, batch)
        fast_collection.update(preds(logits), target)

    return {
        "torchmetrics per step (as today)": per_step,
        "torchmetrics per step, validate_args=False": per_step_no_validation,
        "kept, one update at the epoch end (amortized)": kept_for_epoch_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import lightning  # noqa: F401  (sets PYTORCH_NVML_BASED_CUDA_CHECK=1, as in every dlbasics run)

    nvml = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")

    def is_available(env: str | None) -> Callable[[], object]:
        def call() -> object:
            if env is None:
                os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
            else:
                os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = env
            return torch.cuda.is_available()

        return call

    cases = {
        f"torch.cuda.is_available(), PYTORCH_NVML_BASED_CUDA_CHECK={nvml}": is_available(nvml),
        "torch.cuda.is_available(), the variable unset": is_available(None),
    }
    for title, (batch, classes) in {"rule_classifier": (32, 2), "sprint": (256, 10)}.items():
        cases |= {f"{title}: {k}": v for k, v in metric_cases(batch, classes).items()}
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            fn()  # warm
            results[name].append(cpu_us(fn, args.calls))
    for name, values in results.items():
        print(f"{statistics.median(values):9.1f} µs  ({min(values):.1f}-{max(values):.1f})  {name}")


if __name__ == "__main__":
    main()
