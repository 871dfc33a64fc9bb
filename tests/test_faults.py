"""Faults during a fine-tune: a crash, running out of memory, Stop, a killed process, a closed
browser, a runs directory that cannot be written. The app keeps serving and saved models stay whole.

Fine-tunes here train the tiny BERT on invented data through the app's own handlers, so the job, its
snapshot and the page's one-second refresh (``studio.finetune.poll``) are the ones a visitor sees.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
import torch
from transformers import DataCollatorForTokenClassification, Trainer

import ner_core.training
from conftest import dead_pid, make_sentences, write_conll
from live_app import TINY_LABEL, label_winning_copy, make_run, visitor
from ner_core import Recognizer, TrainConfig, cli, list_runs, runs
from ner_core import models as core_models
from ner_core.jobs import FineTuneJobs, LoadedData
from ner_core.training import fine_tune
from studio import finetune as ft
from studio import highlight as hl

TEXT = "Anna Weber visited Berlin. Then Nordbank left."
# The biased model makes each sentence one ORG entity.
ENTITIES = [("Anna Weber visited Berlin.", 0, 26), ("Then Nordbank left.", 27, 46)]


@pytest.fixture(scope="module")
def biased_model(tmp_path_factory, tiny_bert) -> Path:
    return label_winning_copy(tiny_bert, tmp_path_factory.mktemp("biased") / "model", TINY_LABEL)


@pytest.fixture
def earlier(runs_dir, biased_model, tmp_path, monkeypatch) -> dict[str, str]:
    """An earlier run ``earlier`` and a bundled ``default`` model; the fingerprint of their files."""
    make_run(runs_dir, "earlier", biased_model)
    bundled = tmp_path / "assets" / "model"
    shutil.copytree(runs_dir / "earlier", bundled)
    monkeypatch.setattr(core_models, "BUNDLED_DIR", bundled)
    return fingerprint(runs_dir, bundled)


def fingerprint(*directories: Path) -> dict[str, str]:
    """Every file under ``directories`` (hidden ones too) with the SHA-256 of its bytes."""
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
            for directory in directories for path in sorted(directory.rglob("*")) if path.is_file()}


@pytest.fixture
def jobs(monkeypatch) -> FineTuneJobs:
    """The app's job runner, fresh for the test, training for real."""
    fresh = FineTuneJobs(fine_tune)
    monkeypatch.setattr(ft, "JOBS", fresh)
    yield fresh
    fresh.stop()
    fresh.wait(60)


@pytest.fixture
def train_file(tmp_path) -> Path:
    return write_conll(tmp_path / "train.txt", make_sentences(40, seed=11))


def settings(**changes) -> dict:
    """The Fine-tune form's hyperparameters by name, as the page sends them."""
    values = {"learning_rate": 1e-3, "train_batch_size": 4.0, "epochs": 2.0, "seed": 42.0,
              "weight_decay": 0.0, "warmup_ratio": 0.0, "max_length": 64.0,
              "max_train_sentences": 0.0, "document_context": False, "label_all_tokens": False}
    return {**values, **changes}


def start(name: str, train_file: Path, **changes) -> str:
    return next(ft.start_fine_tune(name, "earlier", "", "upload", str(train_file), None,
                                   **settings(**changes)))


def assert_highlight_still_works() -> None:
    for model in ("earlier", "default"):
        *_, found = hl.highlight(TEXT, model, "", 0.0)
        assert [(e["text"], e["start"], e["end"]) for e in found["entities"]] == ENTITIES


def page() -> dict:
    """What the page shows after its next refresh: progress, log and failure views."""
    progress, _, _, log, table, download, failure = ft.poll(None)[:7]
    return {"progress": progress, "log": log, "table": table, "download": download,
            "failure": failure}


# A crash or running out of memory in the middle of a fine-tune ----------------------------------

FAULT = ("the fine-tune hit a fault of the studio, not of its settings or data ({}); it is in "
         "the server's log")


def crash_in_on_event(monkeypatch):
    def crashing(config, data, output_dir, on_event, should_stop, **options):
        def report(progress):
            if progress.step == 3:
                raise RuntimeError("the progress display broke at step 3")
            on_event(progress)
        return fine_tune(config, data, output_dir, on_event=report, should_stop=should_stop,
                         **options)

    monkeypatch.setattr(ft, "JOBS", FineTuneJobs(crashing))
    return FAULT.format("RuntimeError")  # the detail is in the server's log, not on the page


