"""What the conventional peers share: pytorch/examples' MNIST CNN and its torchvision input pipeline.

    python benchmarks/run.py            # runs the peers; they are not meant to be imported elsewhere

Faithful to pytorch/examples/mnist/main.py: per-sample ``ToTensor`` + ``Normalize``, ``DataLoader``
(batch 64, shuffle), the classic 2-conv net with dropout, Adadelta lr 1.0 with StepLR(gamma 0.7), on
Fashion-MNIST read by torchvision's ``FashionMNIST`` class.
"""

from __future__ import annotations

import json
import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms

START = float(os.environ.get("BENCH_SPAWN_TIME", time.time()))  # the parent's clock when it started us


class Net(nn.Module):
    """pytorch/examples' MNIST network."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def loaders(root: str) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    """Train (batch 64, shuffled) and test (batch 1000) loaders with per-sample transforms."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
    train = datasets.FashionMNIST(root, train=True, download=False, transform=transform)
    test = datasets.FashionMNIST(root, train=False, download=False, transform=transform)
    return (
        torch.utils.data.DataLoader(train, batch_size=64, shuffle=True),
        torch.utils.data.DataLoader(test, batch_size=1000),
    )


def evaluate(model: nn.Module, loader: torch.utils.data.DataLoader) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    model.train()
    return correct / len(loader.dataset)


def report(**fields: object) -> None:
    """One JSON line for the benchmark driver; times are seconds since the parent spawned us."""
    print(json.dumps({"since_start": time.time() - START, **fields}), flush=True)
