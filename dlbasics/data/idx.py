"""The MNIST-format IDX files: found (or downloaded by torchvision), decompressed once, verified, read as tensors.

    dlbasics fit --config fashion_mnist_cnn   # MNISTDataModule reads its splits through read_split

The four files are found in ``root`` itself (``*-ubyte.gz``, as Debian's ``dataset-fashion-mnist`` installs
them) or in torchvision's layout ``root/<MNIST|FashionMNIST>/raw``, where torchvision's classes download them
when ``download`` is on. A ``.gz`` is decompressed once into the user cache; the contents are checked against
the official md5 sums (once per file: later runs skip the hashing) and read straight into tensors. Every problem
is one line naming the file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets import MNIST, FashionMNIST

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
DATASETS = {"mnist": MNIST, "fashion_mnist": FashionMNIST}
# md5 of the decompressed official files (Debian re-compresses, so the .gz sums differ).
RAW_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}


def locate_split(root: str | Path, dataset: str, train: bool, download: bool = False) -> list[Path]:
    """The images and labels files of a split, downloaded by torchvision first if missing and ``download``.

    Raises:
        FileNotFoundError: The files are not there and ``download`` is off.
        RuntimeError: The download failed.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    root, cls = Path(root), DATASETS[dataset]
    stems = [f"{'train' if train else 't10k'}-{kind}" for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    paths = [_locate(root, cls, stem) for stem in stems]
    if None in paths and download:
        made = [p for p in (root, root / cls.__name__, root / cls.__name__ / "raw") if not p.exists()]
        try:
            cls(str(root), train=train, download=True)
        except (RuntimeError, OSError) as err:
            for folder in reversed(made):  # torchvision made them before it failed: leave no empty folders
                with contextlib.suppress(OSError):
                    folder.rmdir()
            reason = [ln.strip(" <>") for ln in str(err).splitlines() if ln.strip()][-1:] or [type(err).__name__]
            raise RuntimeError(
                f"could not download {dataset} into {root / cls.__name__ / 'raw'} ({reason[0]}); "
                f"{_how_to_get(dataset, root)}"
            ) from None
        paths = [_locate(root, cls, stem) for stem in stems]
    if None in paths:
        missing = ", ".join(f"{s}[.gz]" for s, p in zip(stems, paths, strict=True) if p is None)
        raise FileNotFoundError(
            f"{dataset} files not found: expected {missing} in {root} or "
            f"{root / cls.__name__ / 'raw'}; {_how_to_get(dataset, root)}"
        )
    return paths


def read_split(
    root: str | Path, dataset: str, train: bool, download: bool = False, verify: bool = True
) -> tuple[Tensor, Tensor]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 of the official train or test split.

    Raises:
        FileNotFoundError: The files are not there and ``download`` is off.
        ValueError: A file is truncated, corrupted, not the official one (``verify``), or the counts differ.
    """
    paths = locate_split(root, dataset, train, download)
    raws = [_decompressed(p) for p in paths]
    arrays = []
    for path, raw, ndim in zip(paths, raws, (3, 1), strict=True):
        arrays.append(_read_idx(path, raw, ndim))
        expected = RAW_MD5[dataset][path.name.removesuffix(".gz")]
        if verify and (got := _verified_md5(raw, expected)) != expected:
            raise ValueError(
                f"{path} is not the official {dataset} file (md5 of its contents {got}, expected "
                f"{expected}): replace it, or set data.verify: false for your own IDX files"
            )
    images, labels = arrays[0], arrays[1].long()
    if len(images) != len(labels):
        raise ValueError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels")
    if len(labels) and labels.max() > 9:
        raise ValueError(f"{paths[1]} holds label {int(labels.max())}: MNIST-style labels are the classes 0 to 9")
    return images, labels


def _how_to_get(dataset: str, root: Path) -> str:
    apt = f"`apt-get install dataset-fashion-mnist` (installs {DEBIAN_FASHION_MNIST}), " * (dataset == "fashion_mnist")
    return f"get them with {apt}data.download: true on a machine with internet, or copy the four *-ubyte.gz into {root}"


def _locate(root: Path, cls: type, stem: str) -> Path | None:
    for folder in (root / cls.__name__ / "raw", root):
        for name in (stem, f"{stem}.gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _decompressed(path: Path) -> Path:
    """``path`` itself, or for a ``.gz`` its contents, extracted once into the user cache."""
    if path.suffix != ".gz":
        return path
    stat = path.resolve().stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = _user_cache("idx")
    target = cache / f"{path.stem}-{key}"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, delete=False) as tmp:
        try:
            with gzip.open(path, "rb") as src:
                shutil.copyfileobj(src, tmp)
        except (OSError, EOFError, zlib.error) as err:
            Path(tmp.name).unlink()
            raise ValueError(f"{path} is truncated or corrupted ({err}): download or copy it again") from None
    os.replace(tmp.name, target)  # atomic: concurrent processes never read a half-written file
    return target


def _read_idx(path: Path, raw: Path, ndim: int) -> Tensor:
    """The uint8 array ``(N, …)`` of IDX file ``raw`` (``path`` decompressed), once its header (uint8, ``ndim``
    dims) is checked and the file holds exactly the data the header announces."""
    with open(raw, "rb") as f:
        header = f.read(4 + 4 * ndim)
    dims = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)] if len(header) > 4 else []
    if header[:4] != bytes([0, 0, 8, ndim]) or len(dims) != ndim or (ndim == 3 and dims[1:] != [28, 28]):
        kind = "images (N x 28 x 28)" if ndim == 3 else "labels"
        raise ValueError(f"{path} is not an IDX file of uint8 {kind}: the header is {header.hex() or 'empty'}")
    expected = len(header) + int(torch.tensor(dims).prod())
    if (size := raw.stat().st_size) != expected:
        raise ValueError(f"{path} holds {size} bytes but its header announces {expected}: the file is truncated")
    return torch.from_numpy(np.fromfile(raw, dtype=np.uint8, offset=len(header))).view(dims)


def _user_cache(folder: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dlbasics" / folder


def _verified_md5(path: Path, expected: str) -> str:
    """The md5 of ``path``'s contents, hashed only if no earlier run verified the same file unchanged.

    A sum equal to ``expected`` is remembered in the user cache under the file's resolved path, size and
    modification time (nanoseconds); a file rewritten since gets a new key and is hashed again.
    """
    stat = path.resolve().stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{expected}"
    marker = _user_cache("md5") / hashlib.sha1(key.encode()).hexdigest()[:24]
    with contextlib.suppress(OSError):
        if marker.read_text() == key:
            return expected
    got = _md5(path)
    if got == expected:
        with contextlib.suppress(OSError):  # a read-only cache only costs the hashing next time
            marker.parent.mkdir(parents=True, exist_ok=True)
            tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
            tmp.write_text(key)
            os.replace(tmp, marker)  # atomic: a concurrent reader sees the whole key or none
    return got


def _md5(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            md5.update(chunk)
    return md5.hexdigest()
