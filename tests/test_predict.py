"""``dlbasics predict`` on the user's own files: photos of real digits, arrays, a series, feature rows, a folder with
a stray file; Fashion-MNIST's class names; float32 probabilities. Refused files are in test_bad_input.py.

pytest tests/test_predict.py -q
"""

from __future__ import annotations

import gzip
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CONFIGS, fixture_data, idx_bytes, read_metrics, run_cli
from photos import digit_photo, load_mnist_test
from PIL import Image

from dlbasics.data import MNISTDataModule
from dlbasics.models import MNISTCNN, RuleClassifier, SineLSTM
from dlbasics.runs import read_csv_rows
from dlbasics.use import load, predict
from dlbasics.use.files import load_images

N_TRAIN_DIGITS, N_PHOTOS = 8000, 100
CHECK_DIR = Path("/tmp/predict_check")  # a copy of predictions.png to look at


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> dict:
    """An MLP trained through the CLI on the first 8000 official MNIST test digits; the last 2000 held out."""
    images, labels = load_mnist_test(10000)
    root = tmp_path_factory.mktemp("digits")
    data = root / "data"
    data.mkdir()
    parts = {"train": slice(0, N_TRAIN_DIGITS), "t10k": slice(N_TRAIN_DIGITS, None)}
    for split, part in parts.items():
        (data / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images[part])))
        (data / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels[part])))
    data_args = ["--config", CONFIGS / "mnist_mlp.yaml", "--data.root", data, "--data.download", "false",
                 "--data.verify", "false", "--data.num_val", "1000"]  # fmt: skip
    run = run_cli(root, "fit", *data_args, "--trainer.max_epochs", "4", "--model.init_args.hidden_sizes", "[256]")
    return {
        "args": data_args, "run": run, "ckpt": next((run / "checkpoints").glob("best-*.ckpt")),
        "held_out": (images[N_TRAIN_DIGITS:], labels[N_TRAIN_DIGITS:]), "test_acc": read_metrics(run)["test/acc"][-1],
    }  # fmt: skip


def test_photos_of_held_out_digits_are_read_as_well_as_the_digits(digits, cli, tmp_path):
    images, labels = digits["held_out"]
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(N_PHOTOS):  # dark ink on light paper, off-centre, 5-7x larger, RGB; JPEG and PNG
        offset = (int(rng.integers(-40, 41)), int(rng.integers(-20, 21)))
        photo = digit_photo(images[i], size=(320, 240), scale=int(rng.integers(5, 8)), offset=offset, seed=i)
        photo.save(folder / f"digit{i:03d}.{'jpg' if i % 2 else 'png'}", quality=90)
    command = ["predict", *digits["args"], "--ckpt_path", digits["ckpt"]]
    run = cli(*command, "--data.predict_path", folder)
    rows = read_csv_rows(run / "predictions.csv")
    assert list(rows[0]) == ["index", "file", "class", "label", "probability"]
    assert [r["file"] for r in rows] == sorted(p.name for p in folder.iterdir())
    assert [int(r["index"]) for r in rows] == list(range(N_PHOTOS))
    assert all(r["label"] == r["class"] for r in rows)  # MNIST's class names are the digits
    classes = np.array([int(r["class"]) for r in rows])
    accuracy = float((classes == labels[:N_PHOTOS]).mean())
    assert digits["test_acc"] > 0.9, digits["test_acc"]
    assert accuracy > 0.85 and accuracy >= digits["test_acc"] - 0.08, (accuracy, digits["test_acc"])
    assert (run / "predictions.png").stat().st_size > 0
    CHECK_DIR.mkdir(exist_ok=True)
    shutil.copy(run / "predictions.png", CHECK_DIR / "predictions.png")

    api = predict(load(digits["ckpt"]), folder)  # the Python API: the same table
    assert api["file"] == [r["file"] for r in rows] and api["label"] == [r["label"] for r in rows]
    assert api["class"] == classes.tolist()
    assert np.allclose(api["probability"], [float(r["probability"]) for r in rows], atol=2e-6)
    assert api.inputs.shape == (N_PHOTOS, 28, 28) and api.inputs.dtype == torch.uint8


def test_npy_input(digits, cli, tmp_path):
    images, labels = digits["held_out"]
    np.save(tmp_path / "digits.npy", images[:300])
    run = cli("predict", *digits["args"], "--ckpt_path", digits["ckpt"], "--data.predict_path", tmp_path / "digits.npy")
    rows = read_csv_rows(run / "predictions.csv")
    assert [r["file"] for r in rows[:2]] == ["digits.npy[0]", "digits.npy[1]"] and len(rows) == 300
    classes = [int(r["class"]) for r in rows]
    assert np.mean(np.array(classes) == labels[:300]) == pytest.approx(digits["test_acc"], abs=0.05)
    api = predict(load(digits["ckpt"]), images[:300])
    assert api["class"] == classes and api["file"][0] == "[0]"


