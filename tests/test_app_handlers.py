"""The app's handlers on tiny models, without a server: what each tab shows for good and bad input.

Two saved runs serve as models: ``biased`` (every word scored I-ORG first, so each sentence is one ORG
entity scored 1.0: exact answers) and ``untrained`` (the tiny BERT as it is: varied labels and
scores, for the score filter).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
import tempfile
import threading
import zipfile
from dataclasses import fields
from pathlib import Path

import gradio as gr
import pytest

from conftest import make_sentences, write_conll
from live_app import make_run
from ner_core import TrainConfig, hardware, runs
from ner_core.plan import config_for
from ner_core.cli import _build_parser
from ner_core.errors import UserError
from ner_core.jobs import FineTuneJobs, LoadedData
from ner_core.training import TrainProgress, TrainResult
from studio.models import model_choices
from studio.data import TrainingData
from studio.page import Page
from studio import evaluate as ev
from studio import finetune as ft
from studio import highlight as hl
from studio import training as tr

TEXT = "Anna Weber visited Berlin.  Then Nordbank left.\n\nLi Wei met Globex."
# One ORG entity per sentence, from its first letter to its full stop.
BIASED_ENTITIES = [("Anna Weber visited Berlin.", 0, 26), ("Then Nordbank left.", 28, 47),
                   ("Li Wei met Globex.", 49, 67)]


@pytest.fixture(autouse=True)
def temporary_files_in_tmp_path(tmp_path, monkeypatch):
    """Downloads and zips the handlers write go under the test's own directory."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))


def form(**changes) -> dict:
    """The Fine-tune form's values as the page sends them (gr.Number gives floats)."""
    values = {"learning_rate": 3e-4, "train_batch_size": 16.0, "epochs": 1.0, "seed": 42.0,
              "weight_decay": 0.01, "warmup_ratio": 0.1, "max_length": 64.0,
              "max_train_sentences": 0.0, "document_context": False, "label_all_tokens": False}
    return {**values, **changes}


# Highlight ---------------------------------------------------------------------------------------

def test_highlight_shows_entities_with_exact_offsets(biased):
    update, table, files, timing, found = hl.highlight(TEXT, biased, "", 0.0)

    expected = [{"start": s, "end": e, "label": "ORG", "score": 1.0, "text": t}
                for t, s, e in BIASED_ENTITIES]
    assert found == {"text": TEXT, "entities": expected}
    assert all(TEXT[e["start"]:e["end"]] == e["text"] for e in found["entities"])

    assert isinstance(update, gr.HighlightedText)
    tokens = [(t["token"], t["class_or_confidence"]) for t in update.value]
    assert "".join(token for token, _ in tokens) == TEXT
    assert [t for t in tokens if t[1] is not None] == [(t, "ORG") for t, _, _ in BIASED_ENTITIES]
    assert update.color_map["ORG"] == hl.COLORS["ORG"]

    assert list(table.columns) == ["text", "type", "score", "start", "end"]
    assert table.values.tolist() == [[t, "ORG", 1.0, s, e] for t, s, e in BIASED_ENTITIES]
    auto = hardware.pick_precision("auto", "cpu")[1]
    assert timing.startswith("3 entities in ") and timing.endswith(f" ms with `biased` ({auto})")


def test_highlight_downloads_hold_the_shown_entities(biased):
    _, _, files, _, found = hl.highlight(TEXT, biased, "", 0.0)

    assert [Path(f).name for f in files] == ["entities.json", "entities.csv"]
    assert json.loads(Path(files[0]).read_text()) == found["entities"]
    with open(files[1], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["text"], r["label"], float(r["score"]), int(r["start"]), int(r["end"])) for r in rows] \
        == [(t, "ORG", 1.0, s, e) for t, s, e in BIASED_ENTITIES]


