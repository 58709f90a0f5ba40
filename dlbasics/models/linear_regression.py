"""Linear regression (with optional polynomial features) trained by minibatch SGD.

    dlbasics fit --config configs/linear_regression.yaml
    dlbasics fit --config configs/polynomial_regression.yaml

At the end of fit the learned weight and bias are printed and logged beside the closed-form
least-squares solution on the same training data, and ``fitted_curve.png`` shows the fit: the curve over
the data for one input feature, predicted vs true ``y`` for several.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dlbasics.models.base import Experiment, OptimizerName, SchedulerName, check_input, check_positive
from dlbasics.plots import fitted_curve_figure, log_figure


class LinearRegression(Experiment):
    """``y = φ(x) w + b`` where ``φ`` raises every feature to the powers ``1..degree``.

    ``model(x)`` takes raw inputs of shape ``(N, num_features)``; the feature map lives inside the
    model, so a polynomial fit is still called on plain ``x``.

    Args:
        num_features: Input features (linked from the DataModule).
        degree: Highest power of each feature (1 = plain linear regression).
        lr: Learning rate.
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``adadelta``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        scheduler: ``none``, ``onecycle``, ``cosine`` or ``step``.
        init_std: Weights start from N(0, init_std²) and the bias from 0, as in d2l.
    """

    def __init__(
        self,
        num_features: int = 2,
        degree: int = 1,
        lr: float = 0.03,
        optimizer: OptimizerName = "sgd",
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        scheduler: SchedulerName = "none",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        check_positive(lr=lr, num_features=num_features, degree=degree)
        self.save_hyperparameters()
        self.linear = nn.Linear(num_features * degree, 1)
        nn.init.normal_(self.linear.weight, std=init_std)
        nn.init.zeros_(self.linear.bias)
        self.register_buffer("powers", torch.arange(1, degree + 1), persistent=False)

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
        phi = self.features(x).double()
        design = torch.cat([phi, torch.ones(len(phi), 1, dtype=phi.dtype, device=phi.device)], dim=1)
        solution = torch.linalg.lstsq(design.cpu(), y.double().cpu()).solution.squeeze(-1)
        return solution[:-1], solution[-1]

    def on_fit_end(self) -> None:
        datamodule = self.trainer.datamodule
        splits = getattr(datamodule, "splits", {})
        if "train" not in splits or not self.trainer.is_global_zero:
            return
        w_cf, b_cf = self.closed_form(*splits["train"][:2])
        w, b = (
            self.linear.weight.detach().double().cpu().squeeze(0),
            self.linear.bias.detach().double().cpu()[0],
        )
        fmt = lambda t: "[" + ", ".join(f"{v:.4f}" for v in t.tolist()) + "]"  # noqa: E731
        print(
            f"learned     w = {fmt(w)}, b = {b:.4f}\nclosed-form w = {fmt(w_cf)}, b = {b_cf:.4f}\n"
            f"max |learned - closed-form| = {max((w - w_cf).abs().max(), (b - b_cf).abs()):.2e}"
        )
        values = {f"fit/w{i}": v for i, v in enumerate(w.tolist())} | {"fit/b": float(b)}
        values |= {f"fit/closed_form_w{i}": v for i, v in enumerate(w_cf.tolist())} | {"fit/closed_form_b": float(b_cf)}
        for logger in self.loggers:
            logger.log_metrics(values, step=self.global_step)
            logger.save()
        log_figure(self.trainer, "fitted_curve", fitted_curve_figure(*splits["train"][:2], self))
