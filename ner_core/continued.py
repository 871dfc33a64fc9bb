"""Continued fine-tuning: a trained model's settings, its label set extended, and replayed data.

A trained model (``default``, a saved run, a fine-tuned model directory or Hub model) is trained
further on new sentences. It reads text as it was trained to (the input settings of its
``train_config.json``), keeps its labels and their classifier rows, gains rows for entity types new
to it, and may see sentences of its original kind of data again (replay) so that it keeps what it
knew while it learns the new data.
"""

from __future__ import annotations

import logging
import random

from datasets import ClassLabel, Dataset, DatasetDict, Sequence, concatenate_datasets

from . import models
from .config import CONTINUE, PRESETS, TrainConfig, preset
from .labels import extend_labels

logger = logging.getLogger(__name__)

# The settings that shape a model's inputs: a continued fine-tune takes them from its base model.
INHERITED = ("case_feature", "document_context", "context_tokens", "max_length")


def config_for(overrides: dict, preset_name: str | None = None,
               local_paths: bool = True) -> TrainConfig:
    """The ``TrainConfig`` of a fine-tune, as the command line and the app build it.

    ``overrides`` holds only the settings the user chose (a flag given, a field changed); anything
    absent comes, in this order, from the base model when it is a trained model (``INHERITED``, from
    its ``train_config.json``), then from the preset. Without ``preset_name`` a trained base model
    gets the ``continue`` preset and an encoder the ``recipe``. The base model is
    ``overrides["base_model"]``, else the preset's; ``local_paths`` is ``models.resolve``'s.
    Raises ``ValueError`` for a model that cannot be resolved or a setting it cannot take.

    >>> config = config_for({"base_model": "minilm", "epochs": 1.0})
    >>> config == TrainConfig(base_model="minilm", epochs=1.0)
    True
    """
    base_model = overrides.get("base_model") or PRESETS[preset_name or "recipe"].get(
        "base_model", TrainConfig.base_model)
    source = models.resolve(base_model, local_paths)
    passed_on = inherited_settings(source)
    if preset_name is None:
        preset_name = "recipe" if passed_on is None else CONTINUE
    inherited = {name: value for name, value in (passed_on or {}).items() if name not in overrides}
    if inherited:
        logger.info("%s passes on its input settings %s", base_model, inherited)
    config = preset(preset_name, **{**inherited, **overrides, "base_model": base_model})
    models.check_max_length(source, config.max_length)
    models.check_case_feature(source, config.case_feature)
    return config


def inherited_settings(source: models.ModelSource) -> dict | None:
    """The input settings (``INHERITED``) a trained model passes on, from its
    ``train_config.json`` (``{}`` when it has none); ``None`` for an encoder, which has none."""
    if models.trained_labels(source) is None:
        return None
    saved = models.train_config_of(source) or {}
    return {name: saved[name] for name in INHERITED if name in saved}


def onto_model_labels(model_labels: list[str], data: DatasetDict,
                      replay: DatasetDict | None = None) -> tuple[DatasetDict, Dataset | None]:
    """``data``, and the ``train`` split of ``replay`` (the one replayed), with their tags as ids of
    one label list: the model's labels, then the entity types the data brings, then those the
    replay brings (``labels.extend_labels``).

    ``ValueError`` in one sentence naming both label sets when the data's labels cannot extend the
    model's (another tag scheme).
    """
    labels = extend_labels(model_labels, _names(data))
    replay_train = None
    if replay is not None:
        if "train" not in replay:
            raise ValueError(f"expected a 'train' split in the replay data, found "
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
