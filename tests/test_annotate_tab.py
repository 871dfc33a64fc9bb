"""The Annotate tab's handlers on a tiny model, without a server: suggest, correct in the
highlight's tokens, accept, skip, undo, queue a file least sure first, export, fine-tune; and its
named API against the session's ``app_server``.

The model is ``biased``: every word scored I-ORG first, so each sentence of a text is one ORG entity
scored 1.0, and the offsets of every entity are known.
"""

from __future__ import annotations

import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from ner_core import annotations, hub, preset, tenancy
from ner_core.data import read_conll
from studio import annotate, annotate_queue, models
from studio.training import FORM

TEXT = "anna weber spoke. She visited berlin."
HOST_SETTINGS = ("SPACE_ID", "SPACE_AUTHOR_NAME", "NER_PUBLIC", "GRADIO_SHARE",
                 "GRADIO_SERVER_NAME", "NER_ADMINS", "NER_FINETUNE_ACCESS",
                 *tenancy.PUBLIC_DEFAULTS)


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    """A server on its own machine, its datasets and temporary files under ``tmp_path``."""
    for name in HOST_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NER_DATA_HOME", str(tmp_path / "datasets"))
    monkeypatch.setenv("NER_TEMP_DIR", str(tmp_path / "temporary"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(hub, "cache_dir", lambda: tmp_path / "hub")
    return tmp_path / "datasets"


@contextmanager
def refused(message: str):
    """A handler's ``gr.Error`` saying exactly ``message``."""
    with pytest.raises(gr.Error, match=re.escape(message)) as error:
        yield
    assert error.value.message == message


def value(*pieces) -> list[dict]:
    """The highlight's value as the server receives it."""
    return [{"token": token, "class_or_confidence": kind} for token, kind in pieces]


def shown_tokens(update) -> list[tuple]:
    return [(t["token"], t["class_or_confidence"]) for t in update.value]


@pytest.mark.parametrize("text, entities", [
    ("Anna\nWeber left\n\nfor Oslo", [(0, 10, "PER"), (21, 25, "LOC")]),
    ("No entities\nhere", []),
    ("Oslo", [(0, 4, "LOC")]),
    ("Anna Weber", [(0, 4, "PER"), (4, 10, "PER")]),  # touching: kept apart
    ("Anna Weber\r\nleft\u2028now", [(12, 20, "MISC")]),  # a line breaks at '\n' only
])
def test_tokens_hold_one_line_each_and_read_back_to_the_entities(text, entities):
    given = [{"start": a, "end": b, "label": kind} for a, b, kind in entities]
    pieces = annotate.tokens(text, given)
    assert "".join(piece for piece, _ in pieces) == text
    assert all("\n" not in piece[:-1] for piece, _ in pieces)
    assert annotate.entities_of(pieces, text) == given


def test_a_file_of_more_texts_than_the_queue_holds_is_cut_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(annotate_queue, "MAX_QUEUE", 2)
    path = tmp_path / "texts.txt"
    path.write_text("one\ntwo\n")
    assert annotate_queue.read_texts(str(path), "text") == ([(1, "one"), (2, "two")], "")
    path.write_text("one\n\ntwo\nthree\n")
    assert annotate_queue.read_texts(str(path), "text") \
        == ([(1, "one"), (3, "two")], "the first 2 texts are queued")


def test_a_file_is_queued_up_to_a_number_of_characters_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(annotate_queue, "MAX_QUEUE_CHARS", 7)
    path = tmp_path / "texts.txt"
    path.write_text("one\ntwo\nthree\n")
    assert annotate_queue.read_texts(str(path), "text") == (
        [(1, "one"), (2, "two")],
        "the first 2 texts are queued: with the next one the queue would pass 7 characters")
    monkeypatch.setattr(annotate_queue, "MAX_QUEUE_CHARS", 2)  # the first text is always queued
    assert annotate_queue.read_texts(str(path), "text")[0] == [(1, "one")]


def test_tokens_of_another_text_read_as_none():
    assert annotate.entities_of([("Anna", "PER")], "Anna left") is None


def test_suggest_shows_the_models_entities(biased):
    current, queue, shown, table, notes, queue_note = annotate.suggest_text(TEXT, biased)
    assert current["entities"] == [
        {"start": 0, "end": 17, "label": "ORG", "text": "anna weber spoke."},
        {"start": 18, "end": 37, "label": "ORG", "text": "She visited berlin."}]
    assert current["model"] == "biased" and queue is None
    assert shown_tokens(shown) == [("anna weber spoke.", "ORG"), (" ", None),
                                   ("She visited berlin.", "ORG")]
    assert table.values.tolist() == [["ORG", "anna weber spoke.", 0, 17],
                                     ["ORG", "She visited berlin.", 18, 37]]
    assert notes == "2 entities suggested by `biased`."
    assert annotate.suggest(TEXT, biased)[0]["score"] == pytest.approx(1.0)


@pytest.mark.parametrize("text, model, message", [
    ("  ", "biased", "expected a text to suggest entities for, found an empty text"),
    (TEXT, "nope", "expected one of the listed models, found 'nope'"),
])
def test_suggest_refuses_with_a_message(biased, text, model, message):
    with refused(message):
        annotate.suggest_text(text, model)


def corrected(biased) -> dict:
    """TEXT corrected as a person does it in the page: the first span retyped PER, the second
    removed, then 'berli' selected and typed LOC (widened to 'berlin')."""
    current = annotate.suggest_text(TEXT, biased)[0]
    current, shown, _, _ = annotate.edited(current, value(
        ("anna weber spoke.", "PER"), (" ", None), ("She visited berlin.", None)))
    assert current["entities"][0]["label"] == "PER"
    assert shown == gr.skip() or shown_tokens(shown) == [
        ("anna weber spoke.", "PER"), (" She visited berlin.", None)]
    new_span = value(("anna weber spoke.", "PER"), (" She visited ", None),
                     ("berli", annotate.NEW_SPAN), ("n.", None))
    current, shown, table, notes = annotate.edited(current, new_span)
    assert current["pending"] and (shown, table) == (gr.skip(), gr.skip())
    assert notes == "Click the mark that reads 'label', type its type and press Enter."
    typed = value(("anna weber spoke.", "PER"), (" She visited ", None), ("berli", "LOC"),
                  ("n.", None))
    current, shown, table, notes = annotate.edited(current, typed)
    assert not current["pending"]
    assert notes == "'berli' widened to 'berlin'."
    assert shown_tokens(shown) == [("anna weber spoke.", "PER"), (" She visited ", None),
                                   ("berlin", "LOC"), (".", None)]
    assert table.values.tolist() == [["PER", "anna weber spoke.", 0, 17], ["LOC", "berlin", 30, 36]]
    return current


def test_corrections_in_the_highlight_become_the_entities(biased):
    current = corrected(biased)
    again = annotate.edited(current, value(("anna weber spoke.", "PER"), (" She visited ", None),
                                           ("berlin", "LOC"), (".", None)))
    assert again[1] == gr.skip()  # what is shown came back: nothing to send again


def test_a_type_with_spaces_is_not_taken_and_the_last_entities_are_shown(biased):
    current = annotate.suggest_text(TEXT, biased)[0]
    after, shown, _, notes = annotate.edited(current, value(
        ("anna weber spoke.", "New type"), (" ", None), ("She visited berlin.", "ORG")))
    assert after["entities"] == current["entities"]
    assert notes.startswith("Not taken: entity 1 at 0-17: expected a type without spaces")
    assert shown_tokens(shown)[0] == ("anna weber spoke.", "ORG")


def test_an_event_about_another_text_changes_nothing(biased):
    current = annotate.suggest_text(TEXT, biased)[0]
    assert annotate.edited(current, value(("other text", None))) == (gr.skip(),) * 4


def test_accept_adds_the_corrections_and_undo_takes_them_back(biased, data_home):
    current = corrected(biased)
    last, *shown_next, dataset, counts, summary = annotate.accept_current(
        "fixes", TEXT, current, None)
    assert annotations.examples("fixes")[0]["entities"] == current["entities"]
    assert annotations.examples("fixes")[0]["model"] == "biased"
    assert counts.values.tolist() == [["LOC", 1], ["PER", 1]]
    assert summary == "`fixes`: 1 accepted texts, 2 entities"  # a name, never a server path
    assert dataset.value == "fixes" and shown_next[0]["text"] == "" and shown_next[2] == ""
    assert shown_next[5] == "Accepted into `fixes`."

    undone = annotate.undo(last, shown_next[0], None)
    assert undone[0] is None and undone[1]["entities"] == current["entities"]
    assert undone[3] == TEXT and annotations.examples("fixes") == []
    with refused("nothing to undo: the dataset's last example is not your last accept"):
        annotate.undo(None, undone[1], None)


def test_on_a_space_adding_to_a_dataset_asks_who_may_fine_tune(biased, data_home, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "owner/space")
    current = corrected(biased)
    sign_in = "sign in with Hugging Face (the button at the top of the page) to add examples to a "
    with refused(sign_in + "dataset on this Space"):
        annotate.accept_current("fixes", TEXT, current, None)
    with refused(sign_in + "dataset on this Space"):
        annotate.accept("fixes", TEXT, [])
    assert annotations.examples("fixes") == []
    alice = gr.OAuthProfile({"preferred_username": "alice", "name": "Alice", "picture": "",
                             "profile": "", "website": "", "organization": ""})
    assert annotate.accept("fixes", TEXT, [], profile=alice) == {}
    monkeypatch.setenv("NER_FINETUNE_ACCESS", "owner")
    with refused("only the owner of this Space (owner) may add examples to a dataset here; "
                 "duplicate the Space to add examples to a dataset yourself"):
        annotate.accept("fixes", TEXT, [], profile=alice)


def test_accept_refuses_a_span_without_a_type_and_nothing_at_all(biased):
    current = annotate.suggest_text(TEXT, biased)[0]
    pending = annotate.edited(current, value(("anna", annotate.NEW_SPAN),
                                             (" weber spoke. She visited berlin.", None)))[0]
    with refused("give the selected span a type first (it still reads 'label')"):
        annotate.accept_current("fixes", TEXT, pending, None)
    with refused("nothing to accept: suggest entities for a text first"):
        annotate.accept_current("fixes", "", dict(annotate.EMPTY), None)
    with refused("expected a dataset name of letters, digits, '-', '_' and '.', found '../x'"):
        annotate.accept_current("../x", TEXT, current, None)
    with refused("the text was changed after its entities were suggested: press Suggest "
                 "entities again, or put the text back"):
        annotate.accept_current("fixes", TEXT + " More.", current, None)


def test_ranked_puts_the_least_sure_first_and_texts_without_entities_last():
    texts = [(1, "a"), (2, "b"), (3, "c"), (5, "d"), (6, "e")]
    found = [[], [{"score": 0.9}], [{"score": 0.99}, {"score": 0.4}], [{"score": 0.9}], []]
    queue = annotate_queue.ranked(texts, found)
    assert [item["line"] for item in queue] == [3, 2, 5, 1, 6]
    assert [item["least"] for item in queue] == [0.4, 0.9, 0.9, 1.0, 1.0]


def test_a_queued_file_is_shown_text_by_text(biased, tmp_path):
    path = tmp_path / "texts.csv"
    path.write_text("id,body\n1,Anna left.\n2,\n3,Oslo is cold. Li Wei met Globex.\n")
    assert annotate.text_fields(str(path)).choices == [("id", "id"), ("body", "body")]

    current, queue, text, shown, table, notes, queue_note, report = annotate.queue_file(
        str(path), "body", biased)
    assert (current["text"], current["line"], text) == ("Anna left.", 2, "Anna left.")
    assert notes == "Queued 2 texts of `texts.csv`." and report == ""  # no labelled file: no report
    assert queue_note.startswith("Line 2 (lowest score 1.00); 1 more in the queue. A file's "
                                 "texts come least sure first")
    # The page keeps where the texts are and how far it got; the texts are on disk.
    assert set(queue) == {"owner", "id", "at"} and queue["at"] == 1
    [kept] = (tenancy.temp_root() / "local" / annotate_queue.QUEUES).iterdir()
    assert kept.name == f"{queue['id']}.json"
    current, queue, text, *_ = annotate.skip_current(queue)
    assert current["line"] == 4 and [e["text"] for e in current["entities"]] \
        == ["Oslo is cold.", "Li Wei met Globex."]
    assert queue is None and not kept.exists()  # the last text is shown: nothing left to keep
    last, current, queue, text, *_, queue_note, _, _, _ = annotate.accept_current(
        "fixes", text, current, queue)
    assert current == annotate.EMPTY and queue_note == "The queue is empty."


def test_undo_puts_the_accepted_and_the_shown_text_back_in_front_of_the_queue(biased, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("one.\ntwo.\nthree.\n")
    current, queue, text, *_ = annotate.queue_file(str(path), "text", biased)
    last, current, queue, *_ = annotate.accept_current("fixes", text, current, queue)
    assert current["text"] == "two." and queue["at"] == 2
    _, current, queue, text, *_ = annotate.undo(last, current, queue)
    assert text == "one." and annotations.examples("fixes") == []
    assert [annotate.skip_current(queue)[2], annotate.skip_current(
        annotate.skip_current(queue)[1])[2]] == ["two.", "three."]


def test_a_file_is_recognized_in_chunks_with_progress(biased, tmp_path, monkeypatch):
    monkeypatch.setattr(annotate_queue, "QUEUE_CHUNK", 2)
    path = tmp_path / "texts.txt"
    path.write_text("".join(f"text {n}.\n" for n in range(5)))
    recognizer = models.recognizer(biased)
    batches, reported = [], []
    whole = recognizer.recognize_batch
    monkeypatch.setattr(recognizer, "recognize_batch",
                        lambda texts: batches.append(len(texts)) or whole(texts))
    found = annotate_queue.recognized(recognizer, [f"text {n}." for n in range(5)],
                                      lambda done, unit: reported.append(done))
    assert batches == [2, 2, 1] and reported == [(0, 5), (2, 5), (4, 5), (5, 5)]
    assert [len(entities) for entities in found] == [1] * 5
    batches.clear()
    annotate.queue_file(str(path), "text", biased)
    assert batches == [2, 2, 1]


def test_a_bad_file_is_named_as_the_visitor_knows_it(biased, tmp_path):
    path = tmp_path / "gradio" / "0123abcd" / "texts.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"text": "Anna left."}\n{"body": 3}\n')
    with refused("texts.jsonl:2: expected a field 'text', found the field 'body'"):
        annotate.queue_file(str(path), "text", biased)


def test_export_gives_a_conll_file_of_the_accepted_entities(biased):
    annotate.accept_current("fixes", TEXT, corrected(biased), None)
    path = Path(annotate.export_dataset("fixes"))
    assert path.name == "fixes.conll"
    assert path.parent.parent == tenancy.temp_root() / "local" / annotate.EXPORTS
    [sentence_1, sentence_2] = read_conll(path).sentences
    assert list(zip(sentence_1.tokens, sentence_1.tags)) == [
        ("anna", "B-PER"), ("weber", "I-PER"), ("spoke", "I-PER"), (".", "I-PER")]
    assert list(zip(sentence_2.tokens, sentence_2.tags)) == [
        ("She", "O"), ("visited", "O"), ("berlin", "B-LOC"), (".", "O")]
    assert Path(annotate.export_jsonl("fixes")).name == "fixes.jsonl"
    assert annotate.export_dataset("fixes") == str(path)  # same content, same file


def test_show_dataset_counts_and_refuses_path_names(biased):
    annotations.append("other", "Anna left.", [{"start": 0, "end": 4, "label": "PER"}])
    picker, counts, summary = annotate.show_dataset("other")
    assert picker.value == "other" and ("other", "other") in picker.choices
    assert isinstance(counts, pd.DataFrame) and counts.values.tolist() == [["PER", 1]]
    assert summary == "`other`: 1 accepted texts, 1 entities"
    with refused("expected a dataset name of letters, digits, '-', '_' and '.', found 'a/b'"):
        annotate.show_dataset("a/b")


def test_fine_tune_on_the_dataset_fills_the_fine_tune_tab(biased):
    current = annotate.suggest_text(TEXT, biased)[0]
    source, dataset, base, replay, chosen, *form, note = annotate.fine_tune_on("fixes", current,
                                                                              "default")
    assert (source, dataset.value, base, replay, chosen) == ("dataset", "fixes", "biased", True,
                                                             "auto")
    # The whole form: the continue preset, and the input settings biased was trained with.
    continued = preset("continue")
    assert dict(zip(FORM, form)) == {
        "learning_rate": continued.learning_rate, "train_batch_size": continued.train_batch_size,
        "epochs": continued.epochs, "seed": continued.seed,
        "weight_decay": continued.weight_decay, "warmup_ratio": continued.warmup_ratio,
        "max_length": 64, "max_train_sentences": 0, "document_context": False,
        "label_all_tokens": False, "case_feature": False}
    assert (continued.learning_rate, continued.epochs, continued.warmup_ratio) == (3e-5, 3.0, 0.1)
    assert note == ("The Fine-tune tab is set to train `biased` on `fixes`: open it to start.")


def test_the_tab_wires_the_named_endpoints_and_the_fine_tune_form(monkeypatch):
    import app

    demo = app.build_demo()
    names = {d.api_name for d in demo.fns.values()}
    assert {"suggest", "accept", "export_dataset", "export_jsonl"} <= names
    assert any(d.fn.__name__ == "fine_tune_on" for d in demo.fns.values())
    # The order of the tabs does not matter: Annotate before Fine-tune wires the same form.
    monkeypatch.setattr(app, "TABS", dict(reversed(list(app.TABS.items()))))
    reversed_demo = app.build_demo()
    button = next(d for d in reversed_demo.fns.values() if d.fn.__name__ == "fine_tune_on")
    form = next(d for d in reversed_demo.fns.values() if d.fn.__name__ == "fill_form")
    assert [o._id for o in button.outputs][5:-1] == [o._id for o in form.outputs]


def test_the_page_names_no_dataset_and_its_model_work_shares_one_group(data_home):
    import app

    annotations.append("someone-elses", "Anna left.", [])
    demo = app.build_demo()
    picker = next(b for b in demo.blocks.values()
                  if getattr(b, "elem_id", None) == "annotate-dataset")
    assert picker.choices == [(annotate.DEFAULT_DATASET, annotate.DEFAULT_DATASET)]
    assert "someone-elses" not in str(demo.get_config_file())
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    tab = {annotate.suggest_text, annotate.queue_file, annotate.accept_current}
    mine = {id(c) for d in demo.fns.values() if d.fn in tab for c in [*d.inputs, *d.outputs]}
    assert [s.time_to_live for s in states if id(s) in mine] == [models.STATE_SECONDS] * 3
    work = models.model_work()
    for handler in (annotate.suggest_text, annotate.queue_file, annotate.suggest):
        [event] = [d for d in demo.fns.values() if d.fn is handler]
        assert (event.concurrency_id, event.concurrency_limit) \
            == (work["concurrency_id"], work["concurrency_limit"])


def test_without_the_fine_tune_tab_the_button_is_hidden(monkeypatch):
    import app

    monkeypatch.setattr(app, "TABS", {k: v for k, v in app.TABS.items() if k != "Fine-tune"})
    demo = app.build_demo()
    assert not any(d.fn.__name__ == "fine_tune_on" for d in demo.fns.values())
    button = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "finetune-dataset")
    assert button.visible is False


def test_suggest_accept_and_export_through_the_named_api(app_server):
    client = Client(app_server.url, verbose=False)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in endpoints["/suggest"]["parameters"]] == ["text", "model"]
    assert [p["parameter_name"] for p in endpoints["/accept"]["parameters"]] \
        == ["dataset", "text", "entities"]
    assert [p["parameter_name"] for p in endpoints["/export_dataset"]["parameters"]] == ["dataset"]

    suggested = client.predict(text=TEXT, model="tiny", api_name="/suggest")
    assert [(e["label"], e["text"], e["start"], e["end"]) for e in suggested] \
        == [("ORG", "anna weber spoke.", 0, 17), ("ORG", "She visited berlin.", 18, 37)]
    fixed = [{"start": 0, "end": 10, "label": "PER"}, {"start": 30, "end": 35, "label": "LOC"}]
    counts = client.predict(dataset="api-fixes", text=TEXT, entities=fixed, api_name="/accept")
    assert counts == {"LOC": 1, "PER": 1}
    assert (app_server.data_home / "api-fixes.jsonl").is_file()

    exported = client.predict(dataset="api-fixes", api_name="/export_dataset")
    assert Path(exported).name == "api-fixes.conll"
    tags = [tag for sentence in read_conll(exported).sentences for tag in sentence.tags]
    assert tags == ["B-PER", "I-PER", "O", "O", "O", "O", "B-LOC", "O"]


@pytest.mark.parametrize("endpoint, arguments, message", [
    ("/accept", {"dataset": "../x", "text": TEXT, "entities": []},
     "expected a dataset name of letters, digits, '-', '_' and '.', found '../x'"),
    ("/accept", {"dataset": "fixes", "text": TEXT,
                 "entities": [{"start": 0, "end": 10, "label": "PER"},
                              {"start": 5, "end": 10, "label": "ORG"}]},
     "entities overlap: 'anna weber' (0-10, PER) and 'weber' (5-10, ORG)"),
    ("/suggest", {"text": TEXT, "model": "../tiny"}, "expected one of the listed models, found "),
    ("/export_dataset", {"dataset": "api-never-accepted"},
     "expected accepted examples in the dataset 'api-never-accepted', found none"),
])
def test_the_named_api_refuses_with_a_message(app_server, endpoint, arguments, message):
    client = Client(app_server.url, verbose=False, download_files=False)
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(**arguments, api_name=endpoint)