@pytest.mark.parametrize("text", ["", "   \n\t  ", None])
def test_highlight_of_no_text_gives_a_hint(biased, text):
    update, table, files, timing, found = hl.highlight(text, biased, "", 0.0)
    assert update is None and files is None
    assert table.empty and list(table.columns) == hl.TABLE_COLUMNS
    assert timing == "Paste or type some text, or pick an example below."
    assert found == {"text": "", "entities": []}


@pytest.mark.parametrize("model, hub_id, message", [
    ("nope", "", "expected one of the listed models, found 'nope'"),
    ("../biased", "", "expected one of the listed models, found '../biased'"),
    (None, "", "choose a model first"),
    ("biased", "../x", "expected a Hub id like 'owner/name', found '../x'"),
    ("biased", "/etc/passwd", "expected a Hub id like 'owner/name', found '/etc/passwd'"),
    ("biased", "http://x", "expected a Hub id like 'owner/name', found 'http://x'"),
    ("biased", "owner/name", "cannot be reached"),  # HF_HUB_OFFLINE=1
])
def test_highlight_refuses_models_it_does_not_offer(biased, model, hub_id, message):
    with pytest.raises(gr.Error, match=re.escape(message)):
        hl.highlight("Anna Weber visited Berlin.", model, hub_id, 0.0)


def test_hub_id_box_does_not_load_local_directories(biased_model, tmp_path, monkeypatch):
    local = tmp_path / "cwd"
    make_run(local, "name", biased_model)  # local/name: a model directory, not a saved run
    monkeypatch.chdir(local.parent)
    with pytest.raises(gr.Error):
        hl.highlight("Anna Weber visited Berlin.", None, "cwd/name", 0.0)


def test_highlight_refuses_text_over_the_limit(biased):
    text = "a " * (hl.MAX_CHARS // 2) + "b"
    with pytest.raises(gr.Error, match=f"at most {hl.MAX_CHARS:,} characters, found {len(text):,}"):
        hl.highlight(text, biased, "", 0.0)


def test_a_bug_in_a_handler_shows_a_short_message(biased, monkeypatch):
    def broken(text, choice, hub_id, int8, **kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(hl, "recognize", broken)
    with pytest.raises(gr.Error, match=r"something went wrong in the studio itself.*\(RuntimeError\)") as caught:
        hl.highlight("Anna Weber visited Berlin.", biased, "", 0.0)
    assert "internal detail" not in str(caught.value)


def test_filter_by_score_hides_low_scores(untrained):
    _, table, _, _, found = hl.highlight("anna weber visited berlin with omar haddad.", untrained,
                                          "", 0.0)
    scores = sorted(e["score"] for e in found["entities"])
    assert len(table) == len(scores) >= 3 and scores[0] < scores[-1]
    threshold = scores[len(scores) // 2]

    update, filtered, files = hl.filter_by_score(found, threshold)

    kept = [e for e in found["entities"] if e["score"] >= threshold]
    assert 0 < len(kept) < len(found["entities"])
    assert filtered.values.tolist() == [[e["text"], e["label"], e["score"], e["start"], e["end"]]
                                        for e in kept]
    assert [t["token"] for t in update.value if t["class_or_confidence"]] == [e["text"] for e in kept]
    assert json.loads(Path(files[0]).read_text()) == kept


def test_filter_by_score_before_any_search_changes_nothing():
    assert all(isinstance(v, dict) and v == {"__type__": "update"}
               for v in hl.filter_by_score({"text": "", "entities": []}, 0.5))


# Fine-tune ---------------------------------------------------------------------------------------

def test_make_config_accepts_whole_floats_from_number_boxes():
    config = tr.plan_from_form("minilm", "", None, form(train_batch_size=16.0, seed=7.0, max_length=64.0)).config
    assert config == TrainConfig(base_model="minilm", learning_rate=3e-4, train_batch_size=16,
                                 epochs=1.0, seed=7, weight_decay=0.01, warmup_ratio=0.1,
                                 max_length=64, max_train_sentences=None,
                                 logging_steps=config.logging_steps)  # the app's own choice
    assert isinstance(config.train_batch_size, int) and isinstance(config.max_length, int)


def test_make_config_reads_max_train_sentences():
    assert tr.plan_from_form("minilm", "", None, form(max_train_sentences=0.0)).config.max_train_sentences is None
    assert tr.plan_from_form("minilm", "", None, form(max_train_sentences=0)).config.max_train_sentences is None
    assert tr.plan_from_form("minilm", "", None, form(max_train_sentences=500.0)).config.max_train_sentences == 500


def test_make_config_takes_the_hub_box_over_the_picker(monkeypatch, tmp_path):
    monkeypatch.setattr("ner_core.hub.hub_reachable", lambda: True)
    # The Hub gives the encoder's configuration, and nothing else is downloaded to plan the run.
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "bert", "type_vocab_size": 2,
                                  "max_position_embeddings": 512}))
    asked = []
    monkeypatch.setattr("huggingface_hub.hf_hub_download",
                        lambda repo_id, filename, **kwargs: asked.append((repo_id, filename))
                        or str(config))
    plan = tr.plan_from_form("minilm", " owner/name ", None, form())
    assert plan.config.base_model == "owner/name" and plan.preset == "recipe"
    assert asked == [("owner/name", "config.json")]


