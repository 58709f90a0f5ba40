"""Check table for the from-scratch NumPy code: analytic gradients vs finite differences and torch.

    python -m dlbasics.scratch   # prints the table; exits non-zero if any check fails

Every hand-derived gradient is compared with :func:`~dlbasics.scratch.gradient.numerical_gradient` and
with torch autograd in float64 (relative error), scratch Adam/SGD with ``torch.optim`` over 10 steps,
softmax/cross-entropy on extreme logits with torch's values, the perceptron gates with their truth
tables, and the polynomial fit with its true coefficients. This is the only scratch module that
imports torch, lazily, inside :func:`run_checks`.
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
    """One row of the check table.

    Attributes:
        name: What is checked, e.g. ``"sigmoid'"`` or ``"TwoLayerNet(relu) dW1"``.
        against: The reference, e.g. ``"numerical"`` or ``"torch autograd"``.
        value: The error measured (relative error, max abs difference or count of wrong rows).
        tolerance: Largest ``value`` that passes.
        passed: ``value`` is finite and ``<= tolerance``.
    """

    name: str
    against: str
    value: float
    tolerance: float
    passed: bool


def _result(name: str, against: str, value: float, tol: float) -> CheckResult:
    return CheckResult(name, against, float(value), tol, bool(math.isfinite(value) and value <= tol))


def _gradient_rows(name: str, analytic: dict, numerical: dict, autograd: dict) -> list[CheckResult]:
    rows = []
    for key in analytic:
        label = f"{name} {key}".strip()
        rows.append(_result(label, "numerical", relative_error(analytic[key], numerical[key]), NUMERICAL_TOL))
        rows.append(_result(label, "torch autograd", relative_error(analytic[key], autograd[key]), TORCH_TOL))
    return rows


def _check_gradients(torch, rng: np.random.Generator) -> list[CheckResult]:
    tf = torch.nn.functional
    T = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)  # noqa: E731
    rows = []
    torch_acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
    for act, (fn, grad_fn) in F.ACTIVATIONS.items():
        x, w = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
        x[np.abs(x) < 1e-3] += 1e-2  # keep finite differences off relu's kink
        xt = T(x)
        (torch_acts[act](xt) * torch.from_numpy(w)).sum().backward()
        num = numerical_gradient(lambda z, fn=fn, w=w: np.sum(fn(z) * w), x.copy())
        rows += _gradient_rows(f"{act}'", {"": grad_fn(x) * w}, {"": num}, {"": xt.grad.numpy()})

    logits, labels = rng.standard_normal((4, 5)), rng.integers(0, 5, 4)
    for kind, t in (("index", labels), ("one-hot", np.eye(5)[labels])):
        zt = T(logits)
        tf.cross_entropy(zt, torch.from_numpy(t)).backward()
        num = numerical_gradient(lambda z, t=t: F.softmax_cross_entropy(z, t), logits.copy())
        ana = F.softmax_cross_entropy_grad(logits, t)
        rows += _gradient_rows(f"softmax-CE ({kind} labels)", {"": ana}, {"": num}, {"": zt.grad.numpy()})

    y, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    yt = T(y)
    tf.mse_loss(yt, torch.from_numpy(t)).backward()
    num = numerical_gradient(lambda z: F.mse_loss(z, t), y.copy())
    rows += _gradient_rows("MSE", {"": F.mse_grad(y, t)}, {"": num}, {"": yt.grad.numpy()})

    x, W, b, g = (rng.standard_normal(s) for s in ((4, 6), (6, 3), (3,), (4, 3)))
    layer = Linear(W, b)
    layer.forward(x)
    ana = {"dx": layer.backward(g), "dW": layer.dW, "db": layer.db}
    f = lambda _: np.sum(Linear(W, b).forward(x) * g)  # noqa: E731 -- reads the perturbed arrays
    num = {"dx": numerical_gradient(f, x), "dW": numerical_gradient(f, W), "db": numerical_gradient(f, b)}
    xt, Wt, bt = T(x), T(W), T(b)
    ((xt @ Wt + bt) * torch.from_numpy(g)).sum().backward()
    rows += _gradient_rows("Linear", ana, num, {"dx": xt.grad.numpy(), "dW": Wt.grad.numpy(), "db": bt.grad.numpy()})

    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    for act in ("sigmoid", "relu"):
        net = TwoLayerNet(6, 5, 3, activation=act, weight_init_std=1.0, seed=int(rng.integers(2**31)))
        net.params["b1"][:], net.params["b2"][:] = rng.standard_normal(5), rng.standard_normal(3)
        p = {k: T(v) for k, v in net.params.items()}
        hidden = torch_acts[act](torch.from_numpy(x) @ p["W1"] + p["b1"])
        tf.cross_entropy(hidden @ p["W2"] + p["b2"], torch.from_numpy(t)).backward()
        auto = {k: p[k].grad.numpy() for k in PARAM_NAMES}
        ana, num = net.gradient(x, t), net.numerical_gradient(x, t)
        rows += _gradient_rows(
            f"TwoLayerNet({act})",
            {f"d{k}": ana[k] for k in PARAM_NAMES},
            {f"d{k}": num[k] for k in PARAM_NAMES},
            {f"d{k}": auto[k] for k in PARAM_NAMES},
        )
    return rows


def _check_optimizers(torch, rng: np.random.Generator, steps: int = 10) -> list[CheckResult]:
    rows = []
    start = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(steps)]
    cases = (
        (
            "Adam",
            Adam(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8),
            lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.9, 0.999), eps=1e-8),
        ),
        ("SGD", SGD(lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    )
    for name, ours, make_theirs in cases:
        params = {k: v.copy() for k, v in start.items()}
        tparams = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in start.items()}
        theirs = make_theirs(list(tparams.values()))
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
    sm, ce = F.softmax(logits), F.softmax_cross_entropy(logits, labels)
    t_logits = torch.from_numpy(logits)
    t_sm = torch.softmax(t_logits, dim=-1).numpy()
    t_ce = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(labels)).item()
    finite = np.all(np.isfinite(sm)) and np.isfinite(ce)
    return [
        _result(
            "softmax on extreme logits",
            "torch (finite)",
            np.max(np.abs(sm - t_sm)) if finite else math.inf,
            1e-12,
        ),
        _result(
            "softmax-CE on extreme logits",
            "torch (finite)",
            abs(ce - t_ce) / abs(t_ce) if finite else math.inf,
            1e-12,
        ),
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
