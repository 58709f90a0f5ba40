"""SineLSTM and SineGRU on SineData: accuracy of both configs, rollout, bf16-mixed, predict files, input shapes.

pytest tests/test_sine.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from helpers import CONFIGS, read_metrics, run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlbasics.data import SineData
from dlbasics.models import SineGRU, SineLSTM
from dlbasics.runs import read_csv_rows

MODELS = {"sine_lstm.yaml": SineLSTM, "sine_gru.yaml": SineGRU}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


@pytest.fixture(scope="module", params=sorted(MODELS))
def trained(request, tmp_path_factory) -> tuple[str, Path]:
    """Fit the full config once, the way users do; returns ``(config name, run dir)``."""
    root = tmp_path_factory.mktemp(request.param.removesuffix(".yaml"))
    return request.param, run_cli(root, "fit", "--config", CONFIGS / request.param)


def data_of(run: Path) -> SineData:
    """The run's DataModule, rebuilt from its saved config."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    return SineData(**config["data"]["init_args"])


def test_config_reaches_val_loss_on_original_scale(trained):
    name, run = trained
    metrics = read_metrics(run)
    assert metrics["val/loss"][-1] <= 1e-3, (name, metrics["val/loss"])
    # val/loss is the MSE of raw values: recompute it from the checkpoint on the raw series.
    model, data = MODELS[name].load_from_checkpoint(run / "checkpoints" / "last.ckpt"), data_of(run)
    lo, hi = data.bounds["val"]
    raw = data.series[lo:hi].unfold(0, data.n_steps + 1, 1)
    one_step = model.forecast(raw[:, :-1], 1)[:, 0]
    assert ((one_step - raw[:, -1]) ** 2).mean().item() == pytest.approx(metrics["val/loss"][-1], rel=1e-3)


def test_rollout_from_end_of_validation_stays_on_the_sine(trained):
    name, run = trained
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    model, data = MODELS[name].load_from_checkpoint(best), data_of(run)  # standalone: no data needed
    history, _, start = data.continuation("test")
    rollout = model.forecast(history.tolist(), 100)
    truth = data.function(torch.arange(start, start + 100)).float()
    assert rollout.shape == (100,)
    assert (rollout - truth).abs().max().item() < 0.1


def test_test_and_predict_write_forecast_files(trained, cli):
    name, run = trained
    assert (run / "forecast.png").is_file() and (run / "forecast.csv").is_file()  # fit tested its best checkpoint
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    assert {"forecast", "learning_curves"} <= set(events.Tags()["images"])
    metrics = read_metrics(run)  # every stage's loss is the MSE of raw values: comparable on one axis
    assert metrics["train/loss"][-1] < 1e-3 and metrics["test/loss"][-1] < 1e-3
    ckpt = run / "checkpoints" / "last.ckpt"
    tested = cli("test", "--config", CONFIGS / name, "--ckpt_path", ckpt)
    assert read_metrics(tested)["test/loss"][-1] <= 1e-3
    assert (tested / "forecast.png").stat().st_size > 0
    predicted = cli("predict", "--config", CONFIGS / name, "--ckpt_path", ckpt)
    rows = read_csv_rows(predicted / "forecast.csv")
    assert list(rows[0]) == ["step", "time", "truth", "one_step", "rollout"] and len(rows) == 300
    assert max(abs(float(r["one_step"]) - float(r["truth"])) for r in rows) < 0.1
    assert (predicted / "forecast.png").is_file()
    preds = read_csv_rows(predicted / "predictions.csv")
    assert list(preds[0]) == ["index", "time", "target", "prediction"] and len(preds) == 280
    assert max(abs(float(r["prediction"]) - float(r["target"])) for r in preds) < 0.1


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bf16_mixed_trains_on_cpu(cli, name):
    cli("fit", "--config", CONFIGS / name, "--trainer.precision", "bf16-mixed", "--trainer.fast_dev_run", "2")


@pytest.mark.parametrize("cls", [SineLSTM, SineGRU])
def test_forward_and_forecast_run_in_float32_under_autocast(cls):
    torch.manual_seed(0)
    model = cls(horizon=3).eval()
    x = torch.randn(4, 20, 1)
    plain = model(x), model.forecast(x, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(x.bfloat16()), model.forecast(x, 7)
    for a, b in zip(plain, mixed, strict=True):
        assert b.dtype == torch.float32 and torch.allclose(a, b, atol=1e-2)
    assert model.forecast(x[0, :, 0], 7).shape == (7,) and model.forecast(x[:, :, 0], 7).shape == (4, 7)
    assert plain[1].shape == (4, 7, 1)


def test_windows_stay_inside_their_split():
    data = SineData(length=500, n_steps=10, horizon=3, noise_std=0.1)
    data.setup("fit")
    for split, (lo, hi) in data.bounds.items():
        x, y, t = data.splits[split]
        assert x.shape[1:] == (10, 1) and y.shape[1:] == (3,)
        assert t.min() - 10 == lo and t.max() + 3 == hi  # every window inside [lo, hi), none crosses
        assert torch.equal(y, data.series[t.unsqueeze(1) + torch.arange(3)])  # raw values: the model standardizes
    model = SineLSTM(n_steps=10, horizon=3, series_mean=data.series_mean, series_std=data.series_std)
    x, _, _ = data.splits["train"]
    z = model.standardize(x)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05  # with the training part's statistics


@pytest.mark.parametrize("shape", [(4, 20), (4, 20, 2), (20,)])
def test_wrongly_shaped_input_raises(shape):
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, n_steps, 1\)"):
        SineLSTM()(torch.zeros(shape))
