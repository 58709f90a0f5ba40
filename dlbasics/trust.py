"""What a checkpoint's hyperparameters may name: the config's model class, an optimizer and a schedule, nothing else.

    dlbasics test --config rule_classifier --ckpt_path evil.ckpt    # refused in one line, before any import

LightningCLI copies a checkpoint's ``hyper_parameters`` into the config and jsonargparse imports and calls every
``class_path`` there, so :func:`check` walks them first: the model must be the config's own class, ``optimizer`` an
optimizer class and ``lr_scheduler`` a schedule class that are *already imported* from torch, dlbasics or a package
the config itself names, with plain-data arguments; any other ``class_path``, any unknown key, any text where a
parameter takes none is refused with one line naming the file and the key.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch

#: The instantiator LightningCLI records in hyperparameters; Lightning itself allows only its own.
INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"
#: Packages whose classes a checkpoint may name, besides those the config names itself.
TRUSTED = ("torch", "dlbasics")
MAX_VALUES = 10_000  #: hyperparameter values (keys, list items) a checkpoint may hold
#: Written into every checkpoint; a checkpoint older than its model can read is refused (:func:`check`).
FORMAT_VERSION = 2
#: Why a model cannot read a format older than ``version``: ``{model: (version, what changed)}``.
BREAKING_CHANGES = {
    None: (1, "optimizers given as strings, MNIST models fed standardized images"),  # every model
    "dlbasics.models.mnist.MNISTCNN": (2, "BatchNorm before the max-pool in every block"),
}
FROM_FIT = "pass a .ckpt written by `dlbasics fit`"  #: how a refused checkpoint's message ends
COMPONENTS = {"optimizer": torch.optim.Optimizer, "lr_scheduler": torch.optim.lr_scheduler.LRScheduler}


def loaded(name: str) -> Any:
    """The object ``name`` ("pkg.module.Attr") names, looked up only among modules already imported; else ``None``.

    Nothing is imported and no module ``__getattr__`` runs (``inspect.getattr_static``), so a name can be checked
    before anything it names gets a chance to execute.
    """
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        obj = sys.modules.get(".".join(parts[:split]))
        if obj is None:
            continue
        try:
            for attr in parts[split:]:
                obj = inspect.getattr_static(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def model_name(checkpoint: dict[str, Any]) -> str | None:
    """The model class a checkpoint names: its ``_class_path`` (LightningCLI), else what dlbasics recorded."""
    hparams = checkpoint.get("hyper_parameters") or {}
    return hparams.get("_class_path") or checkpoint.get("dlbasics_model")


def full_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def read(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as plain data (``torch.load(weights_only=True)``: tensors, numbers, strings).

    Raises:
        FileNotFoundError: Nothing there, or a folder.
        ValueError: Not a readable Lightning checkpoint (truncated, not a checkpoint, or holding Python objects).
    """
    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"checkpoint {str(path)!r} {problem}: pass a .ckpt file, 'last' or 'best'")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # the file's name and the reason, not torch's unpickling essay
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}): {FROM_FIT}") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ValueError(f"{path} is not a Lightning checkpoint (no state_dict): {FROM_FIT}")
    return checkpoint


def is_readable(path: Path) -> bool:
    try:
        read(path)
    except (OSError, ValueError):
        return False
    return True


