"""The Evaluate tab's intervals, partial-match and confusion tables and the paired test of Compare:
its handlers in-process on the runs ``biased`` and ``untrained``, then the page in headless
Chromium against the session's ``app_server``.

``biased`` and the server's ``tiny`` score every word I-ORG first, so each sentence is one ORG entity and
every number the tab shows can be worked out here from the gold tags alone. A failing browser
test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import make_sentences, write_conll
from chromium import choose, opened, table_rows
from live_app import make_run
from ner_core.partial import SCHEMES, confusion, partial_scores
from ner_core.significance import f1_intervals
from studio import evaluate as ev

# Sentences the I-ORG models get right: one ORG from the first word to the last.
ORG_ONLY = [[("acme", "B-ORG"), ("corp", "I-ORG")], [("nordbank", "B-ORG")],
            [("globex", "B-ORG")], [("united", "B-ORG"), ("metals", "I-ORG")]] * 3
SENTENCES = make_sentences(30, seed=7) + ORG_ONLY
GOLD = [[tag for _, tag in sentence] for sentence in SENTENCES]
# what biased and tiny predict: one ORG over each sentence
ALL_ORG = [["B-ORG"] + ["I-ORG"] * (len(tags) - 1) for tags in GOLD]
VERDICT = "**Paired bootstrap** (1000 resamples of the 42 sentences): "
A_WINNER_OR_NOISE = re.compile(r"`[\w-]+` is better by \d+\.\d\d F1 points \(95% interval "
                               r"-?\d+\.\d\d to -?\d+\.\d\d, p = [\d.e-]+\)|the difference of "
                               r"-?\d+\.\d\d F1 points \(`[\w-]+` minus `[\w-]+`\) is within noise")


def interval(scores: dict) -> str:
    return f"{scores['low']:.4f} to {scores['high']:.4f}"


@pytest.fixture
def labelled(tmp_path) -> Path:
    return write_conll(tmp_path / "labelled.txt", SENTENCES)


@pytest.fixture
def own_temporary_files(tmp_path, monkeypatch):
    """Kept evaluations go under the test's own directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("NER_TEMP_DIR", raising=False)


# The handlers ------------------------------------------------------------------------------------

def test_evaluate_shows_each_f1_with_its_interval(biased, labelled, own_temporary_files):
    overall, table, chart, *_ = ev.evaluate(biased, "upload", str(labelled), "default")
    expected = f1_intervals(GOLD, ALL_ORG)
    assert list(overall.columns) == ["precision", "recall", "F1", "F1 95% interval", "accuracy",
                                     "sentences"]
    assert overall.values.tolist()[0][2:4] == [round(expected["overall"]["f1"], 4),
                                               interval(expected["overall"])]
    assert list(table.columns) == ["entity", "precision", "recall", "F1", "F1 95% interval",
                                   "support"]
    assert dict(zip(table["entity"], table["F1 95% interval"])) \
        == {kind: interval(scores) for kind, scores in expected["per_entity"].items()}
    assert list(chart.columns) == ["entity", "F1"]


def test_the_match_tables_read_the_kept_evaluation(biased, labelled, own_temporary_files):
    evaluated = ev.evaluate(biased, "upload", str(labelled), "default")[3]
    schemes, confused = ev.match_tables(evaluated)
    expected = partial_scores(GOLD, ALL_ORG)["overall"]
    assert list(schemes.columns) == ["scheme", "correct", "incorrect", "partial", "missed",
                                     "spurious", "precision", "recall", "F1"]
    assert schemes["scheme"].tolist() == list(SCHEMES)
    counts = ["correct", "incorrect", "partial", "missed", "spurious"]
    assert schemes.values.tolist() == [
        [scheme, *(expected[scheme][k] for k in counts),
         *(round(expected[scheme][k], 4) for k in ("precision", "recall", "f1"))]
        for scheme in SCHEMES]
    table = confusion(GOLD, ALL_ORG)
    assert confused.columns.tolist() == ["gold \\ predicted", *table["columns"]]
    assert confused.values.tolist() == [[row, *table["counts"][row].values()]
                                        for row in table["rows"]]


@pytest.mark.parametrize("evaluated", [None, "0" * 32, "../../etc/passwd", 5, ["x"]])
def test_the_match_tables_of_no_kept_evaluation_are_empty(evaluated, own_temporary_files):
    schemes, confused = ev.match_tables(evaluated)
    assert schemes.empty and confused.empty


