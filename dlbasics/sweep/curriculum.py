"""The tour's comparisons: short runs of the optimizers, init and recurrent studies, the notes' orderings checked.

    dlbasics-tour --quick --only optimizers init recurrent

Each comparison is one ``dlbasics sweep`` into the tour's folder (``runs/sweeps/<study>``), on MNIST when it is
there and Fashion-MNIST otherwise. Its report section has the sweep's pictures, the trials' table and every ordering
the notes teach, each marked holds / does not hold; the comparison passes only when all of them hold (nothing is
loosened to pass). Optuna missing: the comparisons are skipped with the line that says how to install it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Comparison:
    """A shipped study run by the tour: its experiment, what the notes claim, and how to check it."""

    study: str
    config: str
    reference: str
    key: Callable[[dict[str, str]], str]  # a trial's parameters → the name the claims use
    claims: list[tuple[str, str, str]]  # (better, worse, why): `better` must beat `worse`
    quick: list[str]
    full: list[str]
    images: bool = False
    note: str = ""
    data: bool = True  # needs MNIST or Fashion-MNIST
    direction: str = "maximize"


def _optimizer(params: dict[str, str]) -> str:
    label = params["model.init_args.optimizer"]
    return "momentum" if "momentum=" in label else {"Adagrad": "AdaGrad"}.get(label.split("(")[0], label.split("(")[0])


COMPARISONS = [
    Comparison(
        "optimizers", "mnist_mlp_fishbook.yaml", "fish book 6.1: momentum, AdaGrad, Adam learn faster than plain SGD",
        _optimizer, [(name, "SGD", "at equal steps") for name in ("Adam", "AdaGrad", "momentum")],
        quick=["--trainer.max_steps", "-1", "--trainer.max_epochs", "4", "--trainer.limit_train_batches", "0.25"],
        full=["--trainer.max_steps", "2200"],
    ),
    Comparison(
        "init", "mnist_mlp_deep.yaml", "fish book 6.2: Xavier and He ahead of N(0, 0.01²) on the deep ReLU net",
        lambda p: f"{p['model.init_args.activation']} {p['model.init_args.init']}",
        [("relu xavier", "relu normal", "ReLU"), ("relu kaiming", "relu normal", "ReLU")],
        quick=["--trainer.max_epochs", "4", "--trainer.limit_train_batches", "0.25"], full=[], images=True,
        note="Sigmoid runs are shown, not checked: the book compares learning with ReLU and shows sigmoid's "
        "activation histograms only (plain SGD lr 0.01 barely moves a five-layer sigmoid net whatever its init).",
    ),
    Comparison(
        "recurrent", "sine_rnn.yaml", "RNN chapter: LSTM and GRU ahead of the plain RNN on a long window (200 steps)",
        lambda p: p["model"].rsplit(".", 1)[-1].removeprefix("Sine").replace("PlainRNN", "RNN"),
        [("LSTM", "RNN", "val MSE"), ("GRU", "RNN", "val MSE")],
        quick=["--trainer.max_epochs", "5"], full=[], data=False, direction="minimize",
    ),
]  # fmt: skip
NAMES = [c.study for c in COMPARISONS]


def judge(comp: Comparison, trials: list[dict[str, str]]) -> tuple[list[str], str, bool]:
    """Each claim as a report line (values, holds / does not hold), the claims in one line, and whether all hold."""
    values = {comp.key(t): float(t["value"]) for t in trials if t["state"] == "COMPLETE"}
    lines, short, held = [], [], True
    for better, worse, why in comp.claims:
        if better not in values or worse not in values:
            lines.append(f"{better} ahead of {worse}: not measured (a trial did not complete)")
            short.append(f"{better} vs {worse}: not measured ✗")
            held = False
            continue
        a, b = values[better], values[worse]
        ok = a > b if comp.direction == "maximize" else a < b
        held &= ok
        verdict, sign = ("holds", "✓") if ok else ("**does not hold**", "✗")
        lines.append(f"{better} ahead of {worse} ({why}): {a:.4g} vs {b:.4g} — {verdict}")
        short.append(f"{better} {a:.3g} {'>' if comp.direction == 'maximize' else '<'} {worse} {b:.3g} {sign}")
    return lines, "; ".join(short), held


def details(comp: Comparison, trials: list[dict[str, str]], claims: list[str], tour_dir: Path) -> str:
    """The report's text for a comparison: the trials' table, the claims, the per-trial pictures (init)."""
    keys = [k for k in (trials[0] if trials else {}) if "." in k or k == "model"]
    header = "| trial | " + " | ".join(k.rsplit(".", 1)[-1] for k in keys) + " | value | state | seconds |"
    lines = [header, "|" + "---|" * (len(keys) + 4)]
    for t in trials:
        value = f"{float(t['value']):.4g}" if t["value"] else "—"
        cells = [t["trial"], *(t[k] for k in keys), value, t["state"], t["seconds"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"- {line}" for line in claims)] + ([f"- {comp.note}"] if comp.note else [])
    if comp.images and trials:
        lines += ["", "Each run's hidden activations at the start and the end of training:", ""]
        for t in trials:
            picture = (Path(t["run_dir"]) / "activation_histograms.png").resolve()
            if picture.is_file():
                lines.append(f"![{comp.key(t)}]({picture.relative_to(tour_dir.resolve())})")
    return "\n".join(lines)
