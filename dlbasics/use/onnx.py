"""Export a trained model to ONNX: what a user has goes in, the answer comes out, normalization inside.

    dlbasics export --config mnist_cnn --ckpt_path best
    dlbasics export --config sine_lstm --ckpt_path lightning_logs/version_3/checkpoints/last.ckpt

``dlbasics export`` is a subcommand like ``test`` (same config merging, checkpoint checks and errors:
:class:`dlbasics.cli.DLBasicsTrainer`). It writes ``model.onnx`` to the checkpoint's run directory (the current
folder for a downloaded checkpoint), checks it with ``onnx.checker`` and with onnxruntime against PyTorch, and
prints its path last. The graph computes ``model.inference`` (:class:`dlbasics.models.base.Experiment`), float32
``input`` to ``output``, any batch size ``N``:

=========================  ===================================================  =================================
family                     input                                                output
=========================  ===================================================  =================================
MNISTMLP, MNISTCNN         pixels in [0, 1], ``(N, 1, 28, 28)``, light on dark   class probabilities ``(N, 10)``
SineLSTM, SineGRU          the last ``n_steps`` raw values ``(N, n_steps)``       the next values ``(N, horizon)``
LinearRegression           raw features ``(N, num_features)``                   predictions ``(N, 1)``
RuleClassifier             raw features ``(N, num_features)``                   probability of class 1 ``(N,)``
=========================  ===================================================  =================================

The file's ``metadata_props`` repeat this with the model class and its hyperparameters (:func:`describe`).
Needs the ``export`` extra: ``pip install -e '.[export]'``.

The exporter is torch.export's (``dynamo=True``): TorchScript's ONNX exporter is deprecated in torch 2.9+
and warns about tracing the RNNs. The batch is exported as the dimension ``N`` from an example of two
rows (torch.export would specialize a size-1 dimension to the constant 1).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dlbasics.models.base import Classifier, Experiment
from dlbasics.models.mnist import ImageClassifier
from dlbasics.models.sine import SineRNN
from dlbasics.runs import atomic_write
from dlbasics.trust import full_name

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


def describe(model: Experiment) -> dict[str, str]:
    """Metadata of the exported graph: model class, hyperparameters, what ``input`` and ``output`` hold."""
    x = model.example_input(2)
    with torch.no_grad():
        y = model.inference(x.to(model.device))
    shape = lambda t: "(" + ", ".join(["N", *map(str, t.shape[1:])]) + ("," if t.ndim == 1 else "") + ")"  # noqa: E731
    what_in, what_out = "raw feature vectors", "predictions on the raw scale"
    if isinstance(model, ImageClassifier):
        what_in, what_out = "pixels in [0, 1], light on dark like MNIST", "class probabilities"
    elif isinstance(model, SineRNN):
        what_in = "the last n_steps raw values of the series, oldest first"
        what_out = "the next horizon values on the raw scale"
    elif isinstance(model, Classifier):
        what_out = "probability of class 1" if model.binary else "class probabilities"
    return {
        "dlbasics_model": full_name(type(model)),
        "input": f"float32 {shape(x)}: {what_in}",
        "output": f"float32 {shape(y)}: {what_out}",
        "hparams": json.dumps(dict(model.hparams), default=str),
    }


def export_onnx(model: Experiment, path: str | Path, opset: int | None = None) -> Path:
    """Write ``model.inference`` as an ONNX graph with a dynamic batch dimension; the model is left in eval mode.

    Args:
        model: A dlbasics model (anything with ``inference`` and ``example_input``).
        path: The ``.onnx`` file to write (weights inside, no external data file), with :func:`describe`'s
            metadata, checked with ``onnx.checker``.
        opset: ONNX opset version (``None``: torch's default).
    """
    onnx, _ = require_onnx()
    path = Path(path)
    model.eval()
    example = model.example_input(2).to(model.device)
    with atomic_write(path) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            for category, message, module in QUIET:  # exactly these, nothing else
                warnings.filterwarnings("ignore", message=message, category=category, module=module)
            torch.onnx.export(
                Inference(model).eval(),
                (example,),
                str(tmp),
                input_names=["input"],
                output_names=["output"],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("N")},),
                external_data=False,
                verbose=False,
            )
        proto = onnx.load(str(tmp))
        for key, value in describe(model).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(tmp))
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


def export_checkpoint(model: Experiment, ckpt_path: Path, opset: int | None = None) -> Path:
    """Load the checkpoint's weights into ``model`` (built from its hyperparameters), export, check, and say where."""
    require_onnx()
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])
    model.cpu()
    folder = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    if folder.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve()) and "dlbasics-ckpt-" in str(folder):
        folder = Path.cwd()  # downloaded: its folder goes away at exit
    out = export_onnx(model, folder / "model.onnx", opset)
    error = onnx_error(model, out)
    if error > TOLERANCE:
        out.unlink()
        raise ValueError(f"{out} disagreed with PyTorch (max |ONNX - PyTorch| = {error:.2e} > {TOLERANCE:g}): removed")
    meta = describe(model)
    print(f"{type(model).__name__}: input {meta['input']} -> output {meta['output']}; max |ONNX - PyTorch| {error:.1e}")
    print(out)
    return out


__all__ = ["export_checkpoint", "export_onnx", "onnx_error"]
