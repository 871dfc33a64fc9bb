"""Character spans onto words, and words back to character spans.

Every format meets here: ``align`` puts each example's spans on whole words (the file's own words,
or the studio's word splitter's, ``ner_core.text``) and counts in the ``Report`` every span it
trims, widens, merges or drops; ``to_sentences`` makes IOB2-tagged sentences of aligned examples
for training and the word-based formats, ``from_sentences`` the other way.
"""

from __future__ import annotations

import bisect
import dataclasses

from ..data import Sentence
from ..errors import UserError
from ..labels import spans as tag_spans
from ..text import paragraphs, sentences, split_words
from .example import Example, Report, Span

CUTS = ("widen", "refuse")  # what to do with a span that cuts a word
OVERLAPS = ("longest", "refuse")  # what to do with overlapping or nested spans


def align(examples: list[Example], report: Report, *, labels: set[str] | None = None,
          cut: str = "widen", overlap: str = "longest") -> list[Example]:
    """``examples`` with every span on whole words, sorted and apart, and ``words`` set.

    >>> r = Report("x", "doccano")
    >>> [e] = align([Example("Anna met Berliners.", [Span(0, 4, "PER"), Span(9, 15, "LOC")])], r)
    >>> [(e.text[s.start:s.end], s.label) for s in e.spans], r.counts["widened"]
    ([('Anna', 'PER'), ('Berliners', 'LOC')], 1)
    """
    if cut not in CUTS:
        raise UserError(f"expected a way to treat spans that cut a word ({', '.join(CUTS)}), "
                        f"found {cut!r}")
    if overlap not in OVERLAPS:
        raise UserError(f"expected a way to treat overlapping spans ({', '.join(OVERLAPS)}), "
                        f"found {overlap!r}")
    aligned = [_align_one(example, report, labels, cut, overlap) for example in examples]
    report.examples += len(aligned)
    return aligned


def _align_one(example: Example, report: Report, labels: set[str] | None, cut: str,
               overlap: str) -> Example:
    text = example.text
    words = _words(example, report)
    starts = [a for a, _ in words]
    on_words: list[tuple[int, int, Span]] = []  # (first word, last word + 1, span)
    report.entities_read += len(example.spans)
    for span in example.spans:
        _check_span(example, span)
        if labels is not None and span.label not in labels:
            report.add("unknown type", example, f"{span.label} {text[span.start:span.end]!r}")
            continue
        start, end = _trimmed(example, span, report)
        if start == end:
            report.add("no words", example, f"{span.label} at {span.start}-{span.end}")
            continue
        first = max(bisect.bisect_right(starts, start) - 1, 0)
        if words and words[first][1] <= start:
            first += 1
        last = bisect.bisect_left(starts, end)  # the words that start before the span's end
        if first >= last:
            report.add("no words", example, f"{span.label} {text[start:end]!r}")
            continue
        new_start, new_end = words[first][0], words[last - 1][1]
        if (new_start, new_end) != (start, end):
            if cut == "refuse":
                raise UserError(f"{example.where()}: expected spans on whole words, found "
                                f"{text[start:end]!r} ({span.label}) inside "
                                f"{text[new_start:new_end]!r}; widen them, or fix the file")
            report.add("widened", example, f"{span.label} {text[start:end]!r} widened to "
                                           f"{text[new_start:new_end]!r}")
        on_words.append((first, last, Span(new_start, new_end, span.label, span.score)))
    kept = _apart(example, on_words, report, overlap)
    report.entities_kept += len(kept)
    report.types.update(span.label for span in kept)
    return dataclasses.replace(example, spans=kept, words=words)


def _words(example: Example, report: Report) -> list[tuple[int, int]]:
    """The example's words: the file's, split at whitespace inside them (a column or a token
    cannot hold a space), whitespace-only ones left out and counted; else the splitter's."""
    if example.words is None:
        return split_words(example.text)
    words = []
    for a, b in example.words:
        if not (0 <= a < b <= len(example.text)):
            raise UserError(f"{example.where()}: expected words inside the text (0 to "
                            f"{len(example.text)}), found a word at {a}-{b}")
        pieces = split_words_at_spaces(example.text, a, b)
        if not pieces:
            report.add("whitespace word", example, f"{example.text[a:b]!r} at {a}-{b}")
        words.extend(pieces)
    if any(words[i][1] > words[i + 1][0] for i in range(len(words) - 1)):
        raise UserError(f"{example.where()}: expected words in text order, apart from each "
                        "other, found overlapping or unordered words")
    return words


