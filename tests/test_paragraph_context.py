"""A model trained with document context reads a paragraph as its document on every tab that
recognizes text: Highlight, Files and Annotate (a pasted text and a queued file). Each window a
sentence is read in holds the paragraph's other sentences as context, and never another
paragraph's; a model trained without it reads each sentence alone."""

from __future__ import annotations

import json

import pytest

from live_app import make_run
from ner_core import Recognizer, TrainConfig
from studio import annotate, files
from studio import highlight as hl

# Two paragraphs: two sentences, then one. Every word is in the tiny models' vocabulary.
TEXT = "Anna Weber visited Berlin. Omar Haddad left Oslo.\n\nLi Wei met Globex."


@pytest.fixture
def context_run(runs_dir, biased_model) -> str:
    """The biased model saved as a run trained with document context."""
    run = make_run(runs_dir, "context", biased_model)
    config = TrainConfig.load(run / "train_config.json")
    config.document_context, config.context_tokens = True, 16
    (run / "train_config.json").write_text(config.to_json())
    return "context"


@pytest.fixture
def windows_read(monkeypatch) -> list[set[str]]:
    """The words of every window the recognizer reads, as it reads them."""
    read: list[set[str]] = []
    predict = Recognizer._probabilities

    def reading(self, windows):
        for window in windows:
            read.append(set(self.tokenizer.convert_ids_to_tokens(window.input_ids)))
        return predict(self, windows)

    monkeypatch.setattr(Recognizer, "_probabilities", reading)
    return read


def highlight(model: str, tmp_path) -> None:
    hl.highlight(TEXT, model, "", 0.0)


def files_tab(model: str, tmp_path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text(json.dumps({"text": TEXT}) + "\n")
    files.recognize_upload(str(path), model, "text", 0.0)


def annotate_pasted(model: str, tmp_path) -> None:
    annotate.suggest_text(TEXT, model)


def annotate_queued(model: str, tmp_path) -> None:
    path = tmp_path / "queue.jsonl"
    path.write_text(json.dumps({"text": TEXT}) + "\n")
    annotate.queue_file(str(path), "text", model)


TABS = [highlight, files_tab, annotate_pasted, annotate_queued]


def read_together(read: list[set[str]], *words: str) -> bool:
    return any(set(words) <= window for window in read)


@pytest.mark.parametrize("tab", TABS, ids=lambda tab: tab.__name__)
def test_a_paragraph_is_the_document_a_context_model_reads(tab, context_run, windows_read,
                                                           tmp_path):
    tab(context_run, tmp_path)
    # Three sentences, three windows; the first two read each other, the third reads neither.
    assert len(windows_read) == 3
    assert read_together(windows_read, "berlin", "omar") and read_together(windows_read, "anna",
                                                                            "oslo")
    assert not any(read_together(windows_read, word, "globex")
                   for word in ("anna", "berlin", "omar", "oslo"))


@pytest.mark.parametrize("tab", TABS, ids=lambda tab: tab.__name__)
def test_a_model_without_document_context_reads_each_sentence_alone(tab, biased, windows_read,
                                                                    tmp_path):
    tab(biased, tmp_path)
    assert len(windows_read) == 3
    assert not read_together(windows_read, "berlin", "omar")
