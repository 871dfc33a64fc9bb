"""Saved runs made from the tiny test models, and ``python app.py`` served on a free local port.

Shared by the handler tests (runs only) and the browser and API tests (runs and the live server).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from ner_core import TrainConfig

APP_DIR = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 90
# Every word of a sentence is tagged I-ORG, so each sentence is one ORG entity, scored 1.0.
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
    """A copy of ``model_dir`` whose classifier makes ``label`` win every word.

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


@contextmanager
def serve_app(runs_dir: Path, log: Path):
    """``python app.py`` on a free port, serving the runs of ``runs_dir``; yields its URL.

    The server's temporary files (uploads, zips, downloads) go beside ``log``, not into /tmp.
    """
    port = free_port()
    temporary = log.parent / "server-tmp"
    temporary.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "NER_"))}
    env.update(HF_HUB_OFFLINE="1", NER_RUNS_DIR=str(runs_dir), GRADIO_SERVER_PORT=str(port),
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
               GRADIO_TEMP_DIR=str(temporary / "gradio"), TMPDIR=str(temporary),
               TOKENIZERS_PARALLELISM="false")
    url = f"http://127.0.0.1:{port}/"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=APP_DIR, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
