"""Linear regression (with optional polynomial features) trained by minibatch SGD.

    dlbasics fit --config configs/linear_regression.yaml
    dlbasics fit --config configs/polynomial_regression.yaml

The model exposes :meth:`LinearRegression.learned` and :meth:`LinearRegression.closed_form`; at the end of fit
the :class:`~dlbasics.pictures.FittedCurve` callback prints and logs both and draws ``fitted_curve.png``.
"""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from dlbasics.models.base import Experiment, check_input, check_positive


class LinearRegression(Experiment):
    """``y = φ(x) w + b`` where ``φ`` raises every feature to the powers ``1..degree``.

    ``model(x)`` takes raw inputs of shape ``(N, num_features)``; the feature map lives inside the
    model, so a polynomial fit is still called on plain ``x``.

    Args:
        num_features: Input features (linked from the DataModule).
        degree: Highest power of each feature (1 = plain linear regression).
        init_std: Weights start from N(0, init_std²) and the bias from 0, as in d2l.
        optimizer: See :class:`~dlbasics.models.base.Experiment` (d2l: SGD, lr 0.03).
    """

    def __init__(
        self,
        num_features: int = 2,
        degree: int = 1,
        init_std: float = 0.01,
        optimizer: OptimizerCallable = torch.optim.SGD,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler)
        check_positive(num_features=num_features, degree=degree)
        self.save_hyperparameters()
        self.linear = nn.Linear(num_features * degree, 1)
        nn.init.normal_(self.linear.weight, std=init_std)
        nn.init.zeros_(self.linear.bias)
        self.register_buffer("powers", torch.arange(1, degree + 1), persistent=False)
        self.example_input_array = torch.zeros(1, num_features)  # the model summary's sizes and FLOPs

    def features(self, x: Tensor) -> Tensor:
        """``(N, F)`` → ``(N, F * degree)``: each feature's powers ``1..degree`` side by side."""
        return (x.unsqueeze(-1) ** self.powers).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.hparams.num_features)
        return self.linear(self.features(x))

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.mse_loss(output, target)

    @torch.no_grad()
    def closed_form(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Least-squares ``(w, b)`` of this model's features on ``(x, y)``, in float64."""
        phi = self.features(x).double().cpu()
        design = torch.cat([phi, torch.ones(len(phi), 1, dtype=phi.dtype)], dim=1)  # the last column: the bias
        solution = torch.linalg.lstsq(design, y.double().cpu()).solution.squeeze(-1)
        return solution[:-1], solution[-1]

    @torch.no_grad()
    def learned(self) -> tuple[Tensor, Tensor]:
        """The learned ``(w, b)`` in float64 on the CPU."""
        return self.linear.weight.detach().double().cpu().squeeze(0), self.linear.bias.detach().double().cpu()[0]
