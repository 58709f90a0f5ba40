"""Logic gates as single perceptrons, and XOR as a two-layer network of them.

    python -m dlbasics.scratch   # prints whether every gate reproduces its truth table

A perceptron fires (outputs 1) when ``w . x + b > 0``. AND, NAND and OR are linearly separable and each
needs a single perceptron (weights and biases from the fish book, chapter 2); XOR is not, and is built
by stacking them: ``XOR(a, b) = AND(NAND(a, b), OR(a, b))``.
"""

from __future__ import annotations

import numpy as np

INPUTS = ((0, 0), (1, 0), (0, 1), (1, 1))

TRUTH_TABLES = {
    "AND": (0, 0, 0, 1),
    "NAND": (1, 1, 1, 0),
    "OR": (0, 1, 1, 1),
    "XOR": (0, 1, 1, 0),
}
"""Gate name -> expected outputs for :data:`INPUTS`, in order."""


def perceptron(x: np.ndarray, w: np.ndarray, b: float) -> int:
    """Return 1 if ``w . x + b > 0`` else 0."""
    return int(np.dot(w, x) + b > 0)


def AND(x1: int, x2: int) -> int:
    """Logical AND as a perceptron."""
    return perceptron(np.array([x1, x2]), w=np.array([0.5, 0.5]), b=-0.7)


def NAND(x1: int, x2: int) -> int:
    """Logical NAND as a perceptron."""
    return perceptron(np.array([x1, x2]), w=np.array([-0.5, -0.5]), b=0.7)


def OR(x1: int, x2: int) -> int:
    """Logical OR as a perceptron."""
    return perceptron(np.array([x1, x2]), w=np.array([0.5, 0.5]), b=-0.2)


def XOR(x1: int, x2: int) -> int:
    """Logical XOR as a two-layer perceptron: ``AND(NAND(x1, x2), OR(x1, x2))``."""
    return AND(NAND(x1, x2), OR(x1, x2))


GATES = {"AND": AND, "NAND": NAND, "OR": OR, "XOR": XOR}


def truth_table(gate) -> tuple[int, ...]:
    """Outputs of a two-input ``gate`` for each of :data:`INPUTS`."""
    return tuple(gate(a, b) for a, b in INPUTS)
