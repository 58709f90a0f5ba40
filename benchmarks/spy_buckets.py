"""Where a whole ``dlbasics fit`` process spends its time, from py-spy samples put into named buckets.

    .venv/bin/pip install py-spy    # once, into the venv that runs dlbasics
    python benchmarks/spy_buckets.py rule_classifier [--rate 250] [--raw out.txt] [-- <more dlbasics fit args>]
    python benchmarks/spy_buckets.py --read out.txt              # bucket an earlier recording again

py-spy samples the process from outside without pausing it (``--nonblocking``), so nothing is slowed down:
interpreter start, imports, parser, training, pictures, test and exit all count, as in a user's run. Each sample
is the stack of a running thread; the first rule of :data:`RULES` whose pattern occurs in the stack names its
bucket (the rules go from the specific to the general). Seconds = samples / rate; a sampler misses a little, so
the buckets add up to slightly less than the wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

#: (bucket, pattern searched in the stack, root first); the first match wins.
RULES = [
    ("imports: dlbasics.cli and what it pulls in", r"import_frozen \("),
    ("imports: later, during the run", r"_find_and_load \("),
    ("pictures: matplotlib drawing and PNG", r"matplotlib/|dlbasics/plots\.py|dlbasics/pictures\.py"),
    ("TensorBoard writer", r"tensorboard/"),
    ("checkpoints (dump + torch.save + write)", r"model_checkpoint\.py|_atomic_save|save_checkpoint \("),
    ("jsonargparse: build the parser", r"setup_parser \("),
    ("jsonargparse: parse", r"parse_arguments \("),
    ("jsonargparse: instantiate", r"instantiate_classes \("),
    ("config.yaml (SaveConfig)", r"dashboards\.py|save_config"),
    ("model summary", r"model_summary"),
    ("sanity check", r"_run_sanity_check \("),
    ("test after fit", r"after_fit \(dlbasics"),
    ("CSV logger", r"csv_logs\.py"),
    ("validation: torchmetrics", r"validation_step .*torchmetrics/"),
    ("validation: the rest", r"evaluation_loop\.py"),
    ("training step: torchmetrics update", r"training_step .*torchmetrics/"),
    ("epoch end: torchmetrics compute, self.log", r"torchmetrics/|logger_connector|/core/module\.py:\d+\)$"),
    ("training step: backward", r"backward \("),
    ("training step: optimizer arithmetic", r"_single_tensor_adam|_multi_tensor_adam|_fused_adam|_single_tensor_sgd"),
    ("training step: forward + loss", r"training_step \("),
    (
        "training: torch.cuda.is_available over NVML (Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1)",
        r"_device_count_nvml|_nvml_based_avail",
    ),
    ("training: callback hooks (dispatch and bodies)", r"_call_callback_hooks \("),
    (
        "training: batches (fetch, index, transfer hooks)",
        r"train_dataloader_next|_DataFetcher|CombinedLoader|InMemoryLoader|batch_to_device|_call_batch_hook",
    ),
    ("training: LR schedule", r"LRScheduler\.step \(|lr_scheduler_step \(|_update_learning_rates \("),
    ("training: optimizer step and closure bookkeeping", r"optimizer_step \(|\.step \(torch/optim"),
    ("training: the rest of Lightning's loop", r"_run_stage \("),
    ("fit set-up (trainer._run before the loop)", r"trainer\.py.*_run \("),
    ("exit", r"_exit|atexit|end \(dlbasics/launch"),
]


def bucket(stack: str) -> str:
    for name, pattern in RULES:
        if re.search(pattern, stack):
            return name
    return "other"


def read(raw: Path) -> Counter:
    """Samples per bucket of a py-spy ``--format raw`` file (``frame;frame;… count`` per line)."""
    counts: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            counts[bucket(stack)] += int(n)
    return counts


def record(experiment: str, rate: int, raw: Path, extra: list[str]) -> None:
    """Run ``dlbasics fit --config experiment`` under py-spy in a fresh directory."""
    cmd = [str(BIN / "py-spy"), "record", "-r", str(rate), "--nonblocking", "-f", "raw", "-o", str(raw), "--"]
    cmd += [str(BIN / "dlbasics"), "fit", "--config", experiment, *extra]
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env={**os.environ})
    if out.returncode:
        sys.exit(out.stderr[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", nargs="?")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw stacks here")
    parser.add_argument("--read", type=Path, help="bucket this raw file instead of recording")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: len(argv) - len(extra) - bool(extra)])
    if args.read:
        raw = args.read
    else:
        raw = args.raw or Path(tempfile.mkdtemp()) / "stacks.txt"
        record(args.experiment, args.rate, raw, extra)
    counts = read(raw)
    total = sum(counts.values())
    print(f"{raw}: {total} samples = {total / args.rate:.2f} s at {args.rate}/s")
    for name, n in counts.most_common():
        print(f"  {n / args.rate:7.3f} s  {100 * n / total:5.1f} %  {name}")


if __name__ == "__main__":
    main()
