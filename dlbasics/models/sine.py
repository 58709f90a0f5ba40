"""Recurrent forecasters of a sine series: an LSTM, and the GRU as the gated alternative.

    dlbasics fit --config configs/sine_lstm.yaml
    dlbasics test --config configs/sine_gru.yaml --ckpt_path <ckpt>       # + forecast.png, forecast.csv
    dlbasics predict --config configs/sine_lstm.yaml --ckpt_path <ckpt>   # + predictions.csv

Normalization: :class:`~dlbasics.data.SineData` standardizes every window with the training part's mean
and std and the CLI links both into the model (hparams ``series_mean``/``series_std``, so every checkpoint
carries them). ``forward`` maps standardized windows to standardized values; at the edges the model converts:
``train/loss`` is the standardized MSE (what is optimized, equally well conditioned for any amplitude);
``val/loss`` and ``test/loss`` are the MSE on the original scale of the series (standardized MSE · std²);
:meth:`SineRNN.forecast` and ``predict`` take and return raw values, so a checkpoint works on its own:
``SineLSTM.load_from_checkpoint(path).forecast(last_values, steps=100)``.

The end of ``test`` and of ``predict`` rolls a forecast out from the end of the validation data over the
test part: ``forecast.csv`` (step, time, truth, one_step, rollout) and ``forecast.png`` in the run directory.

bf16-mixed: CPU autocast runs ``nn.LSTM`` in bfloat16, so its state carries 8-bit mantissas through every
step (the LSTM config ends at val/loss ~3e-6 instead of ~8e-7), while ``nn.GRU`` follows its inputs' dtype
and fails ("RNN input dtype (torch.bfloat16) does not match weight dtype") on bfloat16 input outside an
autocast region. The recurrent layer and head therefore run in float32 with autocast disabled locally: the
model is tiny, so nothing is lost, and a rollout never feeds bfloat16 rounding back into itself.
"""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from torch import Tensor, nn

from dlbasics.models.base import Experiment, OptimizerName, SchedulerName, check_positive
from dlbasics.plots import log_figure, new_figure


