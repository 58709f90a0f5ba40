"""One run from data to a tested model (issue 13) and the CLI's promises (issue 15): console, signals, no junk.

Every test drives `dlbasics` the way users do: `main([...])` in a temporary folder, or a subprocess.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from helpers import CONFIGS, assert_in_order, quiet_console, read_metrics

from dlbasics.callbacks import FiniteLossGuard
from dlbasics.data.mnist import DEBIAN_FASHION_MNIST
from dlbasics.models import RuleClassifier

RULE = CONFIGS / "rule_classifier.yaml"
SMALL = ["--data.num_train", "640", "--data.num_val", "200", "--data.num_test", "300"]
DLBASICS = [sys.executable, "-m", "dlbasics"]


def test_fit_tests_the_best_checkpoint_in_the_same_run(cli, tmp_path):
    run = cli("fit", "--config", RULE, "--trainer.max_epochs", "3", *SMALL)
    assert [p.name for p in (tmp_path / "lightning_logs").iterdir()] == ["version_0"]  # one run directory
    metrics = read_metrics(run)
    assert len(metrics["val/acc"]) == 3 and len(metrics["test/acc"]) == 1 and "test/f1" in metrics
    assert {"learning_curves.png", "test_confusion_matrix.png"} <= {p.name for p in run.glob("*.png")}
    (best,) = run.glob("checkpoints/best-*.ckpt")
    epoch = torch.load(best, weights_only=True)["epoch"]
    assert metrics["val/acc"][epoch] == max(metrics["val/acc"])  # validation picked it, not the test split
    again = cli("test", "--config", RULE, *SMALL, "--ckpt_path", best)  # the same checkpoint tested on its own
    assert read_metrics(again)["test/acc"] == metrics["test/acc"]


def test_test_after_fit_can_be_switched_off_and_works_with_smoke_runs(cli, tmp_path):
    run = cli("fit", "--config", RULE, "--trainer.max_epochs", "1", *SMALL, "--test_after_fit", "false")
    assert not any(key.startswith("test/") for key in read_metrics(run))
    cli("fit", "--config", RULE, "--trainer.fast_dev_run", "2")  # no loggers, no checkpoint: tests current weights


def test_resumed_fit_tests_at_the_end(cli):
    cli("fit", "--config", RULE, "--trainer.max_epochs", "1", *SMALL)
    resumed = cli("fit", "--config", RULE, "--trainer.max_epochs", "2", *SMALL, "--ckpt_path", "last")
    assert resumed.name == "version_1" and "test/acc" in read_metrics(resumed)


class NoTestData(L.LightningDataModule):
    """Vectors for the rule classifier with train and val splits but no test split."""

    num_features, num_classes = 5, 2

    def train_dataloader(self):
        x = torch.rand(64, 5)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > x[:, 4]).long()), 16)

    val_dataloader = train_dataloader


def test_test_after_fit_without_a_test_split_stops_before_training(refused, tmp_path):
    line = refused("fit", "--model", "RuleClassifier", "--data", f"{__name__}.NoTestData")
    assert "NoTestData has no test_dataloader" in line and "--test_after_fit false" in line
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param(["--data.init_args.batch_size", "0"], 1, id="batch_size 0"),
        pytest.param(["--model.optimizer.init_args.lr", "-1"], 1, id="negative lr"),
        pytest.param(["--test_after_fit", "maybe"], 2, id="test_after_fit maybe"),
        pytest.param(["--trainer.max_epochs", "ten"], 2, id="max_epochs ten"),
    ],
)
def test_a_refused_run_leaves_no_directory_and_takes_no_version(cli, refused, tmp_path, args, code):
    refused("fit", "--config", RULE, *args, code=code)
    assert not (tmp_path / "lightning_logs").exists()
    assert cli("fit", "--config", RULE, "--trainer.max_epochs", "1", *SMALL).name == "version_0"


def test_plain_fit_console_is_quiet_and_in_order(tmp_path):
    console = quiet_console(tmp_path, "fit", "--config", "linear_regression")
    assert console.count("epoch 3/3 ") == 1
    order = ["Seed set to 42", "Total FLOPs", "epoch 1/3 ", "epoch 3/3 ", "learning curves:", "closed-form w"]
    assert_in_order(console, [*order, "test/loss"])


@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_the_sprint_console_is_quiet_too(tmp_path):
    """bf16-mixed, no sanity check, no pictures: a configuration the linear regression above does not cover."""
    limits = [f"--trainer.limit_{stage}_batches={n}" for stage, n in (("train", 4), ("val", 1), ("test", 1))]
    console = quiet_console(tmp_path, "fit", "--config", "fashion_mnist_cnn_sprint", *limits)
    assert "Sanity" not in console
    order = ["Seed set to 42", "bfloat16", "Total FLOPs", "epoch 1/1 ", "Loaded model weights", "test/acc"]
    assert_in_order(console, order)


def test_the_console_entry_points_import_with_the_collector_paused_then_frozen():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name.startswith("dlbasics")}
    assert scripts == {"dlbasics": "dlbasics.launch:main", "dlbasics-tour": "dlbasics.launch:tour"}
    probe = (
        "import gc, sys; from dlbasics.launch import import_frozen; cli = import_frozen('dlbasics.cli'); "
        "print(gc.isenabled(), gc.get_freeze_count(), gc.get_count()[0], 'lightning' in sys.modules)"
    )
    enabled, frozen, young, lightning = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    # torch and Lightning's objects are out of the collector's reach; it runs again for what comes after
    assert enabled == "True" and int(frozen) > 200_000 and int(young) < 1000 and lightning == "True"


@pytest.mark.parametrize(
    ("entry", "status"), [("None", 0), ("sys.exit(3)", 3), ("sys.exit('bad')", 1), ("1 / 0", 1), ("7", 7)]
)
def test_the_console_exit_skips_only_the_teardown(entry, status):
    """Handlers registered during the run still run (after it), buffered output is flushed, the status is kept."""
    probe = (
        "import atexit, sys\nfrom dlbasics.launch import run_then_skip_teardown\n"
        "def entry():\n    atexit.register(print, 'handler ran', end='')\n"  # a pipe: buffered, no newline
        f"    return {entry}\n"
        "run_then_skip_teardown(entry)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == status and proc.stdout == "handler ran", (proc.stdout, proc.stderr)
    assert ("ZeroDivisionError" in proc.stderr) == (entry == "1 / 0")  # a failure's traceback is printed
    assert ("bad" in proc.stderr) == ("bad" in entry)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_gracefully_with_the_conventional_exit_status(tmp_path, signum, code):
    cmd = [*DLBASICS, "fit", "--config", RULE, "--trainer.max_epochs", "100000", *SMALL]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    deadline = time.monotonic() + 180
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    time.sleep(0.5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    model = RuleClassifier.load_from_checkpoint(last)  # the last checkpoint stays usable
    assert model(torch.rand(3, 5)).shape == (3,)


class NaNAtStep(RuleClassifier):
    """A rule classifier whose loss is NaN at one training batch."""

    def __init__(self, bad_batch: int = 7) -> None:
        super().__init__()
        self.bad_batch = bad_batch

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if batch_idx == self.bad_batch else loss


@pytest.mark.parametrize("on_device", [True, False])
def test_nan_guard_reads_its_record_every_stride_and_names_the_first_bad_step(on_device):
    x = torch.rand(320, 5)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > x[:, 4]).long()), 16)
    guard = FiniteLossGuard(stride=5, on_device=on_device)  # the device-side record also works on CPU tensors
    reads = []
    guard.check = lambda trainer, check=guard.check: reads.append(trainer.global_step) or check(trainer)
    trainer = L.Trainer(max_epochs=1, callbacks=[guard], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    with pytest.raises(FloatingPointError, match=r"became nan at epoch 0, step 8:"):
        trainer.fit(NaNAtStep(bad_batch=7), data)  # batch 7 is optimizer step 8; 8 is not a multiple of 5
    assert reads == [5, 10]  # read twice, not at every step; the error names step 8, where the loss went bad


def test_a_checkpoint_of_an_older_dlbasics_is_refused_with_one_line(cli, refused, tmp_path):
    run = cli("fit", "--config", RULE, "--trainer.max_epochs", "1", *SMALL, "--test_after_fit", "false")
    checkpoint = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    del checkpoint["dlbasics_format_version"]
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    with pytest.raises(ValueError, match=r"older dlbasics.*retrain it with `dlbasics fit`"):
        RuleClassifier.load_from_checkpoint(old)
    assert "retrain it with `dlbasics fit`" in refused("test", "--config", RULE, "--ckpt_path", old)


def test_default_callbacks_are_visible_and_can_be_dropped_in_yaml(cli, printed, tmp_path):
    config = yaml.safe_load(printed("fit", "--config", RULE, "--print_config"))
    listed = [c["class_path"] for c in config["trainer"]["callbacks"]]
    for name in ("ModelCheckpoint", "Progress", "PredictionWriter", "FiniteLossGuard", "LearningRateMonitor",
                 "LearningCurves", "ConfusionMatrix", "Forecast"):  # fmt: skip
        assert any(path.endswith(f".{name}") for path in listed), (name, listed)
    assert config["checkpoint"]["monitor"] == "val/acc" and config["checkpoint"]["mode"] == "max"
    fewer = [c for c in config["trainer"]["callbacks"] if not c["class_path"].endswith(".ConfusionMatrix")]
    overlay = tmp_path / "fewer.yaml"
    overlay.write_text(yaml.safe_dump({"trainer": {"callbacks": fewer}}))
    run = cli("fit", "--config", RULE, "--config", overlay, "--trainer.max_epochs", "1", *SMALL)
    assert (run / "learning_curves.png").is_file() and not (run / "test_confusion_matrix.png").exists()
    assert "ConfusionMatrix" not in (run / "config.yaml").read_text()


def test_a_checkpoint_naming_a_foreign_instantiator_runs_nothing(cli, tmp_path):
    run = cli("fit", "--config", RULE, "--trainer.max_epochs", "1", *SMALL, "--test_after_fit", "false")
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "pwned"
    (evil / "evil_payload.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        f"def run(*args, **kwargs):\n    Path({str(marker)!r}).write_text('ran')\n"
    )
    checkpoint = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["_instantiator"] = "evil_payload.run"
    bad = tmp_path / "bad.ckpt"
    torch.save(checkpoint, bad)
    sys.path.insert(0, str(evil))
    try:
        with pytest.raises(ValueError, match=r"_instantiator 'evil_payload\.run' is not LightningCLI's"):
            RuleClassifier.load_from_checkpoint(bad)
    finally:
        sys.path.remove(str(evil))
    assert "evil_payload" not in sys.modules and not marker.exists()
    env = {**os.environ, "PYTHONPATH": str(evil)}
    proc = subprocess.run([*DLBASICS, "test", "--config", RULE, *SMALL, "--ckpt_path", bad], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert not marker.exists(), proc.stderr[-2000:]
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]  # refused, not crashed
    assert "_instantiator 'evil_payload.run' is not LightningCLI's" in proc.stderr


def test_version_help_and_concrete_choices(printed):
    assert printed("--version").strip().endswith("0.1.0")
    out = printed("--help")
    assert "rule_classifier" in out and "fashion_mnist_cnn_sprint" in out and "'last' and 'best'" in out
    out = " ".join(printed("fit", "--help").split())
    for abstract in ("dlbasics.models.base", "ImageClassifier", "SineRNN", "InMemoryDataModule", "SyntheticData"):
        assert abstract not in out, abstract
    assert "dlbasics.models.SineGRU" in out and "--optimizer " not in out and "--lr_scheduler " not in out


def test_no_private_lightning_names_in_the_package():
    package = Path(__file__).resolve().parents[1] / "dlbasics"
    for path in package.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "lightning" in line and "import" in line:
                names = line.split("import", 1)[1]
                assert not any(n.strip().startswith("_") for n in names.split(",")), f"{path}:{number}: {line}"


def dlbasics_imports() -> dict[str, set[str]]:
    """Each dlbasics module → the dlbasics modules it imports anywhere in it (in functions too); a name imported
    from a package counts as that package's submodule when there is one."""
    package = Path(__file__).resolve().parents[1] / "dlbasics"
    modules = {".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in package.rglob("*.py")}  # fmt: skip
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        graph[module] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlbasics"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    graph[module].add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name in modules}
        graph[module].discard(module)
    return graph


def test_no_import_cycle_and_models_import_no_data_pictures_or_runs():
    graph = dlbasics_imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, "import cycle: " + " -> ".join([*path[path.index(module) :], module])
        if module not in done:
            for imported in sorted(graph.get(module, ())):
                visit(imported, [*path, module])
            done.add(module)

    for module in sorted(graph):
        visit(module, [])
    for module in (m for m in graph if m.startswith("dlbasics.models")):
        leaks = {m for m in graph[module] if m.split(".")[1] in ("data", "pictures", "plots", "runs")}
        assert not leaks, f"{module} imports {leaks}"
