"""The four recipes of ``peer_same_recipe.py`` in plain PyTorch: the configs' data, nets, optimizers, schedules.

    python benchmarks/peer_same_recipe.py --experiment rule_classifier   # uses these; nothing else imports them

Each recipe copies its ``configs/<name>.yaml`` and the dlbasics code behind it number for number, so that the
same seed gives the same weights and the same metrics: the data come from the same generators and seeds
(``dlbasics/data/synthetic.py``, ``sine.py``, ``mnist.py``), the modules are created in the same order after
``seed_everything(42)`` (the CLI seeds before it builds the model), and schedules whose length is the run's get
the run's step count and are stepped after every optimizer step (``dlbasics/models/schedules.py``). Plain torch
only: no Lightning, no dlbasics import.
"""

from __future__ import annotations

import gzip
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

FMNIST = Path("/usr/share/datasets/fashion-mnist")
CACHE = Path(__file__).resolve().parent / ".data" / "fashion-mnist-raw"  # decompressed once, as dlbasics does


@dataclass
class Recipe:
    """What a config fixes: data ``{split: (x, y)}``, net, loss, optimizer, schedule, epochs, monitor."""

    splits: dict[str, tuple[Tensor, ...]]
    model: nn.Module
    loss: Callable[[Tensor, Tensor], Tensor]
    optimizer: Callable[[list], torch.optim.Optimizer]
    epochs: int
    batch_size: int
    monitor: tuple[str, str]  # (metric, "min" | "max")
    eval_batch_size: int | None = None
    schedule: Callable[[torch.optim.Optimizer, int], object] | None = None  # (optimizer, run's steps) -> scheduler
    loss_scale: float = 1.0  # logged loss = objective * loss_scale (sine: MSE on the series' scale)
    task: str = "regression"  # "binary" | "multiclass" | "regression"
    prepare: Callable[[Tensor], Tensor] = field(default=lambda x: x)  # on every batch (uint8 pixels -> float)
    bf16: bool = False


def seed_everything(seed: int = 42) -> None:
    """What Lightning's ``seed_everything`` does on a CPU: Python's, numpy's and torch's generators."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (what Lightning seeds)
    torch.manual_seed(seed)


def one_thread() -> None:
    """``num_threads: 1`` of the tiny configs, set (as the CLI does) before any data or weights exist."""
    torch.set_num_threads(1)


def synthetic(seed: int, sizes: dict[str, int], sample: Callable) -> dict[str, tuple[Tensor, Tensor]]:
    """Every split from its own generator, seeded ``seed * 1000 + (0, 1, 2)`` (``SyntheticData.generator``)."""
    return {s: sample(n, torch.Generator().manual_seed(seed * 1000 + i)) for i, (s, n) in enumerate(sizes.items())}


class Linear(nn.Module):
    """dlbasics' ``LinearRegression`` of degree 1: N(0, 0.01²) weights, zero bias, features ``x ** 1``."""

    def __init__(self, num_features: int = 2, init_std: float = 0.01) -> None:
        super().__init__()
        self.linear = nn.Linear(num_features, 1)
        nn.init.normal_(self.linear.weight, std=init_std)
        nn.init.zeros_(self.linear.bias)
        self.register_buffer("powers", torch.arange(1, 2), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear((x.unsqueeze(-1) ** self.powers).flatten(1))


def linear_regression() -> Recipe:
    one_thread()
    w, b = torch.tensor([2.0, -3.4]), 4.2

    def sample(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.randn(n, 2, generator=g)
        return x, (x @ w + b + 0.01 * torch.randn(n, generator=g)).unsqueeze(-1)

    seed_everything()
    return Recipe(
        splits=synthetic(0, {"train": 1000, "val": 200, "test": 200}, sample),
        model=Linear(),
        loss=nn.functional.mse_loss,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.03),
        epochs=3,
        batch_size=10,
        monitor=("val/loss", "min"),
    )


class Logistic(nn.Module):
    """dlbasics' ``RuleClassifier``: one logit per row."""

    def __init__(self, num_features: int = 5) -> None:
        super().__init__()
        self.linear = nn.Linear(num_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).squeeze(-1)


def rule_classifier() -> Recipe:
    one_thread()

    def sample(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.rand(n, 5, generator=g)
        return x, (x[:, 0] > x[:, -1]).long()

    seed_everything()
    return Recipe(
        splits=synthetic(0, {"train": 4000, "val": 1000, "test": 1000}, sample),
        model=Logistic(),
        loss=lambda out, y: nn.functional.binary_cross_entropy_with_logits(out, y.float()),
        optimizer=lambda p: torch.optim.Adam(p, lr=1.0),
        schedule=lambda opt, steps: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps),
        epochs=10,
        batch_size=32,
        monitor=("val/acc", "max"),
        task="binary",
    )


class LSTM(nn.Module):
    """dlbasics' ``SineLSTM``: an LSTM, then a linear head on its last output (in float32)."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.LSTM(1, hidden, 1, batch_first=True, dropout=0.0)
        self.dropout = nn.Dropout(0.0)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x.float())
        return self.head(self.dropout(out[:, -1]))


def sine_lstm() -> Recipe:
    one_thread()
    length, n_steps = 2000, 20
    noise = torch.randn(length, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    series = (torch.sin(2 * math.pi * torch.arange(length).double() / 50.0 + 0.0) + 0.0 * noise).float()
    n_test = n_val = round(length * 0.15)
    n_train = length - n_val - n_test
    train = series[:n_train].double()
    mean, std = train.mean().item(), train.std(correction=0).item()
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, length)}
    splits = {}
    for split, (lo, hi) in bounds.items():
        w = ((series[lo:hi] - mean) / std).unfold(0, n_steps + 1, 1)
        splits[split] = (w[:, :n_steps].unsqueeze(-1).contiguous(), w[:, n_steps:].contiguous())
    seed_everything()
    return Recipe(
        splits=splits,
        model=LSTM(),
        loss=lambda out, y: nn.functional.mse_loss(out.float(), y.reshape(out.shape).float()),
        optimizer=lambda p: torch.optim.Adam(p, lr=0.01),
        schedule=lambda opt, steps: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=steps),
        epochs=10,
        batch_size=32,
        monitor=("val/loss", "min"),
        loss_scale=std**2,
    )


class CNN(nn.Module):
    """dlbasics' ``MNISTCNN`` of the sprint: conv-pool-BN-ReLU blocks of 16 and 48, hidden 128, channels-last."""

    def __init__(self, mean: float, std: float, channels: tuple[int, ...] = (16, 48), hidden: int = 128) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor(mean), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std), persistent=False)
        blocks: list[nn.Module] = []
        for c_in, c_out in zip([1, *channels[:-1]], channels, strict=True):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2)]
            blocks += [nn.BatchNorm2d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*blocks)
        width = channels[-1] * (28 // 2 ** len(channels)) ** 2
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Dropout(0.0), nn.Linear(hidden, 10),
        )  # fmt: skip
        self.features.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        x = ((x - self.pixel_mean) / self.pixel_std).contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x))


