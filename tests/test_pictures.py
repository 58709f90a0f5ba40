"""Looking at a run without wandb: PNGs beside the metrics, TensorBoard images and scalars, the plots command, every
figure dlbasics draws, progress lines.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import CONFIGS, read_metrics
from matplotlib.image import imread
from photos import load_mnist_test
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlbasics import plots
from dlbasics.callbacks import Progress
from dlbasics.plots import prediction_grid_figure


def test_pngs_tensorboard_and_plots_command(cli, capsys):
    run = cli("fit", "--config", CONFIGS / "rule_classifier.yaml", "--trainer.max_epochs", "2",
              "--data.num_train", "640", "--data.num_val", "200")  # fmt: skip
    assert "epoch 1/2 step 20" in capsys.readouterr().out  # plain lines when stdout is not a terminal
    image = imread(run / "learning_curves.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0
    events = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert {"train/loss", "val/loss", "val/acc", "train/acc"} <= set(events.Tags()["scalars"])
    assert [e.value for e in events.Scalars("val/acc")] == pytest.approx(read_metrics(run)["val/acc"])
    assert "learning_curves" in events.Tags()["images"]
    assert events.Images("learning_curves")[0].encoded_image_string.startswith(b"\x89PNG")
    text = [t for t in events.Tags().get("tensors", []) if t.startswith("config")]
    assert text, "the resolved config is shown in TensorBoard's text tab"

    (run / "learning_curves.png").unlink()  # the same picture from the command line
    plots.main([str(run)])
    assert imread(run / "learning_curves.png").shape == image.shape
    with pytest.raises(SystemExit) as exit_info:
        plots.main([str(run.parent / "version_99")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 1 and len(err) == 1 and "metrics.csv does not exist" in err[0]


def test_regression_pictures(cli, tmp_path):
    run = cli("fit", "--config", CONFIGS / "polynomial_regression.yaml", "--trainer.max_epochs", "2",
              "--data.num_train", "200")  # fmt: skip
    assert imread(run / "fitted_curve.png").ndim == 3 and imread(run / "learning_curves.png").ndim == 3
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    assert {"fitted_curve", "learning_curves"} <= set(events.Tags()["images"])
    cli("fit", "--config", CONFIGS / "linear_regression.yaml", "--trainer.fast_dev_run", "2")
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == ["fitted_curve.png", "learning_curves.png"]


def test_progress_bar_follows_the_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert Progress().live and not Progress(live=False).live
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert not Progress().live and Progress(live=True).live


def test_log_figure_writes_on_rank_zero_only(tmp_path):
    from dlbasics.pictures import log_figure

    trainer = SimpleNamespace(is_global_zero=False, fast_dev_run=False, default_root_dir=tmp_path, loggers=[])
    assert log_figure(trainer, "x", plots.new_figure()) is None and not list(tmp_path.iterdir())
    trainer.is_global_zero = True
    assert log_figure(trainer, "test/x", plots.new_figure()) == tmp_path / "test_x.png"
    assert [p.name for p in tmp_path.iterdir()] == ["test_x.png"]  # written there, a whole PNG
    assert imread(tmp_path / "test_x.png").ndim == 3


def _drawn(fig) -> int:
    fig.savefig(io.BytesIO(), format="png")  # renders without a display
    return sum(1 for ax in fig.axes if ax.images)


def test_misclassified_grid_figure():
    gen = torch.Generator().manual_seed(0)
    images, targets = torch.randn(40, 1, 28, 28, generator=gen), torch.randint(0, 10, (40,), generator=gen)
    preds = targets.clone()
    preds[[3, 7, 11]] = (targets[[3, 7, 11]] + 1) % 10
    names = [f"c{i}" for i in range(10)]
    fig = plots.misclassified_grid_figure(images, preds, targets, class_names=names)
    assert _drawn(fig) == 3
    assert fig.axes[0].get_title() == f"c{int(preds[3])} (true c{int(targets[3])})"
    assert _drawn(plots.misclassified_grid_figure(images, torch.zeros(40), torch.ones(40))) == 25  # capped
    assert _drawn(plots.misclassified_grid_figure(images[:5].expand(5, 3, 28, 28), preds[:5], preds[:5])) == 0
    assert _drawn(plots.misclassified_grid_figure(images[:4, 0], preds[:4], (preds[:4] + 1) % 10)) == 4


def test_misclassified_images_callback_draws_up_to_its_max_images(monkeypatch):
    from dlbasics.pictures import MisclassifiedImages, evaluate

    drawn = []
    monkeypatch.setattr(evaluate, "log_figure", lambda trainer, name, fig: drawn.append(_drawn(fig)))
    trainer = SimpleNamespace(is_global_zero=True, fast_dev_run=False, datamodule=None)
    callback = MisclassifiedImages(max_images=30)
    callback.on_test_epoch_start(trainer, None)
    for _ in range(2):  # 2 batches of 20 images, every one wrong
        logits = torch.zeros(20, 10).index_fill(1, torch.tensor([1]), 1.0)
        callback.on_test_batch_end(trainer, None, logits, (torch.rand(20, 1, 28, 28), torch.zeros(20).long()), 0)
    callback.on_test_epoch_end(trainer, None)
    assert drawn == [30]


def test_activation_maps_figure_and_block_outputs():
    from dlbasics.models import MNISTCNN

    images = torch.rand(3, 1, 28, 28)
    maps = MNISTCNN(channels=[4, 8]).eval().block_outputs(images)
    assert [tuple(m.shape) for m in maps] == [(3, 4, 14, 14), (3, 8, 7, 7)]
    fig = plots.activation_maps_figure(images, maps)
    assert _drawn(fig) == 9 and [ax.get_title() for ax in fig.axes[:3]] == ["input", "block 1", "block 2"]
    fig = plots.activation_maps_figure(images[:2], {"conv1": maps[0][:2].sum(1)})
    assert _drawn(fig) == 4 and fig.axes[1].get_title() == "conv1"


def test_fitted_curve_and_learning_curves_figures():
    x1 = torch.rand(50, 1)
    fig = plots.fitted_curve_figure(x1, 2 * x1 + 1, lambda x: 2 * x + 1)
    assert fig.axes[0].get_xlabel() == "x" and len(fig.axes[0].lines) == 1
    x2 = torch.randn(50, 2)
    fig = plots.fitted_curve_figure(x2, x2.sum(1, keepdim=True), lambda x: x.sum(1))
    assert fig.axes[0].get_xlabel() == "true y"
    rows = [
        {"epoch": 0, "step": 9, "train/loss": 1.0},
        {"epoch": 0, "step": 9, "val/loss": 0.9, "val/acc": 0.7},
        {"epoch": 1, "step": 19, "train/loss": 0.5},
        {"epoch": 1, "step": 19, "val/loss": 0.6, "val/acc": 0.8},
    ]
    fig = plots.learning_curves_figure(rows)  # per epoch: each epoch's values at its end
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2]
    steps = [{"step": s, "train/loss_step": 1 / s} for s in (5, 10, 15, 20)]  # one epoch of 20 steps, logged often
    fig = plots.learning_curves_figure([*steps, {"epoch": 0, "step": 19, "val/loss": 0.1}])
    train, val = fig.axes[0].lines
    assert list(train.get_xdata()) == [0.25, 0.5, 0.75, 1.0] and list(val.get_xdata()) == [1]  # a curve, not a dot


def test_prediction_grid_figure():
    digits = load_mnist_test(10)
    images = torch.from_numpy(digits[0][:10])
    fig = prediction_grid_figure(images, [f"{d} (0.98)" for d in digits[1][:10]], max_images=6)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 6 and shown[0].get_title() == f"{digits[1][0]} (0.98)"
    assert shown[0].images[0].get_clim() == (0, 255)
    assert np.array_equal(shown[2].images[0].get_array(), digits[0][2])
