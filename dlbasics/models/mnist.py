"""Classifiers of 28x28 images: an MLP (the fish book's two-layer net and modern variants) and a small CNN.

    dlbasics fit --config configs/fashion_mnist_cnn.yaml
    dlbasics test --config configs/fashion_mnist_cnn.yaml --ckpt_path <checkpoint>

Both take float pixels in [0, 1] ``(N, 1, 28, 28)`` (what :class:`dlbasics.data.MNISTDataModule` yields),
standardize them with the training split's statistics (hparams ``pixel_mean``/``pixel_std``, linked from the
DataModule, so a checkpoint alone turns raw pixels into a prediction) and return logits ``(N, num_classes)``.

The models know what their inputs were: ``class_names`` and ``image_style`` (digits or clothes, how a photo is
turned into a 28x28 image) are linked from the DataModule into every checkpoint, so
``dlbasics.use.predict(model, "my_photos/")`` prepares the user's images as the model's data were made.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from dlbasics.models.base import Classifier, check_input, check_positive

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


class ImageClassifier(Classifier):
    """A :class:`Classifier` of 28x28 images, standardized with the training split's pixel statistics.

    Args:
        num_features: Values per image, 784 (linked from the DataModule).
        num_classes: Classes (linked from the DataModule).
        pixel_mean: Mean of the training pixels in [0, 1] (linked from the DataModule); ``forward`` subtracts it.
        pixel_std: Their standard deviation (linked from the DataModule); ``forward`` divides by it.
        class_names: Names of the classes (linked from the DataModule), for the predictions' labels.
        image_style: How a photo becomes the model's input (linked from the DataModule): ``mnist`` (digits) or
            ``fashion`` (clothes); see :func:`dlbasics.use.images.preprocess` and :attr:`input_style`.
    """

    @property
    def input_style(self) -> str:
        """``image_style``; for a checkpoint written before it was recorded, what its class names say."""
        names = self.hparams.get("class_names") or []
        return self.hparams.get("image_style") or ("mnist" if all(str(n).isdigit() for n in names) else "fashion")

    def example_input(self, batch: int = 1) -> Tensor:
        """Uniform pixels in [0, 1], ``(batch, 1, 28, 28)`` float32, from a fixed seed of its own."""
        return torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    def standardize(self, x: Tensor) -> Tensor:
        """Pixels in [0, 1] → standardized with the training split's statistics (buffers from the hparams)."""
        return (x - self.pixel_mean) / self.pixel_std

    def register_pixel_stats(self, pixel_mean: float, pixel_std: float) -> None:
        """Keep the statistics as buffers (constants that follow the model to its device)."""
        check_positive(pixel_std=pixel_std)
        self.register_buffer("pixel_mean", torch.tensor(float(pixel_mean)), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(float(pixel_std)), persistent=False)


