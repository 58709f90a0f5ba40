"""MNIST family: IDX reading and verification, splits and batches, models, every config, DDP sharding, real runs.

.venv/bin/pytest tests/test_mnist.py -q            # tiny generated IDX files, never a download
.venv/bin/pytest tests/test_mnist.py -q -m slow    # the real Fashion-MNIST recipe (about 2 minutes)
"""

from __future__ import annotations

import gzip
import shutil
from itertools import pairwise
from pathlib import Path

import lightning as L
import matplotlib.image
import numpy as np
import pytest
import torch
from helpers import CONFIGS, N_TEST, N_TRAIN, N_VAL, fixture_data, idx_bytes, read_metrics
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DistributedSampler

from dlbasics.data.memory import InMemoryLoader
from dlbasics.data.mnist import DEBIAN_FASHION_MNIST, MNISTDataModule, pixel_stats, random_shift, read_split
from dlbasics.models import MNISTCNN, MNISTMLP

MNIST_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test"


def sample_ids(images: torch.Tensor) -> torch.Tensor:
    return images[:, 0, 0].long() + 256 * images[:, 0, 1].long()


def copy_flat(idx: dict, tmp_path: Path) -> Path:
    return Path(shutil.copytree(idx["flat"], tmp_path / "copy"))


def datamodule(root: Path, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(root=str(root), verify=False, num_val=N_VAL, **kwargs)
    dm.setup("fit")
    return dm


# --- reading and verification -------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["flat", "tv"])
@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_reads_flat_gz_and_torchvision_layout(idx, layout, dataset):
    for prefix, train in (("train", True), ("t10k", False)):
        x, y = read_split(idx[layout], dataset, train, verify=False)
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        assert np.array_equal(x.numpy(), idx["arrays"][prefix][0])
        assert np.array_equal(y.numpy(), idx["arrays"][prefix][1])


@pytest.mark.skipif(not MNIST_TEST.is_dir(), reason=f"{MNIST_TEST} (official MNIST test split) is absent")
def test_reads_and_verifies_the_official_mnist_test_split():
    x, y = read_split(MNIST_TEST, "mnist", train=False)  # verify=True: md5 of the contents checked
    assert x.shape == (10000, 28, 28) and x.dtype == torch.uint8
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        read_split(MNIST_TEST, "mnist", train=True)  # only the t10k files are there


def test_verify_rejects_files_that_are_not_the_official_release(idx):
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is not the official mnist file.*verify"):
        read_split(idx["flat"], "mnist", train=True)


def test_a_verified_file_is_not_hashed_again_until_it_changes(idx, tmp_path, monkeypatch):
    import dlbasics.data.idx as mnist

    root = copy_flat(idx, tmp_path)
    sums = {}
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        sums[name] = mnist._md5(mnist._decompressed(root / f"{name}.gz"))
    monkeypatch.setitem(mnist.RAW_MD5, "mnist", sums)
    read_split(root, "mnist", train=False)  # hashed and remembered
    real_md5 = mnist._md5
    monkeypatch.setattr(mnist, "_md5", lambda path: pytest.fail(f"{path} hashed again"))
    read_split(root, "mnist", train=False)
    monkeypatch.setattr(mnist, "_md5", real_md5)
    images = idx["arrays"]["t10k"][0].copy()
    images[0, 0, 0] ^= 1
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz is not the official mnist file"):
        read_split(root, "mnist", train=False)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_missing_files_say_where_they_are_expected_and_how_to_get_them(tmp_path, dataset):
    with pytest.raises(FileNotFoundError) as err:
        MNISTDataModule(dataset=dataset, root=str(tmp_path)).setup("fit")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path) in message and "download: true" in message
    assert ("apt-get install dataset-fashion-mnist" in message) == (dataset == "fashion_mnist")


def test_failed_download_is_one_clear_line(tmp_path, monkeypatch):
    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://x/, got:\n"
                           "<urlopen error [Errno -2] Name or service not known>\n")  # fmt: skip

    monkeypatch.setattr("torchvision.datasets.MNIST.download", offline)
    with pytest.raises(RuntimeError) as err:
        MNISTDataModule(root=str(tmp_path), download=True).prepare_data()
    message = str(err.value)
    assert "\n" not in message and "could not download mnist" in message and "Name or service not known" in message


