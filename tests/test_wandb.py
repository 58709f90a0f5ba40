"""wandb, offline and never a login prompt: the overlay's run file (metrics, images, the full config), options from
the command line, a resumed fit continuing the wandb run, Lightning's options as the schema, DDP, the mode decision.
"""

from __future__ import annotations

import inspect
import json
import socket
import struct
from pathlib import Path

import pytest
import torch
import yaml
from helpers import CONFIGS
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger

from dlbasics.dashboards import WandbLogger, has_api_key, redact, resume_wandb_run, wandb_mode

WANDB = CONFIGS / "logger" / "wandb.yaml"
FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # shaped like a wandb key; must never be written


@pytest.fixture(autouse=True)
def finish_wandb():
    """Close any wandb run a test opened, so nothing leaks into the next test."""
    yield
    import wandb

    wandb.finish()


def wandb_records(path: Path) -> list:
    """Every record of an offline run file (``run-<id>.wandb``): LevelDB-log blocks of wandb protobufs."""
    from wandb.proto import wandb_internal_pb2

    data, block, records, chunks, pos = path.read_bytes(), 32768, [], [], 7
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a record header never straddles blocks: the tail is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        chunks.append(data[pos + 7 : pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST piece of a record
            records.append(wandb_internal_pb2.Record.FromString(b"".join(chunks)))
            chunks = []
    return records


def history_keys(records: list) -> set[str]:
    """Every key logged to the run's history (metrics and images)."""
    return {i.key or i.nested_key[0] for r in records if r.HasField("history") for i in r.history.item}


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every connection that is not local; returns the list of attempts."""
    attempts: list = []
    connect = socket.socket.connect

    def guarded(sock, address):
        local = sock.family == getattr(socket, "AF_UNIX", None) or address[0] in ("127.0.0.1", "::1", "localhost")
        if not local:
            attempts.append(address)
            raise OSError(f"network access attempted: {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


def test_wandb_overlay_writes_an_offline_run(cli, monkeypatch, no_network, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    run = cli("fit", "--config", CONFIGS / "linear_regression.yaml", "--config", WANDB,
              "--trainer.max_epochs", "2", "--data.num_train", "200")  # fmt: skip
    import wandb

    wandb.finish()
    wandb.teardown()  # stops wandb-core, which closes the run file (finish alone may return before that)
    # config.yaml and checkpoints stay in lightning_logs/version_N; wandb/ lands inside lightning_logs
    assert run.name == "version_0" and (run / "config.yaml").is_file() and (run / "checkpoints/last.ckpt").is_file()
    assert not (tmp_path / "wandb").exists() and not (tmp_path / "config.yaml").exists()
    (run_file,) = (tmp_path / "lightning_logs" / "wandb").glob("offline-run-*/run-*.wandb")
    records = wandb_records(run_file)
    history = history_keys(records)
    assert {"train/loss", "val/loss", "fit/w0", "fit/closed_form_b", "learning_curves", "fitted_curve"} <= history
    config = {u.key: json.loads(u.value_json) for r in records if r.HasField("config") for u in r.config.update}
    optimizer = config["model"]["init_args"]["optimizer"]  # the full CLI config, not only the hparams
    assert optimizer["class_path"] == "torch.optim.SGD" and optimizer["init_args"]["lr"] == 0.03
    assert config["data"]["init_args"]["weights"] == [2.0, -3.4]
    assert config["trainer"]["max_epochs"] == 2 and config["seed_everything"] == 42
    names = [r.run.display_name for r in records if r.HasField("run")]
    assert names[-1] == "linear_regression-version_0"
    images = list(run_file.parent.glob("files/media/images/*.png"))
    assert {p.name.split("_")[0] for p in images} == {"learning", "fitted"}
    assert not no_network, no_network
    for path in tmp_path.rglob("*"):  # the API key never reaches a file
        assert not path.is_file() or FAKE_KEY.encode() not in path.read_bytes(), path


def test_wandb_options_from_the_cli_and_a_resumed_fit_continues_the_run(cli, monkeypatch, no_network, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    wandb_args = ["--config", WANDB, "--trainer.logger.init_args.prefix", "lin",  # init_args first: jsonargparse
                  "--trainer.logger.dict_kwargs.notes", "first try",  # drops dict_kwargs given before them
                  "--trainer.logger.dict_kwargs.tags", "[baseline, sgd]",
                  "--trainer.logger.dict_kwargs.job_type", "train"]  # fmt: skip
    first = cli("fit", "--config", CONFIGS / "linear_regression.yaml", *wandb_args, "--trainer.max_epochs", "1",
                "--data.num_train", "100", "--test_after_fit", "false")  # fmt: skip
    import wandb

    wandb.finish()
    second = cli("fit", "--config", CONFIGS / "linear_regression.yaml", *wandb_args, "--trainer.max_epochs", "2",
                 "--data.num_train", "100", "--test_after_fit", "false", "--ckpt_path", "last")  # fmt: skip
    wandb.finish()
    wandb.teardown()
    assert (first.name, second.name) == ("version_0", "version_1")
    run_files = sorted((tmp_path / "lightning_logs" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 2  # offline, wandb writes the resumed part beside; `wandb sync` appends it to the run
    runs = [[r.run for r in wandb_records(f) if r.HasField("run")] for f in run_files]
    first_id = torch.load(first / "checkpoints/last.ckpt", weights_only=True)["callbacks"]["SaveConfig"]
    assert {r.run_id for rs in runs for r in rs} == {first_id["wandb_run_id"]}  # one wandb run across both fits
    assert "id: " + first_id["wandb_run_id"] in (second / "config.yaml").read_text()
    for records, version in zip(runs, ("version_0", "version_1"), strict=True):
        run = records[-1]
        assert (run.notes, list(run.tags), run.job_type) == ("first try", ["baseline", "sgd"], "train")
        assert run.display_name == f"linear_regression-{version}"
    history = [history_keys(wandb_records(f)) for f in run_files]
    assert all({"lin-train/loss", "lin-val/loss"} <= keys and "train/loss" not in keys for keys in history)
    steps = [
        [int(i.value_json) for r in wandb_records(f) if r.HasField("history") for i in r.history.item
         if (i.key or i.nested_key[0]) == "trainer/global_step"] for f in run_files
    ]  # fmt: skip
    assert max(steps[0]) == min(steps[1]) == 10 and max(steps[1]) == 20  # the resumed fit goes on from step 10
    assert not no_network, no_network
    for path in tmp_path.rglob("*"):  # the API key never reaches a file
        assert not path.is_file() or FAKE_KEY.encode() not in path.read_bytes(), path


def test_wandb_overlay_takes_lightnings_options_and_no_copies_of_them(printed):
    config = yaml.safe_load(printed("fit", "--config", CONFIGS / "linear_regression.yaml", "--config", WANDB,
                                    "--print_config"))  # fmt: skip
    (wandb_logger,) = [
        lg for lg in config["trainer"]["logger"] if lg["class_path"] == "dlbasics.dashboards.WandbLogger"
    ]
    lightning_options = set(inspect.signature(LightningWandbLogger.__init__).parameters) - {"self", "kwargs"}
    assert set(wandb_logger["init_args"]) == lightning_options  # Lightning's signature is the schema: nothing copied
    assert wandb_logger["init_args"]["project"] == "dlbasics" and wandb_logger["init_args"]["id"] is None


def test_resume_wandb_run_sets_the_checkpoint_run_id():
    from jsonargparse import Namespace

    checkpoint = {"callbacks": {"SaveConfig": {"wandb_run_id": "abc123"}}}
    wandb_logger = Namespace(class_path="dlbasics.dashboards.WandbLogger", init_args=Namespace(id=None, version=None))
    csv_logger = Namespace(class_path="lightning.pytorch.loggers.CSVLogger", init_args=Namespace(save_dir="."))
    config = Namespace(ckpt_path="last.ckpt", trainer=Namespace(logger=[csv_logger, wandb_logger]))
    assert resume_wandb_run(config, checkpoint) == "abc123"
    assert wandb_logger.init_args.id == "abc123" and "id" not in csv_logger.init_args
    given = Namespace(class_path="lightning.pytorch.loggers.WandbLogger", init_args=Namespace(id="mine"))
    assert resume_wandb_run(Namespace(ckpt_path="x", trainer=Namespace(logger=given)), checkpoint) is None
    assert given.init_args.id == "mine"  # an id the user gave wins
    fresh = Namespace(class_path="dlbasics.dashboards.WandbLogger", init_args=Namespace(id=None))
    assert resume_wandb_run(Namespace(ckpt_path="x", trainer=Namespace(logger=[fresh])), {"callbacks": {}}) is None
    assert fresh.init_args.id is None  # the checkpoint kept no run id


def test_offline_means_no_upload_instead_of_lightnings_error(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, log_model=True, version="v1")  # Lightning raises here
    assert (logger.mode, logger.version, logger.save_dir) == ("offline", "v1", str(tmp_path))


@pytest.mark.slow
def test_ddp_only_rank_zero_writes(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "lightning_logs"))  # the spawned workers set it; restore it after
    run = cli("fit", "--config", CONFIGS / "rule_classifier.yaml", "--config", WANDB, "--trainer.max_epochs", "2",
              "--data.num_train", "640", "--data.num_val", "200", "--trainer.accelerator", "cpu",
              "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn")  # fmt: skip
    import wandb

    wandb.finish()
    wandb.teardown()
    assert run.name == "version_0" and [p.name for p in run.parent.glob("version_*")] == ["version_0"]
    pngs = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png") if "wandb" not in p.parts]
    assert sorted(pngs) == ["lightning_logs/version_0/learning_curves.png",
                            "lightning_logs/version_0/test_confusion_matrix.png"]  # fmt: skip
    assert len(list(tmp_path.glob("lightning_logs/wandb/offline-run-*/files/media/images/learning_curves*"))) == 1
    assert not (tmp_path / "wandb").exists()  # spawned workers too keep wandb's files inside lightning_logs
    (run_file,) = (tmp_path / "lightning_logs" / "wandb").glob("offline-run-*/run-*.wandb")
    assert {"val/acc", "train/loss", "learning_curves"} <= history_keys(wandb_records(run_file))


def test_wandb_mode_decision(tmp_path):
    home = {"HOME": str(tmp_path)}
    never = lambda *a: pytest.fail("no network check expected")  # noqa: E731
    assert wandb_mode(environ={**home, "WANDB_MODE": "disabled"}, is_reachable=never) == "disabled"
    assert wandb_mode(environ={**home, "WANDB_MODE": "offline", "WANDB_API_KEY": "k"}, is_reachable=never) == "offline"
    assert wandb_mode(offline=True, environ={**home, "WANDB_API_KEY": "k"}, is_reachable=never) == "offline"
    assert wandb_mode(environ=home, is_reachable=never) == "offline"  # no key: offline, never a login prompt
    assert wandb_mode(environ={**home, "WANDB_MODE": "online"}, is_reachable=never) == "offline"
    assert wandb_mode(environ={**home, "WANDB_API_KEY": "k"}, is_reachable=lambda *a: False) == "offline"
    assert wandb_mode(environ={**home, "WANDB_API_KEY": "k"}, is_reachable=lambda *a: True) == "online"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    assert has_api_key(home) and not has_api_key({**home, "WANDB_BASE_URL": "https://wandb.example.com"})
    assert redact({"a": {"api_key": "x", "n": 1}, "b": [{"token": "t"}]}) == {"a": {"api_key": "***", "n": 1},
                                                                           "b": [{"token": "***"}]}  # fmt: skip