def test_make_config_says_at_once_that_a_hub_base_is_out_of_reach():
    with pytest.raises(ValueError, match="cannot be reached"):
        tr.plan_from_form("minilm", "owner/name", None, form()).config


def test_make_config_never_reads_the_hub_box_as_a_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "local").mkdir(parents=True)
    monkeypatch.setattr("ner_core.hub.hub_reachable", lambda: True)
    with pytest.raises(ValueError, match="expected a listed base model or a Hub id, found 'runs/local'"):
        tr.plan_from_form("minilm", "runs/local", None, form()).config


@pytest.mark.parametrize("base, hub_id, changes, message", [
    ("minilm", "", {"train_batch_size": 2.5}, "train_batch_size must be a whole number, found 2.5"),
    ("minilm", "", {"seed": 1.5}, "seed must be a whole number, found 1.5"),
    ("minilm", "", {"learning_rate": 5.0}, r"learning_rate must be in \(0, 1\], found 5.0"),
    ("minilm", "", {"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\], found 0.0"),
    ("minilm", "", {"learning_rate": "fast"}, "learning_rate must be a number, found 'fast'"),
    ("minilm", "", {"epochs": 0.0}, r"epochs must be in \(0, 100\], found 0.0"),
    ("minilm", "", {"max_train_sentences": -3.0}, "max_train_sentences must be between 1 and"),
    ("", "", {}, "choose a base model"),
    ("minilm", "../x", {}, "expected a listed base model or a Hub id, found '../x'"),
    ("/etc", "", {}, "expected a listed base model or a Hub id, found '/etc'"),
])
def test_make_config_quotes_bad_values(base, hub_id, changes, message):
    with pytest.raises(ValueError, match=message):
        tr.plan_from_form(base, hub_id, None, form(**changes)).config


def test_plan_names_the_setting_to_fix():
    note = ft.describe_plan("minilm", "", "upload", None, None, **form(train_batch_size=2.5))
    assert "Settings to fix: train_batch_size must be a whole number, found 2.5" in note


def test_run_name_checks_and_defaults(biased):
    assert tr.run_name("  my-run_1.2 ") == "my-run_1.2"
    assert tr.run_name("").startswith("run-")
    assert tr.run_name(None).startswith("run-")
    for bad in ["../x", "a/b", ".hidden", "has space", "x" * 101]:
        with pytest.raises(ValueError, match="expected a run name of letters, digits"):
            tr.run_name(bad)
    with pytest.raises(ValueError, match="a run named 'biased' exists already"):
        tr.run_name("biased")


def test_start_fine_tune_refuses_an_existing_run_name(biased, tmp_path):
    train = write_conll(tmp_path / "train.txt", make_sentences(20, seed=1))
    with pytest.raises(gr.Error, match="a run named 'biased' exists already"):
        next(ft.start_fine_tune("biased", "minilm", "", "upload", str(train), None, **form()))
    assert ft.JOBS.snapshot().state == "idle"


def test_describe_upload_counts_sentences_and_types(tmp_path):
    path = write_conll(tmp_path / "train.txt", make_sentences(40, seed=1))
    assert ft.describe_upload(str(path)) == (
        "`train.txt`: 40 sentences, IOB2, types LOC, MISC, ORG, PER\n\n"
        "train.txt (conll (IOB2)): 40 records, 40 examples, 90 of 90 entities kept, nothing changed")
    assert ft.describe_upload(None) == ""


def test_describe_upload_converts_iob1(tmp_path):
    path = tmp_path / "iob1.txt"
    path.write_text("Anna I-PER\nWeber I-PER\nvisited O\nBerlin I-LOC\n\nNordbank I-ORG\nleft O\n")
    assert ft.describe_upload(str(path)).split("\n")[0] \
        == "`iob1.txt`: 2 sentences, IOB1, converted to IOB2, types LOC, ORG, PER"


def test_describe_upload_names_file_and_line_of_a_bad_tag(tmp_path):
    path = tmp_path / "zero.txt"
    path.write_text("Anna B-PER\nWeber I-PER\nvisited 0\nBerlin B-LOC\n")
    with pytest.raises(ValueError, match=r"zero\.txt:3: expected a tag .* found '0' \(the digit zero"):
        ft.describe_upload(str(path))
    with pytest.raises(gr.Error, match=r"zero\.txt:3: "):
        ft.describe_upload(str(path))


def test_reproduce_command_round_trips_through_the_cli(tmp_path):
    plan = tr.plan_from_form("minilm", "", None, form(train_batch_size=8.0, label_all_tokens=True,
                                                      max_train_sentences=300.0))
    config = plan.config
    data = TrainingData("upload", str(write_conll(tmp_path / "mine.txt", make_sentences(5))), None)
    command = tr.reproduce_command(plan, "my-run", data)
    assert "--learning-rate 0.0003" in command and "--base-model minilm" in command
    assert "--label-all-tokens" in command

    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "ner_core", "train"]
    args = _build_parser().parse_args(argv[3:])
    assert (args.data, args.output) == ("mine.txt", "runs/my-run")
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name) is not None}
    assert config_for(overrides, args.preset) == config  # as the command line builds it


