"""How the tabs show entities and scores: one colour per type, highlight values (and the tokens
of the editable highlight that corrections are made in), score tables."""

from __future__ import annotations

import re

import pandas as pd

from ner_core.errors import UserError

# One stable colour per type; types beyond CoNLL's four take the next palette colour by name.
COLORS = {"PER": "#f59e0b", "ORG": "#3b82f6", "LOC": "#10b981", "MISC": "#a855f7"}
PALETTE = ["#ef4444", "#14b8a6", "#eab308", "#ec4899", "#6366f1", "#84cc16", "#f97316", "#06b6d4"]
_LINES = re.compile(r"[^\n]*\n|[^\n]+")  # the frontend breaks lines at '\n' only


def color_map(types: list[str]) -> dict[str, str]:
    """The colour of each type: CoNLL's four fixed, the others from the palette in name order.

    >>> color_map(["ORG", "DATE"])["DATE"] == PALETTE[0]
    True
    """
    others = sorted(t for t in types if t not in COLORS)
    return {**COLORS, **{t: PALETTE[i % len(PALETTE)] for i, t in enumerate(others)}}


def minimum_score(value) -> float:
    """The minimum score a request sent: a number from 0 to 1. Every event can be called with
    anything, not only what the page's slider sends.

    >>> minimum_score(0.5)
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UserError(f"expected a minimum score from 0 to 1, found {value!r:.40}")
    return float(value)


def highlighted(text: str, entities: list[dict]) -> dict:
    """The value of a ``gr.HighlightedText`` marking ``entities`` in ``text``."""
    return {"text": text, "entities": [{"entity": e["label"], "start": e["start"], "end": e["end"]}
                                       for e in entities]}


def tokens(text: str, entities: list[dict]) -> list[tuple[str, str | None]]:
    """The highlight's ``(piece, type)`` tokens, cut after each newline: the frontend measures a
    selection within one line of a token, so a token must not hold more than one.

    >>> tokens("Anna\\nleft", [{"start": 0, "end": 4, "label": "PER"}])
    [('Anna', 'PER'), ('\\n', None), ('left', None)]
    """
    pieces, position = [], 0
    for entity in sorted(entities, key=lambda e: e["start"]):
        pieces += [(text[position:entity["start"]], None),
                   (text[entity["start"]:entity["end"]], entity["label"])]
        position = entity["end"]
    pieces.append((text[position:], None))
    return [(line, kind) for piece, kind in pieces for line in _LINES.findall(piece)]


def pairs(value: list[dict]) -> list[tuple[str, str | None]]:
    """The highlight's value, ``{"token", "class_or_confidence"}`` objects, as ``(piece, type)``."""
    return [(item["token"], item["class_or_confidence"]) for item in value]


def entities_of(value: list[tuple[str, str | None]], text: str) -> list[dict] | None:
    """Entities from ``(piece, type)`` tokens; ``None`` when the pieces are not ``text``.

    Pieces of one type that ``tokens`` cut at a newline are joined again.

    >>> entities_of([("Anna", "PER"), (" left", None)], "Anna left")
    [{'start': 0, 'end': 4, 'label': 'PER'}]
    """
    if "".join(piece for piece, _ in value) != text:
        return None
    found, position, previous = [], 0, ""
    for piece, kind in value:
        if kind is not None and found and found[-1]["end"] == position \
                and previous.endswith("\n") and found[-1]["label"] == str(kind):
            found[-1]["end"] += len(piece)
        elif kind is not None:
            found.append({"start": position, "end": position + len(piece), "label": str(kind)})
        position += len(piece)
        previous = piece
    return found


def per_entity_table(result: dict) -> pd.DataFrame:
    """Precision, recall, F1 and support of each type of an evaluation's ``per_entity``."""
    return pd.DataFrame([[entity, round(s["precision"], 4), round(s["recall"], 4), round(s["f1"], 4),
                          s["support"]] for entity, s in result["per_entity"].items()],
                        columns=["entity", "precision", "recall", "F1", "support"])
