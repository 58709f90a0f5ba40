"""Runs in dashboards: wandb beside TensorBoard + CSV, and the full config pushed there.

    dlbasics fit --config configs/rule_classifier.yaml --config configs/logger/wandb.yaml

Without an API key (``WANDB_API_KEY`` or a ``wandb login`` entry in ``~/.netrc``) or without network,
:class:`WandbLogger` logs offline into ``lightning_logs/wandb/offline-run-*``, which ``wandb sync``
uploads later; ``WANDB_MODE`` (``online``, ``offline``, ``disabled``) is honoured. wandb never prompts.
Every checkpoint records the wandb run id, so ``fit --ckpt_path …`` continues that run (:func:`resume_wandb_run`).
"""

from __future__ import annotations

import importlib
import inspect
import netrc
import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import lightning as L
import torch
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

    Every option of Lightning's ``WandbLogger`` is a typed parameter here, and so are the ``wandb.init``
    arguments it forwards through ``**kwargs`` (``entity``, ``notes``, ``tags``, ``job_type``, ``config``,
    ``resume``, …), so LightningCLI checks them and ``--print_config`` lists them; any other ``wandb.init``
    argument goes in ``init_kwargs``. The mode is passed to ``wandb.init`` (not through the process-wide
    ``WANDB_MODE``). Checkpoints are uploaded as artifacts (``log_model``) only online. A wandb run left open
    in this process by an earlier dlbasics run is finished first, so each run gets its own wandb run; a fit
    resumed from a checkpoint continues the checkpoint's wandb run (see :func:`resume_wandb_run`).

    Args:
        name: Run name; by default ``<experiment>-version_N`` (set when the run starts).
        save_dir: Directory that receives ``wandb/`` (keep it inside ``lightning_logs``).
        version: The wandb run id to log into (resumes that run); same as ``id``.
        offline: Log offline even with a key and network.
        dir: Same as ``save_dir``; wins when both are given.
        id: The wandb run id to log into (resumes that run); same as ``version``.
        anonymous: Deprecated by wandb (no effect there); accepted for Lightning's signature.
        project: wandb project.
        log_model: Upload checkpoints at the end (``True``) or as they are written (``"all"``), online only.
        experiment: An existing wandb run to log into (from Python; not a CLI option).
        prefix: Put at the beginning of every metric key (joined with ``-``).
        checkpoint_name: Name of the model checkpoint artifact (default ``model-<run id>``).
        add_file_policy: ``"mutable"`` copies a checkpoint to a temporary directory before uploading it.
        entity: wandb team or user.
        group: wandb run group.
        tags: wandb run tags.
        notes: Longer description of the run (the run's notes in the wandb UI).
        job_type: Type of run (``train``, ``eval``, …), for grouping.
        config: Extra entries for the wandb run config (the whole CLI config is added at the start).
        config_exclude_keys: Keys of ``config`` to leave out.
        config_include_keys: The only keys of ``config`` to keep.
        allow_val_change: Allow changing config values after they are set.
        resume: wandb's resume behaviour when ``id`` is an existing run (``allow``, ``must``, ``never``, ``auto``).
        resume_from: Rewind an existing run to a step and go on from there (``{run_id}?_step={step}``).
        fork_from: Start a new run from a step of an existing run (``{run_id}?_step={step}``).
        save_code: Save the main script or notebook to wandb.
        sync_tensorboard: Copy TensorBoard logs to wandb.
        monitor_gym: Log videos of gym environments.
        settings: wandb ``Settings`` fields, as a mapping.
        init_kwargs: Any other ``wandb.init`` argument, passed through unchecked (not one of the above, not
            ``mode``: that comes from ``offline`` and ``WANDB_MODE``).

    Raises:
        ValueError: If ``init_kwargs`` repeats a parameter of this class or sets ``mode``.
    """

    def __init__(
        self,
        name: str | None = None,
        save_dir: str | None = "lightning_logs",
        version: str | None = None,
        offline: bool = False,
        dir: str | None = None,
        id: str | None = None,
        anonymous: bool | None = None,
        project: str | None = "dlbasics",
        log_model: bool | Literal["all"] = True,
        experiment: Any = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
        add_file_policy: Literal["mutable", "immutable"] = "mutable",
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
        job_type: str | None = None,
        config: dict[str, Any] | None = None,
        config_exclude_keys: list[str] | None = None,
        config_include_keys: list[str] | None = None,
        allow_val_change: bool | None = None,
        resume: bool | Literal["allow", "never", "must", "auto"] | None = "allow",
        resume_from: str | None = None,
        fork_from: str | None = None,
        save_code: bool | None = None,
        sync_tensorboard: bool | None = None,
        monitor_gym: bool | None = None,
        settings: dict[str, Any] | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        forwarded = {
            "entity": entity,
            "group": group,
            "tags": tags,
            "notes": notes,
            "job_type": job_type,
            "config": config,
            "config_exclude_keys": config_exclude_keys,
            "config_include_keys": config_include_keys,
            "allow_val_change": allow_val_change,
            "resume": resume,
            "resume_from": resume_from,
            "fork_from": fork_from,
            "save_code": save_code,
            "sync_tensorboard": sync_tensorboard,
            "monitor_gym": monitor_gym,
            "settings": settings,
        }
        clash = sorted(set(init_kwargs or {}) & {*forwarded, *_LIGHTNING_OPTIONS, "mode"})
        if clash:
            raise ValueError(
                f"init_kwargs sets {', '.join(clash)}: use the WandbLogger parameter of that name "
                "(the mode comes from `offline` and WANDB_MODE)"
            )
        self.mode = wandb_mode(offline)
        #: Whether checkpoints are uploaded as artifacts: ``log_model``, online only.
        self.log_model: bool | Literal["all"] = log_model if self.mode == "online" else False
        #: The run name given (``None``: ``SaveConfig`` names the run ``<experiment>-version_N``).
        self.run_name = name
        directory = dir if dir is not None else save_dir
        super().__init__(
            name=name,
            save_dir=os.path.abspath(directory) if directory else None,
            version=version,
            id=id,
            anonymous=anonymous,
            project=project,
            log_model=self.log_model,
            experiment=experiment,
            prefix=prefix,
            checkpoint_name=checkpoint_name,
            add_file_policy=add_file_policy,
            mode=self.mode,
            **{k: v for k, v in forwarded.items() if v is not None},
            **(init_kwargs or {}),
        )
        # Lightning always passes wandb.init(anonymous=None); wandb >= 0.19 answers with one "anonymous setting has no
        # effect" line per process. Removing the key would mean editing Lightning's private _wandb_init: left as is.
        self._opened_run: Any = experiment

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_opened_run"] = None  # a wandb run cannot be pickled; the spawned worker attaches to it
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # In a DDP-spawned worker wandb attaches to the run but takes its media dir from WANDB_DIR (else ./wandb).
        self.__dict__.update(state)
        if self.save_dir:
            os.environ["WANDB_DIR"] = self.save_dir

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The wandb run, started on first use (after finishing a run an earlier dlbasics run left open)."""
        if self._opened_run is None:
            import wandb

            if wandb.run is not None:
                wandb.run.finish()
            if self.save_dir:
                Path(self.save_dir).mkdir(parents=True, exist_ok=True)
        self._opened_run = super().experiment
        return self._opened_run


#: Lightning's own WandbLogger parameters (everything else it forwards to ``wandb.init``).
_LIGHTNING_OPTIONS = frozenset(inspect.signature(_LightningWandbLogger.__init__).parameters) - {"self", "kwargs"}


def checkpoint_wandb_run_id(ckpt_path: str | Path) -> str | None:
    """The wandb run id that :class:`SaveConfig` stored in a checkpoint (``None``: no wandb run, or unreadable)."""
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not ours to judge here: the fit itself reports an unreadable checkpoint
        return None
    states = checkpoint.get("callbacks") or {} if isinstance(checkpoint, dict) else {}
    return next((s["wandb_run_id"] for s in states.values() if isinstance(s, dict) and s.get("wandb_run_id")), None)


def resume_wandb_run(config: Any) -> str | None:
    """Make a fit from a checkpoint log into the checkpoint's wandb run, as a resumed run.

    Called with the ``fit`` config before the classes are instantiated (``DLBasicsCLI.before_instantiate_classes``).
    Each wandb logger in ``trainer.logger`` without an ``id``/``version`` of its own gets the run id the
    checkpoint recorded, and ``resume: allow`` unless it sets ``resume``; ``config.yaml`` then shows the id.
    Offline, wandb writes a second ``offline-run-*`` directory with the same run id, which ``wandb sync``
    appends to that run.

    Args:
        config: The subcommand's config (a jsonargparse ``Namespace`` with ``ckpt_path`` and ``trainer``).

    Returns:
        The run id set, or ``None`` when there was nothing to do.
    """
    ckpt_path = config.get("ckpt_path")
    loggers = (config.get("trainer") or {}).get("logger")
    loggers = loggers if isinstance(loggers, list) else [loggers]
    targets = [lg for lg in loggers if _is_wandb_logger(lg) and not (lg.get("init_args") or {}).get("id")]
    targets = [lg for lg in targets if not lg.init_args.get("version")]
    if not ckpt_path or not targets or not Path(ckpt_path).is_file():
        return None
    run_id = checkpoint_wandb_run_id(ckpt_path)
    if run_id is None:
        return None
    for logger in targets:
        logger.init_args.id = run_id
        if not logger.init_args.get("resume"):
            logger.init_args.resume = "allow"
    rank_zero_info(f"wandb: continuing run {run_id} of {ckpt_path}")
    return run_id


def _is_wandb_logger(entry: Any) -> bool:
    """Whether a ``trainer.logger`` config entry (``class_path`` + ``init_args``) is a wandb logger."""
    class_path = entry.get("class_path") if hasattr(entry, "get") else None
    if not class_path or entry.get("init_args") is None:
        return False
    module, _, name = str(class_path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, _LightningWandbLogger)


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
    data, seed) to the wandb run config and as text to TensorBoard, and names a :class:`WandbLogger`'s run
    ``<experiment>-version_N`` unless it was given a name. The wandb run id goes into every checkpoint (this
    callback's state, ``wandb_run_id``), where :func:`resume_wandb_run` finds it when a fit resumes.
    """

    wandb_run_id: str | None = None

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        text = self.parser.dump(self.config)
        config = redact(yaml.safe_load(text))
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
        """``{"wandb_run_id": id}`` when the run logs to wandb (written into checkpoints), else empty."""
        return {"wandb_run_id": self.wandb_run_id} if self.wandb_run_id else {}

    def experiment_name(self) -> str:
        """The experiment's config file name (``rule_classifier``), else the model's class name."""
        for path in self.config.get("config") or []:
            path = Path(str(path))
            if path.stem != "config" and path.parent.name != "logger":
                return path.stem
        return str(self.config.get("model", {}).get("class_path", "run")).rsplit(".", 1)[-1]
