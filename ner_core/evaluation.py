"""Score a model on labelled sentences: the path ``evaluate`` in the CLI, the app and training share."""

from __future__ import annotations

import time

from datasets import Dataset, DatasetDict

from .data import sentences_of
from .errors import UserError
from .metrics import all_errors, score
from .partial import confusion, partial_scores
from .significance import f1_intervals


def pick_split(data: DatasetDict, split: str | None) -> tuple[str, Dataset]:
    """The split to evaluate: ``split`` when given, else ``validation``, else the only split."""
    if split is None:
        if "validation" in data:
            split = "validation"
        elif len(data) == 1:
            split = next(iter(data))
        else:
            raise UserError(f"expected a split name, found splits {', '.join(data)}; "
                            "choose one with --split")
    if split not in data:
        if len(data) == 1 and split in ("validation", "test"):
            # One file given as the data: it is the split asked for.
            return split, next(iter(data.values()))
        raise UserError(f"expected a split the data has ({', '.join(data)}), found {split!r}")
    return split, data[split]


def evaluate(recognizer, split: Dataset, mode: str = "default", errors: bool = False) -> dict:
    """Word-level seqeval scores of ``recognizer`` on a split of ``load_data``.

    The result has ``overall``, ``per_entity``, ``n_sentences``, ``mode`` and ``seconds``, the
    partial-match schemes (``partial``, see ``partial.partial_scores``), the ``confusion`` of
    types (``partial.confusion``) and bootstrap ``intervals`` of each F1
    (``significance.f1_intervals``); with ``errors``, also ``gold``/``predicted`` tags, ``tokens``
    and the classed ``errors``. All of it is JSON-able.
    """
    started = time.perf_counter()
    sentences = sentences_of(split)
    tokens = [s.tokens for s in sentences]
    gold = [s.tags for s in sentences]
    predicted = recognizer.tag(tokens, [s.doc_id for s in sentences])
    result = score(gold, predicted, mode)
    result.update(n_sentences=len(sentences), mode=mode,
                  partial=partial_scores(gold, predicted, mode),
                  confusion=confusion(gold, predicted, mode),
                  intervals=f1_intervals(gold, predicted, mode))
    result["seconds"] = round(time.perf_counter() - started, 2)
    if errors:
        result.update(tokens=tokens, gold=gold, predicted=predicted,
                      errors=all_errors(gold, predicted))
    return result
