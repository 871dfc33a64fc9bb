"""A dataset of accepted examples as what training and other tools read: tagged sentences, CoNLL
and JSONL files.

Like ``annotations``, every function takes the ``owner`` of the request and reads only a dataset
that owner may name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .annotations import examples
from .data import Sentence
from .errors import UserError
from .text import segment


def to_sentences(name: str, *, owner: str | None = None) -> list[Sentence]:
    """The dataset as tagged sentences: each example split into sentences and words as the
    recognizer splits text, tagged IOB2 from its entity spans, one document per example.

    Sentences an entity runs across (the splitter broke inside a name, as in ``U.S. Steel``) are
    joined, so every entity stays whole. A dataset with no examples yet has no sentences.
    """
    sentences = []
    for doc_id, example in enumerate(examples(name, owner=owner)):
        entities = sorted(example["entities"], key=lambda e: (e["start"], e["end"]))
        for words in _joined_sentences(example["text"], entities):
            tokens = [example["text"][a:b] for a, b in words]
            sentences.append(Sentence(tokens, _tags(words, entities), doc_id, example["line"]))
    return sentences


def _joined_sentences(text: str, entities: list[dict]) -> list[list[tuple[int, int]]]:
    """Sentences of ``text``, those an entity crosses into joined; one pass over the sentences
    and the entities (sorted by start)."""
    groups: list[list[tuple[int, int]]] = []
    at = 0
    for sentence in (s for paragraph in segment(text) for s in paragraph):
        while at < len(entities) and entities[at]["end"] <= sentence[0][0]:
            at += 1  # ends before this sentence, so before every later one too
        if groups and at < len(entities) and entities[at]["start"] < groups[-1][-1][1]:
            groups[-1].extend(sentence)
        else:
            groups.append(list(sentence))
    return groups


def _tags(words: list[tuple[int, int]], entities: list[dict]) -> list[str]:
    """IOB2 tags of ``words`` from whole-word ``entities`` sorted by start, in one pass."""
    tags, previous, at = [], None, 0
    for a, b in words:
        while at < len(entities) and entities[at]["end"] <= a:
            at += 1
        inside = at < len(entities) and entities[at]["start"] <= a and b <= entities[at]["end"]
        entity = entities[at] if inside else None
        if entity is None:
            tags.append("O")
        else:
            tags.append(("I-" if entity is previous else "B-") + entity["label"])
        previous = entity
    return tags


def export_conll(name: str, path: str | Path, *, owner: str | None = None) -> Path:
    """Write the dataset as CoNLL (``word TAG`` lines, IOB2), a ``-DOCSTART- O`` line before each
    example so document context never crosses texts; written whole or not at all."""
    sentences = to_sentences(name, owner=owner)
    if not sentences:
        raise UserError(f"expected accepted examples in the dataset {name!r}, found none")
    lines = []
    doc_id = None
    for sentence in sentences:
        if sentence.doc_id != doc_id:
            lines += ["-DOCSTART- O", ""]
            doc_id = sentence.doc_id
        lines += [f"{token} {tag}" for token, tag in zip(sentence.tokens, sentence.tags)] + [""]
    return _write_whole(Path(path), "\n".join(lines) + "\n")


def export_jsonl(name: str, path: str | Path, *, owner: str | None = None) -> Path:
    """Write the dataset's complete examples as JSONL (one example a line), whole or not at all."""
    found = examples(name, owner=owner)
    if not found:
        raise UserError(f"expected accepted examples in the dataset {name!r}, found none")
    lines = [json.dumps({k: v for k, v in e.items() if k != "line"}, ensure_ascii=False)
             for e in found]
    return _write_whole(Path(path), "\n".join(lines) + "\n")


def _write_whole(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path
