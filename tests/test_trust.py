"""A checkpoint is data (issue 20): nothing named in it runs, it belongs to the config, `best` means this experiment.

Each crafted checkpoint is refused by every subcommand that reads one, in one line naming the file and the key,
before anything it names is imported: no marker file, exit status 1, no new run directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import CONFIGS, fixture_data, read_metrics

from dlbasics.models import RuleClassifier
from dlbasics.use import load

RULE = CONFIGS / "rule_classifier.yaml"
SMALL = ["--data.num_train", "320", "--data.num_val", "200", "--data.num_test", "200", "--trainer.max_epochs", "1"]
SUBCOMMANDS = ["test", "validate", "predict", "export", "fit"]
LAMBDA_LR = "torch.optim.lr_scheduler.LambdaLR"
EVIL = "import pathlib; pathlib.Path({marker!r}).touch()\nclass Scheduler:\n    pass\n"


@pytest.fixture
def trained(cli) -> Path:
    """A rule classifier's last.ckpt, trained the way users do, in the test's folder."""
    return cli("fit", "--config", RULE, *SMALL, "--test_after_fit", "false") / "checkpoints" / "last.ckpt"


def crafted(ckpt: Path, name: str, edit) -> Path:
    """``ckpt`` with its hyperparameters changed by ``edit(hparams)``, saved as plain data (loadable weights-only)."""
    checkpoint = torch.load(ckpt, weights_only=True)
    edit(checkpoint["hyper_parameters"])
    path = ckpt.parents[3] / f"{name}.ckpt"
    torch.save(checkpoint, path)
    return path


def command(marker: Path) -> dict:
    return {"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}


ATTACKS = {
    "os.system as lr_scheduler": (lambda hp, m: hp.update(lr_scheduler=command(m)), "lr_scheduler.class_path 'os.sys"),
    "os.system as optimizer": (lambda hp, m: hp.update(optimizer=command(m)), "optimizer.class_path 'os.system'"),
    "a module that runs at import": (
        lambda hp, m: hp.update(lr_scheduler={"class_path": "evil_module.Scheduler"}),
        "'evil_module.Scheduler' is not an LR scheduler class imported from",
    ),
    "a callable that is not a class": (lambda hp, m: hp.update(optimizer="torch.save"), "'torch.save' is not an opti"),
    "a class path two levels down": (
        lambda hp, m: hp["optimizer"]["init_args"].update(betas={"class_path": "os.system", "init_args": {}}),
        "optimizer.init_args.betas names a class ('os.system')",
    ),
    "a function given as text": (
        lambda hp, m: hp.update(lr_scheduler={"class_path": LAMBDA_LR, "init_args": {"lr_lambda": "os.system"}}),
        "lr_lambda is text ('os.system') where the parameter takes none",
    ),
    "another model's class": (lambda hp, m: hp.update(_class_path="os.system"), "_class_path 'os.system' is not a Li"),
    "another instantiator": (lambda hp, m: hp.update(_instantiator="os.system"), "_instantiator 'os.system' is not"),
    "an unknown key": (lambda hp, m: hp.update(command="touch x"), "command is not a parameter of RuleClassifier"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_crafted_checkpoint_runs_nothing_in_any_subcommand(trained, refused, tmp_path, monkeypatch, attack):
    edit, message = ATTACKS[attack]
    marker = tmp_path / "PWNED"
    (tmp_path / "evil_module.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))  # importable, so only the check stands between it and the import
    evil = crafted(trained, "evil", lambda hp: edit(hp, marker))
    for subcommand in SUBCOMMANDS:
        line = refused(subcommand, "--config", RULE, *SMALL, "--ckpt_path", evil)
        assert "evil.ckpt" in line and message in line, (subcommand, line)
    for loader in (RuleClassifier.load_from_checkpoint, load):  # the Python API too
        with pytest.raises(ValueError, match=r"evil\.ckpt"):
            loader(evil)
    assert not marker.exists() and "evil_module" not in sys.modules


def test_a_fresh_process_with_the_module_on_its_path_imports_nothing(trained, tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "evil_module.py").write_text(EVIL.format(marker=str(marker)))
    evil = crafted(trained, "evil", lambda hp: hp.update(lr_scheduler={"class_path": "evil_module.Scheduler"}))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "dlbasics", "predict", "--config", RULE, "--ckpt_path", evil],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and not marker.exists(), proc.stderr[-2000:]


def test_a_checkpoint_of_another_model_is_refused_naming_both(cli, refused):
    lstm = cli("fit", "--config", CONFIGS / "sine_lstm.yaml", "--trainer.max_epochs", "1") / "checkpoints/last.ckpt"
    line = refused("test", "--config", CONFIGS / "sine_gru.yaml", "--ckpt_path", lstm)
    assert f"checkpoint {lstm} is a SineLSTM; the config builds a SineGRU: pass --config sine_lstm or a SineGRU" in line
    line = refused("predict", "--config", RULE, "--ckpt_path", lstm)  # across families: the same line, not torch's
    assert "is a SineLSTM; the config builds a RuleClassifier: pass --config sine_lstm" in line


def test_other_architecture_settings_are_the_checkpoints_and_said_in_one_line(cli, refused, caplog):
    sine = ["--config", CONFIGS / "sine_lstm.yaml", "--trainer.max_epochs", "1"]
    run = cli("fit", *sine, "--model.init_args.hidden_size", "8", "--test_after_fit", "false")
    caplog.clear()
    tested = cli("test", *sine, "--ckpt_path", run / "checkpoints/last.ckpt")  # the config says hidden_size 32
    assert "was trained with hidden_size 8 (the config: 32): the checkpoint's are used" in caplog.text
    again = cli("test", *sine, "--model.init_args.hidden_size", "8", "--ckpt_path", run / "checkpoints/last.ckpt")
    assert read_metrics(tested)["test/loss"] == read_metrics(again)["test/loss"]
    seven = cli("fit", "--config", RULE, *SMALL, "--data.num_features", "7") / "checkpoints/last.ckpt"
    line = refused("test", "--config", RULE, *SMALL, "--ckpt_path", seven)  # 7 inputs; the data give 5
    assert "the checkpoint's model takes num_features 7 but the config's data (RuleData) give 5" in line


def test_last_and_best_mean_this_experiment(cli, refused, idx, capsys, caplog):
    mnist = ["--config", CONFIGS / "mnist_cnn.yaml", *fixture_data(idx), "--model.init_args.channels", "[4]",
             "--trainer.max_epochs", "1", "--trainer.precision", "32-true"]  # fmt: skip
    digits = cli("fit", *mnist)
    clothes = cli("fit", *mnist, "--data.dataset", "fashion_mnist")  # newer, same classes, other data
    wider = cli("fit", *mnist, "--model.init_args.channels", "[6]")  # newer still, same data, other architecture
    capsys.readouterr()
    caplog.clear()
    cli("export", *mnist, "--ckpt_path", "best")
    best = next(digits.glob("checkpoints/best-*.ckpt"))
    assert f"--ckpt_path best: lightning_logs/{digits.name}/checkpoints/{best.name}" in caplog.text
    assert Path(capsys.readouterr().out.splitlines()[-1]).resolve() == (digits / "model.onnx").resolve()
    assert not (clothes / "model.onnx").exists() and not (wider / "model.onnx").exists()
    cli("test", *mnist, "--data.dataset", "fashion_mnist", "--ckpt_path", "last")
    assert f"--ckpt_path last: lightning_logs/{clothes.name}/checkpoints/last.ckpt" in caplog.text
    line = refused("test", *mnist, "--model.init_args.hidden", "16", "--ckpt_path", "best")
    assert "no best-*.ckpt of a dlbasics.models.MNISTCNN run of this experiment" in line
    assert "found MNISTCNN on MNISTDataModule (version_0), MNISTCNN on MNISTDataModule (version_1)" in line


def test_last_never_picks_an_unreadable_checkpoint(cli, caplog):
    first = cli("fit", "--config", RULE, *SMALL)
    second = cli("fit", "--config", RULE, *SMALL)
    newest = second / "checkpoints/last.ckpt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a crash or a full disk's half file
    caplog.clear()
    cli("test", "--config", RULE, *SMALL, "--ckpt_path", "last")
    shown = f"lightning_logs/{first.name}/checkpoints/last.ckpt (passed over the unreadable lightning_logs/"
    assert f"--ckpt_path last: {shown}{second.name}/checkpoints/last.ckpt)" in caplog.text


def test_lightnings_keywords_pass_and_an_unreachable_url_is_one_line(refused, trained):
    from jsonargparse import Namespace

    from dlbasics.checkpoints import open_checkpoint

    for keyword in ("hpc", "registry", "registry:model:v1"):
        assert open_checkpoint(Namespace(ckpt_path=keyword)) == (keyword, None)
    line = refused("test", "--config", RULE, "--ckpt_path", "http://127.0.0.1:9/model.ckpt")
    assert "could not download --ckpt_path http://127.0.0.1:9/model.ckpt" in line
    line = refused("test", "--config", RULE, "--ckpt_path", trained.parent)
    assert f"checkpoint '{trained.parent}' is a folder" in line


def test_a_fashion_checkpoint_says_its_images_are_clothes(cli, idx, tmp_path):
    from PIL import Image

    from dlbasics.use import predict

    fashion = ["--config", CONFIGS / "fashion_mnist_mlp.yaml", *fixture_data(idx), "--trainer.max_epochs", "1"]
    ckpt = cli("fit", *fashion) / "checkpoints/last.ckpt"
    model = load(ckpt)
    assert model.hparams.image_style == "fashion" and model.input_style == "fashion"
    shirt = Image.new("L", (100, 120), 240)
    shirt.paste(40, (25, 20, 75, 100))  # a dark object on a light background
    shirt.save(tmp_path / "shirt.png")
    chosen, clothes = predict(model, tmp_path / "shirt.png"), predict(model, tmp_path / "shirt.png", style="fashion")
    digits = predict(model, tmp_path / "shirt.png", style="mnist")
    assert torch.equal(chosen.inputs, clothes.inputs) and not torch.equal(chosen.inputs, digits.inputs)
