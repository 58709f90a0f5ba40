"""IDX files of the MNIST family: both layouts, checksums of the official files, where they are expected, downloads.

.venv/bin/pytest tests/test_idx.py -q    # tiny generated IDX files (conftest.idx), never a download
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import MNIST_TEST_DIRS, idx_bytes, mnist_test_dir

from dlbasics.data.mnist import DEBIAN_FASHION_MNIST, MNISTDataModule, read_split


def copy_flat(idx: dict, tmp_path: Path) -> Path:
    return Path(shutil.copytree(idx["flat"], tmp_path / "copy"))


@pytest.mark.parametrize("layout", ["flat", "tv"])
@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_reads_flat_gz_and_torchvision_layout(idx, layout, dataset):
    for prefix, train in (("train", True), ("t10k", False)):
        x, y = read_split(idx[layout], dataset, train, verify=False)
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        assert np.array_equal(x.numpy(), idx["arrays"][prefix][0])
        assert np.array_equal(y.numpy(), idx["arrays"][prefix][1])


MNIST_TEST = mnist_test_dir()


@pytest.mark.skipif(MNIST_TEST is None, reason=f"the official MNIST test split is not in {MNIST_TEST_DIRS}")
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
