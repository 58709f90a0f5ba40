"""MNISTDataModule: the validation split, standardization statistics, batches, shifted training images, DDP shards.

.venv/bin/pytest tests/test_mnist_data.py -q    # tiny generated IDX files (conftest.idx), never a download
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from helpers import N_TEST, N_TRAIN, N_VAL
from torch import nn
from torch.utils.data import DistributedSampler

from dlbasics.data.memory import InMemoryLoader
from dlbasics.data.mnist import MNISTDataModule, pixel_stats, random_shift


def sample_ids(images: torch.Tensor) -> torch.Tensor:
    return images[:, 0, 0].long() + 256 * images[:, 0, 1].long()


def datamodule(root: Path, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(root=str(root), verify=False, num_val=N_VAL, **kwargs)
    dm.setup("fit")
    return dm


# --- splits, statistics, batches ----------------------------------------------------------------------------------


def test_validation_is_carved_from_training_with_a_fixed_seed(idx):
    dm = datamodule(idx["flat"])
    ids = {split: sample_ids(tensors[0]) for split, tensors in dm.splits.items()}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [N_TRAIN - N_VAL, N_VAL, N_TEST]
    assert sorted(torch.cat([ids["train"], ids["val"]]).tolist()) == list(range(N_TRAIN))
    assert ids["test"].tolist() == list(range(N_TEST))  # the official test set, in order
    for split, prefix in (("train", "train"), ("val", "train"), ("test", "t10k")):  # labels untouched
        assert np.array_equal(dm.splits[split][1].numpy(), idx["arrays"][prefix][1][ids[split].numpy()])
    assert torch.equal(sample_ids(datamodule(idx["flat"]).splits["val"][0]), ids["val"])
    assert not torch.equal(sample_ids(datamodule(idx["flat"], seed=1).splits["val"][0]), ids["val"])


def test_standardization_statistics_come_from_the_training_split_only(idx):
    dm = datamodule(idx["flat"])
    train = dm.splits["train"][0].double() / 255
    assert dm.pixel_mean == pytest.approx(float(train.mean()), abs=1e-9)
    assert dm.pixel_std == pytest.approx(float(train.std(unbiased=False)), abs=1e-9)
    everything = torch.cat([t[0] for t in dm.splits.values()])
    assert pixel_stats(everything) != pytest.approx((dm.pixel_mean, dm.pixel_std), abs=1e-6)
    x, y = dm.on_after_batch_transfer(dm.splits["train"], 0)  # batches: pixels in [0, 1]; the model standardizes
    assert x.shape == (N_TRAIN - N_VAL, 1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x, dm.splits["train"][0].unsqueeze(1).float() / 255, atol=1e-7)
    z = (x - dm.pixel_mean) / dm.pixel_std
    assert float(z.mean()) == pytest.approx(0, abs=1e-4) and float(z.std()) == pytest.approx(1, abs=1e-3)
    assert torch.equal(y, dm.splits["train"][1])
    unit = datamodule(idx["flat"], normalization="unit")
    assert (unit.pixel_mean, unit.pixel_std) == (0.0, 1.0)
    assert torch.equal(
        unit.on_after_batch_transfer(dm.splits["test"], 0)[0], dm.on_after_batch_transfer(dm.splits["test"], 0)[0]
    )


def test_the_statistics_are_known_before_setup_so_the_cli_can_link_them(idx):
    dm = MNISTDataModule(root=str(idx["flat"]), verify=False, num_val=N_VAL)
    stats = dm.pixel_mean, dm.pixel_std
    dm.setup("fit")
    dm.teardown("fit")
    assert len(dm.splits["train"][0]) == N_TRAIN - N_VAL and dm.loaded == {}
    assert stats == pytest.approx(pixel_stats(dm.splits["train"][0]), abs=1e-12)
    assert stats == (dm.pixel_mean, dm.pixel_std)


def test_batches_are_sliced_and_reshuffled_every_epoch_reproducibly(idx):
    dm = datamodule(idx["flat"], batch_size=32)

    def epoch_ids(module: MNISTDataModule, epoch: int) -> list[list[int]]:
        loader = module.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return [sample_ids(batch[0]).tolist() for batch in loader]

    first = epoch_ids(dm, 0)
    assert [len(b) for b in first] == [32, 32, 32, 32, 22]
    assert sorted(i for batch in first for i in batch) == sorted(sample_ids(dm.splits["train"][0]).tolist())
    assert epoch_ids(dm, 1) != first
    assert epoch_ids(datamodule(idx["flat"], batch_size=32), 0) == first


# --- augmentation -------------------------------------------------------------------------------------------------


def test_random_shift_moves_whole_batches_within_the_limit():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    shifted = random_shift(x, 2)
    assert shifted.shape == x.shape and torch.equal(shifted.sum(dim=(1, 2, 3)), torch.ones(64))
    rows, cols = (
        shifted[:, 0].flatten(1).argmax(dim=1).div(28, rounding_mode="floor"),
        shifted[:, 0].flatten(1).argmax(1) % 28,
    )
    assert rows.sub(14).abs().max() <= 2 and cols.sub(14).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 10  # each image has its own offset
    assert torch.equal(random_shift(x, 0), x)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] ``(N, 1, 28, 28)`` back to the uint8 ``(N, 28, 28)`` they were made from."""
    return images[:, 0].mul(255).round().to(torch.uint8)


