"""Where the seconds of one ``dlbasics fit`` go: self time of every Lightning action, torchmetrics call, logger
write, checkpoint write, picture and CLI stage, split into start-up / per step / per epoch / end of the run.

    python benchmarks/profile_fit.py rule_classifier [--top 25] [--json out.json] [-- <more dlbasics fit args>]

Runs ``dlbasics fit --config <experiment>`` in this process as the console script does (imports with the garbage
collector paused, then :func:`dlbasics.cli.main`), with a Lightning profiler (:class:`Attribution`) that keeps a
stack of open actions and charges each its *self* time (its children's time left out), by phase: ``start-up``
(to the first training batch), ``step`` (inside ``run_training_batch``), ``epoch`` (training, outside a batch:
validation, epoch ends, checkpoints, loggers) and ``end`` (from ``on_train_end``: pictures, the test, its
pictures). Beyond Lightning's own actions it wraps (see :data:`WRAPPED`) the CLI stages, every torchmetrics
``update``/``compute``, ``self.log``, logger writes, checkpoint dumps and file writes, and the pictures.
``(no action)`` is time inside no action at all: Lightning's loop code between its profiled actions.
Each wrapped call costs about a microsecond, so per-step figures read a little high; use them for shares and
``benchmarks/ablations.py`` for what removing something saves. Nothing in ``dlbasics/`` is changed.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PHASES = ("start-up", "step", "epoch", "end")
#: Functions timed beside Lightning's own actions: (module, class or None, attribute, label).
WRAPPED = [
    ("lightning.pytorch.cli", "LightningCLI", "setup_parser", "[cli] build the parser"),
    ("lightning.pytorch.cli", "LightningCLI", "parse_arguments", "[cli] parse"),
    ("lightning.pytorch.cli", "LightningCLI", "instantiate_classes", "[cli] instantiate model, data, callbacks"),
    ("lightning.pytorch.cli", "LightningCLI", "instantiate_trainer", "[cli] instantiate the trainer"),
    ("lightning.pytorch.trainer.trainer", "Trainer", "_run_sanity_check", "[lightning] sanity check"),
    ("lightning.pytorch.core.module", "LightningModule", "log", "[lightning] self.log"),
    ("lightning.pytorch.core.module", "LightningModule", "log_dict", "[lightning] self.log_dict"),
    ("lightning.pytorch.loops.evaluation_loop", "_EvaluationLoop", "_print_results", "[lightning] results table"),
    ("lightning.pytorch.trainer.connectors.checkpoint_connector", "_CheckpointConnector", "dump_checkpoint",
     "[checkpoint] dump_checkpoint"),
    ("lightning.fabric.plugins.io.torch_io", "TorchCheckpointIO", "save_checkpoint", "[checkpoint] torch.save+write"),
    ("lightning.fabric.plugins.io.torch_io", "TorchCheckpointIO", "load_checkpoint", "[checkpoint] load"),
    ("lightning.pytorch.loggers.csv_logs", "CSVLogger", "log_metrics", "[logger] CSV log_metrics"),
    ("lightning.pytorch.loggers.csv_logs", "CSVLogger", "save", "[logger] CSV save"),
    ("lightning.pytorch.loggers.csv_logs", "CSVLogger", "log_hyperparams", "[logger] CSV log_hyperparams"),
    ("lightning.pytorch.loggers.tensorboard", "TensorBoardLogger", "log_metrics", "[logger] TB log_metrics"),
    ("lightning.pytorch.loggers.tensorboard", "TensorBoardLogger", "log_hyperparams", "[logger] TB log_hyperparams"),
    ("lightning.pytorch.loggers.tensorboard", "TensorBoardLogger", "save", "[logger] TB save"),
    ("lightning.pytorch.loggers.tensorboard", "TensorBoardLogger", "finalize", "[logger] TB finalize"),
    ("dlbasics.dashboards", "SaveConfig", "save_config", "[cli] SaveConfig (config.yaml, TB text)"),
    ("dlbasics.pictures", None, "log_figure", "[pictures] log_figure (TB add_figure)"),
    ("matplotlib.figure", "Figure", "savefig", "[pictures] savefig PNG"),
    ("dlbasics.cli", "DLBasicsCLI", "after_fit", "[cli] after_fit: test of the best checkpoint"),
    ("dlbasics.runs", None, "keep_rows", "[cli] keep_rows (metrics.csv)"),
    ("torchmetrics.collections", "MetricCollection", "update", "[torchmetrics] MetricCollection.update"),
    ("torch.optim.adam", "Adam", "step", "[torch] Adam.step (runs Lightning's closure)"),
    ("torch.optim.adam", None, "adam", "[torch] Adam arithmetic"),
    ("torch.optim.sgd", "SGD", "step", "[torch] SGD.step (runs Lightning's closure)"),
    ("torch.optim.sgd", None, "sgd", "[torch] SGD arithmetic"),
    ("torch.optim.lr_scheduler", "LRScheduler", "step", "[torch] scheduler step"),
]  # fmt: skip


class Attribution:
    """A Lightning profiler (``start``/``stop`` of named actions) charging self time, wall and CPU, by phase.

    At every event the time since the previous one goes to the action on top of the stack (``(no action)`` when
    none is open) in the current phase. Phases: ``start-up`` until the first ``run_training_batch``; then ``step``,
    until the epoch's validation begins (``on_validation_model_eval``) or the epoch ends; ``epoch`` until the next
    ``run_training_batch``; ``end`` from ``on_train_end``.
    """

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.phase = "start-up"
        self.last = (time.perf_counter_ns(), time.thread_time_ns())
        self.self_ns: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # wall, cpu, calls
        self.steps = self.epochs = 0

    def charge(self) -> None:
        now = (time.perf_counter_ns(), time.thread_time_ns())
        record = self.self_ns[self.phase, self.stack[-1] if self.stack else "(no action)"]
        record[0] += now[0] - self.last[0]
        record[1] += now[1] - self.last[1]
        self.last = now

    def start(self, action: str) -> None:
        self.charge()
        if action == "run_training_batch":
            self.phase = "step"
            self.steps += 1
        elif action.endswith(".on_train_end"):
            self.phase = "end"
        elif self.phase == "step" and action.endswith((".on_validation_model_eval", ".on_train_epoch_end")):
            self.phase = "epoch"
        self.stack.append(name_of(action))

    def stop(self, action: str) -> None:
        self.charge()
        name = name_of(action)
        while self.stack and self.stack[-1] != name:  # an action left open (an exception): close it
            self.stack.pop()
        if self.stack:
            self.self_ns[self.phase, self.stack.pop()][2] += 1
        if action == "run_training_epoch":
            self.epochs += 1
            self.phase = "epoch" if self.phase == "step" else self.phase

    def report(self, top: int) -> dict:
        self.charge()
        out = {"steps": self.steps, "epochs": self.epochs, "phases": {}}
        for phase in PHASES:
            rows = sorted(((n, v) for (p, n), v in self.self_ns.items() if p == phase), key=lambda kv: -kv[1][1])
            total = [sum(v[i] for _, v in rows) / 1e9 for i in (0, 1)]
            out["phases"][phase] = {
                "wall_s": total[0],
                "cpu_s": total[1],
                "self": {n: {"wall_s": w / 1e9, "cpu_s": c / 1e9, "calls": k} for n, (w, c, k) in rows[:top]},
                "rest": {
                    "wall_s": sum(v[0] for _, v in rows[top:]) / 1e9,
                    "cpu_s": sum(v[1] for _, v in rows[top:]) / 1e9,
                },
            }
        return out


def name_of(action: str) -> str:
    """Lightning's action name, shortened: a ModelCheckpoint's state key becomes ``(last)`` or ``(best)``."""
    if action.startswith("[Callback]ModelCheckpoint{"):
        kind = "last" if "'monitor': None" in action else "best"
        return f"[Callback]ModelCheckpoint({kind}).{action.rsplit('.', 1)[-1]}"
    return re.sub(r"\[Strategy\]\w+Strategy", "[Strategy]", action)


PROFILER = Attribution()


def timed(fn, label: str):
    def wrapper(*args, **kwargs):
        PROFILER.start(label)
        try:
            return fn(*args, **kwargs)
        finally:
            PROFILER.stop(label)

    wrapper.__wrapped__ = fn
    return wrapper


def install() -> None:
    """Wrap :data:`WRAPPED` and every torchmetrics metric's ``update``/``compute`` (wrapped when it is built)."""
    for module, cls, attr, label in WRAPPED:
        owner = importlib.import_module(module)
        owner = getattr(owner, cls) if cls else owner
        wrapped = timed(getattr(owner, attr), label)
        static = isinstance(inspect.getattr_static(owner, attr), staticmethod)
        setattr(owner, attr, staticmethod(wrapped) if static else wrapped)
    from lightning.pytorch.loggers import TensorBoardLogger
    from torchmetrics import Metric

    getter = TensorBoardLogger.experiment.fget  # the first call imports tensorboard and opens the writer
    TensorBoardLogger.experiment = property(timed(getter, "[logger] TB .experiment (1st: import, SummaryWriter)"))

    for attr, what in (("_wrap_update", "update"), ("_wrap_compute", "compute")):
        original = getattr(Metric, attr)

        def wrap(self, fn, original=original, what=what):
            return timed(original(self, fn), f"[torchmetrics] {type(self).__name__}.{what}")

        setattr(Metric, attr, wrap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment")
    parser.add_argument("--top", type=int, default=25, help="rows per phase")
    parser.add_argument("--json", type=Path, help="write the attribution here too")
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []  # more `dlbasics fit` arguments
    args = parser.parse_args(argv[: len(argv) - len(rest) - bool(rest)])
    sys.argv[1:] = []  # LightningCLI warns when it is given args and sys.argv holds some too
    start = time.perf_counter()
    gc.disable()  # dlbasics.launch.import_frozen
    cli = importlib.import_module("dlbasics.cli")
    gc.freeze()
    gc.enable()
    imported = time.perf_counter() - start
    install()
    original = cli.DLBasicsCLI.instantiate_trainer
    cli.DLBasicsCLI.instantiate_trainer = lambda self, **kw: original(self, **kw, profiler=PROFILER)
    PROFILER.describe = PROFILER.setup = PROFILER.teardown = lambda *a, **k: None  # Lightning calls these
    PROFILER.summary = lambda: ""
    PROFILER.profile = Profile
    PROFILER.last = (time.perf_counter_ns(), time.thread_time_ns())
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        cli.main(["fit", "--config", args.experiment, *rest])
    result = {"experiment": args.experiment, "import_dlbasics_cli_s": imported} | PROFILER.report(args.top)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    sys.stdout.flush()
    os._exit(0)  # as dlbasics.launch: no module teardown


class Profile:
    """``profiler.profile(name)`` as a plain context manager (Lightning's is a generator)."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> str:
        PROFILER.start(self.action)
        return self.action

    def __exit__(self, *exc) -> None:
        PROFILER.stop(self.action)


def print_report(result: dict) -> None:
    steps, epochs = max(result["steps"], 1), max(result["epochs"], 1)
    print(f"\n{result['experiment']}: import dlbasics.cli {result['import_dlbasics_cli_s']:.2f} s", end="")
    print(f"; {result['steps']} steps, {result['epochs']} epochs. Self time: CPU, wall (sorted by CPU)")
    for phase, p in result["phases"].items():
        per, unit, scale = {"step": (steps, "µs/step", 1e6), "epoch": (epochs, "ms/epoch", 1e3)}.get(
            phase, (1, "ms", 1e3)
        )
        print(f"\n== {phase}: CPU {p['cpu_s']:.3f} s, wall {p['wall_s']:.3f} s; {unit}: CPU, wall, calls")
        for name, v in [*p["self"].items(), ("(the rest)", p["rest"] | {"calls": 0})]:
            cpu, wall = v["cpu_s"] / per * scale, v["wall_s"] / per * scale
            print(f"  {cpu:9.1f} {wall:9.1f} {v['calls']:7d}  {name}")
        print(f"  {p['cpu_s'] / per * scale:9.1f} {p['wall_s'] / per * scale:9.1f}           (total)")


if __name__ == "__main__":
    main()
