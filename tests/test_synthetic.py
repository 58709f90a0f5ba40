"""The three synthetic experiments end to end through the CLI, with the issue's thresholds."""

from __future__ import annotations

import pytest
import torch
from helpers import CONFIGS, read_metrics

from dlbasics.data import LinearData, PolynomialData, RuleData
from dlbasics.models import LinearRegression, RuleClassifier
from dlbasics.runs import read_csv_rows

SEED_VECTORS = [
    [0.47889086, 0.15229675, 0.31082123, 0.03504317, 0.18920843],
    [0.94963533, 0.5524256, 0.95758807, 0.95520434, 0.84890681],
    [0.78797868, 0.67482528, 0.13625847, 0.34675372, 0.99871392],
    [0.1349776, 0.59416669, 0.92579291, 0.41567412, 0.7358894],
]


def fresh(data, n: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples from a generator no split uses."""
    return data.sample(n, torch.Generator().manual_seed(987654))


def test_linear_regression_recovers_function_and_matches_closed_form(cli, capsys):
    run = cli("fit", "--config", CONFIGS / "linear_regression.yaml")
    out = capsys.readouterr().out
    assert "closed-form w" in out and "learned     w" in out
    for name in ("config.yaml", "metrics.csv", "hparams.yaml", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*")) and list(run.glob("checkpoints/best-*.ckpt"))
    metrics = read_metrics(run)
    assert metrics["fit/w0"][-1] == pytest.approx(metrics["fit/closed_form_w0"][-1], abs=0.01)
    assert metrics["fit/closed_form_b"][-1] == pytest.approx(4.2, abs=0.01)
    assert len(metrics["train/loss"]) == 3  # one mean per epoch

    model = LinearRegression.load_from_checkpoint(run / "checkpoints/last.ckpt")
    x, _ = fresh(LinearData())
    err = (model(x).squeeze(-1) - LinearData().function(x)).abs().max().item()
    assert err < 0.05, f"max abs error {err}"


def test_polynomial_regression_takes_raw_x(cli):
    run = cli("fit", "--config", CONFIGS / "polynomial_regression.yaml")
    model = LinearRegression.load_from_checkpoint(run / "checkpoints/last.ckpt")
    assert model.hparams.degree == 2
    data = PolynomialData()
    x, _ = fresh(data)
    assert x.shape[1] == 1
    err = (model(x) - data.function(x)).abs().max().item()
    assert err < 0.05, f"max abs error {err}"
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 1\)"):
        model(torch.zeros(3, 2))


def test_rule_classifier_accuracy_seed_vectors_and_predict_csv(cli, tmp_path):
    run = cli("fit", "--config", CONFIGS / "rule_classifier.yaml")
    metrics = read_metrics(run)
    for key in ("train/acc", "val/acc", "val/f1", "val/precision", "val/recall", "val/loss"):
        assert key in metrics, key
    best = sorted(run.glob("checkpoints/best-*.ckpt"))
    assert len(best) == 1
    model = RuleClassifier.load_from_checkpoint(best[0]).eval()
    x, y = fresh(RuleData())
    with torch.no_grad():
        acc = ((model(x) > 0).long() == y).float().mean().item()
        seed_classes = (model(torch.tensor(SEED_VECTORS)) > 0).long().tolist()
    assert acc >= 0.99, f"fresh accuracy {acc}"
    assert seed_classes == [1, 1, 0, 0]

    vectors = tmp_path / "vectors.csv"
    vectors.write_text("a,b,c,d,e\n" + "\n".join(",".join(map(str, v)) for v in SEED_VECTORS) + "\n")
    pred_run = cli(
        "predict", "--config", CONFIGS / "rule_classifier.yaml", "--ckpt_path", best[0], "--data.predict_path", vectors
    )
    assert pred_run != run  # a new run never reuses an earlier run's directory
    rows = read_csv_rows(pred_run / "predictions.csv")
    assert [int(r["class"]) for r in rows] == [1, 1, 0, 0]
    probs = [float(r["probability"]) for r in rows]
    assert all(0 <= p <= 1 for p in probs) and probs[0] > 0.5 > probs[3]


def test_same_seed_same_metrics(cli):
    args = ("fit", "--config", CONFIGS / "rule_classifier.yaml", "--trainer.max_epochs", "2")
    first, second = read_metrics(cli(*args)), read_metrics(cli(*args))
    assert first["val/loss"] == second["val/loss"] and first["val/acc"] == second["val/acc"]


def test_synthetic_splits_are_deterministic_and_distinct():
    a, b = RuleData(seed=3), RuleData(seed=3)
    a.setup("fit")
    b.setup("fit")
    assert torch.equal(a.splits["train"][0], b.splits["train"][0])
    assert not torch.equal(a.splits["val"][0][:10], a.splits["train"][0][:10])
    y = a.splits["train"][1]
    assert torch.equal(y, (a.splits["train"][0][:, 0] > a.splits["train"][0][:, 4]).long())
