"""Runs in dashboards: wandb beside TensorBoard + CSV, and the full config pushed there.

    dlbasics fit --config configs/rule_classifier.yaml --config configs/logger/wandb.yaml

Without an API key (``WANDB_API_KEY`` or a ``wandb login`` entry in ``~/.netrc``) or without network,
:class:`WandbLogger` logs offline into ``lightning_logs/wandb/offline-run-*``, which ``wandb sync``
uploads later; ``WANDB_MODE`` (``online``, ``offline``, ``disabled``) is honoured. wandb never prompts.
"""

from __future__ import annotations

import netrc
import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_info

from dlbasics.runs import run_dir

_SECRET = re.compile(r"api_?key|token|secret|password", re.IGNORECASE)


def wandb_host(environ: Mapping[str, str]) -> tuple[str, int]:
    """Host and port of the wandb server (``WANDB_BASE_URL``, default ``https://api.wandb.ai``)."""
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
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
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
    """Lightning's WandbLogger that picks online/offline/disabled itself and never prompts for a login.

    The mode is passed to ``wandb.init`` (not through the process-wide ``WANDB_MODE``). Checkpoints are
    uploaded as artifacts (``log_model``) only online. A wandb run left open in this process by an earlier
    dlbasics run is finished first, so each run gets its own wandb run.

    Args:
        name: Run name; by default ``<experiment>-version_N`` (set when the run starts).
        project: wandb project.
        save_dir: Directory that receives ``wandb/`` (keep it inside ``lightning_logs``).
        offline: Log offline even with a key and network.
        log_model: Upload checkpoints at the end (``True``) or as they are written (``"all"``), online only.
        entity: wandb team or user.
        group: wandb run group.
        tags: wandb run tags.
    """

    def __init__(
        self,
        name: str | None = None,
        project: str = "dlbasics",
        save_dir: str = "lightning_logs",
        offline: bool = False,
        log_model: bool | Literal["all"] = True,
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
    ) -> None:
        self.mode = wandb_mode(offline)
        super().__init__(
            name=name,
            project=project,
            save_dir=os.path.abspath(save_dir),
            log_model=log_model if self.mode == "online" else False,
            mode=self.mode,
            entity=entity,
            group=group,
            tags=tags,
        )
        self._wandb_init.pop("anonymous", None)  # deprecated in wandb; None still triggers a warning

    def __setstate__(self, state: dict[str, Any]) -> None:
        # In a DDP-spawned worker wandb attaches to the run but takes its media dir from WANDB_DIR (else ./wandb).
        self.__dict__.update(state)
        os.environ["WANDB_DIR"] = self._save_dir

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            import wandb

            if wandb.run is not None:
                wandb.run.finish()
            Path(self._save_dir).mkdir(parents=True, exist_ok=True)
        return super().experiment


def redact(value: Any) -> Any:
    """``value`` with entries whose key looks like a secret (api key, token, password) replaced by ``***``."""
    if isinstance(value, dict):
        return {k: "***" if _SECRET.search(str(k)) and v else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    key = os.environ.get("WANDB_API_KEY")
    return "***" if key and isinstance(value, str) and key in value else value


class SaveConfig(SaveConfigCallback):
    """``config.yaml`` in the run directory, plus the whole resolved config in wandb and TensorBoard.

    Lightning only sends the model's hyperparameters to loggers; this adds every setting (trainer,
    data, seed) to the wandb run config and as text to TensorBoard, and names the wandb run.
    """

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        text = self.parser.dump(self.config, skip_none=False)
        config = redact(yaml.safe_load(text))
        for logger in trainer.loggers:
            if isinstance(logger, _LightningWandbLogger):
                logger.experiment.config.update(config, allow_val_change=True)
                if logger._wandb_init.get("name") is None:
                    logger.experiment.name = f"{self.experiment_name()}-{run_dir(trainer).name}"
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("config", "```yaml\n" + yaml.safe_dump(config, sort_keys=False) + "```")

    def experiment_name(self) -> str:
        """The experiment's config file name (``rule_classifier``), else the model's class name."""
        for path in self.config.get("config") or []:
            path = Path(str(path))
            if path.stem != "config" and path.parent.name != "logger":
                return path.stem
        return str(self.config.get("model", {}).get("class_path", "run")).rsplit(".", 1)[-1]
