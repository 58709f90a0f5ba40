"""Tests for the from-scratch NumPy reference (dlbasics.scratch) against finite differences and torch.

pytest tests/test_scratch.py -q
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from dlbasics.scratch import functions as F
from dlbasics.scratch.gradient import numerical_gradient, relative_error
from dlbasics.scratch.layers import Linear
from dlbasics.scratch.net import TwoLayerNet, train
from dlbasics.scratch.optim import SGD, Adam
from dlbasics.scratch.perceptron import AND, NAND, OR, XOR
from dlbasics.scratch.polyfit import TRUE_COEFFS, fit_polynomial

TOL = 1e-6
SCRATCH_DIR = Path(__file__).resolve().parents[1] / "dlbasics" / "scratch"
TORCH_ACTS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def leaf(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_activation_gradients(name, rng):
    fn, grad_fn = F.ACTIVATIONS[name]
    x, w = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    x[np.abs(x) < 1e-3] += 1e-2  # off relu's kink for the finite differences
    xt = leaf(x)
    y = TORCH_ACTS[name](xt)
    (y * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(fn(x), y.detach().numpy(), rtol=1e-12, atol=1e-15)
    analytic = grad_fn(x) * w
    assert relative_error(analytic, xt.grad.numpy()) < TOL
    assert relative_error(analytic, numerical_gradient(lambda z: np.sum(fn(z) * w), x.copy())) < TOL


@pytest.mark.parametrize("labels", ["index", "one-hot"])
def test_softmax_cross_entropy_gradient(labels, rng):
    logits, idx = 3 * rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    t = idx if labels == "index" else np.eye(4)[idx]
    zt = leaf(logits)
    loss = tF.cross_entropy(zt, torch.from_numpy(t))
    loss.backward()
    assert F.softmax_cross_entropy(logits, t) == pytest.approx(loss.item(), rel=1e-12)
    analytic = F.softmax_cross_entropy_grad(logits, t)
    assert relative_error(analytic, zt.grad.numpy()) < TOL
    numerical = numerical_gradient(lambda z: F.softmax_cross_entropy(z, t), logits.copy())
    assert relative_error(analytic, numerical) < TOL


def test_index_and_one_hot_labels_agree(rng):
    logits, idx = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    onehot = np.eye(3)[idx]
    assert F.softmax_cross_entropy(logits, idx) == pytest.approx(F.softmax_cross_entropy(logits, onehot))
    np.testing.assert_allclose(F.softmax_cross_entropy_grad(logits, idx), F.softmax_cross_entropy_grad(logits, onehot))


def test_mse_gradient(rng):
    y, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    yt = leaf(y)
    loss = tF.mse_loss(yt, torch.from_numpy(t))
    loss.backward()
    assert F.mse_loss(y, t) == pytest.approx(loss.item(), rel=1e-12)
    assert relative_error(F.mse_grad(y, t), yt.grad.numpy()) < TOL
    assert relative_error(F.mse_grad(y, t), numerical_gradient(lambda z: F.mse_loss(z, t), y.copy())) < TOL


def test_linear_gradients(rng):
    x, W, b, g = (rng.standard_normal(s) for s in ((4, 6), (6, 3), (3,), (4, 3)))
    layer = Linear(W, b)
    out = layer.forward(x)
    dx = layer.backward(g)
    xt, Wt, bt = leaf(x), leaf(W), leaf(b)
    out_t = xt @ Wt + bt
    (out_t * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12)
    for ours, theirs in ((dx, xt), (layer.dW, Wt), (layer.db, bt)):
        assert relative_error(ours, theirs.grad.numpy()) < TOL
    f = lambda _: np.sum(Linear(W, b).forward(x) * g)  # noqa: E731 -- reads the perturbed arrays
    for ours, arr in ((dx, x), (layer.dW, W), (layer.db, b)):
        assert relative_error(ours, numerical_gradient(f, arr)) < TOL


def small_net(activation: str, rng: np.random.Generator) -> TwoLayerNet:
    net = TwoLayerNet(6, 5, 3, activation=activation, weight_init_std=1.0, seed=7)
    net.params["b1"][:], net.params["b2"][:] = rng.standard_normal(5), rng.standard_normal(3)
    return net


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_two_layer_net_gradients(activation, rng):
    net = small_net(activation, rng)
    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    p = {k: leaf(v) for k, v in net.params.items()}
    logits = TORCH_ACTS[activation](torch.from_numpy(x) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    loss = tF.cross_entropy(logits, torch.from_numpy(t))
    loss.backward()
    assert net.loss(x, t) == pytest.approx(loss.item(), rel=1e-12)
    analytic, numerical = net.gradient(x, t), net.numerical_gradient(x, t)
    assert set(analytic) == {"W1", "b1", "W2", "b2"}
    for k in analytic:
        assert analytic[k].shape == net.params[k].shape
        assert relative_error(analytic[k], p[k].grad.numpy()) < TOL, k
        assert relative_error(analytic[k], numerical[k]) < TOL, k


def test_two_layer_net_init_and_accuracy():
    net = TwoLayerNet(seed=0)
    assert net.params["W1"].shape == (784, 50) and net.params["W2"].shape == (50, 10)
    assert not net.params["b1"].any() and not net.params["b2"].any()
    assert net.params["W1"].std() == pytest.approx(0.01, rel=0.05)
    x = np.random.default_rng(0).random((20, 784))
    labels = net.predict(x).argmax(axis=1)
    assert net.accuracy(x, labels) == 1.0
    assert net.accuracy(x, np.eye(10)[labels]) == 1.0


def test_numerical_gradient_any_shape_and_restores():
    x = np.arange(24, dtype=float).reshape(2, 3, 4) / 10
    before = x.copy()
    g = numerical_gradient(lambda z: np.sum(z**3), x)
    np.testing.assert_allclose(g, 3 * before**2, rtol=1e-7, atol=1e-7)
    np.testing.assert_array_equal(x, before)
    assert numerical_gradient(lambda z: float(z) ** 2, np.array(3.0)) == pytest.approx(6.0)


EXTREME = [[1000.0, 1001.0], [-1000.0, 1000.0], [1000.0, -1000.0], [-1e4, -1e4 + 1.0], [1e5, 1e5]]


@pytest.mark.parametrize("row", EXTREME)
def test_softmax_and_cross_entropy_finite_on_extreme_logits(row):
    z = np.array([row])
    sm = F.softmax(z)
    assert np.all(np.isfinite(sm)) and sm.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(sm, torch.softmax(torch.tensor(z), -1).numpy(), rtol=1e-12, atol=1e-300)
    for label in (0, 1):
        ce = F.softmax_cross_entropy(z, np.array([label]))
        ref = tF.cross_entropy(torch.tensor(z), torch.tensor([label])).item()
        assert np.isfinite(ce) and ce == pytest.approx(ref, rel=1e-12, abs=1e-12)
        assert np.all(np.isfinite(F.softmax_cross_entropy_grad(z, np.array([label]))))


def test_softmax_batched_along_last_axis():
    z = np.array([[1000.0, 1001.0], [0.0, 0.0]])
    np.testing.assert_allclose(F.softmax(z)[1], [0.5, 0.5])
    np.testing.assert_allclose(F.softmax(z[0]), F.softmax(z)[0])


def test_gates_truth_tables():
    inputs = [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert [AND(a, b) for a, b in inputs] == [0, 0, 0, 1]
    assert [NAND(a, b) for a, b in inputs] == [1, 1, 1, 0]
    assert [OR(a, b) for a, b in inputs] == [0, 1, 1, 1]
    assert [XOR(a, b) for a, b in inputs] == [0, 1, 1, 0]


def run_optimizer_pair(ours, make_theirs, steps: int = 10):
    rng = np.random.default_rng(0)
    start = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(steps)]
    params = {k: v.copy() for k, v in start.items()}
    tparams = {k: leaf(v) for k, v in start.items()}
    theirs = make_theirs(list(tparams.values()))
    for g in grads:
        ours.step(params, g)
        for k, tp in tparams.items():
            tp.grad = torch.from_numpy(g[k].copy())
        theirs.step()
        for k in params:
            np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=0, atol=1e-8)
    return start, params


def test_adam_matches_torch_over_10_steps():
    adam = Adam(lr=0.1, beta1=0.8, beta2=0.99, eps=1e-8)
    make = lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.8, 0.99), eps=1e-8)  # noqa: E731
    start, params = run_optimizer_pair(adam, make)
    assert adam.t == 10 and set(adam.m) == {"w", "b"}
    assert not np.allclose(start["w"], params["w"])


def test_sgd_matches_torch():
    start, params = run_optimizer_pair(SGD(lr=0.05), lambda ps: torch.optim.SGD(ps, lr=0.05))
    assert not np.allclose(start["w"], params["w"])  # both moved, the same way


def test_polyfit_recovers_coefficients():
    coeffs = fit_polynomial()
    np.testing.assert_allclose(coeffs, TRUE_COEFFS, atol=0.05)


def test_train_reduces_loss():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 6))
    t = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    net = TwoLayerNet(6, 16, 3, activation="relu", weight_init_std=0.1, seed=0)
    history = train(net, x, t, Adam(lr=0.01), batch_size=50, iters=200, seed=0)
    assert len(history) == 200 and np.all(np.isfinite(history))
    assert np.mean(history[-20:]) < 0.6 * np.mean(history[:20])
    assert net.accuracy(x, t) > 0.8


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="sigmoid") as info:
        TwoLayerNet(6, 5, 3, activation="gelu")
    assert "\n" not in str(info.value)


def test_check_module_exits_zero_and_prints_table():
    proc = subprocess.run(
        [sys.executable, "-m", "dlbasics.scratch"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=SCRATCH_DIR.parents[1],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| pass |" in proc.stdout and "FAIL" not in proc.stdout


def test_scratch_code_does_not_import_torch():
    pattern = re.compile(r"^\s*(import\s+torch|from\s+torch\b)", re.MULTILINE)
    files = [p for p in SCRATCH_DIR.glob("*.py") if p.name not in {"check.py", "__main__.py"}]
    assert len(files) >= 8
    offenders = [p.name for p in files if pattern.search(p.read_text())]
    assert not offenders, f"torch imported in {offenders}"
    code = "import sys, dlbasics.scratch; assert 'torch' not in sys.modules and 'lightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SCRATCH_DIR.parents[1])
