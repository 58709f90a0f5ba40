"""Test helpers for :mod:`dlbasics.use`: the real MNIST test digits, and "photos" made from them."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from helpers import MNIST_TEST_DIRS, mnist_test_dir
from PIL import Image


def load_mnist_test(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` official MNIST test digits, uint8 ``(n, 28, 28)``, and their labels; skips if absent."""
    folder = mnist_test_dir()
    if folder is None:
        pytest.skip(f"MNIST test split not found in {' or '.join(str(d) for d in MNIST_TEST_DIRS)}")
    images = np.frombuffer(gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes()), np.uint8, offset=16)
    labels = np.frombuffer(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()), np.uint8, offset=8)
    return images.reshape(-1, 28, 28)[:n].copy(), labels[:n].copy()


def digit_photo(
    digit28: np.ndarray,
    size: tuple[int, int] = (240, 180),
    scale: int = 6,
    offset: tuple[int, int] = (0, 0),
    rgb: bool = True,
    ink: tuple[int, int, int] = (20, 30, 90),
    paper: tuple[int, int, int] = (235, 230, 215),
    noise: float = 8.0,
    seed: int = 0,
) -> Image.Image:
    """A "photo" of an MNIST digit: dark ink on light paper, ``scale`` times larger, moved by ``offset``.

    Args:
        digit28: A uint8 ``(28, 28)`` MNIST digit (light on dark).
        size: ``(width, height)`` of the photo.
        scale: Enlargement of the 28x28 digit (bicubic, so the strokes stay smooth).
        offset: ``(dx, dy)`` of the digit's centre from the photo's centre, in pixels.
        rgb: An RGB photo, else gray (``L``).
        ink: RGB colour of the strokes.
        paper: RGB colour of the paper.
        noise: Standard deviation of the Gaussian paper/sensor noise, in 0-255 units.
        seed: Seed of the noise.
    """
    width, height = size
    big = Image.fromarray(digit28).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    alpha = np.zeros((height, width), np.float32)
    top = (height - 28 * scale) // 2 + offset[1]
    left = (width - 28 * scale) // 2 + offset[0]
    glyph = np.asarray(big, np.float32) / 255.0
    ys, xs = slice(max(top, 0), min(top + 28 * scale, height)), slice(max(left, 0), min(left + 28 * scale, width))
    alpha[ys, xs] = glyph[ys.start - top : ys.stop - top, xs.start - left : xs.stop - left]
    alpha = alpha[..., None]
    photo = np.asarray(paper, np.float32) * (1 - alpha) + np.asarray(ink, np.float32) * alpha
    photo += np.random.default_rng(seed).normal(0, noise, photo.shape).astype(np.float32)
    image = Image.fromarray(np.clip(np.rint(photo), 0, 255).astype(np.uint8), "RGB")
    return image if rgb else image.convert("L")
