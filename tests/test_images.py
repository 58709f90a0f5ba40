"""Images the user brings (dlbasics.use.files.load_images): photos of real MNIST digits come out like MNIST, every
image format, the Fashion-MNIST style, bad image files, folders with other files in them.

.npy arrays and CSV files: test_arrays_and_csv.py.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from helpers import one_line_error
from photos import digit_photo, load_mnist_test
from PIL import Image

from dlbasics.use.files import load_images
from dlbasics.use.images import preprocess

N_PHOTOS = 50


def corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64) - a.mean(), b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    image = image.astype(np.float64)
    rows, cols = np.arange(image.shape[0]), np.arange(image.shape[1])
    return float(image.sum(1) @ rows / image.sum()), float(image.sum(0) @ cols / image.sum())


def bbox(image: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the pixels > 0, inclusive."""
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    return rows[0], rows[-1], cols[0], cols[-1]


def offsets(n: int, seed: int = 0) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(-40, 41)), int(rng.integers(-25, 26))) for _ in range(n)]


@pytest.fixture(scope="module")
def digits():
    return load_mnist_test(N_PHOTOS)


@pytest.fixture(scope="module")
def recentred(digits):
    """The original digits through the same pipeline (crop, 20 px box, centre of mass): what photos should give."""
    return np.stack([preprocess(d / 255.0) for d in digits[0]])


@pytest.fixture(scope="module")
def photo_folder(digits, tmp_path_factory):
    """Photos of the real digits: RGB, dark ink on light noisy paper, 7x, off-centre; JPEG (quality 85)."""
    folder = tmp_path_factory.mktemp("photos")
    for i, (digit, offset) in enumerate(zip(digits[0], offsets(N_PHOTOS), strict=True)):
        photo = digit_photo(digit, size=(320, 240), scale=7, offset=offset, seed=i)
        photo.save(folder / f"{i:02d}.jpg", quality=85)
    return folder


def test_photos_of_real_digits_come_out_like_mnist(digits, recentred, photo_folder):
    images, names = load_images(photo_folder)
    assert images.dtype == torch.uint8 and images.shape == (N_PHOTOS, 28, 28)
    assert names == [f"{i:02d}.jpg" for i in range(N_PHOTOS)]
    out = images.numpy()
    assert (out.max(axis=(1, 2)) == 255).all()
    for i, image in enumerate(out):
        cy, cx = centre_of_mass(image)
        assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1, (i, cy, cx)
        top, bottom, left, right = bbox(image)
        assert 19 <= max(bottom - top, right - left) + 1 <= 21, (i, top, bottom, left, right)
        # where the real digit, re-centred the same way, lies (real MNIST digits may touch the edge too)
        assert np.abs(np.subtract(bbox(image), bbox(recentred[i]))).max() <= 1, (i, bbox(image), bbox(recentred[i]))
    same_way = [corr(o, r) for o, r in zip(out, recentred, strict=True)]
    raw = [corr(o, d) for o, d in zip(out, digits[0], strict=True)]
    assert np.mean(same_way) > 0.88 and min(same_way) > 0.6, (np.mean(same_way), min(same_way))
    assert np.mean(raw) > 0.88 and min(raw) > 0.6, (np.mean(raw), min(raw))
    # stroke thickness like MNIST's: as many lit pixels, within 20%
    assert 0.8 < (out > 0).sum() / (digits[0] > 0).sum() < 1.2
    assert 0.75 < out.astype(float).sum() / digits[0].astype(float).sum() < 1.1


def test_png_gray_photos_match_the_jpeg_ones(digits, photo_folder, tmp_path):
    jpeg = load_images(photo_folder)[0][:10].numpy()
    for i, (digit, offset) in enumerate(zip(digits[0][:10], offsets(10), strict=True)):
        digit_photo(digit, size=(320, 240), scale=7, offset=offset, rgb=False, seed=i).save(tmp_path / f"{i:02d}.png")
    png = load_images(tmp_path)[0].numpy()
    scores = [corr(a, b) for a, b in zip(png, jpeg, strict=True)]
    assert np.mean(scores) > 0.93 and min(scores) > 0.75, scores  # a one-pixel shift costs up to ~0.2


def test_mnist_digits_saved_as_png_come_back_nearly_unchanged(digits, tmp_path):
    for i, digit in enumerate(digits[0][:20]):
        Image.fromarray(digit).save(tmp_path / f"{i:02d}.png")
    out = load_images(tmp_path)[0].numpy()
    scores = [corr(o, d) for o, d in zip(out, digits[0], strict=False)]
    assert min(scores) > 0.8 and np.mean(scores) > 0.97, scores  # light on dark: not inverted
    assert np.mean([np.abs(o.astype(int) - d).mean() for o, d in zip(out, digits[0], strict=False)]) < 20


def test_light_on_dark_photo_is_not_inverted(digits, tmp_path):
    digit = digits[0][0]
    digit_photo(digit, size=(320, 240), scale=7, offset=(30, -10)).save(tmp_path / "dark_on_light.png")
    digit_photo(digit, size=(320, 240), scale=7, offset=(30, -10), ink=(240, 240, 230), paper=(20, 20, 25)).save(
        tmp_path / "light_on_dark.png"
    )
    images, names = load_images(tmp_path)
    assert names == ["dark_on_light.png", "light_on_dark.png"]
    dark, light = images.numpy()
    assert light[0].max() == light[-1].max() == light[:, 0].max() == light[:, -1].max() == 0  # black border
    assert corr(light, dark) > 0.95


