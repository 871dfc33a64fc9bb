"""Scores of predicted tags against gold tags, with seqeval, on words.

Pure functions on ``list[list[str]]`` (one list of IOB2 tags per sentence). ``mode="default"``
scores as conlleval does; ``mode="strict"`` scores IOB2 strictly (an entity must start with ``B-``).
"""

from __future__ import annotations

from seqeval.metrics import accuracy_score, classification_report
from seqeval.scheme import IOB2, Entities

from .errors import UserError
from .labels import spans

MODES = ("default", "strict")
ERROR_KINDS = ("missed", "spurious", "wrong type", "wrong boundary")


def _seqeval_mode(mode: str) -> dict:
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, found {mode!r}")
    return {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}


def check_tags(gold: list[list[str]], predicted: list[list[str]]) -> None:
    """``UserError`` unless ``predicted`` has one tag for each word of each sentence of ``gold``."""
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise UserError("gold and predicted tags must have one tag per word of every sentence")


def sentence_entities(sentences: list[list[str]], mode: str = "default") -> list[list[tuple]]:
    """The entities of each sentence as seqeval reads them in ``mode``: spans ``(type, first
    word, last word + 1)``, as ``score`` counts them.

    >>> sentence_entities([["I-PER", "I-PER", "O", "B-LOC"]], "default")
    [[('PER', 0, 2), ('LOC', 3, 4)]]
    >>> sentence_entities([["I-PER", "I-PER", "O", "B-LOC"]], "strict")
    [[('LOC', 3, 4)]]
    """
    if _seqeval_mode(mode):
        return [[(e.tag, e.start, e.end) for e in entities]
                for entities in Entities(sentences, IOB2).entities]
    return [spans(tags) for tags in sentences]


def score(gold: list[list[str]], predicted: list[list[str]], mode: str = "default") -> dict:
    """Overall micro scores and per-entity scores.

    >>> s = score([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])
    >>> s["overall"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'accuracy': 0.75}
    >>> s["per_entity"]["LOC"]
    {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'support': 1}
    """
    check_tags(gold, predicted)
    if not any(gold):
        raise UserError("expected at least one tagged word to score, found none")
    report = classification_report(gold, predicted, output_dict=True, zero_division=0,
                                   **_seqeval_mode(mode))
    micro = report.pop("micro avg")
    for key in ("macro avg", "weighted avg"):
        report.pop(key, None)
    overall = {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "accuracy": float(accuracy_score(gold, predicted)),
    }
    per_entity = {
        entity: {"precision": float(r["precision"]), "recall": float(r["recall"]),
                 "f1": float(r["f1-score"]), "support": int(r["support"])}
        for entity, r in sorted(report.items())
    }
    return {"overall": overall, "per_entity": per_entity}


def per_entity_frame(per_entity: dict):
    """The per-entity scores as a pandas DataFrame, one row per type (for tables and the CLI)."""
    import pandas as pd

    frame = pd.DataFrame.from_dict(per_entity, orient="index", columns=["precision", "recall", "f1", "support"])
    frame.index.name = "entity"
    return frame


def sentence_errors(gold: list[str], predicted: list[str]) -> list[dict]:
    """The entity errors of one sentence, each classed as one of ``ERROR_KINDS``.

    A gold entity that no prediction overlaps is *missed*; a prediction that overlaps no gold entity
    is *spurious*; a gold entity overlapped by a prediction of its type but with other bounds has a
    *wrong boundary*; one overlapped only by predictions of other types has a *wrong type*. Spans are
    ``(type, first word, last word + 1)``.

    >>> sentence_errors(["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "O", "B-ORG"])
    [{'kind': 'wrong boundary', 'gold': ('PER', 0, 2), 'predicted': ('PER', 0, 1)}, \
{'kind': 'wrong type', 'gold': ('LOC', 3, 4), 'predicted': ('ORG', 3, 4)}]
    """
    gold_spans, predicted_spans = set(spans(gold)), set(spans(predicted))
    exact = gold_spans & predicted_spans
    gold_left = sorted(gold_spans - exact, key=lambda s: s[1])
    predicted_left = sorted(predicted_spans - exact, key=lambda s: s[1])
    used = set()
    errors = []
    for g in gold_left:
        overlapping = [p for p in predicted_left if p[1] < g[2] and g[1] < p[2]]
        used.update(overlapping)
        same_type = [p for p in overlapping if p[0] == g[0]]
        if same_type:
            errors.append({"kind": "wrong boundary", "gold": g, "predicted": same_type[0]})
        elif overlapping:
            errors.append({"kind": "wrong type", "gold": g, "predicted": overlapping[0]})
        else:
            errors.append({"kind": "missed", "gold": g, "predicted": None})
    for p in predicted_left:
        if p not in used:
            errors.append({"kind": "spurious", "gold": None, "predicted": p})
    return sorted(errors, key=lambda e: (e["gold"] or e["predicted"])[1])


def all_errors(gold: list[list[str]], predicted: list[list[str]]) -> list[dict]:
    """``sentence_errors`` for every sentence, each error with its ``sentence`` index."""
    return [dict(error, sentence=i)
            for i, (g, p) in enumerate(zip(gold, predicted))
            for error in sentence_errors(g, p)]
