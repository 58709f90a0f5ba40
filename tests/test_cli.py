"""The CLI the way users drive it: subcommands, short names, print_config, links, reruns, the console script.

Bad input on the command line: test_bad_input.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import CONFIGS

RULE = CONFIGS / "rule_classifier.yaml"
ALL_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def test_print_config_resolves_short_names(printed):
    config = yaml.safe_load(printed("fit", "--model", "RuleClassifier", "--data", "RuleData", "--print_config"))
    assert config["model"]["class_path"] == "dlbasics.models.RuleClassifier"
    assert config["data"]["class_path"] == "dlbasics.data.RuleData"
    assert config["seed_everything"] == 42


def test_fit_validate_test_predict_and_rerun(cli):
    fast = ("--trainer.limit_train_batches", "5", "--trainer.limit_val_batches", "2", "--trainer.max_epochs", "1")
    run = cli("fit", "--config", RULE, *fast)
    again = cli("fit", "--config", RULE, *fast)  # config.yaml from the first run must not block a re-run
    assert again != run and (again / "config.yaml").is_file()
    ckpt = run / "checkpoints" / "last.ckpt"
    for sub in ("validate", "test", "predict"):
        out = cli(sub, "--config", RULE, "--ckpt_path", ckpt)
        assert (out / "config.yaml").is_file()
    assert (out / "predictions.csv").read_text().startswith("index,class,probability")


@pytest.mark.parametrize("name", ["linear_regression.yaml", "polynomial_regression.yaml", "rule_classifier.yaml"])
def test_fast_dev_run_every_synthetic_config(cli, name):
    cli("fit", "--config", CONFIGS / name, "--trainer.fast_dev_run", "2")


def test_links_fill_model_inputs_from_data(cli):
    run = cli("fit", "--config", CONFIGS / "linear_regression.yaml", "--data.weights", "[1.0, 2.0, 3.0]",
              "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")  # fmt: skip
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["num_features"] == 3  # linked from the data, not typed twice


def test_console_script_and_module_are_the_same_cli(tmp_path):
    script = str(Path(sys.executable).with_name("dlbasics"))
    for exe in ([script], [sys.executable, "-m", "dlbasics"]):
        proc = subprocess.run([*exe, "fit", "--config", str(RULE), "--model", "Nope"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 2 and "unknown model 'Nope'" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_configs_are_complete():
    for name in ALL_CONFIGS:
        config = yaml.safe_load((CONFIGS / name).read_text())
        assert {"model", "data", "trainer", "seed_everything"} <= config.keys(), name
