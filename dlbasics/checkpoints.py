"""Checkpoints: found for this experiment, read once as data, checked before use, written atomically.

    dlbasics test --config sine_gru --ckpt_path best    # the newest readable SineGRU checkpoint of this experiment

:func:`open_checkpoint` is what the CLI does with ``--ckpt_path``: resolve ``last``/``best`` (:func:`dlbasics.runs.
find_checkpoint`) or download a URL, read the file once (``weights_only``), refuse one of an older dlbasics, of
another model or naming code (:func:`dlbasics.trust.check`), and say which architecture settings differ from the config
(the checkpoint's are used). :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file beside it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info

from dlbasics import trust
from dlbasics.runs import atomic_write, experiment, find_checkpoint

KEYWORDS = ("hpc", "registry")  #: Lightning's own ``ckpt_path`` keywords, passed through
MAX_DOWNLOAD = 4 << 30  #: bytes a downloaded checkpoint may have


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing a local file to a temporary file beside it and renaming it.

    Lightning's own writer stages the file in the system's temp folder and moves it, which is a copy when that is
    another filesystem: a full disk then leaves half a ``last.ckpt``. Here the previous file stays until the new
    one is complete. Remote paths (``s3://`` …) go to Lightning's writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path) or storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)
        try:
            with atomic_write(path) as tmp:
                torch.save(checkpoint, tmp)
        except (OSError, RuntimeError) as err:  # torch reports a full disk as "unexpected pos …" of its zip writer
            free = shutil.disk_usage(Path(path).parent).free / 2**20
            reason = " ".join(str(err).split())[:120]
            raise OSError(f"could not write {path} ({reason}); {free:.1f} MiB free on its disk: the previous "
                          "checkpoint is kept") from None  # fmt: skip


def open_checkpoint(config: Any) -> tuple[str, dict[str, Any] | None]:
    """The local path to hand to Lightning and the checked checkpoint (``None`` for Lightning's keywords), from the
    ``ckpt_path`` of the subcommand's parsed ``config``, before Lightning reads the file."""
    value = str(config.ckpt_path)
    if value in KEYWORDS or value.startswith("registry:"):
        return value, None
    model_config, data_config = plain(config.model.as_dict()), plain(config.data.as_dict() if config.data else {})
    wanted = experiment({"model": model_config, "data": data_config})
    if "://" in value:
        path = download(value)
    elif value in ("last", "best"):
        path, skipped = find_checkpoint(value, wanted, trust.is_readable)
        passed = f" (passed over the unreadable {', '.join(map(str, skipped))})" if skipped else ""
        rank_zero_info(f"--ckpt_path {value}: {path}{passed}")
    else:
        path = Path(value)
    checkpoint = trust.read(path)
    model = trust.loaded(model_config["class_path"])
    args = model_config.get("init_args") or {}
    components = [model_config, args.get("optimizer"), args.get("lr_scheduler")]
    packages = {str(c.get("class_path", c)).split(".")[0] for c in components if c}
    trust.check(checkpoint, path, model, packages)
    hparams = checkpoint.get("hyper_parameters") or {}
    changed = [  # the architecture settings (runs.experiment's) where the config and the checkpoint differ
        f"{key} {hparams[key]} (the config: {value})"
        for key, value in wanted["architecture"].items()
        if key in hparams and plain(hparams[key]) != plain(value)
    ]
    if changed:
        rank_zero_info(f"{path} was trained with {', '.join(changed)}: the checkpoint's are used")
    return str(path), checkpoint


def plain(value: Any) -> Any:
    """``value`` with tuples as lists, as YAML gives them back, for comparing configs and hyperparameters."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def download(url: str) -> Path:
    """Download a checkpoint into a temporary folder (removed at exit), so it is checked like a local file."""
    import fsspec

    folder = Path(tempfile.mkdtemp(prefix="dlbasics-ckpt-"))
    atexit.register(shutil.rmtree, folder, True)
    target = folder / (Path(urlsplit(url).path).name or "downloaded.ckpt")
    try:
        with fsspec.open(url, "rb") as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 22):
                if dst.tell() + len(chunk) > MAX_DOWNLOAD:
                    raise ValueError(f"larger than {MAX_DOWNLOAD >> 30} GiB")
                dst.write(chunk)
    except Exception as err:
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise ValueError(
            f"could not download --ckpt_path {url} ({reason}): check the address, or pass a file"
        ) from None
    return target