def read_idx(stem: str) -> Tensor:
    """An IDX file of ``FMNIST`` as a uint8 tensor (decompressed into ``CACHE`` the first time)."""
    raw = CACHE / stem
    if not raw.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with gzip.open(FMNIST / f"{stem}.gz") as src, open(raw.with_suffix(".tmp"), "wb") as dst:
            shutil.copyfileobj(src, dst)
        raw.with_suffix(".tmp").replace(raw)
    data = bytearray(raw.read_bytes())
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(data, dtype=torch.uint8, offset=4 + 4 * ndim).view(dims)


def fashion_mnist_cnn_sprint() -> Recipe:
    x, y = read_idx("train-images-idx3-ubyte"), read_idx("train-labels-idx1-ubyte").long()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))  # the val carve-out, data seed 0
    val, train = order[:5000].sort().values, order[5000:].sort().values
    test = (read_idx("t10k-images-idx3-ubyte"), read_idx("t10k-labels-idx1-ubyte").long())
    counts = torch.bincount(x[train].flatten(), minlength=256).double()  # pixel statistics of the training split
    values = torch.arange(256, dtype=torch.float64) / 255.0
    mean = (counts * values).sum() / counts.sum()
    std = ((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt()
    seed_everything()
    return Recipe(
        splits={"train": (x[train], y[train]), "val": (x[val], y[val]), "test": test},
        model=CNN(float(mean), float(std)),
        loss=nn.functional.cross_entropy,
        optimizer=lambda p: torch.optim.Adam(p, lr=0.01, fused=True),
        schedule=lambda opt, steps: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=steps),
        epochs=1,
        batch_size=256,
        eval_batch_size=1000,
        monitor=("val/acc", "max"),
        task="multiclass",
        prepare=lambda images: images.unsqueeze(1).float().mul_(1.0 / 255.0),
        bf16=True,
    )


RECIPES = {f.__name__: f for f in (linear_regression, rule_classifier, sine_lstm, fashion_mnist_cnn_sprint)}


def classification(task: str, logits: Tensor, target: Tensor) -> dict[str, float]:
    """acc (micro), f1, precision, recall (binary, or macro over classes) of an epoch's outputs, as torchmetrics."""
    if task == "binary":
        pred, num_classes = (logits.sigmoid() > 0.5).long(), 2
    else:
        pred, num_classes = logits.argmax(dim=1), logits.shape[1]
    confusion = torch.bincount(target * num_classes + pred, minlength=num_classes**2).view(num_classes, num_classes)
    tp = confusion.diag().float()
    fp, fn = confusion.sum(0).float() - tp, confusion.sum(1).float() - tp
    if task == "binary":  # the positive class only
        tp, fp, fn = tp[1:], fp[1:], fn[1:]
    ratio = lambda a, b: torch.where(b > 0, a / b.clamp(min=1), torch.zeros_like(a))  # noqa: E731
    scores = {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn)}
    weights = ((tp + fp + fn) > 0).float() if task != "binary" else torch.ones(1)  # macro: unseen classes left out
    out = {k: float((weights * v / weights.sum()).sum()) for k, v in scores.items()}
    return {"acc": float(confusion.diag().sum() / len(target))} | out
