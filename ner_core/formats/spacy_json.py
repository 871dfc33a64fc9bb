"""spaCy's JSON training format (spaCy v2's, which ``spacy convert`` still reads): a list of
documents ``{"id", "paragraphs": [{"raw", "sentences": [{"tokens": [{"orth", "ner"}]}]}]}``
whose tokens carry BILUO entity tags (``U-PER``, ``B-ORG`` ... ``L-ORG``, ``O``).

spaCy reads it (``spacy.training.converters.json_to_docs``) and writes it
(``spacy.training.docs_to_json``). Each paragraph is one example. The tags are checked here
first: spaCy drops an entity whose tags do not close (``B-`` then ``O``) without a word.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .example import Example, Report
from .files import kind, write_text
from .json_array import array_records
from .spacy_docs import doc_of, example_of, need_spacy

NAME = "spacy-json"
TITLE = "spaCy JSON training format"
SUFFIXES = (".json",)
EXAMPLE_LINE = ('[{"id": 0, "paragraphs": [{"raw": "Anna lives in Berlin.", "sentences": '
                '[{"tokens": [{"orth": "Anna", "ner": "U-PER"}, {"orth": "lives", "ner": "O"}, '
                '...]}]}]}]')
_OUTSIDE = (None, "", "-", "O")  # no entity, or (``-``) not annotated


def looks_like(path: Path, head: str) -> bool:
    """JSON whose documents hold ``paragraphs`` of ``sentences`` (or ``raw`` text)."""
    return (head.lstrip()[:1] in ("[", "{") and '"paragraphs"' in head
            and ('"sentences"' in head or '"raw"' in head))


def read(path: Path, report: Report) -> list[Example]:
    """Every paragraph of every document, one example each, with the document's line."""
    need_spacy("reading spaCy JSON files")
    from spacy.training.converters import json_to_docs

    records = array_records(path, "spaCy JSON documents")
    if not records:
        raise UserError(f"{path}: expected spaCy JSON documents, found an empty list")
    report.records = len(records)
    counts = [_check_document(document, f"{path}:{line}") for document, line in records]
    try:
        docs = iter(json_to_docs([document for document, _ in records]))
        examples = [example_of(next(docs), report, record=index, line=line, source=path.name,
                               doc_id=index)
                    for index, (_, line) in enumerate(records) for _ in range(counts[index])]
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: expected documents spaCy can read, found: {error}") from None
    return examples


def _check_document(document: object, where: str) -> int:
    """The number of paragraphs of a document, after checking its shape and its tags."""
    paragraphs = document.get("paragraphs") if isinstance(document, dict) else None
    if not isinstance(paragraphs, list):
        found = (f"the fields {', '.join(document) or 'none'}" if isinstance(document, dict)
                 else kind(document))
        raise UserError(f"{where}: expected a document with a list of paragraphs, found {found}")
    for p, paragraph in enumerate(paragraphs, 1):
        sentences = paragraph.get("sentences") if isinstance(paragraph, dict) else None
        raw = paragraph.get("raw") if isinstance(paragraph, dict) else None
        if not isinstance(sentences, list) or not (raw is None or isinstance(raw, str)):
            raise UserError(f"{where}: expected paragraph {p} as an object with a list of "
                            "sentences and a raw text (or none)")
        tags = []
        for s, sentence in enumerate(sentences, 1):
            tokens = sentence.get("tokens") if isinstance(sentence, dict) else None
            if not isinstance(tokens, list) or not all(
                    isinstance(t, dict) and isinstance(t.get("orth"), str) for t in tokens):
                raise UserError(f"{where}: expected sentence {s} of paragraph {p} as an object "
                                "with a list of tokens, each with its text in 'orth'")
            tags += [token.get("ner") for token in tokens]
        _check_tags(tags, f"{where}: paragraph {p}")
    return len(paragraphs)


def _check_tags(tags: list, where: str) -> None:
    """BILUO: ``B-X`` opens X, ``I-X`` continues it, ``L-X`` closes it, ``U-X`` is one token.

    >>> _check_tags(["B-LOC", "L-LOC", "O", "U-PER", "-"], "a.json:1")
    >>> _check_tags(["B-LOC", "O"], "a.json:1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: a.json:1: expected BILUO ... found 'O' at token 2 after 'B-LOC'
    """
    open_type, previous = None, None
    for number, tag in enumerate([*tags, "O"], 1):
        if tag in _OUTSIDE:
            fits, open_type = open_type is None, None
        elif not isinstance(tag, str) or tag[:2] not in ("B-", "I-", "L-", "U-") or not tag[2:]:
            fits = False
        elif tag[0] in "BU":
            fits, open_type = open_type is None, tag[2:] if tag[0] == "B" else None
        else:
            fits, open_type = open_type == tag[2:], tag[2:] if tag[0] == "I" else None
        if not fits:
            found = f"{tag!r} at token {number}" if number <= len(tags) else "the paragraph's end"
            raise UserError(f"{where}: expected BILUO entity tags (B-, I-, L-, U-, O), found "
                            f"{found} after {previous!r}")
        previous = tag


def write(examples: list[Example], path: Path) -> None:
    """The examples as spaCy JSON: consecutive examples of one ``doc_id`` are the paragraphs of
    one document, one document a line."""
    need_spacy("writing spaCy JSON files")
    from spacy.training import docs_to_json
    from spacy.vocab import Vocab

    vocab = Vocab()
    groups: list[list[Example]] = []
    for example in examples:
        if groups and groups[-1][-1].doc_id == example.doc_id:
            groups[-1].append(example)
        else:
            groups.append([example])
    documents = [docs_to_json([doc_of(vocab, example) for example in group], doc_id=index)
                 for index, group in enumerate(groups)]
    write_text(path, "[\n" + ",\n".join(json.dumps(document, ensure_ascii=False)
                                        for document in documents) + "\n]\n")
