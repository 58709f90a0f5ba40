"""Candidate removals, as patches applied in the process before ``dlbasics`` runs: experiments, not changes.

    python benchmarks/ablation_patches.py epoch_metrics+no_nvml_probe fit --config rule_classifier
    python benchmarks/ablation_patches.py --worker epoch_metrics fit --config rule_classifier   # one fit a line

The first argument names the patches (``+``-joined, ``none`` for none); the rest is a ``dlbasics`` command line,
run exactly as the console script runs it (:func:`dlbasics.launch.main`). ``benchmarks/ablations.py`` times these
runs against the unpatched one. Nothing under ``dlbasics/`` is edited: each patch swaps a function or a default
in the imported modules, so that what a candidate would save can be measured before anyone writes it properly.

The patches are written against the code they measured: dlbasics at commit 3f3dbfb (before the issue-22 changes
they led to; ``benchmarks/results/ablations_*.md``). Run them from a checkout of that commit
(``git worktree add ../dlbasics-3f3dbfb 3f3dbfb``); on today's code most of them would patch what is gone.
"""

from __future__ import annotations

import functools
import os
import sys


def epoch_metrics() -> None:
    """torchmetrics once per epoch: a step adds its loss x size to a running float32 sum (the additions
    ``MeanMetric`` makes, in the same order: the same bits) and keeps (output, target); the epoch end puts the sum
    into the stage's ``MeanMetric`` and updates its ``MetricCollection`` once with all outputs, then logs as before."""
    import torch

    from dlbasics.models.base import Experiment

    log_epoch = Experiment._log_epoch

    def shared_step(self, batch, stage):
        x, y = batch[0], batch[1]
        output = self(x)
        loss = self.compute_loss(output, y)
        kept = self.__dict__.setdefault("_kept", {}).setdefault(stage, {"sum": torch.zeros(()), "n": 0, "out": []})
        kept["sum"] = kept["sum"] + self.reported_loss(loss.detach()).float() * float(len(y))
        kept["n"] += len(y)
        if self.has_metrics:
            kept["out"].append((output.detach(), y))
        return loss, output.detach()

    def epoch_end(self, stage):
        kept = self.__dict__.get("_kept", {}).pop(stage, None)
        if kept:
            mean = getattr(self, f"{stage}_loss")
            mean.mean_value += kept["sum"]
            mean.weight += kept["n"]
            mean._update_count += 1
            if kept["out"]:
                outputs, targets = zip(*kept["out"], strict=True)
                getattr(self, f"{stage}_metrics").update(self.metric_preds(torch.cat(outputs)), torch.cat(targets))
        log_epoch(self, stage)

    Experiment._shared_step, Experiment._log_epoch = shared_step, epoch_end


def no_validate_args() -> None:
    """torchmetrics' classification metrics built with ``validate_args=False`` (no per-update input checks)."""
    import dlbasics.models.base as base

    base.ConfusionMatrix = functools.partial(base.ConfusionMatrix, validate_args=False)
    for name in ("BinaryAccuracy", "BinaryF1Score", "BinaryPrecision", "BinaryRecall", "MulticlassAccuracy",
                 "MulticlassF1Score", "MulticlassPrecision", "MulticlassRecall"):  # fmt: skip
        setattr(base, name, functools.partial(getattr(base, name), validate_args=False))


def no_nvml_probe() -> None:
    """Undo ``import lightning``'s ``PYTORCH_NVML_BASED_CUDA_CHECK=1``: on a machine without NVIDIA's library every
    ``torch.cuda.is_available()`` (Adam asks in every ``step``) then tries to load it again (~40 µs)."""
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


def fit_parser_only() -> None:
    """Build the parser of the subcommand being run only (LightningCLI builds fit, validate, test and predict)."""
    from lightning.pytorch.cli import LightningCLI

    import dlbasics.cli

    wanted = next((a for a in sys.argv[1:] if a in LightningCLI.subcommands()), "fit")
    only = {wanted: LightningCLI.subcommands()[wanted]}
    dlbasics.cli.DLBasicsCLI.subcommands = staticmethod(lambda: only)


def single_render() -> None:
    """Pictures drawn once: the PNG and TensorBoard's image from one Agg rendering (same pixels), instead of
    ``savefig`` plus ``add_figure``'s own rendering."""
    import numpy as np
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    import dlbasics.pictures as pictures

    def log_figure(trainer, name, fig):
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return None
        path = pictures.run_dir(trainer) / f"{name.replace('/', '_')}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        Image.fromarray(rgba).save(path, dpi=(fig.dpi, fig.dpi))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(name, rgba[..., :3], trainer.global_step, dataformats="HWC")
                logger.experiment.flush()
            elif isinstance(logger, WandbLogger):
                logger.log_image(key=name, images=[str(path)], step=trainer.global_step)
        return path

    pictures.log_figure = log_figure


