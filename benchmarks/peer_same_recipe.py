"""Plain PyTorch, same recipe: what ``dlbasics fit --config <experiment>`` computes, and nothing else.

    python benchmarks/peer_same_recipe.py --experiment rule_classifier --out /tmp/peer   # metrics.csv, *.ckpt

The yardstick of ``same_recipe.py``. The recipe (data, net, optimizer, schedule, precision, epochs) comes from
``peer_recipes.py``; this is the loop a careful hand-written script runs around it, doing the same work as a
dlbasics run: resident tensors cut into batches in a ``DistributedSampler``'s order (``randperm`` seeded with
data seed + epoch), one validation pass per epoch, ``last.ckpt`` (model, optimizer and schedule state) after every
epoch and ``best.ckpt`` whenever the monitored metric improves, the same metrics (the loss as a sample-weighted
mean, and for classifiers acc/f1/precision/recall of the epoch's outputs, computed once per epoch), one
``metrics.csv`` row per epoch, and at the end a test of the best checkpoint. Nothing else: no logger, no
progress, no pictures. Plain torch: no Lightning import.

Process-level settings as ``dlbasics`` has them (``dlbasics/launch.py``, ``dlbasics.cli.tune_malloc``), so that
only the framework's work differs: the imports run with the garbage collector paused and then frozen, glibc keeps
freed buffers, and the process ends with ``os._exit`` after flushing (no module teardown). ``--plain-process``
leaves all three out (measured in ``results/same_recipe.md``'s notes).

It prints JSON lines for ``same_recipe.py`` (``since_start``: seconds since the driver spawned it,
``BENCH_SPAWN_TIME``; ``cpu``: process CPU seconds): ``imports``, one ``epoch`` per epoch (``first_step_at``/
``last_step_at``, ``first_step_cpu``/``last_step_cpu``: the start of its first and the end of its last training
step), ``train_end``, ``test_end``.
"""

from __future__ import annotations

import gc
import os
import sys
import time

START = float(os.environ.get("BENCH_SPAWN_TIME", time.time()))
PLAIN = "--plain-process" in sys.argv
if not PLAIN:
    gc.disable()

import argparse  # noqa: E402  (the clock and the collector's pause come before the imports)
import contextlib  # noqa: E402
import csv  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch._dynamo  # noqa: E402  (the first optimizer imports it anyway: here, inside the pause)
from peer_recipes import RECIPES, Recipe, classification  # noqa: E402

if not PLAIN:
    gc.freeze()
    gc.enable()


def report(event: str, **fields: object) -> None:
    fields = {"since_start": time.time() - START, "cpu": time.process_time(), **fields}
    print(json.dumps({"event": event, **fields}), flush=True)


def batches(tensors: tuple[torch.Tensor, ...], size: int, order: torch.Tensor | None = None):
    """Batches of ``size`` rows, in ``order`` (shuffled) or as views in storage order (evaluation)."""
    for i in range(0, len(tensors[0]), size):
        if order is None:
            yield tuple(t[i : i + size] for t in tensors)
        else:
            sel = order[i : i + size]
            yield tuple(t[sel] for t in tensors)


class Meter:
    """One epoch of a stage: the loss as torchmetrics' ``MeanMetric`` sums it (float32), and the outputs."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe, self.loss_sum, self.weight = recipe, torch.zeros(()), torch.zeros(())
        self.outputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def update(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        value = loss.detach() * self.recipe.loss_scale if self.recipe.loss_scale != 1.0 else loss.detach()
        self.loss_sum += value.float() * float(len(target))
        self.weight += len(target)
        if self.recipe.task != "regression":
            self.outputs.append(output.detach())
            self.targets.append(target)

    def compute(self, stage: str) -> dict[str, float]:
        values = {"loss": float(self.loss_sum / self.weight)}
        if self.outputs:
            values |= classification(self.recipe.task, torch.cat(self.outputs), torch.cat(self.targets))
        return {f"{stage}/{k}": v for k, v in values.items()}


def autocast(recipe: Recipe):
    """bf16 autocast as Lightning's ``bf16-mixed`` sets it up on a CPU, or nothing."""
    if recipe.bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


@torch.inference_mode()
def evaluate(recipe: Recipe, split: str, stage: str) -> dict[str, float]:
    model, meter = recipe.model, Meter(recipe)
    model.eval()
    for x, y in batches(recipe.splits[split][:2], recipe.eval_batch_size or recipe.batch_size):
        with autocast(recipe):
            output = model(recipe.prepare(x))
            meter.update(recipe.loss(output, y), output, y)
    model.train()
    return meter.compute(stage)


def tune_malloc() -> None:
    """The glibc thresholds dlbasics sets (``dlbasics.cli.tune_malloc``), so that only the framework differs."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD


def fit(recipe: Recipe, out: Path, data_seed: int = 0) -> None:
    model, (x, y) = recipe.model, recipe.splits["train"][:2]
    optimizer = recipe.optimizer(list(model.parameters()))
    steps_per_epoch = -(-len(x) // recipe.batch_size)
    scheduler = recipe.schedule(optimizer, recipe.epochs * steps_per_epoch) if recipe.schedule else None
    name, mode = recipe.monitor
    best, step, rows = None, 0, []
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    model.train()
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(data_seed + epoch))
        meter, first = Meter(recipe), None
        for xb, yb in batches((x, y), recipe.batch_size, order):
            xb = recipe.prepare(xb)
            first = first or (time.time() - START, time.process_time())
            with autocast(recipe):
                output = model(xb)
                loss = recipe.loss(output, yb)
                meter.update(loss, output, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
        last = (time.time() - START, time.process_time())
        row = {"epoch": epoch, "step": step} | meter.compute("train") | evaluate(recipe, "val", "val")
        rows.append(row)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step}
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        if best is None or (row[name] > best if mode == "max" else row[name] < best):
            best = row[name]
            torch.save(state, out / "checkpoints" / "best.ckpt")
        torch.save(state, out / "checkpoints" / "last.ckpt")
        write_rows(out / "metrics.csv", rows)
        report(
            "epoch", epoch=epoch + 1, steps=steps_per_epoch, first_step_at=first[0], last_step_at=last[0],
            first_step_cpu=first[1], last_step_cpu=last[1],
        )  # fmt: skip
    report("train_end", best=best)
    model.load_state_dict(torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)["model"])
    rows.append({"epoch": recipe.epochs, "step": step} | evaluate(recipe, "test", "test"))
    write_rows(out / "metrics.csv", rows)
    report("test_end", **{k: v for k, v in rows[-1].items() if k.startswith("test/")})


def write_rows(path: Path, rows: list[dict]) -> None:
    header = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", choices=sorted(RECIPES), required=True)
    parser.add_argument("--out", type=Path, default=Path("peer_run"), help="metrics.csv and checkpoints/ go here")
    parser.add_argument("--plain-process", action="store_true", help="no gc pause, malloc tuning or fast exit")
    args = parser.parse_args()
    report("imports")
    if not PLAIN:
        tune_malloc()
    fit(RECIPES[args.experiment](), args.out)


if __name__ == "__main__":
    main()
    if not PLAIN:  # what dlbasics.launch does at exit: flush, then end without tearing every module down
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
