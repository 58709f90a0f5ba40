"""Export a trained model to ONNX: what a user has goes in, the answer comes out, normalization inside.

    dlbasics export --config configs/mnist_cnn.yaml --ckpt_path best
    dlbasics export --config configs/sine_lstm.yaml --ckpt_path lightning_logs/version_3/checkpoints/last.ckpt

The checkpoint's model (``last``/``best``: of the newest run of the config's model and data) is written to
``model.onnx`` in its run directory (``lightning_logs/version_N/``), checked with ``onnx.checker``, run by
onnxruntime against PyTorch, and its path printed as the last line. The graph computes
``model.inference`` (see :class:`dlbasics.models.base.Experiment`), input ``input``, output ``output``,
float32, any batch size ``N``:

=========================  ===================================================  =================================
family                     input                                                output
=========================  ===================================================  =================================
MNISTMLP, MNISTCNN         pixels in [0, 1], ``(N, 1, 28, 28)``, light on dark   class probabilities ``(N, 10)``
SineLSTM, SineGRU          the last ``n_steps`` raw values ``(N, n_steps)``       the next values ``(N, horizon)``
LinearRegression           raw features ``(N, num_features)``                   predictions ``(N, 1)``
RuleClassifier             raw features ``(N, num_features)``                   probability of class 1 ``(N,)``
=========================  ===================================================  =================================

The ONNX file's ``metadata_props`` repeat this (``input``, ``output``) with the model class
(``dlbasics_model``) and its hyperparameters (``hparams``, JSON). Needs the ``export`` extra:
``pip install -e '.[export]'``.

The exporter is torch.export's (``dynamo=True``): TorchScript's ONNX exporter is deprecated in torch 2.9+
and warns about tracing the RNNs. The batch is exported as the dimension ``N`` from an example of two
rows (torch.export would specialize a size-1 dimension to the constant 1).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch
import yaml
from torch import Tensor, nn

from dlbasics.errors import one_line
from dlbasics.models.base import Classifier, Experiment
from dlbasics.runs import find_checkpoint

EXTRA_HINT = "ONNX export needs the export extra: pip install -e '.[export]' (onnx, onnxscript, onnxruntime)"
TOLERANCE = 1e-4  # max |ONNX - PyTorch|, relative to the output's magnitude when that exceeds 1

# Warnings torch 2.14 itself emits while exporting, which say nothing to the user:
# - torch.export's symbolic-shape code calls its own deprecated torch._check_is_size (FutureWarning, raised
#   from torch._dynamo and from generated "<eval_with_key>" graph code, so only the message identifies it);
# - nn.LSTM/nn.GRU re-assign their _flat_weights list on every call, which torch.export reports (UserWarning).
QUIET = (
    (FutureWarning, r"_check_is_size will be removed in a future PyTorch release", ""),
    (UserWarning, r"The tensor attributes self\.(\w+\.)*_flat_weights\[0\]", r"torch\.|contextlib"),
)


class Inference(nn.Module):
    """``model.inference`` as a module's ``forward``: the function the exporter traces."""

    def __init__(self, model: Experiment) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.inference(x)


def require_onnx() -> tuple[Any, Any]:
    """The ``onnx`` and ``onnxruntime`` modules; one-line ``ImportError`` without the export extra."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise ImportError(EXTRA_HINT) from None
    return onnx, onnxruntime


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Silence exactly the known torch export warnings of :data:`QUIET`, nothing else."""
    with warnings.catch_warnings():
        for category, message, module in QUIET:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        yield


