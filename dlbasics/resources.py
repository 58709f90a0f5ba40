"""The experiment configs that ship with dlbasics, found by name wherever dlbasics is installed.

    python -m dlbasics.resources             # where the configs are, and their names
    dlbasics fit --config mnist_cnn          # = --config <that folder>/mnist_cnn.yaml
    dlbasics fit --config rule_classifier.yaml --config trainer/bf16 --config logger/wandb

``configs/`` at the top of a checkout is the one source: the wheel carries it as ``dlbasics/configs``
(``package-dir`` in ``pyproject.toml``), an editable install or a ``PYTHONPATH`` checkout reads it in place.
A ``--config`` value that names an existing file always wins (``--config configs/X.yaml`` in a checkout).
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

SUFFIXES = (".yaml", ".yml")
MAX_CONFIG_BYTES = 1 << 20  #: a config file larger than this is refused unread
MAX_CONFIG_VALUES = 100_000  #: values a config may expand to (YAML aliases repeat what they point to)


def config_dir() -> Path:
    """The folder of shipped configs: ``dlbasics/configs`` in an installed wheel, ``configs/`` in a checkout.

    Raises:
        FileNotFoundError: dlbasics was installed without its configs (or not as plain files).
    """
    package = resources.files("dlbasics")
    if isinstance(package, Path):
        shipped = package / "configs"  # a wheel install, or setuptools' strict editable link tree
        if shipped.is_dir():
            return shipped
        checkout = package.parent / "configs"  # a source checkout: PYTHONPATH or `pip install -e .`
        if checkout.is_dir() and (package.parent / "pyproject.toml").is_file():
            return checkout
    raise FileNotFoundError(f"dlbasics at {package} has no configs folder: reinstall it (pip install dlbasics)")


def shipped_configs() -> list[str]:
    """Every shipped config by the name ``--config`` accepts (``mnist_cnn``), experiments first, then ``trainer/…``,
    ``logger/…``; empty without a configs folder."""
    try:
        root = config_dir()
    except FileNotFoundError:
        return []
    names = [p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*") if p.suffix in SUFFIXES]
    return sorted(names, key=lambda name: (name.count("/"), name))


def experiment_names() -> list[str]:
    """The shipped experiments (top-level configs) by name, sorted, e.g. for ``--help`` texts and the tour."""
    return [name for name in shipped_configs() if "/" not in name]


def resolve_config(value: str) -> str:
    """The file a ``--config`` value means: ``value`` itself when it is an existing file or names no shipped config
    (LightningCLI then reports it), else the shipped config it names (``mnist_cnn``, ``mnist_cnn.yaml``,
    ``trainer/ddp``, or ``configs/mnist_cnn.yaml`` outside a checkout)."""
    if Path(value).is_file():
        return value
    name = PurePosixPath(value.replace("\\", "/"))
    if name.suffix in SUFFIXES:
        name = name.with_suffix("")
    if name.parts[:1] == ("configs",):
        name = name.relative_to("configs")
    if name.as_posix() not in shipped_configs():
        return value
    found = [config_dir() / f"{name}{suffix}" for suffix in SUFFIXES]
    return str(next(path for path in found if path.is_file()))


def expand_config_args(argv: list[str]) -> list[str]:
    """``argv`` (without the program name) with :func:`resolve_config` applied to every ``--config X`` and
    ``--config=X``; every config file, and every other value written in YAML with anchors, is checked by
    :func:`check_yaml` first, so a YAML bomb is refused before the parser expands it."""
    out: list[str] = []
    expect_value = False
    for arg in argv:
        if expect_value or arg.startswith("--config="):
            value = resolve_config(arg.removeprefix("--config="))
            check_yaml(Path(value) if Path(value).is_file() else value)
            arg = value if expect_value else f"--config={value}"
        elif "&" in arg and "*" in arg:
            check_yaml(arg)
        out.append(arg)
        expect_value = arg == "--config" and not expect_value  # after the value of --config, no value is due
    return out


def check_yaml(source: str | Path) -> None:
    """Refuse (``ValueError``, one line) a YAML file or text too large, nested too deep or expanding to too many values.

    PyYAML builds an alias as a reference to the node it names, so nine levels of ten aliases are a kilobyte on
    disk and a billion values for whatever walks them (the config parser). The composed node graph is measured
    without expanding it.
    """
    name = f"config {source}" if isinstance(source, Path) else "a YAML value"
    if isinstance(source, Path) and source.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{name} is larger than {MAX_CONFIG_BYTES >> 20} MiB: a config is a page of settings")
    try:
        node = yaml.compose(source.read_text() if isinstance(source, Path) else source, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return  # not YAML at all: the parser says what is wrong with it
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply to read") from None
    if node is not None and _expanded(node, {}) > MAX_CONFIG_VALUES:
        raise ValueError(
            f"{name} expands to more than {MAX_CONFIG_VALUES:,} values through YAML aliases (a YAML bomb?): "
            "refusing to read it"
        )


def _expanded(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is expanded (each distinct node measured once)."""
    if id(node) not in sizes:
        sizes[id(node)] = 1  # a recursive alias counts once instead of forever
        children = node.value if isinstance(node.value, list) else []
        pairs = [item for pair in children for item in pair] if isinstance(node, yaml.MappingNode) else children
        sizes[id(node)] = 1 + sum(_expanded(child, sizes) for child in pairs)
    return sizes[id(node)]


def load_yaml(path: Path) -> Any:
    """A YAML file read with :func:`check_yaml`'s limits (e.g. a run's ``config.yaml``)."""
    check_yaml(path)
    return yaml.safe_load(path.read_text())


def configs_building(*class_names: str) -> list[str]:
    """The shipped experiments whose model is one of ``class_names`` (full or short names), e.g. for hints."""
    found = []
    for name in experiment_names():  # none without a configs folder
        model = (load_yaml(config_dir() / f"{name}.yaml") or {}).get("model") or {}
        class_path = str(model.get("class_path", ""))
        if class_path in class_names or class_path.rsplit(".", 1)[-1] in class_names:
            found.append(name)
    return found


def main() -> None:
    try:
        print(config_dir())
    except FileNotFoundError as err:
        sys.exit(str(err))
    for name in shipped_configs():
        print(f"  {name}")


if __name__ == "__main__":
    main()
