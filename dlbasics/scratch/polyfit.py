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


def features(x: np.ndarray) -> np.ndarray:
    """Design matrix ``[x^2, x, 1]``, shape ``(N, 3)``."""
    return np.stack([x**2, x, np.ones_like(x)], axis=1)


def fit_polynomial(lr: float = 0.5, iters: int = 3_000, seed: int | None = 0) -> np.ndarray:
    """Fit ``a x^2 + b x + c`` to 100 samples by full-batch gradient descent from ``w = 0``; return ``[a, b, c]``.

    Args:
        lr: Step size (stable below ``2 / lambda_max(2/N X^T X)``, about 0.65 for ``x`` in ``[0, 1)``).
        seed: Seed for drawing ``x ~ U[0, 1)``.
    """
    X = features(np.random.default_rng(seed).random(100))
    y = X @ TRUE_COEFFS  # noise-free targets
    w = np.zeros(3)
    for _ in range(iters):
        w -= lr * (2.0 / len(y)) * (X.T @ (X @ w - y))  # dL/dw = 2/N X^T (X w - y)
    return w