def describe(model: Experiment) -> dict[str, str]:
    """Metadata of the exported graph: model class, hyperparameters, what ``input`` and ``output`` hold."""
    from dlbasics.models.mnist import ImageClassifier
    from dlbasics.models.sine import SineRNN

    x = model.example_input(2)
    with torch.no_grad():
        y = model.inference(x.to(model.device))
    shape = lambda t: "(" + ", ".join(["N", *map(str, t.shape[1:])]) + ("," if t.ndim == 1 else "") + ")"  # noqa: E731
    if isinstance(model, ImageClassifier):
        what_in, what_out = "pixels in [0, 1], light on dark like MNIST", "class probabilities"
    elif isinstance(model, SineRNN):
        what_in = "the last n_steps raw values of the series, oldest first"
        what_out = "the next horizon values on the raw scale"
    elif isinstance(model, Classifier):
        what_in = "raw feature vectors"
        what_out = "probability of class 1" if model.binary else "class probabilities"
    else:
        what_in, what_out = "raw feature vectors", "predictions on the raw scale"
    cls = type(model)
    return {
        "dlbasics_model": f"{cls.__module__}.{cls.__qualname__}",
        "input": f"float32 {shape(x)}: {what_in}",
        "output": f"float32 {shape(y)}: {what_out}",
        "hparams": json.dumps(dict(model.hparams), default=str),
    }


def export_onnx(model: Experiment, path: str | Path, opset: int | None = None) -> Path:
    """Write ``model.inference`` as an ONNX graph with a dynamic batch dimension; the model is left in eval mode.

    Args:
        model: A dlbasics model (anything with ``inference`` and ``example_input``).
        path: The ``.onnx`` file to write (weights inside, no external data file).
        opset: ONNX opset version (``None``: torch's default).

    Returns:
        ``path``, checked with ``onnx.checker``.

    Raises:
        ImportError: The ``export`` extra (onnx, onnxscript, onnxruntime) is not installed.
    """
    onnx, _ = require_onnx()
    path = Path(path)
    model.eval()
    example = model.example_input(2).to(model.device)
    with quiet_export(), torch.no_grad():
        torch.onnx.export(
            Inference(model).eval(),
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("N")},),
            external_data=False,
            verbose=False,
        )
    proto = onnx.load(str(path))
    for key, value in describe(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def onnx_error(model: Experiment, path: str | Path, batch_sizes: Sequence[int] = (1, 1000)) -> float:
    """Max ``|ONNX - model.inference|`` over example inputs of ``batch_sizes`` rows, run by onnxruntime (CPU)."""
    _, ort = require_onnx()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    worst = 0.0
    for batch in batch_sizes:
        x = model.example_input(batch)
        with torch.no_grad():
            expected = model.inference(x.to(model.device)).float().cpu()
        (got,) = session.run(["output"], {"input": x.numpy()})
        if tuple(got.shape) != tuple(expected.shape):
            raise ValueError(f"{path}: ONNX output shape {got.shape} != PyTorch's {tuple(expected.shape)}")
        scale = max(1.0, float(expected.abs().max()))
        worst = max(worst, float((torch.from_numpy(got) - expected).abs().max()) / scale)
    return worst


# --- dlbasics export ----------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    usage_hint = " (usage: dlbasics export --config C --ckpt_path last|best|PATH)"

    def error(self, message: str) -> NoReturn:  # one line (argparse prints the usage first); may be re-raised
        raise argparse.ArgumentError(None, message if message.endswith(self.usage_hint) else message + self.usage_hint)


def read_config(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The YAML configs merged, later files overriding earlier ones key by key."""

    def merge(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in new.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    config: dict[str, Any] = {}
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"config {str(path)!r} does not exist")
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config {path} is not a YAML mapping")
        config = merge(config, loaded)
    return config


def class_path(config: dict[str, Any], key: str) -> str | None:
    """``config[key]``'s class path (``class_path: …`` or a bare name), ``None`` if absent."""
    value = config.get(key)
    return value.get("class_path") if isinstance(value, dict) else value


def resolve_class(name: str) -> type:
    """A model class from a full import path or a name in :mod:`dlbasics.models`."""
    module, _, attr = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module or "dlbasics.models"), attr)
    except (ImportError, AttributeError):
        raise ValueError(f"unknown model {name!r} in the config") from None
    if not (isinstance(cls, type) and issubclass(cls, Experiment)):
        raise ValueError(f"{name} is not a dlbasics model")
    return cls


