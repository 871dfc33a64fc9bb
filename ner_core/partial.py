"""Partial-match scores (the four schemes of SemEval-2013 task 9.1) and which types are confused.

Pure functions on ``list[list[str]]`` (one list of IOB2 tags per sentence); entities are read as
``metrics.score`` reads them in the same ``mode``. A scheme judges each predicted entity, in word
order, against the gold entities it overlaps that no earlier prediction was paired with:

- ``strict``: the same bounds and type are *correct*; any other overlap is *incorrect*;
- ``exact``: the same bounds, whatever the type, are *correct*; any other overlap is *incorrect*;
- ``partial``: the same bounds are *correct*; any other overlap is *partial* (half credit);
- ``type``: an overlap of the same type is *correct* (the closest bounds win); one of another type
  only is *incorrect*.

A prediction that overlaps no unpaired gold entity is *spurious*; a gold entity left unpaired is
*missed*. So each gold entity and each prediction counts once: ``possible`` is the number of gold
entities and ``actual`` the number of predictions. These are nervaluate's rules (1.x), which it
takes from the task's definitions; ``per_entity`` applies them to the entities of one type alone.
"""

from __future__ import annotations

from .metrics import check_tags, sentence_entities

SCHEMES = ("strict", "exact", "partial", "type")
OUTCOMES = ("correct", "incorrect", "partial", "missed", "spurious")
SPURIOUS, MISSED = "spurious", "missed"  # the confusion table's extra row and column


def _overlap(a: tuple, b: tuple) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def _judge(scheme: str, predicted: tuple, candidates: list[tuple[int, tuple]]) -> tuple:
    """The index of the gold entity among ``candidates`` (index, span) that ``predicted`` is
    paired with under ``scheme``, and the outcome; ``(None, "spurious")`` when none is."""
    if not candidates:
        return None, SPURIOUS
    first = candidates[0][0]
    if scheme == "type":
        same_type = [(abs(g[1] - predicted[1]) + abs(g[2] - predicted[2]), i)
                     for i, g in candidates if g[0] == predicted[0]]
        return (min(same_type)[1], "correct") if same_type else (first, "incorrect")
    # Spans of one sentence do not overlap each other: gold entities with the bounds of the
    # prediction are the only one it overlaps.
    for i, g in candidates:
        if g[1:] == predicted[1:]:
            right = scheme != "strict" or g[0] == predicted[0]
            return i, "correct" if right else "incorrect"
    return first, "partial" if scheme == "partial" else "incorrect"


def match(gold: list[tuple], predicted: list[tuple], scheme: str) -> list[tuple]:
    """The entities of one sentence paired under ``scheme``: ``(gold, predicted, outcome)``
    triples, ``None`` on the side a missed or spurious entity lacks.

    >>> match([("PER", 0, 2), ("LOC", 3, 4)], [("PER", 0, 1)], "partial")
    [(('PER', 0, 2), ('PER', 0, 1), 'partial'), (('LOC', 3, 4), None, 'missed')]
    """
    paired: set[int] = set()
    pairs = []
    for p in predicted:
        candidates = [(i, g) for i, g in enumerate(gold) if i not in paired and _overlap(g, p)]
        i, outcome = _judge(scheme, p, candidates)
        if i is not None:
            paired.add(i)
        pairs.append((None if i is None else gold[i], p, outcome))
    return pairs + [(g, None, MISSED) for i, g in enumerate(gold) if i not in paired]


def _scores(counts: dict) -> dict:
    """Counts with ``possible``, ``actual``, precision, recall and F1 (a partial is half right)."""
    possible = sum(counts[k] for k in ("correct", "incorrect", "partial", "missed"))
    actual = sum(counts[k] for k in ("correct", "incorrect", "partial", "spurious"))
    credit = counts["correct"] + 0.5 * counts["partial"]
    precision = credit / actual if actual else 0.0
    recall = credit / possible if possible else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {**counts, "possible": possible, "actual": actual, "precision": precision,
            "recall": recall, "f1": f1}