def crash_in_a_data_step(monkeypatch):
    batches = itertools.count(1)

    class BrokenBatches(DataCollatorForTokenClassification):
        def __call__(self, features, return_tensors=None):
            if next(batches) == 3:
                raise RuntimeError("batch 3 could not be collated")
            return super().__call__(features, return_tensors)

    monkeypatch.setattr(ner_core.training, "DataCollatorForTokenClassification", BrokenBatches)
    return FAULT.format("RuntimeError")


def run_out_of_gpu_memory(monkeypatch):
    steps, train_step = itertools.count(1), Trainer.training_step

    def training_step(self, *args, **kwargs):
        if next(steps) == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return train_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", training_step)
    return ("training ran out of GPU memory with batch size 4 and max length 64; try a smaller "
            "batch size or a shorter max length")


@pytest.mark.parametrize("failure", [crash_in_on_event, crash_in_a_data_step, run_out_of_gpu_memory])
def test_a_failure_mid_fine_tune_is_shown_and_harms_nothing(jobs, earlier, runs_dir, train_file,
                                                            monkeypatch, failure):
    reason = failure(monkeypatch)
    start("crashed", train_file)
    snapshot = ft.JOBS.wait(120)

    assert (snapshot.state, snapshot.error) == ("failed", reason)
    assert snapshot.log[-1].endswith(f"failed: {reason}; nothing was saved")
    shown = page()
    assert "<b>failed</b> · crashed" in shown["progress"]
    assert shown["failure"] == f"**Failed:** {reason}"
    assert "Traceback" not in shown["log"] + shown["failure"]
    assert fingerprint(runs_dir, core_models.BUNDLED_DIR) == earlier  # byte for byte, nothing new
    assert list_runs() == ["earlier"]
    assert_highlight_still_works()


# Stop --------------------------------------------------------------------------------------------

def test_stop_mid_fine_tune_keeps_the_weights_of_the_last_step(jobs, earlier, runs_dir, train_file):
    start("stopped", train_file, train_batch_size=1.0, epochs=50.0)  # 2,000 steps
    deadline = time.monotonic() + 120
    while (ft.JOBS.snapshot().progress is None or ft.JOBS.snapshot().progress.step < 3) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    pressed = time.monotonic()
    ft.stop_fine_tune()
    snapshot = ft.JOBS.wait(60)

    assert time.monotonic() - pressed < 30  # one step and a save; generous for a busy machine
    assert snapshot.state == "stopped"
    kept = re.fullmatch(r"\S+  stopped at step (\d+) of 2000; the weights so far are saved as "
                        r"stopped", snapshot.log[-1])
    assert kept, snapshot.log[-1]
    steps = int(kept.group(1))
    assert steps >= 3 and snapshot.result.steps == steps
    assert runs.read_json(runs_dir / "stopped" / "metrics.json")["training"]["steps"] == steps
    assert list_runs() == ["stopped", "earlier"]
    # A few steps at 1e-3 move the classifier far less than the margin of 40 the earlier run's
    # bias gives I-ORG: the saved weights still make each sentence one ORG entity.
    found = Recognizer("stopped").recognize(TEXT)
    assert [(e["text"], e["label"], e["start"], e["end"]) for e in found] \
        == [(text, "ORG", start, end) for text, start, end in ENTITIES]
    shown = page()
    assert "<b>stopped</b> · stopped · step" in shown["progress"] and shown["failure"] == ""
    assert shown["log"].endswith(f"stopped at step {steps} of 2000; the weights so far are saved "
                                 "as stopped")
    assert "stopped before the final scoring" in shown["table"]["note"][0]


