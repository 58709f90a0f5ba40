"""Photos, scans and drawings turned into MNIST form: the digits' preprocessing and Fashion-MNIST's.

    dlbasics predict --config mnist_cnn --ckpt_path best --data.predict_path my_digits/

:func:`preprocess` is the recipe (numpy and PIL only); :func:`read_gray` decodes one file, refusing images over
:data:`MAX_PIXELS` before decoding them (a 12000x12000 PNG would take gigabytes to become 28x28).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from torch import Tensor

SIZE = 28  #: Side of an MNIST image.
BOX = 20  #: MNIST digits are scaled so that their longer side is this many pixels.
#: Images larger than this (longer side, pixels) are shrunk first: a phone photo needs no 12 megapixels to
#: become 28x28, and the shrinking averages away sensor noise.
WORK_SIZE = 640
#: Less contrast than this (on a 0-1 scale) between the strokes and the background means a blank image.
MIN_CONTRAST = 0.12
MAX_PIXELS = 64_000_000  #: larger images are refused unread (a 200 MP phone photo: shrink it first)


def to_pixels(images: Tensor) -> Tensor:
    """uint8 ``(N, 28, 28)`` images → float pixels in [0, 1] ``(N, 1, 28, 28)``, what the models take."""
    return images.unsqueeze(1).float().mul_(1.0 / 255.0)


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def read_gray(path: Path) -> np.ndarray:
    """The first frame of an image file as a float32 gray ``(H, W)`` array in [0, 1]; RGBA composited on white."""
    try:
        with warnings.catch_warnings():  # PIL's multi-line bomb warning: the size is checked here, in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise MemoryError(f"{image.width}x{image.height} pixels")
                return _to_gray(ImageOps.exif_transpose(image) or image)
    except MemoryError as error:
        raise ValueError(
            f"{path} is {error}, over the {MAX_PIXELS // 10**6} MP this reads: shrink it first (the model sees 28x28)"
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"{path} is not a readable image ({one_line(error)}): check the file opens in an image viewer, "
            "or re-save it as PNG"
        ) from None


def _to_gray(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16/32-bit gray: stretch to [0, 1]
        gray = np.asarray(image, dtype=np.float64)
        lo, hi = float(gray.min()), float(gray.max())
        return ((gray - lo) / (hi - lo) if hi > lo else np.zeros_like(gray)).astype(np.float32)
    if image.mode == "P" or "A" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode != "L":
        image = image.convert("RGB").convert("L")  # ITU-R 601 luma
    return np.asarray(image, dtype=np.float32) / 255.0


def preprocess(gray: np.ndarray, style: Literal["mnist", "fashion"] = "mnist", name: str = "image") -> np.ndarray:
    """One gray ``(H, W)`` float image in [0, 1] to a uint8 ``(28, 28)`` MNIST-like image, light on black.

    Both styles shrink it to at most 640 px, remove speckle noise, take the median of the border pixels as the
    background level, invert it so that the object is light on dark, remove the background, crop to the object,
    place it in a 28x28 field and rescale its maximum to 255: ``style="mnist"`` as the classic MNIST preprocessing
    (LeCun et al.; :func:`_strokes`, :func:`_mnist_field`), ``style="fashion"`` as Fashion-MNIST's of Zalando's
    product photos (:func:`_fashion_field`). ``name`` is named in the error raised for a blank image.
    """
    gray = _denoise(_shrink(np.asarray(gray, dtype=np.float32)))
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(border))
    lo, hi = float(gray.min()), float(gray.max())
    # mnist: dark ink on light paper is inverted when the background is nearer the bright end of the image's range
    # than the dark end (so a dim photo of paper is inverted too); fashion: when it is light (Fashion-MNIST shows
    # light objects on black)
    invert = hi - background < background - lo if style == "mnist" else background > 0.5
    if invert:
        gray, background, lo, hi = 1 - gray, 1 - background, 1 - hi, 1 - lo
    contrast = hi - background
    if contrast < MIN_CONTRAST:
        raise ValueError(
            f"{name} is blank: no strokes found (contrast {contrast:.2f} against the background): "
            "use a picture with one dark-on-light or light-on-dark object"
        )
    noise = 1.4826 * float(np.median(np.abs(border - np.median(border))))  # robust std of the border
    if style == "mnist":
        ink = _strokes(gray, background, hi, noise)
    else:
        # the object keeps its gray levels and texture (photograph it on a plain background: parts lighter than a
        # light background vanish)
        ink = np.clip(gray - background, 0, None)
        ink[ink <= max(0.05, 3 * noise)] = 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0:
        raise ValueError(f"{name} is blank: no strokes found after removing the background")
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    out = _mnist_field(ink) if style == "mnist" else _fashion_field(ink)
    if out.max() <= 0:
        raise ValueError(f"{name} is blank: no strokes found after resizing to 28x28")
    return np.rint(np.clip(out / out.max(), 0, 1) * 255).astype(np.uint8)


def _shrink(gray: np.ndarray) -> np.ndarray:
    factor = math.ceil(max(gray.shape) / WORK_SIZE)
    if factor <= 1:
        return gray
    return np.asarray(Image.fromarray(gray, mode="F").reduce(factor), dtype=np.float32)


def _denoise(gray: np.ndarray) -> np.ndarray:
    """3x3 median filter for images larger than 64 px (small images are drawings: every pixel counts)."""
    if min(gray.shape) <= 64:
        return gray
    return np.asarray(Image.fromarray(gray, mode="F").filter(ImageFilter.MedianFilter(3)), dtype=np.float32)


def _otsu(values: np.ndarray, lo: float, hi: float) -> float:
    """Otsu's threshold of ``values`` between ``lo`` and ``hi``."""
    counts, edges = np.histogram(values, bins=256, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mass = np.cumsum(counts * centres)
    w0, w1 = weight[:-1], weight[-1] - weight[:-1]
    valid = (w0 > 0) & (w1 > 0)
    if not valid.any():
        return (lo + hi) / 2
    m0 = mass[:-1] / np.maximum(w0, 1)
    m1 = (mass[-1] - mass[:-1]) / np.maximum(w1, 1)
    between = np.where(valid, w0 * w1 * (m0 - m1) ** 2, -1)
    return float(edges[1:][np.argmax(between)])


def _strokes(gray: np.ndarray, background: float, hi: float, noise: float) -> np.ndarray:
    """Background 0, strokes ramping up to 1 at their median level (light strokes on a dark background).

    Values below a threshold become 0, so paper texture and JPEG noise vanish. The threshold follows the border's
    noise (robust standard deviation), kept below Otsu's threshold: a clean drawing keeps its faint anti-aliased
    edges, a noisy photo its paper texture out. The pixels above Otsu's threshold are the stroke cores, and they
    saturate (MNIST's NIST source images were black and white).
    """
    contrast = hi - background
    otsu = min(max(_otsu(gray, background, hi), background + 0.2 * contrast), background + 0.6 * contrast)
    threshold = background + min(0.7 * (otsu - background), max(10 * noise, 0.05 * contrast))
    above = gray[gray > otsu]
    full = max(float(np.median(above)) if above.size else hi, threshold + 0.05 * contrast)
    return np.clip((gray - threshold) / (full - threshold), 0, 1).astype(np.float32)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    resized = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F").resize(
        (width, height), Image.Resampling.BICUBIC
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)  # no ringing below 0 or above full ink


