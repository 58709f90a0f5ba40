"""Summary and tables of ``same_recipe.py``: medians and min-max, ratios pair by pair, targets of issue 22.

python benchmarks/same_recipe.py --quick   # writes results/same_recipe_quick.{json,md} through this module
"""

from __future__ import annotations

import json
from pathlib import Path

from run import MARK, machine, median_spread

#: Columns of a run's split, in the order of the tables: (key, header, scale to the shown unit).
SPLIT = (
    ("wall", "whole s", 1),
    ("cpu", "CPU s", 1),
    ("startup", "start-up s", 1),
    ("imports", "of which imports s", 1),
    ("steps", "training steps s", 1),
    ("step_ms", "ms/step", 1),
    ("fixed_per_epoch", "fixed ms/epoch", 1e3),
    ("fixed", "fixed s (all epochs)", 1),
    ("test", "test s", 1),
    ("exit", "exit s", 1),
    ("peak_rss_mib", "peak RSS MiB", 1),
)
#: The same split in process CPU seconds.
SPLIT_CPU = tuple(
    (f"cpu_{k}", h, sc) for k, h, sc in SPLIT if k in ("startup", "steps", "step_ms", "fixed_per_epoch", "test", "exit")
)
#: Paired ratios dlbasics / peer: (key, name, target for the tiny experiments, target for the sprint).
RATIOS = (
    ("wall", "whole process", "<= 1.5", "<= 1.25"),
    ("cpu", "CPU time", "", ""),
    ("cpu_after_startup", "CPU after start-up", "", ""),
    ("cpu_step_ms", "CPU per step", "", ""),
    ("after_startup", "after start-up", "<= 1.25", ""),
    ("training", "training (steps + fixed)", "<= 1.25", ""),
    ("step_ms", "training step", "", ""),
    ("fixed_per_epoch", "fixed cost per epoch", "dlbasics <= 0.1 s", ""),
    ("startup", "start-up", "", ""),
)


def cell(r: dict, fmt: str = ".2f", scale: float = 1) -> str:
    """``median (min-max)``."""
    return f"{r['median'] * scale:{fmt}} ({r['min'] * scale:{fmt}}-{r['max'] * scale:{fmt}})"


def summarise(runs: list[dict], checks: list[dict], startup: list[dict], steps: list[dict], quick: bool) -> dict:
    experiments = list(dict.fromkeys(r["experiment"] for r in runs))
    by = {(r["experiment"], r["side"], r["repeat"]): r for r in runs}
    absolute, ratios = {}, {}
    for exp in experiments:
        for side in dict.fromkeys(r["side"] for r in runs):
            rs = [r for r in runs if r["experiment"] == exp and r["side"] == side]
            absolute[f"{exp}:{side}"] = {
                k: median_spread([r[k] for r in rs]) for k, *_ in (*SPLIT, *SPLIT_CPU, *RATIOS)
            }
        repeats = sorted({r["repeat"] for r in runs if r["experiment"] == exp})
        pairs = [(by[exp, "dlbasics", i], by[exp, "peer", i]) for i in repeats]
        ratios[exp] = {k: median_spread([d[k] / p[k] for d, p in pairs]) for k, *_ in RATIOS}
    verdicts = {}
    for c in checks:
        fresh = {"runs": 0, "equal": True, "max_eval_diff": 0.0, "max_train_diff": 0.0}
        v = verdicts.setdefault(c["experiment"], fresh)
        v["runs"] += 1
        v["equal"] &= c["equal"]
        v["max_eval_diff"] = max(v["max_eval_diff"], c["max_eval_diff"])
        v["max_train_diff"] = max(v["max_train_diff"], c["max_train_diff"])
        v.setdefault("compared", c["compared"])
        v.setdefault("test (peer, dlbasics)", c["test"])
    commands = list(dict.fromkeys(s["command"] for s in startup))
    start = {
        name: {k: median_spread([s[k] for s in startup if s["command"] == name]) for k in ("wall", "cpu")}
        for name in commands
    }
    for exp in experiments:
        for side in ("dlbasics fit", "peer"):
            a = absolute[f"{exp}:{side.split()[0]}"]
            start[f"{side} {exp}: to the first step"] = {"wall": a["startup"], "cpu": a["cpu_startup"]}
    raw = {
        case: {k: median_spread([s[k] for s in steps if s["case"] == case]) for k in ("raw_us", "dlbasics_us", "ratio")}
        for case in dict.fromkeys(s["case"] for s in steps)
    }
    return {
        "machine": machine(),
        "quick": quick,
        "ratios": ratios,
        "absolute": absolute,
        "startup": start,
        "steps_vs_raw_loop": raw,
        "metric_checks": verdicts,
        "runs": [{k: v for k, v in r.items() if k != "metrics"} for r in runs],
    }