def test_truncated_gz_names_the_file(idx, tmp_path):
    root = copy_flat(idx, tmp_path)
    path = root / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is truncated or corrupted"):
        read_split(root, "mnist", train=True, verify=False)


def test_corrupted_gz_names_the_file(idx, tmp_path):
    root = copy_flat(idx, tmp_path)
    path = root / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz is truncated or corrupted"):
        read_split(root, "mnist", train=False, verify=False)


def test_image_label_count_mismatch_names_both_files(idx, tmp_path):
    root = copy_flat(idx, tmp_path)
    labels = idx["arrays"]["train"][1][:150]
    (root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz holds 200 images but .*labels.* 150 labels"):
        read_split(root, "mnist", train=True, verify=False)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not an idx file at all", "is not an IDX file"), (None, "holds 78316 bytes but its header announces 78416")],
)
def test_bad_uncompressed_files_name_the_file(idx, tmp_path, content, message):
    raw = Path(shutil.copytree(idx["tv"], tmp_path / "tv")) / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    raw.write_bytes(content if content is not None else raw.read_bytes()[:-100])
    with pytest.raises(ValueError, match=f"t10k-images-idx3-ubyte {message}"):
        read_split(tmp_path / "tv", "mnist", train=False, verify=False)


def test_unknown_dataset():  # and through the CLI: test_bad_input.py
    with pytest.raises(ValueError, match="unknown dataset 'kmnist': use one of mnist, fashion_mnist"):
        MNISTDataModule(dataset="kmnist")


def test_default_root_is_debians_fashion_mnist_when_installed():
    expected = DEBIAN_FASHION_MNIST if Path(DEBIAN_FASHION_MNIST).is_dir() else "data"
    assert MNISTDataModule(dataset="fashion_mnist").root == expected
    assert MNISTDataModule(dataset="mnist").root == "data"
    assert MNISTDataModule(dataset="fashion_mnist", root="elsewhere").root == "elsewhere"


# --- splits, statistics, batches ----------------------------------------------------------------------------------


def test_validation_is_carved_from_training_with_a_fixed_seed(idx):
    dm = datamodule(idx["flat"])
    ids = {split: sample_ids(tensors[0]) for split, tensors in dm.splits.items()}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [N_TRAIN - N_VAL, N_VAL, N_TEST]
    assert sorted(torch.cat([ids["train"], ids["val"]]).tolist()) == list(range(N_TRAIN))
    assert ids["test"].tolist() == list(range(N_TEST))  # the official test set, in order
    for split, prefix in (("train", "train"), ("val", "train"), ("test", "t10k")):  # labels untouched
        assert np.array_equal(dm.splits[split][1].numpy(), idx["arrays"][prefix][1][ids[split].numpy()])
    assert torch.equal(sample_ids(datamodule(idx["flat"]).splits["val"][0]), ids["val"])
    assert not torch.equal(sample_ids(datamodule(idx["flat"], seed=1).splits["val"][0]), ids["val"])


def test_standardization_statistics_come_from_the_training_split_only(idx):
    dm = datamodule(idx["flat"])
    train = dm.splits["train"][0].double() / 255
    assert dm.pixel_mean == pytest.approx(float(train.mean()), abs=1e-9)
    assert dm.pixel_std == pytest.approx(float(train.std(unbiased=False)), abs=1e-9)
    everything = torch.cat([t[0] for t in dm.splits.values()])
    assert pixel_stats(everything) != pytest.approx((dm.pixel_mean, dm.pixel_std), abs=1e-6)
    x, y = dm.on_after_batch_transfer(dm.splits["train"], 0)  # batches: pixels in [0, 1]; the model standardizes
    assert x.shape == (N_TRAIN - N_VAL, 1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x, dm.splits["train"][0].unsqueeze(1).float() / 255, atol=1e-7)
    z = (x - dm.pixel_mean) / dm.pixel_std
    assert float(z.mean()) == pytest.approx(0, abs=1e-4) and float(z.std()) == pytest.approx(1, abs=1e-3)
    assert torch.equal(y, dm.splits["train"][1])
    unit = datamodule(idx["flat"], normalization="unit")
    assert (unit.pixel_mean, unit.pixel_std) == (0.0, 1.0)
    assert torch.equal(
        unit.on_after_batch_transfer(dm.splits["test"], 0)[0], dm.on_after_batch_transfer(dm.splits["test"], 0)[0]
    )


