"""The app's handlers in every labelled format, on tiny models and without a server: a Fine-tune
upload and the report beside it (and the run's card that states it), the Annotate tab's import of
a labelled file, its exports in every format and its push to the Hub, and the Files tab's Label
Studio and doccano outputs.

Uploads lie where Gradio keeps them (a hashed folder): every message must name only the file.
"""

from __future__ import annotations

import json
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest

from conftest import make_sentences
from ner_core import annotations, formats, hub, runs, tenancy
from ner_core.formats import Example, Report, Span
from ner_core.jobs import FineTuneJobs
from studio import annotate, annotate_datasets, annotate_queue, files, labelled
from studio import finetune as ft
from studio.data import TrainingData
from visitors import signed_in

from ner_core.hardware import pick_precision

AUTO = pick_precision("auto", "cpu")[1]  # what the loaded models compute in here

HOST_SETTINGS = ("SPACE_ID", "SPACE_AUTHOR_NAME", "NER_PUBLIC", "GRADIO_SHARE",
                 "GRADIO_SERVER_NAME", "NER_ADMINS", "NER_FINETUNE_ACCESS",
                 *tenancy.PUBLIC_DEFAULTS)
# Two texts and their entities, written by each format's own writer for the uploads below.
TEXTS = [("Anna Weber met Omar in Berlin.", [(0, 10, "PER"), (15, 19, "PER"), (23, 29, "LOC")]),
         ("Nordbank left Oslo.", [(0, 8, "ORG"), (14, 18, "LOC")])]
WANTED = [("Anna Weber", "PER"), ("Omar", "PER"), ("Berlin", "LOC"), ("Nordbank", "ORG"),
          ("Oslo", "LOC")]
NEEDS_SPACY = {"spacy", "spacy-json"}
# A doccano file whose second span cuts a word: 'Berl' of 'Berlin'.
DOCCANO = ('{"text": "Anna lives here.", "label": [[0, 4, "PER"]]}\n'
           '{"text": "Omar left Berlin.", "label": [[0, 4, "PER"], [10, 14, "LOC"]]}\n')
DOCCANO_REPORT = (
    "`train.jsonl`: 2 sentences, doccano JSONL, types LOC, PER\n\n"
    "train.jsonl (doccano): 2 records, 2 examples, 3 of 3 entities kept, 1 widened\n"
    "- **1 widened**: a span that cut a word, widened to the whole word\n"
    "    - train.jsonl:2: LOC 'Berl' widened to 'Berlin'")