def test_zip_run_holds_the_weights(biased):
    with zipfile.ZipFile(runs.zip_run(biased)) as archive:
        names = {Path(n).name for n in archive.namelist()}
    assert {"model.safetensors", "config.json", "train_config.json", "metrics.json"} <= names
    with pytest.raises(ValueError, match="no finished run named 'missing'"):
        runs.zip_run("missing")


# Evaluate ----------------------------------------------------------------------------------------

@pytest.fixture
def labelled(tmp_path) -> Path:
    return write_conll(tmp_path / "labelled.txt", make_sentences(30, seed=7))


def gold_counts(sentences) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sentence in sentences:
        for _, tag in sentence:
            if tag.startswith("B-"):
                counts[tag[2:]] = counts.get(tag[2:], 0) + 1
    return counts


def test_run_evaluation_of_an_uploaded_file(biased, labelled):
    result = ev.run_evaluation(biased, "upload", str(labelled), "default")
    assert {"overall", "per_entity", "errors", "tokens", "gold", "predicted"} <= set(result)
    assert result["n_sentences"] == 30
    assert {e: s["support"] for e, s in result["per_entity"].items()} \
        == gold_counts(make_sentences(30, seed=7))
    # Each sentence is predicted as one ORG entity: no gold entity matches exactly.
    assert result["overall"]["f1"] == 0.0
    assert all(tags == ["B-ORG"] + ["I-ORG"] * (len(tags) - 1) for tags in result["predicted"])
    assert {e["kind"] for e in result["errors"]} == {"wrong type", "wrong boundary"}


