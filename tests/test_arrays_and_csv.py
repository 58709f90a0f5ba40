"""Arrays and tables the user brings (dlbasics.use.files): .npy images taken as they are, CSV series and feature rows,
and every refusal in one line naming the file: bad arrays, bad rows, paths that are not there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import one_line_error
from photos import load_mnist_test

from dlbasics.use.files import load_images, read_features, read_series


@pytest.fixture(scope="module")
def digits():
    return load_mnist_test(8)


def test_npy_arrays_are_taken_as_they_are(digits, tmp_path):
    np.save(tmp_path / "u8.npy", digits[0][:5])
    images, names = load_images(tmp_path / "u8.npy")
    assert names == [f"u8.npy[{i}]" for i in range(5)]
    assert images.dtype == torch.uint8 and np.array_equal(images.numpy(), digits[0][:5])
    np.save(tmp_path / "float.npy", digits[0][:3].astype(np.float32) / 255)
    assert np.array_equal(load_images(tmp_path / "float.npy")[0].numpy(), digits[0][:3])
    np.save(tmp_path / "one.npy", digits[0][7].astype(np.float64) / 255)
    images, names = load_images(tmp_path / "one.npy")
    assert names == ["one.npy[0]"] and np.array_equal(images[0].numpy(), digits[0][7])


BAD_ARRAYS = {  # file: (array, what the message says)
    "big.npy": (np.zeros((2, 32, 32), np.uint8), "shape (2, 32, 32)"),
    "flat.npy": (np.zeros((2, 784), np.uint8), "shape (2, 784)"),
    "complex.npy": (np.zeros((2, 28, 28), np.complex64), "dtype complex64"),
    "bool.npy": (np.ones((2, 28, 28), bool), "dtype bool"),
    "strings.npy": (np.full((2, 28, 28), "a"), "dtype <U1"),
    "over_one.npy": (np.full((2, 28, 28), 3.0), "values in [3, 3]"),
    "nan.npy": (np.full((2, 28, 28), np.nan), "NaN"),
    "negative.npy": (np.full((2, 28, 28), -5, np.int64), "[-5, -5]"),
    "none.npy": (np.zeros((0, 28, 28), np.uint8), "holds no images"),
    "blank.npy": (np.zeros((2, 28, 28), np.uint8), "blank.npy[0] is blank"),
}


@pytest.mark.parametrize("name", BAD_ARRAYS)
def test_bad_arrays_stop_with_one_line_naming_them(tmp_path, name):
    array, expected = BAD_ARRAYS[name]
    np.save(tmp_path / name, array)
    message = one_line_error(ValueError, lambda: load_images(tmp_path / name), name)
    assert expected in message, message
    assert ("reshape it" in message) == (name == "flat.npy"), message


def test_object_npy_and_missing_paths(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    one_line_error(ValueError, lambda: load_images(tmp_path / "objects.npy"), "objects.npy")
    message = one_line_error(FileNotFoundError, lambda: load_images(tmp_path / "nowhere"), "nowhere")
    assert "does not exist" in message
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"x")
    assert "holds no images" in one_line_error(ValueError, lambda: load_images(tmp_path / "empty"), "empty")
    (tmp_path / "notes.txt").write_text("7")
    one_line_error(ValueError, lambda: load_images(tmp_path / "notes.txt"), "notes.txt")
    with pytest.raises(ValueError, match="unknown image style 'cifar'"):
        load_images(tmp_path / "notes.txt", style="cifar")


# --- CSV readers --------------------------------------------------------------------------------------------------


def test_read_series(tmp_path):
    (tmp_path / "s.csv").write_text("\ufeffvalue\n0.5\n-1e-3\n\n  2 \n")
    series = read_series(tmp_path / "s.csv")
    assert series.dtype == torch.float32 and series.tolist() == pytest.approx([0.5, -0.001, 2.0])
    (tmp_path / "plain.txt").write_text("1\n2\n3")
    assert read_series(tmp_path / "plain.txt").tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x\n1\n2\n3\n4\n5\nabc\n", "row 7 is not a number: 'abc'"),
        ("1,2\n3,4\n", "row 1 has 2 columns, expected 1"),
        ("x\n1\nnan\n", "row 3 holds 'nan'"),
        ("1\ninf\n", "row 2 holds 'inf'"),
        ("", "holds no values"),
        ("value\n\n", "holds no values"),
    ],
)
def test_read_series_errors(tmp_path, text, message):
    (tmp_path / "s.csv").write_text(text)
    assert message in one_line_error(ValueError, lambda: read_series(tmp_path / "s.csv"), "s.csv")


def test_read_features(tmp_path):
    (tmp_path / "v.csv").write_text("a,b,c\n0.1, 0.2,0.3\n\n1,2,3\n")
    features = read_features(tmp_path / "v.csv", 3)
    assert features.dtype == torch.float32 and features.shape == (2, 3)
    assert features.tolist() == [pytest.approx([0.1, 0.2, 0.3]), [1.0, 2.0, 3.0]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x0,x1,x2,x3,x4\n1,2,3\n", "row 2 has 3 columns, expected 5"),
        ("1,2,3,4,5\n1,2,x,4,5\n", "row 2 is not a number: 'x'"),
        ("1,2,3,4,nan\n", "row 1 holds 'nan'"),
        ("x0,x1,x2,x3,x4\n", "holds no values"),
    ],
)
def test_read_features_errors(tmp_path, text, message):
    (tmp_path / "v.csv").write_text(text)
    assert message in one_line_error(ValueError, lambda: read_features(tmp_path / "v.csv", 5), "v.csv")


def test_csv_readers_missing_file(tmp_path):
    for read in (read_series, lambda p: read_features(p, 5)):
        message = one_line_error(FileNotFoundError, lambda read=read: read(tmp_path / "gone.csv"), "gone.csv")
        assert "'" + str(tmp_path / "gone.csv") + "' does not exist" in message
