"""What a sweep leaves in ``lightning_logs/sweeps/<name>/`` and prints: the table, the best config, pictures.

    dlbasics sweep --config mnist_mlp_fishbook --study optimizers   # then: ls lightning_logs/sweeps/*/

The files are those :data:`dlbasics.sweep.HELP` lists; ``trials.csv`` has the columns ``trial, state, value,
run_dir``, one per parameter, then ``seconds, reason``. Every file is written to a temporary name in the same
folder, then renamed, so a reader (or a second machine writing the same file) never sees half of one.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from dlbasics.plots import new_figure
from dlbasics.runs import atomic_write, epoch_metrics
from dlbasics.sweep.runner import Outcome, Plan, print_config
from dlbasics.sweep.study import cli_value, exact, label

SHOWN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)


def save_figure(fig: Any, path: Path) -> Path:
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def shown(plan: Plan, params: dict[str, Any]) -> dict[str, str]:
    """``{short name: label}`` of the parameters that vary (a one-value list is the same for every trial)."""
    names = [p.name for p in plan.study.params]
    varying = [p for p in plan.study.params if p.key in params and (p.is_range or len(p.values) > 1)]
    short = {p.key: p.name if names.count(p.name) == 1 else p.key.replace(".init_args", "") for p in varying}
    return {short[p.key]: label(p.value(params[p.key])) for p in varying}


def params_text(plan: Plan, params: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in shown(plan, params).items())


def trial_line(plan: Plan, number: int, params: dict[str, Any], outcome: Outcome) -> str:
    """The console line of a finished trial: number, parameters, value, state, seconds, run directory."""
    value = f"{plan.study.metric} {outcome.value:.4g}" if outcome.value is not None else ""
    state = outcome.state if outcome.state == "COMPLETE" else f"{outcome.state} ({outcome.reason})"
    seconds = f"{outcome.seconds:.1f} s"
    return f"trial {number:<3d} {params_text(plan, params)}  {value}  {state}  {seconds}  {outcome.run_dir or ''}"


def write_trials_csv(plan: Plan, trials: list[FrozenTrial]) -> Path:
    path, keys = plan.sweep_dir / "trials.csv", [p.key for p in plan.study.params]
    with atomic_write(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["trial", "state", "value", "run_dir", *keys, "seconds", "reason"])
        for t in trials:
            params = [exact(p.value(t.params[p.key])) if p.key in t.params else "" for p in plan.study.params]
            value = "" if t.value is None else repr(t.value)
            run, seconds, reason = (t.user_attrs.get(key, "") for key in ("run_dir", "seconds", "reason"))
            writer.writerow([t.number, t.state.name, value, run, *params, seconds, reason])
    return path


def write_best(plan: Plan, best: FrozenTrial) -> Path:
    """``best.yaml``: the CLI's own ``--print_config`` of the experiment with the best trial's parameters."""
    pairs = [arg for p in plan.study.params for arg in (f"--{p.key}", cli_value(p.value(best.params[p.key])))]
    path = plan.sweep_dir / "best.yaml"
    run, params = best.user_attrs.get("run_dir", ""), params_text(plan, best.params)
    header = f"# Sweep {plan.name}: trial {best.number}, {plan.study.metric} = {best.value!r} ({run}); {params}\n"
    header += f"#   dlbasics fit --config {path}\n"
    with atomic_write(path) as tmp:
        tmp.write_text(header + print_config([*plan.fit_args, *pairs]), encoding="utf-8")
    return path


def comparison_figure(curves: list[dict[str, Any]], metric: str, title: str) -> Figure:
    """Every trial's ``metric`` and training loss per epoch, overlaid, and each trial's value as a bar; the best
    trial black and starred, pruned trials dashed, failed ones dotted.

    Args:
        curves: Per trial: ``label``, ``state`` (``COMPLETE``, ``PRUNED``, ``FAIL``), ``best`` (bool), ``value``
            (the trial's value or ``None``), ``metric`` and ``loss`` (``{epoch: value}``).
    """
    panels = [(metric, "metric")] + ([("train/loss", "loss")] if metric != "train/loss" else [])
    fig = new_figure(4.6 * len(panels) + 3.2, 4.6)
    *axes, bar_ax = fig.subplots(1, len(panels) + 1, width_ratios=[4.6] * len(panels) + [3.2])
    styles = {"COMPLETE": "-", "PRUNED": "--", "FAIL": ":"}
    for i, c in enumerate(curves):
        c["color"] = "black" if c["best"] else f"C{i % 10}"
        suffix = " ★ best" if c["best"] else "" if c["state"] == "COMPLETE" else f" ({c['state'].lower()})"
        line = {"color": c["color"], "lw": 2.6 if c["best"] else 1.4, "ls": styles.get(c["state"], "-")}
        for ax, (_, key) in zip(axes, panels, strict=True):
            if c[key]:
                epochs, values = zip(*sorted(c[key].items()), strict=True)
                ax.plot([e + 1 for e in epochs], values, marker="o", ms=3, label=c["label"] + suffix, **line)
        if c["best"] and (at := [e for e, v in c["metric"].items() if v == c["value"]]):
            axes[0].plot(at[0] + 1, c["value"], "*", color="gold", mec="black", ms=16, zorder=5)
    for ax, (name, key) in zip(axes, panels, strict=True):
        values = [v for c in curves for v in c[key].values() if math.isfinite(v)]
        if "loss" in name and values and min(values) > 0 and max(values) / min(values) > 100:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=name, title=name + (" (the study's metric)" if key == "metric" else ""))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    bars = [c for c in curves if c["value"] is not None and math.isfinite(c["value"])]
    values = [c["value"] for c in bars]
    drawn = bar_ax.barh([c["label"].split(" ")[0] for c in bars], values, alpha=0.85, color=[c["color"] for c in bars])
    bar_ax.bar_label(drawn, fmt="%.4g", fontsize="small", padding=2)
    if "loss" in metric and values and min(values) > 0:
        bar_ax.set_xscale("log")
        bar_ax.margins(x=0.3)  # room for the labels
    elif values:  # close values: start the axis near them, so the differences show
        low, high = min(values), max(values)
        low = low - 0.25 * (high - low) if 0 < high - low < 0.5 * abs(high) else min(0.0, low)
        bar_ax.set_xlim(low, high + 0.3 * (high - low or abs(high) or 1))
    bar_ax.invert_yaxis()
    bar_ax.set(xlabel=metric, title="each trial's value")
    bar_ax.grid(alpha=0.3, axis="x")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(handles)), fontsize="small")
    fig.suptitle(title)
    return fig


def write_comparison(plan: Plan, trials: list[FrozenTrial], best: FrozenTrial | None) -> Path | None:
    curves = []
    for t in trials:
        run = Path(t.user_attrs.get("run_dir", ""))
        if t.state == TrialState.RUNNING or not (run / "metrics.csv").is_file():
            continue
        metrics = epoch_metrics(run)
        curves.append({
            "label": f"#{t.number} {params_text(plan, t.params)}".strip(), "state": t.state.name,
            "best": best is not None and t.number == best.number, "value": t.value,
            "metric": metrics.get(plan.study.metric, {}), "loss": metrics.get("train/loss", {}),
        })  # fmt: skip
    if not curves:
        return None
    title = f"{plan.name}: {len(curves)} trials ({plan.study.direction} {plan.study.metric})"
    return save_figure(comparison_figure(curves, plan.study.metric, title), plan.sweep_dir / "comparison.png")


def optuna_plots(plan: Plan, study: optuna.Study, complete: int) -> list[Path]:
    """Optuna's history (a search, not a grid) and parameter importances (two varying parameters or more)."""
    import matplotlib
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as views

    varying = sum(p.is_range or len(p.values) > 1 for p in plan.study.params)
    wanted = [("history", views.plot_optimization_history)] if plan.study.sampler != "grid" and complete >= 2 else []
    wanted += [("importance", views.plot_param_importances)] if varying >= 2 and complete >= 4 else []
    paths = []
    for name, draw in wanted:
        with warnings.catch_warnings(), matplotlib.rc_context():  # Optuna switches pyplot to its style: undone here
            warnings.simplefilter("ignore")
            try:
                fig = draw(study).figure
            except (ImportError, ValueError, RuntimeError, ZeroDivisionError):  # too few trials, or no sklearn
                continue
            fig.set_size_inches(7, 4.5)
            fig.tight_layout()
            paths.append(save_figure(fig, plan.sweep_dir / f"{name}.png"))
            plt.close(fig)
    return paths


def write_outputs(plan: Plan, study: optuna.Study) -> None:
    """Write every file of the sweep directory from the study as it stands, then print the summary."""
    trials = sorted(study.get_trials(deepcopy=False, states=SHOWN), key=lambda t: t.number)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    paths = [write_trials_csv(plan, trials)]
    if best is not None:
        paths.append(write_best(plan, best))
    if comparison := write_comparison(plan, trials, best):
        paths.append(comparison)
    print_summary(plan, trials, best, paths + optuna_plots(plan, study, len(complete)))


def print_summary(plan: Plan, trials: list[FrozenTrial], best: FrozenTrial | None, paths: list[Path]) -> None:
    """The table of every trial, then the best one and the command that reproduces it."""
    names = list(shown(plan, trials[0].params)) if trials else []
    rows = [["trial", "state", plan.study.metric, "seconds", *names, "run", "reason"]]
    for t in trials:
        value = "" if t.value is None else f"{t.value:.4g}"
        attrs = t.user_attrs
        row = [str(t.number), t.state.name, value, f"{attrs.get('seconds', 0):.1f}", *shown(plan, t.params).values()]
        rows.append([*row, attrs.get("run_dir", ""), str(attrs.get("reason", ""))[:70]])
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    states = [t.state for t in trials]
    summary = ", ".join(f"{states.count(s)} {s.name.lower()}" for s in SHOWN if s in states)
    print(f"\nsweep {plan.name}: {len(trials)} trials ({summary or 'none'})")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
    if best is not None:
        print(f"best: trial {best.number}, {plan.study.metric} {best.value:.6g}: {params_text(plan, best.params)}")
        print(f"reproduce: dlbasics fit --config {plan.sweep_dir / 'best.yaml'}")
    print(f"files: {', '.join(p.name for p in paths)} in {plan.sweep_dir}")
    print(f"dashboard: optuna-dashboard {plan.storage}")
