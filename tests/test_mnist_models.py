"""MNISTMLP and MNISTCNN: layers, initialisation, checkpoints, standardization; every MNIST config through the CLI;
the real Fashion-MNIST recipes (slow).

.venv/bin/pytest tests/test_mnist_models.py -q            # tiny generated IDX files, never a download
.venv/bin/pytest tests/test_mnist_models.py -q -m slow    # the real Fashion-MNIST recipes (minutes)
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import lightning as L
import matplotlib.image
import pytest
import torch
import yaml
from helpers import CONFIGS, N_VAL, fixture_data, read_metrics
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from dlbasics.data.mnist import DEBIAN_FASHION_MNIST, MNISTDataModule
from dlbasics.models import MNISTCNN, MNISTMLP

# --- models -------------------------------------------------------------------------------------------------------


def test_mlp_takes_images_or_vectors_and_refuses_other_shapes():
    model = MNISTMLP(hidden_sizes=[32, 16], activation="tanh", dropout=0.1)
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert model(torch.randn(5, 784)).shape == (5, 10)
    with pytest.raises(ValueError, match=r"MNISTMLP expects \(N, 784\) vectors .* got \(5, 3, 28, 28\)"):
        model(torch.randn(5, 3, 28, 28))


def test_fish_book_initialisation_and_the_other_choices():
    fish = MNISTMLP(hidden_sizes=[50], activation="sigmoid", init="normal", init_std=0.01)
    linears = [m for m in fish.modules() if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(50, 784), (10, 50)]
    assert all(float(m.weight.detach().std()) == pytest.approx(0.01, rel=0.15) for m in linears)
    assert all(not m.bias.any() for m in linears)
    for init in ("xavier", "kaiming"):
        model = MNISTMLP(hidden_sizes=[256], init=init)
        assert all(not m.bias.any() for m in model.modules() if isinstance(m, nn.Linear))
    default = MNISTMLP(hidden_sizes=[256])
    assert all(m.bias.any() for m in default.modules() if isinstance(m, nn.Linear))
    with pytest.raises(ValueError, match="hidden_sizes must all be >= 1"):
        MNISTMLP(hidden_sizes=[0])


@pytest.mark.parametrize("channels", [[8], [8, 16], [4, 8, 16], [4, 4, 8, 8]])
@pytest.mark.parametrize("hidden", [0, 12])
def test_cnn_blocks_and_head(channels, hidden):
    model = MNISTCNN(channels=channels, hidden=hidden)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == channels
    # every block: conv, max-pool, then BatchNorm and ReLU on the pooled values
    assert [type(m) for m in model.features] == [nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d, nn.ReLU] * len(channels)
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    side = 28 // 2 ** len(channels)
    widths = [channels[-1] * side * side, *([hidden] if hidden else []), 10]
    assert [(m.in_features, m.out_features) for m in linears] == list(pairwise(widths))
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.head) == bool(hidden)
    with pytest.raises(ValueError, match="hidden must be >= 0"):
        MNISTCNN(hidden=-1)


def scramble(model: nn.Module) -> nn.Module:
    """Weights and statistics no freshly built model has, so that loading them shows."""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(0.5, 1.5)
    return model


def assert_loaded(model: L.LightningModule, ckpt: Path, **hparams) -> None:
    """``model`` holds exactly the weights and buffers saved in ``ckpt``, and the hyperparameters ``hparams``."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys()
    for key, tensor in saved.items():
        assert torch.equal(loaded[key], tensor), key
    for name, value in hparams.items():
        assert model.hparams[name] == value, (name, model.hparams[name])


