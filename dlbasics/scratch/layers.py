"""Layers with a forward pass that caches what its backward pass needs.

    python -m dlbasics.scratch   # Linear's dx, dW and db are checked against autograd

Backpropagation is the chain rule applied layer by layer: ``forward`` stores its input, and
``backward(dout)`` turns the upstream gradient ``dL/dout`` into ``dL/dinput`` (returned) and the
parameter gradients (stored as attributes).
"""

from __future__ import annotations

import numpy as np

from dlbasics.scratch.functions import ACTIVATIONS


class Linear:
    """Affine layer ``y = x @ W + b``.

    The layer keeps *references* to ``W`` and ``b``, so in-place optimiser updates of a shared params
    dict are seen without re-building the layer.

    Args:
        W: Weight matrix, shape ``(in_features, out_features)``.
        b: Bias vector, shape ``(out_features,)``.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b
        self.x: np.ndarray | None = None
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``x @ W + b`` for a batch ``x`` of shape ``(N, in_features)`` and cache ``x``."""
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Store ``dW = x.T @ dout`` and ``db = dout.sum(0)``; return ``dx = dout @ W.T``."""
        if self.x is None:
            raise RuntimeError("Linear.backward called before forward")
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


class Activation:
    """Elementwise activation layer (``"sigmoid"``, ``"tanh"`` or ``"relu"``) caching its input."""

    def __init__(self, name: str) -> None:
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}")
        self.name = name
        self.fn, self.grad_fn = ACTIVATIONS[name]
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the activation and cache the pre-activation ``x``."""
        self.x = x
        return self.fn(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Return ``dout * f'(x)``."""
        if self.x is None:
            raise RuntimeError("Activation.backward called before forward")
        return dout * self.grad_fn(self.x)
