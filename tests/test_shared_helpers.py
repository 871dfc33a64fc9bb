"""What the tabs share, each once: the Hub probe's answer over time, the model an omitted choice
means, the loaded recognizers, the text-field picker, uploads, download folders, settings and the
checks of text and files."""

from __future__ import annotations

import inspect
import re
import shutil
import tempfile
from pathlib import Path

import gradio as gr
import pytest

from ner_core import hub, runs
from ner_core import models as core_models
from ner_core.batch import BatchSummary, describe, skipped_text
from ner_core.records import text_fields
from ner_core.utf8 import check_text, decode, without_bom
from studio import access, annotate, downloads, files, highlight, models, uploads

TEXT = "anna weber spoke. She visited berlin."


# The Hub probe ------------------------------------------------------------------------------------

@pytest.fixture
def probes(monkeypatch):
    """Online as far as the environment says; ``answers`` are what the probes find, in turn."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    answers, asked = [], []

    def probe() -> bool:
        asked.append(True)
        return answers.pop(0)

    monkeypatch.setattr(hub, "_probe", probe)
    hub.hub_reachable.cache_clear()
    yield answers, asked
    hub.hub_reachable.cache_clear()


def test_an_unreachable_hub_is_believed_only_for_a_while(probes, monkeypatch):
    answers, asked = probes
    answers += [False, True, False]
    assert hub.hub_reachable() is False
    assert hub.hub_reachable() is False and len(asked) == 1  # within RETRY_SECONDS: not asked again
    monkeypatch.setattr(hub, "RETRY_SECONDS", 0.0)
    assert hub.hub_reachable() is True and len(asked) == 2  # past it: probed again, now online
    assert hub.hub_reachable() is True and len(asked) == 2  # a yes is kept


def test_hf_hub_offline_says_no_even_after_a_yes(probes, monkeypatch):
    answers, asked = probes
    answers.append(True)
    assert hub.hub_reachable() is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_reachable() is False and len(asked) == 1


def test_cache_clear_forgets_the_answer(probes):
    answers, asked = probes
    answers += [True, False]
    assert hub.hub_reachable() is True
    hub.hub_reachable.cache_clear()
    assert hub.hub_reachable() is False and len(asked) == 2


# Which model -------------------------------------------------------------------------------------

@pytest.fixture
def bundled(biased, tmp_path, monkeypatch) -> Path:
    """The ``biased`` run bundled as ``default``."""
    directory = tmp_path / "assets" / "model"
    shutil.copytree(runs.run_path("biased"), directory)
    monkeypatch.setattr(core_models, "BUNDLED_DIR", directory)
    return directory


def test_suggest_without_a_model_uses_the_bundled_default(bundled):
    assert inspect.signature(annotate.suggest).parameters["model"].default is None  # optional
    found = annotate.suggest(TEXT)
    assert [e["text"] for e in found] == ["anna weber spoke.", "She visited berlin."]
    assert annotate.suggest(TEXT, None) == found == annotate.suggest(TEXT, "default")
    assert annotate.suggest_text(TEXT, None)[0]["model"] == "default"


def test_no_model_chosen_is_refused_with_what_there_is(biased, tmp_path, monkeypatch):
    monkeypatch.setattr(core_models, "BUNDLED_DIR", tmp_path / "none")
    with pytest.raises(gr.Error) as refused:
        annotate.suggest(TEXT)  # runs only: no default to fall back on
    assert refused.value.message == "choose a model first (one of biased)"
    shutil.rmtree(runs.run_path("biased"))
    with pytest.raises(gr.Error) as refused:
        annotate.suggest(TEXT)
    assert refused.value.message == "no model is bundled or trained yet: run a fine-tune first"


def test_the_page_still_asks_for_a_model_it_was_not_given(bundled):
    with pytest.raises(gr.Error, match=r"choose a model first \(one of default, biased\)"):
        highlight.highlight(TEXT, None, "", 0.0)


def test_loaded_recognizers_are_shared_and_bounded(biased):
    loaded = models.LoadedModels(size=1)
    first = loaded.get(biased)
    assert loaded.get(biased) is first
    loaded.get(biased, int8=True)  # the only slot: the float32 one is dropped
    assert loaded.get(biased) is not first


# Uploads and the text-field picker --------------------------------------------------------------

def upload(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / "gradio" / "0123abcd" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


@pytest.mark.parametrize("name, content, fields", [
    ("notes.jsonl", '{"id": 1, "body": "a", "title": "t", "tags": ["x"]}\n', ["body", "title"]),
    ("notes.jsonl", '\n\n{"text": "a"}\n', ["text"]),
    ("notes.jsonl", '{"id": 1}\n', ["text"]),  # no string field: reading it says why
    ("notes.csv", "id,body\n1,a\n", ["id", "body"]),
    ("notes.tsv", "a\tb\n", ["a", "b"]),
    ("notes.txt", "a line\n", ["text"]),
])
def test_one_field_picker_lists_columns_and_jsonl_fields(tmp_path, name, content, fields):
    path = upload(tmp_path, name, content)
    assert text_fields(path) == fields
    for tab in (files.choose_field, annotate.text_fields):  # both tabs wire the same picker
        assert [c[0] for c in tab(path).choices] == fields
    assert uploads.choose_field(path).interactive is (not name.endswith(".txt"))


def test_an_upload_is_named_as_the_visitor_knows_it_and_bounded(tmp_path, monkeypatch):
    bad = upload(tmp_path, "texts.jsonl", b'{"text": "caf\xe9"}\n')
    with pytest.raises(gr.Error) as refused:
        uploads.choose_field(bad)
    assert refused.value.message.startswith("texts.jsonl:1: expected UTF-8 text, found the byte 0xe9")
    assert str(tmp_path) not in refused.value.message
    monkeypatch.setattr(uploads, "UPLOAD_LIMIT_BYTES", 4)
    with pytest.raises(ValueError, match=r"^texts.jsonl: expected at most 0 MB, found 0.0 MB$"):
        annotate.read_texts(bad, "text")


# Download folders ---------------------------------------------------------------------------------

def test_download_folders_follow_the_temporary_directory_and_the_content(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "now"))
    monkeypatch.delenv("NER_TEMP_DIR", raising=False)
    entity = {"start": 0, "end": 4, "label": "PER", "score": 0.9, "text": "Anna"}
    first = highlight.downloads([entity])
    mine = tmp_path / "now" / "ner-studio" / "local" / highlight.DOWNLOADS  # the one root, per owner
    assert all(Path(p).is_relative_to(mine) for p in first)
    assert highlight.downloads([entity]) == first  # the same content, the same files
    assert highlight.downloads([]) != first
    folder = downloads.saved_by_content("kind", lambda f: (f / "a.txt").write_text("a"))
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no staging left


# Settings, text and files -------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [("", 300), ("  ", 300), ("12", 12), (" 7 ", 7)])
def test_int_setting_reads_a_whole_number_or_the_default(monkeypatch, raw, expected):
    monkeypatch.setenv("NER_SOME_SECONDS", raw)
    assert access.int_setting("NER_SOME_SECONDS", 300) == expected


@pytest.mark.parametrize("raw, message", [
    ("1_000", "must be a whole number, found '1_000'"),
    ("\u0663", "must be a whole number, found '\u0663'"),  # a digit of another script
    ("0", "must be at least 1, found 0"),
])
def test_int_setting_refuses_anything_else(monkeypatch, raw, message):
    monkeypatch.setenv("NER_SOME_SECONDS", raw)
    with pytest.raises(ValueError, match=re.escape(f"the setting NER_SOME_SECONDS {message}")):
        access.int_setting("NER_SOME_SECONDS", 300)


def test_text_checks_say_where(tmp_path):
    with pytest.raises(ValueError, match=r"^--text: expected UTF-8 text, found the byte 0xff at "
                                         r"character 1,001$"):
        check_text("a" * 1000 + "\udcff", "--text", from_bytes=True)
    with pytest.raises(ValueError, match=r"^x.txt:3: .*found the byte 0xe9 \(byte 4 of the line\)"):
        decode(b"a\nb\ncaf\xe9\n", "x.txt")
    with pytest.raises(ValueError, match=r"^x.txt:2: expected UTF-8 text, found binary data"):
        decode(b"a\nb\x00\n", "x.txt")
    with pytest.raises(ValueError, match=r"^x.txt:1: expected UTF-8 text, found UTF-16"):
        without_bom("a".encode("utf-16"), "x.txt")


def test_the_skipped_lines_read_the_same_on_the_page_and_the_command_line():
    summary = BatchSummary("out.jsonl", "jsonl", records=1, skipped=12,
                           skipped_lines=list(range(1, 13)), max_chars=1000)
    said = "skipped 12 records longer than the model reads (1,000 characters), on lines " \
           "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ..."
    assert skipped_text(summary) == said
    assert describe(summary).endswith(f"; {said}")
    assert f" S{said[1:]}." in files.summary_text("in.txt", "m", summary, "float32, as asked")