def test_a_cnn_checkpoint_from_before_the_block_order_change_is_refused(tmp_path):
    model = scramble(MNISTCNN(channels=[4], hidden=8, pixel_mean=0.2, pixel_std=0.3)).eval()
    trainer = L.Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "now.ckpt")  # hparams hold torch.optim.Adam: not readable weights-only
    loaded = MNISTCNN.load_from_checkpoint(tmp_path / "now.ckpt", weights_only=False).eval()
    assert_loaded(loaded, tmp_path / "now.ckpt", channels=[4], hidden=8, pixel_mean=0.2, pixel_std=0.3)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))  # the saved model, not a fresh one

    def older(path: Path, version: int) -> Path:  # as the CLI writes them: plain hparams, an older format
        checkpoint = torch.load(path, weights_only=False)
        checkpoint["dlbasics_format_version"] = version
        for name in ("optimizer", "lr_scheduler"):
            checkpoint["hyper_parameters"].pop(name)
        torch.save(checkpoint, path.with_name(f"v{version}_{path.name}"))
        return path.with_name(f"v{version}_{path.name}")

    v2 = older(tmp_path / "now.ckpt", 2)
    assert_loaded(MNISTCNN.load_from_checkpoint(v2), v2, channels=[4], hidden=8, pixel_mean=0.2, pixel_std=0.3)
    with pytest.raises(ValueError, match=r"older dlbasics \(BatchNorm before the max-pool.*retrain it"):
        MNISTCNN.load_from_checkpoint(older(tmp_path / "now.ckpt", 1))
    mlp = scramble(MNISTMLP(hidden_sizes=[4]))  # format 1 is still readable for the MLP: its layers did not change
    trainer.strategy.connect(mlp)
    trainer.save_checkpoint(tmp_path / "mlp.ckpt")
    v1 = older(tmp_path / "mlp.ckpt", 1)
    assert_loaded(MNISTMLP.load_from_checkpoint(v1), v1, hidden_sizes=[4])
    with pytest.raises(ValueError, match=r"older dlbasics \(optimizers given as strings"):
        MNISTMLP.load_from_checkpoint(older(tmp_path / "mlp.ckpt", 0))


@pytest.mark.parametrize("cls", [MNISTMLP, MNISTCNN])
def test_models_standardize_pixels_with_their_statistics(cls):
    torch.manual_seed(0)
    kwargs = {"hidden_sizes": [16]} if cls is MNISTMLP else {"channels": [4]}
    model = cls(pixel_mean=0.2, pixel_std=0.3, **kwargs).eval()
    plain = cls(**kwargs).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(model(x), plain((x - 0.2) / 0.3), atol=1e-5)
    with pytest.raises(ValueError, match="pixel_std must be > 0"):
        cls(pixel_std=0.0, **kwargs)


