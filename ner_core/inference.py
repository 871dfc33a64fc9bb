"""``Recognizer``: text in, entities out, for texts of any length.

A text is cut into paragraphs, sentences and words (``text.py``); each sentence is read in a window
with the context the model was trained with (``features.py``), so a model trained with document
context reads the rest of the paragraph. Every word is predicted once, on its first sub-token (on
all of them, for a model trained with every sub-token labelled); a sentence's tags are the most
probable sequence IOB2 allows; entities are whole words: an entity never splits a word, and its
text is ``text[start:end]``.
"""

from __future__ import annotations

import logging

import torch

from . import hardware, models
from .config import INFERENCE_PRECISIONS as PRECISIONS
from .config import TrainConfig
from .errors import UserError
from .features import Window, windows_for_sentences
from .labels import decode, entity_type, entity_types, is_valid_tag, spans, transitions
from .quantize import quantize_int8
from .text import segment

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 200_000
DECODINGS = ("iob2", "per-word")
# A model saved without train_config.json is read as the defaults would have trained it.
_TRAINED_AS = TrainConfig()


class Recognizer:
    """Named-entity recognition with one loaded model.

    >>> recognizer = Recognizer("default")                       # doctest: +SKIP
    >>> recognizer.recognize("Angela Merkel visited Paris.")     # doctest: +SKIP
    [{'start': 0, 'end': 13, 'label': 'PER', 'score': 0.99, 'text': 'Angela Merkel'}, ...]
    """

    def __init__(self, model: str = models.DEFAULT, *, batch_size: int = 32,
                 max_text_chars: int = MAX_TEXT_CHARS, device: str | None = None,
                 local_paths: bool = True, precision: str = hardware.AUTO,
                 decoding: str = "iob2"):
        """``local_paths=False`` refuses directory names (see ``models.resolve``).

        ``precision`` is how the model computes: ``auto`` (bfloat16 where the device computes
        it natively: a GPU that supports it, a CPU with AVX-512 BF16 or AMX; float32 elsewhere);
        ``float32``; ``bfloat16`` (about twice as fast where native, six times slower where
        emulated); ``int8`` (dynamic quantization, CPU only). The faster ones give scores a
        little different from float32 (``bench/inference.py`` measures how much).
        ``precision`` afterwards is the one chosen, and ``precision_said`` the choice in words.
        ``decoding`` is how a sentence's tags are read from its words' probabilities: ``iob2``
        (the most probable sequence IOB2 allows) or ``per-word`` (each word's most probable tag,
        as models are scored during training).
        """
        if decoding not in DECODINGS:
            raise UserError(f"decoding must be one of {', '.join(DECODINGS)}, found {decoding!r}")
        if precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, found {precision!r}")
        int8 = precision == "int8"
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() and not int8
                                              else "cpu"))
        if int8 and self.device.type != "cpu":
            raise UserError(f"int8 quantization runs on the CPU, found device {self.device}")
        self.source = models.resolve(model, local_paths)
        self.model, self.tokenizer = models.load_for_inference(self.source)
        precision, self.precision_said = hardware.pick_precision(precision, self.device.type)
        self.precision = precision
        if precision == "bfloat16":
            self.model.to(torch.bfloat16)
        self.model.to(self.device)
        if int8:
            self.model = quantize_int8(self.model)
        saved = models.train_config_of(self.source) or {}
        limit = getattr(self.model.config, "max_position_embeddings", 512)
        self.max_length = min(saved.get("max_length", _TRAINED_AS.max_length), limit)
        self.document_context = bool(saved.get("document_context", False))
        self.context_tokens = saved.get("context_tokens", _TRAINED_AS.context_tokens)
        # Trained with capitals marked in token_type_ids: mark them the same way here.
        self.case_feature = bool(saved.get("case_feature", False))
        # Trained with every sub-token labelled: each word is read from all its sub-tokens.
        self.every_subtoken = bool(saved.get("label_all_tokens", False))
        self.batch_size = batch_size
        self.max_text_chars = max_text_chars
        self.id2label = {int(i): label for i, label in self.model.config.id2label.items()}
        # per-word: every label may follow every other
        self.transitions = (transitions(self.labels) if decoding == "iob2" else
                            [[True] * len(self.labels) for _ in range(len(self.labels) + 1)])
        # A word's score: its probability of the entity type it is given (B- or I-), or of O.
        kinds = [entity_type(label) if is_valid_tag(label) else label for label in self.labels]
        self._same_type = [[i for i, other in enumerate(kinds) if other == kind] for kind in kinds]
        self._pairs = [(self.labels.index(f"B-{kind}"), self.labels.index(f"I-{kind}"))
                       for kind in entity_types(self.labels)
                       if {f"B-{kind}", f"I-{kind}"} <= set(self.labels)]

    @property
    def labels(self) -> list[str]:
        return [self.id2label[i] for i in sorted(self.id2label)]

    def recognize(self, text: str, threshold: float = 0.0) -> list[dict]:
        """Entities of ``text``: ``{"start", "end", "label", "score", "text"}``, sorted by start.

        ``score`` is the mean over the entity's words of each word's probability of its type
        (``B-`` and ``I-`` together): how sure the model is that the words are such an entity."""
        return self.recognize_batch([text], threshold)[0]

    def recognize_batch(self, texts: list[str], threshold: float = 0.0) -> list[list[dict]]:
        """``recognize`` for many texts at once: their windows share length-sorted batches."""
        if not 0.0 <= threshold <= 1.0:
            raise UserError(f"threshold must be between 0 and 1, found {threshold!r}")
        sentences, doc_ids, owners = [], [], []
        n_paragraphs = 0
        for t, text in enumerate(texts):
            if not isinstance(text, str):
                raise UserError(f"text {t}: expected a string, found {type(text).__name__}")
            if len(text) > self.max_text_chars:
                raise UserError(f"text {t}: expected at most {self.max_text_chars:,} characters, "
                                f"found {len(text):,}; split it into parts")
            for paragraph in segment(text):
                # A paragraph is the document a model trained with document context reads.
                doc_ids.extend([n_paragraphs] * len(paragraph))
                n_paragraphs += 1
                sentences.extend(paragraph)
                owners.extend([t] * len(paragraph))
        words = [[texts[t][a:b] for a, b in sentence] for t, sentence in zip(owners, sentences)]
        tags, scores = self._tag(words, doc_ids)
        results: list[list[dict]] = [[] for _ in texts]
        for t, sentence, sentence_tags, sentence_scores in zip(owners, sentences, tags, scores):
            # Words without sub-tokens (a lone control character) are not words to the model.
            kept = [i for i, tag in enumerate(sentence_tags) if tag is not None]
            for label, first, last in spans([sentence_tags[i] for i in kept]):
                score = sum(sentence_scores[i] for i in kept[first:last]) / (last - first)
                if score >= threshold:
                    start, end = sentence[kept[first]][0], sentence[kept[last - 1]][1]
                    results[t].append({"start": start, "end": end, "label": label,
                                       "score": round(score, 4), "text": texts[t][start:end]})
        return results

    def tag(self, sentences: list[list[str]], doc_ids: list[int] | None = None) -> list[list[str]]:
        """Predicted IOB2 tags for pre-split words (evaluation's path); one tag per word."""
        doc_ids = list(range(len(sentences))) if doc_ids is None else doc_ids
        return [[tag or "O" for tag in tags] for tags in self._tag(sentences, doc_ids)[0]]

    def _tag(self, sentences: list[list[str]], doc_ids: list[int]):
        """Tags and their probabilities per word; ``None`` for a word no window owns.

        A sentence's tags are its most probable sequence that IOB2 allows (``I-TYPE`` only after
        ``B-TYPE`` or ``I-TYPE``), from every word's probabilities (``labels.decode``). On
        CoNLL-2003 that gave +0.39 validation and +0.55 test F1 points over each word's most
        probable tag alone, for the model bundled before it (float32).
        """
        probabilities = self.word_probabilities(sentences, doc_ids)
        tags: list[list[str | None]] = [[None] * len(words) for words in sentences]
        scores = [[0.0] * len(words) for words in sentences]
        labels = self.labels
        for s, words in enumerate(probabilities):
            for w, label in enumerate(decode(words, self.transitions)):
                if label is not None:
                    tags[s][w] = labels[label]
                    scores[s][w] = sum(words[w][i] for i in self._same_type[label])
        return tags, scores

    def word_probabilities(self, sentences: list[list[str]],
                           doc_ids: list[int] | None = None) -> list[list[list[float] | None]]:
        """Each word's probability of every label (in ``labels`` order), read as ``tag`` reads it:
        in the model's own windows and context; ``None`` for a word no window owns. What a teacher
        hands the model distilled from it (``distill.py``). A model trained with every sub-token
        labelled is read from all of a word's sub-tokens (``pooled``)."""
        doc_ids = list(range(len(sentences))) if doc_ids is None else doc_ids
        windows = windows_for_sentences(self.tokenizer, sentences, doc_ids, self.max_length,
                                        self.document_context, self.context_tokens,
                                        case_feature=self.case_feature)
        order = sorted(self.id2label)
        words: list[list[list[float] | None]] = [[None] * len(s) for s in sentences]
        for batch, probabilities in self._probabilities(windows):
            # one copy per batch, not one per word
            for i, rows in zip(batch, probabilities[..., order].cpu().tolist()):
                for (s, w, position), width in zip(windows[i].owned, windows[i].widths):
                    words[s][w] = (pooled(rows[position:position + width], self._pairs)
                                   if self.every_subtoken and width > 1 else rows[position])
        return words

    @torch.inference_mode()
    def _probabilities(self, windows: list[Window]):
        """Length-sorted batches of the windows: each batch's window indices and its probabilities
        (float32, batch x width x labels, on the model's device)."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids), reverse=True)
        pad = self.tokenizer.pad_token_id or 0
        for b in range(0, len(order), self.batch_size):
            batch = order[b:b + self.batch_size]
            width = len(windows[batch[0]].input_ids)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            inputs = {"input_ids": input_ids, "attention_mask": attention}
            if self.case_feature:
                inputs["token_type_ids"] = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = windows[i].input_ids
                input_ids[row, :len(ids)] = torch.tensor(ids)
                attention[row, :len(ids)] = 1
                if self.case_feature:
                    inputs["token_type_ids"][row, :len(ids)] = torch.tensor(windows[i].token_type_ids)
            logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits
            yield batch, logits.float().softmax(-1)


def pooled(subtokens: list[list[float]], pairs: list[tuple[int, int]]) -> list[float]:
    """A word's label probabilities from those of all its sub-tokens, for a model trained with
    every sub-token labelled (the first ``B-`` or ``I-``, the rest ``I-``): each type's
    probability (``B-`` and ``I-`` together, one ``(B, I)`` id pair per type) and every other
    label's are averaged over the sub-tokens; the first sub-token alone says how a type splits
    between ``B-`` and ``I-``, since only it was taught the difference.

    On CoNLL-2003 (document context and every sub-token labelled, float32) this read +0.06
    validation and +0.16 test F1 points over the first sub-token alone.

    >>> [round(p, 2) for p in pooled([[0.2, 0.4, 0.4], [0.0, 0.0, 1.0]], [(1, 2)])]  # O, B-X, I-X
    [0.1, 0.45, 0.45]
    """
    n = len(subtokens)
    mean = [sum(column) / n for column in zip(*subtokens)]
    first = subtokens[0]
    for b, i in pairs:
        both, said = mean[b] + mean[i], first[b] + first[i]
        share = first[b] / said if said > 0 else 0.5
        mean[b], mean[i] = both * share, both * (1 - share)
    return mean