def test_folder_is_read_in_sorted_order(digits, tmp_path):
    names = ["b.png", "10.png", "a.png", "2.png"]
    for i, name in enumerate(names):
        Image.fromarray(255 - digits[0][i]).save(tmp_path / name)
    images, got = load_images(tmp_path)
    assert got == sorted(names) == ["10.png", "2.png", "a.png", "b.png"]
    for image, name in zip(images.numpy(), got, strict=True):
        assert corr(image, digits[0][names.index(name)]) > 0.9, name


def test_rgba_gray_palette_and_other_formats(digits, tmp_path):
    digit = digits[0][3]
    photo = digit_photo(digit, size=(200, 200), scale=6, offset=(-10, 15), noise=0)
    reference = load_images(_save(photo, tmp_path / "ref.png"))[0][0].numpy()
    alpha = Image.fromarray(digit).resize((168, 168), Image.Resampling.BICUBIC)
    rgba = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # dark ink on a transparent background
    rgba.paste(Image.new("RGBA", (168, 168), (20, 30, 90, 255)), (6, 31), alpha)
    variants = {
        "rgba.png": rgba,
        "gray.png": photo.convert("L"),
        "palette.png": photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16),
        "palette.gif": photo.convert("P"),
        "photo.bmp": photo,
        "photo.tif": photo,
        "photo.webp": photo,
        "bilevel.png": photo.convert("L").point(lambda v: 255 if v > 128 else 0).convert("1"),
    }
    for name, image in variants.items():
        out, names = load_images(_save(image, tmp_path / name))
        assert names == [name] and out.shape == (1, 28, 28), name
        assert corr(out[0].numpy(), reference) > 0.9, name


def _save(image: Image.Image, path):
    image.save(path)
    return path


def product_photo(size=(300, 220), offset=(50, 20), seed=0) -> Image.Image:
    """A T-shirt-like dark striped silhouette on a light studio background, off-centre and small in the frame."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width / 2 + offset[0], height / 2 + offset[1]
    body = (np.abs(xx - cx) < 40) & (np.abs(yy - cy) < 60)
    sleeves = (np.abs(xx - cx) < 70) & (yy > cy - 60) & (yy < cy - 25)
    shirt = body | sleeves
    cloth = 60 + 30 * (np.sin(yy / 3) > 0)  # stripes: texture that must survive
    photo = np.where(shirt, cloth, 240) + np.random.default_rng(seed).normal(0, 4, (height, width))
    gray = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")


def test_fashion_style_inverts_light_background_and_fills_the_frame(tmp_path):
    product_photo().save(tmp_path / "shirt.jpg", quality=90)
    image = load_images(tmp_path / "shirt.jpg", style="fashion")[0][0].numpy()
    assert image.max() == 255
    assert image[0].max() == 0 and image[-1].max() < 60  # black background: the light studio was inverted
    top, bottom, left, right = bbox(image > 30)
    assert left <= 1 and right >= 26, (left, right)  # the sleeves span the width (object fills the frame)
    assert top <= 4 and bottom >= 23 and abs(top - (27 - bottom)) <= 2, (top, bottom)  # centred vertically
    assert image[14, 14] > 80 and image[12:16, 10:18].std() > 10  # light object, stripes kept
    digit_like = load_images(tmp_path / "shirt.jpg", style="mnist")[0][0].numpy()
    assert max(np.subtract(bbox(digit_like)[1::2], bbox(digit_like)[::2])) + 1 <= 21  # mnist: the 20 px box


def test_fashion_style_keeps_a_light_on_dark_image(tmp_path):
    object28 = np.zeros((28, 28), np.uint8)
    object28[:, 6:22] = np.linspace(80, 255, 16).astype(np.uint8)  # already Fashion-MNIST-like: 28 px tall
    Image.fromarray(object28).save(tmp_path / "item.png")
    image = load_images(tmp_path / "item.png", style="fashion")[0][0].numpy()
    assert corr(image, object28) > 0.95 and image[:, :3].max() == 0


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_IMAGES = {
    "truncated.png": lambda d: png_bytes(d)[:60],
    "random.png": lambda d: np.random.default_rng(0).bytes(500),
    "empty.jpg": lambda d: b"",
    "blank.png": lambda d: png_bytes(np.full((100, 120), 230, np.uint8)),
    "noisy_blank.jpg": lambda d: _jpeg(digit_photo(np.zeros((28, 28), np.uint8), seed=3)),
}


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_bad_image_files_stop_with_one_line_naming_them(digits, tmp_path, name):
    (tmp_path / name).write_bytes(BAD_IMAGES[name](digits[0][0]))
    message = one_line_error(ValueError, lambda: load_images(tmp_path / name), name)
    assert ("is blank: no strokes found" in message) == ("blank" in name), message
    Image.fromarray(digits[0][1]).save(tmp_path / "good.png")  # the same file inside a folder
    one_line_error(ValueError, lambda: load_images(tmp_path), name)


def test_folder_skips_non_images_with_one_warning(digits, tmp_path):
    Image.fromarray(digits[0][0]).save(tmp_path / "a.png")
    Image.fromarray(digits[0][1]).save(tmp_path / "b.PNG")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "labels.csv").write_text("7,2")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "sub").mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, names = load_images(tmp_path)
    assert names == ["a.png", "b.PNG"] and images.shape == (2, 28, 28)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "\n" not in messages[0], messages
    assert messages[0].startswith(f"skipped 2 files in {tmp_path} that are not images (labels.csv, notes.txt)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_images(tmp_path / "a.png")  # a single file: no warning