def test_forecast_of_a_shifted_sine_continues_it(cli, tmp_path):
    run = cli("fit", "--config", CONFIGS / "sine_lstm.yaml")
    ckpt = next((run / "checkpoints").glob("best-*.ckpt"))
    t = np.arange(140)
    truth = np.sin(2 * math.pi * t / 50 + 1.3)  # same period and amplitude as training, another phase
    series = tmp_path / "series.csv"
    series.write_text("value\n" + "\n".join(f"{v:.7f}" for v in truth[:100]) + "\n")
    predicted = cli("predict", "--config", CONFIGS / "sine_lstm.yaml", "--ckpt_path", ckpt,
                    "--data.predict_path", series, "--data.predict_steps", "40")  # fmt: skip
    rows = read_csv_rows(predicted / "predictions.csv")
    assert list(rows[0]) == ["step", "forecast"] and [int(r["step"]) for r in rows] == list(range(1, 41))
    forecast = np.array([float(r["forecast"]) for r in rows])
    assert np.abs(forecast - truth[100:]).max() < 0.1
    assert (predicted / "forecast.png").stat().st_size > 0 and not (predicted / "forecast.csv").exists()
    api = SineLSTM.load_from_checkpoint(ckpt, map_location="cpu").forecast(truth[80:100], 40)
    assert np.allclose(api.numpy(), forecast, atol=1e-5)


def test_linear_regression_predicts_the_true_function(cli, tmp_path):
    run = cli("fit", "--config", CONFIGS / "linear_regression.yaml")
    x = np.random.default_rng(0).normal(size=(20, 2))
    features = tmp_path / "features.csv"
    features.write_text("x0,x1\n" + "\n".join(f"{a},{b}" for a, b in x) + "\n")
    predicted = cli("predict", "--config", CONFIGS / "linear_regression.yaml", "--ckpt_path",
                    run / "checkpoints" / "last.ckpt", "--data.predict_path", features)  # fmt: skip
    rows = read_csv_rows(predicted / "predictions.csv")
    assert list(rows[0]) == ["index", "prediction"] and len(rows) == 20
    assert np.allclose([float(r["prediction"]) for r in rows], x @ [2.0, -3.4] + 4.2, atol=0.02)


def test_a_folder_with_a_file_that_is_not_an_image_predicts_the_images_and_warns_once(cli, idx, tmp_path):
    mnist = ["--config", CONFIGS / "mnist_mlp.yaml", *fixture_data(idx)]
    earlier = cli("predict", *mnist) / "predictions.csv"  # the test split: no file column
    assert list(read_csv_rows(earlier)[0]) == ["index", "class", "label", "probability"]
    images, _ = load_mnist_test(1)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    digit_photo(images[0]).save(mixed / "digit.png")
    (mixed / "notes.txt").write_text("not an image")
    with warnings.catch_warnings(record=True) as caught:  # a non-image file in the folder: skipped, one warning
        warnings.simplefilter("always")
        run = cli("predict", *mnist, "--data.predict_path", mixed)
    assert [str(w.message) for w in caught if "skipped" in str(w.message)] == [
        f"skipped 1 file in {mixed} that is not an image (notes.txt)"
    ]
    assert [r["file"] for r in read_csv_rows(run / "predictions.csv")] == ["digit.png"]


def test_fashion_mnist_predict_split_uses_the_fashion_style_and_class_names(tmp_path, monkeypatch):
    shirt = np.full((120, 100), 240, np.uint8)
    shirt[20:100, 25:75] = 40  # a dark object on a light background
    Image.fromarray(shirt).save(tmp_path / "b.png")
    Image.fromarray(shirt.T.copy()).save(tmp_path / "a.png")
    calls = []
    monkeypatch.setattr("dlbasics.data.mnist.load_images", lambda p, s: calls.append(s) or load_images(p, s))
    data = MNISTDataModule(dataset="fashion_mnist", root=str(tmp_path), predict_path=str(tmp_path))
    data.setup("predict")  # the training files are not needed for the images themselves
    assert calls == ["fashion"] and data.predict_names == ["a.png", "b.png"]
    assert data.splits["predict"][0].shape == (2, 28, 28)
    table = data.prediction_table(torch.tensor([0, 1]), {"class": torch.tensor([0, 9]), "probability": torch.rand(2)})
    assert list(table) == ["index", "file", "class", "label", "probability"]
    assert table["file"] == ["a.png", "b.png"] and table["label"] == ["T-shirt/top", "Ankle boot"]


@pytest.mark.parametrize("model", [MNISTCNN(channels=[4]), RuleClassifier()], ids=["multiclass", "binary"])
def test_probabilities_under_bf16_autocast_are_float32(model):
    x = torch.rand(16, 1, 28, 28) if isinstance(model, MNISTCNN) else torch.rand(16, 5)
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits, out = model(x), model.predict_step((x,), 0)
    assert logits.dtype == torch.bfloat16 and out["probability"].dtype == torch.float32  # not rounded to 3 digits
    probs = logits.float().sigmoid() if model.binary else logits.float().softmax(-1).max(-1).values
    assert torch.equal(out["probability"], probs)
