"""ONNX export of every model family, ``dlbasics export`` end to end, and the raw-input contract of the models.

PYTHONPATH=$PWD .venv/bin/python -m pytest tests/test_export.py -q
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CONFIGS, N_VAL, fixture_data

from dlbasics.data.mnist import MNISTDataModule
from dlbasics.models import MNISTCNN, MNISTMLP, LinearRegression, RuleClassifier, SineGRU, SineLSTM
from dlbasics.runs import read_csv_rows
from dlbasics.use.onnx import EXTRA_HINT, export_onnx, onnx_error

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# name -> (model factory, output shape after the batch dimension)
FAMILIES: dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...]]] = {
    "linear": (lambda: LinearRegression(num_features=3, init_std=1.0), (1,)),
    "polynomial": (lambda: LinearRegression(num_features=3, degree=2, init_std=1.0), (1,)),
    "rule": (lambda: RuleClassifier(num_features=5), ()),
    "mlp": (lambda: MNISTMLP(hidden_sizes=[32, 16], pixel_mean=0.13, pixel_std=0.31), (10,)),
    "cnn": (lambda: MNISTCNN(channels=[4, 8], pixel_mean=0.29, pixel_std=0.35), (10,)),
    "cnn_channels_last": (
        lambda: MNISTCNN(channels=[4, 8], channels_last=True, pixel_mean=0.29, pixel_std=0.35),
        (10,),
    ),
    "lstm": (lambda: SineLSTM(hidden_size=8, series_mean=0.5, series_std=2.0, n_steps=12, horizon=3), (3,)),
    "gru": (lambda: SineGRU(hidden_size=8, num_layers=2, series_mean=-1.0, series_std=0.5), (1,)),
}


def run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["output"], {"input": x.numpy()})[0])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_exports_and_onnx_matches_pytorch_at_any_batch_size(family, tmp_path):
    torch.manual_seed(0)
    make, out_shape = FAMILIES[family]
    model = make()
    if isinstance(model, MNISTCNN):  # non-trivial BatchNorm statistics, so eval mode matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = export_onnx(model, tmp_path / "model.onnx")
    assert path == tmp_path / "model.onnx" and not model.training
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # weights inside, no external data file
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["dlbasics_model"] == f"{type(model).__module__}.{type(model).__name__}"
    assert meta["input"].startswith("float32 (N, ") and meta["output"].startswith("float32 (N")
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["output"]
    for batch in (1, 1000):
        x = model.example_input(batch)
        assert x.dtype == torch.float32 and len(x) == batch
        with torch.no_grad():
            expected = model.inference(x)
        got = run_onnx(path, x)
        assert tuple(got.shape) == (batch, *out_shape) == tuple(expected.shape)
        assert (got - expected).abs().max() <= 1e-4, family
    assert onnx_error(model, path) <= 1e-4


@pytest.mark.parametrize("family", ["lstm", "cnn_channels_last"])
def test_export_prints_nothing_and_warns_nothing(family, tmp_path, capfd):
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # also what pytest's configuration would hide
        export_onnx(FAMILIES[family][0](), tmp_path / "model.onnx")
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    assert capfd.readouterr() == ("", "")


def test_what_inference_returns_per_family():
    torch.manual_seed(0)
    mlp = MNISTMLP(hidden_sizes=[8], pixel_mean=0.13, pixel_std=0.31).eval()
    pixels = mlp.example_input(4)
    assert pixels.shape == (4, 1, 28, 28) and pixels.min() >= 0 and pixels.max() <= 1
    assert torch.allclose(mlp.inference(pixels), mlp(pixels).softmax(-1)) and torch.allclose(
        mlp.inference(pixels).sum(-1), torch.ones(4)
    )
    rule = RuleClassifier().eval()
    x = rule.example_input(4)
    assert torch.allclose(rule.inference(x), rule(x).sigmoid()) and rule.inference(x).shape == (4,)
    sine = SineLSTM(hidden_size=8, series_mean=3.0, series_std=2.0, n_steps=7).eval()
    windows = sine.example_input(5)
    assert windows.shape == (5, 7)
    expected = sine(windows.unsqueeze(-1))  # the model takes raw windows and standardizes them itself
    assert torch.allclose(sine.inference(windows), expected)
    assert torch.allclose(sine.inference(windows)[:, 0], sine.forecast(windows, 1)[:, 0])
    state = torch.get_rng_state()
    sine.example_input(3)
    assert torch.equal(torch.get_rng_state(), state)  # examples come from a generator of their own


def test_export_without_the_extra_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # "not installed"
    with pytest.raises(ImportError) as err:
        export_onnx(RuleClassifier(), tmp_path / "model.onnx")
    assert str(err.value) == EXTRA_HINT
    assert EXTRA_HINT.startswith("ONNX export needs the export extra: pip install -e '.[export]' (onnx, onnxscript")


# --- dlbasics export ----------------------------------------------------------------------------------------------

FAST = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5", "--trainer.limit_val_batches", "2",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]  # fmt: skip


def exported(cli, capsys, *args: str | Path) -> Path:
    """``dlbasics export ARGS`` through ``cli``: the path of the ONNX file, the last line it prints."""
    capsys.readouterr()
    cli("export", *args)
    out, err = capsys.readouterr()
    assert "error" not in err, err[-2000:]
    return Path(out.splitlines()[-1]).resolve()


def test_export_command_writes_model_onnx_into_the_run_and_refuses_wrong_checkpoints(cli, refused, capsys):
    rule_config, sine_config = CONFIGS / "rule_classifier.yaml", CONFIGS / "sine_lstm.yaml"
    rule_run = cli("fit", "--config", rule_config, *FAST)
    sine_run = cli("fit", "--config", sine_config, *FAST)  # the newest run, but not a RuleClassifier one
    assert (rule_run.name, sine_run.name) == ("version_0", "version_1")
    target = rule_run / "model.onnx"

    assert exported(cli, capsys, "--config", rule_config, "--ckpt_path", "last") == target.resolve()
    assert target.is_file()
    model = RuleClassifier.load_from_checkpoint(rule_run / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    x = torch.rand(300, 5)
    with torch.no_grad():
        assert (run_onnx(target, x) - model.inference(x)).abs().max() <= 1e-4

    target.unlink()
    path = exported(cli, capsys, "--config", rule_config, "--ckpt_path", rule_run / "checkpoints" / "last.ckpt")
    assert path == target.resolve() and target.is_file()

    sine_ckpt = sine_run / "checkpoints" / "last.ckpt"
    assert exported(cli, capsys, "--config", sine_config, "--ckpt_path", "best") == (sine_run / "model.onnx").resolve()
    meta = {p.key: p.value for p in onnx.load(str(sine_run / "model.onnx")).metadata_props}
    assert meta["input"].startswith("float32 (N, 20)")  # n_steps linked from the data into the checkpoint

    line = refused("export", "--config", rule_config, "--ckpt_path", sine_ckpt)  # one line, nothing on stdout
    assert "is a SineLSTM; the config builds a RuleClassifier: pass --config sine_lstm or a RuleClassifier" in line

    for missing in ("nowhere.ckpt", "last"):
        line = refused("export", "--config", CONFIGS / "linear_regression.yaml", "--ckpt_path", missing)
        assert ("'nowhere.ckpt' does not exist" if missing != "last" else "no last.ckpt of a") in line, missing

    assert refused("export", "--config", rule_config).startswith("dlbasics: error: export needs --ckpt_path")


# --- MNIST: the checkpoint alone does what the pipeline does ------------------------------------------------------


def test_mnist_checkpoint_alone_turns_raw_pixels_into_the_pipelines_predictions(cli, refused, idx, capsys):
    config = CONFIGS / "mnist_mlp.yaml"
    fast = ["--trainer.max_epochs", "2", "--data.batch_size", "30", "--model.init_args.hidden_sizes", "[32]",
            *fixture_data(idx)]  # fmt: skip
    run = cli("fit", "--config", config, *fast)
    ckpt = run / "checkpoints" / "last.ckpt"
    data = MNISTDataModule(root=str(idx["flat"]), verify=False, num_val=N_VAL)
    model = MNISTMLP.load_from_checkpoint(ckpt, map_location="cpu").eval()
    assert model.hparams.pixel_mean == pytest.approx(data.pixel_mean) and data.pixel_mean > 0.1
    assert model.hparams.pixel_std == pytest.approx(data.pixel_std) and data.pixel_std != pytest.approx(1, abs=0.1)

    predicted = cli("predict", "--config", config, "--ckpt_path", ckpt, *fast)  # DataModule batches -> model
    rows = read_csv_rows(predicted / "predictions.csv")
    data.setup("predict")
    images, labels = data.splits["test"]
    pixels = images.unsqueeze(1).float() / 255  # what a user has: pixels in [0, 1]
    with torch.no_grad():
        probs = model.inference(pixels)
    assert [int(float(r["class"])) for r in rows] == probs.argmax(-1).tolist()
    assert np.allclose([float(r["probability"]) for r in rows], probs.max(-1).values.numpy(), atol=1e-5)
    assert (probs.argmax(-1) == labels).float().mean() > 0.5  # it learned something: chance is 0.1

    assert exported(cli, capsys, "--config", config, "--ckpt_path", ckpt) == (run / "model.onnx").resolve()
    assert (run_onnx(run / "model.onnx", pixels) - probs).abs().max() <= 1e-4

    old = torch.load(ckpt, weights_only=True)  # written before the models owned their normalization
    del old["dlbasics_format_version"]
    torch.save(old, run / "old.ckpt")
    with pytest.raises(ValueError, match=r"older dlbasics .*: retrain it with `dlbasics fit`"):
        MNISTMLP.load_from_checkpoint(run / "old.ckpt")
    assert "retrain it with `dlbasics fit`" in refused("export", "--config", config, "--ckpt_path", run / "old.ckpt")