def partial_scores(gold: list[list[str]], predicted: list[list[str]],
                   mode: str = "default") -> dict:
    """The four schemes' counts and scores, overall and per entity type:
    ``{"overall": {scheme: scores}, "per_entity": {type: {scheme: scores}}}``, each ``scores``
    holding ``OUTCOMES``, ``possible``, ``actual``, ``precision``, ``recall`` and ``f1``.

    >>> result = partial_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-ORG"]])
    >>> {scheme: scores["f1"] for scheme, scores in result["overall"].items()}
    {'strict': 0.0, 'exact': 0.5, 'partial': 0.75, 'type': 0.5}
    >>> result["per_entity"]["PER"]["type"]["correct"], result["per_entity"]["LOC"]["exact"]["missed"]
    (1, 1)
    """
    check_tags(gold, predicted)
    gold_entities, predicted_entities = sentence_entities(gold, mode), sentence_entities(predicted, mode)
    types = sorted({e[0] for sentence in gold_entities + predicted_entities for e in sentence})
    overall = {scheme: dict.fromkeys(OUTCOMES, 0) for scheme in SCHEMES}
    per_entity = {t: {scheme: dict.fromkeys(OUTCOMES, 0) for scheme in SCHEMES} for t in types}
    for g, p in zip(gold_entities, predicted_entities):
        for scheme in SCHEMES:
            for _, _, outcome in match(g, p, scheme):
                overall[scheme][outcome] += 1
            for kind in {e[0] for e in g + p}:
                of_kind = match([e for e in g if e[0] == kind], [e for e in p if e[0] == kind], scheme)
                for _, _, outcome in of_kind:
                    per_entity[kind][scheme][outcome] += 1
    return {"overall": {scheme: _scores(c) for scheme, c in overall.items()},
            "per_entity": {kind: {scheme: _scores(c) for scheme, c in schemes.items()}
                           for kind, schemes in per_entity.items()}}


def confusion(gold: list[list[str]], predicted: list[list[str]], mode: str = "default") -> dict:
    """Gold types against predicted types, over the entity pairs of the ``type`` scheme.

    The result is ``{"rows": [types..., "spurious"], "columns": [types..., "missed"],
    "counts": {row: {column: n}}}`` with the same types (gold and predicted, sorted) on both
    sides, so a pair of the same type, exact or overlapping, is on the diagonal. A gold entity
    paired with no prediction counts in its row's ``missed`` column, a prediction paired with no
    gold entity in the ``spurious`` row under its type; the corner ``spurious``/``missed`` is 0.
    A row adds up to the gold entities of its type, a column to the predictions of its type.

    >>> table = confusion([["B-PER", "I-PER", "O", "B-LOC", "O"]],
    ...                   [["B-PER", "O", "O", "B-ORG", "B-LOC"]])
    >>> table["rows"], table["columns"]
    (['LOC', 'ORG', 'PER', 'spurious'], ['LOC', 'ORG', 'PER', 'missed'])
    >>> table["counts"]["LOC"], table["counts"]["spurious"]["LOC"]
    ({'LOC': 0, 'ORG': 1, 'PER': 0, 'missed': 0}, 1)
    """
    check_tags(gold, predicted)
    gold_entities, predicted_entities = sentence_entities(gold, mode), sentence_entities(predicted, mode)
    types = sorted({e[0] for sentence in gold_entities + predicted_entities for e in sentence})
    rows, columns = [*types, SPURIOUS], [*types, MISSED]
    counts = {row: dict.fromkeys(columns, 0) for row in rows}
    for g, p in zip(gold_entities, predicted_entities):
        for gold_entity, predicted_entity, _ in match(g, p, "type"):
            row = SPURIOUS if gold_entity is None else gold_entity[0]
            counts[row][MISSED if predicted_entity is None else predicted_entity[0]] += 1
    return {"rows": rows, "columns": columns, "counts": counts}


def partial_frame(schemes: dict):
    """The schemes of ``partial_scores`` (its ``overall``, or one type's) as a pandas DataFrame,
    one row per scheme (for tables and the CLI)."""
    import pandas as pd

    columns = [*OUTCOMES, "precision", "recall", "f1"]
    frame = pd.DataFrame([[schemes[s][c] for c in columns] for s in SCHEMES], index=list(SCHEMES),
                         columns=columns)
    frame.index.name = "scheme"
    return frame


def confusion_frame(table: dict):
    """A ``confusion`` table as a pandas DataFrame: gold types down, predicted types across."""
    import pandas as pd

    frame = pd.DataFrame([[table["counts"][r][c] for c in table["columns"]] for r in table["rows"]],
                         index=table["rows"], columns=table["columns"])
    frame.index.name = "gold \\ predicted"
    return frame
