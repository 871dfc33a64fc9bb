"""The ``spaces`` double in tests/spaces_double does to a call what ZeroGPU's ``spaces.GPU`` does."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from pickle import PicklingError

import gradio as gr
import pytest

DOUBLE_DIR = Path(__file__).resolve().parent / "spaces_double"
CALL_SECONDS = 60  # a call that takes longer has hung


def _load_double():
    # Loaded from its file, not registered as ``spaces``: other tests keep their own view of imports.
    spec = importlib.util.spec_from_file_location("spaces", DOUBLE_DIR / "spaces" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


spaces = _load_double()


@pytest.fixture
def zero_gpu(monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.delenv("SPACES_DOUBLE_MAX_DURATION", raising=False)
    spaces.requested_durations.clear()


def within(seconds: float, function, *args):
    """``function(*args)`` in a thread, failing the test rather than hanging it."""
    executor = ThreadPoolExecutor(1)
    try:
        return executor.submit(function, *args).result(timeout=seconds)
    finally:
        executor.shutdown(wait=False)


def pid_and_double(n):
    return os.getpid(), 2 * n


def count_to(n):
    yield from range(n)


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "yes"])
def test_off_zero_gpu_the_function_comes_back_unchanged(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    else:
        monkeypatch.setenv("SPACES_ZERO_GPU", value)
    assert spaces.GPU(pid_and_double) is pid_and_double
    assert spaces.GPU(duration=10)(pid_and_double) is pid_and_double
    assert spaces.GPU(duration=lambda n: n, size="xlarge")(count_to) is count_to


@pytest.mark.parametrize("value", ["1", "t", "TRUE", "true"])
def test_on_zero_gpu_the_call_runs_in_another_process(monkeypatch, value):
    monkeypatch.setenv("SPACES_ZERO_GPU", value)
    decorated = spaces.GPU(lambda n: pid_and_double(n))
    pid, result = within(CALL_SECONDS, decorated, 21)
    assert pid != os.getpid()
    assert result == 42


def test_decorating_twice_gives_the_same_wrapper(zero_gpu):
    def task():
        return 1
    first = spaces.GPU(task)
    assert spaces.GPU(duration=5)(task) is first
    assert spaces.GPU(first) is first


def test_arguments_are_pickled_in_the_caller(zero_gpu):
    decorated = spaces.GPU(duration=10)(lambda value: "ran")
    with pytest.raises(PicklingError, match="cannot pickle '_thread.lock' object"):
        decorated(threading.Lock())
    assert within(CALL_SECONDS, decorated, threading.Event) == "ran"  # a class pickles by name


def test_an_unpicklable_result_is_the_child_s_error(zero_gpu):
    decorated = spaces.GPU(lambda: threading.Lock())
    with pytest.raises(gr.Error) as caught:
        within(CALL_SECONDS, decorated)
    assert (caught.value.title, caught.value.message) == ("ZeroGPU worker error", "PicklingError")


def test_yields_arrive_in_order_from_another_process(zero_gpu):
    def pids_and_numbers(n):
        for i in range(n):
            yield os.getpid(), i
    decorated = spaces.GPU(pids_and_numbers)
    received = within(CALL_SECONDS, lambda: list(decorated(50)))
    assert [i for _, i in received] == list(range(50))
    assert {pid for pid, _ in received} != {os.getpid()} and len({pid for pid, _ in received}) == 1


def test_a_decorated_function_called_in_the_child_runs_there(zero_gpu):
    inner = spaces.GPU(os.getpid)
    outer = spaces.GPU(lambda: (os.getpid(), inner()))
    outer_pid, inner_pid = within(CALL_SECONDS, outer)
    assert outer_pid == inner_pid != os.getpid()


def raise_gradio_error():
    raise gr.Error("Training data has no entities", title="Bad data")


def raise_value_error():
    raise ValueError("a bug")


def yield_then_raise_value_error():
    yield 1
    raise ValueError("a bug")


def test_gradio_errors_pass_through(zero_gpu):
    with pytest.raises(gr.Error) as caught:
        within(CALL_SECONDS, spaces.GPU(raise_gradio_error))
    assert (caught.value.title, caught.value.message) == ("Bad data", "Training data has no entities")


def test_other_exceptions_become_the_worker_error(zero_gpu, capsys):
    with pytest.raises(gr.Error) as caught:
        within(CALL_SECONDS, spaces.GPU(raise_value_error))
    assert (caught.value.title, caught.value.message) == ("ZeroGPU worker error", "ValueError")
    assert "ValueError: a bug" in capsys.readouterr().out  # the child's traceback, printed

    received = []
    with pytest.raises(gr.Error, match="ValueError"):
        within(CALL_SECONDS, lambda: received.extend(spaces.GPU(yield_then_raise_value_error)()))
    assert received == [1]


def exit_at_once():
    os._exit(1)


def yield_then_exit():
    yield "started"
    os._exit(1)


def test_a_child_that_dies_gives_the_aborted_error(zero_gpu):
    with pytest.raises(gr.Error) as caught:
        within(CALL_SECONDS, spaces.GPU(exit_at_once))
    assert (caught.value.title, caught.value.message) == ("ZeroGPU worker error", "GPU task aborted")

    received = []
    with pytest.raises(gr.Error, match="GPU task aborted"):
        within(CALL_SECONDS, lambda: received.extend(spaces.GPU(yield_then_exit)()))
    assert received == ["started"]


def test_closing_the_generator_stops_the_child(zero_gpu, tmp_path):
    marker = tmp_path / "closed"

    def count_forever():
        try:
            i = 0
            while True:
                yield i
                i += 1
                time.sleep(0.05)
        finally:
            marker.write_text(str(os.getpid()))

    generator = spaces.GPU(count_forever)()
    assert within(CALL_SECONDS, lambda: [next(generator), next(generator)]) == [0, 1]
    generator.close()
    deadline = time.monotonic() + CALL_SECONDS
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the child's generator was not closed"
    child = int(marker.read_text())
    assert child != os.getpid()
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break  # ended and reaped
        time.sleep(0.05)
    else:
        pytest.fail(f"child {child} still exists after its generator was closed")


def test_the_duration_is_worked_out_in_the_caller_from_the_arguments(zero_gpu):
    seen = []

    def estimate(epochs, *, sentences):
        seen.append((os.getpid(), epochs, sentences))
        return 30 * epochs

    decorated = spaces.GPU(duration=estimate)(lambda epochs, *, sentences: epochs)
    assert within(CALL_SECONDS, lambda: decorated(3, sentences=500)) == 3
    assert seen == [(os.getpid(), 3, 500)]
    within(CALL_SECONDS, spaces.GPU(duration=timedelta(minutes=2))(lambda: None))
    within(CALL_SECONDS, spaces.GPU(lambda: None))
    assert spaces.requested_durations == [90, 120, 60]


@pytest.mark.parametrize("maximum, duration, size, allowed", [
    (None, 300, None, True),
    (None, 301, None, False),
    ("120", 121, None, False),
    ("120", 60, "xlarge", True),
    ("120", 61, "xlarge", False),
])
def test_a_duration_above_the_cap_is_refused_before_the_call(zero_gpu, monkeypatch, maximum,
                                                             duration, size, allowed):
    if maximum is not None:
        monkeypatch.setenv("SPACES_DOUBLE_MAX_DURATION", maximum)
    decorated = spaces.GPU(duration=lambda: duration, size=size)(lambda: "ran")
    if allowed:
        assert within(CALL_SECONDS, decorated) == "ran"
        return
    with pytest.raises(gr.Error) as caught:
        decorated()
    requested = duration * (2 if size == "xlarge" else 1)
    assert caught.value.title == "ZeroGPU illegal duration"
    assert caught.value.message == (f"The requested GPU duration ({requested}s) is larger than the "
                                    "maximum allowed")
    assert spaces.requested_durations == [duration]


# After a multi-threaded torch CPU op in the parent, the same op with 2 threads in a forked child
# hangs under GNU OpenMP (seen here with torch 2.13.0+cpu), as it would in a ZeroGPU worker. One
# thread in the child avoids the thread pool; this checks that, with a deadline, in a fresh process.
OPENMP_SCRIPT = """
import torch, spaces
torch.set_num_threads(2)
a = torch.randn(2000, 2000)
(a @ a).sum()

@spaces.GPU
def multiply(n):
    torch.set_num_threads(1)
    b = torch.ones(n, n)
    return float((b @ b)[0, 0])

print(multiply(2000))
"""


def test_torch_in_the_child_works_with_one_thread_after_the_parent_used_two():
    environment = {**os.environ, "SPACES_ZERO_GPU": "true", "PYTHONPATH": str(DOUBLE_DIR)}
    process = subprocess.Popen([sys.executable, "-c", OPENMP_SCRIPT], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the script and its forked child
        process.communicate()
        pytest.fail("torch in the forked child hung despite torch.set_num_threads(1)")
    assert (process.returncode, out.strip()) == (0, "2000.0"), err
