"""The Highlight, Files and Evaluate tabs on a public host (``NER_PUBLIC=1``), through their
handlers: every file they write belongs to its visitor, a full disk refuses writes and uploads with
both figures, each visitor has one heavy call at a time, uploads to evaluate are capped, and an
evaluation's errors live on disk by id rather than in the page's state.

Visitors are made as Gradio hands them to a handler: an ``OAuthProfile`` (or none) and a request
with its session. The models are the saved runs ``biased`` and ``untrained`` of conftest.py.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import huggingface_hub
import pytest

from conftest import make_sentences, write_conll
from ner_core import tenancy, to_dataset_dict
from ner_core.data import read_conll
from studio import evaluate as ev
from studio import files, models
from studio import highlight as hl
from studio.page import Page

TEXT = "Anna Weber visited Berlin.  Then Nordbank left."
ANNA = {"profile": None, "request": SimpleNamespace(session_hash="anna-tab")}  # anonymous
OMAR = {"profile": SimpleNamespace(username="omar"),
        "request": SimpleNamespace(session_hash="omar-tab")}  # signed in
ANNA_OWNER, OMAR_OWNER = "session:anna-tab", "omar"


@pytest.fixture(autouse=True)
def public_host(tmp_path, monkeypatch):
    """A public host whose temporary files, uploads and Hub cache are the test's own."""
    monkeypatch.setenv("NER_PUBLIC", "1")
    monkeypatch.setenv("NER_TEMP_DIR", str(tmp_path / "temp"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("SPACE_ID", "NER_ADMINS", "NER_MAX_DISK_MB", "NER_MAX_EVAL_SENTENCES"):
        monkeypatch.delenv(name, raising=False)
    ev._evaluate_cached.cache_clear()
    ev._scores_cached.cache_clear()
    tenancy.DISK.forget()  # no measure of another test's folders


def upload(tmp_path: Path, name: str, content: str) -> str:
    """A file as Gradio keeps an upload: in a folder of its own inside its upload folder."""
    path = tmp_path / "gradio" / "5f1c0a9e7b" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return str(path)


def labelled(tmp_path: Path, sentences: int) -> str:
    path = write_conll(tmp_path / "labelled.txt", make_sentences(sentences, seed=7))
    return upload(tmp_path, "labelled.txt", path.read_text(encoding="utf-8"))


def validation_split(tmp_path: Path, sentences: int):
    """CoNLL-2003 as ``studio.data.conll2003`` gives it, with a validation split only."""
    path = write_conll(tmp_path / "valid.txt", make_sentences(sentences, seed=2))
    return to_dataset_dict({"validation": read_conll(path).sentences})


def own_folder(owner: str, kind: str) -> Path:
    return tenancy.temp_root() / tenancy.tenant_key(owner) / kind


def no_progress(*args, **kwargs):
    pass


# Downloads belong to their visitor ------------------------------------------------------------

def test_each_visitors_downloads_live_in_their_own_folder(biased, tmp_path):
    _, _, anna, _, found = hl.highlight(TEXT, biased, "", 0.0, **ANNA)
    omar = hl.highlight(TEXT, biased, "", 0.0, **OMAR)[2]
    assert all(Path(f).is_relative_to(own_folder(ANNA_OWNER, "entities")) for f in anna)
    assert all(Path(f).is_relative_to(own_folder(OMAR_OWNER, "entities")) for f in omar)
    assert hl.highlight(TEXT, biased, "", 0.0, **ANNA)[2] == anna  # kept once per content
    moved = hl.filter_by_score(found, 0.5, **ANNA)[2]
    assert all(Path(f).is_relative_to(own_folder(ANNA_OWNER, "entities")) for f in moved)

    path = upload(tmp_path, "notes.txt", TEXT + "\n")
    first = files.recognize_upload(path, biased, "text", 0.0, no_progress, **ANNA)[-1]
    again = files.recognize_upload(path, biased, "text", 0.0, no_progress, **ANNA)[-1]
    theirs = files.recognize_upload(path, biased, "text", 0.0, no_progress, **OMAR)[-1]
    assert all(Path(f).is_relative_to(own_folder(ANNA_OWNER, "files")) for f in first + again)
    assert all(Path(f).is_relative_to(own_folder(OMAR_OWNER, "files")) for f in theirs)
    assert Path(first[0]).parent != Path(again[0]).parent  # a folder per request
    # Nothing lies beside the visitors' folders under the one temporary root.
    assert sorted(p.name for p in tenancy.temp_root().iterdir()) \
        == sorted([tenancy.tenant_key(ANNA_OWNER), tenancy.tenant_key(OMAR_OWNER)])


# The disk budget ------------------------------------------------------------------------------

def leave_on_disk(runs_dir: Path, monkeypatch, left: int) -> None:
    """Set ``NER_MAX_DISK_MB`` and fill the runs directory so that about ``left`` bytes of the
    budget remain (less than none when ``left`` is negative)."""
    used = sum(tenancy.disk_use().values())
    budget_mb = max(used + left, 0) // 1_000_000 + 1
    monkeypatch.setenv("NER_MAX_DISK_MB", str(budget_mb))
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / "filler.bin").write_bytes(b"x" * (budget_mb * 1_000_000 - used - left))
    tenancy.DISK.forget()  # measured afresh at the next check


def test_a_file_job_is_refused_when_its_outputs_would_pass_the_disk_budget(biased, runs_dir,
                                                                         tmp_path, monkeypatch):
    path = upload(tmp_path, "notes.txt", (TEXT + "\n") * 1_300)  # 62 KB: outputs of about 190 KB
    leave_on_disk(runs_dir, monkeypatch, 100_000)
    budget = f"{int(tenancy.limit('NER_MAX_DISK_MB')):,}.0 MB"
    with pytest.raises(gr.Error, match=re.escape(
            f"the entities of notes.txt needs about 0.2 MB, and this server's disk budget of "
            f"{budget} (NER_MAX_DISK_MB) has 0.1 MB left (runs ")):
        files.recognize_upload(path, biased, "text", 0.0, no_progress, **ANNA)
    assert not own_folder(ANNA_OWNER, "files").exists()  # nothing written
    assert Path(path).exists()  # the upload itself had room


def test_an_upload_is_refused_and_removed_while_the_disk_is_over_budget(biased, runs_dir,
                                                                       tmp_path, monkeypatch):
    path = upload(tmp_path, "notes.txt", TEXT + "\n")
    (tmp_path / "elsewhere").mkdir()
    elsewhere = write_conll(tmp_path / "elsewhere" / "labelled.txt", make_sentences(5))
    leave_on_disk(runs_dir, monkeypatch, -200_000)
    refusal = (r"keeping the upload {} is refused: this server's disk budget of "
               r"[0-9,]+\.0 MB \(NER_MAX_DISK_MB\) has 0\.0 kB left \(runs [0-9.]+ MB")
    with pytest.raises(gr.Error, match=refusal.format("notes.txt")):
        files.choose_field(path)  # as the upload lands on the page
    assert not Path(path).exists() and not Path(path).parent.exists()
    # A file outside the upload folder (the command line's, say) is refused but never removed.
    with pytest.raises(gr.Error, match=refusal.format("labelled.txt")):
        ev.evaluate(biased, "upload", str(elsewhere), "default", **ANNA)
    assert elsewhere.exists()
    # With room again, the removed upload is asked for again, in words.
    (runs_dir / "filler.bin").unlink()
    tenancy.DISK.forget()
    with pytest.raises(gr.Error, match=re.escape("notes.txt: this upload is no longer on the "
                                                 "server (uploads are kept for a while only); "
                                                 "upload the file again")):
        files.recognize_upload(path, biased, "text", 0.0, no_progress, **ANNA)


# One heavy call per visitor -------------------------------------------------------------------

HELD = "Anna Weber waits."


class HeldRecognizer:
    """Stands in for a loaded model: recognizing ``HELD`` waits for ``release``; other texts
    have no entities at once."""

    max_text_chars = 10_000
    precision_said = "float32, as asked"

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def recognize(self, text):
        if text == HELD:
            self.started.set()
            assert self.release.wait(10), "the test never released the held call"
        return []


def test_a_second_heavy_call_of_a_visitor_waits_for_the_first(biased, tmp_path, monkeypatch):
    held = HeldRecognizer()
    monkeypatch.setattr(models, "recognizer", lambda name, int8=False: held)
    notes, conll = upload(tmp_path, "notes.txt", TEXT + "\n"), labelled(tmp_path, 5)
    finished = []
    first = threading.Thread(target=lambda: finished.append(
        hl.highlight(HELD, biased, "", 0.0, **ANNA)))
    first.start()
    try:
        assert held.started.wait(10)
        for what, call in [
            ("highlight", lambda: hl.highlight(TEXT, biased, "", 0.0, **ANNA)),
            ("file job on notes.txt",
             lambda: files.recognize_upload(notes, biased, "text", 0.0, no_progress, **ANNA)),
            ("evaluation", lambda: ev.evaluate(biased, "upload", conll, "default", **ANNA)),
            ("comparison", lambda: ev.compare(biased, biased, "upload", conll, "default", **ANNA)),
        ]:
            with pytest.raises(gr.Error, match=re.escape(
                    f"wait for your highlight to finish before starting {what}: one heavy call "
                    "per visitor at a time on this server")):
                call()
        # Another visitor is not held up.
        assert hl.highlight(TEXT, biased, "", 0.0, **OMAR)[3].startswith("0 entities in ")
    finally:
        held.release.set()
        first.join(10)
    assert finished and finished[0][3].startswith("0 entities in ")
    assert hl.highlight(TEXT, biased, "", 0.0, **ANNA)[3].startswith("0 entities in ")


def test_the_model_events_share_one_concurrency_group_and_state_expires():
    with gr.Blocks() as demo:
        page = Page(demo, gr.Timer(1.0))
        for title, tab in {"Highlight": hl, "Files": files, "Evaluate": ev}.items():
            with gr.Tab(title):
                tab.build(page)
    groups = {}
    for fn in demo.fns.values():
        groups.setdefault(fn.name, set()).add((fn.concurrency_id, fn.concurrency_limit))
    workers = models.model_work()["concurrency_limit"]
    for name in ("highlight", "recognize_upload", "evaluate", "compare"):
        assert groups[name] == {("model", workers)}, name
    assert sum(fn.name == "highlight" for fn in demo.fns.values()) == 2  # the button and Enter
    states = [block for block in demo.blocks.values() if isinstance(block, gr.State)]
    assert len(states) == 2
    assert all(state.time_to_live == models.STATE_SECONDS for state in states)


# Evaluate -------------------------------------------------------------------------------------

def test_evaluate_and_compare_cap_the_sentences_of_an_upload(biased, tmp_path, monkeypatch):
    monkeypatch.setenv("NER_MAX_EVAL_SENTENCES", "20")
    path = labelled(tmp_path, 30)
    refusal = re.escape("labelled.txt: expected at most 20 labelled sentences to evaluate on this "
                        "server (NER_MAX_EVAL_SENTENCES), found 30; evaluate on a part of the file")
    loaded = []
    monkeypatch.setattr(models, "recognizer", lambda *args: loaded.append(args))
    with pytest.raises(gr.Error, match=refusal):
        ev.evaluate(biased, "upload", path, "default", **ANNA)
    with pytest.raises(gr.Error, match=refusal):
        ev.compare(biased, biased, "upload", path, "default", **ANNA)
    assert loaded == []  # refused before any model is loaded


def test_the_conll_splits_stay_within_the_sentence_limit(biased, tmp_path, monkeypatch):
    assert tenancy.limit("NER_MAX_EVAL_SENTENCES") >= 3_453  # CoNLL-2003 test; validation: 3,250
    # A split is the host's data: it is not counted against the limit on uploads.
    monkeypatch.setenv("NER_MAX_EVAL_SENTENCES", "20")
    split = validation_split(tmp_path, 30)
    monkeypatch.setattr(ev, "conll2003", lambda: split)
    assert ev.evaluate(biased, "validation", None, "default", **ANNA)[0].values[0][-1] == 30


def test_an_evaluation_is_kept_on_disk_by_id_for_its_visitor(biased, tmp_path):
    path = labelled(tmp_path, 30)
    *_, evaluated, errors, _ = ev.evaluate(biased, "upload", path, "default", **ANNA)
    assert re.fullmatch(r"[0-9a-f]{32}", evaluated)  # the page's state holds the id alone
    kept = own_folder(ANNA_OWNER, "evaluations") / f"{evaluated}.json"
    gold = [[tag for _, tag in sentence] for sentence in make_sentences(30, seed=7)]
    assert json.loads(kept.read_text(encoding="utf-8"))["gold"] == gold
    assert errors.startswith("<p>30 of 30 sentences</p>")
    assert ev.error_browser(evaluated, "all", "all", "", **ANNA) == errors
    assert ev.error_browser(evaluated, "all", "all", "", **OMAR) == ev.GONE  # not Omar's

    # Evaluating again on the page replaces the file; an expired state takes its file along.
    again = ev.evaluate(biased, "upload", path, "default", evaluated, **ANNA)[3]
    assert not kept.exists()
    assert ev.error_browser(evaluated, "all", "all", "", **ANNA) == ev.GONE
    ev._forget_expired(again)
    assert list(own_folder(ANNA_OWNER, "evaluations").iterdir()) == []
    assert ev.error_browser(again, "all", "all", "", **ANNA) == ev.GONE
    assert ev.error_browser(None, "all", "all", "", **ANNA) == ev.NOTHING_YET


def test_results_kept_in_memory_are_bounded(biased, untrained, tmp_path, monkeypatch):
    split = validation_split(tmp_path, 30)
    monkeypatch.setattr(ev, "conll2003", lambda: split)
    _, frame = ev.compare(biased, untrained, "validation", None, "default", **ANNA)
    assert frame["entity"].tolist()[-1] == "overall"
    assert ev._evaluate_cached.cache_info().maxsize == ev.RESULTS_KEPT <= 2
    scores = ev._scores_cached(biased, models.version(biased), "validation", "default")
    assert "tokens" not in scores and "errors" not in scores
    assert scores["sentence_totals"].shape == (30, 3)  # what the paired test reads instead


# Whatever a client posts ----------------------------------------------------------------------

@pytest.mark.parametrize("evaluated", ["../../etc/passwd", "0" * 32, 5, {"id": 1}, ["x"]])
def test_the_error_browser_reads_only_ids_it_made(evaluated):
    assert ev.error_browser(evaluated, "all", "all", "", **ANNA) == ev.GONE


@pytest.mark.parametrize("kind, entity_type, query, message", [
    ("everything", "all", "", "expected a kind of error (all, "),
    (["all"], "all", "", "expected a kind of error (all, "),
    ("all", 5, "", "expected an entity type as text of at most 200 characters, found 5"),
    ("all", "all", "x" * 201, "expected the words to look for as text of at most 200 characters"),
    ("all", "all", {"a": 1}, "expected the words to look for as text of at most 200 characters"),
])
def test_the_error_browser_refuses_filters_the_page_cannot_send(kind, entity_type, query, message):
    with pytest.raises(gr.Error, match=re.escape(message)):
        ev.error_browser(None, kind, entity_type, query, **ANNA)


@pytest.mark.parametrize("threshold", ["high", float("nan"), 5, -0.1, None, True])
def test_a_minimum_score_is_a_number_from_0_to_1(biased, tmp_path, threshold):
    message = re.escape(f"expected a minimum score from 0 to 1, found {threshold!r}")
    found = hl.highlight(TEXT, biased, "", 0.0, **ANNA)[4]
    with pytest.raises(gr.Error, match=message):
        hl.filter_by_score(found, threshold, **ANNA)
    with pytest.raises(gr.Error, match=message):
        hl.highlight(TEXT, biased, "", threshold, **ANNA)
    with pytest.raises(gr.Error, match=message):
        files.recognize_upload(upload(tmp_path, "notes.txt", TEXT), biased, "text", threshold,
                               no_progress, **ANNA)
