"""Readers of the user's own files for ``dlbasics predict``: images, a series, feature vectors.

    dlbasics predict --config configs/mnist_cnn.yaml --ckpt_path best --data.predict_path my_digits/

Pure functions (torch, numpy and PIL only): each turns a file or a folder into the tensor a model expects, or
stops with one line that names the file, the problem and what to do.

* :func:`load_images` reads photos, scans or drawings of digits (the classic MNIST preprocessing) or of
  clothes (Fashion-MNIST's), or a ``.npy`` array already in MNIST form, into ``(N, 28, 28)`` uint8 images.
* :func:`read_series` reads one column of numbers (a sine-like series to forecast from).
* :func:`read_features` reads rows of ``F`` numbers (the rule classifier's vectors).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

SIZE = 28  #: Side of an MNIST image.
BOX = 20  #: MNIST digits are scaled so that their longer side is this many pixels.
#: Images larger than this (longer side, pixels) are shrunk first: a phone photo needs no 12 megapixels to
#: become 28x28, and the shrinking averages away sensor noise.
WORK_SIZE = 640
#: Less contrast than this (on a 0-1 scale) between the strokes and the background means a blank image.
MIN_CONTRAST = 0.12
WHAT_TO_PASS = "pass an image file (PNG, JPEG, ...), a folder of images or a .npy array of 28x28 images"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _image_extensions() -> set[str]:
    """Extensions of every format PIL can open (``.png``, ``.jpg``, ``.bmp``, ``.gif``, ``.tif``, ``.webp``...)."""
    return {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


# --- images ----------------------------------------------------------------------------------------------------


def load_images(path: str | Path, style: Literal["mnist", "fashion"] = "mnist") -> tuple[Tensor, list[str]]:
    """Read the user's images as MNIST-like ``(N, 28, 28)`` uint8 tensors, light strokes on black.

    ``path`` is one image file, a folder of images, or a ``.npy`` array. Images may be in any format PIL opens
    (PNG, JPEG, BMP, GIF, TIFF, WebP, ...), RGB, RGBA, gray or palette, of any size; JPEG orientation tags are
    applied, and only the first frame of an animated GIF or multi-page TIFF is read. A folder is read in sorted
    file-name order (not recursively); files in it that are not images (by extension) are skipped with one
    warning saying how many, and hidden files (``.DS_Store``) are ignored. A ``.npy`` array of shape
    ``(N, 28, 28)`` or ``(28, 28)``, of uint8 (0-255, or any integer type in that range) or float in [0, 1], is
    taken as-is: it is already in MNIST form.

    Both styles first make a gray image in [0, 1] (RGBA composited on white first), shrink it to at most
    640 px (box filter) and, when it is larger than 64 px, remove speckle noise with a 3x3 median filter.
    The background level is the median of the border pixels.

    ``style="mnist"`` is the classic MNIST preprocessing (LeCun et al.: size-normalise the digit into a 20x20
    box keeping its aspect ratio, anti-aliased, then centre it by its centre of mass in a 28x28 field):

    1. Dark ink on light paper is inverted: the image is inverted when the background is nearer the bright
       end of the image's range than the dark end (so a dim photo of paper is inverted too).
    2. The background is removed: values below a threshold become 0, so paper texture and JPEG noise
       vanish. The threshold is 10 times the border's noise (robust standard deviation) above the
       background level, at least 5% of the contrast and at most 70% of the way to Otsu's threshold (itself
       kept between 20% and 60% of the way to the brightest stroke): a clean drawing keeps its faint
       anti-aliased edges, a noisy photo its paper texture out. The strokes ramp from 0 at the threshold
       to 1 at the median level of the pixels above Otsu's threshold (MNIST's NIST source images were
       black and white, so stroke cores saturate).
    3. The image is cropped to the strokes' bounding box and scaled so that its longer side is 20 px,
       keeping the aspect ratio (PIL bicubic on the float image, which is anti-aliased when shrinking; it
       matched the real MNIST digits' stroke width better than Lanczos or bilinear).
    4. It is pasted into a black 28x28 field, shifted by whole pixels so that the strokes' centre of mass
       is at pixel (14, 14) (parts shifted past the edges are clipped), and rescaled so its maximum is 255.

    ``style="fashion"`` is Fashion-MNIST's preprocessing of Zalando's product photos (trim the background,
    fit the longer side to 28 px, centre the shorter side, negate):

    1. The image is inverted when its background is light (Fashion-MNIST shows light objects on black).
    2. The background is removed: the background level is subtracted, and pixels within 5% of it (or
       within three times the border's noise) become 0; the object keeps its gray levels and texture. Parts
       lighter than a light background vanish, so photograph the item on a plain background.
    3. The image is cropped to the object's bounding box, padded to a square with the object centred, and
       resized to 28x28 (bicubic, anti-aliased): the object fills the frame, with no 20 px box and no centre-of-mass
       shift. Zalando's final sharpening is left out. The maximum is rescaled to 255.

    Args:
        path: An image file, a folder of images or a ``.npy`` file.
        style: ``"mnist"`` for handwritten digits, ``"fashion"`` for clothes and shoes.

    Returns:
        ``(images, names)``: uint8 ``(N, 28, 28)`` images and their file names (relative to the folder;
        ``"<file>.npy[i]"`` for an array).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: An image cannot be decoded, a folder holds no images, an array has the wrong shape, type
            or values, or an image is blank (no strokes after the background is removed). The message is one
            line naming the file.
    """
    if style not in ("mnist", "fashion"):
        raise ValueError(f"unknown image style {style!r}: use 'mnist' (digits) or 'fashion' (clothes)")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r} does not exist: {WHAT_TO_PASS}")
    if path.is_file() and path.suffix.lower() == ".npy":
        return _load_npy(path)
    if path.is_dir():
        files, skipped = _list_images(path)
        if skipped:
            shown = ", ".join(skipped[:3]) + (", …" if len(skipped) > 3 else "")
            warnings.warn(
                f"skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} in {path} that "
                f"{'are not images' if len(skipped) > 1 else 'is not an image'} ({shown})",
                stacklevel=2,
            )
        if not files:
            raise ValueError(f"{path} holds no images: put PNG, JPEG, BMP, GIF, TIFF or WebP files in it")
        names = [f.name for f in files]
    else:
        files, names = [path], [path.name]
    images = [preprocess(_read_gray(f), style, name=str(f)) for f in files]
    return torch.from_numpy(np.stack(images)), names


def _list_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Sorted image files of ``folder`` and the names of the other (non-hidden) files."""
    extensions = _image_extensions()
    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
    images = [f for f in files if f.suffix.lower() in extensions]
    return images, [f.name for f in files if f.suffix.lower() not in extensions]


def _read_gray(path: Path) -> np.ndarray:
    """The first frame of an image file as a float32 gray ``(H, W)`` array in [0, 1]; RGBA composited on white."""
    try:
        with Image.open(path) as image:
            image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image) or image
            return _to_gray(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"{path} is not a readable image ({_one_line(error)}): check the file opens in an image viewer, "
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


def _load_npy(path: Path) -> tuple[Tensor, list[str]]:
    what = "expected uint8 0-255 or float 0-1 images of shape (N, 28, 28) or (28, 28)"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npy array ({_one_line(error)}): {what}") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path} is not a single .npy array: {what}")
    shape = tuple(array.shape)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (SIZE, SIZE):
        hint = " (reshape it with a.reshape(-1, 28, 28))" if shape[-1:] == (SIZE * SIZE,) else ""
        raise ValueError(f"{path} has shape {shape}, {what}{hint}")
    if len(array) == 0:
        raise ValueError(f"{path} holds no images: {what}")
    if array.dtype == np.bool_ or array.dtype.kind not in "uif":
        raise ValueError(f"{path} has dtype {array.dtype}, {what}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"{path} holds NaN or infinite values: {what}")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0 or hi > 1:
            hint = " (divide 0-255 values by 255)" if hi <= 255 and lo >= 0 else ""
            raise ValueError(f"{path} holds values in [{lo:g}, {hi:g}], {what}{hint}")
        array = np.rint(array.astype(np.float64) * 255)
    elif int(array.min()) < 0 or int(array.max()) > 255:
        raise ValueError(f"{path} holds values in [{int(array.min())}, {int(array.max())}], {what}")
    names = [f"{path.name}[{i}]" for i in range(len(array))]
    for image, name in zip(array, names, strict=True):
        if not image.any():
            raise ValueError(f"{path.parent / name} is blank: no strokes found (every pixel is 0)")
    return torch.from_numpy(array.astype(np.uint8)), names


def preprocess(gray: np.ndarray, style: Literal["mnist", "fashion"] = "mnist", name: str = "image") -> np.ndarray:
    """One gray ``(H, W)`` float image in [0, 1] to a uint8 ``(28, 28)`` MNIST-like image (see :func:`load_images`).

    Args:
        gray: The image, dark or light background.
        style: ``"mnist"`` or ``"fashion"``.
        name: Named in the error raised for a blank image.

    Returns:
        The ``(28, 28)`` uint8 image, light on black, maximum 255.
    """
    gray = _denoise(_shrink(np.asarray(gray, dtype=np.float32)))
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(border))
    lo, hi = float(gray.min()), float(gray.max())
    # mnist: is the background nearer the bright end of the range? fashion: is it light?
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
    padded = np.pad(gray, 1, mode="edge")
    h, w = gray.shape
    shifted = np.stack([padded[i : i + h, j : j + w] for i in range(3) for j in range(3)])
    return np.median(shifted, axis=0).astype(np.float32)


def _otsu(values: np.ndarray, lo: float, hi: float, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` between ``lo`` and ``hi``."""
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mass = np.cumsum(counts * centres)
    total, total_mass = weight[-1], mass[-1]
    w0, w1 = weight[:-1], total - weight[:-1]
    valid = (w0 > 0) & (w1 > 0)
    if not valid.any():
        return (lo + hi) / 2
    m0 = mass[:-1] / np.maximum(w0, 1)
    m1 = (total_mass - mass[:-1]) / np.maximum(w1, 1)
    between = np.where(valid, w0 * w1 * (m0 - m1) ** 2, -1)
    return float(edges[1:][np.argmax(between)])


def _strokes(gray: np.ndarray, background: float, hi: float, noise: float) -> np.ndarray:
    """Background 0, strokes ramping up to 1 at their median level (light strokes on a dark background)."""
    contrast = hi - background
    otsu = min(max(_otsu(gray, background, hi), background + 0.2 * contrast), background + 0.6 * contrast)
    # as low as the noise allows (a clean drawing keeps its faint anti-aliased edges), at most 70% of the way
    # to Otsu's threshold (a noisy photo still keeps the strokes' soft edges)
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
    """Scale the cropped strokes into a 20 px box and centre their mass at pixel (14, 14) of a 28x28 field."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    digit = _resize(ink, max(1, round(w * scale)), max(1, round(h * scale)))
    mass = digit.sum()
    if mass <= 0:
        return np.zeros((SIZE, SIZE), np.float32)
    cy = float((digit.sum(axis=1) * np.arange(digit.shape[0])).sum() / mass)
    cx = float((digit.sum(axis=0) * np.arange(digit.shape[1])).sum() / mass)
    top, left = round(SIZE // 2 - cy), round(SIZE // 2 - cx)
    field = np.zeros((SIZE, SIZE), np.float32)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + digit.shape[0], SIZE), min(left + digit.shape[1], SIZE)
    if y1 > y0 and x1 > x0:
        field[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return field


def _fashion_field(ink: np.ndarray) -> np.ndarray:
    """Pad the cropped object to a centred square and resize it to 28x28: it fills the frame."""
    h, w = ink.shape
    side = max(h, w)
    square = np.zeros((side, side), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = ink
    return _resize(square, SIZE, SIZE)


# --- CSV: a series and feature vectors ---------------------------------------------------------------------------


def _read_rows(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """Non-blank lines of a CSV as ``(line number, cells)``; a non-numeric first line (a header) is dropped."""
    if not path.is_file():
        raise FileNotFoundError(f"predict_path {str(path)!r} does not exist: pass a CSV with {what}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable text file ({_one_line(error)}): pass a CSV with {what}") from None
    rows = [(n, [c.strip() for c in line.split(",")]) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if rows and not all(_is_number(c) for c in rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path} holds no values: pass a CSV with {what}")
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse(path: Path, number: int, cells: list[str]) -> list[float]:
    values = []
    for cell in cells:
        if not _is_number(cell):
            raise ValueError(f"{path} row {number} is not a number: {cell!r}")
        value = float(cell)
        if not math.isfinite(value):
            raise ValueError(f"{path} row {number} holds {cell!r}: every value must be a finite number")
        values.append(value)
    return values


def read_series(path: str | Path) -> Tensor:
    """Read a CSV or text file of one column of numbers (a header line is allowed) into a float32 1-D tensor.

    Only the first line may be non-numeric (it is then taken as a header); blank lines are skipped. Row
    numbers in messages are line numbers of the file. The caller checks the length against its window.

    Args:
        path: The file.

    Returns:
        The values, float32, shape ``(N,)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: No values, a non-numeric cell after the header, more than one column, or NaN/inf.
    """
    path = Path(path)
    what = "one number a line (an optional header line first)"
    values = []
    for number, cells in _read_rows(path, what):
        if len(cells) != 1:
            raise ValueError(f"{path} row {number} has {len(cells)} columns, expected 1: pass a CSV with {what}")
        values += _parse(path, number, cells)
    return torch.tensor(values, dtype=torch.float32)


def read_features(path: str | Path, num_features: int) -> Tensor:
    """Read a CSV of ``num_features`` numbers a row (a header line is allowed) into a float32 ``(N, F)`` tensor.

    Only the first line may be non-numeric (it is then taken as a header); blank lines are skipped. Row
    numbers in messages are line numbers of the file.

    Args:
        path: The CSV file.
        num_features: Numbers a row (``F``).

    Returns:
        The rows, float32, shape ``(N, num_features)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: No rows, a row with another number of columns, a non-numeric cell, or NaN/inf.
    """
    path = Path(path)
    rows = []
    for number, cells in _read_rows(path, f"{num_features} numbers a row"):
        if len(cells) != num_features:
            raise ValueError(f"{path} row {number} has {len(cells)} columns, expected {num_features}")
        rows.append(_parse(path, number, cells))
    return torch.tensor(rows, dtype=torch.float32)