def test_stop_before_the_first_step_keeps_nothing_and_says_so(jobs, earlier, runs_dir):
    loading, release = threading.Event(), threading.Event()

    def slow_data():
        loading.set()
        assert release.wait(30)
        return LoadedData({"train": []})  # never trained on: the stop came first

    jobs.start(TrainConfig(base_model="earlier", max_length=64), slow_data, runs_dir / "early")
    assert loading.wait(10)
    ft.stop_fine_tune()
    release.set()
    snapshot = jobs.wait(60)

    assert (snapshot.state, snapshot.result) == ("stopped", None)
    assert snapshot.log[-1].endswith("stopped before the first training step; nothing was saved")
    shown = page()  # the refresh neither fails nor offers a zip of a run that is not there
    assert "<b>stopped</b> · early · before the first step" in shown["progress"]
    assert shown["download"] == shown["table"] == {"__type__": "update"}
    assert not (runs_dir / "early").exists() and list_runs() == ["earlier"]
    assert fingerprint(runs_dir, core_models.BUNDLED_DIR) == earlier


# The process killed --------------------------------------------------------------------------

def fork_cli(args: list[str], log: Path, slow_step: str | None, flag: Path) -> int:
    """``python -m ner_core ARGS`` in a process forked from this one (which has its imports
    already), writing to ``log``; ``runs.<slow_step>``, when given, touches ``flag`` and then
    sleeps, so that a kill lands inside it. Returns the process id."""
    log.touch()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        with open(log, "w", buffering=1) as out:
            sys.stdout = sys.stderr = out
            # A forked child cannot use the parent's OpenMP thread pool (see studio/zerogpu.py).
            torch.set_num_threads(1)
            if slow_step:
                slowed = getattr(runs, slow_step)

                def slow(*step_args):
                    flag.touch()
                    time.sleep(600)
                    return slowed(*step_args)

                setattr(runs, slow_step, slow)
            code = cli.main(args)
    finally:
        os._exit(code)


