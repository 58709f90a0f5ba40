"""In-memory tensor batching shared by every dlbasics DataModule.

    dlbasics fit --config configs/rule_classifier.yaml   # any experiment uses it

Small datasets (synthetic vectors, MNIST, sine windows) fit in memory, so each split is kept as a tuple of tensors
and batches are produced by indexing them: no per-sample ``__getitem__``, no worker processes. Under DDP every rank
sees its own disjoint shard each epoch, and the union of the ranks' k-th batches is the single-process k-th batch.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DistributedSampler


def require_at_least(minimum: float, **values: float) -> None:
    """Raise ``ValueError`` naming the first of ``values`` that is below ``minimum``."""
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")


class InMemoryLoader:
    """Iterable of batches sliced from tensors that share their first dimension, in a ``DistributedSampler``'s order.

    :attr:`sampler` is a real :class:`~torch.utils.data.DistributedSampler` over the sample indices: Lightning calls
    ``loader.sampler.set_epoch(epoch)`` before every epoch (also after a resume), as for a ``DataLoader``, which
    reshuffles. Not being a ``DataLoader``, the loader is never given another sampler by Lightning
    (``use_distributed_sampler`` only rewrites ``DataLoader`` objects).

    Training (``shuffle``) keeps the sampler's padding, so every rank takes the same number of steps; evaluation drops
    it, so each sample is counted exactly once and DDP metrics equal the single-process ones.

    Args:
        tensors: The split, e.g. ``(x, y)``; all share ``len``.
        batch_size: Samples per batch on this process (global batch / world size).
        shuffle: Reshuffle every epoch from ``seed + epoch``.
        seed: Base seed of the permutation.
        world_size: Number of processes sharing the data.
    """

    def __init__(
        self,
        tensors: Sequence[Tensor],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        require_at_least(1, batch_size=batch_size)
        self.tensors = tuple(tensors)
        self.batch_size = batch_size
        # ``range`` is all a sampler needs of a dataset: its length.
        self.sampler = DistributedSampler(
            range(len(self.tensors[0])), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
        )
        self.batch_sampler = None  # batches are slices of the sampler's order (Lightning reads this attribute)

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch: the sampler's padded share when shuffling, its own samples otherwise."""
        s = self.sampler
        return s.num_samples if s.shuffle else len(range(s.rank, len(s.dataset), s.num_replicas))

    def indices(self) -> Tensor:
        """This rank's sample indices for the current epoch, in the order batches are cut from them."""
        # With its padding dropped, a rank's share is a prefix of the sampler's: padding is appended at the end.
        return torch.tensor(list(self.sampler), dtype=torch.long)[: self.num_samples]

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        if not self.sampler.shuffle and self.sampler.num_replicas == 1:  # the order is 0..n-1: views, no copy
            for b in range(len(self)):
                yield tuple(t[b * self.batch_size : (b + 1) * self.batch_size] for t in self.tensors)
            return
        idx = self.indices().to(self.tensors[0].device)
        for b in range(len(self)):
            sel = idx[b * self.batch_size : (b + 1) * self.batch_size]
            yield tuple(t[sel] for t in self.tensors)


class InMemoryDataModule(L.LightningDataModule, ABC):
    """Base DataModule whose splits are tuples of tensors held in memory.

    Subclasses fill ``self.splits`` (``"train"``, ``"val"``, ``"test"``, ``"predict"``) in ``setup``. ``batch_size`` is
    the global batch: each of ``world_size`` processes gets ``batch_size // world_size`` samples per step, so results
    do not depend on the device count. When the Trainer runs on an accelerator the tensors are moved there once.

    What a model needs to know about the data is an attribute a subclass defines only when it applies
    (``num_features``, ``num_classes``, ``horizon``, …); the CLI links each into the model's parameter of that
    name, so every model a DataModule serves must take the ones it defines (a link to a parameter the model
    lacks would be recorded in the checkpoint's hyperparameters and break loading it).
    """

    def __init__(self, batch_size: int = 32, eval_batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        require_at_least(1, batch_size=batch_size)
        if eval_batch_size is not None:
            require_at_least(1, eval_batch_size=eval_batch_size)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.splits: dict[str, tuple[Tensor, ...]] = {}

    def to_device(self) -> None:
        """Move every split onto the training device (a no-op on CPU or without a Trainer)."""
        if self.trainer is not None:
            device = self.trainer.strategy.root_device
            self.splits = {k: tuple(t.to(device) for t in v) for k, v in self.splits.items()}

    def loader(self, split: str, shuffle: bool = False) -> InMemoryLoader:
        """An :class:`InMemoryLoader` over ``split`` for this process: its equal share of the global batch."""
        if split not in self.splits:
            raise RuntimeError(f"{type(self).__name__} has no {split!r} split; call setup() first")
        rank, world_size = (0, 1) if self.trainer is None else (self.trainer.global_rank, self.trainer.world_size)
        size = self.batch_size if split == "train" else (self.eval_batch_size or self.batch_size)
        if size % world_size:
            raise ValueError(
                f"batch_size {size} is not divisible by the {world_size} processes: "
                f"choose a multiple of {world_size} so the global batch is preserved"
            )
        return InMemoryLoader(self.splits[split], size // world_size, shuffle, self.seed, rank, world_size)

    @abstractmethod
    def setup(self, stage: str) -> None:
        """Fill ``self.splits`` (then call :meth:`to_device`)."""

    def train_dataloader(self) -> InMemoryLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> InMemoryLoader:
        return self.loader("val")

    def test_dataloader(self) -> InMemoryLoader:
        return self.loader("test")

    def predict_dataloader(self) -> InMemoryLoader:
        return self.loader("predict" if "predict" in self.splits else "test")
