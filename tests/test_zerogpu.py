"""Fine-tuning on a ZeroGPU Space, with the ``spaces`` double doing to each call what ZeroGPU does:
arguments pickled, the function run in a forked process, each yield pickled back, a closed
generator stopping the child. The parent here has already run torch on several threads (other
tests, and the server's warm-up), as a real server has when a visitor presses Start.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import make_sentences, write_conll
from live_app import APP_DIR, make_run, runs_with_tiny
from ner_core import runs
from ner_core.errors import UserError
from ner_core.jobs import FineTuneJobs, LoadedData
from studio import finetune as ft
from studio import training as tr
from studio import zerogpu

DOUBLE = Path(__file__).resolve().parent / "spaces_double"


@pytest.fixture
def on_zero_gpu(monkeypatch, runs_dir, tiny_bert):
    """The app's modules as on a ZeroGPU Space, a fresh job slot, and a saved run ``tiny``."""
    make_run(runs_dir, "tiny", tiny_bert)
    with monkeypatch.context() as space:
        space.setenv("SPACES_ZERO_GPU", "true")
        space.syspath_prepend(str(DOUBLE))
        sys.modules.pop("spaces", None)
        importlib.reload(zerogpu)
        import spaces

        space.setattr(ft, "JOBS", FineTuneJobs())
        spaces.requested_durations.clear()
        yield spaces
    sys.modules.pop("spaces", None)
    importlib.reload(zerogpu)  # back to a host without ZeroGPU for the other tests


def settings(**changes) -> dict:
    values = {"learning_rate": 1e-3, "train_batch_size": 4.0, "epochs": 2.0, "seed": 42.0,
              "weight_decay": 0.0, "warmup_ratio": 0.0, "max_length": 64.0,
              "max_train_sentences": 0.0, "document_context": False, "label_all_tokens": False,
              "case_feature": False}
    return {**values, **changes}


def start(name: str, train: Path, **changes):
    return ft.start_fine_tune(name, "tiny", "", "upload", str(train), None, **settings(**changes))


@pytest.fixture
def train(tmp_path) -> Path:
    return write_conll(tmp_path / "train.txt", make_sentences(40, seed=3))


def test_a_fine_tune_runs_in_the_worker_shows_progress_and_saves(on_zero_gpu, train):
    from studio.data import TrainingData

    assert zerogpu.measured_rate() is None  # a fresh server has measured no GPU run yet
    plan = tr.plan_from_form("tiny", "", None, settings())
    estimate = tr.estimate_seconds(tr.training_work(plan, TrainingData("upload", str(train), None)),
                                   gpu=True)
    calls = start("zg", train)
    command = next(calls)
    assert command.startswith("python -m ner_core train --base-model tiny --data train.txt")
    steps = []
    for update in calls:
        progress = ft.JOBS.snapshot().progress
        steps.append(progress.step if progress else None)
    snapshot = ft.JOBS.snapshot()
    assert snapshot.state == "finished", snapshot.log
    assert snapshot.result.steps == snapshot.result.total_steps == 20  # 40 sentences / 4, 2 epochs
    assert 20 in steps and steps == sorted(s for s in steps if s is not None)  # it streamed
    assert runs.run_path("zg") is not None and runs.owner_of("zg") is None  # anonymous, locally
    assert runs.zip_of("zg") is not None  # zipped by the server once the worker saved the run
    # The duration asked of ZeroGPU came from the settings, within what one call may hold.
    assert on_zero_gpu.requested_durations == [zerogpu.request_seconds(estimate)]
    assert zerogpu.measured_rate() is not None  # the next estimate uses this run's pace


def test_stop_ends_the_run_in_the_worker_and_keeps_its_weights(on_zero_gpu, train):
    calls = start("stopped", train, epochs=50.0)
    next(calls)
    for _ in calls:
        progress = ft.JOBS.snapshot().progress
        if progress and progress.step >= 2:
            ft.stop_fine_tune()  # the worker sees the request through the file system
            break
    for _ in calls:
        pass
    snapshot = ft.JOBS.snapshot()
    assert snapshot.state == "stopped"
    assert snapshot.result.steps < snapshot.result.total_steps == 500
    assert runs.run_path("stopped") is not None
    assert "stopped at step" in snapshot.log[-1]


def test_a_closed_page_stops_the_run_and_saves_what_it_trained(on_zero_gpu, train):
    calls = start("closed", train, epochs=50.0)
    next(calls)
    next(calls)  # the first report from the worker
    calls.close()  # Gradio cancels the event: the generator is closed at its yield
    deadline = time.monotonic() + 120
    while ft.JOBS.snapshot().active:
        assert time.monotonic() < deadline, ft.JOBS.snapshot().log
        time.sleep(0.2)
    snapshot = ft.JOBS.snapshot()
    assert snapshot.state == "stopped", snapshot.log
    assert runs.run_path("closed") is not None
    assert snapshot.result.steps < 500


def test_settings_that_need_more_gpu_time_than_a_call_holds_are_refused(on_zero_gpu, train,
                                                                        monkeypatch, runs_dir):
    monkeypatch.setenv("NER_ZEROGPU_MAX_SECONDS", "30")
    with pytest.raises(gr.Error, match=r"needs about \d+ s of GPU time, more than the 30 s one "
                                       r"ZeroGPU call may hold"):
        next(start("too-long", train))
    assert ft.JOBS.snapshot().state == "idle" and not (runs_dir / "too-long").exists()
    assert on_zero_gpu.requested_durations == []


