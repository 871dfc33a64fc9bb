"""Fine-tuning on a ZeroGPU Space: the GPU is lent per call, to a worker forked from the server.

``spaces.GPU`` runs the decorated function in a forked process that holds the GPU for as long as
it asks (the duration), and moves its arguments in and its yields out pickled. So the fine-tune is
called from the Start request, takes only plain data (the config, the loaded data, where to save,
a ``StopRequest`` that crosses the fork as a file), and yields its progress and then its result.
The server's process never touches CUDA. Off ZeroGPU nothing here is used (``spaces.GPU`` returns
the function unchanged, and the app runs a background job instead).
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import queue
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ner_core import runs
from ner_core.errors import UserError
from ner_core.training import TrainProgress, TrainResult

from . import access

logger = logging.getLogger("studio")

DEFAULT_MAX_SECONDS = 300  # what one ZeroGPU call could hold when this was written
SAVE_SECONDS = 20  # kept back from the GPU time to save the run once its deadline stops it
PACE_WINDOW = 5  # GPU fine-tunes whose pace the next estimate uses


def on_zero_gpu() -> bool:
    """Whether this server runs on ZeroGPU (``SPACES_ZERO_GPU``, set by the platform)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def max_seconds() -> int:
    """``NER_ZEROGPU_MAX_SECONDS``: the most GPU time one call may hold."""
    return access.int_setting("NER_ZEROGPU_MAX_SECONDS", DEFAULT_MAX_SECONDS)


class Pace:
    """Seconds per unit of training work (``training.training_work``) of the last few GPU
    fine-tunes here: their median, so one slow or fast run does not swing the next request."""

    def __init__(self, window: int = PACE_WINDOW):
        self._seen: collections.deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()

    def record(self, seconds: float, work: float) -> None:
        if work > 0 and seconds > 0:
            with self._lock:
                self._seen.append(seconds / work)

    def measured(self) -> float | None:
        with self._lock:
            return statistics.median(self._seen) if self._seen else None


PACE = Pace()


def measured_rate() -> float | None:
    """Seconds per unit of training work of recent GPU fine-tunes here, if any ran."""
    return PACE.measured()


def request_seconds(estimate: float) -> int:
    """The GPU time to ask for a fine-tune estimated at ``estimate`` seconds; ``UserError`` with
    both figures when one call may not hold that long."""
    cap = max_seconds()
    if estimate > cap:
        raise UserError(f"this fine-tune needs about {estimate:,.0f} s of GPU time, more than the "
                        f"{cap:,} s one ZeroGPU call may hold (NER_ZEROGPU_MAX_SECONDS); train "
                        "on fewer sentences or for fewer epochs")
    return min(cap, int(estimate * 1.25) + 1)


@dataclass
class Failure:
    """A fine-tune that failed in the worker, in words (an exception's type would not say why)."""

    reason: str


@functools.cache
def gpu_worker():
    """``train_in_worker`` as ZeroGPU runs it (in a forked worker holding the GPU for the duration
    each call asks, its last argument), or as it is off ZeroGPU.

    Asked once per process while the page is built: ZeroGPU registers its GPU functions when the
    server launches, so the decoration must happen before then, not at the first fine-tune.
    """
    if not on_zero_gpu():
        return train_in_worker
    import spaces

    return spaces.GPU(duration=lambda *args: args[-1])(train_in_forked_worker)


def train_in_forked_worker(*args):
    """``train_in_worker`` in a worker forked from the server, with progress-bar locks of its own."""
    own_progress_bar_locks()
    yield from train_in_worker(*args)


def own_progress_bar_locks() -> None:
    """Give this forked process tqdm write locks of its own. tqdm's lock holds a process semaphore
    shared across a fork: a worker that ends or is stopped at its deadline while a thread of it
    writes a progress bar would leave the server's semaphore taken, and every later progress bar
    of the server (saving a dataset, a download) would wait for it forever. A thread of the server
    may also hold the thread lock at the fork, which the worker would then wait for forever.
    """
    import multiprocessing

    from tqdm import std

    std.TqdmDefaultWriteLock.th_lock = std.TRLock()
    std.TqdmDefaultWriteLock.mp_lock = multiprocessing.get_context("fork").RLock()
    lock = std.TqdmDefaultWriteLock()
    pending = [std.tqdm]
    while pending:  # tqdm and every subclass that keeps a lock of its own
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is std.tqdm or "_lock" in vars(cls):
            cls._lock = lock


