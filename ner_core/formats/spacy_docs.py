"""Between spaCy's ``Doc`` and examples, for the spaCy formats (a DocBin, spaCy's JSON).

spaCy itself reads and writes those files; it is an optional dependency, imported only when a
spaCy file is read or written, so the studio works without it. A ``Doc``'s tokens are the
example's words (a token of spaces is left out by ``align``, and counted) and ``doc.ents`` its
spans; a ``Doc`` built from an example reproduces its text exactly, spaces and line breaks
included, as spaCy's own tokenizer would: one space after a word is that word's trailing space,
any other run of whitespace a token of its own.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import UserError
from .align import joined_sentences
from .example import Example, Report, Span

if TYPE_CHECKING:
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

_PIECES = re.compile(r"\s+|\S+")


def need_spacy(doing: str) -> ModuleType:
    """spaCy, or a ``UserError`` saying that ``doing`` (e.g. "reading .spacy files") needs it."""
    try:
        import spacy
        import spacy.tokens
        import spacy.training
        import spacy.vocab
    except ImportError:
        raise UserError(f"{doing} needs spaCy: pip install spacy") from None
    return spacy


def example_of(doc: Doc, report: Report, *, record: int, line: int, source: str,
               doc_id: int) -> Example:
    """The example of a ``Doc``: its text, its tokens as words, ``doc.ents`` as spans. Spans of
    ``doc.spans`` (span groups, often overlapping) are counted and not read."""
    words = [(token.idx, token.idx + len(token.text)) for token in doc]
    spans = [Span(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
    example = Example(doc.text, spans, words, record, line, source, doc_id)
    for key, group in doc.spans.items():
        if len(group):
            report.add("not an entity", example, f"{len(group)} spans in doc.spans[{key!r}] "
                       "(only doc.ents are read)", n=len(group))
    return example


def doc_of(vocab: Vocab, example: Example) -> Doc:
    """A ``Doc`` of an aligned example: its text, its words as tokens, its spans as
    ``doc.ents``, and sentence starts where the studio's sentences start."""
    from spacy.tokens import Doc

    words, spaces = tokens(example.text, example.words or [])
    doc = Doc(vocab, words=words, spaces=spaces)
    ents = [doc.char_span(span.start, span.end, label=span.label) for span in example.spans]
    if any(ent is None for ent in ents):
        raise ValueError("doc_of expects aligned examples (spans on words); call align first")
    doc.ents = ents
    groups = [example.words] if example.sentence else joined_sentences(example)
    starts = {group[0][0] for group in groups[1:] if group}  # the first starts at token 0
    for token in doc:
        token.is_sent_start = token.i == 0 or token.idx in starts
    return doc


def tokens(text: str, words: list[tuple[int, int]]) -> tuple[list[str], list[bool]]:
    """spaCy's ``words`` and ``spaces`` for a text and its words: every character of the text
    is in a token or is a token's one trailing space.

    >>> words, spaces = tokens("  Anna   met\\nBo.", [(2, 6), (9, 12), (13, 15)])
    >>> words
    ['  ', 'Anna', '  ', 'met', '\\n', 'Bo', '.']
    >>> spaces
    [False, True, False, False, False, False, False]
    """
    pieces, at = [], 0
    for start, end in [*words, (len(text), len(text))]:
        pieces += [text[a:b] for a, b in (m.span() for m in _PIECES.finditer(text, at, start))]
        if end > start:
            pieces.append(text[start:end])
        at = end
    out: list[str] = []
    spaces: list[bool] = []
    for piece in pieces:
        if piece[0] == " " and out and not spaces[-1] and not out[-1].isspace():
            spaces[-1] = True
            piece = piece[1:]
            if not piece:
                continue
        out.append(piece)
        spaces.append(False)
    return out, spaces
