"""The user's own files for ``dlbasics predict`` and :func:`dlbasics.use.predict`: images, a series, feature rows.

    dlbasics predict --config mnist_cnn --ckpt_path best --data.predict_path my_digits/

Pure functions (torch, numpy and PIL only): each turns a file or a folder into the tensor a model takes, or stops
with one line that names the file, the problem and what to do. Values must be finite *as float32* (what the
models compute in), files must be files and folders folders, and images are bounded in size before decoding.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dlbasics.use.images import SIZE, one_line, preprocess, read_gray

WHAT_TO_PASS = "pass an image file (PNG, JPEG, ...), a folder of images or a .npy array of 28x28 images"
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_CSV_BYTES = 256 << 20  #: a CSV larger than this is refused unread


def load_images(path: str | Path, style: Literal["mnist", "fashion"] = "mnist") -> tuple[Tensor, list[str]]:
    """The user's images, MNIST-like: ``(images, names)``, uint8 ``(N, 28, 28)`` light strokes on black and their
    file names (``"<file>.npy[i]"`` for an array).

    Args:
        path: One image file in any format PIL opens (PNG, JPEG, BMP, GIF, TIFF, WebP, ...; RGB, RGBA, gray or
            palette, any size; JPEG orientation tags applied, only the first frame of an animation), a folder of
            them (see :func:`list_images`), or a ``.npy`` array already in MNIST form (:func:`read_npy_images`).
        style: :func:`dlbasics.use.images.preprocess`'s recipe: ``"mnist"`` for handwritten digits,
            ``"fashion"`` for clothes and shoes.
    """
    if style not in ("mnist", "fashion"):
        raise ValueError(f"unknown image style {style!r}: use 'mnist' (digits) or 'fashion' (clothes)")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r} does not exist: {WHAT_TO_PASS}")
    if path.is_file() and path.suffix.lower() == ".npy":
        return read_npy_images(path)
    files = list_images(path) if path.is_dir() else [path]
    images = [preprocess(read_gray(f), style, name=str(f)) for f in files]
    return torch.from_numpy(np.stack(images)), [f.name for f in files]


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder`` (by extension, not recursively) sorted by name; hidden files (``.DS_Store``)
    are ignored, other files skipped with one warning."""
    extensions = {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
    skipped = [f.name for f in files if f.suffix.lower() not in extensions]
    if skipped:
        many = len(skipped) > 1
        shown = ", ".join(skipped[:3]) + (", …" if len(skipped) > 3 else "")
        warnings.warn(
            f"skipped {len(skipped)} file{'s' if many else ''} in {folder} that "
            f"{'are not images' if many else 'is not an image'} ({shown})",
            stacklevel=3,
        )
    images = [f for f in files if f.suffix.lower() in extensions]
    if not images:
        raise ValueError(f"{folder} holds no images: put PNG, JPEG, BMP, GIF, TIFF or WebP files in it")
    return images


def read_npy_images(path: Path) -> tuple[Tensor, list[str]]:
    """A ``.npy`` array already in MNIST form (any integer type in 0-255 or float in [0, 1]), as uint8."""
    what = "expected uint8 0-255 or float 0-1 images of shape (N, 28, 28) or (28, 28)"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npy array ({one_line(error)}): {what}") from None
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


# --- CSV: a series and feature vectors -------------------------------------------------------------------------------


def read_series(path: str | Path) -> Tensor:
    """A CSV or text file of one column of numbers (a header line is allowed) as a float32 ``(N,)`` tensor; the
    caller checks its length."""
    what = "one number a line (an optional header line first)"
    return _read_csv(Path(path), 1, what, f": pass a CSV with {what}").reshape(-1)


def read_features(path: str | Path, num_features: int) -> Tensor:
    """A CSV of ``num_features`` numbers a row (a header line is allowed) as a float32 ``(N, num_features)`` tensor."""
    return _read_csv(Path(path), num_features, f"{num_features} numbers a row")


def _read_csv(path: Path, columns: int, what: str, hint: str = "") -> Tensor:
    """The numbers of a CSV with ``columns`` numbers a row as a float32 ``(N, columns)`` tensor.

    Blank lines are skipped and only the first line may be non-numeric (a header, dropped); row numbers in
    messages are line numbers of the file. ``what`` says what the file should hold, ``hint`` ends the message
    about a row with another number of columns.
    """
    if path.is_dir():
        raise FileNotFoundError(f"predict_path {str(path)!r} is a folder: pass a CSV file with {what}")
    if not path.is_file():
        raise FileNotFoundError(f"predict_path {str(path)!r} does not exist: pass a CSV with {what}")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise ValueError(f"{path} is larger than {MAX_CSV_BYTES >> 20} MiB: pass at most a few million values")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable text file ({one_line(error)}): pass a CSV with {what}") from None
    rows = [(n, [c.strip() for c in line.split(",")]) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if rows and not all(_is_number(c) for c in rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path} holds no values: pass a CSV with {what}")
    for number, cells in rows:
        if len(cells) != columns:
            raise ValueError(f"{path} row {number} has {len(cells)} columns, expected {columns}{hint}")
        for cell in cells:
            if not _is_number(cell):
                raise ValueError(f"{path} row {number} is not a number: {cell!r}")
            if not math.isfinite(float(cell)):
                raise ValueError(f"{path} row {number} holds {cell!r}: every value must be a finite number")
            if abs(float(cell)) > FLOAT32_MAX:  # finite in Python, infinite once the model holds it as float32
                raise ValueError(f"{path} row {number} holds {cell}, beyond float32's range (±3.4e38): scale the data")
    return torch.tensor([[float(c) for c in cells] for _, cells in rows], dtype=torch.float32)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