def test_run_evaluation_handler_fills_every_view(biased, labelled):
    overall, table, chart, evaluated, errors, types = ev.evaluate(biased, "upload",
                                                                  str(labelled), "default")
    assert overall.values.tolist()[0][-1] == 30
    assert list(table.columns) == ["entity", "precision", "recall", "F1", "F1 95% interval",
                                   "support"]
    assert table["entity"].tolist() == ["LOC", "MISC", "ORG", "PER"]
    assert table["support"].tolist() == [gold_counts(make_sentences(30, seed=7))[e]
                                         for e in ["LOC", "MISC", "ORG", "PER"]]
    assert list(chart.columns) == ["entity", "F1"]
    assert errors.startswith("<p>30 of 30 sentences</p>")
    assert [value for _, value in types.choices] == ["all", "LOC", "MISC", "ORG", "PER"]
    # The page keeps the id of the evaluation; the error browser reads its errors from disk.
    assert ev.error_browser(evaluated, "all", "all", "") == errors


@pytest.mark.parametrize("model, upload, message", [
    ("nope", "labelled", "expected one of the listed models, found 'nope'"),
    ("biased", None, "upload a labelled file"),
])
def test_run_evaluation_refuses_bad_choices(biased, labelled, model, upload, message):
    with pytest.raises(gr.Error, match=message):
        ev.evaluate(model, "upload", str(labelled) if upload else None, "default")


def test_per_entity_table_has_a_row_per_type():
    result = {"per_entity": {"LOC": {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2},
                             "PER": {"precision": 1.0, "recall": 0.25, "f1": 0.4, "support": 4}}}
    assert ev.per_entity_table(result).values.tolist() == [["LOC", 0.5, 1.0, 0.6667, 2],
                                                           ["PER", 1.0, 0.25, 0.4, 4]]


def test_comparison_has_a_difference_column_and_an_overall_row():
    a = {"per_entity": {"PER": {"f1": 0.5}}, "overall": {"f1": 0.5}}
    b = {"per_entity": {"PER": {"f1": 0.75}, "LOC": {"f1": 1.0}}, "overall": {"f1": 0.8}}
    frame = ev.comparison("a", a, "b", b)
    assert list(frame.columns) == ["entity", "F1 a", "F1 b", "difference"]
    assert frame.values.tolist() == [["LOC", 0.0, 1.0, 1.0], ["PER", 0.5, 0.75, 0.25],
                                     ["overall", 0.5, 0.8, 0.3]]


def test_compare_handler_on_two_models(biased, untrained, labelled):
    verdict, frame = ev.compare(biased, untrained, "upload", str(labelled), "default")
    assert verdict.startswith("**Paired bootstrap** (1000 resamples of the 30 sentences): ")
    assert list(frame.columns) == ["entity", "F1 biased", "F1 untrained", "difference"]
    assert frame["entity"].tolist() == ["LOC", "MISC", "ORG", "PER", "overall"]
    assert ((frame["difference"] - (frame["F1 untrained"] - frame["F1 biased"])).abs() <= 1e-4).all()


SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img/src=x/onerror=alert(2)>"  # outside every gold entity


@pytest.fixture
def hostile_result(biased, tmp_path) -> dict:
    """Evaluated by ``biased`` (one ORG per sentence): ORG has a wrong boundary, the rest a wrong type."""
    path = tmp_path / "hostile.txt"
    path.write_text(f"{SCRIPT} B-PER\nvisited O\nberlin B-LOC\n{IMAGE} O\n. O\n\n"
                    "anna B-PER\nweber I-PER\nleft O\n\n"
                    "the O\nnordbank B-ORG\n& O\nx<b>y B-MISC\nleft O\n. O\n\n"
                    "zz B-<u>T\n. O\n")
    return ev.run_evaluation(biased, "upload", str(path), "default")


