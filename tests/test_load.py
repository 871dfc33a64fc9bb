"""Many requests at once against the session's ``app_server``: right answers for every visitor, one
fine-tune at a time, no memory growth. Correctness only: ``bench/load.py`` reports the timings.

The server serves the run ``tiny`` (a tiny BERT that scores every word I-ORG first: each sentence is one ORG
entity), so every answer is known exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from conftest import make_sentences, write_conll
from live_app import (fine_tune_request, highlight_concurrently, highlight_over_http,
                      resident_memory, visitor)
from ner_core import runs

REFUSED = r"a fine-tune \({}\) is already running; wait for it to finish or stop it first"


@pytest.fixture(scope="module")
def client(app_server) -> Client:
    return visitor(app_server.url)


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    return write_conll(tmp_path_factory.mktemp("load-data") / "train.txt", make_sentences(40, seed=5))


def visitor_text(i: int) -> str:
    """A text of its own for visitor ``i``: one or two sentences, each a different length."""
    first = f"Visitor {i} met {'anna weber ' * (1 + i % 4)}in berlin."
    return first + (f" Then nordbank left {i} times." if i % 2 else "")


def expected_rows(text: str) -> list[list]:
    """The entity table for ``text`` from the tiny model: each sentence one ORG entity, scored 1."""
    rows, start = [], 0
    for sentence in text.split(". "):
        sentence = sentence if sentence.endswith(".") else sentence + "."
        rows.append([sentence, "ORG", 1.0, start, start + len(sentence)])
        start += len(sentence) + 1
    return rows


def stop_and_wait(client: Client, runs_dir: Path, name: str) -> None:
    """Stop the running fine-tune and wait until its weights are saved as run ``name``."""
    client.predict(api_name="/stop_fine_tune")
    deadline = time.monotonic() + 120
    while name not in runs.list_runs(runs_dir):
        assert time.monotonic() < deadline, f"the stopped fine-tune {name} was never saved"
        time.sleep(0.5)


def test_32_visitors_at_once_during_a_fine_tune_each_get_their_own_entities(app_server, client,
                                                                             train_file):
    url, runs_dir = app_server.url, app_server.runs_dir
    command = fine_tune_request(client, "under-load", train_file, "tiny", epochs=100).result()
    assert "python -m ner_core train" in command  # 4,000 steps: it runs throughout

    texts = [visitor_text(i) for i in range(32)]
    answers = highlight_concurrently(url, texts, "tiny")

    for text, (rows, _) in zip(texts, answers):
        assert rows == expected_rows(text)
        assert all(text[start:end] == entity for entity, _, _, start, end in rows)
    with pytest.raises(AppError, match=REFUSED.format("under-load")):  # still running
        fine_tune_request(client, "second", train_file, "tiny", epochs=1).result()
    stop_and_wait(client, runs_dir, "under-load")
    assert "second" not in runs.list_runs(runs_dir)


def test_two_fine_tunes_requested_at_once_start_one(app_server, train_file):
    url, runs_dir = app_server.url, app_server.runs_dir
    clients = [visitor(url) for _ in range(2)]
    jobs = [fine_tune_request(c, f"twin-{i}", train_file, "tiny", epochs=100)
            for i, c in enumerate(clients)]

    outcomes = []
    for job in jobs:
        try:
            outcomes.append(("started", job.result()))
        except AppError as error:
            outcomes.append(("refused", str(error)))
    assert sorted(kind for kind, _ in outcomes) == ["refused", "started"]
    started = "twin-0" if outcomes[0][0] == "started" else "twin-1"
    refusal = next(message for kind, message in outcomes if kind == "refused")
    assert "is already running" in refusal and started in refusal
    stop_and_wait(clients[0], runs_dir, started)
    assert {"twin-0", "twin-1"} & set(runs.list_runs(runs_dir)) == {started}


def test_sequential_requests_do_not_grow_resident_memory(app_server):
    url, process = app_server.url, app_server.process
    texts = [visitor_text(i) for i in range(300)]
    for text in texts[:100]:  # warm-up: caches, allocator pools and lazy imports fill here
        highlight_over_http(url, text, "tiny", session="one-visitor")
    start = resident_memory(process.pid)
    for text in texts[100:]:
        assert highlight_over_http(url, text, "tiny", session="one-visitor") == expected_rows(text)
    growth = resident_memory(process.pid) - start
    assert growth < 20 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB in 200 requests"



def test_8_visitors_at_once_on_zero_gpu_are_all_answered(zerogpu_server):
    """On ZeroGPU Gradio caps a queue left without a size at one waiting event, so all but the
    first of visitors arriving together were told "Queue is full"; the app sizes its queue."""
    texts = [visitor_text(i) for i in range(8)]
    answers = highlight_concurrently(zerogpu_server.url, texts, "tiny")
    for text, (rows, _) in zip(texts, answers):
        assert rows == expected_rows(text)
