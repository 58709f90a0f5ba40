"""SGD and Adam over dicts of NumPy arrays, with state kept across steps.

    python -m dlbasics.scratch   # Adam is compared with torch.optim.Adam over 10 steps

Both optimisers update ``params`` in place (``params[k] -= ...``), so layers that hold references to
the arrays see the new values. The popular teaching version of Adam re-creates its moment estimates on
every call, which silently turns it into sign-SGD with a decaying step; here the first and second
moments and the step count ``t`` live on the optimiser and persist between :meth:`Adam.step` calls.
"""

from __future__ import annotations

import math

import numpy as np


class SGD:
    """Plain stochastic gradient descent: ``p <- p - lr * g``."""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every array in ``params`` in place using the same-named entry of ``grads``."""
        for key, g in grads.items():
            params[key] -= self.lr * g


class Adam:
    """Adam (Kingma & Ba, 2015), numerically identical to ``torch.optim.Adam`` without weight decay.

    The update follows torch's formulation of the bias correction, ``eps`` added *after* it::

        m <- beta1 m + (1 - beta1) g            v <- beta2 v + (1 - beta2) g^2
        p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args:
        beta1: Decay rate of the first-moment (mean) estimate.
        beta2: Decay rate of the second-moment (uncentred variance) estimate.

    Attributes:
        t: Number of steps taken so far.
        m, v: First- and second-moment estimates, keyed like ``params``.
    """

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Take one Adam step, updating ``params`` in place and the moments/step count on ``self``."""
        self.t += 1
        bias1 = 1.0 - self.beta1**self.t
        bias2_sqrt = math.sqrt(1.0 - self.beta2**self.t)
        step_size = self.lr / bias1
        for key, g in grads.items():
            if key not in self.m:  # lazily create state the first time a parameter is seen
                self.m[key] = np.zeros_like(params[key])
                self.v[key] = np.zeros_like(params[key])
            m, v = self.m[key], self.v[key]
            m += (1.0 - self.beta1) * (g - m)  # == beta1 m + (1 - beta1) g, as torch's lerp
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            params[key] -= step_size * (m / (np.sqrt(v) / bias2_sqrt + self.eps))