def markdown(result: dict) -> list[str]:
    m = result["machine"]
    lines = [
        f"# Same recipe: dlbasics vs plain PyTorch ({'quick' if result['quick'] else 'full'})",
        "",
        f"{m['cpu']}, {m['cores']} cores · Python {m['python']} · torch {m['torch']} · {m['date']}",
        "",
        "`dlbasics fit --config <experiment>` (console script, fresh directory, stdout a file: plain progress lines)",
        "against `benchmarks/peer_same_recipe.py`, the same work in plain PyTorch; whole processes, interleaved,",
        "ratios pair by pair. Cells: median (min-max). The peer has dlbasics' process-level settings (gc paused",
        "during the imports, glibc malloc thresholds, exit without module teardown); `peer_plain` rows: without them.",
        "",
        "## Ratios dlbasics / peer",
        "",
        "| experiment | " + " | ".join(name for _, name, *_ in RATIOS) + " |",
        "|---|" + "---:|" * len(RATIOS),
    ]
    for exp, r in result["ratios"].items():
        lines.append(f"| {exp} | " + " | ".join(cell(r[k]) for k, *_ in RATIOS) + " |")
    lines += ["", "Targets (issue 22): " + "; ".join(f"{n} {t}" for _, n, t, _ in RATIOS if t)]
    lines += ["(tiny experiments); the sprint's whole process <= 1.25; a training step <= 2x the raw loop's.", ""]
    for title, columns in (("Where the seconds go", SPLIT), ("Where the CPU seconds go", SPLIT_CPU)):
        lines += [f"## {title}", "", "| run | " + " | ".join(h for _, h, _ in columns) + " |"]
        lines.append("|---|" + "---:|" * len(columns))
        for run, a in result["absolute"].items():
            whole = ("fixed_per_epoch", "peak_rss_mib", "cpu_fixed_per_epoch")
            cells = [cell(a[k], ".0f" if k in whole else ".3g", sc) for k, _, sc in columns]
            lines.append(f"| {run} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "start-up: spawn to the first training step; fixed: an epoch's last step to the next epoch's first step",
        "(validation, epoch-end metrics, loggers, checkpoints, callbacks); test: end of training to the end of the",
        "test (dlbasics: with its end-of-fit pictures); exit: the end of the test to the process's exit.",
        "",
        "## Start-up (whole process, s)",
        "",
        "| command | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    for name, r in result["startup"].items():
        lines.append(f"| {name} | {cell(r['wall'])} | {cell(r['cpu'])} |")
    if result["steps_vs_raw_loop"]:
        lines += ["", "## Training step vs a raw loop (`steps.py`, in one process)", ""]
        lines += ["| experiment | raw µs | dlbasics µs | ratio |", "|---|---:|---:|---:|"]
        for case, r in result["steps_vs_raw_loop"].items():
            cells = [cell(r["raw_us"], ".0f"), cell(r["dlbasics_us"], ".0f"), cell(r["ratio"])]
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
    lines += ["", "## Same metrics? (every common `metrics.csv` column and epoch, every round)", ""]
    lines += ["| experiment | runs | values | max diff val/test | max diff train | equal to 1e-5 |"]
    lines.append("|---|---:|---:|---:|---:|---|")
    for exp, v in result["metric_checks"].items():
        lines.append(
            f"| {exp} | {v['runs']} | {v['compared']} | {v['max_eval_diff']:.2g} | {v['max_train_diff']:.2g} | "
            f"{'yes' if v['equal'] else 'NO'} |"
        )
    return lines


def write_outputs(result: dict, folder: Path) -> str:
    """``same_recipe[_quick].{json,md}``; a full run also becomes the same-recipe section of ``results.md``."""
    name = "same_recipe_quick" if result["quick"] else "same_recipe"
    (folder / f"{name}.json").write_text(json.dumps(result, indent=1))
    text = "\n".join(markdown(result)) + "\n"
    (folder / f"{name}.md").write_text(text)
    if not result["quick"]:
        section = text.replace("# Same recipe:", "## Same recipe:", 1).replace("\n## ", "\n### ")
        section = section.replace("### Same recipe:", "## Same recipe:", 1)
        results = folder / "results.md"
        before = results.read_text().split(MARK)[0].rstrip() if results.is_file() else "# dlbasics benchmarks"
        results.write_text(f"{before}\n\n{MARK}\n{section}")
    return text
