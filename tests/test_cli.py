"""The CLI the way users drive it: subcommands, short names, print_config, reruns and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import CONFIGS

from dlbasics.cli import main

RULE = CONFIGS / "rule_classifier.yaml"
ALL_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def test_print_config_resolves_short_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "RuleClassifier", "--data", "RuleData", "--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
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


BAD_INPUT = [
    (["--model", "Nope"], "unknown model 'Nope'"),
    (["--data", "NoSuchData"], "unknown data 'NoSuchData'"),
    (["--model.init_args.optimizer.init_args.lr", "abc"], "model.optimizer.lr"),
    (["--trainer.max_epochs", "abc"], "trainer.max_epochs"),
    (["--model.init_args.optimizer.init_args.lr", "-1"], "model.optimizer: Invalid learning rate: -1.0"),
    (["--data.init_args.batch_size", "0"], "batch_size must be >= 1"),
    (["--model.init_args.optimizer", "nesterov"], "model.optimizer: 'nesterov' is not a class"),
    (["--test_after_fit", "maybe"], "test_after_fit"),
    (["--bogus", "1"], "unrecognized arguments"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUT)
def test_bad_input_is_one_line(capsys, tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(RULE), *extra])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlbasics: error:") and message in err[0], err


def test_missing_config_and_predict_csv_problems(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("0.1,0.2,0.3,0.4\n")
    cases = [
        (["fit", "--config", "no/such/config.yaml"], "File does not exist"),
        (["predict", "--config", str(RULE), "--data.predict_path", "missing.csv"], "'missing.csv' does not exist"),
        (["predict", "--config", str(RULE), "--data.predict_path", str(bad)], "row 1 has 4 columns, expected 5"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[-1].startswith("dlbasics: error:") and message in err[-1], err
        assert not any("Traceback" in line for line in err)


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