def check(checkpoint: dict[str, Any], path: Path, model: type, packages: set[str] = frozenset()) -> None:
    """Refuse, in one line naming ``path``, a checkpoint older than its model can read or whose hyperparameters
    would make the CLI run foreign code: everything it must pass before anything is built from it.

    Args:
        model: The model class the config builds; the checkpoint must be of exactly this class.
        packages: Top-level packages the config names (its model, optimizer and schedule); with :data:`TRUSTED`,
            the only packages whose classes the checkpoint may name.
    """
    version = checkpoint.get("dlbasics_format_version", 0)
    for name in (None, checkpoint.get("dlbasics_model")):
        oldest, change = BREAKING_CHANGES.get(name, (0, ""))
        if version < oldest:
            raise ValueError(f"{path} was written by an older dlbasics ({change}): retrain it with `dlbasics fit`")
    hparams = checkpoint.get("hyper_parameters") or {}
    where = f"checkpoint {path}: hyper_parameters"
    if not isinstance(hparams, dict):
        raise ValueError(f"{where} is not a mapping: {FROM_FIT}")
    if _count(hparams) > MAX_VALUES:
        raise ValueError(f"{where} holds more than {MAX_VALUES} values: refusing to parse it")
    stored = model_name(checkpoint)
    cls = _class(stored, L.LightningModule, f"{where}._class_path", packages) if stored else model
    if cls is not model:
        from dlbasics.resources import configs_building  # the shipped configs, for the hint

        names = configs_building(full_name(cls), cls.__name__)
        hint = f"--config {' or '.join(names[:3])}" if names else f"a config building {cls.__name__}"
        raise ValueError(
            f"checkpoint {path} is a {cls.__name__}; the config builds a {model.__name__}: pass {hint} or a "
            f"{model.__name__} checkpoint"
        )
    params = inspect.signature(model).parameters
    for key, value in hparams.items():
        if key == "_instantiator" and value != INSTANTIATOR:
            raise ValueError(f"{where}._instantiator {value!r} is not LightningCLI's: refusing it")
        if key in ("_class_path", "_instantiator"):
            continue
        if key not in params:
            raise ValueError(f"{where}.{key} is not a parameter of {model.__name__}: refusing it")
        if key in COMPONENTS:
            _check_component(value, COMPONENTS[key], f"{where}.{key}", packages)
        else:
            takes_text = any(word in str(params[key].annotation) for word in ("str", "Literal"))
            _check_data(value, takes_text, f"{where}.{key}")


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_count(v) for v in value.values())
    if isinstance(value, list | tuple):
        return len(value) + sum(_count(v) for v in value)
    return 1


def _class(name: Any, base: type, where: str, packages: set[str]) -> type:
    """The class ``name`` refers to if it is already imported, from an allowed package, and a ``base``."""
    kind = {L.LightningModule: "a LightningModule", torch.optim.Optimizer: "an optimizer"}.get(base, "an LR scheduler")
    if not isinstance(name, str):
        raise ValueError(f"{where} is {type(name).__name__}, not a class path: refusing it")
    allowed = sorted({*TRUSTED, *packages})
    obj = loaded(name) if name.split(".")[0] in allowed else None
    if not (isinstance(obj, type) and issubclass(obj, base)):
        older = " (an older dlbasics' name? retrain with `dlbasics fit`)" if name.startswith("dlbasics.") else ""
        raise ValueError(
            f"{where} {name!r} is not {kind} class imported from {' or '.join(allowed)}: refusing it, a checkpoint "
            f"is data{older}"
        )
    return obj


def _check_component(value: Any, base: type, where: str, packages: set[str]) -> None:
    """An injected optimizer/schedule: ``None``, a class path, or ``{class_path, init_args}`` of plain data."""
    if value is None:
        return
    if isinstance(value, str):
        value = {"class_path": value}
    if not isinstance(value, dict) or set(value) - {"class_path", "init_args"}:
        raise ValueError(f"{where} must be a class_path with init_args: refusing {value!r:.80}")
    cls = _class(value.get("class_path"), base, f"{where}.class_path", packages)
    params = inspect.signature(cls).parameters
    init_args = value.get("init_args") or {}
    if not isinstance(init_args, dict):
        raise ValueError(f"{where}.init_args is not a mapping: refusing it")
    for key, arg in init_args.items():
        if key not in params:
            raise ValueError(f"{where}.init_args.{key} is not a parameter of {cls.__name__}: refusing it")
        # text only where the parameter's default is text (an option such as anneal_strategy='cos')
        _check_data(arg, isinstance(params[key].default, str), f"{where}.init_args.{key}")


def _check_data(value: Any, takes_text: bool, where: str) -> None:
    """Plain data only: no ``class_path`` anywhere, text only where the parameter takes text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_path" in item or "_class_path" in item:
                raise ValueError(f"{where} names a class ({item.get('class_path') or item.get('_class_path')!r}): "
                                 "only optimizer and lr_scheduler may: refusing it")  # fmt: skip
            stack += item.values()
        elif isinstance(item, list | tuple):
            stack += item
        elif isinstance(item, str) and not takes_text:
            raise ValueError(f"{where} is text ({item!r:.80}) where the parameter takes none: refusing it")
        elif not isinstance(item, str | int | float | bool | type(None) | torch.Tensor):
            raise ValueError(f"{where} holds a {type(item).__name__}: refusing it")