def running(pid: int) -> bool:
    """Whether process ``pid`` (a child) has not exited; an exited one is left to be reaped."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


@pytest.mark.parametrize("moment, output, overwrite", [
    ("training", "new", False),
    ("write_json", "new", False),       # weights written, metrics not yet
    ("publish", "earlier", True),       # a complete new run about to replace the earlier one
])
def test_a_killed_fine_tune_leaves_no_half_run(earlier, runs_dir, tmp_path, tiny_bert, moment,
                                              output, overwrite):
    data = write_conll(tmp_path / "train.txt", make_sentences(40, seed=3))
    flag, log = tmp_path / "slow-step-reached", tmp_path / "train.log"
    args = ["train", "--base-model", str(tiny_bert), "--data", str(data), "--output",
            str(runs_dir / output), "--max-length", "64", "--batch-size", "2", "--learning-rate",
            "1e-3", "--epochs", "100" if moment == "training" else "1"]
    pid = fork_cli(args + ["--overwrite"] * overwrite, log,
                   None if moment == "training" else moment, flag)
    try:
        deadline = time.monotonic() + 180
        while not (flag.exists() if moment != "training" else "fine-tuning" in log.read_text()):
            assert running(pid), log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(0.5 if moment == "training" else 0)  # a few steps more
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    partial = sorted(p.name for p in runs_dir.iterdir() if p.name.startswith(runs.PARTIAL_PREFIX))
    assert partial == ([] if moment == "training" else [f".partial-{output}-{pid}"])

    assert list_runs() == ["earlier"]  # before any clean-up: nothing half-written is listed
    assert runs.remove_stale_staging() == partial  # what the app does when it starts again
    assert fingerprint(runs_dir, core_models.BUNDLED_DIR) == earlier
    *_, found = hl.highlight(TEXT, "earlier", "", 0.0)
    assert [(e["text"], e["start"], e["end"]) for e in found["entities"]] == ENTITIES


def test_stale_staging_is_removed_only_when_its_process_is_gone(runs_dir, biased_model):
    runs_dir.mkdir()
    dead, sleeper = dead_pid(), subprocess.Popen(["sleep", "60"])
    try:
        for name in [f".partial-a-{dead}", f".partial-b-{sleeper.pid}", f".partial-c-{os.getpid()}"]:
            (runs_dir / name).mkdir()
        (runs_dir / f".partial-write-check-{dead}").write_text("")
        make_run(runs_dir, f".partial-moved-old-{dead}", biased_model)  # publish was cut short
        (runs_dir / ".partial-not-a-pid").mkdir()

        removed = runs.remove_stale_staging()

        assert sorted(removed) == sorted([f".partial-a-{dead}", f".partial-c-{os.getpid()}",
                                          f".partial-write-check-{dead}"])
        assert sorted(p.name for p in runs_dir.iterdir()) \
            == [".partial-b-" + str(sleeper.pid), ".partial-not-a-pid", "moved"]
        assert runs.list_runs() == ["moved"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stale_staging_on_a_read_only_disk_is_left_without_failing(runs_dir, monkeypatch):
    stale = runs_dir / f".partial-a-{dead_pid()}"
    stale.mkdir(parents=True)

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(shutil, "rmtree", read_only)
    assert runs.remove_stale_staging() == []  # the server still starts
    assert stale.is_dir() and runs.list_runs() == []


# A runs directory that cannot be written ---------------------------------------------------------

@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_a_runs_directory_that_cannot_be_written_refuses_the_start(jobs, earlier, runs_dir,
                                                                   train_file, monkeypatch, code):
    real_open = os.open

    def failing_open(path, *args, **kwargs):
        if Path(path).parent == runs_dir:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", failing_open)
        with pytest.raises(gr.Error, match=re.escape(
                f"the runs directory {runs_dir} cannot be written ({os.strerror(code)}); expected "
                "a writable directory with free space: free some space, or set NER_RUNS_DIR to "
                "another directory")):
            start("refused", train_file)
    assert ft.JOBS.snapshot().state == "idle"
    assert fingerprint(runs_dir, core_models.BUNDLED_DIR) == earlier
    assert_highlight_still_works()


def test_a_read_only_runs_directory_refuses_the_start(jobs, earlier, runs_dir, train_file):
    runs_dir.chmod(0o555)
    try:
        if os.access(runs_dir, os.W_OK):
            pytest.skip("this user writes into a 0o555 directory (root): the case above makes "
                        "the write itself fail instead")
        with pytest.raises(gr.Error, match=re.escape(
                f"the runs directory {runs_dir} cannot be written (Permission denied)")):
            start("refused", train_file)
    finally:
        runs_dir.chmod(0o755)
    assert ft.JOBS.snapshot().state == "idle"
    assert_highlight_still_works()


def test_a_disk_full_while_saving_fails_the_run_with_a_message(jobs, earlier, runs_dir, train_file,
                                                               monkeypatch):
    def full_disk(path, value):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(runs, "write_json", full_disk)
    start("full", train_file)
    snapshot = ft.JOBS.wait(120)

    reason = (f"the runs directory {runs_dir} cannot be written (No space left on device); "
              "expected a writable directory with free space: free some space, or set "
              "NER_RUNS_DIR to another directory")
    assert (snapshot.state, snapshot.error) == ("failed", reason)
    assert page()["failure"] == f"**Failed:** {reason}"
    assert fingerprint(runs_dir, core_models.BUNDLED_DIR) == earlier  # the half-saved run is gone
    assert_highlight_still_works()


# The browser closed during a fine-tune ----------------------------------------------------------

def test_a_fine_tune_outlives_its_browser(app_server, stale_staging, browser, train_file):
    import test_browser  # skips this test where the browser tests cannot run
    assert not stale_staging.exists()  # removed when the server started
    url, runs_dir = app_server.url, app_server.runs_dir
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    opened.goto(url, wait_until="load")
    test_browser.fill_fine_tune(opened, train_file, "outlived", epochs=3, batch_size=1)
    opened.click("#start")
    # The page shows the command that reproduces the run once the job has started: 120 steps
    # are ahead of it. (Not the progress: a refresh can wait behind a busy server's other work.)
    test_browser.sync_api.expect(opened.locator(".cm-content", has_text="python -m ner_core train"))\
        .to_contain_text("--output runs/outlived", timeout=60_000)
    context.close()  # the visitor leaves mid-run

    client = visitor(url)
    deadline = time.monotonic() + 180
    while "outlived" not in runs.list_runs(runs_dir):
        assert time.monotonic() < deadline, app_server.log.read_text()[-3000:]
        time.sleep(1)
    _, table, _, _ = client.predict(TEXT, "outlived", "", 0.0, api_name="/highlight")
    assert [row[0] for row in table["data"]] == [text for text, _, _ in ENTITIES]

    later = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = later.new_page()
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Fine-tune").click()
        test_browser.sync_api.expect(page.locator("#progress")).to_contain_text(
            "finished · outlived · step 120 of 120")
    finally:
        later.close()
