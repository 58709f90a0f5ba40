"""How the processes of a sweep share one Optuna study: its storage, the grid's queue, the trial loop, workers.

    dlbasics sweep --config rule_classifier --study my_study.yaml --name s1 --storage sqlite:////shared/s1.db

Optuna's storage is the only coordination. The process that creates the study (creation is atomic in every Optuna
storage) enqueues each grid point once as a waiting trial, then records the study's signature; a process that joins
waits for that signature and checks it is running the same study. Trials are taken from the queue by the storage's
own atomic WAITING → RUNNING transition, the step ``Study.ask`` takes first; a grid is never asked for a new trial
(Optuna's GridSampler may hand one point to two concurrent workers), so no point runs twice. TPE and random ask
Optuna for new trials; concurrent workers (``--workers N``) may overshoot ``trials`` by at most one each. A trial
interrupted by Ctrl-C is recorded FAIL ("interrupted") and its parameters queued again, so a rerun continues where
the sweep stopped: completed, pruned and failed trials count, interrupted ones do not.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import warnings
from contextlib import suppress
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from dlbasics.sweep.report import trial_line
from dlbasics.sweep.runner import Outcome, Plan, run_trial
from dlbasics.sweep.study import SweepError

SIGNATURE = "dlbasics:study"
INTERRUPTED = "interrupted"


class MetricMissing(SweepError):
    """The study's metric is not among what the first finished run logged."""


