"""The SemEval-2013 partial-match schemes and the confusion of types, on hand-made cases and against
nervaluate's counts."""

from __future__ import annotations

import random

import pytest
from nervaluate import Evaluator

from ner_core.metrics import score, sentence_entities
from ner_core.partial import (MISSED, OUTCOMES, SCHEMES, SPURIOUS, confusion, confusion_frame,
                              match, partial_frame, partial_scores)


def outcomes(correct=0, incorrect=0, partial=0, missed=0, spurious=0) -> tuple:
    return correct, incorrect, partial, missed, spurious


# One sentence each: gold tags, predicted tags, and for each scheme (strict, exact, partial, type)
# the counts (correct, incorrect, partial, missed, spurious).
SCENARIOS = {
    "exact match": (
        ["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"],
        [outcomes(correct=1)] * 4),
    "spurious": (
        ["O", "O"], ["O", "B-LOC"],
        [outcomes(spurious=1)] * 4),
    "missed": (
        ["B-PER", "O"], ["O", "O"],
        [outcomes(missed=1)] * 4),
    "same bounds, wrong type": (
        ["B-LOC", "I-LOC"], ["B-ORG", "I-ORG"],
        [outcomes(incorrect=1), outcomes(correct=1), outcomes(correct=1), outcomes(incorrect=1)]),
    "overlap, right type": (
        ["B-PER", "I-PER", "O"], ["B-PER", "O", "O"],
        [outcomes(incorrect=1), outcomes(incorrect=1), outcomes(partial=1), outcomes(correct=1)]),
    "overlap, wrong type": (
        ["B-PER", "I-PER", "O"], ["O", "B-ORG", "I-ORG"],
        [outcomes(incorrect=1), outcomes(incorrect=1), outcomes(partial=1), outcomes(incorrect=1)]),
    "one prediction over two gold entities: the first is paired, the other missed": (
        ["B-PER", "B-PER"], ["B-PER", "I-PER"],
        [outcomes(incorrect=1, missed=1), outcomes(incorrect=1, missed=1),
         outcomes(partial=1, missed=1), outcomes(correct=1, missed=1)]),
    "two predictions in one gold entity: the second is spurious": (
        ["B-PER", "I-PER", "I-PER"], ["B-PER", "O", "B-PER"],
        [outcomes(incorrect=1, spurious=1), outcomes(incorrect=1, spurious=1),
         outcomes(partial=1, spurious=1), outcomes(correct=1, spurious=1)]),
    "the type scheme pairs a prediction with an entity of its type first": (
        ["B-ORG", "B-PER", "I-PER"], ["B-PER", "I-PER", "I-PER"],
        [outcomes(incorrect=1, missed=1), outcomes(incorrect=1, missed=1),
         outcomes(partial=1, missed=1), outcomes(correct=1, missed=1)]),
    "the type scheme pairs the closest bounds of its type": (
        ["B-PER", "B-PER", "I-PER", "O"], ["B-PER", "I-PER", "I-PER", "I-PER"],
        [outcomes(incorrect=1, missed=1), outcomes(incorrect=1, missed=1),
         outcomes(partial=1, missed=1), outcomes(correct=1, missed=1)]),
    "one of each": (
        ["B-PER", "O", "B-LOC", "O", "O", "B-ORG", "I-ORG", "O", "B-MISC"],
        ["O", "O", "B-ORG", "O", "B-PER", "B-ORG", "O", "O", "B-MISC"],
        [outcomes(1, 2, 0, 1, 1), outcomes(2, 1, 0, 1, 1), outcomes(2, 0, 1, 1, 1),
         outcomes(2, 1, 0, 1, 1)]),
}


@pytest.mark.parametrize("gold, predicted, expected", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_each_scheme_counts_the_scenarios(gold, predicted, expected):
    overall = partial_scores([gold], [predicted])["overall"]
    assert list(overall) == list(SCHEMES)
    assert [tuple(overall[scheme][k] for k in OUTCOMES) for scheme in SCHEMES] == expected


@pytest.mark.parametrize("gold, predicted, expected", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_nervaluate_counts_the_scenarios_alike(gold, predicted, expected):
    theirs = nervaluate_counts([gold], [predicted])
    assert [theirs["overall"][scheme] for scheme in SCHEMES] == expected


def nervaluate_counts(gold, predicted) -> dict:
    """nervaluate's counts of the entities ``sentence_entities`` reads (its ends are inclusive)."""
    def entities(sentences):
        return [[{"label": kind, "start": first, "end": end - 1} for kind, first, end in sentence]
                for sentence in sentence_entities(sentences)]

    types = sorted({e[0] for s in sentence_entities(gold + predicted) for e in s})
    found = Evaluator(entities(gold), entities(predicted), tags=types, loader="dict").evaluate()
    names = {"strict": "strict", "exact": "exact", "partial": "partial", "type": "ent_type"}

    def counts(results):
        return {scheme: tuple(getattr(results[name], k) for k in OUTCOMES)
                for scheme, name in names.items()}

    return {"overall": counts(found["overall"]),
            "per_entity": {kind: counts(results) for kind, results in found["entities"].items()}}


def random_tags(rng: random.Random, sentences: int) -> tuple[list, list]:
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 10))] for _ in range(sentences)]
    # Mostly right, so that predictions overlap gold entities in every way.
    predicted = [[t if rng.random() < 0.6 else rng.choice(tags) for t in s] for s in gold]
    return gold, predicted


