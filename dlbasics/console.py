"""What a user sees: third-party noise filtered narrowly, every error as one line, Ctrl-C as exit status 130.

    dlbasics fit --config rule_classifier --model.init_args.optimizer.init_args.lr -1
    # dlbasics: error: model.optimizer: Invalid learning rate: -1.0  [DLBASICS_DEBUG=1 shows the traceback]

jsonargparse reports a bad value inside a nested, multi-line "Does not validate against any of the Union subtypes"
message; :func:`one_line` digs out the parameter path and the innermost reason. Standard library only, so
:func:`exit_on_interrupt` can be installed before the heavy imports start.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator

DEBUG_ENV = "DLBASICS_DEBUG"
#: (module, message) of the warnings a plain run would print that tell the user nothing.
WARNINGS = (
    ("torch.utils._pytree", r".*LeafSpec.* is deprecated"),  # Lightning 2.6's pytree shim on torch >= 2.9
    ("lightning.pytorch.utilities._pytree", r".*LeafSpec.* is deprecated"),
    ("lightning.pytorch.callbacks.model_checkpoint", r"The dirpath has changed"),  # every run has its own dir
    # jsonargparse >= 4.49 deprecates calls Lightning 2.6 makes (add_instantiator, instantiate_classes, skip_none)
    ("lightning.pytorch.cli", r"\s*(By default only one JsonargparseDeprecationWarning|.*deprecated in v4\.)"),
    ("lightning.pytorch.cli", r"LightningCLI's args parameter is intended to run from within Python"),  # we are
    ("lightning.pytorch.trainer.connectors.data_connector", r".*does not have many workers"),  # resident data
    # Resident-tensor loaders are not DataLoaders; PredictionWriter restores the sample order itself.
    ("lightning.pytorch.loops.prediction_loop", r"Couldn't infer the batch indices"),
    # Mixed precision keeps float32 weights, so the summary's fallback to 32 bits is the right size.
    ("lightning.pytorch.utilities.model_summary.model_summary", r"Precision \S+-mixed is not supported"),
    # A spawned DDP worker testing after fit opens the run's metrics.csv again; the CLI keeps fit's rows.
    ("lightning.fabric.loggers.csv_logs", r"Experiment logs directory .* exists and is not empty"),
    # torchmetrics hands matplotlib a tensor, whose __array__ predates numpy 2's copy keyword (the confusion matrix)
    ("matplotlib.cbook", r"__array__ implementation doesn't accept a copy keyword"),
)
#: Lightning's info lines that say nothing new: an advertisement; the epoch lines already say where fit stopped;
#: the next line names the checkpoint again; a schedule's step count is internal bookkeeping.
NOTICES = ("💡 Tip:", "`Trainer.fit` stopped:", "Restoring states from the checkpoint path at",
           "Loading `train_dataloader` to estimate number of stepping batches")  # fmt: skip
_NOISE = ("Parser key", "Does not validate", "Subtypes:", "Errors:", "Given value", "Expected a <class 'NoneType'>",
          "Problem with given class_path", "Expected a path but")  # fmt: skip


def quiet_third_parties() -> None:
    """Silence what third parties print on every plain run, narrowly (by module and message); ours stay visible."""
    if os.environ.get(DEBUG_ENV):
        return
    for module, message in WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith(NOTICES)
    )


@contextlib.contextmanager
def exit_on_interrupt() -> Iterator[None]:
    """Ctrl-C (SIGINT) or SIGTERM anywhere inside: stop the way Ctrl-C stops, exit status 128 + the signal.

    Lightning turns an interrupt during training into a graceful stop and ``sys.exit(1)``; that too becomes 130
    (SIGINT) or 143 (SIGTERM), and so does any other exception after a signal (a library that caught the
    ``KeyboardInterrupt`` and raised its own); one that swallows it only delays the exit to the end of the block.
    """
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt:
        received.append(signal.SIGINT)  # counts only when no signal came first (a KeyboardInterrupt raised in code)
    except BaseException:  # SystemExit, or whatever a library turned the interrupt into
        if not received:
            raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:  # also when the interrupt was swallowed on the way
        sys.exit(128 + received[0])


@contextlib.contextmanager
def errors_as_one_line() -> Iterator[None]:
    """Print any exception of the block as ``dlbasics: error: <one line>`` on stderr and exit 1 (2: bad arguments)."""
    try:
        yield
    except Exception as err:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"dlbasics: error: {one_line(err)}  [{DEBUG_ENV}=1 shows the traceback]", file=sys.stderr)
        sys.exit(2 if type(err).__name__ == "ArgumentError" else 1)


def one_line(err: BaseException) -> str:
    """One line describing ``err``: for argument errors the parameter path and the innermost reason.

    jsonargparse wraps a bad nested value (``--model.init_args.optimizer.init_args.lr abc``) in several
    exceptions, each naming one level of the path; the keys are collected from the whole chain.
    """
    chain = [err]  # and the exceptions it was raised from, outermost first
    while (cause := chain[-1].__cause__) is not None and cause not in chain:
        chain.append(cause)
    text = "\n".join(map(str, chain))
    lines = [re.sub(r'^(- )?(Parser key "[^"]+":\s*)?', "", ln.strip()) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return type(err).__name__
    keys = list(dict.fromkeys(k for k in re.findall(r'Parser key "([^"]+)"', text) if k != "init_args"))
    if not keys and "Does not validate" not in text:
        plain = isinstance(err, ValueError | FileNotFoundError | FloatingPointError)
        return lines[0] if plain or type(err).__name__ == "ArgumentError" else f"{type(err).__name__}: {lines[0]}"
    innermost = [ln.strip(" -") for ln in str(chain[-1]).splitlines() if ln.strip(" -")]
    reasons = [ln for ln in lines if not ln.startswith(_NOISE)]
    inner = [ln for ln in innermost if not ln.startswith(_NOISE)]
    reason = inner[-1] if len(chain) > 1 and inner else reasons[-1] if reasons else lines[0]
    given = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Given value:")), None)
    if "dot import path" in reason and len(keys) > 1:
        given = reason.rsplit(":", 1)[-1].strip()
        return f"{'.'.join(keys)}: {given!r} is not a class: give a class_path such as torch.optim.SGD"
    if keys in (["model"], ["data"]) and ("import path" in reason or "has no attribute" in reason):
        name = given or reason.rsplit(" ", 1)[-1].strip("'")
        module = importlib.import_module("dlbasics.models" if keys == ["model"] else "dlbasics.data")
        choices = ", ".join(n for n in module.__all__ if not n.startswith("InMemory"))
        return f"unknown {keys[0]} {name!r}: use one of {choices} (or a full class_path)"
    if given is not None and reason.startswith("Expected a") and "Got value" not in reason:
        reason = f"{reason}, got {given!r}"
    if not keys:
        return reason if reasons else f"{type(err).__name__}: {reason}"
    return f"{'.'.join(keys)}: {reason}"
