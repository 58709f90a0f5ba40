"""Polynomial regression by hand-derived gradient descent.

    python -m dlbasics.scratch   # prints the recovered coefficients of y = 2x^2 + 3x + 4

With features ``X = [x^2, x, 1]`` the model is linear in its coefficients ``w``, the MSE loss is
``L(w) = mean((X w - y)^2)`` and its gradient is ``dL/dw = 2/N X^T (X w - y)``. For ``x`` in ``[0, 1)``
the three features are strongly correlated (the loss surface is a narrow valley, condition number about
500), so plain gradient descent needs a few thousand steps -- still milliseconds in NumPy.
"""

from __future__ import annotations

import numpy as np

TRUE_COEFFS = np.array([2.0, 3.0, 4.0])
"""Coefficients of ``x^2``, ``x`` and ``1`` in the target polynomial."""


def make_data(n: int = 100, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``x ~ U[0, 1)`` and noise-free ``y = 2x^2 + 3x + 4``; return ``(x, y)``."""
    x = np.random.default_rng(seed).random(n)
    return x, features(x) @ TRUE_COEFFS


def features(x: np.ndarray) -> np.ndarray:
    """Design matrix ``[x^2, x, 1]``, shape ``(N, 3)``."""
    return np.stack([x**2, x, np.ones_like(x)], axis=1)


def fit_polynomial(
    x: np.ndarray | None = None, y: np.ndarray | None = None, lr: float = 0.5, iters: int = 3_000, seed: int | None = 0
) -> np.ndarray:
    """Fit ``y ~ a x^2 + b x + c`` by full-batch gradient descent from ``w = 0``; return ``[a, b, c]``.

    Args:
        x: Inputs; if ``None``, 100 samples from :func:`make_data` are used.
        y: Targets (required when ``x`` is given).
        lr: Step size (stable below ``2 / lambda_max(2/N X^T X)``, about 0.65 for ``x`` in ``[0, 1)``).
        seed: Seed for :func:`make_data` when ``x`` is ``None``.
    """
    if x is None:
        x, y = make_data(seed=seed)
    elif y is None:
        raise ValueError("fit_polynomial needs y when x is given")
    X = features(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float)
    w = np.zeros(3)
    scale = 2.0 / len(y)
    for _ in range(iters):
        w -= lr * scale * (X.T @ (X @ w - y))
    return w
