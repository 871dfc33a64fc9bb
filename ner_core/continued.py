"""Continued fine-tuning: a trained model's label set extended, and replayed data.

A trained model (``default``, a saved run, a fine-tuned model directory or Hub model) is trained
further on new sentences. It reads text as it was trained to (the input settings it passes on:
``plan.inherited_settings``), keeps its labels and their classifier rows, gains rows for entity
types new to it, and may see sentences of its original kind of data again (replay) so that it
keeps what it knew while it learns the new data.
"""

from __future__ import annotations

import logging
import random

from datasets import ClassLabel, Dataset, DatasetDict, Sequence, concatenate_datasets

from .errors import UserError
from .labels import extend_labels

logger = logging.getLogger(__name__)


def onto_model_labels(model_labels: list[str], data: DatasetDict,
                      replay: DatasetDict | None = None) -> tuple[DatasetDict, Dataset | None]:
    """``data``, and the ``train`` split of ``replay`` (the one replayed), with their tags as ids of
    one label list: the model's labels, then the entity types the data brings, then those the
    replay brings (``labels.extend_labels``).

    ``UserError`` in one sentence naming both label sets when the data's labels cannot extend the
    model's (another tag scheme).
    """
    labels = extend_labels(model_labels, _names(data))
    replay_train = None
    if replay is not None:
        if "train" not in replay:
            raise UserError(f"expected a 'train' split in the replay data, found "
                            f"{', '.join(replay) or 'none'}")
        labels = extend_labels(labels, _names(replay))
        replay_train = relabel(replay["train"], labels)
    return DatasetDict({name: relabel(split, labels) for name, split in data.items()}), replay_train


def _names(data: DatasetDict) -> list[str]:
    return next(iter(data.values())).features["ner_tags"].feature.names


def relabel(split: Dataset, labels: list[str]) -> Dataset:
    """``split`` with its tag ids rewritten as ids of ``labels``, which hold every name it uses.

    >>> from ner_core.data import Sentence, to_dataset_dict
    >>> sentences = {"train": [Sentence(["Anna"], ["B-PER"], 0, 1)]}
    >>> split = to_dataset_dict(sentences, labels=["O", "B-PER", "I-PER"])["train"]
    >>> moved = relabel(split, ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"])
    >>> list(moved["ner_tags"]), moved.features["ner_tags"].feature.names[3]
    ([[3]], 'B-PER')
    """
    names = split.features["ner_tags"].feature.names
    if names == labels:
        return split
    index = [labels.index(name) for name in names]
    features = split.features.copy()
    features["ner_tags"] = Sequence(ClassLabel(names=labels))
    columns = split.to_dict()
    columns["ner_tags"] = [[index[tag] for tag in tags] for tags in columns["ner_tags"]]
    return Dataset.from_dict(columns, features=features)


def with_replay(train: Dataset, replay: Dataset, ratio: float, seed: int) -> Dataset:
    """``train`` followed by ``round(ratio * len(train))`` sentences of ``replay`` (all of it when
    it has fewer), drawn at random with ``seed``. Both must share one label list (``relabel``).

    Replayed sentences keep their corpus order and their documents, renumbered after ``train``'s,
    so document context never joins a replayed sentence to a new one; with document context a
    replayed sentence reads the other drawn sentences of its document.
    """
    wanted = round(ratio * len(train))
    if wanted > len(replay):
        logger.info("the replay data has %d sentences, fewer than the %d asked for: all are "
                    "replayed", len(replay), wanted)
    drawn = sorted(random.Random(seed).sample(range(len(replay)), min(wanted, len(replay))))
    columns = replay.select(drawn).to_dict()
    offset = max(train["doc_id"], default=-1) + 1
    columns["doc_id"] = [doc + offset for doc in columns["doc_id"]]
    return concatenate_datasets([train, Dataset.from_dict(columns, features=replay.features)])