def bar_every_10() -> None:
    """Rich's live progress bar redrawn every 10th batch instead of every batch (a terminal only)."""
    import dlbasics.callbacks

    init = dlbasics.callbacks.Progress.__init__

    def every_10(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._refresh_rate = 10

    dlbasics.callbacks.Progress.__init__ = every_10


def _drop_callbacks(*names: str) -> None:
    import dlbasics.cli

    dlbasics.cli.CALLBACKS[:] = [c for c in dlbasics.cli.CALLBACKS if not c["class_path"].endswith(names)]


def no_pictures() -> None:
    """The seven picture callbacks left out (users lose the PNGs and TensorBoard images)."""
    _drop_callbacks(*(f".{n}" for n in ("LearningCurves", "FittedCurve", "ConfusionMatrix", "MisclassifiedImages",
                                        "ActivationMaps", "Forecast", "PredictionGrid")))  # fmt: skip


def no_lr_monitor() -> None:
    _drop_callbacks(".LearningRateMonitor")


def no_loss_guard() -> None:
    _drop_callbacks(".FiniteLossGuard")


def no_last_ckpt() -> None:
    """The ``last.ckpt`` ModelCheckpoint left out: one checkpoint write per improved epoch instead of two."""
    import dlbasics.cli

    dlbasics.cli.CALLBACKS[:] = [c for c in dlbasics.cli.CALLBACKS if c.get("init_args", {}).get("filename") != "last"]


def csv_only() -> None:
    """TensorBoard logger left out (users lose TensorBoard)."""
    import dlbasics.cli

    dlbasics.cli.LOGGERS[:] = [lg for lg in dlbasics.cli.LOGGERS if lg["class_path"].endswith("CSVLogger")]


def floor() -> None:
    """Lightning with the dlbasics model and nothing else: no default callbacks, no logger (the best-checkpoint
    callback stays, for the test). Give it ``--trainer.enable_progress_bar false --trainer.enable_model_summary
    false --trainer.num_sanity_val_steps 0``."""
    import dlbasics.cli

    dlbasics.cli.CALLBACKS[:] = []
    dlbasics.cli.LOGGERS[:] = []


PATCHES = {
    f.__name__: f
    for f in (epoch_metrics, no_validate_args, no_nvml_probe, fit_parser_only, single_render, bar_every_10,
              no_pictures, no_lr_monitor, no_loss_guard, no_last_ckpt, csv_only, floor)
}  # fmt: skip


def worker(argv: list[str]) -> None:
    """``--worker``: a warm process that runs ``dlbasics <argv>`` once per line on stdin, each time in a fresh
    directory under the folder the line names, and answers each with one JSON line: the ``bench_callbacks.Timeline``
    events (seconds since this fit began; ``cpu`` fields: process CPU seconds since then), wall and CPU seconds of
    the fit, the run's files and its ``metrics.csv``. Imports and first-call costs are paid before the first fit."""
    import json
    import shutil
    import tempfile
    import time
    from pathlib import Path

    import bench_callbacks

    import dlbasics.cli

    answer = sys.stdout
    for line in sys.stdin:
        work = Path(tempfile.mkdtemp(dir=line.strip()))
        os.environ["BENCH_EVENTS"] = str(work / "events.jsonl")
        os.chdir(work)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (the run's own output: progress lines, tables)
        start, cpu0 = time.time(), time.process_time()
        bench_callbacks.START = start
        try:
            dlbasics.cli.main(list(argv))
        finally:
            sys.stdout.close()
            sys.stdout = answer
        wall, cpu = time.time() - start, time.process_time() - cpu0
        events = [json.loads(e) for e in (work / "events.jsonl").read_text().splitlines()]
        for e in events:  # process CPU seconds since this fit began
            e.update({k: v - cpu0 for k, v in e.items() if k == "cpu" or k.endswith("_cpu")})
        run = work / "lightning_logs" / "version_0"
        files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()) if run.is_dir() else []
        csv = (run / "metrics.csv").read_text() if (run / "metrics.csv").is_file() else ""
        print(json.dumps({"events": events, "wall": wall, "cpu": cpu, "files": files, "csv": csv}), flush=True)
        os.chdir(work.parent)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    warm = sys.argv[1] == "--worker"
    names = [] if sys.argv[1 + warm] == "none" else sys.argv[1 + warm].split("+")
    sys.argv[1:] = sys.argv[2 + warm :]
    from dlbasics import launch

    launch.import_frozen("dlbasics.cli")
    for name in names:
        PATCHES[name]()
    if warm:
        worker(sys.argv[1:])
    else:
        sys.exit(launch.main())


if __name__ == "__main__":
    main()
