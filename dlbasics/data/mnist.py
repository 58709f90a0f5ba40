"""MNIST and Fashion-MNIST as resident uint8 tensors, scaled to [0, 1] and augmented a whole batch at a time.

    dlbasics fit --config configs/fashion_mnist_cnn.yaml

The splits come from the official IDX files (:mod:`dlbasics.data.idx`: Debian's ``dataset-fashion-mnist``, a
folder of your own, or torchvision's download). Each stage reads only the files it needs: ``test`` the test
split, ``predict`` of the user's files none at all (a checkpoint carries the statistics), and nothing is
downloaded that the stage does not need.

``dlbasics predict --data.predict_path my_digits/`` predicts the user's own images (read by
:func:`dlbasics.use.files.load_images`) instead of the test split (columns: :meth:`MNISTDataModule.prediction_table`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from dlbasics.data.idx import DATASETS, DEBIAN_FASHION_MNIST, locate_split, read_split
from dlbasics.data.memory import InMemoryDataModule
from dlbasics.use.files import load_images
from dlbasics.use.images import to_pixels
from dlbasics.use.predict import image_table

__all__ = ["DEBIAN_FASHION_MNIST", "MNISTDataModule", "locate_split", "read_split"]


class MNISTDataModule(InMemoryDataModule):
    """MNIST or Fashion-MNIST: 28x28 grey images, 10 classes; batches ``(N, 1, 28, 28)`` float, labels int64.

    Validation is drawn from the official training set with ``seed``. Splits are held as uint8 tensors on the
    training device and become float pixels in [0, 1] there (:meth:`on_after_batch_transfer`). ``pixel_mean`` and
    ``pixel_std`` (training split only) are for the model, linked by the CLI: reading them loads the files if needed.

    Args:
        dataset: ``mnist`` or ``fashion_mnist``.
        root: Folder of the IDX files (flat, or torchvision's ``<root>/<ClassName>/raw``). ``None``:
            Debian's /usr/share/datasets/fashion-mnist for Fashion-MNIST when it exists, else ``data``.
        download: Let torchvision download missing files into ``<root>/<ClassName>/raw``.
        verify: Check the files' contents against the official md5 sums (turn off for your own IDX files).
        num_val: Training images held out for validation.
        normalization: What the model does with the pixels in [0, 1]: ``standardize`` (``pixel_mean``/``pixel_std``
            are the mean/std of the training split) or ``unit`` (they are 0 and 1: pixels / 255, as the fish book).
        shift: Augmentation: move each training image by up to ``shift`` pixels each way (0 = off).
        batch_size: Global training batch size.
        eval_batch_size: Global batch size of validation, test and predict.
        seed: Seed of the validation split and of the per-epoch shuffling.
        predict_path: The user's images to predict instead of the test split: an image file, a folder of
            images (sorted by name; other files are skipped with one warning) or a ``.npy`` of ``(N, 28, 28)``
            images; preprocessed in the style of ``dataset`` (digits or clothes).
        pixel_mean: The statistics the model standardizes with, if known (``None``: computed from the training
            split). The CLI gives a checkpoint's own here when it tests or predicts with it, so nothing is read.
        pixel_std: Their standard deviation, likewise.
    """

    num_features = 784
    num_classes = 10

    def __init__(
        self,
        dataset: str = "mnist",
        root: str | None = None,
        download: bool = False,
        verify: bool = True,
        num_val: int = 5000,
        normalization: Literal["standardize", "unit"] = "standardize",
        shift: int = 0,
        batch_size: int = 256,
        eval_batch_size: int | None = 1000,
        seed: int = 0,
        predict_path: str | None = None,
        pixel_mean: float | None = None,
        pixel_std: float | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed)
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
        if num_val < 1 or shift < 0:
            raise ValueError(f"num_val must be >= 1 and shift >= 0, got num_val={num_val}, shift={shift}")
        if root is None:
            debian = dataset == "fashion_mnist" and Path(DEBIAN_FASHION_MNIST).is_dir()
            root = DEBIAN_FASHION_MNIST if debian else "data"
        self.dataset, self.root, self.download, self.verify = dataset, root, download, verify
        self.num_val, self.normalization, self.shift = num_val, normalization, shift
        self.class_names = [c.split(" - ")[0] for c in DATASETS[dataset].classes]
        #: How the user's photos become 28x28 images for this dataset (digits or clothes), for the model.
        self.image_style = "mnist" if dataset == "mnist" else "fashion"
        self.predict_path = predict_path
        #: File names of the predict split's images (``predict_path`` only), in sample order.
        self.predict_names: list[str] | None = None
        if (pixel_mean is None) != (pixel_std is None):
            raise ValueError("give both pixel_mean and pixel_std, or neither (computed from the training split)")
        self.stats = None if pixel_mean is None else (float(pixel_mean), float(pixel_std))  # once known
        self.loaded: dict[str, tuple[Tensor, Tensor]] = {}  # see read

    def prepare_data(self) -> None:
        # Lightning runs this once per node before setup: downloads never race. Only the files the stage reads:
        # the training set (True; validation is carved from it), the test set (False), none for the user's images.
        stage = self.trainer.state.fn if self.trainer is not None else "fit"  # TrainerFn: a str enum
        if self.download and not (stage == "predict" and self.predict_path is not None):
            for train in {"fit": (True, False), "validate": (True,)}.get(stage, (False,)):
                locate_split(self.root, self.dataset, train, download=True)

    @property
    def pixel_mean(self) -> float:
        """Mean of the training split's pixels in [0, 1] (0 for ``normalization: unit``), for the model."""
        return self.training_stats()[0]

    @property
    def pixel_std(self) -> float:
        """Standard deviation of the training split's pixels in [0, 1] (1 for ``normalization: unit``)."""
        return self.training_stats()[1]

    def training_stats(self) -> tuple[float, float]:
        """``(pixel_mean, pixel_std)``; reads the splits first when needed (the CLI asks before ``setup``)."""
        if self.normalization == "unit":
            return 0.0, 1.0
        if self.stats is None:
            self.stats = pixel_stats(self.read("train")[0])
        return self.stats

    def read(self, split: str) -> tuple[Tensor, Tensor]:
        """A split as read from the files (CPU), kept until :meth:`setup` takes it; ``val`` is carved from train.

        Not in ``self.splits`` before ``setup``: Lightning's ``str(datamodule)``, which jsonargparse formats
        while linking, would iterate every loader.
        """
        if split in ("train", "val") and "train" not in self.loaded:
            x, y = read_split(self.root, self.dataset, True, self.download, self.verify)
            if self.num_val >= len(x):
                raise ValueError(f"num_val {self.num_val} leaves no training images: the training set has {len(x)}")
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
            val, train = order[: self.num_val].sort().values, order[self.num_val :].sort().values
            self.loaded |= {"train": (x[train], y[train]), "val": (x[val], y[val])}
        elif split == "test" and "test" not in self.loaded:
            self.loaded["test"] = read_split(self.root, self.dataset, False, self.download, self.verify)
        return self.loaded[split]

    def setup(self, stage: str) -> None:
        if stage == "predict" and self.predict_path is not None:
            if "predict" not in self.splits:
                images, self.predict_names = load_images(self.predict_path, self.image_style)
                self.splits["predict"] = (images,)
        else:
            wanted = {"fit": ("train", "val", "test"), "validate": ("val",)}.get(stage, ("test",))
            self.splits |= {split: self.read(split) for split in wanted if split not in self.splits}
        self.to_device()

    def teardown(self, stage: str) -> None:
        self.loaded = {}  # setup took them

    def prediction_table(self, index: Tensor, columns: dict[str, Tensor]) -> dict[str, list] | None:
        """``predictions.csv``: ``index[, file], class, label, probability``; ``file`` (the user's images in sorted
        order) only with ``predict_path``."""
        if "class" not in columns or "probability" not in columns:
            return None
        return image_table(index, columns, self.class_names, self.predict_names)

    def on_after_batch_transfer(self, batch: tuple[Tensor, ...], dataloader_idx: int) -> tuple[Tensor, ...]:
        """uint8 ``(N, 28, 28)`` → float pixels in [0, 1] ``(N, 1, 28, 28)``, shifted at random while training."""
        x = to_pixels(batch[0])
        if self.shift and self.trainer is not None and self.trainer.training:
            x = random_shift(x, self.shift)
        return (x, *batch[1:])


def first_available(datasets: tuple[str, ...] = ("mnist", "fashion_mnist")) -> tuple[str, list[str]] | str:
    """The first of ``datasets`` whose files this machine has (MNIST may be downloaded into ``data``), as its name
    ("MNIST", "Fashion-MNIST") and the CLI arguments that use it; else one line saying why none could be had."""
    reasons = []
    for dataset in datasets:
        name = DATASETS[dataset].__name__.replace("Fashion", "Fashion-")
        root = MNISTDataModule(dataset=dataset).root
        try:
            for train in (True, False):
                locate_split(root, dataset, train, download=dataset == "mnist")
        except (OSError, RuntimeError, ValueError) as err:
            reasons.append(f"{name}: {err}")
            continue
        return name, ["--data.dataset", dataset, "--data.root", root, "--data.download", "false"]
    return "skipped: " + " | ".join(reasons)


def pixel_stats(images: Tensor) -> tuple[float, float]:
    """Mean and standard deviation of the pixels of uint8 ``images`` scaled to [0, 1] (exact, via a histogram)."""
    counts = torch.bincount(images.flatten().cpu(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    mean = (counts * values).sum() / counts.sum()
    var = (counts * (values - mean) ** 2).sum() / counts.sum()
    return float(mean), float(var.sqrt())


def random_shift(x: Tensor, shift: int) -> Tensor:
    """Move every image of ``x`` ``(N, C, H, W)`` by its own random offset in ``[-shift, shift]``², zero-filled."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n, 1), device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]