def quiet() -> None:
    """Optuna's INFO lines ("Trial 3 finished …") and experimental-feature warnings stay out of the console."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(url: str) -> BaseStorage:
    """An RDB storage for a URL (``sqlite:///…``, ``postgresql://…``, ``mysql://…``), else a journal file: Optuna's
    documented storage for several processes sharing one file (a lock file guards every append), on one machine or
    a shared filesystem. A storage that cannot be opened is a :class:`SweepError`."""
    folder = os.path.dirname(os.path.abspath(url))
    if "://" not in url and not os.path.isdir(folder):
        raise SweepError(f"storage {url!r} cannot be opened: folder {folder} does not exist")
    try:
        return RDBStorage(url) if "://" in url else JournalStorage(JournalFileBackend(url))
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise SweepError(f"storage {url!r} cannot be opened: {type(err).__name__}: {reason}") from None


def create_or_join(plan: Plan, storage: BaseStorage) -> tuple[optuna.Study, bool]:
    """The study named ``plan.name``, and whether this process created it (grid points enqueued, signature
    recorded) rather than joined it (once set up, if it is the same study)."""
    kw = {"study_name": plan.name, "storage": storage, "sampler": plan.study.make_sampler(plan.trials)}
    kw["pruner"] = plan.study.make_pruner()
    try:
        study = optuna.create_study(direction=plan.study.direction, **kw)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**kw)
    else:
        if plan.study.sampler == "grid":
            for point in plan.study.grid_points():
                study.enqueue_trial(point)
        study.set_user_attr(SIGNATURE, plan.study.signature())  # last: a joining process waits for it
        return study, True
    deadline = time.monotonic() + 30
    while (signature := study.user_attrs.get(SIGNATURE)) is None:  # its creator is still setting it up
        if time.monotonic() > deadline:
            raise SweepError(f"study {plan.name!r} in {plan.storage} is not a dlbasics sweep: give another --name")
        time.sleep(0.2)
    if signature != plan.study.signature():
        raise SweepError(f"sweep {plan.name!r} exists with another metric, direction, sampler or params: give --name")
    return study, False


def counts(trial: FrozenTrial) -> bool:
    """Whether a trial uses up the budget: finished or running, except an interrupted one (it is queued again)."""
    if trial.state == TrialState.FAIL:
        return not trial.user_attrs.get(INTERRUPTED)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def next_trial(plan: Plan, study: optuna.Study, storage: BaseStorage) -> optuna.Trial | None:
    """The next trial to run, or ``None`` when the budget is spent (a grid: when no point is waiting)."""
    trials = study.get_trials(deepcopy=False)
    if sum(map(counts, trials)) >= plan.trials:
        return None
    if plan.study.sampler != "grid":
        return study.ask()
    study_id = storage.get_study_id_from_name(plan.name)
    for waiting in (t for t in trials if t.state == TrialState.WAITING):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, waiting.number)
        with suppress(UpdateFinishedTrialError):
            if storage.set_trial_state_values(trial_id, TrialState.RUNNING):  # False: another process took it
                return optuna.Trial(study, trial_id)
    return None


def tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """Record ``outcome`` in the study (``MISSING`` as ``FAIL``; an interrupted trial's parameters queued again)."""
    trial.set_user_attr("seconds", round(outcome.seconds, 2))
    if outcome.reason:
        trial.set_user_attr("reason", ("interrupted, " if outcome.state == "INTERRUPTED" else "") + outcome.reason)
    if outcome.state == "INTERRUPTED":
        trial.set_user_attr(INTERRUPTED, True)
        study.enqueue_trial(trial.params)
    state = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED}.get(outcome.state, TrialState.FAIL)
    study.tell(trial, outcome.value, state=state)


def work(
    plan: Plan, study: optuna.Study, storage: BaseStorage, first: bool = False, parent: int = 0, stop: Any = None
) -> None:
    """Run trials one after the other until none is left (``first``: until one completes, and raise
    :class:`MetricMissing` if a run finished without logging the study's metric). A worker process passes its
    launcher's ``parent`` pid and ``stop`` event: it stops when either says so. Ctrl-C raises ``KeyboardInterrupt``
    once the running trial is recorded as interrupted."""
    while (not parent or os.getppid() == parent) and not (stop is not None and stop.is_set()):
        if (trial := next_trial(plan, study, storage)) is None:
            return
        try:
            outcome = run_trial(plan, trial)
        except Exception as err:  # outside the fit (the fit's own errors are the CLI's one line): FAIL, go on
            outcome = Outcome("FAIL", None, plan.log_root, 0.0, f"{type(err).__name__}: {err}")
        except BaseException:  # Ctrl-C between two fits: the trial must not stay RUNNING
            with suppress(Exception):
                plan.study.suggest(trial)  # its parameters (an enqueued point's own), to queue them again
            tell(study, trial, Outcome("INTERRUPTED", None, plan.log_root, 0.0, "Ctrl-C: queued again"))
            raise
        tell(study, trial, outcome)
        if first and outcome.state == "MISSING":
            raise MetricMissing(outcome)
        print(trial_line(plan, trial.number, trial.params, outcome), flush=True)
        if outcome.state == "INTERRUPTED":
            raise KeyboardInterrupt
        if first and outcome.state == "COMPLETE":
            return


def worker(plan: Plan, parent: int, stop: Any) -> None:
    """A worker process, in its own process group: Ctrl-C reaches the launcher, which sets ``stop`` and passes one
    SIGINT on (the worker starts with SIGINT ignored, so a Ctrl-C while it imports cannot break it)."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    quiet()
    storage = open_storage(plan.storage)
    study, _ = create_or_join(plan, storage)  # the launcher created it: loaded and checked
    try:
        work(plan, study, storage, parent=parent, stop=stop)
    except KeyboardInterrupt:
        sys.exit(130)


def run_all(plan: Plan, study: optuna.Study, storage: BaseStorage) -> int:
    """Run the sweep's trials here and in up to ``plan.workers - 1`` worker processes; the exit status (0 or 130).
    Until a trial has completed, trials run here alone: the first run shows whether the metric exists."""
    children: list[Any] = []
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads or OpenMP state
    stop = context.Event()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            work(plan, study, storage, first=True)
        left = plan.trials - sum(map(counts, study.get_trials(deepcopy=False)))  # a grid has as many points waiting
        count = min(plan.workers - 1, left - 1)
        children = [context.Process(target=worker, args=(plan, os.getpid(), stop)) for _ in range(count)]
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited: see worker()
        try:
            for child in children:
                child.start()
        finally:
            signal.signal(signal.SIGINT, handler)
        work(plan, study, storage)
        for child in children:
            child.join()
        return 0
    except KeyboardInterrupt:
        stop.set()
        started = [child for child in children if child.pid is not None]
        for child in started:
            if child.is_alive():
                os.kill(child.pid, signal.SIGINT)
        for child in started:
            child.join()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
