"""Bootstrap intervals of F1 and the paired test of two models: counts that give seqeval's F1,
intervals around it, seeded results, and verdicts in words."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ner_core import significance
from ner_core.metrics import score
from ner_core.significance import (NO_DIFFERENCE, f1_intervals, intervals_frame, paired_test,
                                   paired_test_of, sentence_counts, verdict)
from test_metrics import CASES

TAGS = ["O", "O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC"]


def tagged(seed: int, sentences: int = 200) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(TAGS) for _ in range(rng.randint(3, 12))] for _ in range(sentences)]


def noisy(gold: list[list[str]], right: float, seed: int) -> list[list[str]]:
    """``gold`` with each tag kept with probability ``right``, else drawn at random."""
    rng = random.Random(seed)
    return [[t if rng.random() < right else rng.choice(TAGS) for t in s] for s in gold]


def test_sentence_counts_per_type():
    types, counts = sentence_counts([["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]],
                                    [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-ORG"]])
    assert types == ["LOC", "ORG", "PER"]
    # (true positives, predicted, gold) of LOC, ORG, PER in each sentence.
    assert counts.tolist() == [[[0, 0, 1], [0, 1, 0], [1, 1, 1]],
                               [[0, 0, 0], [1, 2, 1], [0, 0, 0]]]


@pytest.mark.parametrize("mode", ["default", "strict"])
@pytest.mark.parametrize("gold, predicted", [*CASES.values(), (tagged(1), noisy(tagged(1), 0.8, 2))],
                         ids=[*CASES, "generated"])
def test_the_point_f1_is_seqeval_f1(gold, predicted, mode):
    seqeval = score(gold, predicted, mode)
    intervals = f1_intervals(gold, predicted, mode, resamples=50)
    assert intervals["overall"]["f1"] == pytest.approx(seqeval["overall"]["f1"])
    assert list(intervals["per_entity"]) == list(seqeval["per_entity"])
    for kind, scores in intervals["per_entity"].items():
        assert scores["f1"] == pytest.approx(seqeval["per_entity"][kind]["f1"])


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_intervals_contain_the_point_f1(mode):
    gold = tagged(3)
    result = f1_intervals(gold, noisy(gold, 0.7, 4), mode)
    assert (result["level"], result["resamples"], result["seed"]) == (0.95, 1000, 42)
    for scores in [result["overall"], *result["per_entity"].values()]:
        assert 0 <= scores["low"] < scores["f1"] < scores["high"] <= 1
    overall = result["overall"]
    # 200 sentences of some 1.5 entities each: a few F1 points either way, not all of [0, 1].
    assert 0.02 < overall["high"] - overall["low"] < 0.3


def test_a_higher_level_gives_a_wider_interval():
    gold = tagged(5)
    predicted = noisy(gold, 0.7, 6)
    narrow = f1_intervals(gold, predicted, level=0.8)["overall"]
    wide = f1_intervals(gold, predicted, level=0.99)["overall"]
    assert wide["low"] < narrow["low"] < narrow["high"] < wide["high"]


def test_results_are_seeded():
    gold = tagged(7)
    predicted = noisy(gold, 0.7, 8)
    first = f1_intervals(gold, predicted, seed=1)
    assert f1_intervals(gold, predicted, seed=1) == first
    assert f1_intervals(gold, predicted, seed=2)["overall"] != first["overall"]
    pair = [gold, predicted, noisy(gold, 0.75, 9)]
    assert paired_test(*pair, seed=3) == paired_test(*pair, seed=3)


def test_drawing_resamples_in_chunks_changes_nothing(monkeypatch):
    gold = tagged(10)
    predicted = noisy(gold, 0.7, 11)
    whole = f1_intervals(gold, predicted, resamples=300)
    monkeypatch.setattr(significance, "DRAWS_AT_ONCE", 7 * len(gold))  # 7 resamples at a time
    assert f1_intervals(gold, predicted, resamples=300) == whole


def test_intervals_frame():
    gold = tagged(12)
    result = f1_intervals(gold, noisy(gold, 0.7, 13), resamples=100)
    frame = intervals_frame(result)
    assert list(frame.index) == ["LOC", "MISC", "ORG", "PER", "overall"]
    assert list(frame.columns) == ["f1", "low", "high"]
    assert frame.loc["overall"].to_dict() == result["overall"]


@pytest.mark.parametrize("arguments, message", [
    ({"resamples": 0}, "expected a whole number of resamples of at least 1, found 0"),
    ({"resamples": 2.5}, "expected a whole number of resamples of at least 1, found 2.5"),
    ({"level": 1.0}, "expected a confidence level between 0 and 1, found 1.0"),
    ({"level": 95}, "expected a confidence level between 0 and 1, found 95"),
])
def test_bad_settings_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        f1_intervals([["B-PER"]], [["B-PER"]], **arguments)
    with pytest.raises(ValueError, match=message):
        paired_test([["B-PER"]], [["B-PER"]], [["O"]], **arguments)


def test_no_sentences_are_refused():
    with pytest.raises(ValueError, match="expected at least one sentence to resample, found none"):
        f1_intervals([], [])


def test_mismatched_tags_are_refused():
    with pytest.raises(ValueError, match="gold and predicted tags must have one tag per word"):
        paired_test([["B-PER", "O"]], [["B-PER", "O"]], [["B-PER"]])


def test_counts_of_other_sentences_are_refused():
    with pytest.raises(ValueError, match=r"expected the counts of A and B on the same sentences, "
                                         r"found shapes \(3, 3\) and \(4, 3\)"):
        paired_test_of(np.ones((3, 3)), np.ones((4, 3)))


# The paired test -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["default", "strict"])
def test_identical_predictions_make_no_difference(mode):
    gold = tagged(14)
    predicted = noisy(gold, 0.7, 15)
    test = paired_test(gold, predicted, [list(s) for s in predicted], mode)
    assert test["verdict"] == NO_DIFFERENCE == "no difference"
    assert (test["difference"], test["low"], test["high"], test["p"]) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_a_much_better_model_wins_clearly(mode):
    gold = tagged(16)
    worse, better = noisy(gold, 0.5, 17), noisy(gold, 0.95, 18)
    test = paired_test(gold, worse, better, mode)
    f1 = {name: score(gold, tags, mode)["overall"]["f1"] for name, tags in
          [("a", worse), ("b", better)]}
    assert (test["f1_a"], test["f1_b"]) == pytest.approx((f1["a"], f1["b"]))
    assert test["difference"] == pytest.approx(f1["b"] - f1["a"])
    assert 0 < test["low"] < test["difference"] < test["high"]
    assert test["p"] == pytest.approx(2 / 1001)  # no resample puts A ahead
    assert test["verdict"] == (f"B is better by {100 * test['difference']:.2f} F1 points (95% "
                               f"interval {100 * test['low']:.2f} to {100 * test['high']:.2f}, "
                               "p = 0.002)")
    # The other way round, the better model is named and its lead is positive.
    swapped = paired_test(gold, better, worse, mode, names=("tuned", "base"))
    assert swapped["verdict"].startswith(f"tuned is better by {100 * test['difference']:.2f} F1 "
                                         f"points (95% interval {100 * test['low']:.2f} to ")


def test_a_small_difference_is_within_noise():
    gold = tagged(19)
    a = noisy(gold, 0.7, 20)
    b = [list(s) for s in a]
    b[0] = list(gold[0])  # one sentence of 200 tagged right
    test = paired_test(gold, a, b)
    assert test["low"] <= 0 <= test["high"] and test["p"] > 0.05
    assert test["verdict"].startswith(f"the difference of {100 * test['difference']:.2f} F1 points "
                                      "(B minus A) is within noise (95% interval ")


@pytest.mark.parametrize("test, expected", [
    ({"difference": 0.0231, "low": 0.011, "high": 0.0352, "p": 0.002},
     "B is better by 2.31 F1 points (95% interval 1.10 to 3.52, p = 0.002)"),
    ({"difference": -0.0231, "low": -0.0352, "high": -0.011, "p": 0.0123},
     "A is better by 2.31 F1 points (95% interval 1.10 to 3.52, p = 0.012)"),
    ({"difference": 0.004, "low": -0.0035, "high": 0.0115, "p": 0.29},
     "the difference of 0.40 F1 points (B minus A) is within noise (95% interval -0.35 to 1.15, "
     "p = 0.29)"),
    ({"difference": 0.0, "low": 0.0, "high": 0.0, "p": 1.0, "same_scores": True}, "no difference"),
])
def test_verdicts_in_words(test, expected):
    assert verdict({"same_scores": False, "level": 0.95, **test}) == expected


def test_counts_give_the_same_test_as_tags():
    gold = tagged(21)
    a, b = noisy(gold, 0.7, 22), noisy(gold, 0.8, 23)
    totals = [sentence_counts(gold, tags)[1].sum(axis=1) for tags in (a, b)]
    assert paired_test_of(*totals, names=("x", "y")) == paired_test(gold, a, b, names=("x", "y"))