def test_error_browser_escapes_html(hostile_result):
    page = ev.browse_errors(hostile_result, "all", "all", "")
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    # Each token shows twice, under gold and under predicted.
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert page.count("&lt;img/src=x/onerror=alert(2)&gt;") == 2
    assert page.count("x&lt;b&gt;y") == 2 and page.count(" &amp; ") == 2
    assert "<u>" not in page and "<small>&lt;u&gt;T</small>" in page  # a type is text too


@pytest.mark.parametrize("kind, entity_type, query, sentences", [
    ("all", "all", "", [0, 1, 2, 3]),
    ("wrong type", "all", "", [0, 1, 2, 3]),
    ("wrong type", "<u>T", "", [3]),
    ("wrong type", "PER", "", [0, 1]),
    ("wrong type", "LOC", "", [0]),
    ("wrong boundary", "all", "", [2]),
    ("wrong boundary", "ORG", "", [2]),
    ("wrong boundary", "PER", "", []),
    ("missed", "all", "", []),
    ("spurious", "all", "", []),
    ("all", "all", "WEBER", [1]),
    ("all", "all", "script", [0]),
])
def test_error_browser_filters_by_kind_type_and_words(hostile_result, kind, entity_type, query,
                                                      sentences):
    page = ev.browse_errors(hostile_result, kind, entity_type, query)
    if not sentences:
        assert page == "<p>No errors match these filters.</p>"
        return
    assert page.startswith(f"<p>{len(sentences)} of {len(sentences)} sentences</p>")
    assert [int(row.split("</td>")[0]) for row in page.split("<tr><td>")[1:]] == sentences


def test_error_browser_before_an_evaluation():
    assert ev.error_browser(None, "all", "all", "") == "<p>Evaluate a model to browse its errors.</p>"


# One fine-tune at a time -------------------------------------------------------------------------

class FakeFineTune:
    """Stands in for ``fine_tune``: reports a step, then waits for ``release`` or fails."""

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()
        self.failures: list[Exception] = []

    def __call__(self, config, data, output_dir, on_event, should_stop):
        if self.failures:
            raise self.failures.pop(0)
        on_event(TrainProgress(4, 10, 0.4, 0.5, 1e-4, 1.0, 1.5, kind="log"))
        self.started.set()
        assert self.release.wait(10), "the test never released the fake fine-tune"
        stopped = should_stop()
        return TrainResult(output_dir, {}, stopped, 5 if stopped else 10, 10, 2.0)


def load_three() -> LoadedData:
    return LoadedData({"train": ["s1", "s2", "s3"]})


@pytest.fixture
def fake():
    run = FakeFineTune()
    yield run
    run.release.set()


def test_second_start_is_refused_while_one_runs(fake, tmp_path):
    jobs = FineTuneJobs(fake)
    jobs.start(TrainConfig(), load_three, tmp_path / "first")
    assert fake.started.wait(5)
    snapshot = jobs.snapshot()
    assert (snapshot.state, snapshot.run_name, snapshot.losses) == ("running", "first", [(4, 0.5)])

    with pytest.raises(ValueError, match=r"a fine-tune \(first\) is already running"):
        jobs.start(TrainConfig(), load_three, tmp_path / "second")

    fake.release.set()
    snapshot = jobs.wait(5)
    assert snapshot.state == "finished" and snapshot.run_name == "first"
    assert snapshot.log[-1].endswith("finished; saved as first")
    assert not jobs.stop()


def test_stop_sets_stopping_then_stopped(fake, tmp_path):
    jobs = FineTuneJobs(fake)
    assert not jobs.stop()
    jobs.start(TrainConfig(), load_three, tmp_path / "long")
    assert fake.started.wait(5)

    assert jobs.stop()
    snapshot = jobs.snapshot()
    assert snapshot.state == "stopping" and snapshot.active
    assert snapshot.log[-1].endswith("stop requested: finishing the current step")
    assert not jobs.stop()
    with pytest.raises(ValueError, match="already running"):
        jobs.start(TrainConfig(), load_three, tmp_path / "other")

    fake.release.set()
    snapshot = jobs.wait(5)
    assert snapshot.state == "stopped" and not snapshot.active
    assert snapshot.log[-1].endswith("stopped at step 5 of 10; the weights so far are saved as long")