def full_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def check_model_class(checkpoint: dict[str, Any], cls: type, path: Path) -> None:
    """Refuse a checkpoint of another model class than ``cls`` (one line naming both)."""
    stored = checkpoint.get("dlbasics_model")
    hparams = set(checkpoint.get("hyper_parameters") or {})
    if stored is None:  # written before dlbasics recorded the class: judge by the hyperparameters
        params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        if hparams <= params:
            return
        stored = f"a model with hyperparameters {', '.join(sorted(hparams - params))}"
    elif stored == full_name(cls):
        return
    raise ValueError(
        f"checkpoint {path} holds {stored.rsplit('.', 1)[-1]} ({stored}) but the config's model is {cls.__name__} "
        f"({full_name(cls)}): pass the config the checkpoint was trained with"
    )


def export_checkpoint(configs: Sequence[str | Path], ckpt_path: str, opset: int | None = None) -> tuple[Path, str]:
    """Export the checkpoint (a path, ``last`` or ``best``) of the configs' model to ``model.onnx`` in its run dir.

    Returns:
        The ONNX file and a one-line summary.
    """
    require_onnx()
    config = read_config(configs)
    model_name = class_path(config, "model")
    if not model_name:
        raise ValueError(f"no model class_path in {', '.join(map(str, configs))}")
    cls = resolve_class(model_name)
    if ckpt_path in ("last", "best"):
        path = find_checkpoint(ckpt_path, model_name, class_path(config, "data"))
    else:
        path = Path(ckpt_path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {ckpt_path!r} does not exist: pass a .ckpt file, 'last' or 'best'")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        assert isinstance(checkpoint, dict) and "state_dict" in checkpoint
    except Exception as err:
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(err).__name__}): pass a .ckpt written by `dlbasics fit`"
        ) from None
    check_model_class(checkpoint, cls, path)
    try:
        model = cls.load_from_checkpoint(path, map_location="cpu")
    except ValueError as err:
        raise ValueError(f"{path}: {one_line(err).removeprefix('ValueError: ')}") from None
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    out = export_onnx(model, run_dir / "model.onnx", opset)
    error = onnx_error(model, out)
    if error > TOLERANCE:
        raise ValueError(f"{out} disagrees with PyTorch: max |ONNX - PyTorch| = {error:.2e} > {TOLERANCE:g}")
    meta = describe(model)
    summary = f"{cls.__name__}: input {meta['input']} -> output {meta['output']}; max |ONNX - PyTorch| {error:.1e}"
    return out, summary


def main(argv: list[str] | None = None) -> None:
    """``dlbasics export --config C [--config C2] --ckpt_path last|best|PATH [--opset N]``.

    Prints a summary and, as the last line, the path of the ONNX file. Errors print one line on stderr and
    exit with status 1 (2 for command-line errors); ``DLBASICS_DEBUG=1`` shows the traceback.
    """
    from dlbasics.cli import DEBUG_ENV

    parser = _Parser(prog="dlbasics export", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", action="append", required=True, help="YAML config (repeatable, later wins)")
    parser.add_argument("--ckpt_path", required=True, help="checkpoint file, or last/best of the config's runs")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: torch's)")
    try:
        args = parser.parse_args(argv)
        path, summary = export_checkpoint(args.config, args.ckpt_path, args.opset)
    except Exception as err:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"dlbasics export: error: {one_line(err)}  [{DEBUG_ENV}=1 shows the traceback]", file=sys.stderr)
        sys.exit(2 if isinstance(err, argparse.ArgumentError) else 1)
    print(summary)
    print(path)


__all__ = ["export_onnx", "main", "onnx_error"]
