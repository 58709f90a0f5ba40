"""Activations, softmax and losses with their hand-derived gradients, in NumPy only.

    python -m dlbasics.scratch   # checks every gradient here against finite differences and autograd

Elementwise activations come in pairs ``f(x)`` / ``f_grad(x)`` where ``f_grad`` is the derivative with
respect to the *input* ``x``. Softmax and log-softmax subtract the row maximum first, so logits such as
``[1000, 1001]`` give finite results. All batched functions work along the last axis.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""
    x = np.asarray(x, dtype=float)
    e = np.exp(-np.abs(x))  # in (0, 1], never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of :func:`sigmoid` at ``x``: ``s(x) * (1 - s(x))``."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(x)


def tanh_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of :func:`tanh` at ``x``: ``1 - tanh(x)**2``."""
    return 1.0 - np.tanh(x) ** 2


def relu(x: np.ndarray) -> np.ndarray:
    """Rectified linear unit ``max(x, 0)``."""
    return np.maximum(x, 0.0)


def relu_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of :func:`relu`: 1 where ``x > 0``, else 0 (0 at the kink, as torch does)."""
    return (np.asarray(x) > 0).astype(float)


ACTIVATIONS = {"sigmoid": (sigmoid, sigmoid_grad), "tanh": (tanh, tanh_grad), "relu": (relu, relu_grad)}
"""Name -> ``(function, derivative)`` for the elementwise activations."""


def softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable softmax along the last axis (max-shifted before ``exp``)."""
    x = np.asarray(x, dtype=float)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable ``log(softmax(x))`` along the last axis (log-sum-exp trick)."""
    x = np.asarray(x, dtype=float)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _as_batch(logits: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(logits (N, C), one-hot targets (N, C))`` from index or one-hot labels."""
    logits = np.asarray(logits, dtype=float)
    t = np.asarray(t)
    if logits.ndim == 1:  # a single sample
        logits, t = logits[None, :], t[None, ...]
    if t.shape == logits.shape:
        return logits, t.astype(float)
    if t.shape != logits.shape[:1]:
        raise ValueError(f"labels of shape {t.shape} fit neither logits {logits.shape} nor its batch axis")
    return logits, np.eye(logits.shape[1])[t.astype(int)]


def softmax_cross_entropy(logits: np.ndarray, t: np.ndarray) -> float:
    """Mean cross-entropy of ``softmax(logits)`` against labels, like ``torch.nn.functional.cross_entropy``.

    Args:
        logits: Unnormalised scores, shape ``(N, C)`` or ``(C,)``.
        t: Integer class indices of shape ``(N,)`` (or a scalar for a single sample), or one-hot /
            probability targets with the same shape as ``logits``.

    Returns:
        The batch-mean loss; finite even for extreme logits because it is computed via log-softmax.
    """
    logits, onehot = _as_batch(logits, t)
    return float(-(onehot * log_softmax(logits)).sum() / logits.shape[0])


def softmax_cross_entropy_grad(logits: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Gradient of :func:`softmax_cross_entropy` w.r.t. ``logits``: ``(softmax - t) / N``.

    For probability targets that do not sum to one the exact gradient is ``(softmax * t.sum(-1) - t) / N``,
    which is what is returned (it reduces to the usual form).
    """
    shape = np.shape(logits)
    logits, onehot = _as_batch(logits, t)
    grad = (softmax(logits) * onehot.sum(axis=-1, keepdims=True) - onehot) / logits.shape[0]
    return grad.reshape(shape)


def mse_loss(y: np.ndarray, t: np.ndarray) -> float:
    """Mean squared error over all elements, like ``torch.nn.functional.mse_loss``.

    The fish book uses ``0.5 * sum``; the mean keeps the loss scale independent of batch size.
    """
    d = np.asarray(y, dtype=float) - np.asarray(t, dtype=float)
    return float(np.mean(d**2))


def mse_grad(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Gradient of :func:`mse_loss` w.r.t. ``y``: ``2 (y - t) / y.size``."""
    d = np.asarray(y, dtype=float) - np.asarray(t, dtype=float)
    return 2.0 * d / d.size
