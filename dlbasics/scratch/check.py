"""Check table for the from-scratch NumPy code: analytic gradients vs finite differences and torch.

    python -m dlbasics.scratch   # prints the table; exits non-zero if any check fails

Every hand-derived gradient is compared with :func:`~dlbasics.scratch.gradient.numerical_gradient` and with
torch autograd in float64 (relative error), scratch Adam/SGD with ``torch.optim`` over 10 steps, softmax and
cross-entropy on extreme logits with torch's values, the perceptron gates with their truth tables, and the
polynomial fit with its true coefficients. The only scratch module that imports torch (lazily, in :func:`run_checks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlbasics.scratch import functions as F
from dlbasics.scratch.gradient import numerical_gradient, relative_error
from dlbasics.scratch.layers import Linear
from dlbasics.scratch.net import PARAM_NAMES, TwoLayerNet
from dlbasics.scratch.optim import SGD, Adam
from dlbasics.scratch.perceptron import GATES, TRUTH_TABLES, truth_table
from dlbasics.scratch.polyfit import TRUE_COEFFS, fit_polynomial

NUMERICAL_TOL = 1e-6  # central differences in float64: ~1e-10 typical
TORCH_TOL = 1e-9  # same maths in float64: ~1e-16 typical


@dataclass(frozen=True)
class CheckResult:
    """One row of the check table."""

    name: str  # what is checked, e.g. "sigmoid'" or "TwoLayerNet(relu) dW1"
    against: str  # the reference, e.g. "numerical" or "torch autograd"
    value: float  # the error measured: relative error, max abs difference or count of wrong rows
    tolerance: float
    passed: bool  # value is finite and <= tolerance


def _result(name: str, against: str, value: float, tol: float) -> CheckResult:
    return CheckResult(name, against, float(value), tol, bool(math.isfinite(value) and value <= tol))


def _compare(name: str, analytic: np.ndarray, numerical: np.ndarray, autograd: np.ndarray) -> list[CheckResult]:
    """Two rows for one hand-derived gradient: against finite differences and against torch autograd."""
    return [
        _result(name, "numerical", relative_error(analytic, numerical), NUMERICAL_TOL),
        _result(name, "torch autograd", relative_error(analytic, autograd), TORCH_TOL),
    ]


def _autograd(torch, loss_fn, *arrays: np.ndarray) -> list[np.ndarray]:
    """Gradients of the scalar ``loss_fn(*tensors)`` w.r.t. float64 tensor copies of ``arrays``."""
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    loss_fn(*leaves).backward()
    return [leaf.grad.numpy() for leaf in leaves]


def _check_gradients(torch, rng: np.random.Generator) -> list[CheckResult]:
    """Activations, softmax-CE, MSE, Linear and TwoLayerNet: analytic vs numerical vs autograd."""
    tf = torch.nn.functional
    torch_acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
    rows = []
    for act, (fn, grad_fn) in F.ACTIVATIONS.items():
        x, w = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
        x[np.abs(x) < 1e-3] += 1e-2  # keep finite differences off relu's kink
        (auto,) = _autograd(torch, lambda z, f=torch_acts[act], w=w: (f(z) * torch.from_numpy(w)).sum(), x)
        num = numerical_gradient(lambda z, fn=fn, w=w: np.sum(fn(z) * w), x.copy())
        rows += _compare(f"{act}'", grad_fn(x) * w, num, auto)

    logits, labels = rng.standard_normal((4, 5)), rng.integers(0, 5, 4)
    for kind, t in (("index", labels), ("one-hot", np.eye(5)[labels])):
        (auto,) = _autograd(torch, lambda z, t=t: tf.cross_entropy(z, torch.from_numpy(t)), logits)
        num = numerical_gradient(lambda z, t=t: F.softmax_cross_entropy(z, t), logits.copy())
        rows += _compare(f"softmax-CE ({kind} labels)", F.softmax_cross_entropy_grad(logits, t), num, auto)

    y, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    (auto,) = _autograd(torch, lambda z: tf.mse_loss(z, torch.from_numpy(t)), y)
    rows += _compare("MSE", F.mse_grad(y, t), numerical_gradient(lambda z: F.mse_loss(z, t), y.copy()), auto)

    x, W, b, g = (rng.standard_normal(s) for s in ((4, 6), (6, 3), (3,), (4, 3)))
    layer = Linear(W, b)
    layer.forward(x)
    analytic = (layer.backward(g), layer.dW, layer.db)
    autos = _autograd(torch, lambda xt, Wt, bt: ((xt @ Wt + bt) * torch.from_numpy(g)).sum(), x, W, b)
    for key, arr, ana, auto in zip(("dx", "dW", "db"), (x, W, b), analytic, autos, strict=True):
        num = numerical_gradient(lambda _: np.sum(Linear(W, b).forward(x) * g), arr)  # reads the perturbed arr
        rows += _compare(f"Linear {key}", ana, num, auto)

    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    for act in ("sigmoid", "relu"):
        net = TwoLayerNet(6, 5, 3, activation=act, weight_init_std=1.0, seed=int(rng.integers(2**31)))
        net.params["b1"][:], net.params["b2"][:] = rng.standard_normal(5), rng.standard_normal(3)

        def torch_loss(W1, b1, W2, b2, f=torch_acts[act]):
            return tf.cross_entropy(f(torch.from_numpy(x) @ W1 + b1) @ W2 + b2, torch.from_numpy(t))

        autos = _autograd(torch, torch_loss, *(net.params[k] for k in PARAM_NAMES))
        ana, num = net.gradient(x, t), net.numerical_gradient(x, t)
        for key, auto in zip(PARAM_NAMES, autos, strict=True):
            rows += _compare(f"TwoLayerNet({act}) d{key}", ana[key], num[key], auto)
    return rows


def _check_optimizers(torch, rng: np.random.Generator, steps: int = 10) -> list[CheckResult]:
    rows = []
    start = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(steps)]
    for ours in (Adam(lr=0.1), SGD(lr=0.1)):  # and torch.optim's class of the same name, both at their defaults
        name = type(ours).__name__
        params = {k: v.copy() for k, v in start.items()}
        tparams = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in start.items()}
        theirs = getattr(torch.optim, name)(list(tparams.values()), lr=0.1)
        for g in grads:
            ours.step(params, g)
            for k, tp in tparams.items():
                tp.grad = torch.from_numpy(g[k].copy())
            theirs.step()
        diff = max(np.max(np.abs(params[k] - tparams[k].detach().numpy())) for k in params)
        rows.append(_result(f"{name} params after {steps} steps", f"torch.optim.{name}", diff, 1e-8))
    return rows


def _check_extreme_logits(torch) -> list[CheckResult]:
    logits = np.array([[1000.0, 1001.0], [-1000.0, 1000.0], [1000.0, -1000.0], [-1e4, -1e4 + 1.0]])
    labels = np.array([0, 0, 1, 1])
    t_logits = torch.from_numpy(logits)
    t_ce = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(labels)).item()
    # an inf or nan from our side makes the error inf or nan, which _result fails
    sm_error = np.max(np.abs(F.softmax(logits) - torch.softmax(t_logits, dim=-1).numpy()))
    ce_error = abs(F.softmax_cross_entropy(logits, labels) - t_ce) / abs(t_ce)
    return [
        _result("softmax on extreme logits", "torch (finite)", sm_error, 1e-12),
        _result("softmax-CE on extreme logits", "torch (finite)", ce_error, 1e-12),
    ]


def run_checks(seed: int = 0) -> list[CheckResult]:
    """Run every check and return the table rows (imports torch on first use)."""
    import torch  # lazy: the rest of dlbasics.scratch is NumPy only

    rng = np.random.default_rng(seed)
    rows = _check_gradients(torch, rng) + _check_optimizers(torch, rng) + _check_extreme_logits(torch)
    for name, gate in GATES.items():
        wrong = sum(a != b for a, b in zip(truth_table(gate), TRUTH_TABLES[name], strict=True))
        rows.append(_result(f"{name} gate (wrong rows of 4)", "truth table", wrong, 0))
    coeffs = fit_polynomial(seed=seed)
    shown = ", ".join(f"{c:.4f}" for c in coeffs)
    rows.append(_result(f"polyfit coefficients [{shown}]", "[2, 3, 4]", np.max(np.abs(coeffs - TRUE_COEFFS)), 0.05))
    return rows


def format_table(results: list[CheckResult]) -> str:
    """Render results as a Markdown table with a pass/FAIL column."""
    lines = ["| check | against | value | tolerance | result |", "|---|---|---:|---:|---|"]
    for r in results:
        value = f"{int(r.value)}" if r.tolerance == 0 and math.isfinite(r.value) else f"{r.value:.2e}"
        tol = f"{int(r.tolerance)}" if r.tolerance == 0 else f"{r.tolerance:.0e}"
        lines.append(f"| {r.name} | {r.against} | {value} | {tol} | {'pass' if r.passed else 'FAIL'} |")
    return "\n".join(lines)


def main() -> int:
    """Print the check table and a summary; return 0 if every check passed, else 1."""
    results = run_checks()
    print(format_table(results))
    failed = [f"{r.name} vs {r.against}" for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)}/{len(results)} checks passed" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0