@pytest.fixture(autouse=True)
def host(tmp_path, monkeypatch) -> Path:
    """A server on its own machine, its datasets and temporary files under ``tmp_path``."""
    for name in HOST_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NER_DATA_HOME", str(tmp_path / "datasets"))
    monkeypatch.setenv("NER_TEMP_DIR", str(tmp_path / "temporary"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def upload(tmp_path: Path, name: str, content: str | bytes = b"") -> str:
    """A file as Gradio hands it over: the visitor's name, in a server folder of its own."""
    path = tmp_path / "gradio" / "5f1c0a9e7b" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def written(tmp_path: Path, format: str, stem: str = "train") -> str:
    """``TEXTS`` uploaded as a file its format's writer made (BRAT as a .zip)."""
    if format in NEEDS_SPACY:
        pytest.importorskip("spacy")
    examples = [Example(text, [Span(*span) for span in spans], record=i, source="fixture")
                for i, (text, spans) in enumerate(TEXTS)]
    path = Path(upload(tmp_path, f"{stem}{labelled.download_ending(format)}"))
    path.unlink()
    formats.write(formats.align(examples, Report("fixture", "studio")), path, format)
    return str(path)


def held(path: str | Path, format: str | None = None, **options) -> list[tuple[str, str]]:
    """(text, type) of every entity a file holds, read back by the registry."""
    converted = formats.read(path, format, need_entities=False, **options)
    return [(e.text[s.start:s.end], s.label) for e in converted.examples for s in e.spans]


@contextmanager
def refused(message: str, start: bool = False):
    """A handler's ``gr.Error`` saying ``message`` (or starting with it), naming no server
    folder."""
    with pytest.raises(gr.Error) as error:
        yield
    said = error.value.message
    assert (said.startswith(message) if start else said == message), said
    assert "5f1c0a9e7b" not in said


# Fine-tune: uploads in every format, and their report -------------------------------------------

@pytest.mark.parametrize("format", labelled.readable_formats())
def test_an_upload_in_any_format_is_read_and_described(tmp_path, format):
    path = written(tmp_path, format)
    name = Path(path).name
    read_as = "IOB2" if format == "conll" else formats.format_module(format).TITLE
    first, _, report = ft.describe_upload(path).partition("\n\n")
    assert first == f"`{name}`: 2 sentences, {read_as}, types LOC, ORG, PER"
    assert report.startswith(f"{labelled.escaped(name)} ({format}") \
        and report.endswith(" records, 2 examples, 5 of 5 entities kept, nothing changed")
    assert [s.tags for s in labelled.read_upload(path).sentences] == [
        ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "B-LOC", "O"]]


def test_a_word_cutting_span_is_widened_and_the_report_says_where(tmp_path):
    path = upload(tmp_path, "train.jsonl", DOCCANO)
    assert ft.describe_upload(path) == DOCCANO_REPORT
    loaded = TrainingData("upload", path, None).load()
    report = loaded.options["data_report"]
    assert (loaded.options["data_source"], report.counts["widened"]) == ("train.jsonl", 1)
    assert loaded.splits["train"].num_rows == 2


def test_the_run_trained_on_an_upload_states_its_report_in_its_card(biased, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(ft, "JOBS", FineTuneJobs())  # the server's one job slot stays idle
    path = upload(tmp_path, "train.jsonl", DOCCANO)
    command = next(ft.start_fine_tune("from-doccano", biased, "", "upload", path, None,
                                      learning_rate=1e-3, train_batch_size=2.0, epochs=1.0,
                                      max_length=64.0))
    assert "--data train.jsonl" in command
    assert ft.JOBS.wait(300).state == "finished", ft.JOBS.snapshot().error
    card = (runs.run_path("from-doccano") / "README.md").read_text(encoding="utf-8")
    assert "`train.jsonl` (doccano JSONL): 2 records read, 2 examples kept, 3 of 3 entities kept." \
        in card
    assert "| widened | 1 | a span that cut a word, widened to the whole word |" in card


def test_a_validation_upload_in_another_format_is_converted_in_the_command(tmp_path):
    train = upload(tmp_path, "train.jsonl", DOCCANO)
    validation = written(tmp_path, "label-studio", "valid")
    data = TrainingData("upload", train, validation)
    assert data.load().splits["validation"].num_rows == 2
    from studio import training as tr

    plan = tr.plan_from_form("minilm", "", None, {"epochs": 1.0})
    assert tr.reproduce_command(plan, "r", data).splitlines()[:2] == [
        "python -m ner_core convert train.jsonl data/train.txt --to conll",
        "python -m ner_core convert valid.json data/valid.txt --to conll"]


BAD_UPLOADS = {
    "invalid JSON on a line": ("train.jsonl", DOCCANO.splitlines()[0] + '\n{"text": "Omar\n',
                               "train.jsonl:2: expected a JSON object, found invalid JSON ("),
    "a span without its end": ("train.jsonl", '{"text": "Anna left.", "label": [[0, "PER"]]}\n',
                               "train.jsonl:1: expected each of 'label' as [start, end, \"TYPE\"] "
                               "with whole-number offsets, found [0, 'PER']"),
    "no entities": ("train.jsonl", '{"text": "Anna left.", "label": []}\n',
                    "train.jsonl: expected entities to learn from or score against, found 0 in "
                    "1 records"),
    "JSON of no format": ("train.json", '{"rows": []}',
                          "train.json: expected Hugging Face dataset or Label Studio JSON or spaCy "
                          "JSON training format, found content that is none of them; choose its "
                          "format"),
    "an empty file": ("train.txt", "", "train.txt: expected labelled data, found an empty file"),
    "CoNLL with a bad tag": ("train.conll", "Anna B-PER\nleft 0\n",
                             "train.conll:2: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found '0' "
                             "(the digit zero"),
}


@pytest.mark.parametrize("name, content, message", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_a_bad_upload_is_refused_with_its_name_line_and_what_was_expected(tmp_path, name,
                                                                          content, message):
    path = upload(tmp_path, name, content)
    with refused(message, start=True):
        ft.describe_upload(path)
    with refused(message, start=True):
        next(ft.start_fine_tune("never", "minilm", "", "upload", path, None))
    assert ft.JOBS.snapshot().state != "running" and runs.run_path("never") is None


# Annotate: a labelled file imported as the queue ---------------------------------------------------

def label_studio_tasks() -> list[dict]:
    """An annotated task (its LOC cuts 'Berlin'), one with only a model's predictions, one with
    neither."""
    def region(start, end, text, label):
        return {"from_name": "label", "to_name": "text", "type": "labels",
                "value": {"start": start, "end": end, "text": text, "labels": [label]}}
    return [
        {"id": 7, "data": {"text": "Anna Weber flew to Berlin."},
         "annotations": [{"id": 1, "was_cancelled": False,
                          "result": [region(0, 10, "Anna Weber", "PER"),
                                     region(19, 23, "Berl", "LOC")]}]},
        {"id": 8, "data": {"text": "Nordbank left Oslo."},
         "predictions": [{"model_version": "v1", "result": [region(0, 8, "Nordbank", "ORG")]}]},
        {"id": 9, "data": {"text": "Nothing here."}},
    ]


def test_a_label_studio_export_is_queued_in_file_order_with_its_own_entities(tmp_path):
    path = upload(tmp_path, "tasks.json", json.dumps(label_studio_tasks(), indent=2))
    # No model is run: a name that is no model's is never looked at.
    current, queue, text, shown, table, notes, queue_note, report = annotate.queue_file(
        path, "text", "no-such-model", None)
    assert text == "Anna Weber flew to Berlin."
    assert table.values.tolist() == [["PER", "Anna Weber", 0, 10], ["LOC", "Berlin", 19, 25]]
    assert notes == "Imported 3 texts of `tasks.json` with their entities."
    # Where each task starts in the (indented) file: lines 2, 42 and 68.
    assert queue_note == ("tasks.json:2, with the file's entities; 2 more in the queue. "
                          + annotate.IMPORT_ORDER)
    assert "1 widened" in report and "tasks.json:2: LOC 'Berl' widened to 'Berlin'" in report

    current, queue, text, _, table, _, queue_note = annotate.skip_current(queue)
    assert (text, table.values.tolist()) == ("Nordbank left Oslo.", [["ORG", "Nordbank", 0, 8]])
    assert queue_note.startswith("tasks.json:42, with the file's entities; 1 more")
    last, current, queue, text, *_ = annotate.accept_current("imported", text, current, queue)
    [accepted] = annotations.examples("imported")
    assert (accepted["text"], accepted["model"]) == ("Nordbank left Oslo.", None)
    assert [(e["text"], e["label"]) for e in accepted["entities"]] == [("Nordbank", "ORG")]
    assert (text, current["entities"]) == ("Nothing here.", [])


@pytest.mark.parametrize("format", ["doccano", "prodigy", "studio", "spacy", "brat", "conll"])
def test_every_labelled_format_imports_with_its_entities(tmp_path, biased, format):
    path = written(tmp_path, format, "tasks")
    current, *_, notes, queue_note, report = annotate.queue_file(path, "text", biased, None)
    assert [(e["text"], e["label"]) for e in current["entities"]] == WANTED[:3]
    assert notes == f"Imported 2 texts of `{Path(path).name}` with their entities."
    assert report.split("\n\n")[1].endswith("5 of 5 entities kept, nothing changed")


def test_a_file_of_plain_texts_still_goes_to_the_model(tmp_path, biased):
    path = upload(tmp_path, "texts.jsonl", '{"text": "Anna left."}\n')
    current, *_, notes, _, report = annotate.queue_file(path, "text", biased, None)
    assert [(e["text"], e["label"]) for e in current["entities"]] == [("Anna left.", "ORG")]
    assert (notes, report, current["model"]) == ("Queued 1 texts of `texts.jsonl`.", "", biased)
    # A labelled file read as plain texts when the visitor says so: the model suggests.
    labelled_file = written(tmp_path, "studio", "corrected")
    current, *_ = annotate.queue_file(labelled_file, "text", biased, None, annotate_queue.TEXTS)
    assert {e["label"] for e in current["entities"]} == {"ORG"}


def test_a_format_chosen_wrong_says_which_format_the_file_looks_like(tmp_path, biased):
    path = upload(tmp_path, "tasks.jsonl", DOCCANO)
    with refused("tasks.jsonl:2: expected the end of the JSON, found '{\"text\": \"Omar left '; "
                 "the file looks like doccano JSONL, not Label Studio JSON: choose the format "
                 "doccano"):
        annotate.queue_file(path, "text", biased, None, "label-studio")
    with refused("tasks.jsonl:1: expected a JSON object, found invalid JSON (", start=True):
        annotate.queue_file(upload(tmp_path, "tasks.jsonl", "{nope\n"), "text", biased, None,
                            "doccano")


def test_the_field_picker_is_fixed_for_a_labelled_file(tmp_path):
    picker = annotate.text_fields(written(tmp_path, "label-studio", "tasks"))
    assert (picker.choices, picker.interactive) == ([("text", "text")], False)
    assert annotate.text_fields(upload(tmp_path, "t.csv", "id,body\n1,Anna\n")).choices \
        == [("id", "id"), ("body", "body")]


def test_spans_that_meet_on_one_studio_word_keep_the_first():
    # A file's own tokens may be finer than the studio's words: 'Anna-Maria' is one word here.
    entities, dropped = annotate_queue.on_studio_words(
        "Anna-Maria left.", [Span(0, 4, "PER"), Span(5, 10, "PER")])
    assert (entities, dropped) == ([{"start": 0, "end": 10, "label": "PER",
                                     "text": "Anna-Maria"}], 1)


# Annotate: exports in every format, and the push ------------------------------------------------

def accepted(name: str = "fixes", owner: str | None = None) -> None:
    for text, spans in TEXTS:
        annotations.append(name, text, [{"start": a, "end": b, "label": kind}
                                        for a, b, kind in spans], "tiny", owner=owner)


@pytest.mark.parametrize("format", formats.FORMATS)
def test_a_dataset_exports_in_every_format_and_reads_back(format):
    if format in NEEDS_SPACY:
        pytest.importorskip("spacy")
    accepted()
    path = Path(annotate_datasets.export_as("fixes", format))
    assert path.name == f"fixes-{format}{labelled.download_ending(format)}"
    assert path.parent.parent == tenancy.temp_root() / "local" / annotate.EXPORTS
    options = {"unannotated": "keep"} if format == "label-studio-predictions" else {}
    assert held(path, **options) == WANTED
    assert annotate_datasets.export_as("fixes", format) == str(path)  # same content, same file


def test_an_export_in_no_format_is_refused():
    accepted()
    with refused(f"expected a format among {', '.join(formats.FORMATS)}, found 'xml'"):
        annotate_datasets.export_as("fixes", "xml")


@pytest.fixture
def pushes(monkeypatch) -> list:
    """What ``hub.push_dataset`` was asked to push; it answers the repository's URL."""
    calls = []

    def push(name, repo_id, *, owner, token=None, private=True):
        calls.append((name, repo_id, owner, token, private))
        return f"https://huggingface.co/datasets/{repo_id}"

    monkeypatch.setattr(hub, "push_dataset", push)
    return calls


def test_a_dataset_is_pushed_with_hf_token_to_the_repository_typed(pushes):
    accepted()
    assert annotate_datasets.push_dataset("fixes", " me/fixes ", True) == (
        "Pushed `fixes` to [me/fixes](https://huggingface.co/datasets/me/fixes) (private).")
    assert pushes == [("fixes", "me/fixes", None, None, True)]
    with refused("expected a Hub repository as owner/name, found 'fixes'"):
        annotate_datasets.push_dataset("fixes", "fixes", True)
    with refused("expected a dataset name of letters, digits, '-', '_' and '.', found '../x'"):
        annotate_datasets.push_dataset("../x", "me/x", True)
    assert len(pushes) == 1


def test_on_a_space_a_dataset_goes_to_the_signed_in_account(pushes, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "owner/space")
    with refused("sign in with Hugging Face (the button at the top of the page) to push a "
                 "dataset to your account"):
        annotate_datasets.push_dataset("fixes", "me/fixes", True, None, None,
                                       signed_in("alice")["request"])
    accepted(owner="alice")
    alice = signed_in("alice")
    said = annotate_datasets.push_dataset("fixes", "someone/shared", False, alice["profile"],
                                          gr.OAuthToken(token="hf_alice", scope="openid write-repos", expires_at=0), alice["request"])
    assert said == ("Pushed `fixes` to [alice/shared](https://huggingface.co/datasets/alice/"
                    "shared) (public).")
    assert pushes == [("fixes", "alice/shared", "alice", "hf_alice", False)]


# Files: Label Studio predictions and doccano JSONL beside JSONL and CSV ------------------------

def test_a_file_job_also_gives_label_studio_predictions_and_doccano(tmp_path, biased):
    lines = [" ".join(w for w, _ in s) for s in make_sentences(3, seed=2)]
    path = upload(tmp_path, "notes.txt", "\n".join(lines) + "\n")
    summary, *_, downloads = files.recognize_upload(path, biased, "text", 0.0,
                                                    progress=lambda *a, **k: None)
    assert summary == f"`notes.txt` with `biased` ({AUTO}): 3 records, 3 entities."
    assert [Path(d).name for d in downloads] == [
        "notes.entities.jsonl", "notes.entities.csv", "notes.label-studio.json",
        "notes.doccano.jsonl"]
    [task, *_] = json.loads(Path(downloads[2]).read_text(encoding="utf-8"))
    [prediction] = task["predictions"]
    assert "annotations" not in task and task["data"]["text"] == lines[0]
    assert [(r["value"]["text"], r["value"]["labels"], r["score"]) for r in prediction["result"]] \
        == [(lines[0], ["ORG"], pytest.approx(1.0))]
    assert held(downloads[2], "label-studio", unannotated="keep") == [(t, "ORG") for t in lines]
    assert held(downloads[3]) == [(t, "ORG") for t in lines]
    assert formats.detect(downloads[3]) == "doccano"


def test_a_file_job_names_its_new_downloads_on_the_page():
    import app

    demo = app.build_demo()
    names = {d.api_name for d in demo.fns.values()}
    assert {"export_as", "push_dataset", "export_dataset", "export_jsonl"} <= names
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert by_id["files-downloads"].label == ("Download (JSONL, CSV, Label Studio predictions, "
                                              "doccano JSONL)")
    assert by_id["train-file"].label == ("Training file (CoNLL, Label Studio, doccano, Prodigy, "
                                         "spaCy, BRAT .zip, ...)")
    assert {".zip", ".spacy", ".json", ".conll", ".txt"} <= set(by_id["annotate-file"].file_types)
    assert by_id["export-format"].value == "conll" and by_id["push-dataset-private"].value is True
    assert re.search(r"labelled", by_id["annotate-file"].label)