def split_words_at_spaces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The non-space runs of ``text[start:end]`` as offsets.

    >>> split_words_at_spaces("New York City", 0, 8)
    [(0, 3), (4, 8)]
    """
    out, i = [], start
    while i < end:
        while i < end and text[i].isspace():
            i += 1
        j = i
        while j < end and not text[j].isspace():
            j += 1
        if j > i:
            out.append((i, j))
        i = j
    return out


def _check_span(example: Example, span: Span) -> None:
    ok = (isinstance(span.start, int) and isinstance(span.end, int)
          and 0 <= span.start < span.end <= len(example.text))
    if not ok:
        raise UserError(f"{example.where()}: expected a span with 0 <= start < end <= "
                        f"{len(example.text)} (the text's length), found {span.start}-{span.end} "
                        f"({span.label})")
    if not isinstance(span.label, str) or not span.label or any(c.isspace() for c in span.label):
        raise UserError(f"{example.where()}: expected an entity type without spaces, found "
                        f"{span.label!r}")


def _trimmed(example: Example, span: Span, report: Report) -> tuple[int, int]:
    covered = example.text[span.start:span.end]
    start = span.start + len(covered) - len(covered.lstrip())
    end = span.start + len(covered.rstrip())
    if start < end and (start, end) != (span.start, span.end):
        report.add("trimmed", example, f"{span.label} {covered!r} trimmed to "
                                       f"{example.text[start:end]!r}")
    return (start, end) if start < end else (span.start, span.start)


def _apart(example: Example, on_words: list[tuple[int, int, Span]], report: Report,
           overlap: str) -> list[Span]:
    """The spans without duplicates and overlaps: the longer of two overlapping spans is kept
    (the earlier of two as long), in text order."""
    kept: list[tuple[int, int, Span]] = []
    for first, last, span in sorted(on_words, key=lambda w: (w[0] - w[1], w[0])):
        clash = next((k for k in kept if k[0] < last and first < k[1]), None)
        if clash is None:
            kept.append((first, last, span))
            continue
        other = clash[2]
        if (clash[0], clash[1], other.label) == (first, last, span.label):
            report.add("duplicate", example, f"{span.label} {_said(example, span)}")
            continue
        if overlap == "refuse":
            raise UserError(f"{example.where()}: expected spans apart from each other, found "
                            f"{_said(example, span)} ({span.label}) overlapping "
                            f"{_said(example, other)} ({other.label})")
        report.add("overlap", example, f"{_said(example, span)} ({span.label}) dropped, "
                                       f"{_said(example, other)} ({other.label}) kept")
    return [span for _, _, span in sorted(kept, key=lambda k: k[0])]


def _said(example: Example, span: Span) -> str:
    return repr(example.text[span.start:span.end])


def to_sentences(examples: list[Example]) -> list[Sentence]:
    """IOB2-tagged sentences of aligned examples. A ``sentence`` example (a CoNLL sentence, a
    Hugging Face row) is one; any other is split into the studio's sentences over its words,
    joined where an entity crosses (the splitter broke inside a name, as in ``U.S. Steel``).

    >>> r = Report("x", "doccano")
    >>> [e] = align([Example("Anna flew. Berlin was cold.", [Span(0, 4, "PER")])], r)
    >>> [s.tags for s in to_sentences([e])]
    [['B-PER', 'O', 'O'], ['O', 'O', 'O', 'O']]
    """
    sentences = []
    for example in examples:
        if example.words is None:
            raise ValueError("to_sentences expects aligned examples (words set); call align first")
        groups = [example.words] if example.sentence else joined_sentences(example)
        for words in groups:
            tokens = [example.text[a:b] for a, b in words]
            sentences.append(Sentence(tokens, word_tags(words, example.spans), example.doc_id,
                                      example.line))
    return sentences


def joined_sentences(example: Example) -> list[list[tuple[int, int]]]:
    """The sentences of an aligned example's words, paragraph by paragraph, those a span crosses
    into joined; one pass over the sentences and the spans (sorted by start)."""
    text, words, spans = example.text, example.words or [], example.spans
    groups: list[list[tuple[int, int]]] = []
    at = 0
    for sentence in _sentences(text, words):
        while at < len(spans) and spans[at].end <= sentence[0][0]:
            at += 1  # ends before this sentence, so before every later one too
        if groups and at < len(spans) and spans[at].start < groups[-1][-1][1]:
            groups[-1].extend(sentence)
        else:
            groups.append(list(sentence))
    return groups


def _sentences(text: str, words: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    out, at = [], 0
    for _, end in paragraphs(text):
        stop = bisect.bisect_left(words, (end, end))
        if stop > at:
            out += sentences(text, words[at:stop])
        at = stop
    if at < len(words):
        out += sentences(text, words[at:])
    return out


def word_tags(words: list[tuple[int, int]], spans: list[Span]) -> list[str]:
    """IOB2 tags of ``words`` from whole-word ``spans`` sorted by start, in one pass.

    >>> word_tags([(0, 3), (4, 8), (9, 12)], [Span(0, 8, "LOC")])
    ['B-LOC', 'I-LOC', 'O']
    """
    tags, previous, at = [], None, 0
    for a, b in words:
        while at < len(spans) and spans[at].end <= a:
            at += 1
        inside = at < len(spans) and spans[at].start <= a and b <= spans[at].end
        span = spans[at] if inside else None
        tags.append("O" if span is None else ("I-" if span is previous else "B-") + span.label)
        previous = span
    return tags


def from_sentences(sentences: list[Sentence], source: str) -> list[Example]:
    """Examples of IOB2-tagged sentences: the words joined by one space, spans from the tags.

    >>> [e] = from_sentences([Sentence(["New", "York", "!"], ["B-LOC", "I-LOC", "O"], 0, 3)], "a.conll")
    >>> e.text, e.spans, e.words, e.line
    ('New York !', [Span(start=0, end=8, label='LOC', score=None)], [(0, 3), (4, 8), (9, 10)], 3)
    """
    examples = []
    for index, sentence in enumerate(sentences):
        words, at = [], 0
        for token in sentence.tokens:
            words.append((at, at + len(token)))
            at += len(token) + 1
        spans = [Span(words[first][0], words[last - 1][1], label)
                 for label, first, last in tag_spans(sentence.tags)]
        examples.append(Example(" ".join(sentence.tokens), spans, words, index, sentence.line,
                                source, sentence.doc_id, sentence=True))
    return examples
