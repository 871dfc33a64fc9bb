"""Where the paragraphs, sentences and words of a raw text are, as character offsets.

Words are split the way CoNLL-2003 tokenizes (punctuation apart, ``U.S``/``1996-08-22`` whole), so
the model sees words like those it was trained on; every offset points into the original string,
so entity text is always ``text[start:end]``.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata


@functools.cache
def _word_pattern() -> re.Pattern:
    """Words: letters and digits with their combining marks (any script), inner '-', '.', '&'
    kept; any other non-space character is a word of its own, with its marks and its emoji
    joiners (U+200D) kept."""
    marks = "".join(_ranges(c for c in range(sys.maxunicode + 1)
                            if unicodedata.category(chr(c)).startswith("M")))
    part = rf"[\w{marks}]+"
    # Emoji: a flag is two regional indicators; skin tones and marks modify the symbol before them.
    flag = "[\U0001f1e6-\U0001f1ff]{2}"
    modifiers = f"[{marks}\U0001f3fb-\U0001f3ff]*"
    symbol = rf"(?:{flag}|[^\w\s{marks}]){modifiers}"
    return re.compile(rf"{part}(?:[-.&]{part})*|{symbol}(?:\u200d{symbol})*")


def _ranges(codepoints) -> list[str]:
    """Character-class ranges for sorted code points: ``a-z`` pieces, escaped."""
    out, start, previous = [], None, None
    for c in codepoints:
        if start is None:
            start = previous = c
        elif c == previous + 1:
            previous = c
        else:
            out.append(f"\\U{start:08x}-\\U{previous:08x}")
            start = previous = c
    if start is not None:
        out.append(f"\\U{start:08x}-\\U{previous:08x}")
    return out


_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENTENCE_END = {".", "!", "?"}
# Words that end in a full stop without ending a sentence.
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "ltd", "co", "corp",
                  "vs", "gen", "gov", "sen", "rep", "lt", "col", "sgt", "no", "jan", "feb", "mar",
                  "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}

Span = tuple[int, int]


def split_words(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Word offsets in ``text[start:end]``.

    >>> t = "Merkel met Siemens' CEO in São Paulo, U.S."
    >>> [t[a:b] for a, b in split_words(t)]
    ['Merkel', 'met', 'Siemens', "'", 'CEO', 'in', 'São', 'Paulo', ',', 'U.S', '.']
    """
    end = len(text) if end is None else end
    return [m.span() for m in _word_pattern().finditer(text, start, end)]


def paragraphs(text: str) -> list[Span]:
    """Offsets of the paragraphs: text between blank lines.

    >>> t = "One.\\n\\n  Two\\nlines.\\n"
    >>> [t[a:b] for a, b in paragraphs(t)]
    ['One.', 'Two\\nlines.']
    """
    spans, start = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(a + len(text[a:b]) - len(text[a:b].lstrip()), a + len(text[a:b].rstrip()))
            for a, b in spans if text[a:b].strip()]


def sentences(text: str, words: list[Span]) -> list[list[Span]]:
    """Group a paragraph's words into sentences: a break after '.', '!' or '?' before a capital.

    >>> t = "Mr. Smith flew to Paris. He met Dr. Jones! Then home"
    >>> [" ".join(t[a:b] for a, b in s) for s in sentences(t, split_words(t))]
    ['Mr . Smith flew to Paris .', 'He met Dr . Jones !', 'Then home']
    """
    groups: list[list[Span]] = [[]]
    for i, (a, b) in enumerate(words):
        groups[-1].append((a, b))
        if text[a:b] not in _SENTENCE_END or i + 1 == len(words):
            continue
        before = text[words[i - 1][0]:words[i - 1][1]] if i > 0 else ""
        after = text[words[i + 1][0]:words[i + 1][1]]
        initial = len(before) == 1 and before.isalpha()
        abbreviation = text[a:b] == "." and (before.lower() in _ABBREVIATIONS or initial)
        if not abbreviation and (after[:1].isupper() or after[:1] in "\"'(["):
            groups.append([])
    return [g for g in groups if g]


def segment(text: str) -> list[list[list[Span]]]:
    """Paragraphs of sentences of word offsets: the units the recognizer reads."""
    return [sentences(text, split_words(text, a, b)) for a, b in paragraphs(text)]
