"""Distillation: train a model towards the averaged predictions of trained teacher models.

Each teacher reads the training sentences in its own windows and context (a teacher trained with
document context reads the documents), so a student without that context can learn what the
context told the teachers. The teachers' probabilities for each word are averaged; the student's
loss is ``(1 - distillation)`` times the usual cross-entropy on the gold labels plus
``distillation`` times the cross-entropy against those averaged probabilities, on the first
sub-token of each word (the one a prediction is read from).
"""

from __future__ import annotations

import logging

import torch
from datasets import Dataset
from transformers import Trainer

from .errors import UserError
from .features import Window
from .inference import Recognizer

logger = logging.getLogger(__name__)

TARGETS = "teacher_probabilities"  # the training dataset's column of soft targets


def check(teachers: list[str], distillation: float, label_smoothing: float) -> None:
    """Refuse settings that cannot distil, before anything is loaded."""
    if teachers and distillation == 0:
        raise UserError(f"teachers given ({', '.join(teachers)}) but distillation is 0; expected "
                        "a share of the loss in (0, 1] to learn from them")
    if distillation > 0 and not teachers:
        raise UserError(f"distillation is {distillation} but no teacher model is given; "
                        "name at least one trained model to learn from")
    if teachers and label_smoothing > 0:
        raise UserError(f"label_smoothing is {label_smoothing} with teachers: both soften the "
                        "targets; expected one of them")


def teacher_targets(teachers: list[str], split: Dataset, labels: list[str],
                    precision: str = "auto") -> list[list[list[float] | None]]:
    """The teachers' averaged probabilities of ``labels`` (in that order) for every word of
    ``split``; ``None`` for a word that some teacher does not read (it has no sub-tokens).
    ``precision`` is how the teachers compute (``Recognizer``'s)."""
    sentences, doc_ids = list(split["tokens"]), list(split["doc_id"])
    averaged: list[list[list[float] | None]] | None = None
    for name in teachers:
        teacher = Recognizer(name, batch_size=64, precision=precision)
        if sorted(teacher.labels) != sorted(labels):
            raise UserError(f"teacher {name} predicts the labels {', '.join(teacher.labels)}; "
                            f"expected the data's labels {', '.join(labels)}")
        order = [teacher.labels.index(label) for label in labels]
        logger.info("reading %d sentences with teacher %s", len(sentences), name)
        words = teacher.word_probabilities(sentences, doc_ids)
        if averaged is None:
            averaged = [[None if p is None else [p[i] for i in order] for p in sentence]
                        for sentence in words]
            continue
        for mean, sentence in zip(averaged, words):
            for w, p in enumerate(sentence):
                if mean[w] is not None and p is not None:
                    mean[w] = [a + p[i] for a, i in zip(mean[w], order)]
                else:
                    mean[w] = None
    scale = 1 / len(teachers)
    return [[None if p is None else [x * scale for x in p] for p in sentence]
            for sentence in averaged or []]


def window_targets(windows: list[Window], targets: list[list[list[float] | None]],
                   n_labels: int) -> list[list[list[float]]]:
    """Per window, a row of soft targets per token: the word's on its first sub-token, zeros
    (no target) elsewhere."""
    rows = []
    for window in windows:
        dense = [[0.0] * n_labels for _ in window.input_ids]
        for s, w, position in window.owned:
            if targets[s][w] is not None:
                dense[position] = targets[s][w]
        rows.append(dense)
    return rows


class TargetCollator:
    """Pads the soft targets beside what ``base`` (the token-classification collator) pads;
    evaluation batches have none."""

    def __init__(self, base, n_labels: int):
        self.base, self.n_labels = base, n_labels

    def __call__(self, features: list[dict]) -> dict:
        if TARGETS not in features[0]:
            return self.base(features)
        targets = [feature.pop(TARGETS) for feature in features]
        batch = self.base(features)
        padded = torch.zeros(len(features), batch["input_ids"].shape[1], self.n_labels)
        for row, target in enumerate(targets):
            padded[row, :len(target)] = torch.tensor(target)
        batch[TARGETS] = padded
        return batch


class DistillingTrainer(Trainer):
    """A ``Trainer`` whose training loss mixes the gold labels with the teachers' targets;
    evaluation batches (without targets) are scored on the gold labels alone."""

    def __init__(self, *args, distillation: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.distillation = distillation

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        targets = inputs.pop(TARGETS, None)
        if targets is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**inputs)  # its loss: mean cross-entropy over the labelled tokens
        log_probabilities = outputs.logits.float().log_softmax(-1)
        has_target = targets.sum(-1) > 0
        soft = (-(targets * log_probabilities).sum(-1)[has_target].mean() if has_target.any()
                else log_probabilities.new_zeros(()))
        loss = (1 - self.distillation) * outputs.loss + self.distillation * soft
        return (loss, outputs) if return_outputs else loss