def test_comparing_a_model_with_itself_makes_no_difference(biased, labelled, own_temporary_files):
    verdict, frame = ev.compare(biased, biased, "upload", str(labelled), "default")
    assert verdict == VERDICT + "no difference"
    assert frame["difference"].tolist() == [0.0] * len(frame)


def test_comparing_two_models_names_the_better_one_or_says_noise(biased, untrained, labelled,
                                                                  own_temporary_files):
    verdict, frame = ev.compare(untrained, biased, "upload", str(labelled), "default")
    assert verdict.startswith(VERDICT)
    assert A_WINNER_OR_NOISE.fullmatch(verdict.removeprefix(VERDICT))
    assert frame.columns.tolist() == ["entity", "F1 untrained", "F1 biased", "difference"]


def test_scores_kept_for_comparing_hold_counts_not_tags(biased, labelled, own_temporary_files):
    scores = ev.run_evaluation(biased, "upload", str(labelled), "default", errors=False)
    assert not {"tokens", "gold", "predicted", "errors"} & set(scores)
    # Each sentence's (true positives, predicted, gold): one ORG predicted in each.
    totals = scores["sentence_totals"]
    assert totals.shape == (42, 3) and totals[:, 1].tolist() == [1] * 42
    assert totals[30:, 0].tolist() == [1] * 12 and totals[:30, 0].sum() == 0


# The page ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def second_run(app_server, tiny_bert):
    """A run of the tiny BERT as initialised (varied labels) on the server, beside ``tiny``."""
    name = "browser-untrained"
    make_run(app_server.runs_dir, name, tiny_bert)
    yield name
    shutil.rmtree(app_server.runs_dir / name)


@pytest.fixture
def page(app_server, browser, second_run, request):
    with opened(browser, app_server.url, request, ready="#text textarea") as page:
        yield page


def evaluate_upload(page, labelled: Path) -> None:
    from playwright import sync_api

    page.get_by_role("tab", name="Evaluate").click()
    choose(page, "eval-model", "tiny")
    page.get_by_label("Uploaded file").check()
    page.locator("#eval-file input[type=file]").set_input_files(str(labelled))
    sync_api.expect(page.locator("#eval-file")).to_contain_text("labelled.txt")


def test_the_page_shows_intervals_and_the_match_tables(page, labelled):
    from playwright import sync_api

    evaluate_upload(page, labelled)
    page.click("#evaluate")
    sync_api.expect(page.locator("#partial [role=row].virtual-row")).to_have_count(4, timeout=60_000)
    expected = f1_intervals(GOLD, ALL_ORG)
    assert table_rows(page, "overall")[0][3] == interval(expected["overall"])
    rows = table_rows(page, "per-entity")
    assert {row[0]: row[4] for row in rows} \
        == {kind: interval(scores) for kind, scores in expected["per_entity"].items()}
    scores = partial_scores(GOLD, ALL_ORG)["overall"]
    assert [row[:6] for row in table_rows(page, "partial")] == [
        [scheme, *(str(scores[scheme][k]) for k in ("correct", "incorrect", "partial", "missed",
                                                     "spurious"))] for scheme in SCHEMES]
    table = confusion(GOLD, ALL_ORG)
    assert table_rows(page, "confusion") == [[row, *map(str, table["counts"][row].values())]
                                             for row in table["rows"]]


def test_the_page_compares_a_model_with_itself_and_with_another(page, labelled, second_run):
    from playwright import sync_api

    evaluate_upload(page, labelled)
    page.get_by_text("Compare with another model").click()
    verdict = page.locator("#comparison-verdict")
    choose(page, "compare-model", "tiny")
    page.click("#compare")
    sync_api.expect(verdict).to_contain_text("sentences): no difference", timeout=60_000)
    assert verdict.inner_text().strip() == ("Paired bootstrap (1000 resamples of the 42 "
                                            "sentences): no difference")

    choose(page, "compare-model", second_run)
    page.click("#compare")
    sync_api.expect(verdict).not_to_contain_text("no difference", timeout=60_000)
    shown = verdict.inner_text().strip()
    assert shown.startswith("Paired bootstrap (1000 resamples of the 42 sentences): ")
    assert re.search(r"(`?tiny`? is better by|`?browser-untrained`? is better by|is within noise)",
                     shown)
    sync_api.expect(page.locator("#comparison")).to_contain_text(f"F1 {second_run}")
