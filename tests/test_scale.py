"""Scale: the same answers on 1 or N processes, and every experiment under bf16-mixed."""

from __future__ import annotations

import pytest
import torch
from helpers import CONFIGS, assert_in_order, fixture_data, latest_run, quiet_console, read_metrics

from dlbasics.data.memory import InMemoryLoader

DDP_CPU = CONFIGS / "trainer" / "ddp_cpu.yaml"
BF16 = CONFIGS / "trainer" / "bf16.yaml"


def steps(run) -> int:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]


def assert_same_run(single, ddp, keys) -> None:
    one, two = read_metrics(single), read_metrics(ddp)
    assert steps(single) == steps(ddp)
    for key in keys:
        assert len(one[key]) == len(two[key]), key
        for a, b in zip(one[key], two[key], strict=True):
            assert a == pytest.approx(b, abs=1e-5), (key, one[key], two[key])


def test_rule_classifier_ddp_matches_single_process_and_is_as_quiet(cli, tmp_path):
    args = ("fit", "--config", CONFIGS / "rule_classifier.yaml", "--trainer.max_epochs", "2")
    single = cli(*args)
    # As a user runs it, every warning shown: spawned workers print no LeafSpec deprecations, no jsonargparse
    # notices, no CSV "log files will be deleted"
    console = quiet_console(tmp_path, *map(str, args), "--config", str(DDP_CPU))
    assert "Previous log files" not in console and "LeafSpec" not in console and "JSONARGPARSE" not in console
    assert_in_order(console, ["Seed set to 42", "MEMBER: 2/2", "epoch 2/2 ", "test/acc"])
    ddp = latest_run(tmp_path / "lightning_logs")
    # The training epoch means too: per step, 1 and 2 processes' losses agree within 1.2e-7 and the epoch means
    # within 1e-7 (float32 accumulation in MeanMetric). Rounding cannot move them further: perturbing the initial
    # weights by 1e-5 (relative) moves the first epoch's mean train loss by < 1e-7, by 1e-3 only < 1e-5.
    keys = ["val/loss", "val/acc", "val/f1", "val/precision", "val/recall", "train/loss", "train/acc"]
    assert_same_run(single, ddp, keys)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [10, 97, 128])
def test_loader_shards_cover_every_sample_once_per_epoch(world_size, n):
    data = (torch.arange(n),)
    for epoch in range(3):
        seen = []
        for rank in range(world_size):
            loader = InMemoryLoader(data, batch_size=4, shuffle=True, seed=7, rank=rank, world_size=world_size)
            loader.sampler.set_epoch(epoch)
            seen.append(torch.cat([b[0] for b in loader]))
        assert len({len(s) for s in seen}) == 1  # every rank takes the same number of steps
        flat = torch.cat(seen)
        assert set(flat.tolist()) == set(range(n))  # every sample is seen ...
        assert len(flat) - n < world_size  # ... once, bar DistributedSampler's padding of < world_size
        # eval shards: disjoint and complete, no padding
        evals = [
            torch.cat([b[0] for b in InMemoryLoader(data, 4, rank=r, world_size=world_size)]) for r in range(world_size)
        ]
        assert sorted(torch.cat(evals).tolist()) == list(range(n))


def test_global_batch_is_split_across_ranks_like_one_process():
    data = (torch.arange(64),)
    single = list(InMemoryLoader(data, batch_size=8, shuffle=True, seed=1))
    shards = [list(InMemoryLoader(data, batch_size=4, shuffle=True, seed=1, rank=r, world_size=2)) for r in range(2)]
    for k, batch in enumerate(single):
        union = torch.cat([shards[0][k][0], shards[1][k][0]])
        assert sorted(union.tolist()) == sorted(batch[0].tolist())


@pytest.mark.parametrize("name", ["linear_regression.yaml", "polynomial_regression.yaml", "rule_classifier.yaml"])
def test_bf16_mixed_fast_dev_run(cli, name):
    cli("fit", "--config", CONFIGS / name, "--config", BF16, "--trainer.fast_dev_run", "2")


def test_mnist_mlp_ddp_matches_single_process(cli, idx):
    # Dropout draws different random numbers on each rank, so the comparison runs without it; the CNN's
    # BatchNorm would also see per-rank batches (use trainer.sync_batchnorm on GPUs).
    args = ("fit", "--config", CONFIGS / "mnist_mlp.yaml", *fixture_data(idx), "--trainer.max_epochs", "2",
            "--data.batch_size", "30", "--model.init_args.dropout", "0.0")  # fmt: skip
    single = cli(*args)
    ddp = cli(*args, "--config", DDP_CPU)
    assert_same_run(single, ddp, ["val/loss", "val/acc", "val/f1", "val/precision", "val/recall", "train/loss"])


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*mnist_*.yaml")))
def test_bf16_mixed_fast_dev_run_mnist(cli, idx, name):
    cli("fit", "--config", CONFIGS / name, "--config", BF16, "--trainer.fast_dev_run", "2", *fixture_data(idx))
