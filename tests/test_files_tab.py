"""The Files tab's handlers on a tiny model, without a server: whole files in, JSONL and CSV out.

The model is ``biased``: every word scored I-ORG first, so each sentence of a text is one ORG entity
scored 1.0, and the offsets of every entity are known.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from pathlib import Path

import gradio as gr
import pytest

from ner_core.batch import recognize_file
from studio import files, models
from studio.data import UPLOAD_LIMIT_BYTES

from ner_core.hardware import pick_precision

AUTO = pick_precision("auto", "cpu")[1]  # what the loaded models compute in here

TEXTS = ["Anna Weber visited Berlin.", "Then Nordbank left. Li Wei met Globex.",
         "Anna Weber visited Berlin.", "Ines Costa praised \u00c9cole Lima."]
SENTENCES = [["Anna Weber visited Berlin."], ["Then Nordbank left.", "Li Wei met Globex."],
             ["Anna Weber visited Berlin."], ["Ines Costa praised \u00c9cole Lima."]]


@pytest.fixture(autouse=True)
def written(tmp_path, monkeypatch) -> Path:
    """Where the handlers write their downloads: the test's own temporary directory."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def upload(tmp_path: Path, name: str, content: str | bytes) -> str:
    """A file as Gradio hands it over: the visitor's name, in a server directory of its own."""
    path = tmp_path / "gradio" / "0123abcd" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def table_file(texts: list[str], delimiter: str) -> str:
    lines = [delimiter.join(["id", "text", "source"])]
    lines += [delimiter.join([str(i), f'"{t}"', "wire"]) for i, t in enumerate(texts)]
    return "\n".join(lines) + "\n"


def table_fields(i: int) -> dict:
    return {"id": str(i), "source": "wire"}


# name, content, text field, the fields each record carries besides its text
FORMATS = {
    "txt": ("notes.txt", "\n".join(TEXTS) + "\n", "text", lambda i: {"line": i + 1}),
    "jsonl": ("notes.jsonl", "".join(json.dumps({"id": i, "body": t, "meta": {"n": i}}) + "\n"
                                     for i, t in enumerate(TEXTS)),
              "body", lambda i: {"id": i, "meta": {"n": i}}),
    "csv": ("notes.csv", table_file(TEXTS, ","), "text", table_fields),
    "tsv": ("notes.tsv", table_file(TEXTS, "\t"), "text", table_fields),
}


