"""One fine-tune at a time, observed through snapshots.

The app starts a job and polls it. Usually the job runs in a background thread (``start``): it does
not belong to a browser tab, so closing the page neither stops nor loses it, and every visitor sees
the same job. Where the training must run inside a request (a GPU lent per call, in a forked
worker), the caller drives it (``begin``, ``record``, ``end``) and the snapshot is the same. A second
start while one runs is refused with a message that says so. A failure ends the job, never the
process: its snapshot says why, in words a user can act on.

Who started a job owns its run: the slot is decided first (one lock), and only the start that won
it prepares the run's place (``prepare``: the disk budget, the starter's oldest runs removed) and
records its owner, before anything is written. When the run is saved, it is zipped for download
once, before the job is reported finished.

A stop request is a file as well as a flag: a worker forked from this process cannot see a
``threading.Event`` of ours, but it sees the file system. Each job has its own request, so a stop
aimed at one job can never stop the next one.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import DatasetDict

from . import runs, tenancy
from .config import TrainConfig
from .errors import UserError
from .training import TrainProgress, TrainResult, fine_tune

logger = logging.getLogger(__name__)

MAX_LOG_LINES = 500
# What a full or read-only disk, or a directory without permission, raises on write.
UNWRITABLE = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM}


@dataclass
class LoadedData:
    """What a fine-tune trains on: its splits, and the further keyword arguments of ``fine_tune``
    that go with them (replayed data, where each came from)."""

    splits: DatasetDict
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StopRequest:
    """Whether a fine-tune should stop: asked to (a file exists) or past its time budget.

    Plain data, so it pickles into a forked worker; calling it is the ``should_stop`` of
    ``fine_tune`` and costs one ``stat`` per training step.
    """

    path: str
    deadline: float | None = None  # time.time() at which the run stops by itself

    @classmethod
    def new(cls, budget_seconds: float | None = None) -> "StopRequest":
        path = Path(tempfile.gettempdir()) / f"ner-stop-{os.getpid()}-{uuid.uuid4().hex}"
        return cls(str(path), time.time() + budget_seconds if budget_seconds else None)

    def __call__(self) -> bool:
        return self.requested() or self.over_budget()

    def requested(self) -> bool:
        return os.path.exists(self.path)

    def over_budget(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def request(self) -> None:
        Path(self.path).touch()

    def discard(self) -> None:
        Path(self.path).unlink(missing_ok=True)


@dataclass
class JobSnapshot:
    state: str  # "idle", "running", "stopping", "finished", "stopped" or "failed"
    run_name: str | None = None
    progress: TrainProgress | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    scores: list[tuple[int, float]] = field(default_factory=list)  # (step, validation F1)
    log: list[str] = field(default_factory=list)
    result: TrainResult | None = None
    error: str | None = None
    config: TrainConfig | None = None
    owner: str | None = None  # who started it, as the app names visitors
    budget_seconds: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ("running", "stopping")


class FineTuneJobs:
    """Runs at most one ``fine_tune`` at a time for the whole process."""

    def __init__(self, run: Callable[..., TrainResult] = fine_tune):
        self._run = run
        self._lock = threading.Lock()
        self._stop = StopRequest.new()
        self._snapshot = JobSnapshot("idle")
        self._thread: threading.Thread | None = None

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            s = self._snapshot
            return JobSnapshot(s.state, s.run_name, s.progress, list(s.losses), list(s.scores),
                               list(s.log), s.result, s.error, s.config, s.owner, s.budget_seconds)

    def start(self, config: TrainConfig, load_data: Callable, output_dir: Path,
              owner: str | None = None, budget_seconds: float | None = None,
              options: dict | None = None, prepare: Callable[[], None] | None = None) -> None:
        """Start fine-tuning in the background; ``UserError`` if a fine-tune is already running
        or the run cannot be written where it should go.

        ``load_data`` is called in the job's thread, so slow loading does not hold the caller; it
        returns a ``LoadedData``.
        Past ``budget_seconds`` the run is stopped and what it trained is saved. ``options`` are
        further keyword arguments of ``fine_tune`` (where the data came from, say). ``prepare``
        is ``begin``'s.
        """
        self.begin(config, output_dir, owner, budget_seconds, prepare)
        with self._lock:
            self._thread = threading.Thread(target=self._work,
                                            args=(config, load_data, output_dir, options or {}),
                                            name="fine-tune", daemon=True)
            self._thread.start()

    def begin(self, config: TrainConfig, output_dir: Path, owner: str | None = None,
              budget_seconds: float | None = None,
              prepare: Callable[[], None] | None = None) -> StopRequest:
        """Claim the one slot for a fine-tune the caller runs itself, then ``record`` its progress
        and ``end`` it; the returned request is its ``should_stop``.

        Once the slot is won, and only then, ``prepare()`` runs (making room for the run, say)
        and ``owner`` is recorded as the run's. A refusal ``prepare`` raises gives the slot back
        and reaches the caller, with nothing written.
        """
        runs.check_writable(output_dir.parent)
        with self._lock:
            self._refuse_if_busy(owner)
            before = self._snapshot
            self._stop.discard()
            self._stop = stop = StopRequest.new(budget_seconds)
            self._snapshot = JobSnapshot("running", output_dir.name, config=config, owner=owner,
                                         budget_seconds=budget_seconds)
        try:
            if prepare is not None:
                prepare()
            runs.set_owner(output_dir.name, owner, output_dir.parent)
        except BaseException:
            with self._lock:
                self._snapshot = before
            stop.discard()
            raise
        return stop

    def check_idle(self, owner: str | None = None) -> None:
        """``UserError`` when a fine-tune is running (for a start, before its other checks)."""
        with self._lock:
            self._refuse_if_busy(owner)

    def _refuse_if_busy(self, owner: str | None) -> None:
        """Refuse a start by ``owner`` while a job runs; the job is named to who may manage it."""
        running = self._snapshot
        if not running.active:
            return
        if tenancy.may_manage(owner, running.owner):
            raise UserError(f"a fine-tune ({running.run_name}) is already running; wait for it "
                            "to finish or stop it first")
        raise UserError("a fine-tune of another visitor is already running; one runs at a time "
                        "on this server: wait for it to finish")

    def stop(self, run_name: str | None = None) -> bool:
        """Ask the running fine-tune to stop after its current step; False if none runs.

        With ``run_name``, only that job is stopped: a request that was checked against one job
        never stops a job started after it.
        """
        with self._lock:
            if self._snapshot.state != "running":
                return False
            if run_name is not None and self._snapshot.run_name != run_name:
                return False
            self._snapshot.state = "stopping"
            self._note("stop requested: finishing the current step")
            self._stop.request()
        return True

    def record(self, progress: TrainProgress) -> None:
        """A progress report of a job the caller runs (see ``begin``)."""
        self._on_event(progress)

    def end(self, result: TrainResult | None, error: BaseException | str | None,
            output_dir: Path) -> None:
        """Close a job the caller ran: its result, or ``None`` when it stopped before training
        began, or the error (or the reason already in words) that ended it."""
        reason = error if error is None or isinstance(error, str) else \
            failure_reason(error, self._snapshot.config, output_dir)
        self._finish(result, reason, output_dir)

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the job's thread ends (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.snapshot()

    def _note(self, line: str) -> None:
        logger.info("fine-tune %s: %s", self._snapshot.run_name, line)  # the server's log too
        self._snapshot.log.append(f"{time.strftime('%H:%M:%S')}  {line}")
        del self._snapshot.log[:-MAX_LOG_LINES]

    def _on_event(self, progress: TrainProgress) -> None:
        with self._lock:
            s = self._snapshot
            s.progress = progress
            if progress.kind == "log":
                s.losses.append((progress.step, progress.loss))
                self._note(f"step {progress.step}/{progress.total_steps}  loss {progress.loss:.4f}")
            if progress.kind == "eval" and "f1" in progress.eval_metrics:
                s.scores.append((progress.step, progress.eval_metrics["f1"]))
                self._note(f"step {progress.step}: validation F1 {progress.eval_metrics['f1']:.4f}")

    def _work(self, config: TrainConfig, load_data: Callable, output_dir: Path,
              options: dict) -> None:
        try:
            result = self._train(config, load_data, output_dir, options)
        except Exception as error:  # the job reports any failure; the server keeps serving
            logger.exception("fine-tune %s failed", output_dir.name)
            reason = failure_reason(error, config, output_dir)
            result = None
        else:
            reason = None
        self._finish(result, reason, output_dir)

    def _finish(self, result: TrainResult | None, reason: str | None, output_dir: Path) -> None:
        saved = reason is None and result is not None
        zip_failure = _zip(output_dir) if saved else None
        if not saved and runs.run_path(output_dir.name, output_dir.parent) is None:
            runs.set_owner(output_dir.name, None, output_dir.parent)  # no run: no owner left
        with self._lock:
            if reason is not None:
                self._snapshot.state = "failed"
                self._snapshot.error = reason
                self._note(f"failed: {reason}; nothing was saved")
            elif result is None:
                self._snapshot.state = "stopped"
                self._note("stopped before the first training step; nothing was saved")
            else:
                self._snapshot.result = result
                self._snapshot.state = "stopped" if result.stopped_early else "finished"
                if result.stopped_early and not self._stop.requested() and self._stop.over_budget():
                    self._note(f"the time budget of {self._snapshot.budget_seconds:,.0f} s was "
                               "reached: training stopped")
                if zip_failure is not None:
                    self._note(f"the run could not be zipped for download ({zip_failure})")
                self._note(f"stopped at step {result.steps} of {result.total_steps}; the weights "
                           f"so far are saved as {output_dir.name}" if result.stopped_early
                           else f"finished; saved as {output_dir.name}")
            self._stop.discard()
        if reason is not None:
            _release_memory()  # outside the handler: the exception's frames hold the model

    def _train(self, config: TrainConfig, load_data: Callable, output_dir: Path,
               options: dict) -> TrainResult | None:
        """The fine-tune's result; ``None`` when stopped before training began."""
        with self._lock:
            self._note(f"loading data and {config.base_model}")
        loaded = load_data()
        if self._stop.requested():
            return None
        with self._lock:
            self._note(f"training on {len(loaded.splits['train']):,} sentences")
        return self._run(config, loaded.splits, output_dir, on_event=self._on_event,
                         should_stop=self._stop, **{**options, **loaded.options})


