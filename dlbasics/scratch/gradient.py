"""Central-difference numerical gradients and the relative error used to compare gradients.

    python -m dlbasics.scratch   # every analytic gradient is checked against numerical_gradient

The numerical gradient is the ground truth that needs no calculus: nudge one entry of ``x`` by
``+-eps``, evaluate the scalar function twice, and divide the difference by ``2 * eps``. The truncation
error is ``O(eps**2)``, so ``eps = 1e-5`` in float64 is accurate to roughly ten digits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central-difference gradient ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` of a scalar ``f`` at ``x``.

    ``x`` (a writable float array of any shape, 0-d included) is perturbed *in place* one entry at a time
    and restored afterwards, so ``f`` may ignore its argument and read a parameter array it shares with
    ``x`` -- the fish-book ``lambda W: net.loss(x, t)`` idiom works.
    """
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"numerical_gradient needs a float array, got dtype {x.dtype}")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        original = x[idx]  # a scalar copy
        x[idx] = original + eps
        f_plus = float(f(x))
        x[idx] = original - eps
        f_minus = float(f(x))
        x[idx] = original  # restore
        grad[idx] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-based relative error ``||a - b|| / (||a|| + ||b||)``, 0 when both are zero.

    Symmetric, in ``[0, 1]``, and meaningful for gradients of any scale.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)
