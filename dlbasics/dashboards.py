"""Runs in dashboards: wandb beside TensorBoard + CSV, and the full config pushed there.

    dlbasics fit --config configs/rule_classifier.yaml --config configs/logger/wandb.yaml

Without an API key (``WANDB_API_KEY`` or a ``wandb login`` entry in ``~/.netrc``) or without network,
:class:`WandbLogger` logs offline into ``lightning_logs/wandb/offline-run-*``, which ``wandb sync``
uploads later; ``WANDB_MODE`` (``online``, ``offline``, ``disabled``) is honoured. wandb never prompts.
Every checkpoint records the wandb run id, so ``fit --ckpt_path …`` continues that run (:func:`resume_wandb_run`).
"""

from __future__ import annotations

import netrc
import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_info

from dlbasics.runs import run_dir
from dlbasics.trust import loaded

_SECRET = re.compile(r"api_?key|token|secret|password", re.IGNORECASE)


def wandb_host(environ: Mapping[str, str]) -> tuple[str, int]:
    url = urlsplit(environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    return url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)


def has_api_key(environ: Mapping[str, str]) -> bool:
    """Whether wandb can log in without asking: ``WANDB_API_KEY`` or a netrc entry for the server."""
    if environ.get("WANDB_API_KEY"):
        return True
    path = environ.get("NETRC") or Path(environ.get("HOME") or Path.home()) / ".netrc"
    try:
        entry = netrc.netrc(path).authenticators(wandb_host(environ)[0])
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def wandb_mode(
    offline: bool = False, environ: Mapping[str, str] | None = None, is_reachable: Callable[..., bool] = reachable
) -> str:
    """``online``, ``offline`` or ``disabled``: ``WANDB_MODE`` first, then ``offline``, then key and network."""
    environ = os.environ if environ is None else environ
    requested = environ.get("WANDB_MODE") or ("offline" if offline else "online")
    if requested == "disabled":
        return "disabled"
    if requested in ("offline", "dryrun"):
        return "offline"
    if not has_api_key(environ):
        reason = "no wandb API key (set WANDB_API_KEY or run `wandb login`)"
    elif not is_reachable(*wandb_host(environ)):
        reason = f"{wandb_host(environ)[0]} is not reachable"
    else:
        return "online"
    rank_zero_info(f"wandb: {reason}: logging offline; `wandb sync <offline-run dir>` uploads the run later")
    return "offline"


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` that picks online/offline/disabled itself and never prompts for a login.

    Its parameters are Lightning's (``--print_config`` lists them); any other ``wandb.init`` argument (``entity``,
    ``notes``, ``tags``, ``group``, …) goes in ``dict_kwargs``, e.g. ``--trainer.logger.dict_kwargs.notes "wider net"``.
    What dlbasics adds: the mode (:func:`wandb_mode`), passed to ``wandb.init`` rather than set process-wide;
    checkpoints uploaded as artifacts (``log_model``) only online; ``save_dir`` made absolute.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.mode = wandb_mode(kwargs.get("offline", False))
        if self.mode != "online":
            kwargs["log_model"] = False  # nothing to upload to
        if kwargs.get("save_dir"):
            kwargs["save_dir"] = os.path.abspath(kwargs["save_dir"])
        self.run_name = kwargs.get("name")  # None: SaveConfig names the run
        self.started = kwargs.get("experiment") is not None
        super().__init__(*args, **kwargs, mode=self.mode)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The wandb run, started on first use (after finishing a run an earlier dlbasics run left open)."""
        if not self.started:
            import wandb

            wandb.finish()
            if self.save_dir:
                Path(self.save_dir).mkdir(parents=True, exist_ok=True)
            self.started = True
        return super().experiment


def wandb_loggers(config: Any) -> list[Any]:
    """The wandb loggers among a subcommand's ``trainer.logger`` entries (``class_path`` + ``init_args``)."""
    loggers = (config.get("trainer") or {}).get("logger")
    found = []
    for entry in loggers if isinstance(loggers, list) else [loggers]:
        if hasattr(entry, "get") and entry.get("class_path") and entry.get("init_args") is not None:
            cls = loaded(str(entry.get("class_path")))  # imported by jsonargparse when it parsed the config
            if isinstance(cls, type) and issubclass(cls, _LightningWandbLogger):
                found.append(entry)
    return found


def resume_wandb_run(config: Any, checkpoint: dict[str, Any]) -> str | None:
    """Make a fit from a checkpoint log into the checkpoint's wandb run, as a resumed run.

    Each wandb logger of the ``fit`` config without an ``id``/``version`` of its own gets the run id the checkpoint
    recorded (Lightning's logger resumes with ``resume="allow"``); ``config.yaml`` then shows the id. Offline, wandb
    writes a second ``offline-run-*`` directory with the same run id, which ``wandb sync`` appends to that run.

    Returns:
        The run id set, or ``None`` (nothing to do).
    """
    states = checkpoint.get("callbacks") or {}
    run_id = next((s["wandb_run_id"] for s in states.values() if isinstance(s, dict) and s.get("wandb_run_id")), None)
    targets = [lg for lg in wandb_loggers(config) if not (lg.init_args.get("id") or lg.init_args.get("version"))]
    if run_id is None or not targets:
        return None
    for logger in targets:
        logger.init_args.id = run_id
    rank_zero_info(f"wandb: continuing run {run_id} of {config.get('ckpt_path')}")
    return run_id


def redact(value: Any) -> Any:
    """``value`` with entries whose key looks like a secret (api key, token, password) replaced by ``***``."""
    if isinstance(value, dict):
        return {k: "***" if _SECRET.search(str(k)) and v else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    key = os.environ.get("WANDB_API_KEY")
    return "***" if key and isinstance(value, str) and key in value else value


class SaveConfig(SaveConfigCallback):
    """``config.yaml`` in the run directory, and every setting (trainer, data, seed) in the wandb run config and as
    text in TensorBoard, where Lightning sends only the model's hyperparameters. A :class:`WandbLogger`'s run is
    named ``<experiment>-version_N`` unless it was given a name."""

    wandb_run_id: str | None = None

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        written = run_dir(trainer) / self.config_filename  # config.yaml, just written: not dumped and checked again
        config = redact(yaml.safe_load(written.read_text() if written.is_file() else self.parser.dump(self.config)))
        for logger in trainer.loggers:
            if isinstance(logger, _LightningWandbLogger):
                run = logger.experiment
                run.config.update(config, allow_val_change=True)
                if isinstance(logger, WandbLogger) and logger.run_name is None:
                    run.name = f"{self.experiment_name()}-{run_dir(trainer).name}"
                if not (isinstance(logger, WandbLogger) and logger.mode == "disabled"):
                    self.wandb_run_id = self.wandb_run_id or getattr(run, "id", None)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("config", "```yaml\n" + yaml.safe_dump(config, sort_keys=False) + "```")

    def state_dict(self) -> dict[str, Any]:
        """``{"wandb_run_id": id}`` when the run logs to wandb (into checkpoints, for :func:`resume_wandb_run`)."""
        return {"wandb_run_id": self.wandb_run_id} if self.wandb_run_id else {}

    def experiment_name(self) -> str:
        """The experiment's config file name (``rule_classifier``), else the model's class name."""
        for path in self.config.get("config") or []:
            path = Path(str(path))
            if path.stem != "config" and path.parent.name != "logger":
                return path.stem
        return str(self.config.get("model", {}).get("class_path", "run")).rsplit(".", 1)[-1]