def test_the_statistics_are_known_before_setup_so_the_cli_can_link_them(idx):
    dm = MNISTDataModule(root=str(idx["flat"]), verify=False, num_val=N_VAL)
    stats = dm.pixel_mean, dm.pixel_std
    dm.setup("fit")
    dm.teardown("fit")
    assert len(dm.splits["train"][0]) == N_TRAIN - N_VAL and dm.loaded == {}
    assert stats == pytest.approx(pixel_stats(dm.splits["train"][0]), abs=1e-12)
    assert stats == (dm.pixel_mean, dm.pixel_std)


def test_batches_are_sliced_and_reshuffled_every_epoch_reproducibly(idx):
    dm = datamodule(idx["flat"], batch_size=32)

    def epoch_ids(module: MNISTDataModule, epoch: int) -> list[list[int]]:
        loader = module.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return [sample_ids(batch[0]).tolist() for batch in loader]

    first = epoch_ids(dm, 0)
    assert [len(b) for b in first] == [32, 32, 32, 32, 22]
    assert sorted(i for batch in first for i in batch) == sorted(sample_ids(dm.splits["train"][0]).tolist())
    assert epoch_ids(dm, 1) != first
    assert epoch_ids(datamodule(idx["flat"], batch_size=32), 0) == first


def test_random_shift_moves_whole_batches_within_the_limit():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    shifted = random_shift(x, 2)
    assert shifted.shape == x.shape and torch.equal(shifted.sum(dim=(1, 2, 3)), torch.ones(64))
    rows, cols = (
        shifted[:, 0].flatten(1).argmax(dim=1).div(28, rounding_mode="floor"),
        shifted[:, 0].flatten(1).argmax(1) % 28,
    )
    assert rows.sub(14).abs().max() <= 2 and cols.sub(14).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 10  # each image has its own offset
    assert torch.equal(random_shift(x, 0), x)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] ``(N, 1, 28, 28)`` back to the uint8 ``(N, 28, 28)`` they were made from."""
    return images[:, 0].mul(255).round().to(torch.uint8)


class BatchRecorder(L.LightningModule):
    """Keeps the images each stage's steps receive, with the training samples' positions in the resident split."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(784, 10)
        self.seen: dict[str, list[tuple[torch.Tensor, torch.Tensor | None]]] = {"train": [], "val": [], "test": []}

    def training_step(self, batch, batch_idx):
        loader = self.trainer.train_dataloader
        positions = loader.indices()[batch_idx * loader.batch_size :][: len(batch[0])]
        self.seen["train"].append((as_uint8(batch[0]), positions))
        return nn.functional.cross_entropy(self.layer(batch[0].flatten(1)), batch[1])

    def validation_step(self, batch, batch_idx):
        self.seen["val"].append((as_uint8(batch[0]), None))

    def test_step(self, batch, batch_idx):
        self.seen["test"].append((as_uint8(batch[0]), None))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def offsets(image: torch.Tensor, original: torch.Tensor, shift: int) -> list[tuple[int, int]]:
    """The moves ``(dy, dx)`` within ``shift`` (zero-filled) that turn ``original`` into ``image`` (both 28x28)."""
    padded = nn.functional.pad(original, (shift, shift, shift, shift))
    moves = [(dy, dx) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)]
    return [(dy, dx) for dy, dx in moves if torch.equal(padded[shift - dy :][:28, shift - dx :][:, :28], image)]


@pytest.mark.parametrize("shift", [0, 2])
def test_shifted_batches_reach_training_step_and_never_validation_or_test(idx, tmp_path, shift):
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    dm = MNISTDataModule(root=str(idx["flat"]), verify=False, num_val=N_VAL, shift=shift, batch_size=32)
    model = BatchRecorder()
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)
    pixels = {split: dm.splits[split][0] for split in ("train", "val", "test")}
    moves = []
    for images, positions in model.seen["train"]:
        for image, original in zip(images, pixels["train"][positions], strict=True):
            found = offsets(image, original, shift)
            assert found, "a training image is not its resident image moved within the shift"
            moves.append(found)
    assert len(moves) == 2 * (N_TRAIN - N_VAL)  # every training image of both epochs was checked
    moved = sum((0, 0) not in m for m in moves)
    if shift:  # 24 of the 25 moves change an image: nearly all training images arrive shifted
        assert moved > 0.8 * len(moves)
    else:
        assert moved == 0
    # Validation (sanity check and every epoch) and test batches are the resident images, untouched.
    for stage, split in (("val", "val"), ("test", "test")):
        assert model.seen[stage]
        for images, _ in model.seen[stage]:
            assert torch.equal(images, pixels[split][: len(images)])
    assert MNISTDataModule().shift == 0


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
    assert all(float(m.weight.std()) == pytest.approx(0.01, rel=0.15) for m in linears)
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