class MNISTMLP(ImageClassifier):
    """Fully connected net ``num_features → hidden_sizes… → num_classes`` on flattened images.

    Args:
        hidden_sizes: Width of each hidden layer (``[50]`` is the fish book's two-layer net).
        activation: ``sigmoid``, ``tanh``, ``relu`` or ``leaky_relu`` (slope 0.01).
        dropout: Dropout probability after each hidden activation.
        init: Weight initialisation: ``default`` (PyTorch's), ``normal`` (N(0, init_std²), zero biases, as the
            fish book), ``xavier`` (Glorot: std sqrt(2 / (fan_in + fan_out)), the fish book's 1/sqrt(n)) or
            ``kaiming`` (He: std gain / sqrt(fan_in), gain sqrt(2) for ReLU), normal variants with zero biases.
        init_std: Standard deviation of the ``normal`` initialisation.
    """

    def __init__(
        self,
        num_features: int = 784,
        num_classes: int = 10,
        pixel_mean: float = 0.0,
        pixel_std: float = 1.0,
        class_names: list[str] | None = None,
        image_style: Literal["mnist", "fashion"] | None = None,
        hidden_sizes: list[int] = [256, 128],  # noqa: B006 (jsonargparse needs a literal default)
        activation: Literal["sigmoid", "tanh", "relu", "leaky_relu"] = "relu",
        dropout: float = 0.0,
        init: Literal["default", "normal", "xavier", "kaiming"] = "default",
        init_std: float = 0.01,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, lr_scheduler)
        check_positive(num_features=num_features, init_std=init_std)
        self.register_pixel_stats(pixel_mean, pixel_std)
        if any(size < 1 for size in hidden_sizes):
            raise ValueError(f"hidden_sizes must all be >= 1, got {hidden_sizes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.save_hyperparameters()
        sizes = [num_features, *hidden_sizes]
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
            layers += [nn.Dropout(dropout)] if dropout else []
        layers.append(nn.Linear(sizes[-1], num_classes))
        self.net = nn.Sequential(*layers)
        if init != "default":
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    init_linear(layer, init, init_std, activation)
        self.example_input_array = torch.zeros(1, 1, 28, 28)  # the model summary's sizes and FLOPs

    def forward(self, x: Tensor) -> Tensor:
        features = self.hparams.num_features
        if x.ndim < 2 or x[0].numel() != features:
            raise ValueError(
                f"MNISTMLP expects (N, {features}) vectors or images (N, 1, 28, 28) of {features} values, "
                f"got {tuple(x.shape)}"
            )
        return self.net(self.standardize(x))

    @torch.no_grad()
    def hidden_activations(self, x: Tensor) -> list[Tensor]:
        """Each hidden layer's activations for images ``x``, ``(N, width)`` per layer (the fish book's histograms)."""
        out, found = self.standardize(x).flatten(1), []
        for layer in self.net[1:]:
            out = layer(out)
            if isinstance(layer, tuple(ACTIVATIONS.values())):
                found.append(out)
        return found


def init_linear(layer: nn.Linear, init: str, std: float, activation: str) -> None:
    """Initialise ``layer``'s weight by ``init`` (``normal``, ``xavier`` or ``kaiming``) and zero its bias."""
    if init == "normal":
        nn.init.normal_(layer.weight, std=std)
    elif init == "xavier":
        nn.init.xavier_normal_(layer.weight)  # gain 1, as Glorot and Bengio (and the fish book) define it
    else:
        nn.init.kaiming_normal_(layer.weight, nonlinearity=activation)
    nn.init.zeros_(layer.bias)


class MNISTCNN(ImageClassifier):
    """Blocks of conv 3x3, max-pool 2x2, BatchNorm, ReLU; then an optional hidden layer, dropout and a linear head.

    Each block normalizes after the pool, so BatchNorm and ReLU run on a quarter of the values: on a CPU that
    makes a step 1.15-1.35x faster than BatchNorm at full resolution, and one epoch of the (16, 32, 64) and
    (16, 48, 96) nets was as accurate or more. ``hidden`` is what lets one epoch of the sprint recipe reach 0.90
    (``benchmarks/results/sprint.md``).

    Args:
        channels: Output channels of each block; each block halves the image side (28 → 14 → 7 …).
        hidden: Width of a hidden layer between the blocks and the output (linear, BatchNorm, ReLU); 0: none.
        dropout: Dropout probability before the output layer.
        channels_last: Keep convolution weights and activations channels-last (faster on CPUs with oneDNN).
    """

    def __init__(
        self,
        num_features: int = 784,
        num_classes: int = 10,
        pixel_mean: float = 0.0,
        pixel_std: float = 1.0,
        class_names: list[str] | None = None,
        image_style: Literal["mnist", "fashion"] | None = None,
        channels: list[int] = [32, 64],  # noqa: B006
        hidden: int = 0,
        dropout: float = 0.0,
        channels_last: bool = False,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, lr_scheduler)
        if num_features != 28 * 28:
            raise ValueError(f"MNISTCNN takes 28x28 images: num_features must be 784, got {num_features}")
        self.register_pixel_stats(pixel_mean, pixel_std)
        if not 1 <= len(channels) <= 4 or any(c < 1 for c in channels):
            raise ValueError(f"channels must list 1 to 4 block widths >= 1 (28x28 images), got {channels}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0 (0: no hidden layer), got {hidden}")
        self.save_hyperparameters()
        blocks: list[nn.Module] = []
        for c_in, c_out in zip([1, *channels[:-1]], channels, strict=True):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2)]
            blocks += [nn.BatchNorm2d(c_out), nn.ReLU()]
        side = 28 // 2 ** len(channels)
        self.features = nn.Sequential(*blocks)
        width = channels[-1] * side * side
        head: list[nn.Module] = [nn.Flatten()]
        if hidden:
            head += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
            width = hidden
        self.head = nn.Sequential(*head, nn.Dropout(dropout), nn.Linear(width, num_classes))
        if channels_last:
            self.features.to(memory_format=torch.channels_last)
        self.example_input_array = torch.zeros(1, 1, 28, 28)  # the model summary's sizes and FLOPs

    @torch.no_grad()
    def block_outputs(self, x: Tensor) -> list[Tensor]:
        """Each block's output (its ReLU) for images ``x``: the maps a picture shows."""
        check_input(self, x, 1, 28, 28)
        out, found = self.standardize(x), []
        for layer in self.features:
            out = layer(out)
            if isinstance(layer, nn.ReLU):
                found.append(out)
        return found

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, 1, 28, 28)
        x = self.standardize(x)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x))
