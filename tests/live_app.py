"""Saved runs made from the tiny test models, ``python app.py`` served on a free local port, and
traffic for it through the named API.

Shared by the handler tests (runs only), the session's servers in conftest.py (the browser, API,
security and load tests talk to them) and ``bench/load.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ner_core import TrainConfig

APP_DIR = Path(__file__).resolve().parent.parent
# Debian's Chromium, and the flags without which it stalls on a closed network.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic"]
STARTUP_SECONDS = 90
# Every word of a sentence scores I-ORG first and B-ORG second, so each sentence decodes as one
# ORG entity, scored 1.0.
TINY_LABEL = "I-ORG"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def make_run(runs_dir: Path, name: str, model_dir: Path, max_length: int = 64) -> Path:
    """A complete run ``name`` in ``runs_dir``: the files of ``model_dir`` plus the run's JSON files."""
    run = runs_dir / name
    runs_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, run)
    config = TrainConfig(base_model=str(model_dir), max_length=max_length)
    (run / "train_config.json").write_text(config.to_json())
    (run / "metrics.json").write_text('{"training": {"steps": 0}}\n')
    return run


def label_winning_copy(model_dir: Path, target: Path, label: str) -> Path:
    """A copy of ``model_dir`` whose classifier makes ``label`` win every word; for an ``I-``
    label its ``B-`` comes second, far above the rest, so each sentence decodes as one entity
    (``B-`` then ``I-``), a one-word sentence too.

    Zero weights and a large bias: an untrained model whose answers are known exactly.
    """
    import torch
    from transformers import AutoModelForTokenClassification

    shutil.copytree(model_dir, target)
    model = AutoModelForTokenClassification.from_pretrained(target)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(-20.0)
        model.classifier.bias[model.config.label2id[label]] = 20.0
        if label.startswith("I-"):
            model.classifier.bias[model.config.label2id["B-" + label[2:]]] = 10.0
    model.save_pretrained(target)
    return target


def runs_with_tiny(directory: Path, tiny_bert: Path) -> Path:
    """A runs directory holding one complete run, ``tiny``: ``tiny_bert`` with ``TINY_LABEL`` winning."""
    model = label_winning_copy(tiny_bert, directory / "models" / "tiny", TINY_LABEL)
    make_run(directory / "runs", "tiny", model)
    return directory / "runs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with code {process.returncode}:\n"
                               f"{log.read_text()[-3000:]}")
        try:
            with _LOCAL.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"app.py did not answer {url} within {STARTUP_SECONDS} s:\n"
                       f"{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class Served:
    """A running ``python app.py``: where it answers, its process, and the directory it keeps.

    ``directory`` holds ``runs/`` (``runs_dir``), ``datasets/`` (``data_home``), the server's
    temporary files (``server-tmp/``) and its log (``app.log``).
    """

    url: str
    process: subprocess.Popen
    directory: Path

    @property
    def runs_dir(self) -> Path:
        return self.directory / "runs"

    @property
    def data_home(self) -> Path:
        return self.directory / "datasets"

    @property
    def log(self) -> Path:
        return self.directory / "app.log"


@contextmanager
def serve_tiny(directory: Path, tiny_bert: Path, **settings: str):
    """``python app.py`` serving the run ``tiny`` (see ``runs_with_tiny``) from ``directory``,
    its datasets in ``directory/datasets``; yields a ``Served``."""
    runs_dir = runs_with_tiny(directory, tiny_bert)
    settings = {"NER_DATA_HOME": str(directory / "datasets"), **settings}
    with serve_app_process(runs_dir, directory / "app.log", **settings) as (url, process):
        yield Served(url, process, directory)


@contextmanager
def serve_app_process(runs_dir: Path, log: Path, **settings: str):
    """``python app.py`` on a free port, serving the runs of ``runs_dir``; yields ``(url, process)``.

    The server's temporary files (uploads, zips, downloads) go beside ``log``, not into /tmp.
    ``settings`` are environment variables for the server (a Space's, say).
    """
    port = free_port()
    temporary = log.parent / "server-tmp"
    temporary.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "NER_"))}
    env.update(HF_HUB_OFFLINE="1", NER_RUNS_DIR=str(runs_dir), GRADIO_SERVER_PORT=str(port),
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
               GRADIO_TEMP_DIR=str(temporary / "gradio"), TMPDIR=str(temporary),
               TOKENIZERS_PARALLELISM="false", **settings)
    url = f"http://127.0.0.1:{port}/"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=APP_DIR, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_until_up(url, process, log)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def resident_memory(pid: int) -> int:
    """The resident set size of process ``pid`` in bytes (Linux: ``VmRSS`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"expected a VmRSS line in /proc/{pid}/status, found none")


# Traffic for the load tests and bench/load.py: the named API, as a program or a visitor uses it.

def visitor(url: str):
    """A ``gradio_client.Client`` of its own (its own session), patient with a busy machine."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 120})


def fine_tune_request(client, name: str, train_file: Path, base: str, epochs: float,
                      batch_size: int = 1, max_length: int = 64):
    """Press Start on the Fine-tune tab through the API with an uploaded training file; the job."""
    from gradio_client import handle_file

    return client.submit(name=name, base=base, base_hub="", source="upload",
                         train_file=handle_file(str(train_file)), validation_file=None,
                         learning_rate=1e-3, train_batch_size=batch_size, epochs=epochs, seed=42,
                         weight_decay=0.0, warmup_ratio=0.0, max_length=max_length,
                         max_train_sentences=0, document_context=False, label_all_tokens=False,
                         case_feature=False, api_name="/fine_tune")


def highlight(client, text: str, model: str) -> tuple[list[list], float]:
    """The entity table's rows for ``text`` (text, type, score, start, end) and the seconds taken."""
    started = time.perf_counter()
    _, table, _, _ = client.predict(text, model, "", 0.0, api_name="/highlight")
    return table["data"], time.perf_counter() - started


def highlight_over_http(url: str, text: str, model: str, session: str) -> list[list]:
    """The entity table's rows for ``text``, as ``highlight`` gives them, through Gradio's plain
    HTTP API (``/gradio_api/call``) in the browser session ``session``: the same request to the
    server, without a client's own work (a tenth of a second of CPU each), for the tests that send
    hundreds."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        body = json.dumps({"data": [text, model, "", 0.0, False], "session_hash": session}).encode()
        connection.request("POST", "/gradio_api/call/highlight", body=body,
                           headers={"Content-Type": "application/json"})
        event = json.loads(connection.getresponse().read())["event_id"]
        connection.request("GET", f"/gradio_api/call/highlight/{event}")
        events = connection.getresponse().read().decode()
    finally:
        connection.close()
    outcome, data = events.rstrip("\n").split("\n")[-2:]
    if outcome != "event: complete":
        raise AssertionError(f"/highlight answered {events!r}")
    return json.loads(data.removeprefix("data: "))[1]["data"]  # the outputs: text, table, ...


def highlight_concurrently(url: str, texts: list[str], model: str) -> list[tuple[list[list], float]]:
    """Each text sent by a visitor of its own (a client, so a session, per text), all at once."""
    clients = [visitor(url) for _ in texts]  # one by one: only the requests come all at once
    ready = threading.Barrier(len(texts))

    def send(client, text):
        ready.wait()
        return highlight(client, text, model)

    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(send, clients, texts))
