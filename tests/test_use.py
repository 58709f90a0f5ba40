"""Using a trained model needs only its checkpoint: `dlbasics predict` of your files and `dlbasics export` with the
data root pointing at an empty folder (nothing read, nothing downloaded), and the Python API giving the same table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import CONFIGS, fixture_data, read_metrics
from PIL import Image

from dlbasics.runs import read_csv_rows
from dlbasics.use import load, predict

pytest.importorskip("onnxruntime")


@pytest.fixture
def digits_ckpt(cli, idx):
    """A small CNN trained on the tiny generated digits (bars at a row given by the label)."""
    run = cli("fit", "--config", CONFIGS / "mnist_cnn.yaml", *fixture_data(idx), "--model.init_args.channels", "[4]",
              "--trainer.max_epochs", "3", "--data.batch_size", "30", "--trainer.precision", "32-true")  # fmt: skip
    assert read_metrics(run)["test/acc"][-1] > 0.5  # it learned the bars; chance is 0.1
    return run / "checkpoints" / "last.ckpt"


def bar_images(folder, labels):
    """PNG "photos" of the generated digits' pattern: a bright bar at row 4 + 2 * label, on black."""
    folder.mkdir()
    for i, label in enumerate(labels):
        image = np.zeros((28, 28), np.uint8)
        image[4 + 2 * label, 4:24] = 255
        Image.fromarray(image).resize((84, 84), Image.Resampling.NEAREST).save(folder / f"{i:02d}-{label}.png")


def test_predict_and_export_need_only_the_checkpoint(cli, digits_ckpt, tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr("torchvision.datasets.MNIST.download", no_download)
    empty = tmp_path / "empty"
    empty.mkdir()
    bar_images(tmp_path / "photos", [1, 3, 5, 7])
    common = ["--config", CONFIGS / "mnist_cnn.yaml", "--model.init_args.channels", "[4]",  # download: true
              "--ckpt_path", digits_ckpt, "--data.root", empty, "--trainer.precision", "32-true"]  # fmt: skip
    run = cli("predict", *common, "--data.predict_path", tmp_path / "photos")
    rows = read_csv_rows(run / "predictions.csv")
    assert [r["file"] for r in rows] == ["00-1.png", "01-3.png", "02-5.png", "03-7.png"]
    assert list(empty.iterdir()) == []  # nothing read, nothing downloaded, nothing created
    api = predict(load(digits_ckpt), tmp_path / "photos")  # the same path from Python: the same numbers
    assert api["class"] == [int(r["class"]) for r in rows]
    assert np.allclose(api["probability"], [float(r["probability"]) for r in rows], atol=2e-6)
    cli("export", *common)
    assert (digits_ckpt.parents[1] / "model.onnx").is_file() and list(empty.iterdir()) == []


def test_the_checkpoint_normalizes_as_it_was_trained(digits_ckpt):
    model = load(digits_ckpt)
    stored = torch.load(digits_ckpt, weights_only=True)["hyper_parameters"]
    assert float(model.pixel_mean) == pytest.approx(stored["pixel_mean"]) and stored["pixel_mean"] > 0.1
    assert model.hparams.class_names == [str(i) for i in range(10)] and model.input_style == "mnist"


def test_the_python_api_reads_series_and_rows(cli, tmp_path):
    sine = cli("fit", "--config", CONFIGS / "sine_lstm.yaml", "--trainer.max_epochs", "2") / "checkpoints/last.ckpt"
    (tmp_path / "series.csv").write_text("value\n" + "\n".join(str(np.sin(t / 8)) for t in range(30)))
    forecast = predict(load(sine), tmp_path / "series.csv", steps=7)
    assert forecast["step"] == list(range(1, 8)) and len(forecast["forecast"]) == 7
    assert torch.allclose(torch.tensor(forecast["forecast"]), load(sine).forecast(forecast.inputs, 7), atol=1e-6)
    rule = cli("fit", "--config", CONFIGS / "rule_classifier.yaml", "--trainer.max_epochs", "1") / "checkpoints"
    table = predict(load(rule / "last.ckpt"), [[0.9, 0, 0, 0, 0.1], [0.1, 0, 0, 0, 0.9]])
    assert table["index"] == [0, 1] and table["class"] == [1, 0]
    with pytest.raises(FileNotFoundError, match=r"'missing\.csv' does not exist: pass a CSV with 5 numbers a row"):
        predict(load(rule / "last.ckpt"), "missing.csv")
