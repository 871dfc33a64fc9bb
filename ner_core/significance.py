"""How sure an F1 is: bootstrap intervals over sentences, and a paired test of two models.

Both resample whole sentences with replacement (the sentence is the unit the errors come in) and
score each resample from per-sentence counts (true positives, predicted and gold entities per
type), counted on the entities ``metrics.score`` reads in the same ``mode``: the F1 of the counts
of all sentences is seqeval's. Resamples are drawn with a seeded ``numpy`` generator, so a result
is the same on every run; all of them are scored at once, as matrix products.
"""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .metrics import check_tags, sentence_entities

RESAMPLES = 1000
SEED = 42
LEVEL = 0.95
# How many (resample, sentence) draws are held in memory at once: about 80 MB of them.
DRAWS_AT_ONCE = 5_000_000
NO_DIFFERENCE = "no difference"


def sentence_counts(gold: list[list[str]], predicted: list[list[str]],
                    mode: str = "default") -> tuple[list[str], np.ndarray]:
    """The entity types (gold and predicted, sorted) and an ``(sentences, types, 3)`` array of
    each sentence's true positives, predicted entities and gold entities of each type.

    >>> types, counts = sentence_counts([["B-PER", "O", "B-LOC"]], [["B-PER", "O", "B-ORG"]])
    >>> types, counts[0].tolist()
    (['LOC', 'ORG', 'PER'], [[0, 0, 1], [0, 1, 0], [1, 1, 1]])
    """
    check_tags(gold, predicted)
    gold_entities, predicted_entities = sentence_entities(gold, mode), sentence_entities(predicted, mode)
    types = sorted({e[0] for sentence in gold_entities + predicted_entities for e in sentence})
    index = {kind: i for i, kind in enumerate(types)}
    counts = np.zeros((len(gold), len(types), 3), dtype=np.int64)
    for s, (g, p) in enumerate(zip(gold_entities, predicted_entities)):
        for e in set(g) & set(p):
            counts[s, index[e[0]], 0] += 1
        for e in p:
            counts[s, index[e[0]], 1] += 1
        for e in g:
            counts[s, index[e[0]], 2] += 1
    return types, counts


def f1_of(totals: np.ndarray) -> np.ndarray:
    """F1 from ``(..., 3)`` summed counts: 2 TP / (predicted + gold), 0 where both are 0 (as
    seqeval's ``zero_division=0`` scores it)."""
    denominator = totals[..., 1] + totals[..., 2]
    return np.divide(2.0 * totals[..., 0], denominator, out=np.zeros(denominator.shape),
                     where=denominator > 0)


