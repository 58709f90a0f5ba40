"""Synthetic data: linear and polynomial regression, and the x[0] > x[4] rule.

    dlbasics fit --config configs/linear_regression.yaml

Every split is drawn from its own generator seeded by ``(seed, split)``, so the data are the same on
every run and every DDP rank, and the test split is fresh data the model never trained on.

``dlbasics predict --data.predict_path features.csv`` predicts the user's own rows (``num_features`` numbers a
row, header optional; :func:`~dlbasics.use.files.read_features`) instead of the test split.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor

from dlbasics.data.memory import InMemoryDataModule, require_at_least
from dlbasics.use.files import read_features


class SyntheticData(InMemoryDataModule):
    """Base for generated data: subclasses implement :meth:`sample` and define ``num_features``.

    Args:
        batch_size: Global batch size.
        seed: Seed of the generated data and of the shuffling.
        predict_path: Optional CSV of input rows (``num_features`` numbers a row, optional header) to predict
            instead of the test split.
    """

    num_features: int

    def __init__(
        self,
        num_train: int = 1000,
        num_val: int = 200,
        num_test: int = 200,
        batch_size: int = 10,
        seed: int = 0,
        predict_path: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        self.predict_path = predict_path
        require_at_least(1, num_train=num_train, num_val=num_val, num_test=num_test)
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw ``n`` samples ``(x, y)``."""

    def setup(self, stage: str) -> None:
        if stage == "predict" and self.predict_path is not None and "predict" not in self.splits:
            self.splits["predict"] = (read_features(self.predict_path, self.num_features),)
        for offset, (split, n) in enumerate(self.sizes.items()):  # train 0, val 1, test 2: a generator per split
            if split not in self.splits:
                self.splits[split] = self.sample(n, torch.Generator().manual_seed(self.seed * 1000 + offset))
        self.to_device()


class LinearData(SyntheticData):
    """d2l's synthetic regression data: ``y = X w + b + N(0, noise_std²)``, ``X ~ N(0, 1)``.

    Args:
        weights: True weight vector ``w``; its length is the number of features.
        bias: True bias ``b``.
        noise_std: Standard deviation of the additive Gaussian noise.
    """

    def __init__(
        self,
        weights: list[float] = [2.0, -3.4],  # noqa: B006 (jsonargparse needs a literal default)
        bias: float = 4.2,
        noise_std: float = 0.01,
        num_train: int = 1000,
        num_val: int = 200,
        num_test: int = 200,
        batch_size: int = 10,
        seed: int = 0,
        predict_path: str | None = None,
    ) -> None:
        super().__init__(num_train, num_val, num_test, batch_size, seed, predict_path)
        if not weights:
            raise ValueError("weights must hold at least one value")
        require_at_least(0, noise_std=noise_std)
        self.true_w = torch.tensor(weights, dtype=torch.float32)
        self.true_b = float(bias)
        self.noise_std = noise_std
        self.num_features = len(weights)

    def function(self, x: Tensor) -> Tensor:
        """The noise-free target ``X w + b`` for inputs of shape ``(N, num_features)``."""
        return x @ self.true_w.to(x.device) + self.true_b

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.randn(n, self.num_features, generator=generator)
        y = self.function(x) + self.noise_std * torch.randn(n, generator=generator)
        return x, y.unsqueeze(-1)


class PolynomialData(SyntheticData):
    """One-feature polynomial data ``y = Σ_k c_k x^k + noise`` with ``x ~ U[0, 1)``.

    Args:
        coefficients: ``c_0, c_1, …`` in ascending powers; the default is the seed task 2x² + 3x + 4.
        noise_std: Standard deviation of the additive Gaussian noise.
    """

    num_features = 1

    def __init__(
        self,
        coefficients: list[float] = [4.0, 3.0, 2.0],  # noqa: B006
        noise_std: float = 0.01,
        num_train: int = 1000,
        num_val: int = 200,
        num_test: int = 200,
        batch_size: int = 10,
        seed: int = 0,
        predict_path: str | None = None,
    ) -> None:
        super().__init__(num_train, num_val, num_test, batch_size, seed, predict_path)
        if not coefficients:
            raise ValueError("coefficients must hold at least one value")
        require_at_least(0, noise_std=noise_std)
        self.coefficients = list(coefficients)
        self.noise_std = noise_std

    def function(self, x: Tensor) -> Tensor:
        """The noise-free polynomial at ``x`` of shape ``(N, 1)``."""
        return sum(c * x**k for k, c in enumerate(self.coefficients))

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.rand(n, 1, generator=generator)
        return x, self.function(x) + self.noise_std * torch.randn(n, 1, generator=generator)


class RuleData(SyntheticData):
    """Vectors uniform on [0, 1)^d, labelled 1 when ``x[0] > x[d-1]`` (the seed's x[0] > x[4] rule).

    Args:
        num_features: Vector length ``d`` (5 in the seed task).
        predict_path: Optional CSV of vectors (``d`` numbers a row, optional header) to predict.
    """

    num_classes = 2

    def __init__(
        self,
        num_features: int = 5,
        predict_path: str | None = None,
        num_train: int = 4000,
        num_val: int = 1000,
        num_test: int = 1000,
        batch_size: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__(num_train, num_val, num_test, batch_size, seed, predict_path)
        require_at_least(2, num_features=num_features)
        self.num_features = num_features

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.rand(n, self.num_features, generator=generator)
        return x, (x[:, 0] > x[:, -1]).long()