def _mnist_field(ink: np.ndarray) -> np.ndarray:
    """Scale the cropped strokes into a 20 px box and centre their mass at pixel (14, 14) of a 28x28 field.

    PIL bicubic on the float image (anti-aliased when shrinking) matched the real MNIST digits' stroke width
    better than Lanczos or bilinear. The shift is by whole pixels; parts shifted past the edges are clipped.
    """
    h, w = ink.shape
    scale = BOX / max(h, w)
    digit = _resize(ink, max(1, round(w * scale)), max(1, round(h * scale)))
    mass = digit.sum()
    if mass <= 0:
        return np.zeros((SIZE, SIZE), np.float32)
    cy = float((digit.sum(axis=1) * np.arange(digit.shape[0])).sum() / mass)
    cx = float((digit.sum(axis=0) * np.arange(digit.shape[1])).sum() / mass)
    top, left = round(SIZE // 2 - cy), round(SIZE // 2 - cx)  # where the digit's corner goes in the field
    canvas = np.pad(digit, SIZE)  # the field is the 28x28 window of this canvas at (28 - top, 28 - left)
    return canvas[SIZE - top : 2 * SIZE - top, SIZE - left : 2 * SIZE - left]


def _fashion_field(ink: np.ndarray) -> np.ndarray:
    """Pad the cropped object to a centred square and resize it to 28x28 (bicubic, anti-aliased): it fills the frame.

    Zalando's recipe (trim the background, fit the longer side to 28 px, centre the shorter side, negate) has no
    20 px box and no centre-of-mass shift; its final sharpening is left out.
    """
    h, w = ink.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return _resize(np.pad(ink, ((top, side - h - top), (left, side - w - left))), SIZE, SIZE)