def _check(n: int, resamples: int, level: float) -> None:
    if n == 0:
        raise UserError("expected at least one sentence to resample, found none")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise UserError(f"expected a whole number of resamples of at least 1, found {resamples!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise UserError(f"expected a confidence level between 0 and 1, found {level!r}")


def resampled_sums(counts: list[np.ndarray], resamples: int = RESAMPLES,
                   seed: int = SEED) -> list[np.ndarray]:
    """For each ``(sentences, ...)`` array of ``counts``, its sums over ``resamples`` bootstrap
    resamples of the sentences, the same resamples for every array: ``(resamples, ...)``."""
    n = len(counts[0])
    flat = [c.reshape(n, -1).astype(np.float64) for c in counts]
    rng = np.random.default_rng(seed)
    chunk = max(1, DRAWS_AT_ONCE // n)
    sums: list[list[np.ndarray]] = [[] for _ in counts]
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        drawn = rng.integers(0, n, size=(size, n))
        # How often each resample drew each sentence, as one row per resample.
        offsets = (drawn + n * np.arange(size)[:, None]).ravel()
        weights = np.bincount(offsets, minlength=size * n).reshape(size, n).astype(np.float64)
        for kept, c in zip(sums, flat):
            kept.append(weights @ c)
    return [np.concatenate(kept).reshape(resamples, *c.shape[1:]) for kept, c in zip(sums, counts)]


def _interval(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return low, high


def intervals_of(types: list[str], counts: np.ndarray, resamples: int = RESAMPLES,
                 seed: int = SEED, level: float = LEVEL) -> dict:
    """``f1_intervals`` of the per-sentence counts of ``sentence_counts``."""
    _check(len(counts), resamples, level)
    (sums,) = resampled_sums([counts], resamples, seed)
    point = f1_of(counts.sum(axis=0))
    low, high = _interval(f1_of(sums), level)
    overall = f1_of(counts.sum(axis=(0, 1)))
    overall_low, overall_high = _interval(f1_of(sums.sum(axis=1)), level)
    return {
        "level": float(level), "resamples": resamples, "seed": seed,
        "overall": {"f1": float(overall), "low": float(overall_low), "high": float(overall_high)},
        "per_entity": {kind: {"f1": float(point[i]), "low": float(low[i]), "high": float(high[i])}
                       for i, kind in enumerate(types)},
    }


def f1_intervals(gold: list[list[str]], predicted: list[list[str]], mode: str = "default",
                 resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> dict:
    """The F1 overall and of each type, each with a percentile bootstrap interval over sentences:
    ``{"level", "resamples", "seed", "overall": {"f1", "low", "high"}, "per_entity": {type:
    {"f1", "low", "high"}}}``.

    >>> gold = [["B-PER", "O"], ["B-LOC", "O"], ["O", "B-PER"], ["B-LOC", "I-LOC"]]
    >>> predicted = [["B-PER", "O"], ["B-PER", "O"], ["O", "B-PER"], ["B-LOC", "I-LOC"]]
    >>> result = f1_intervals(gold, predicted)
    >>> result["overall"]["f1"], result["overall"]["low"] <= 0.75 <= result["overall"]["high"]
    (0.75, True)
    """
    check_tags(gold, predicted)
    types, counts = sentence_counts(gold, predicted, mode)
    return intervals_of(types, counts, resamples, seed, level)


def paired_test_of(totals_a: np.ndarray, totals_b: np.ndarray, resamples: int = RESAMPLES,
                   seed: int = SEED, level: float = LEVEL, names: tuple[str, str] = ("A", "B")) -> dict:
    """``paired_test`` of each sentence's ``(true positives, predicted, gold)`` summed over the
    types (``sentence_counts(...)[1].sum(axis=1)``) of A and of B on the same sentences."""
    if totals_a.shape != totals_b.shape or totals_a.shape[1:] != (3,):
        raise UserError(f"expected the counts of A and B on the same sentences, found shapes "
                        f"{totals_a.shape} and {totals_b.shape}")
    _check(len(totals_a), resamples, level)
    f1_a, f1_b = f1_of(totals_a.sum(axis=0)), f1_of(totals_b.sum(axis=0))
    sums_a, sums_b = resampled_sums([totals_a, totals_b], resamples, seed)
    differences = f1_of(sums_b) - f1_of(sums_a)
    low, high = _interval(differences, level)
    # Two-sided: twice the share of resamples on the far side of zero, so p < 1 - level where
    # the interval leaves zero out; one is added to each count so that p is never 0.
    far = min(np.count_nonzero(differences <= 0), np.count_nonzero(differences >= 0))
    p = min(1.0, 2 * (far + 1) / (resamples + 1))
    result = {"f1_a": float(f1_a), "f1_b": float(f1_b), "difference": float(f1_b - f1_a),
              "low": float(low), "high": float(high), "p": float(p), "level": float(level),
              "resamples": resamples, "seed": seed,
              "same_scores": bool(np.array_equal(totals_a, totals_b))}
    return {**result, "verdict": verdict(result, names)}


def paired_test(gold: list[list[str]], predicted_a: list[list[str]], predicted_b: list[list[str]],
                mode: str = "default", resamples: int = RESAMPLES, seed: int = SEED,
                level: float = LEVEL, names: tuple[str, str] = ("A", "B")) -> dict:
    """A paired bootstrap over the same sentences of the F1 difference B minus A: ``f1_a``,
    ``f1_b``, ``difference``, its interval ``low`` to ``high``, a two-sided ``p`` and a
    ``verdict`` in words (see ``verdict``).

    >>> gold = [["B-PER", "O"], ["B-LOC", "O"]] * 20
    >>> paired_test(gold, gold, gold)["verdict"]
    'no difference'
    >>> paired_test(gold, [["O", "O"]] * 40, gold)["verdict"]
    'B is better by 100.00 F1 points (95% interval 100.00 to 100.00, p = 0.002)'
    """
    totals_a = sentence_counts(gold, predicted_a, mode)[1].sum(axis=1)
    totals_b = sentence_counts(gold, predicted_b, mode)[1].sum(axis=1)
    return paired_test_of(totals_a, totals_b, resamples, seed, level, names)


def verdict(test: dict, names: tuple[str, str] = ("A", "B")) -> str:
    """The outcome of a paired test in words: ``"no difference"`` when A and B score alike on
    every sentence (as when they tag every sentence alike), else which model is better and by
    how much when the interval leaves zero out, else that the difference is within noise."""
    if test["same_scores"]:
        return NO_DIFFERENCE
    level = f"{100 * test['level']:g}%"
    d, low, high, p = (100 * test["difference"], 100 * test["low"], 100 * test["high"], test["p"])
    if low > 0 or high < 0:
        # Said of the better model: its lead and the interval of its lead, both positive.
        better, d, low, high = (names[1], d, low, high) if low > 0 else (names[0], -d, -high, -low)
        return (f"{better} is better by {d:.2f} F1 points ({level} interval {low:.2f} to "
                f"{high:.2f}, p = {p:.2g})")
    return (f"the difference of {d:.2f} F1 points ({names[1]} minus {names[0]}) is within noise "
            f"({level} interval {low:.2f} to {high:.2f}, p = {p:.2g})")


def intervals_frame(intervals: dict):
    """The ``f1_intervals`` as a pandas DataFrame: one row per type, then ``overall``."""
    import pandas as pd

    rows = {**intervals["per_entity"], "overall": intervals["overall"]}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["f1", "low", "high"])
    frame.index.name = "entity"
    return frame