@pytest.mark.parametrize("seed", range(8))
def test_counts_and_scores_agree_with_nervaluate(seed):
    gold, predicted = random_tags(random.Random(seed), 40)
    ours = partial_scores(gold, predicted)
    theirs = nervaluate_counts(gold, predicted)
    assert {s: tuple(ours["overall"][s][k] for k in OUTCOMES) for s in SCHEMES} == theirs["overall"]
    assert set(ours["per_entity"]) == set(theirs["per_entity"])
    for kind, schemes in ours["per_entity"].items():
        assert {s: tuple(schemes[s][k] for k in OUTCOMES) for s in SCHEMES} \
            == theirs["per_entity"][kind]


@pytest.mark.parametrize("seed", range(4))
def test_each_entity_counts_once(seed):
    gold, predicted = random_tags(random.Random(seed), 30)
    n_gold = sum(map(len, sentence_entities(gold)))
    n_predicted = sum(map(len, sentence_entities(predicted)))
    result = partial_scores(gold, predicted)
    for scheme in SCHEMES:
        assert (result["overall"][scheme]["possible"], result["overall"][scheme]["actual"]) \
            == (n_gold, n_predicted)
    for kind, schemes in result["per_entity"].items():
        of_kind = sum(e[0] == kind for s in sentence_entities(gold) for e in s)
        assert schemes["partial"]["possible"] == of_kind


@pytest.mark.parametrize("mode", ["default", "strict"])
@pytest.mark.parametrize("seed", range(3))
def test_the_strict_scheme_is_seqeval_f1(mode, seed):
    gold, predicted = random_tags(random.Random(seed), 30)
    seqeval = score(gold, predicted, mode)
    result = partial_scores(gold, predicted, mode)
    assert result["overall"]["strict"]["f1"] == pytest.approx(seqeval["overall"]["f1"])
    for kind, schemes in result["per_entity"].items():
        assert schemes["strict"]["f1"] == pytest.approx(seqeval["per_entity"][kind]["f1"])