class SineRNN(Experiment):
    """Base of :class:`SineLSTM` and :class:`SineGRU`: a recurrent layer, then a linear head on its last output.

    ``model(x)`` takes standardized windows of shape ``(batch, n_steps, num_features)`` and returns the
    next ``horizon`` standardized values, shape ``(batch, horizon * num_features)``.

    Args:
        num_features: Values per time step (linked from the DataModule).
        horizon: Values predicted per window (linked from the DataModule).
        series_mean: Training mean of the series (linked from the DataModule).
        series_std: Training standard deviation of the series (linked from the DataModule).
        hidden_size: Width of the recurrent state.
        num_layers: Stacked recurrent layers.
        dropout: Dropout between recurrent layers and before the head.
        lr: Learning rate.
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``adadelta``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        scheduler: ``none``, ``onecycle``, ``cosine`` or ``step``.
    """

    cell: type[nn.RNNBase] = nn.RNN

    def __init__(
        self,
        num_features: int = 1,
        horizon: int = 1,
        series_mean: float = 0.0,
        series_std: float = 1.0,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        lr: float = 0.01,
        optimizer: OptimizerName = "adam",
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        scheduler: SchedulerName = "onecycle",
    ) -> None:
        super().__init__()
        check_positive(
            num_features=num_features, horizon=horizon, series_std=series_std, hidden_size=hidden_size,
            num_layers=num_layers, lr=lr,
        )  # fmt: skip
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.save_hyperparameters()
        inner_dropout = dropout if num_layers > 1 else 0.0  # torch warns about dropout after the last layer
        self.rnn = self.cell(num_features, hidden_size, num_layers, batch_first=True, dropout=inner_dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon * num_features)

    def forward(self, x: Tensor) -> Tensor:
        features = self.hparams.num_features
        if x.ndim != 3 or x.shape[1] < 1 or x.shape[2] != features:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (batch, n_steps, {features}), got {tuple(x.shape)}"
            )
        with torch.autocast(device_type=x.device.type, enabled=False):  # float32: see the module docstring
            out, _ = self.rnn(x.float())
            return self.head(self.dropout(out[:, -1]))

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        loss = nn.functional.mse_loss(output.float(), target.reshape(output.shape).float())
        return loss if self.training else loss * self.hparams.series_std**2  # original scale for val/test

    def to_raw(self, z: Tensor) -> Tensor:
        """Standardized values → values on the original scale of the series."""
        return z * self.hparams.series_std + self.hparams.series_mean

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        """Raw one-step predictions; with the DataModule's targets and times when the batch has them."""
        columns = {"prediction": self.to_raw(self(batch[0]))}
        if len(batch) >= 3:
            columns = {"time": batch[2], "target": self.to_raw(batch[1])} | columns
        return columns

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
        z = (x - self.hparams.series_mean) / self.hparams.series_std
        was_training, chunks, done = self.training, [], 0
        self.eval()
        while done < steps:
            y = self(z).reshape(len(z), self.hparams.horizon, -1)
            chunks.append(y)
            z = torch.cat([z, y], dim=1)[:, -z.shape[1] :]
            done += y.shape[1]
        self.train(was_training)
        out = self.to_raw(torch.cat(chunks, dim=1)[:, :steps])
        return out.reshape(steps) if len(shape) == 1 else out.squeeze(-1) if len(shape) == 2 else out

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.write_forecast()

    def on_predict_epoch_end(self) -> None:
        self.write_forecast()

    def write_forecast(self) -> None:
        """Forecast the DataModule's test part from the end of its validation data; write CSV and PNG (rank 0)."""
        trainer, datamodule = self.trainer, self.trainer.datamodule
        if trainer.fast_dev_run or not trainer.is_global_zero or not hasattr(datamodule, "continuation"):
            return
        history, truth, start = datamodule.continuation("test")
        rollout = self.forecast(history, len(truth)).cpu()
        windows = torch.cat([history, truth]).unfold(0, len(history), 1)[:-1]  # true past of every test value
        one_step = self.forecast(windows, 1)[:, 0].cpu()
        time = np.arange(start, start + len(truth))
        table = np.column_stack([np.arange(1, len(truth) + 1), time, truth, one_step, rollout])
        path = log_figure(trainer, "forecast", self.forecast_figure(time, truth, one_step, rollout))
        np.savetxt(path.with_suffix(".csv"), table, "%.7g", ",", header="step,time,truth,one_step,rollout", comments="")
        err = (rollout - truth).abs()
        rank_zero_info(
            f"forecast: {path} and .csv; rollout max |error| vs the series {err[:100].max():.4f} over the first "
            f"{min(100, len(err))} steps, {err.max():.4f} over all {len(err)}"
        )

    def forecast_figure(self, time: np.ndarray, truth: Tensor, one_step: Tensor, rollout: Tensor) -> Figure:
        """Truth vs one-step predictions vs rollout over the test part."""
        fig = new_figure(8.0, 3.5)
        ax = fig.add_subplot()
        ax.plot(time, truth, color="black", lw=2, alpha=0.4, label="truth")
        ax.plot(time, one_step, color="tab:blue", lw=1, label="one-step prediction")
        ax.plot(time, rollout, color="tab:red", lw=1, ls="--", label="rollout from the end of val")
        ax.set(xlabel="time step", ylabel="value", title=f"{type(self).__name__}: forecast of the test part")
        ax.margins(y=0.3)
        ax.legend(loc="upper center", ncol=3, fontsize="small")
        return fig


class SineLSTM(SineRNN):
    """Long short-term memory network (``nn.LSTM``) forecasting the next values of the series."""

    cell = nn.LSTM


class SineGRU(SineRNN):
    """Gated recurrent unit network (``nn.GRU``): fewer gates than the LSTM, often as good."""

    cell = nn.GRU