def test_cnn_channels_last_gives_the_same_function_and_bad_input_is_refused():
    torch.manual_seed(0)
    plain = MNISTCNN(channels=[8, 16]).eval()
    fast = MNISTCNN(channels=[8, 16], channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(plain(x), fast(x), atol=1e-5)
    with pytest.raises(ValueError, match=r"MNISTCNN expects input of shape \(N, 1, 28, 28\), got \(4, 784\)"):
        plain(torch.randn(4, 784))
    with pytest.raises(ValueError, match="channels must list 1 to 4"):
        MNISTCNN(channels=[8, 8, 8, 8, 8])


# --- configs through the CLI --------------------------------------------------------------------------------------

MNIST_CONFIGS = sorted(p.name for p in CONFIGS.glob("*mnist_*.yaml"))


def test_the_issue_lists_every_config():
    assert MNIST_CONFIGS == [
        "fashion_mnist_cnn.yaml",
        "fashion_mnist_cnn_sprint.yaml",
        "fashion_mnist_mlp.yaml",
        "mnist_cnn.yaml",
        "mnist_mlp.yaml",
        "mnist_mlp_deep.yaml",
        "mnist_mlp_fishbook.yaml",
    ]


@pytest.mark.parametrize("name", MNIST_CONFIGS)
def test_fast_dev_run_every_config(cli, idx, name):
    cli("fit", "--config", CONFIGS / name, "--trainer.fast_dev_run", "2", *fixture_data(idx))


def test_fit_then_test_logs_metrics_and_saves_the_confusion_matrix(cli, idx):
    config = CONFIGS / "mnist_mlp.yaml"
    fast = ["--data.batch_size", "30", "--trainer.max_epochs", "8", *fixture_data(idx)]
    run = cli("fit", "--config", config, *fast)
    ckpt = run / "checkpoints" / "last.ckpt"
    data = MNISTDataModule(root=str(idx["flat"]), verify=False, num_val=N_VAL)  # the statistics the run linked
    hidden_sizes = yaml.safe_load((run / "config.yaml").read_text())["model"]["init_args"]["hidden_sizes"]
    assert_loaded(MNISTMLP.load_from_checkpoint(ckpt), ckpt, hidden_sizes=hidden_sizes,
                  pixel_mean=pytest.approx(data.pixel_mean), pixel_std=pytest.approx(data.pixel_std))  # fmt: skip
    assert hidden_sizes == [512, 256] and data.pixel_std != pytest.approx(1, abs=0.1)  # not the defaults
    tested = cli("test", "--config", config, "--ckpt_path", ckpt, *fast)
    metrics = read_metrics(tested)
    assert {"test/acc", "test/f1", "test/precision", "test/recall", "test/loss"} <= metrics.keys()
    assert metrics["test/acc"][-1] >= 0.8  # the generated bars are easy; chance is 0.1
    image = matplotlib.image.imread(tested / "test_confusion_matrix.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300


def test_cnn_test_run_shows_misclassified_images_and_activation_maps(cli, idx):
    config = CONFIGS / "mnist_cnn.yaml"
    fast = [
        "--data.batch_size",
        "32",
        "--trainer.max_epochs",
        "1",
        "--trainer.precision",
        "32-true",
        *fixture_data(idx),
    ]
    run = cli("fit", "--config", config, *fast)  # tests the best checkpoint at the end, in the same run
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    for name in ("test_confusion_matrix", "test_misclassified", "test_activations", "learning_curves"):
        image = matplotlib.image.imread(run / f"{name}.png")
        assert image.ndim == 3 and min(image.shape[:2]) > 100, name
        tag = name.replace("test_", "test/", 1)
        assert events.Images(tag)[0].encoded_image_string.startswith(b"\x89PNG"), tag  # and in TensorBoard


# --- the real Fashion-MNIST recipe --------------------------------------------------------------------------------

EVERY_EPOCH = """\
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {filename: "{epoch}", save_top_k: -1, save_last: true}
"""


@pytest.mark.slow
@pytest.mark.skipif(
    not Path(DEBIAN_FASHION_MNIST).is_dir(),
    reason=f"Fashion-MNIST is not in {DEBIAN_FASHION_MNIST}: apt-get install dataset-fashion-mnist",
)
def test_fashion_mnist_cnn_recipe_reaches_090_within_3_epochs_and_092_at_the_end(cli, tmp_path):
    config = CONFIGS / "fashion_mnist_cnn.yaml"
    (tmp_path / "every_epoch.yaml").write_text(EVERY_EPOCH)
    run = cli("fit", "--config", config, "--config", tmp_path / "every_epoch.yaml", "--test_after_fit", "false")
    accuracy = {}
    for name in ("epoch=2", "last"):  # the model after its 3rd epoch, and at the end of the configured run
        tested = cli("test", "--config", config, "--ckpt_path", run / "checkpoints" / f"{name}.ckpt")
        metrics = read_metrics(tested)
        assert "test/f1" in metrics
        accuracy[name] = metrics["test/acc"][-1]
    print(f"Fashion-MNIST test accuracy: {accuracy}")
    assert accuracy["epoch=2"] >= 0.90 and accuracy["last"] >= 0.92


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="needs apt-get install dataset-fashion-mnist")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sprint_recipe_reaches_090_test_accuracy_in_one_process_for_every_seed(cli, seed):
    run = cli("fit", "--config", CONFIGS / "fashion_mnist_cnn_sprint.yaml", "--seed_everything", str(seed))
    metrics = read_metrics(run)  # validation chose the checkpoint; the test split was read once, at the end
    assert len(metrics["test/acc"]) == 1 and metrics["test/acc"][0] >= 0.90, metrics["test/acc"]
