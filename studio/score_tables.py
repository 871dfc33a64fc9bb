"""The Evaluate tab's score tables: overall and per entity with each F1's bootstrap interval, the
partial-match schemes and confused types of a kept evaluation, and two models side by side with
the verdict of their paired test."""

from __future__ import annotations

import pandas as pd

from ner_core.partial import confusion_frame, partial_frame

from .views import per_entity_table


def interval_label(result: dict) -> str:
    """The heading of the interval columns, e.g. ``F1 95% interval``."""
    return f"F1 {result['intervals']['level']:.0%} interval"


def _interval(scores: dict) -> str:
    return f"{scores['low']:.4f} to {scores['high']:.4f}"


def overall_frame(result: dict) -> pd.DataFrame:
    o = result["overall"]
    return pd.DataFrame([[round(o["precision"], 4), round(o["recall"], 4), round(o["f1"], 4),
                          _interval(result["intervals"]["overall"]), round(o["accuracy"], 4),
                          result["n_sentences"]]],
                        columns=["precision", "recall", "F1", interval_label(result), "accuracy",
                                 "sentences"])


def entity_table(result: dict) -> pd.DataFrame:
    """``per_entity_table`` with each F1's bootstrap interval before the support."""
    table = per_entity_table(result)
    intervals = result["intervals"]["per_entity"]
    table.insert(4, interval_label(result),
                 [_interval(intervals[entity]) for entity in table["entity"]])
    return table


def match_frames(kept: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The partial-match schemes and the confused types of a kept evaluation, as tables; empty
    ones before an evaluation or once it is gone."""
    if kept is None:
        return pd.DataFrame(), pd.DataFrame()
    schemes = partial_frame(kept["partial"]["overall"]).round(4).rename(columns={"f1": "F1"})
    return schemes.reset_index(), confusion_frame(kept["confusion"]).reset_index()


def verdict_text(test: dict, n_sentences: int) -> str:
    """The paired test's verdict as the Markdown above the comparison."""
    return (f"**Paired bootstrap** ({test['resamples']} resamples of the {n_sentences:,} "
            f"sentences): {test['verdict']}")


def comparison(a_name: str, a: dict, b_name: str, b: dict) -> pd.DataFrame:
    """Per-entity F1 of two models side by side, with B minus A."""
    rows = []
    for entity in sorted(set(a["per_entity"]) | set(b["per_entity"])):
        fa = a["per_entity"].get(entity, {}).get("f1", 0.0)
        fb = b["per_entity"].get(entity, {}).get("f1", 0.0)
        rows.append([entity, round(fa, 4), round(fb, 4), round(fb - fa, 4)])
    rows.append(["overall", round(a["overall"]["f1"], 4), round(b["overall"]["f1"], 4),
                 round(b["overall"]["f1"] - a["overall"]["f1"], 4)])
    # A model compared with itself: the columns still need names of their own.
    a_said, b_said = (a_name, b_name) if a_name != b_name else (f"{a_name} (A)", f"{b_name} (B)")
    return pd.DataFrame(rows, columns=["entity", f"F1 {a_said}", f"F1 {b_said}", "difference"])