def train_in_worker(config, data, output_dir, stop, options: dict, seconds: int):
    """Fine-tune in the GPU worker; yields each ``TrainProgress``, then the ``TrainResult`` (or
    ``None`` when stopped before training, or a ``Failure``). ``options`` are further keyword
    arguments of ``fine_tune`` (replay data and the resolved base model, say); ``seconds`` is the
    GPU time the call holds.

    ``fine_tune`` reports through callbacks, so it runs in a thread of the worker and its reports
    are yielded as they come. When the caller goes away (the page was closed, so the generator is
    closed at a yield), the run stops at its next step and keeps what it trained.
    """
    import torch

    from ner_core.jobs import failure_reason
    from ner_core.training import fine_tune

    reports: queue.Queue = queue.Queue()

    def train() -> None:
        # A forked child inherits GNU OpenMP's thread pool in a state it cannot use: with more
        # than one thread, its first parallel CPU op hangs. The GPU does the heavy work here.
        torch.set_num_threads(1)
        try:
            if stop.requested():
                reports.put(("done", None))
                return
            reports.put(("done", fine_tune(config, data, output_dir, on_event=reports.put,
                                           should_stop=stop, **options)))
        except Exception as error:  # reported to the server in words; the worker ends cleanly
            logger.exception("the fine-tune %s failed in the GPU worker", output_dir.name)
            reports.put(("done", Failure(failure_reason(error, config, output_dir))))

    thread = threading.Thread(target=train, name="fine-tune", daemon=True)
    thread.start()
    finished = False
    try:
        while True:
            report = reports.get()
            if isinstance(report, tuple):
                finished = True
                yield report[1]
                return
            yield report
    finally:
        if not finished:
            stop.request()
            thread.join()  # saves what was trained before the worker lets go of the GPU


def run_in_request(jobs, plan, data, output_dir: Path, owner: str | None, command: str,
                   seconds: int, budget: int | None, work: float, prepare=None):
    """Run the fine-tune ``plan`` on ``data`` (a ``TrainingData``) in ZeroGPU's worker from the
    Start request, mirrored into ``jobs`` (the view every visitor polls); yields ``command`` first
    and last, and a skip per report between.

    ``work`` is the fine-tune's size (``training.training_work``): with its time it gives the
    pace that estimates the next one. ``prepare`` is ``FineTuneJobs.begin``'s (run once the job
    slot is won). The run is zipped for download once the worker saved it (``jobs.end``).
    """
    config = plan.config
    deadline = seconds - SAVE_SECONDS  # stop in time to save before the GPU is taken back
    stop = jobs.begin(config, output_dir, owner, budget_seconds=min(budget or deadline, deadline),
                      prepare=prepare)
    yield command
    result = error = None
    loaded = data.load()
    options = {**loaded.options, "base": plan.base, "preset": plan.preset}
    try:
        for report in gpu_worker()(config, loaded.splits, output_dir, stop, options, seconds):
            if isinstance(report, TrainProgress):
                jobs.record(report)
                yield gr.skip()
            elif isinstance(report, Failure):
                error = report.reason
            else:
                result = report
    except GeneratorExit:  # the page was closed: Gradio cancels the event, ZeroGPU stops the call
        jobs.stop(output_dir.name)
        threading.Thread(target=_settle_closed, args=(jobs, output_dir, seconds),
                         daemon=True).start()
        raise
    except gr.Error as failure:  # ZeroGPU's own: no quota left, a worker that died
        error = f"the GPU worker failed: {failure.message}"
    except Exception as failure:  # e.g. arguments that would not pickle; logged for the owner
        logger.exception("the ZeroGPU call for %s failed", output_dir.name)
        error = f"the fine-tune could not run on the GPU worker ({type(failure).__name__}: {failure})"
    if error is not None:
        runs.remove_stale_staging()  # what a dead worker left half-written
    elif isinstance(result, TrainResult) and not result.stopped_early:
        PACE.record(result.seconds, work)
    jobs.end(result, error, output_dir)
    if error is not None:
        raise UserError(f"{error}; nothing was saved")
    yield command


def _settle_closed(jobs, output_dir: Path, seconds: int) -> None:
    """After a closed page, wait for the worker to save what it trained, then close the job."""
    deadline = time.monotonic() + seconds + 30
    while time.monotonic() < deadline:
        saved = runs.run_path(output_dir.name)
        if saved is not None:
            facts = (runs.read_json(saved / "metrics.json") or {}).get("training", {})
            jobs.end(TrainResult(saved, runs.read_json(saved / "metrics.json"), True,
                                 facts.get("steps", 0), facts.get("total_steps", 0),
                                 facts.get("seconds", 0.0)), None, output_dir)
            return
        time.sleep(1.0)
    jobs.end(None, "the page was closed before the fine-tune saved anything", output_dir)