def test_a_worker_that_dies_is_one_sentence_and_nothing_is_listed(on_zero_gpu, train, monkeypatch):
    import ner_core.training

    with monkeypatch.context() as dying:
        dying.setattr(ner_core.training, "fine_tune", lambda *a, **k: os._exit(1))
        calls = start("dies", train)
        next(calls)
        with pytest.raises(gr.Error, match="the GPU worker failed: GPU task aborted; nothing was "
                                           "saved"):
            list(calls)
    assert ft.JOBS.snapshot().state == "failed"
    assert runs.list_runs() == ["tiny"]
    # The next fine-tune works.
    assert list(start("after", train))[-1].startswith("python -m ner_core train")


def test_a_worker_that_dies_writing_a_progress_bar_leaves_the_servers_bars_free(on_zero_gpu,
                                                                              train, monkeypatch):
    # tqdm's write lock holds a process semaphore that a fork shares: were the worker to take the
    # server's, its death would leave every later progress bar of the server waiting forever.
    import ner_core.training
    from tqdm import std

    # The server's lock, made before the fork as drawing a bar makes it; this test's own, so that
    # a failure here leaves the other tests' bars alone.
    server_semaphore = multiprocessing.get_context("fork").RLock()
    monkeypatch.setattr(std.TqdmDefaultWriteLock, "mp_lock", server_semaphore)
    monkeypatch.setattr(std.tqdm, "_lock", std.TqdmDefaultWriteLock(), raising=False)

    def dies_writing_a_bar(*args, **kwargs):
        std.tqdm.get_lock().acquire()
        os._exit(1)

    with monkeypatch.context() as dying:
        dying.setattr(ner_core.training, "fine_tune", dies_writing_a_bar)
        with pytest.raises(gr.Error, match="GPU task aborted"):
            list(start("dies", train))
    assert server_semaphore.acquire(timeout=10)
    server_semaphore.release()
    assert list(std.tqdm(range(3), disable=False)) == [0, 1, 2]


def test_a_failure_in_the_worker_keeps_its_reason(on_zero_gpu, train, monkeypatch):
    import ner_core.training

    def refuse(*args, **kwargs):
        raise UserError("train.txt:3: expected a tag")

    monkeypatch.setattr(ner_core.training, "fine_tune", refuse)  # raised inside the worker
    calls = start("refused", train)
    next(calls)
    with pytest.raises(gr.Error, match="train.txt:3: expected a tag; nothing was saved"):
        list(calls)
    assert ft.JOBS.snapshot().state == "failed"
    assert ft.JOBS.snapshot().error == "train.txt:3: expected a tag"


def test_arguments_that_do_not_pickle_are_one_sentence(on_zero_gpu, train, monkeypatch):
    from studio.data import TrainingData

    monkeypatch.setattr(TrainingData, "load", lambda self: LoadedData({"train": threading.Lock()}))
    calls = start("unpicklable", train)
    next(calls)
    with pytest.raises(gr.Error, match=r"the fine-tune could not run on the GPU worker "
                                       r"\((PicklingError|TypeError): .*lock.*; nothing was saved"):
        list(calls)
    assert ft.JOBS.snapshot().state == "failed" and runs.list_runs() == ["tiny"]


def test_nothing_touches_cuda_in_the_server_process(tmp_path, tiny_bert):
    """Import, page build, page load and a Highlight on ZeroGPU, with every CUDA entry point
    made to fail."""
    runs_dir = runs_with_tiny(tmp_path, tiny_bert)
    script = """
import torch
def refuse(*args, **kwargs):
    raise AssertionError("CUDA touched in the server's process")
torch.cuda.is_available = torch.cuda.init = torch.cuda._lazy_init = refuse
torch.cuda.device_count = torch.cuda.is_bf16_supported = refuse
import app
from studio import finetune, highlight
app.warm_up()
app.build_demo()
print(finetune.describe_plan("tiny", "", "conll2003", None, None, epochs=1.0, max_length=64))
finetune.poll(None)
print(highlight.highlight("anna weber visited berlin.", "tiny", "", 0.0)[3])
"""
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "PYTHONPATH": str(DOUBLE),
           "NER_RUNS_DIR": str(runs_dir), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=APP_DIR, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Device: ZeroGPU (a GPU is lent to each fine-tune" in done.stdout
    assert "1 entities in" in done.stdout


def test_a_fine_tune_through_the_api_on_zero_gpu_appears_in_the_pickers(zerogpu_server, tmp_path):
    """The acceptance path: ``python app.py`` on ZeroGPU (the double as ``spaces``), a fine-tune
    started through ``/fine_tune`` with an uploaded file, then its run used by name."""
    train = write_conll(tmp_path / "train.txt", make_sentences(40, seed=5))
    client = Client(zerogpu_server.url, verbose=False, download_files=False)
    form = dict(base="tiny", base_hub="", source="upload", train_file=handle_file(str(train)),
                validation_file=None, learning_rate=1e-3, train_batch_size=4, epochs=1,
                seed=42, weight_decay=0.0, warmup_ratio=0.0, max_length=64,
                max_train_sentences=0, document_context=False, label_all_tokens=False,
                case_feature=False)
    command = client.predict(name="on-zero", **form, api_name="/fine_tune")
    assert command.startswith("python -m ner_core train --base-model tiny --data train.txt")
    assert runs.is_complete(zerogpu_server.runs_dir / "on-zero")  # the request returns once saved
    # The run is among the offered models: Highlight accepts it by name.
    _, table, _, _ = client.predict("anna weber visited berlin.", "on-zero", "", 0.0,
                                    api_name="/highlight")
    assert table["headers"] == ["text", "type", "score", "start", "end"]
    with pytest.raises(AppError, match="a run named 'on-zero' exists already"):
        client.predict(name="on-zero", **form, api_name="/fine_tune")
