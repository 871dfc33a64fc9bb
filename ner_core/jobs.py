"""One fine-tune at a time, in a background thread, observed through snapshots.

The app starts a job and polls it; the job does not belong to a browser tab, so closing the page
neither stops nor loses it, and every visitor sees the same job. A second start while one runs is
refused with a message that says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import TrainConfig
from .training import TrainProgress, TrainResult, fine_tune

logger = logging.getLogger(__name__)

MAX_LOG_LINES = 500


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

    @property
    def active(self) -> bool:
        return self.state in ("running", "stopping")


class FineTuneJobs:
    """Runs at most one ``fine_tune`` at a time for the whole process."""

    def __init__(self, run: Callable[..., TrainResult] = fine_tune):
        self._run = run
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._snapshot = JobSnapshot("idle")
        self._thread: threading.Thread | None = None

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            s = self._snapshot
            return JobSnapshot(s.state, s.run_name, s.progress, list(s.losses), list(s.scores),
                               list(s.log), s.result, s.error, s.config)

    def start(self, config: TrainConfig, load_data: Callable, output_dir: Path) -> None:
        """Start fine-tuning in the background; ``ValueError`` if a fine-tune is already running.

        ``load_data`` is called in the job's thread, so slow loading does not hold the caller.
        """
        with self._lock:
            if self._snapshot.active:
                raise ValueError(f"a fine-tune ({self._snapshot.run_name}) is already running; "
                                 "wait for it to finish or stop it first")
            self._stop.clear()
            self._snapshot = JobSnapshot("running", output_dir.name, config=config)
            self._thread = threading.Thread(target=self._work, args=(config, load_data, output_dir),
                                            name="fine-tune", daemon=True)
            self._thread.start()

    def stop(self) -> bool:
        """Ask the running fine-tune to stop after its current step; False if none runs."""
        with self._lock:
            if self._snapshot.state != "running":
                return False
            self._snapshot.state = "stopping"
            self._note("stop requested: finishing the current step")
        self._stop.set()
        return True

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the job's thread ends (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.snapshot()

    def _note(self, line: str) -> None:
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

    def _work(self, config: TrainConfig, load_data: Callable, output_dir: Path) -> None:
        try:
            with self._lock:
                self._note(f"loading data and {config.base_model}")
            data = load_data()
            with self._lock:
                self._note(f"training on {len(data['train']):,} sentences")
            result = self._run(config, data, output_dir, on_event=self._on_event,
                               should_stop=self._stop.is_set)
        except Exception as error:  # the job reports any failure; the server keeps serving
            logger.exception("fine-tune %s failed", output_dir.name)
            with self._lock:
                self._snapshot.state = "failed"
                self._snapshot.error = str(error) or type(error).__name__
                self._note(f"failed: {self._snapshot.error}; nothing was saved")
            return
        with self._lock:
            self._snapshot.result = result
            self._snapshot.state = "stopped" if result.stopped_early else "finished"
            kept = (f"stopped at step {result.steps} of {result.total_steps}; the weights so far "
                    f"are saved as {output_dir.name}" if result.stopped_early
                    else f"finished; saved as {output_dir.name}")
            self._note(kept)
