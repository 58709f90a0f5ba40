"""Per-step cost of dlbasics (through its CLI) against a raw in-memory PyTorch loop, side by side.

    python benchmarks/steps.py --repeats 3        # prints one JSON line per measurement

Each pair runs in this one process, alternating raw and dlbasics, so both see the same machine state.
The raw loop is the least a framework could do: index the resident tensors, forward, loss, backward,
optimizer step. dlbasics runs the experiment's real config with its default loggers, checkpointing and
metrics; its step time is the training-epoch time (validation excluded) over the steps, median of
epochs 2..N.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_callbacks import EpochReport

from dlbasics.cli import DLBasicsCLI
from dlbasics.data import LinearData, RuleData, SineData
from dlbasics.models import LinearRegression, RuleClassifier, SineLSTM

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    # name: (config, model factory, data factory, optimizer, loss)
    "linear_regression": ("linear_regression.yaml", lambda d: LinearRegression(), LinearData, "sgd", "mse"),
    "rule_classifier": ("rule_classifier.yaml", lambda d: RuleClassifier(), RuleData, "adam", "bce"),
    "sine_lstm": (
        "sine_lstm.yaml",
        lambda d: SineLSTM(series_mean=d.series_mean, series_std=d.series_std),
        SineData,
        "adam",
        "mse",
    ),
}


def raw_step_seconds(name: str, epochs: int) -> float:
    _, make_model, make_data, opt_name, loss_name = CASES[name]
    data = make_data()
    data.setup("fit")
    model = make_model(data)
    x, y = data.splits["train"][:2]
    batch = data.batch_size
    optimizer = (torch.optim.SGD if opt_name == "sgd" else torch.optim.Adam)(model.parameters(), lr=1e-3)
    loss_fn = (
        torch.nn.functional.mse_loss if loss_name == "mse" else torch.nn.functional.binary_cross_entropy_with_logits
    )
    times = []
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        start = time.perf_counter()
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            out = model(x[idx])
            loss = loss_fn(out, y[idx].to(out.dtype).reshape(out.shape))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append((time.perf_counter() - start) / -(-len(x) // batch))
    return statistics.median(times[1:])


def dlbasics_step_seconds(name: str, epochs: int) -> float:
    config = CASES[name][0]
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path.cwd()
        try:
            import os

            os.chdir(tmp)
            cli = DLBasicsCLI(
                args=[
                    "fit",
                    "--config",
                    str(ROOT / "configs" / config),
                    "--trainer.max_epochs",
                    str(epochs),
                    "--trainer.callbacks+=bench_callbacks.EpochReport",
                ]
            )
        finally:
            os.chdir(cwd)
    report = next(c for c in cli.trainer.callbacks if isinstance(c, EpochReport))
    return statistics.median(r["epoch_seconds"] / r["steps"] for r in report.records[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    args = parser.parse_args()
    torch.set_num_threads(1)  # what the tiny configs use (num_threads: 1), for the raw loop too
    for repeat in range(args.repeats):
        for name in args.cases:
            raw = raw_step_seconds(name, args.epochs)
            ours = dlbasics_step_seconds(name, args.epochs)
            print(
                json.dumps(
                    {
                        "event": "steps",
                        "case": name,
                        "repeat": repeat,
                        "raw_us": raw * 1e6,
                        "dlbasics_us": ours * 1e6,
                        "ratio": ours / raw,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