def test_a_cnn_checkpoint_from_before_the_block_order_change_is_refused(tmp_path):
    model = MNISTCNN(channels=[4], hidden=8)
    trainer = L.Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "now.ckpt")  # hparams hold torch.optim.Adam: not readable weights-only
    assert isinstance(MNISTCNN.load_from_checkpoint(tmp_path / "now.ckpt", weights_only=False), MNISTCNN)

    def older(path: Path, version: int) -> Path:  # as the CLI writes them: plain hparams, an older format
        checkpoint = torch.load(path, weights_only=False)
        checkpoint["dlbasics_format_version"] = version
        for name in ("optimizer", "lr_scheduler"):
            checkpoint["hyper_parameters"].pop(name)
        torch.save(checkpoint, path.with_name(f"v{version}_{path.name}"))
        return path.with_name(f"v{version}_{path.name}")

    assert isinstance(MNISTCNN.load_from_checkpoint(older(tmp_path / "now.ckpt", 2)), MNISTCNN)
    with pytest.raises(ValueError, match=r"older dlbasics \(BatchNorm before the max-pool.*retrain it"):
        MNISTCNN.load_from_checkpoint(older(tmp_path / "now.ckpt", 1))
    mlp = MNISTMLP(hidden_sizes=[4])  # format 1 is still readable for the MLP: its layers did not change
    trainer.strategy.connect(mlp)
    trainer.save_checkpoint(tmp_path / "mlp.ckpt")
    assert isinstance(MNISTMLP.load_from_checkpoint(older(tmp_path / "mlp.ckpt", 1)), MNISTMLP)
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
    assert isinstance(MNISTMLP.load_from_checkpoint(ckpt), MNISTMLP)
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


# --- DDP ----------------------------------------------------------------------------------------------------------


class IndexedData(MNISTDataModule):
    """The training split carries each sample's position as a third tensor."""

    def setup(self, stage: str) -> None:
        super().setup(stage)
        x, y = self.splits["train"][:2]
        self.splits["train"] = (x, y, torch.arange(len(x)))


class SeenRecorder(L.LightningModule):
    """Saves the positions each rank trained on, per epoch, as ``<out_dir>/rank<R>-epoch<E>.pt``."""

    def __init__(self, out_dir: str) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.layer = nn.Linear(784, 10)
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        # Our own loader and its own DistributedSampler, which Lightning set to this epoch (nothing injected).
        loader = self.trainer.train_dataloader
        assert type(loader) is InMemoryLoader and type(loader.sampler) is DistributedSampler
        assert (loader.sampler.rank, loader.sampler.num_replicas, loader.sampler.epoch) == (
            self.global_rank, 2, self.current_epoch,
        )  # fmt: skip
        x, y, position = batch
        shard = (N_TRAIN - N_VAL) // 2  # global batch 20 = 10 on each of the 2 processes
        assert x.shape[1:] == (1, 28, 28) and len(position) == min(10, shard - 10 * batch_idx)
        self.seen.append(position)
        return nn.functional.cross_entropy(self.layer(x.flatten(1)), y)

    def on_train_epoch_end(self) -> None:
        torch.save(torch.cat(self.seen), Path(self.out_dir) / f"rank{self.global_rank}-epoch{self.current_epoch}.pt")
        self.seen = []

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_ddp_every_sample_is_seen_exactly_once_per_epoch(idx, tmp_path):
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path,
    )  # fmt: skip
    data = IndexedData(root=str(idx["flat"]), verify=False, num_val=N_VAL, batch_size=20)
    trainer.fit(SeenRecorder(str(tmp_path)), datamodule=data)
    orders = []
    for epoch in range(2):
        shards = [torch.load(tmp_path / f"rank{rank}-epoch{epoch}.pt") for rank in range(2)]
        assert [len(s) for s in shards] == [(N_TRAIN - N_VAL) // 2] * 2
        assert sorted(torch.cat(shards).tolist()) == list(range(N_TRAIN - N_VAL))
        orders.append(shards[0].tolist())
    assert orders[0] != orders[1]  # reshuffled every epoch


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
