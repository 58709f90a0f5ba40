"""Bad input on the command line, in one table: every case stops with one line naming the problem and leaves nothing.

Each case runs through the ``refused`` fixture (conftest.py): exit status 1 (2 for a bad command line), the error line
alone on stderr and nothing on stdout, no traceback, no new ``version_N``. A refused ``predict`` also leaves an
earlier run's ``predictions.csv`` as it was. Hostile input (YAML bombs, huge images, folders, crafted checkpoints)
is in test_hostile.py and test_trust.py; errors of the Python API are beside the code they test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, fixture_data, run_cli
from photos import digit_photo

RULE = CONFIGS / "rule_classifier.yaml"
LINEAR = CONFIGS / "linear_regression.yaml"
SINE = CONFIGS / "sine_lstm.yaml"
FASHION_MLP = CONFIGS / "fashion_mnist_mlp.yaml"
MNIST_MLP = CONFIGS / "mnist_mlp.yaml"
TINY_MNIST = "<the tiny IDX files>"  # stands for helpers.fixture_data(idx): MNIST configs that need no download


def case(what: str, args: list, message: str, code: int = 1):
    return pytest.param([str(a) for a in args], message, code, id=what)


def fit(config: Path, *args: str) -> list:
    return ["fit", "--config", config, *args]


def predict(config: Path, path: str, *args: str) -> list:
    return ["predict", "--config", config, *args, "--data.predict_path", path]


# (A negative learning rate for the rule classifier is test_hostile.py's test_an_optimizer_refusing_its_settings.)
BAD_INPUTS = [
    # the command line and the config files
    case("unknown model", fit(RULE, "--model", "Nope"), "unknown model 'Nope'", 2),
    case("unknown model Perceptron", fit(RULE, "--model", "Perceptron"), "unknown model 'Perceptron'", 2),
    case("unknown data", fit(RULE, "--data", "NoSuchData"), "unknown data 'NoSuchData'", 2),
    case("unknown argument", fit(RULE, "--bogus", "1"), "unrecognized arguments", 2),
    case("lr not a number", fit(RULE, "--model.init_args.optimizer.init_args.lr", "abc"), "model.optimizer.lr", 2),
    case("max_epochs not a number", fit(RULE, "--trainer.max_epochs", "abc"), "trainer.max_epochs", 2),
    case("max_epochs in words", fit(RULE, "--trainer.max_epochs", "ten"), "trainer.max_epochs", 2),
    case("test_after_fit not a bool", fit(RULE, "--test_after_fit", "maybe"), "test_after_fit", 2),
    case("missing config", fit("no/such/config.yaml"), "File does not exist", 2),
    case("missing config in the folder", fit("nope.yaml"), "File does not exist", 2),
    # the model's settings
    case(
        "optimizer not a class",
        fit(RULE, "--model.init_args.optimizer", "nesterov"),
        "model.optimizer: 'nesterov' is not a class",
        2,
    ),
    case(
        "negative lr",
        fit(LINEAR, "--model.init_args.optimizer.init_args.lr", "-0.1"),
        "model.optimizer: Invalid learning rate: -0.1",
    ),
    case("hidden size 0", fit(FASHION_MLP, "--model.init_args.hidden_sizes", "[0]"), "hidden_sizes must all be >= 1"),
    case("unknown activation", fit(FASHION_MLP, "--model.init_args.activation", "swish"), "model.activation", 2),
    case("dropout >= 1", fit(SINE, "--model.dropout", "1.5"), "dropout must be in [0, 1)"),
    # the data's settings
    case("batch_size < 1", fit(RULE, "--data.init_args.batch_size", "0"), "batch_size must be >= 1"),
    case(
        "unknown dataset",
        fit(MNIST_MLP, "--data.dataset", "kmnist"),
        "unknown dataset 'kmnist': use one of mnist, fashion_mnist",
    ),
    case("unknown dataset cifar", fit(FASHION_MLP, "--data.init_args.dataset", "cifar"), "unknown dataset 'cifar'"),
    case("missing data", fit(FASHION_MLP, "--data.init_args.root", "nowhere"), "fashion_mnist files not found"),
    case(
        "n_steps = length",
        fit(SINE, "--data.n_steps", "2000"),
        "n_steps (2000) must be smaller than the series length (2000)",
    ),
    case("n_steps > length", fit(SINE, "--data.init_args.n_steps", "5000"), "must be smaller than"),
    case("n_steps < 1", fit(SINE, "--data.init_args.n_steps", "0"), "n_steps must be >= 1"),
    case("horizon < 1", fit(SINE, "--data.horizon", "0"), "horizon must be >= 1"),
    case("horizon < 1 as init_args", fit(SINE, "--data.init_args.horizon", "0"), "horizon must be >= 1"),
    case("negative noise", fit(SINE, "--data.noise_std", "-0.1"), "noise_std must be >= 0"),
    case("negative noise as init_args", fit(SINE, "--data.init_args.noise_std", "-1"), "noise_std must be >= 0"),
    case(
        "validation part too short",
        fit(SINE, "--data.val_fraction", "0.004"),
        "the val part holds 8 values, fewer than n_steps + horizon = 21",
    ),
    case("validation fraction >= 1", fit(SINE, "--data.init_args.val_fraction", "1.0"), "val_fraction"),
    # checkpoints
    case("resume with no run", fit(RULE, "--ckpt_path", "last"), "no last.ckpt"),
    case(
        "unreadable checkpoint",
        ["test", "--config", RULE, "--ckpt_path", "garbage.ckpt"],
        "garbage.ckpt is not a readable",
    ),
    case(
        "missing checkpoint",
        ["test", "--config", RULE, "--ckpt_path", "gone.ckpt"],
        "'gone.ckpt' does not exist",
    ),
    # the user's files for predict
    case("missing CSV", predict(RULE, "missing.csv"), "'missing.csv' does not exist"),
    case("missing CSV none.csv", predict(RULE, "none.csv"), "'none.csv' does not exist"),
    case("CSV row too short", predict(RULE, "bad.csv"), "row 1 has 4 columns, expected 5"),
    case("CSV row too long", predict(LINEAR, "cols.csv"), "cols.csv row 1 has 3 columns, expected 2"),
    case("series with text", predict(SINE, "text.csv"), "text.csv row 3 is not a number: 'abc'"),
    case("series with nan", predict(SINE, "nan.csv"), "nan.csv row 2 holds 'nan'"),
    case(
        "series shorter than the window",
        predict(SINE, "short.csv"),
        "short.csv holds 2 values, fewer than the model's window n_steps = 20",
    ),
    case(
        "predict_steps < 1",
        predict(SINE, "short.csv", "--data.predict_steps", "0"),
        "predict_steps must be >= 1, got 0",
    ),
    case("corrupt image", predict(MNIST_MLP, "corrupt", TINY_MNIST), "a.png is not a readable image"),
    case("folder without images", predict(MNIST_MLP, "empty", TINY_MNIST), "empty holds no images"),
    case("blank photo", predict(MNIST_MLP, "blank", TINY_MNIST), "paper.jpg is blank"),
    case("flat arrays", predict(MNIST_MLP, "flat.npy", TINY_MNIST), "flat.npy has shape (3, 784)"),
    case("bool arrays", predict(MNIST_MLP, "bool.npy", TINY_MNIST), "bool.npy has dtype bool"),
]


def write_bad_files(folder: Path) -> None:
    """The files and folders the cases name, in the folder the command runs in."""
    for name in ("corrupt", "empty", "blank"):
        (folder / name).mkdir()
    (folder / "corrupt" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    digit_photo(np.zeros((28, 28), np.uint8)).save(folder / "blank" / "paper.jpg")  # noisy paper, no ink
    np.save(folder / "flat.npy", np.zeros((3, 784), np.uint8))
    np.save(folder / "bool.npy", np.ones((3, 28, 28), bool))
    texts = {"bad": "0.1,0.2,0.3,0.4\n", "cols": "1,2,3\n", "text": "1\n2\nabc\n", "nan": "0.1\nnan\n0.3\n",
             "short": "0.1\n0.2\n"}  # fmt: skip
    for name, text in texts.items():
        (folder / f"{name}.csv").write_text(text)
    (folder / "garbage.ckpt").write_bytes(b"not a checkpoint")


@pytest.fixture(scope="module")
def earlier_predictions(tmp_path_factory, idx) -> Path:
    """``lightning_logs/`` of an earlier ``predict`` (the MLP on the tiny test split): one ``predictions.csv``."""
    root = tmp_path_factory.mktemp("earlier")
    run_cli(root, "predict", "--config", MNIST_MLP, *fixture_data(idx))
    return root / "lightning_logs"


@pytest.mark.parametrize(("args", "message", "code"), BAD_INPUTS)
def test_bad_input_stops_with_one_line_and_leaves_nothing(refused, request, idx, tmp_path, args, message, code):
    write_bad_files(tmp_path)
    args = [part for arg in args for part in (fixture_data(idx) if arg == TINY_MNIST else [arg])]
    if args[0] == "predict":  # an earlier run's predictions beside it, which a refused predict must not touch
        shutil.copytree(request.getfixturevalue("earlier_predictions"), tmp_path / "lightning_logs")
        (earlier,) = tmp_path.glob("lightning_logs/*/predictions.csv")
        before = earlier.read_bytes()
    assert message in refused(*args, code=code)
    if args[0] == "predict":
        assert earlier.read_bytes() == before
        assert list(tmp_path.glob("lightning_logs/*/predictions.csv")) == [earlier]
