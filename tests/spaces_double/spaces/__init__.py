"""A test double of the ``spaces`` package: ``spaces.GPU`` as ZeroGPU runs it, without a GPU.

Put ``tests/spaces_double`` first on ``PYTHONPATH`` (or ``sys.path``) and set
``SPACES_ZERO_GPU=true``; ``import spaces`` then finds this module. What it mirrors, with the place
in the real wheel (spaces 0.51.3):

- ``GPU(task=None, *, duration=None, size=None)`` as decorator, decorator factory or plain call;
  without ``SPACES_ZERO_GPU`` (read as ``spaces/config.py`` reads it) the function comes back
  unchanged (``zero/decorator.py``). The double reads the variable when decorating; the real
  package reads it once, on import.
- The duration (a number, a ``timedelta`` or a callable given the call's arguments) is worked out
  in the caller (``static_duration``, ``process_duration`` in ``zero/wrappers.py``; ``.seconds`` and
  the 60 s default as in ``zero/client.py`` ``get_duration_seconds``) and recorded in
  ``requested_durations``. Above ``SPACES_DOUBLE_MAX_DURATION`` seconds (default 300, standing in
  for the platform's cap) the call is refused as ``zero/client.py`` ``schedule`` refuses it.
- Arguments are pickled in the caller, so an unpicklable argument fails there with
  ``PicklingError`` (``spaces/utils.py`` ``SimpleQueue.put``). The function runs in a forked
  process, in a worker thread (``thread_wrapper`` and ``Worker``); results and generator yields are
  pickled in the child and unpickled in the caller; a generator runs ahead of its consumer, its
  yields collected by a thread in the caller (``fill_yield_queue``).
- Failures (``gradio_handler``, ``exception_result``; titles as ``zero/gradio.py`` ``error()``): a
  ``gr.Error`` raised in the child is raised again as it is; any other exception becomes
  ``gr.Error(<exception class name>, title="ZeroGPU worker error")``; a child that dies without
  finishing gives ``gr.Error("GPU task aborted", title="ZeroGPU worker error")``.
- Closing the caller's generator (Gradio cancelling the event) sets an event that the child checks
  after each yield; it then closes its generator, so its ``finally`` blocks run (``iterate``).
- Inside the child, a call to a decorated function runs directly (the ``forked`` flag).
- ``gradio_auto_wrap``, which Gradio calls on each event function on a Space: unchanged unless
  ``SPACES_GRADIO_AUTO_WRAP`` is set (``spaces/gradio.py``).

Not mirrored: the GPU itself, the scheduling queue and quotas, a worker process kept for the next
call (here one process per call), and Gradio's progress and messages forwarded from the child.
"""

from __future__ import annotations

import inspect
import multiprocessing
import os
import queue
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial, wraps
from multiprocessing.connection import wait
from multiprocessing.reduction import ForkingPickler
from pickle import PicklingError
from typing import Any, Callable

import gradio as gr

DEFAULT_DURATION_SECONDS = 60
MAX_DURATION_VARIABLE = "SPACES_DOUBLE_MAX_DURATION"
# Seconds asked for by each call made in this process (the caller's side), in order.
requested_durations: list[int] = []

_fork = multiprocessing.get_context("fork")
_decorated: dict[Callable, Callable] = {}
_forked = False  # True in a child: decorated functions called there run directly


def GPU(task: Callable | None = None, *, duration: Any = None, size: str | None = None):
    """Run ``task`` as ZeroGPU does: in a forked process, arguments and results pickled."""
    if not callable(task):
        if isinstance(task, str):
            size = task
        elif task is not None:
            duration = task
        return partial(_gpu, duration=duration, size=size)
    return _gpu(task, duration, size)


def gradio_auto_wrap(task: Callable | None) -> Callable | None:
    """What Gradio calls on every event function when it runs on a Space (``SYSTEM=spaces``):
    ``GPU(task)`` only with ``SPACES_GRADIO_AUTO_WRAP`` set, else ``task`` unchanged
    (``spaces/gradio.py``)."""
    if not _flag("SPACES_GRADIO_AUTO_WRAP") or not callable(task):
        return task
    return GPU(task)


def _zero_gpu() -> bool:
    return _flag("SPACES_ZERO_GPU")


def _flag(name: str) -> bool:
    value = os.getenv(name)
    return value is not None and value.lower() in ("1", "t", "true")


def _gpu(task: Callable, duration: Any, size: str | None) -> Callable:
    if not _zero_gpu():
        return task
    if task in _decorated:
        return _decorated[task]
    if inspect.iscoroutinefunction(task):
        raise NotImplementedError
    if inspect.isgeneratorfunction(task):
        decorated = _generator_wrapper(task, duration, size)
    else:
        decorated = _function_wrapper(task, duration, size)
    decorated.zerogpu = None
    _decorated.update({task: decorated, decorated: decorated})
    return decorated


def _error(title: str, message: str) -> gr.Error:
    return gr.Error(message, title=title, print_exception=False)