class Recorded:
    """A stand-in for ``gr.Progress`` that keeps what it was told."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_gives_records_with_exact_offsets(biased, tmp_path, fmt):
    name, content, field, carried = FORMATS[fmt]
    path = upload(tmp_path, name, content)
    summary, per_type, frequent, preview, downloads = files.recognize_upload(
        path, biased, field, 0.0, progress=Recorded())

    jsonl, table, *labelled = map(Path, downloads)  # then Label Studio's and doccano's
    assert (jsonl.name, table.name) == ("notes.entities.jsonl", "notes.entities.csv")
    objects = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert len(objects) == len(TEXTS)
    for i, (found, text, sentences) in enumerate(zip(objects, TEXTS, SENTENCES)):
        assert found[field] == text
        assert {k: v for k, v in found.items() if k not in (field, "entities")} == carried(i)
        assert [e["text"] for e in found["entities"]] == sentences
        assert all(text[e["start"]:e["end"]] == e["text"] for e in found["entities"])
        assert {e["label"] for e in found["entities"]} == {"ORG"}

    lines = [2, 3, 4, 5] if fmt in ("csv", "tsv") else [1, 2, 3, 4]  # after a table's header
    with open(table, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["line"]), r["type"], r["text"], float(r["score"]), int(r["start"]),
             int(r["end"])) for r in rows] \
        == [(line, e["label"], e["text"], e["score"], e["start"], e["end"])
            for line, o in zip(lines, objects) for e in o["entities"]]
    # The same bytes as recognizing the file straight into CSV.
    straight = tmp_path / "straight.csv"
    recognize_file(models.recognizer(biased), path, straight, "csv", field)
    assert table.read_bytes() == straight.read_bytes()

    assert summary == f"`{name}` with `biased` ({AUTO}): 4 records, 5 entities."
    assert per_type.values.tolist() == [["ORG", 5]]
    assert frequent.values.tolist()[0] == ["Anna Weber visited Berlin.", "ORG", 2]
    assert sorted(row[2] for row in frequent.values.tolist()) == [1, 1, 1, 2]
    assert str(tmp_path / "gradio") not in summary


def test_preview_highlights_the_first_records_one_per_line(biased, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "PREVIEW_RECORDS", 3)
    path = upload(tmp_path, "notes.txt", "\n".join(TEXTS) + "\n")
    *_, preview, _ = files.recognize_upload(path, biased, "text", 0.0, progress=Recorded())

    assert isinstance(preview, gr.HighlightedText)
    tokens = [(t["token"], t["class_or_confidence"]) for t in preview.value]
    assert "".join(token for token, _ in tokens) == "\n".join(TEXTS[:3])
    assert [t for t in tokens if t[1] is not None] == [
        (s, "ORG") for sentences in SENTENCES[:3] for s in sentences]
    assert preview.color_map["ORG"] == "#3b82f6"


def test_progress_follows_the_records(biased, tmp_path):
    path = upload(tmp_path, "notes.txt", "\n".join(TEXTS * 3) + "\n")
    progress = Recorded()
    files.recognize_upload(path, biased, "text", 0.0, progress=progress)
    assert progress.calls == [(((0, 12),), {"unit": "records"}), (((12, 12),), {"unit": "records"})]


def test_minimum_score_leaves_out_entities_below_it(untrained, tmp_path):
    path = upload(tmp_path, "notes.txt", "\n".join(TEXTS) + "\n")

    def entities(threshold):
        *_, downloads = files.recognize_upload(path, untrained, "text", threshold,
                                               progress=Recorded())
        lines = Path(downloads[0]).read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["entities"] for line in lines]

    everything = entities(0.0)
    scores = sorted(e["score"] for found in everything for e in found)
    # Midway across the widest gap between scores: scores are rounded, thresholds are not.
    low, high = max(zip(scores, scores[1:]), key=lambda pair: pair[1] - pair[0])
    threshold = (low + high) / 2
    kept = [[e for e in found if e["score"] >= threshold] for found in everything]
    assert 0 < sum(map(len, kept)) < len(scores)
    assert entities(threshold) == kept


def test_records_too_long_are_skipped_and_reported_by_line(biased, tmp_path, monkeypatch):
    monkeypatch.setattr(models.recognizer(biased), "max_text_chars", 30)
    long = "Anna Weber visited Berlin and then Lima."  # 40 characters
    lines = ["Li Wei met Globex.", long, "Then Nordbank left.", long, "Anna Weber left."]
    path = upload(tmp_path, "notes.txt", "\n".join(lines) + "\n")
    progress = Recorded()
    summary, per_type, _, _, downloads = files.recognize_upload(
        path, biased, "text", 0.0, progress=progress)

    assert summary == (f"`notes.txt` with `biased` ({AUTO}): 3 records, 3 entities. Skipped 2 records longer "
                       "than the model reads (30 characters), on lines 2, 4.")
    assert [args for args, _ in progress.calls] == [((0, 3),), ((3, 3),)]  # the records read
    objects = [json.loads(line) for line in Path(downloads[0]).read_text().splitlines()]
    assert [o["line"] for o in objects] == [1, 3, 5]
    with open(downloads[1], newline="", encoding="utf-8") as f:
        assert [int(r["line"]) for r in csv.DictReader(f)] == [1, 3, 5]


BAD = [
    ("notes.txt", b"fine\nbad \xff byte\n", "text",
     "notes.txt:2: expected UTF-8 text, found the byte 0xff (byte 5 of the line)"),
    ("notes.txt", "fine\n".encode("utf-16"), "text",
     "notes.txt:1: expected UTF-8 text, found UTF-16"),
    ("notes.jsonl", '{"text": "fine"}\nnot json\n', "text",
     "notes.jsonl:2: expected a JSON object, found invalid JSON (Expecting value at column 1)"),
    ("notes.jsonl", '{"text": "fine"}\n{"body": "no text field"}\n', "text",
     "notes.jsonl:2: expected a field 'text', found the field 'body'"),
    ("notes.jsonl", '{"text": "fine"}\n', "body", "notes.jsonl:1: expected a field 'body', found "
                                                  "the field 'text'"),
    ("notes.csv", "id,body\n1,fine\n", "text",
     "notes.csv:1: expected a column 'text', found the columns 'id', 'body'"),
    ("notes.tsv", "id\ttext\n1\tfine\textra\n", "text",
     "notes.tsv:2: expected 2 fields as in the header, found 3"),
    ("notes.docx", "fine\n", "text",
     "notes.docx: expected a file ending in .txt, .jsonl, .csv or .tsv, found '.docx'"),
    ("notes.txt", "", "text", "notes.txt: expected at least one text, found none"),
    ("notes.csv", "id,text\n", "text", "notes.csv: expected at least one text, found none"),
]


@pytest.mark.parametrize("name, content, field, message", BAD)
def test_bad_input_is_refused_by_name_and_line_with_nothing_written(biased, tmp_path, written,
                                                                    name, content, field, message):
    path = upload(tmp_path, name, content)
    with pytest.raises(gr.Error, match=re.escape(message)) as refused:
        files.recognize_upload(path, biased, field, 0.0, progress=Recorded())
    assert str(tmp_path) not in refused.value.message
    assert list(written.iterdir()) == []


def test_a_file_over_the_upload_limit_is_refused_before_reading(biased, tmp_path, written):
    path = upload(tmp_path, "big.txt", b"")
    with open(path, "r+b") as f:
        f.truncate(UPLOAD_LIMIT_BYTES + 2**20)  # sparse: costs no disk
    with pytest.raises(gr.Error, match=re.escape("big.txt: expected at most 20 MB, found 21.0 MB")):
        files.recognize_upload(path, biased, "text", 0.0, progress=Recorded())
    assert list(written.iterdir()) == []


def test_too_many_records_are_refused_naming_the_limit(biased, tmp_path, written, monkeypatch):
    monkeypatch.setattr(files, "MAX_RECORDS", 3)
    path = upload(tmp_path, "notes.txt", "\n".join(TEXTS) + "\n")
    with pytest.raises(gr.Error, match=re.escape("notes.txt: expected at most 3 records, found 4; "
                                                 "split the file")):
        files.recognize_upload(path, biased, "text", 0.0, progress=Recorded())
    assert list(written.iterdir()) == []


def test_the_record_limit_is_a_hundred_thousand():
    assert files.MAX_RECORDS == 100_000


@pytest.mark.parametrize("file, model, message", [
    (None, "biased", "upload a .txt, .jsonl, .csv or .tsv file first"),
    ("notes.txt", "nope", "expected one of the listed models, found 'nope'"),
    ("notes.txt", None, "choose a model first"),
])
def test_missing_file_or_unknown_model_is_refused(biased, tmp_path, written, file, model, message):
    path = upload(tmp_path, file, "fine\n") if file else None
    with pytest.raises(gr.Error, match=re.escape(message)):
        files.recognize_upload(path, model, "text", 0.0, progress=Recorded())
    assert list(written.iterdir()) == []


@pytest.mark.parametrize("name, content, choices, value, interactive", [
    ("notes.csv", "id,body,text\n1,a,b\n", ["id", "body", "text"], "text", True),
    ("notes.tsv", "id\tbody\n1\ta\n", ["id", "body"], "id", True),
    ("notes.jsonl", '\n{"id": 1, "body": "a", "tags": ["x"], "title": "t"}\n', ["body", "title"],
     "body", True),
    ("notes.jsonl", "not json\n", ["text"], "text", True),
    ("notes.txt", "a line\n", ["text"], "text", False),
])
def test_the_field_picker_offers_what_the_file_holds(tmp_path, name, content, choices, value,
                                                     interactive):
    update = files.choose_field(upload(tmp_path, name, content))
    assert [c[0] for c in update.choices] == choices
    assert (update.value, update.interactive) == (value, interactive)


@pytest.mark.parametrize("name, content, message", [
    ("notes.csv", "id,id\n1,2\n", "notes.csv:1: expected distinct column names in the header, "
                                  "found 'id' more than once"),
    ("notes.csv", b"id,\xff\n", "notes.csv:1: expected UTF-8 text, found the byte 0xff"),
    ("notes.pdf", "x", "notes.pdf: expected a file ending in .txt, .jsonl, .csv or .tsv"),
])
def test_the_field_picker_refuses_a_bad_file_by_name(tmp_path, name, content, message):
    with pytest.raises(gr.Error, match=re.escape(message)) as refused:
        files.choose_field(upload(tmp_path, name, content))
    assert str(tmp_path) not in refused.value.message
