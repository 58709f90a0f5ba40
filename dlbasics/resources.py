"""The experiment configs that ship with dlbasics, found by name wherever dlbasics is installed.

    python -m dlbasics.resources             # where the configs are, and their names
    dlbasics fit --config mnist_cnn          # = --config <that folder>/mnist_cnn.yaml
    dlbasics fit --config rule_classifier.yaml --config trainer/bf16 --config logger/wandb

``configs/`` at the top of a checkout is the one source: the wheel carries it as ``dlbasics/configs``
(``package-dir`` in ``pyproject.toml``), an editable install or a ``PYTHONPATH`` checkout reads it in place.
A ``--config`` value that names an existing file always wins, so ``--config configs/X.yaml`` in a
checkout and ``--config my_copy.yaml`` keep meaning those files.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path, PurePosixPath

SUFFIXES = (".yaml", ".yml")


def config_dir() -> Path:
    """The folder of shipped configs: ``dlbasics/configs`` in an installed wheel, ``configs/`` in a checkout.

    Returns:
        The folder holding the experiment configs and the ``trainer/`` and ``logger/`` overlays.

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
    """Every shipped config by the name ``--config`` accepts: experiments, then ``trainer/…``, ``logger/…``.

    Returns:
        Names without ``.yaml``, such as ``mnist_cnn`` or ``trainer/ddp``; empty without a configs folder.
    """
    try:
        root = config_dir()
    except FileNotFoundError:
        return []
    names = [p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*") if p.suffix in SUFFIXES]
    return sorted(names, key=lambda name: (name.count("/"), name))


def experiment_names() -> list[str]:
    """The shipped experiments (top-level configs), e.g. for ``--help`` texts and the tour.

    Returns:
        Sorted names such as ``linear_regression`` and ``mnist_cnn``.
    """
    return [name for name in shipped_configs() if "/" not in name]


def resolve_config(value: str) -> str:
    """The file a ``--config`` value means.

    Args:
        value: What follows ``--config``: a path, or a shipped config's name (``mnist_cnn``,
            ``mnist_cnn.yaml``, ``trainer/ddp``, ``logger/wandb``, or ``configs/mnist_cnn.yaml`` outside a
            checkout).

    Returns:
        ``value`` itself when it is an existing file or matches no shipped config (LightningCLI then reports
        it), else the path of the shipped config it names.
    """
    if Path(value).is_file():
        return value
    name = PurePosixPath(value.replace("\\", "/"))
    if name.suffix in SUFFIXES:
        name = name.with_suffix("")
    if name.parts[:1] == ("configs",):
        name = PurePosixPath(*name.parts[1:]) if len(name.parts) > 1 else name
    if name.as_posix() not in shipped_configs():
        return value
    found = [config_dir() / f"{name}{suffix}" for suffix in SUFFIXES]
    return str(next(path for path in found if path.is_file()))


def expand_config_args(argv: list[str]) -> list[str]:
    """``argv`` with :func:`resolve_config` applied to the value of every ``--config X`` and ``--config=X``.

    Args:
        argv: Command-line arguments without the program name, e.g. ``sys.argv[1:]``.

    Returns:
        A new list; every other argument is left as it was.
    """
    out: list[str] = []
    expect_value = False
    for arg in argv:
        if expect_value:
            out.append(resolve_config(arg))
            expect_value = False
        elif arg == "--config":
            out.append(arg)
            expect_value = True
        elif arg.startswith("--config="):
            out.append("--config=" + resolve_config(arg.removeprefix("--config=")))
        else:
            out.append(arg)
    return out


def main() -> None:
    """Print the configs folder and the shipped config names."""
    try:
        print(config_dir())
    except FileNotFoundError as err:
        sys.exit(str(err))
    for name in shipped_configs():
        print(f"  {name}")


__all__ = ["config_dir", "expand_config_args", "experiment_names", "resolve_config", "shipped_configs"]

if __name__ == "__main__":
    main()