def _schedule(duration: Any, size: str | None, args: tuple, kwargs: dict) -> None:
    """Work out the call's duration in the caller and refuse it above the cap."""
    if callable(duration):
        duration = duration(*args, **kwargs)
    if duration is not None and not isinstance(duration, timedelta):
        duration = timedelta(seconds=duration)
    seconds = duration.seconds if duration is not None else DEFAULT_DURATION_SECONDS
    requested_durations.append(seconds)
    requested = round(seconds) * (2 if size == "xlarge" else 1)
    if requested > float(os.getenv(MAX_DURATION_VARIABLE, "300")):
        raise _error("ZeroGPU illegal duration",
                     f"The requested GPU duration ({requested}s) is larger than the maximum allowed")


def _dumps(value: Any) -> bytes:
    """Pickle as a multiprocessing queue does; a failure to pickle becomes ``PicklingError``."""
    try:
        return bytes(ForkingPickler.dumps(value))
    except PicklingError:
        raise
    except Exception as error:
        if "pickle" not in str(error):
            raise
        raise PicklingError(str(error)) from error


def _failure(error: Exception) -> tuple[str, bytes]:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    gradio_error = error if isinstance(error, gr.Error) else None
    return "error", _dumps((gradio_error, type(error).__name__, text))


class _Worker:
    """One forked process running one call; its messages arrive on ``messages`` as they come."""

    def __init__(self, child: Callable, payload: bytes, ends_with_result: bool):
        receiver, sender = _fork.Pipe(duplex=False)
        self.stop_event = _fork.Event()
        self.process = _fork.Process(target=_child_main, daemon=True,
                                     args=(child, payload, sender, self.stop_event))
        self.process.start()
        sender.close()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._ends_with_result = ends_with_result
        threading.Thread(target=self._collect, args=(receiver,), daemon=True).start()

    def _collect(self, receiver) -> None:
        """Pass on messages until the last one, or ("aborted", b"") if the child died; reap it."""
        while True:
            ready = wait([receiver, self.process.sentinel])
            if receiver not in ready and not receiver.poll():
                self.messages.put(("aborted", b""))
                break
            try:
                kind, data = receiver.recv()
            except EOFError:
                self.messages.put(("aborted", b""))
                break
            self.messages.put((kind, data))
            if kind in ("error", "end") or self._ends_with_result:
                break
        self.process.join()
        receiver.close()

    def next_value(self) -> tuple[bool, Any]:
        """(True, value) for a result or yield, (False, None) at the end; raises what the child raised."""
        kind, data = self.messages.get()
        if kind == "ok":
            return True, ForkingPickler.loads(data)
        if kind == "end":
            return False, None
        if kind == "aborted":
            raise _error("ZeroGPU worker error", "GPU task aborted")
        gradio_error, class_name, text = ForkingPickler.loads(data)
        if gradio_error is None:
            print(text)
            raise _error("ZeroGPU worker error", class_name)
        if gradio_error.print_exception:
            print(text)
            gradio_error.print_exception = False
        raise gradio_error


def _encode(value: Any) -> tuple[str, bytes]:
    """("ok", the pickled value), or the failure to pickle it as the child's error."""
    try:
        return "ok", _dumps(value)
    except PicklingError as error:
        return _failure(error)


def _child_main(child: Callable, payload: bytes, sender, stop_event) -> None:
    global _forked
    _forked = True
    args, kwargs = ForkingPickler.loads(payload)
    child(args, kwargs, sender, stop_event)
    sender.close()


def _function_wrapper(task: Callable, duration: Any, size: str | None) -> Callable:
    def run(args: tuple, kwargs: dict, sender, stop_event) -> None:
        def run_task() -> None:
            try:
                result = task(*args, **kwargs)
            except Exception as error:
                sender.send(_failure(error))
            else:
                sender.send(_encode(result))
        with ThreadPoolExecutor() as executor:
            future = executor.submit(run_task)
        future.result()

    @wraps(task)
    def call(*args, **kwargs):
        if _forked:
            return task(*args, **kwargs)
        _schedule(duration, size, args, kwargs)
        worker = _Worker(run, _dumps((args, kwargs)), ends_with_result=True)
        return worker.next_value()[1]

    return call


def _generator_wrapper(task: Callable, duration: Any, size: str | None) -> Callable:
    def run(args: tuple, kwargs: dict, sender, stop_event) -> None:
        def iterate() -> None:
            generator = task(*args, **kwargs)
            while True:
                try:
                    value = next(generator)
                except StopIteration:
                    break
                except Exception as error:
                    sender.send(_failure(error))
                    break
                if stop_event.is_set():
                    generator.close()
                    break
                message = _encode(value)
                sender.send(message)
                if message[0] == "error":
                    break
        # As in the real iterate(): the future is not awaited, and the end follows in every case.
        with ThreadPoolExecutor() as executor:
            executor.submit(iterate)
        sender.send(("end", b""))

    @wraps(task)
    def call(*args, **kwargs):
        if _forked:
            yield from task(*args, **kwargs)
            return
        _schedule(duration, size, args, kwargs)
        worker = _Worker(run, _dumps((args, kwargs)), ends_with_result=False)
        while True:
            more, value = worker.next_value()
            if not more:
                break
            try:
                yield value
            except GeneratorExit:
                worker.stop_event.set()
                raise

    return call