FAULT = "the fine-tune hit a fault of the studio, not of its settings or data"


@pytest.mark.parametrize("failure, reason", [
    (UserError("train.txt:3: expected a tag"), "train.txt:3: expected a tag"),
    (RuntimeError("internal detail"), f"{FAULT} (RuntimeError); it is in the server's log"),
    (ValueError("internal detail"), f"{FAULT} (ValueError); it is in the server's log"),
])
def test_a_failed_run_reports_and_the_next_one_starts(fake, tmp_path, failure, reason):
    fake.failures.append(failure)
    jobs = FineTuneJobs(fake)
    jobs.start(TrainConfig(), load_three, tmp_path / "broken")
    snapshot = jobs.wait(5)
    assert (snapshot.state, snapshot.error) == ("failed", reason)
    assert snapshot.log[-1].endswith(f"failed: {reason}; nothing was saved")

    fake.release.set()
    jobs.start(TrainConfig(), load_three, tmp_path / "again")
    snapshot = jobs.wait(5)
    assert (snapshot.state, snapshot.run_name, snapshot.error) == ("finished", "again", None)


def test_failing_data_loading_fails_the_job(tmp_path):
    def load_nothing():
        raise UserError("train.txt:3: expected a tag")

    jobs = FineTuneJobs(FakeFineTune())
    jobs.start(TrainConfig(), load_nothing, tmp_path / "no-data")
    snapshot = jobs.wait(5)
    assert (snapshot.state, snapshot.error) == ("failed", "train.txt:3: expected a tag")


# The page's one-second refresh -------------------------------------------------------------------

def finished_fine_tune(config, data, output_dir, on_event, should_stop):
    on_event(TrainProgress(3, 3, 1.0, 0.25, 1e-4, 2.0, 0.0, kind="log"))
    return TrainResult(output_dir, {"training": {"steps": 3}}, False, 3, 3, 2.0)


@pytest.fixture
def finished_job(monkeypatch, runs_dir, biased) -> FineTuneJobs:
    """The app's job, finished: it 'saved' the run ``biased`` (no validation split, so no scores)."""
    jobs = FineTuneJobs(finished_fine_tune)
    jobs.start(TrainConfig(base_model="minilm"), load_three, runs_dir / biased)
    assert jobs.wait(5).state == "finished"
    monkeypatch.setattr(ft, "JOBS", jobs)
    return jobs


def test_poll_shows_a_finished_job_once(finished_job):
    listed = model_choices()  # the bundled model, then the run
    assert listed[-1] == "biased"
    progress, losses, _, log, table, download, error, zipped = ft.poll(None)
    assert progress.startswith("<div class='job-state'><b>finished</b> · biased · "
                               "step 3 of 3, epoch 1.00<")
    assert "<progress max='1' value='1.0000'" in progress
    assert losses.values.tolist() == [[3, 0.25]]
    assert log.splitlines()[-1].endswith("finished; saved as biased")
    assert table.columns.tolist() == ["note"] and "no validation data" in table["note"][0]
    with zipfile.ZipFile(download) as archive:
        assert "model.safetensors" in {Path(n).name for n in archive.namelist()}
    assert error == ""
    assert zipped == "biased"

    again = ft.poll(zipped)
    assert again[4] == again[5] == {"__type__": "update"}  # table and zip are not made again


def test_the_pickers_refresh_when_runs_change(finished_job):
    import gradio as gr

    with gr.Blocks() as demo:
        page = Page(demo, gr.Timer(1.0))
        page.model_pickers += [gr.Dropdown(), gr.Dropdown()]
        page.base_pickers.append(gr.Dropdown())
    *pickers, seen = page._refresh([], "biased", None, "minilm")
    model, other, base = pickers
    assert [value for _, value in model.choices] == model_choices() == seen
    assert seen[-1] == "biased" and model.value == "biased"
    assert other.choices == model.choices
    assert "biased" in [value for _, value in base.choices] and base.value == "minilm"
    assert page._refresh(seen, "biased", None, "minilm") == [{"__type__": "update"}] * 4


