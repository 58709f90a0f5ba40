"""The fish book's two-layer network, with hand-written backprop and a minibatch training loop.

    python -m dlbasics.scratch   # TwoLayerNet's gradients are checked for sigmoid and relu

``TwoLayerNet`` is ``Linear -> activation -> Linear -> softmax cross-entropy`` with the book's initialisation
(``weight_init_std * N(0, 1)`` weights, zero biases). :func:`train` runs pure-NumPy minibatch SGD/Adam on it,
so it can be compared with the Lightning MLP on the same data.
"""

from __future__ import annotations

import numpy as np

from dlbasics.scratch import functions as F
from dlbasics.scratch.gradient import numerical_gradient
from dlbasics.scratch.layers import Activation, Linear

PARAM_NAMES = ("W1", "b1", "W2", "b2")


class TwoLayerNet:
    """Two-layer perceptron ``x -> Linear -> act -> Linear -> logits`` trained with softmax cross-entropy.

    Args:
        input_size: Number of input features (784 for flattened 28x28 images).
        output_size: Number of classes.
        activation: ``"sigmoid"`` (the book's choice), ``"relu"`` or ``"tanh"``.
        seed: Seed of the ``numpy.random.default_rng`` used for initialisation.

    Attributes:
        params: ``{"W1": (in, hidden), "b1": (hidden,), "W2": (hidden, out), "b2": (out,)}``, float64.
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_size: int = 50,
        output_size: int = 10,
        activation: str = "sigmoid",
        weight_init_std: float = 0.01,
        seed: int | None = 0,
    ) -> None:
        self.activation = Activation(activation).name  # an unknown name is refused here, not at the first forward
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": weight_init_std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }

    def _layers(self) -> list:
        p = self.params  # rebuilt per call, so re-assigned param arrays are always picked up
        return [Linear(p["W1"], p["b1"]), Activation(self.activation), Linear(p["W2"], p["b2"])]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return the logits (pre-softmax scores), shape ``(N, output_size)``."""
        out = x
        for layer in self._layers():
            out = layer.forward(out)
        return out

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        """Mean softmax cross-entropy; ``t`` holds class indices ``(N,)`` or one-hot rows ``(N, C)``."""
        return F.softmax_cross_entropy(self.predict(x), t)

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """Fraction of samples whose arg-max logit equals the label (index or one-hot)."""
        t = np.asarray(t)
        labels = t.argmax(axis=1) if t.ndim == 2 else t
        return float(np.mean(self.predict(x).argmax(axis=1) == labels))

    def loss_and_gradient(self, x: np.ndarray, t: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """One forward and one backward pass: the loss and ``{name: dL/dparam}``."""
        layers = self._layers()
        out = x
        for layer in layers:
            out = layer.forward(out)
        loss = F.softmax_cross_entropy(out, t)
        dout = F.softmax_cross_entropy_grad(out, t)
        for layer in reversed(layers):
            dout = layer.backward(dout)
        fc1, _, fc2 = layers
        return loss, {"W1": fc1.dW, "b1": fc1.db, "W2": fc2.dW, "b2": fc2.db}

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Parameter gradients of :meth:`loss` by backpropagation."""
        return self.loss_and_gradient(x, t)[1]

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray, eps: float = 1e-5) -> dict[str, np.ndarray]:
        """Parameter gradients of :meth:`loss` by central differences (slow: 2 forwards per parameter)."""
        return {k: numerical_gradient(lambda _: self.loss(x, t), self.params[k], eps) for k in PARAM_NAMES}


def train(
    net: TwoLayerNet,
    x_train: np.ndarray,
    t_train: np.ndarray,
    optimizer,
    batch_size: int = 100,
    iters: int = 1000,
    seed: int | None = 0,
) -> list[float]:
    """Minibatch training of ``net`` in place; each step draws ``batch_size`` distinct samples afresh, as the book does.

    Args:
        x_train: Inputs, shape ``(N, input_size)``, e.g. flattened images scaled to ``[0, 1]``.
        t_train: Class indices ``(N,)`` or one-hot labels ``(N, C)``.
        optimizer: Anything with ``step(params, grads)``, e.g. :class:`~dlbasics.scratch.optim.SGD`.
        batch_size: Samples per step (capped at ``N``).
        iters: Number of optimiser steps.
        seed: Seed for the minibatch sampling.

    Returns:
        The minibatch loss of every iteration (before that iteration's update), length ``iters``.
    """
    rng = np.random.default_rng(seed)
    n = len(x_train)
    batch_size = min(batch_size, n)
    history = []
    for _ in range(iters):
        idx = rng.choice(n, batch_size, replace=False)
        loss, grads = net.loss_and_gradient(x_train[idx], t_train[idx])
        optimizer.step(net.params, grads)
        history.append(loss)
    return history
