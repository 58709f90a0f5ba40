"""Recurrent forecasters of a sine series: an LSTM, the GRU as the gated alternative, and a plain tanh RNN.

    dlbasics fit --config configs/sine_lstm.yaml
    dlbasics test --config configs/sine_gru.yaml --ckpt_path <ckpt>       # + forecast.png, forecast.csv
    dlbasics predict --config configs/sine_lstm.yaml --ckpt_path <ckpt>   # + predictions.csv
    dlbasics predict --config sine_lstm --ckpt_path best --data.predict_path series.csv   # forecast it

Normalization, as for the MNIST models: the CLI links the training part's mean and std from
:class:`~dlbasics.data.SineData` into the model (hparams ``series_mean``/``series_std``, so every checkpoint carries
them); ``forward`` standardizes raw windows with them and returns raw values. The optimized objective is the
standardized MSE (equally well conditioned for any amplitude); every stage logs ``{stage}/loss`` as the MSE on the
original scale of the series, so the learning curves compare like with like. A checkpoint works on its own:
``SineLSTM.load_from_checkpoint(path).forecast(last_values, steps=100)``.

bf16-mixed: CPU autocast runs ``nn.LSTM`` in bfloat16, so its state carries 8-bit mantissas through every
step (the LSTM config ends at val/loss ~3e-6 instead of ~8e-7), while ``nn.GRU`` follows its inputs' dtype
and fails ("RNN input dtype (torch.bfloat16) does not match weight dtype") on bfloat16 input outside an
autocast region. The recurrent layer and head therefore run in float32 with autocast disabled locally: the
model is tiny, so nothing is lost, and a rollout never feeds bfloat16 rounding back into itself.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from dlbasics.models.base import Experiment, check_positive


class SineRNN(Experiment):
    """Base of :class:`SineLSTM`, :class:`SineGRU` and :class:`SinePlainRNN`: a recurrent layer, then a linear head on
    its last output.

    ``model(x)`` takes raw windows of shape ``(batch, n_steps, num_features)`` and returns the next ``horizon`` raw
    values, shape ``(batch, horizon * num_features)``; :meth:`forecast` rolls a window out any number of values.

    Args:
        num_features: Values per time step (linked from the DataModule).
        n_steps: Past values a window holds (linked from the DataModule); the length of :meth:`example_input`
            and of an exported model's input. ``forward`` takes windows of any length.
        horizon: Values predicted per window (linked from the DataModule).
        series_mean: Training mean of the series (linked from the DataModule).
        series_std: Training standard deviation of the series (linked from the DataModule).
        hidden_size: Width of the recurrent state.
        num_layers: Stacked recurrent layers.
        dropout: Dropout between recurrent layers and before the head.
    """

    @property
    @abstractmethod
    def cell(self) -> type[nn.RNNBase]:
        """The recurrent layer class (``nn.LSTM``, ``nn.GRU``)."""

    def __init__(
        self,
        num_features: int = 1,
        n_steps: int = 20,
        horizon: int = 1,
        series_mean: float = 0.0,
        series_std: float = 1.0,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler)
        check_positive(
            num_features=num_features, n_steps=n_steps, horizon=horizon, series_std=series_std,
            hidden_size=hidden_size, num_layers=num_layers,
        )  # fmt: skip
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.save_hyperparameters()
        inner_dropout = dropout if num_layers > 1 else 0.0  # torch warns about dropout after the last layer
        self.rnn = self.cell(num_features, hidden_size, num_layers, batch_first=True, dropout=inner_dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon * num_features)
        self.register_buffer("series_mean", torch.tensor(float(series_mean)), persistent=False)
        self.register_buffer("series_std", torch.tensor(float(series_std)), persistent=False)
        self.example_input_array = torch.zeros(1, n_steps, num_features)  # the model summary's sizes and FLOPs

    def forward(self, x: Tensor) -> Tensor:
        features = self.hparams.num_features
        if x.ndim != 3 or x.shape[1] < 1 or x.shape[2] != features:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (batch, n_steps, {features}), got {tuple(x.shape)}"
            )
        with torch.autocast(device_type=x.device.type, enabled=False):  # float32: see the module docstring
            out, _ = self.rnn(self.standardize(x.float()))
            return self.head(self.dropout(out[:, -1])) * self.series_std + self.series_mean

    def standardize(self, values: Tensor) -> Tensor:
        """Raw values → standardized with the training part's mean and std."""
        return (values - self.series_mean) / self.series_std

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        target = self.standardize(target.float()).view_as(output)
        return nn.functional.mse_loss(self.standardize(output.float()), target)

    def reported_loss(self, loss: Tensor) -> Tensor:
        """Standardized MSE → MSE on the original scale of the series (every stage logs this)."""
        return loss * self.series_std**2

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """``(windows, steps)`` → ``{"forecast": (N, steps)}``: each raw window rolled out ``steps`` values."""
        windows, steps = batch
        return {"forecast": self.forecast(windows, int(steps.max())).flatten(1)}

    @torch.no_grad()
    def forecast(self, history: Tensor | np.ndarray | list[float], steps: int) -> Tensor:
        """Autoregressive forecast: predict, append the prediction to the window, repeat.

        With ``horizon > 1`` every step appends all ``horizon`` predicted values. The window keeps the
        length of ``history``.

        Args:
            history: Raw past values, oldest first: ``(n_steps,)`` or ``(batch, n_steps)`` for one feature,
                or ``(batch, n_steps, num_features)``.
            steps: Future values to predict (>= 1).

        Returns:
            Raw forecasts, shape ``(steps,)``, ``(batch, steps)`` or ``(batch, steps, num_features)``.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        x = torch.as_tensor(history, dtype=torch.float32, device=self.device)
        shape = x.shape
        if x.ndim in (1, 2) and self.hparams.num_features == 1:
            x = x.reshape(-1 if x.ndim == 2 else 1, x.shape[-1], 1)
        was_training, chunks, done = self.training, [], 0
        self.eval()
        while done < steps:
            y = self(x).reshape(len(x), self.hparams.horizon, -1)
            chunks.append(y)
            x = torch.cat([x, y], dim=1)[:, -x.shape[1] :]
            done += y.shape[1]
        self.train(was_training)
        out = torch.cat(chunks, dim=1)[:, :steps]
        return out.reshape(*shape[:-1], steps) if len(shape) < 3 else out  # in the layout of ``history``

    def inference(self, x: Tensor) -> Tensor:
        """Raw windows ``(N, n_steps)`` (``(N, n_steps, num_features)``) → the next ``horizon`` raw values,
        ``(N, horizon * num_features)``."""
        return self(x.unsqueeze(-1) if x.ndim == 2 else x)

    def example_input(self, batch: int = 1) -> Tensor:
        """Raw windows ``(batch, n_steps)`` (one feature) or ``(batch, n_steps, num_features)``, float32: normal
        values on the series' scale (mean ± std), from a fixed seed of their own."""
        hp = self.hparams
        shape = (batch, hp.n_steps) if hp.num_features == 1 else (batch, hp.n_steps, hp.num_features)
        z = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        return z * hp.series_std + hp.series_mean


class SineLSTM(SineRNN):
    """Long short-term memory network (``nn.LSTM``) forecasting the next values of the series."""

    cell = nn.LSTM


class SineGRU(SineRNN):
    """Gated recurrent unit network (``nn.GRU``): fewer gates than the LSTM, often as good."""

    cell = nn.GRU


class SinePlainRNN(SineRNN):
    """A plain (Elman) RNN, ``nn.RNN`` with tanh: no gates; the baseline LSTM and GRU improve on (study recurrent)."""

    cell = nn.RNN