def test_poll_reports_a_failure(monkeypatch, tmp_path):
    fake = FakeFineTune()
    fake.failures.append(RuntimeError("disk full"))
    jobs = FineTuneJobs(fake)
    jobs.start(TrainConfig(), load_three, tmp_path / "broken")
    jobs.wait(5)
    monkeypatch.setattr(ft, "JOBS", jobs)
    progress, *_, table, download, error = ft.poll(None)[:7]
    assert "<b>failed</b> · broken" in progress
    assert error == f"**Failed:** {FAULT} (RuntimeError); it is in the server's log"
    assert table == download == {"__type__": "update"}


def test_poll_zips_a_finished_run_once_for_all_visitors(finished_job):
    first = ft.poll(None)[5]
    second = ft.poll(None)[5]  # another browser tab: its own zipped state is None
    assert Path(first).is_file() and Path(second).is_file()
    assert first == second


def test_the_bundled_model_comes_first_in_the_pickers_once_it_exists(biased, tmp_path, monkeypatch):
    from ner_core import models as core_models

    bundled = tmp_path / "assets" / "model"
    monkeypatch.setattr(core_models, "BUNDLED_DIR", bundled)
    assert "default" not in model_choices()
    shutil.copytree(runs.run_path("biased"), bundled)
    assert model_choices()[0] == "default"
    entities, timing = hl.recognize("Anna Weber visited Berlin.", "default", "")
    assert entities and "`default`" in timing


def test_int8_mode_finds_the_same_entities_and_says_so(biased):
    text = "Anna Weber visited Berlin."
    _, plain, _, timing, _ = hl.highlight(text, biased, "", 0.0)
    _, fast, _, fast_timing, _ = hl.highlight(text, biased, "", 0.0, True)
    assert fast[["text", "type", "start", "end"]].equals(plain[["text", "type", "start", "end"]])
    assert fast_timing.endswith("(int8, as asked)")
    assert timing.endswith(f"({hardware.pick_precision('auto', 'cpu')[1]})")


def test_replayed_sentences_count_against_the_cpu_limit(biased, tmp_path, monkeypatch):
    monkeypatch.setenv("NER_MAX_CPU_TRAIN_SENTENCES", "30")
    monkeypatch.setattr(ft, "_trains_on_gpu", lambda: False)
    train = write_conll(tmp_path / "train.txt", make_sentences(20, seed=1))
    replayed = TrainingData("upload", str(train), None, replay=True)
    plan = tr.plan_from_form("biased", "", None, form(max_train_sentences=0))
    assert tr.trained_sentences(plan, replayed) == 60  # the preset replays two per new one
    assert tr.trained_sentences(plan, TrainingData("upload", str(train), None)) == 20
    # The start sizes the continue preset to the 20 sentences: 1,000 replayed with them.
    with pytest.raises(gr.Error, match=r"at most 30 sentences \(NER_MAX_CPU_TRAIN_SENTENCES\), "
                                       r"found 1,020"):
        next(ft.start_fine_tune("replayed", "biased", "", "upload", str(train), None, replay=True,
                                **form()))
    assert ft.JOBS.snapshot().state == "idle"


def test_marking_capitals_is_refused_up_front_for_a_base_without_token_types(tmp_path, tiny_distilbert,
                                                                            runs_dir):
    make_run(runs_dir, "distil", tiny_distilbert)
    with pytest.raises(ValueError, match=r"case_feature needs a model with token type embeddings "
                                         r"\(BERT-like\), found distilbert \(distil\)"):
        tr.plan_from_form("distil", "", None, form(case_feature=True)).config
    assert tr.plan_from_form("distil", "", None, form()).config.case_feature is False