def _zip(output_dir: Path) -> str | None:
    """Zip the run saved at ``output_dir`` for download; why it could not be, or ``None``.

    A zip that cannot be written (a full disk, say) leaves the run saved and the job finished.
    """
    if runs.run_path(output_dir.name, output_dir.parent) is None:
        return None  # saved elsewhere than under its name (a caller's own directory)
    try:
        runs.zip_run(output_dir.name, output_dir.parent)
    except OSError as error:
        logger.warning("cannot zip the run %s: %s", output_dir.name, error)
        return error.strerror or type(error).__name__
    return None


def failure_reason(error: Exception, config: TrainConfig, output_dir: Path) -> str:
    """Why a fine-tune failed, in words that say what to change.

    >>> failure_reason(UserError("train.txt:3: expected a tag"), TrainConfig(), Path("runs/a"))
    'train.txt:3: expected a tag'
    >>> failure_reason(KeyError("input_ids"), TrainConfig(), Path("runs/a"))
    "the fine-tune hit a fault of the studio, not of its settings or data (KeyError); it is in the server's log"
    """
    sizes = f"batch size {config.train_batch_size} and max length {config.max_length}"
    if isinstance(error, torch.OutOfMemoryError):
        return (f"training ran out of GPU memory with {sizes}; try a smaller batch size or a "
                "shorter max length")
    if isinstance(error, MemoryError):
        return (f"training ran out of memory with {sizes}; try a smaller batch size or a shorter "
                "max length")
    if isinstance(error, OSError) and error.errno in UNWRITABLE:
        written = Path(error.filename) if error.filename else None
        if written is None or output_dir.parent in (written, *written.parents):
            return runs.not_writable(output_dir.parent, error)
        shown = "a file the fine-tune writes" if tenancy.is_public() else written
        return f"{shown} cannot be written ({error.strerror}); expected a writable file system"
    if isinstance(error, UserError):
        return str(error)
    return (f"the fine-tune hit a fault of the studio, not of its settings or data "
            f"({type(error).__name__}); it is in the server's log")


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
