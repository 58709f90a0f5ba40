"""From-scratch NumPy reference implementations of the deep-learning-basics building blocks.

    python -m dlbasics.scratch   # checks all of it against finite differences and torch autograd

NumPy only: nothing imported here pulls in torch or lightning. The checker (:mod:`dlbasics.scratch.check`,
``run_checks`` / ``format_table``) imports torch lazily and is not imported here.
"""

from dlbasics.scratch.functions import (
    ACTIVATIONS,
    log_softmax,
    mse_grad,
    mse_loss,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    tanh,
    tanh_grad,
)
from dlbasics.scratch.gradient import numerical_gradient, relative_error
from dlbasics.scratch.layers import Activation, Linear
from dlbasics.scratch.net import TwoLayerNet, train
from dlbasics.scratch.optim import SGD, Adam
from dlbasics.scratch.perceptron import AND, NAND, OR, XOR, perceptron, truth_table
from dlbasics.scratch.polyfit import fit_polynomial

__all__ = [
    "ACTIVATIONS", "AND", "NAND", "OR", "SGD", "XOR", "Activation", "Adam", "Linear", "TwoLayerNet", "fit_polynomial",
    "log_softmax", "mse_grad", "mse_loss", "numerical_gradient", "perceptron", "relative_error", "relu", "relu_grad",
    "sigmoid", "sigmoid_grad", "softmax", "softmax_cross_entropy", "softmax_cross_entropy_grad", "tanh", "tanh_grad",
    "train", "truth_table",
]  # fmt: skip