class BatchRecorder(L.LightningModule):
    """Keeps the images each stage's steps receive, with the training samples' positions in the resident split."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(784, 10)
        self.seen: dict[str, list[tuple[torch.Tensor, torch.Tensor | None]]] = {"train": [], "val": [], "test": []}

    def training_step(self, batch, batch_idx):
        loader = self.trainer.train_dataloader
        positions = loader.indices()[batch_idx * loader.batch_size :][: len(batch[0])]
        self.seen["train"].append((as_uint8(batch[0]), positions))
        return nn.functional.cross_entropy(self.layer(batch[0].flatten(1)), batch[1])

    def validation_step(self, batch, batch_idx):
        self.seen["val"].append((as_uint8(batch[0]), None))

    def test_step(self, batch, batch_idx):
        self.seen["test"].append((as_uint8(batch[0]), None))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def offsets(image: torch.Tensor, original: torch.Tensor, shift: int) -> list[tuple[int, int]]:
    """The moves ``(dy, dx)`` within ``shift`` (zero-filled) that turn ``original`` into ``image`` (both 28x28)."""
    padded = nn.functional.pad(original, (shift, shift, shift, shift))
    moves = [(dy, dx) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)]
    return [(dy, dx) for dy, dx in moves if torch.equal(padded[shift - dy :][:28, shift - dx :][:, :28], image)]


@pytest.mark.parametrize("shift", [0, 2])
def test_shifted_batches_reach_training_step_and_never_validation_or_test(idx, tmp_path, shift):
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    dm = MNISTDataModule(root=str(idx["flat"]), verify=False, num_val=N_VAL, shift=shift, batch_size=32)
    model = BatchRecorder()
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)
    pixels = {split: dm.splits[split][0] for split in ("train", "val", "test")}
    moves = []
    for images, positions in model.seen["train"]:
        for image, original in zip(images, pixels["train"][positions], strict=True):
            found = offsets(image, original, shift)
            assert found, "a training image is not its resident image moved within the shift"
            moves.append(found)
    assert len(moves) == 2 * (N_TRAIN - N_VAL)  # every training image of both epochs was checked
    moved = sum((0, 0) not in m for m in moves)
    if shift:  # 24 of the 25 moves change an image: nearly all training images arrive shifted
        assert moved > 0.8 * len(moves)
    else:
        assert moved == 0
    # Validation (sanity check and every epoch) and test batches are the resident images, untouched.
    for stage, split in (("val", "val"), ("test", "test")):
        assert model.seen[stage]
        for images, _ in model.seen[stage]:
            assert torch.equal(images, pixels[split][: len(images)])
    assert MNISTDataModule().shift == 0


# --- DDP ----------------------------------------------------------------------------------------------------------


class IndexedData(MNISTDataModule):
    """The training split carries each sample's position as a third tensor."""

    def setup(self, stage: str) -> None:
        super().setup(stage)
        x, y = self.splits["train"][:2]
        self.splits["train"] = (x, y, torch.arange(len(x)))


class SeenRecorder(L.LightningModule):
    """Saves the positions each rank trained on, per epoch, as ``<out_dir>/rank<R>-epoch<E>.pt``."""

    def __init__(self, out_dir: str) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.layer = nn.Linear(784, 10)
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        # Our own loader and its own DistributedSampler, which Lightning set to this epoch (nothing injected).
        loader = self.trainer.train_dataloader
        assert type(loader) is InMemoryLoader and type(loader.sampler) is DistributedSampler
        assert (loader.sampler.rank, loader.sampler.num_replicas, loader.sampler.epoch) == (
            self.global_rank, 2, self.current_epoch,
        )  # fmt: skip
        x, y, position = batch
        shard = (N_TRAIN - N_VAL) // 2  # global batch 20 = 10 on each of the 2 processes
        assert x.shape[1:] == (1, 28, 28) and len(position) == min(10, shard - 10 * batch_idx)
        self.seen.append(position)
        return nn.functional.cross_entropy(self.layer(x.flatten(1)), y)

    def on_train_epoch_end(self) -> None:
        torch.save(torch.cat(self.seen), Path(self.out_dir) / f"rank{self.global_rank}-epoch{self.current_epoch}.pt")
        self.seen = []

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_ddp_every_sample_is_seen_exactly_once_per_epoch(idx, tmp_path):
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path,
    )  # fmt: skip
    data = IndexedData(root=str(idx["flat"]), verify=False, num_val=N_VAL, batch_size=20)
    trainer.fit(SeenRecorder(str(tmp_path)), datamodule=data)
    orders = []
    for epoch in range(2):
        shards = [torch.load(tmp_path / f"rank{rank}-epoch{epoch}.pt") for rank in range(2)]
        assert [len(s) for s in shards] == [(N_TRAIN - N_VAL) // 2] * 2
        assert sorted(torch.cat(shards).tolist()) == list(range(N_TRAIN - N_VAL))
        orders.append(shards[0].tolist())
    assert orders[0] != orders[1]  # reshuffled every epoch
