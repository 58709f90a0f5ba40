"""A sine series cut into sliding windows: the previous ``n_steps`` values → the next ``horizon`` values.

    dlbasics fit --config configs/sine_lstm.yaml

The series ``x_t = amplitude · sin(2π t / period + phase) + N(0, noise_std²)``, ``t = 0 … length-1``, is
split by time into train / val / test segments, in that order. Windows are cut inside each segment only,
so no window crosses a split boundary: no value of one split is an input or a target of another.

Windows hold raw values; the model standardizes them itself with the *training* segment's ``series_mean`` and
``series_std``, which the CLI links from here (see :mod:`dlbasics.models.sine`).

Forecasting the user's own series: ``dlbasics predict --config sine_lstm --ckpt_path best --data.predict_path
series.csv --data.predict_steps 100`` rolls the forecast out from the last ``n_steps`` values of the file (one
column, header optional): ``predictions.csv`` (``step, forecast``) and ``forecast.png``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlbasics.data.memory import InMemoryDataModule, InMemoryLoader, require_at_least
from dlbasics.use.files import read_series


class SineData(InMemoryDataModule):
    """Sliding windows over one sine series, split by time; raw values, training statistics for the model.

    Every split is ``(x, y, t)``: ``x`` of shape ``(N, n_steps, 1)`` and ``y`` of shape ``(N, horizon)``, raw
    values, ``t`` the time index of each window's first target. The predict split is ``(windows, steps)``: the
    test windows with 1 step each, or with ``predict_path`` one window, the last ``n_steps`` values of the user's
    series, with ``predict_steps``.

    Args:
        period: Period in time steps.
        phase: Phase at ``t = 0`` in radians.
        noise_std: Standard deviation of the Gaussian noise added to every value (0: a clean sine).
        length: Number of values in the whole series.
        n_steps: Past values a window feeds the model.
        horizon: Future values a window asks the model to predict.
        val_fraction: Fraction of the series (its middle part) used for validation.
        test_fraction: Fraction of the series (its end) used for testing.
        batch_size: Global batch size.
        seed: Seed of the noise and of the shuffling.
        predict_path: A CSV or text file of one column of values (header optional) to forecast the
            continuation of, from its last ``n_steps`` values, instead of predicting the test split.
        predict_steps: Values to forecast after the end of ``predict_path``'s series.
        series_mean: The statistics the model standardizes with, if known (``None``: the training part's). The
            CLI gives a checkpoint's own here when it tests or predicts with it.
        series_std: Their standard deviation, likewise.
    """

    num_features = 1

    def __init__(
        self,
        amplitude: float = 1.0,
        period: float = 50.0,
        phase: float = 0.0,
        noise_std: float = 0.0,
        length: int = 2000,
        n_steps: int = 20,
        horizon: int = 1,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        batch_size: int = 32,
        seed: int = 0,
        predict_path: str | None = None,
        predict_steps: int = 50,
        series_mean: float | None = None,
        series_std: float | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        require_at_least(1, predict_steps=predict_steps, n_steps=n_steps, horizon=horizon)
        if n_steps >= length:
            raise ValueError(f"n_steps ({n_steps}) must be smaller than the series length ({length})")
        require_at_least(0, noise_std=noise_std)
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period}")
        self.bounds = split_by_time(length, val_fraction, test_fraction, window=n_steps + horizon)
        self.predict_path, self.predict_steps = predict_path, predict_steps
        #: The user's series (raw values) once read in ``setup("predict")`` with ``predict_path``.
        self.predict_series: Tensor | None = None
        self.amplitude, self.period, self.phase, self.noise_std = amplitude, period, phase, noise_std
        self.length, self.n_steps, self.horizon = length, n_steps, horizon
        noise = torch.randn(length, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        #: The observed series (raw values, float32), noise included.
        self.series = (self.function(torch.arange(length)) + noise_std * noise).float()
        train = self.series[slice(*self.bounds["train"])].double()
        self.series_mean = train.mean().item() if series_mean is None else float(series_mean)
        self.series_std = train.std(correction=0).item() if series_std is None else float(series_std)
        if not self.series_std > 0:
            raise ValueError("the training part of the series is constant (amplitude 0?): nothing to learn")

    def function(self, t: Tensor) -> Tensor:
        """The noise-free sine at time indices ``t`` (float64)."""
        return self.amplitude * torch.sin(2 * math.pi * t.double() / self.period + self.phase)

    def windows(self, split: str) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, y, t)`` of every window that lies entirely inside ``split``'s part of the series, raw values."""
        lo, hi = self.bounds[split]
        w = self.series[lo:hi].unfold(0, self.n_steps + self.horizon, 1)
        x, y = w[:, : self.n_steps].unsqueeze(-1).contiguous(), w[:, self.n_steps :].contiguous()
        return x, y, torch.arange(lo + self.n_steps, lo + self.n_steps + len(w))

    def continuation(self, split: str = "test") -> tuple[Tensor, Tensor, int]:
        """What a forecast of ``split`` starts from and should match, in raw values.

        Returns:
            The ``n_steps`` values just before ``split`` (the end of the previous split), the values of
            ``split``, and the time index of its first value.
        """
        lo, hi = self.bounds[split]
        if lo < self.n_steps:
            raise ValueError(f"the {split} part has no {self.n_steps} values before it to start a forecast from")
        return self.series[lo - self.n_steps : lo], self.series[lo:hi], lo

    def setup(self, stage: str) -> None:
        self.splits |= {split: self.windows(split) for split in self.bounds if split not in self.splits}
        if stage == "predict" and "predict" not in self.splits:
            if self.predict_path is not None:
                series = read_series(self.predict_path)
                if len(series) < self.n_steps:
                    raise ValueError(
                        f"{self.predict_path} holds {len(series)} value{'s' * (len(series) != 1)}, fewer than the "
                        f"model's window n_steps = {self.n_steps}: give at least {self.n_steps} values"
                    )
                self.predict_series = series
                self.splits["predict"] = (series[-self.n_steps :].reshape(1, -1, 1), torch.tensor([self.predict_steps]))
            else:
                windows = self.splits["test"][0]
                self.splits["predict"] = (windows, torch.ones(len(windows), dtype=torch.long))
        self.to_device()

    def predict_dataloader(self) -> InMemoryLoader:
        """The user's window on every rank (one sample cannot be sharded; the writer keeps it once), else test."""
        if self.predict_path is not None:
            return InMemoryLoader(self.splits["predict"], batch_size=1)
        return super().predict_dataloader()

    def prediction_table(self, index: Tensor, columns: dict[str, Tensor]) -> dict[str, list] | None:
        """``predictions.csv``: the user's series forecast (``step``, ``forecast``), or the test windows'
        one-step predictions beside what followed them (``index``, ``time``, ``target``, ``prediction``)."""
        forecast = columns["forecast"].float()
        if self.predict_path is not None:
            return {"step": list(range(1, forecast.shape[1] + 1)), "forecast": forecast[0].tolist()}
        _, target, time = (t.cpu() for t in self.splits["test"])
        rows = index.long().cpu()
        return {"index": rows.tolist(), "time": time[rows].tolist(), "target": target[rows, 0].tolist(),
                "prediction": forecast[:, 0].tolist()}  # fmt: skip


def split_by_time(length: int, val_fraction: float, test_fraction: float, window: int) -> dict[str, tuple[int, int]]:
    """``(start, end)`` of the train, val and test parts of a series of ``length`` values, in that order; each
    must hold at least one ``window`` (``n_steps + horizon`` values)."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in (0, 1) "
            "and leave a training part (sum < 1)"
        )
    n_test, n_val = round(length * test_fraction), round(length * val_fraction)
    n_train = length - n_val - n_test
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, length)}
    for split, (lo, hi) in bounds.items():
        if hi - lo < window:
            raise ValueError(
                f"the {split} part holds {hi - lo} values, fewer than n_steps + horizon = {window}: "
                "increase length or the split's fraction, or lower n_steps"
            )
    return bounds
