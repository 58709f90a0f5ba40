"""Classifiers of 28x28 images: an MLP (the fish book's two-layer net and modern variants) and a small CNN.

    dlbasics fit --config configs/fashion_mnist_cnn.yaml
    dlbasics test --config configs/fashion_mnist_cnn.yaml --ckpt_path <checkpoint>

Both take standardized images ``(N, 1, 28, 28)`` (what :class:`dlbasics.data.MNISTDataModule` yields)
and return logits ``(N, num_classes)``. ``test`` also saves, in the run directory and to TensorBoard/wandb,
the confusion matrix, a grid of misclassified test images and (CNN) each block's activation maps.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import torch
from torch import Tensor, nn

from dlbasics.models.base import Classifier, OptimizerName, SchedulerName, check_input, check_positive
from dlbasics.plots import activation_maps_figure, block_outputs, log_figure, misclassified_grid_figure

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


class ImageClassifier(Classifier):
    """A :class:`Classifier` of images whose test run also shows misclassified images and, for models with
    ``activation_blocks``, what each block sees (``test/misclassified``, ``test/activations``)."""

    examples = 25  # misclassified images kept for the grid

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes=num_classes)
        self.wrong: list[tuple[Tensor, Tensor, Tensor]] = []
        self.probe: Tensor | None = None

    def activation_blocks(self) -> list[nn.Module]:
        """Submodules whose outputs are shown as activation maps (none by default)."""
        return []

    def on_test_epoch_start(self) -> None:
        self.wrong, self.probe = [], None

    def record_test_batch(self, x: Tensor, y: Tensor, output: Tensor) -> None:
        super().record_test_batch(x, y, output)
        if self.probe is None:
            self.probe = x[:4]
        if sum(len(w[0]) for w in self.wrong) < self.examples:
            pred = output.argmax(-1)
            miss = pred != y
            self.wrong.append(
                (x[miss][: self.examples].cpu(), pred[miss][: self.examples].cpu(), y[miss][: self.examples].cpu())
            )

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        trainer = self.trainer
        if not trainer.is_global_zero or trainer.fast_dev_run or self.probe is None:
            return
        names = getattr(trainer.datamodule, "class_names", None)
        if self.wrong:
            images, preds, targets = (torch.cat(t) for t in zip(*self.wrong, strict=True))
            log_figure(trainer, "test/misclassified", misclassified_grid_figure(images, preds, targets, names))
        if blocks := self.activation_blocks():
            maps = block_outputs(self, blocks, self.probe)
            log_figure(trainer, "test/activations", activation_maps_figure(self.probe, maps))


class MNISTMLP(ImageClassifier):
    """Fully connected net ``num_features → hidden_sizes… → num_classes`` on flattened images.

    Args:
        num_features: Input values per image (linked from the DataModule: 784).
        num_classes: Classes (linked from the DataModule).
        hidden_sizes: Width of each hidden layer (``[50]`` is the fish book's two-layer net).
        activation: ``sigmoid``, ``tanh`` or ``relu``.
        dropout: Dropout probability after each hidden activation.
        init: Weight initialisation: ``default`` (PyTorch's), ``normal`` (N(0, init_std²), zero biases, as the
            fish book), ``xavier`` or ``kaiming`` (normal variants, zero biases).
        init_std: Standard deviation of the ``normal`` initialisation.
        lr: Learning rate (the peak rate with ``onecycle``).
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``adadelta``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        scheduler: ``none``, ``onecycle``, ``cosine`` or ``step``.
    """

    def __init__(
        self,
        num_features: int = 784,
        num_classes: int = 10,
        hidden_sizes: list[int] = [256, 128],  # noqa: B006 (jsonargparse needs a literal default)
        activation: Literal["sigmoid", "tanh", "relu"] = "relu",
        dropout: float = 0.0,
        init: Literal["default", "normal", "xavier", "kaiming"] = "default",
        init_std: float = 0.01,
        lr: float = 0.001,
        optimizer: OptimizerName = "adam",
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        scheduler: SchedulerName = "none",
    ) -> None:
        super().__init__(num_classes=num_classes)
        check_positive(lr=lr, num_features=num_features, init_std=init_std)
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

    def forward(self, x: Tensor) -> Tensor:
        features = self.hparams.num_features
        if x.ndim < 2 or x[0].numel() != features:
            raise ValueError(
                f"MNISTMLP expects (N, {features}) vectors or images (N, 1, 28, 28) of {features} values, "
                f"got {tuple(x.shape)}"
            )
        return self.net(x)


def init_linear(layer: nn.Linear, init: str, std: float, activation: str) -> None:
    """Initialise ``layer``'s weight by ``init`` (``normal``, ``xavier`` or ``kaiming``) and zero its bias."""
    if init == "normal":
        nn.init.normal_(layer.weight, std=std)
    elif init == "xavier":
        nn.init.xavier_normal_(layer.weight, gain=nn.init.calculate_gain(activation))
    else:
        nn.init.kaiming_normal_(layer.weight, nonlinearity=activation)
    nn.init.zeros_(layer.bias)


class MNISTCNN(ImageClassifier):
    """Blocks of conv 3x3, BatchNorm, ReLU, max-pool 2x2, then dropout and a linear head.

    Each block applies the pool before the ReLU: the two commute, so the function is the same and the
    ReLU runs on a quarter of the values.

    Args:
        num_classes: Classes (linked from the DataModule).
        channels: Output channels of each block; each block halves the image side (28 → 14 → 7 …).
        dropout: Dropout probability before the linear head.
        channels_last: Keep convolution weights and activations channels-last (faster on CPUs with oneDNN).
        lr: Learning rate (the peak rate with ``onecycle``).
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``adadelta``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        scheduler: ``none``, ``onecycle``, ``cosine`` or ``step``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels: list[int] = [32, 64],  # noqa: B006
        dropout: float = 0.0,
        channels_last: bool = False,
        lr: float = 0.003,
        optimizer: OptimizerName = "adam",
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        scheduler: SchedulerName = "onecycle",
    ) -> None:
        super().__init__(num_classes=num_classes)
        check_positive(lr=lr)
        if not 1 <= len(channels) <= 4 or any(c < 1 for c in channels):
            raise ValueError(f"channels must list 1 to 4 block widths >= 1 (28x28 images), got {channels}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.save_hyperparameters()
        blocks: list[nn.Module] = []
        for c_in, c_out in zip([1, *channels[:-1]], channels, strict=True):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
            blocks += [nn.MaxPool2d(2), nn.ReLU()]
        side = 28 // 2 ** len(channels)
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1] * side * side, num_classes))
        if channels_last:
            self.features.to(memory_format=torch.channels_last)

    def activation_blocks(self) -> list[nn.Module]:
        return [m for m in self.features if isinstance(m, nn.ReLU)]  # the end of every block

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, 1, 28, 28)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x))