def test_scores_give_half_credit_to_a_partial_match():
    # PER overlaps (partial), LOC has its bounds (correct), ORG missed, MISC spurious.
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "O"]]
    predicted = [["B-PER", "O", "O", "B-ORG", "O", "O", "B-MISC"]]
    scores = partial_scores(gold, predicted)["overall"]["partial"]
    assert scores == {"correct": 1, "incorrect": 0, "partial": 1, "missed": 1, "spurious": 1,
                      "possible": 3, "actual": 3, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    strict = partial_scores(gold, predicted)["overall"]["strict"]
    assert (strict["precision"], strict["recall"], strict["f1"]) == (0.0, 0.0, 0.0)


def test_per_entity_schemes_see_entities_of_one_type():
    # A LOC predicted as ORG with its bounds: right under 'exact' overall, but per type the LOC is
    # missed and the ORG spurious.
    result = partial_scores([["B-LOC", "I-LOC"]], [["B-ORG", "I-ORG"]])
    assert result["overall"]["exact"]["correct"] == 1
    assert result["per_entity"]["LOC"]["exact"]["missed"] == 1
    assert result["per_entity"]["ORG"]["exact"]["spurious"] == 1
    assert list(result["per_entity"]) == ["LOC", "ORG"]


@pytest.mark.parametrize("mode, expected", [
    ("default", outcomes(correct=1)),  # conlleval reads 'I-PER I-PER' as one entity
    ("strict", outcomes(missed=1)),  # strict IOB2 reads no entity in it
])
def test_entities_are_read_as_the_mode_reads_them(mode, expected):
    scores = partial_scores([["B-PER", "I-PER"]], [["I-PER", "I-PER"]], mode)["overall"]["strict"]
    assert tuple(scores[k] for k in OUTCOMES) == expected


def test_no_entities_score_zero():
    result = partial_scores([["O", "O"]], [["O", "O"]])
    assert result["per_entity"] == {}
    assert all(s["f1"] == 0.0 and s["possible"] == 0 for s in result["overall"].values())


@pytest.mark.parametrize("function", [partial_scores, confusion])
@pytest.mark.parametrize("gold, predicted", [
    ([["O", "B-PER"]], [["O", "B-PER"], ["O"]]),
    ([["O"], ["B-PER", "O"]], [["O"], ["B-PER", "O", "O"]]),
])
def test_mismatched_lengths_are_refused(function, gold, predicted):
    with pytest.raises(ValueError, match="gold and predicted tags must have one tag per word"):
        function(gold, predicted)


@pytest.mark.parametrize("function", [partial_scores, confusion])
def test_an_unknown_mode_is_refused(function):
    with pytest.raises(ValueError, match="mode must be one of default, strict, found 'lenient'"):
        function([["B-PER"]], [["B-PER"]], "lenient")


def test_match_pairs_in_word_order_and_lists_the_missed_last():
    gold = [("PER", 0, 2), ("LOC", 3, 4), ("ORG", 6, 7)]
    predicted = [("ORG", 3, 4), ("MISC", 5, 6)]
    assert match(gold, predicted, "strict") == [
        (("LOC", 3, 4), ("ORG", 3, 4), "incorrect"), (None, ("MISC", 5, 6), "spurious"),
        (("PER", 0, 2), None, "missed"), (("ORG", 6, 7), None, "missed")]


def test_the_type_scheme_pairs_the_closest_bounds_and_the_others_the_first_overlap():
    gold, predicted = [("PER", 0, 1), ("PER", 1, 3)], [("PER", 0, 4)]
    assert match(gold, predicted, "type")[0] == (("PER", 1, 3), ("PER", 0, 4), "correct")
    assert match(gold, predicted, "partial")[0] == (("PER", 0, 1), ("PER", 0, 4), "partial")


# Confusion of types --------------------------------------------------------------------------------

def cells(table: dict) -> dict:
    """The table's cells that are not 0, as ``{(row, column): n}``."""
    return {(row, column): n for row, columns in table["counts"].items()
            for column, n in columns.items() if n}


CONFUSIONS = {
    "all right": ([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]],
                  {("LOC", "LOC"): 1, ("PER", "PER"): 1}),
    "a wrong boundary stays on the diagonal": (
        [["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]], {("PER", "PER"): 1}),
    "wrong types": ([["B-LOC", "O", "B-LOC", "B-ORG"]], [["B-ORG", "O", "B-ORG", "B-LOC"]],
                    {("LOC", "ORG"): 2, ("ORG", "LOC"): 1}),
    "missed and spurious": ([["B-PER", "O", "O"], ["O", "O"]], [["O", "O", "B-MISC"], ["B-PER", "O"]],
                            {("PER", MISSED): 1, (SPURIOUS, "MISC"): 1, (SPURIOUS, "PER"): 1}),
    "a second prediction in one entity is spurious": (
        [["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "O", "B-LOC"]],
        {("ORG", "ORG"): 1, (SPURIOUS, "LOC"): 1}),
    "a prediction pairs with an entity of its type first": (
        [["B-LOC", "B-PER", "I-PER"]], [["B-PER", "I-PER", "I-PER"]],
        {("PER", "PER"): 1, ("LOC", MISSED): 1}),
}


@pytest.mark.parametrize("gold, predicted, expected", CONFUSIONS.values(), ids=CONFUSIONS.keys())
def test_confusion_counts(gold, predicted, expected):
    assert cells(confusion(gold, predicted)) == expected


@pytest.mark.parametrize("seed", range(4))
def test_confusion_rows_add_up_to_gold_and_columns_to_predictions(seed):
    gold, predicted = random_tags(random.Random(seed), 30)
    table = confusion(gold, predicted)
    types = sorted({e[0] for s in sentence_entities(gold + predicted) for e in s})
    assert table["rows"] == [*types, SPURIOUS] and table["columns"] == [*types, MISSED]
    for kind in types:
        assert sum(table["counts"][kind].values()) \
            == sum(e[0] == kind for s in sentence_entities(gold) for e in s)
        assert sum(table["counts"][row][kind] for row in table["rows"]) \
            == sum(e[0] == kind for s in sentence_entities(predicted) for e in s)
    assert table["counts"][SPURIOUS][MISSED] == 0
    # On the diagonal: the pairs of the type scheme that it counts as correct.
    assert sum(table["counts"][kind][kind] for kind in types) \
        == partial_scores(gold, predicted)["overall"]["type"]["correct"]


def test_frames_for_tables():
    gold, predicted = CONFUSIONS["wrong types"][:2]
    schemes = partial_frame(partial_scores(gold, predicted)["overall"])
    assert list(schemes.index) == list(SCHEMES) and schemes.index.name == "scheme"
    assert list(schemes.columns) == [*OUTCOMES, "precision", "recall", "f1"]
    assert schemes.loc["exact", "correct"] == 3 and schemes.loc["strict", "incorrect"] == 3
    frame = confusion_frame(confusion(gold, predicted))
    assert list(frame.index) == ["LOC", "ORG", SPURIOUS]
    assert list(frame.columns) == ["LOC", "ORG", MISSED]
    assert frame.loc["LOC", "ORG"] == 2 and frame.loc["ORG", "LOC"] == 1
