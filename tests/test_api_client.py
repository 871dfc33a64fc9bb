"""The app's named API through ``gradio_client``, against the session's ``app_server``.

The server serves the run ``tiny`` (a tiny BERT that scores every word I-ORG first: each sentence is one
ORG entity scored 1.0), so answers are known exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import make_sentences, write_conll
from live_app import make_run

from ner_core import hardware

TEXT = "anna weber visited berlin. Then nordbank left.\n\nLi Wei met Globex."
ROWS = [["anna weber visited berlin.", "ORG", 1.0, 0, 26], ["Then nordbank left.", "ORG", 1.0, 27, 46],
        ["Li Wei met Globex.", "ORG", 1.0, 48, 66]]


@pytest.fixture(scope="module")
def client(app_server) -> Client:
    return Client(app_server.url, verbose=False, download_files=False)


def test_highlight_returns_the_table_with_exact_offsets(client):
    highlighted, table, files, timing = client.predict(TEXT, "tiny", "", 0.0, api_name="/highlight")

    assert table["headers"] == ["text", "type", "score", "start", "end"]
    assert table["data"] == ROWS
    assert all(TEXT[start:end] == text for text, _, _, start, end in table["data"])
    tokens = highlighted["value"]
    assert "".join(t["token"] for t in tokens) == TEXT
    assert [t["token"] for t in tokens if t["class_or_confidence"] == "ORG"] == [r[0] for r in ROWS]
    assert [Path(f["path"] if isinstance(f, dict) else f).name for f in files] \
        == ["entities.json", "entities.csv"]
    auto = hardware.pick_precision("auto", "cpu")[1]  # the server's machine is this one
    assert timing.startswith("3 entities in ") and timing.endswith(f" ms with `tiny` ({auto})")


@pytest.mark.parametrize("model, hub_id, message", [
    ("tiny", "../x", "expected a Hub id like 'owner/name', found '../x'"),
    ("tiny", "/etc/passwd", "expected a Hub id like 'owner/name', found '/etc/passwd'"),
    ("nope", "", "nope"),
])
def test_highlight_refuses_unknown_models_with_a_message(client, model, hub_id, message):
    with pytest.raises(AppError, match=message):
        client.predict(TEXT, model, hub_id, 0.0, api_name="/highlight")


def test_api_lists_highlight_and_evaluate(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/highlight", "/evaluate"} <= set(endpoints)
    assert [p["parameter_name"] for p in endpoints["/highlight"]["parameters"]] \
        == ["text", "model", "hub_id", "threshold", "int8"]
    assert [p["parameter_name"] for p in endpoints["/evaluate"]["parameters"]] \
        == ["model", "source", "upload", "mode"]


def test_evaluate_an_uploaded_file(client, tmp_path):
    sentences = make_sentences(30, seed=7)
    labelled = write_conll(tmp_path / "labelled.txt", sentences)
    support = {kind: sum(tag == f"B-{kind}" for s in sentences for _, tag in s)
               for kind in ["LOC", "MISC", "ORG", "PER"]}

    overall, per_entity, _, errors, types = client.predict(
        "tiny", "upload", handle_file(str(labelled)), "default", api_name="/evaluate")

    assert overall["headers"] == ["precision", "recall", "F1", "F1 95% interval", "accuracy",
                                  "sentences"]
    assert overall["data"][0][-1] == 30
    low, high = map(float, overall["data"][0][3].split(" to "))
    assert low <= overall["data"][0][2] <= high
    assert {row[0]: row[-1] for row in per_entity["data"]} == support
    assert errors.startswith("<p>30 of 30 sentences</p>")
    assert [value for _, value in types["choices"]] == ["all", "LOC", "MISC", "ORG", "PER"]


def test_highlight_accepts_a_run_saved_after_the_server_started(client, app_server):
    runs = app_server.runs_dir
    make_run(runs, "api-later", runs / "tiny")
    try:
        _, table, _, _ = client.predict(TEXT, "api-later", "", 0.0, api_name="/highlight")
        assert table["data"] == ROWS
    finally:
        shutil.rmtree(runs / "api-later")


def test_downloads_hold_the_entities(app_server):
    fetching = Client(app_server.url, verbose=False)  # downloads the output files
    _, _, files, _ = fetching.predict(TEXT, "tiny", "", 0.0, api_name="/highlight")
    entities = json.loads(Path(files[0]).read_text())
    assert [[e["text"], e["label"], e["score"], e["start"], e["end"]] for e in entities] == ROWS
