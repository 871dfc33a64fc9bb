"""Scores against seqeval's own functions, per-entity tables and the error classes of a sentence."""

from __future__ import annotations

import pandas as pd
import pytest
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from ner_core.metrics import ERROR_KINDS, all_errors, per_entity_frame, score, sentence_errors

# (gold, predicted) pairs, several sentences each.
CASES = {
    "perfect": (
        [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]],
        [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]),
    "missed and spurious": (
        [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O", "B-MISC"]],
        [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O", "B-MISC"]]),
    "wrong type and boundary": (
        [["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["B-ORG", "I-ORG", "O"]],
        [["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG"], ["B-ORG", "I-ORG", "O"]]),
    "I- after O": (
        [["O", "B-PER", "I-PER", "O"], ["B-LOC", "O"]],
        [["O", "I-PER", "I-PER", "O"], ["B-LOC", "O"]]),
    "I- after another type": (
        [["B-ORG", "B-LOC", "I-LOC"]],
        [["B-ORG", "I-LOC", "I-LOC"]]),
    "nothing predicted": (
        [["B-PER", "O"], ["O", "B-MISC", "I-MISC"]],
        [["O", "O"], ["O", "O", "O"]]),
}

SEQEVAL_MODE = {"default": {}, "strict": {"mode": "strict", "scheme": IOB2}}


@pytest.mark.parametrize("mode", ["default", "strict"])
@pytest.mark.parametrize("gold, predicted", CASES.values(), ids=CASES.keys())
def test_score_agrees_with_seqeval(gold, predicted, mode):
    options = dict(SEQEVAL_MODE[mode], zero_division=0)
    result = score(gold, predicted, mode=mode)
    assert result["overall"] == pytest.approx({
        "precision": precision_score(gold, predicted, **options),
        "recall": recall_score(gold, predicted, **options),
        "f1": f1_score(gold, predicted, **options),
        "accuracy": accuracy_score(gold, predicted),
    })
    report = classification_report(gold, predicted, output_dict=True, **options)
    types = sorted(k for k in report if not k.endswith(" avg"))
    assert list(result["per_entity"]) == types
    for entity in types:
        assert result["per_entity"][entity] == pytest.approx({
            "precision": report[entity]["precision"], "recall": report[entity]["recall"],
            "f1": report[entity]["f1-score"], "support": report[entity]["support"]})
    assert all(type(v) is float for v in result["overall"].values())
    assert all(type(r["support"]) is int for r in result["per_entity"].values())


@pytest.mark.parametrize("mode, overall, per", [
    # conlleval reads 'I-PER I-PER' after O as one PER entity: all correct.
    ("default", {"precision": 1.0, "recall": 1.0, "f1": 1.0}, 1.0),
    # Strict IOB2 needs a B- to start an entity: the prediction has no PER at all.
    ("strict", {"precision": 1.0, "recall": 0.5, "f1": 2 / 3}, 0.0),
])
def test_modes_differ_on_an_entity_starting_with_i(mode, overall, per):
    gold, predicted = CASES["I- after O"]
    result = score(gold, predicted, mode=mode)
    assert {k: result["overall"][k] for k in overall} == pytest.approx(overall)
    assert result["overall"]["accuracy"] == pytest.approx(5 / 6)
    assert result["per_entity"]["PER"]["f1"] == per
    assert result["per_entity"]["LOC"]["f1"] == 1.0


def test_hand_computed_scores():
    gold, predicted = CASES["wrong type and boundary"]
    # gold PER(0-3) LOC(4-6) ORG(0-2); predicted PER(0-2) ORG(4-6) ORG(0-2): one of three right.
    result = score(gold, predicted)
    assert result["overall"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3,
                                               "accuracy": 6 / 9})
    assert result["per_entity"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "ORG": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1},
        "PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
    }


def test_per_entity_support_counts_gold_entities():
    gold = [["B-PER", "I-PER", "O", "B-PER"], ["B-LOC", "O", "B-PER"], ["B-PER", "B-PER", "I-PER"]]
    predicted = [["B-ORG", "O", "O", "B-PER"], ["O", "O", "O"], ["B-MISC", "O", "O"]]
    per_entity = score(gold, predicted)["per_entity"]
    assert list(per_entity) == ["LOC", "MISC", "ORG", "PER"]
    assert {entity: r["support"] for entity, r in per_entity.items()} == {"LOC": 1, "MISC": 0, "ORG": 0,
                                                                          "PER": 5}


@pytest.mark.parametrize("gold, predicted", [
    ([["O", "B-PER"]], [["O", "B-PER"], ["O"]]),
    ([["O", "B-PER"], ["O"]], [["O", "B-PER"]]),
    ([["O", "B-PER"]], [["O"]]),
    ([["O"], ["B-PER", "O"]], [["O"], ["B-PER", "O", "O"]]),
])
def test_score_mismatched_lengths(gold, predicted):
    with pytest.raises(ValueError, match="gold and predicted tags must have one tag per word of every sentence"):
        score(gold, predicted)


@pytest.mark.parametrize("mode", ["lenient", "STRICT", ""])
def test_score_invalid_mode(mode):
    with pytest.raises(ValueError, match=f"mode must be one of default, strict, found '{mode}'"):
        score([["B-PER"]], [["B-PER"]], mode=mode)


def test_per_entity_frame():
    gold, predicted = CASES["missed and spurious"]
    per_entity = score(gold, predicted)["per_entity"]
    frame = per_entity_frame(per_entity)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["precision", "recall", "f1", "support"]
    assert frame.index.name == "entity"
    assert list(frame.index) == ["LOC", "MISC", "ORG", "PER"]
    assert frame.loc["PER"].to_dict() == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert frame.loc["LOC", "support"] == 1 and frame.loc["LOC", "recall"] == 0.0
    assert frame.loc["ORG", "support"] == 0 and frame.loc["ORG", "precision"] == 0.0


def test_per_entity_frame_of_nothing():
    frame = per_entity_frame({})
    assert frame.empty and list(frame.columns) == ["precision", "recall", "f1", "support"]


def error(kind, gold=None, predicted=None):
    return {"kind": kind, "gold": gold, "predicted": predicted}


SENTENCE_ERRORS = {
    "correct": (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"], []),
    "no entities": (["O", "O"], ["O", "O"], []),
    "I- after O read as conlleval does": (["B-PER", "I-PER"], ["I-PER", "I-PER"], []),
    "missed": (["O", "B-PER", "I-PER"], ["O", "O", "O"], [error("missed", gold=("PER", 1, 3))]),
    "spurious": (["O", "O", "O"], ["O", "B-LOC", "O"], [error("spurious", predicted=("LOC", 1, 2))]),
    "wrong type": (["B-LOC", "I-LOC", "O"], ["B-ORG", "I-ORG", "O"],
                   [error("wrong type", ("LOC", 0, 2), ("ORG", 0, 2))]),
    "wrong boundary, too short": (["B-PER", "I-PER", "O"], ["B-PER", "O", "O"],
                                  [error("wrong boundary", ("PER", 0, 2), ("PER", 0, 1))]),
    "wrong boundary, too long": (["O", "B-ORG", "O"], ["B-ORG", "I-ORG", "I-ORG"],
                                 [error("wrong boundary", ("ORG", 1, 2), ("ORG", 0, 3))]),
    "wrong type and boundary count as wrong type": (["B-PER", "I-PER"], ["B-ORG", "O"],
                                                    [error("wrong type", ("PER", 0, 2), ("ORG", 0, 1))]),
    "same type preferred over other types": (["B-PER", "I-PER", "I-PER"], ["B-ORG", "B-PER", "I-PER"],
                                             [error("wrong boundary", ("PER", 0, 3), ("PER", 1, 3))]),
    "one of each, in word order": (
        ["B-PER", "O", "B-LOC", "O", "O", "B-ORG", "I-ORG", "O", "B-MISC"],
        ["O", "O", "B-ORG", "O", "B-PER", "B-ORG", "O", "O", "B-MISC"],
        [error("missed", gold=("PER", 0, 1)),
         error("wrong type", ("LOC", 2, 3), ("ORG", 2, 3)),
         error("spurious", predicted=("PER", 4, 5)),
         error("wrong boundary", ("ORG", 5, 7), ("ORG", 5, 6))]),
}


@pytest.mark.parametrize("gold, predicted, expected", SENTENCE_ERRORS.values(), ids=SENTENCE_ERRORS.keys())
def test_sentence_errors(gold, predicted, expected):
    errors = sentence_errors(gold, predicted)
    assert errors == expected
    assert all(e["kind"] in ERROR_KINDS for e in errors)


def test_all_errors_numbers_the_sentences():
    gold = [["B-PER", "O"], ["O", "O"], ["B-LOC", "O"]]
    predicted = [["B-PER", "O"], ["B-ORG", "O"], ["O", "O"]]
    assert all_errors(gold, predicted) == [
        dict(error("spurious", predicted=("ORG", 0, 1)), sentence=1),
        dict(error("missed", gold=("LOC", 0, 1)), sentence=2),
    ]


# What an evaluation carries ------------------------------------------------------------------------

@pytest.fixture
def labelled_dir(tmp_path):
    from conftest import make_sentences, write_conll

    write_conll(tmp_path / "valid.txt", make_sentences(12, seed=2))
    return tmp_path


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_an_evaluation_carries_partial_matches_confusion_and_intervals(biased_model, labelled_dir,
                                                                       mode):
    import json

    from ner_core.data import load_data
    from ner_core.evaluation import evaluate
    from ner_core.inference import Recognizer

    result = evaluate(Recognizer(str(biased_model)), load_data(labelled_dir)["validation"], mode)
    assert json.loads(json.dumps(result)) == result  # JSON-able as it is: no tuples, no numpy
    # The biased model scores I-ORG first on every word; the most probable IOB2 sequence is
    # B-ORG I-ORG ...: one ORG over each sentence, in either mode.
    partial = result["partial"]["overall"]
    assert partial["partial"]["actual"] == 12
    assert partial["strict"]["f1"] == pytest.approx(result["overall"]["f1"])
    assert result["confusion"]["rows"][-1] == "spurious"
    assert result["intervals"]["overall"]["f1"] == pytest.approx(result["overall"]["f1"])
    assert set(result["intervals"]["per_entity"]) == set(result["per_entity"])


def test_the_evaluate_command_prints_and_writes_them(tiny_bert, labelled_dir, tmp_path, capsys):
    import json

    from ner_core import cli

    output = tmp_path / "scores.json"
    assert cli.main(["evaluate", "--model", str(tiny_bert), "--data", str(labelled_dir),
                     "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert set(result["partial"]["overall"]) == {"strict", "exact", "partial", "type"}
    assert result["confusion"]["columns"][-1] == "missed"
    assert result["intervals"]["resamples"] == 1000
    out = capsys.readouterr().out
    overall = result["intervals"]["overall"]
    lines = [line.split() for line in out.splitlines()]
    assert ["overall", *(f"{overall[k]:.4f}" for k in ("f1", "low", "high"))] in lines
    strict = result["partial"]["overall"]["strict"]
    assert ["strict", *(str(strict[k]) for k in ("correct", "incorrect", "partial", "missed",
                                                  "spurious")),
            *(f"{strict[k]:.4f}" for k in ("precision", "recall", "f1"))] in lines
    assert "F1 with 95% bootstrap intervals (1000 resamples of the sentences):" in out
    assert "confusion of types (rows gold, columns predicted):" in out
