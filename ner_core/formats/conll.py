"""CoNLL columns: one token a line with its tag in a column, blank lines between sentences,
``-DOCSTART-`` lines between documents; IOB1, IOB2, BIOES and BILOU tags read as IOB2.

Parsed by hand rather than with the ``conll`` builder of ``datasets``: that builder pads or cuts
malformed lines silently, drops ``-DOCSTART-`` boundaries and knows no tag scheme, while a bad line
must be refused with its number and every sentence keep its document.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..data import SPLIT_FILES, Sentence, find_split_files, read_utf8
from ..errors import UserError
from ..labels import (
    iob2_to_bioes,
    iob2_to_iob1,
    is_scheme_tag,
    scheme_tag_problem,
    sequence_problem,
    tag_scheme,
    to_iob2,
)
from .align import from_sentences, to_sentences
from .example import Example, Report
from .files import write_text

logger = logging.getLogger(__name__)

NAME = "conll"
TITLE = "CoNLL columns"
# Files of the CoNLL-2003 distribution (eng.train, eng.testa) end in their split's name.
SUFFIXES = (".conll", ".txt", ".iob", ".iob2", ".bio", ".bioes", ".tsv", "", ".train", ".testa",
            ".testb")
EXAMPLE_LINE = "Anna NNP B-NP B-PER"
DOCSTART = "-DOCSTART-"
WRITTEN_SCHEMES = {"IOB2": list, "BIOES": iob2_to_bioes, "IOB1": iob2_to_iob1}
LINES_LOOKED_AT = 10  # the first lines of a file that must look like CoNLL for it to be one

# Lines end at '\n' only and columns are split at spaces and tabs only: str.splitlines() and
# str.split() would also break at U+2028, form feeds or no-break spaces inside a token.
_COLUMNS = re.compile(r"[ \t]+")


def looks_like(path: Path, head: str) -> bool:
    """True when the first lines have a token and a tag-like last column, or say -DOCSTART-; for
    a folder, when its first split file (train.txt, eng.train ...) does."""
    if path.is_dir():
        files = [path / name for names in SPLIT_FILES.values() for name in names
                 if (path / name).is_file()]
        if not files:
            return False
        with files[0].open("rb") as handle:
            head = handle.read(64 * 1024).decode("utf-8", errors="replace")
    lines = head.split("\n")
    lines = lines[:-1] if len(lines) > 1 else lines  # the last may be cut short
    looked = [_columns(line) for line in lines if line.strip(" \t\r")][:LINES_LOOKED_AT]
    return bool(looked) and all(
        columns[0] == DOCSTART or (len(columns) >= 2 and is_scheme_tag(columns[-1]))
        for columns in looked)


def read(path: Path, report: Report, tag_column: int = -1) -> list[Example]:
    """The sentences of a CoNLL file (or of every split file of a folder) as examples.

    ``tag_column`` is the column of the tags, counted from 0 (the token's), negative from the
    last (the default, -1).
    """
    path = Path(path)
    if path.is_dir():
        return [e for examples in read_splits(path, report, tag_column=tag_column).values()
                for e in examples]
    sentences, scheme = read_sentences(path, tag_column)
    report.records += len(sentences)
    report.format = f"{NAME} ({scheme})"
    return from_sentences(sentences, path.name)


def read_splits(path: Path, report: Report, tag_column: int = -1) -> dict[str, list[Example]]:
    """The examples of a folder's train, validation and test files (found by their usual names,
    as ``data.find_split_files``), or of one file as the split ``train``."""
    path = Path(path)
    files = find_split_files(path) if path.is_dir() else {"train": path}
    splits, schemes, next_doc = {}, [], 0
    for split, file in files.items():
        sentences, scheme = read_sentences(file, tag_column)
        for sentence in sentences:  # documents of different files stay apart
            sentence.doc_id += next_doc
        next_doc = max(s.doc_id for s in sentences) + 1
        report.records += len(sentences)
        schemes.append(scheme)
        splits[split] = from_sentences(sentences, file.name)
    report.format = f"{NAME} ({', '.join(dict.fromkeys(schemes))})"
    return splits


def read_sentences(path: Path, tag_column: int = -1) -> tuple[list[Sentence], str]:
    """The IOB2-tagged sentences of one CoNLL file and the scheme its tags were in.

    Raises ``UserError`` naming the file and line for anything it cannot read; nothing is
    returned half-read.
    """
    path = Path(path)
    if isinstance(tag_column, bool) or not isinstance(tag_column, int):
        raise UserError(f"expected the tag column as a whole number (0 is the token's, -1 the "
                        f"last), found {tag_column!r}")
    text = read_utf8(path, "a CoNLL file")
    if not text.strip():
        raise UserError(f"{path}: expected CoNLL text, found an empty file")
    sentences, lines = _parse(path, text, tag_column)
    if not sentences:
        raise UserError(f"{path}: expected sentences of 'token ... tag' lines, found none")
    scheme = tag_scheme([s.tags for s in sentences])
    for sentence, numbers in zip(sentences, lines):
        problem = sequence_problem(sentence.tags, scheme)
        if problem is not None:
            raise UserError(f"{path}:{numbers[problem[0]]}: {problem[1]}")
        sentence.tags = to_iob2(sentence.tags, scheme)
    if scheme != "IOB2":
        logger.info("%s uses %s tags; read as IOB2", path, scheme)
    return sentences, scheme


def _parse(path: Path, text: str, tag_column: int) -> tuple[list[Sentence], list[list[int]]]:
    """The sentences of ``text`` as the file tags them, and the line of each of their tokens."""
    sentences: list[Sentence] = []
    lines: list[list[int]] = []
    tokens: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []
    n_columns = None
    doc_id, saw_docstart = 0, False

    def close_sentence() -> None:
        if tokens:
            sentences.append(Sentence(list(tokens), list(tags), doc_id, numbers[0]))
            lines.append(list(numbers))
            tokens.clear()
            tags.clear()
            numbers.clear()

    for number, line in enumerate(text.split("\n"), start=1):
        columns = _columns(line)
        if not columns:
            close_sentence()
            continue
        if columns[0] == DOCSTART:
            close_sentence()
            doc_id += saw_docstart or bool(sentences)
            saw_docstart = True
            continue
        n_columns = _checked_count(path, number, line, columns, n_columns)
        tag = columns[_tag_index(path, number, line, len(columns), tag_column)]
        if not is_scheme_tag(tag):
            raise UserError(f"{path}:{number}: {scheme_tag_problem(tag)}")
        tokens.append(columns[0])
        tags.append(tag)
        numbers.append(number)
    close_sentence()
    if not saw_docstart:
        # Without -DOCSTART- nothing says which sentences belong together: keep each alone.
        for i, sentence in enumerate(sentences):
            sentence.doc_id = i
    return sentences, lines


def _columns(line: str) -> list[str]:
    columns = _COLUMNS.split(line.rstrip("\r").strip(" \t"))
    return [] if columns == [""] else columns


def _checked_count(path: Path, number: int, line: str, columns: list[str],
                   n_columns: int | None) -> int:
    if n_columns is None:
        if len(columns) < 2:
            raise UserError(f"{path}:{number}: expected at least 2 columns (token ... tag), "
                            f"found 1: {line.strip()!r}")
        return len(columns)
    if len(columns) != n_columns:
        raise UserError(f"{path}:{number}: expected {n_columns} columns like the lines above, "
                        f"found {len(columns)}: {line.strip()!r}")
    return n_columns


def _tag_index(path: Path, number: int, line: str, n_columns: int, tag_column: int) -> int:
    index = tag_column if tag_column >= 0 else n_columns + tag_column
    if not 1 <= index < n_columns:
        which = "the token's" if index == 0 else "not there"
        raise UserError(f"{path}:{number}: expected the tag in column {tag_column} (0 is the "
                        f"token's, -1 the last), found {n_columns} columns, so that column is "
                        f"{which}: {line.strip()!r}")
    return index


def write(examples: list[Example], path: Path, scheme: str = "IOB2") -> None:
    """Aligned examples as ``word TAG`` lines (IOB2, or BIOES/IOB1 when ``scheme`` says), a blank
    line after each sentence and ``-DOCSTART- O`` before each document."""
    if scheme not in WRITTEN_SCHEMES:
        raise UserError(f"expected a tag scheme to write among {', '.join(WRITTEN_SCHEMES)}, "
                        f"found {scheme!r}")
    for example in examples:
        _check_words(example)
    lines, document = [], None
    for sentence in to_sentences(examples):
        if not sentence.tokens:
            continue
        if sentence.doc_id != document:
            lines += [f"{DOCSTART} O", ""]
            document = sentence.doc_id
        tags = WRITTEN_SCHEMES[scheme](sentence.tags)
        lines += [f"{token} {tag}" for token, tag in zip(sentence.tokens, tags)] + [""]
    write_text(Path(path), "\n".join(lines) + "\n" if lines else "")


def _check_words(example: Example) -> None:
    """A word must make one column: no spaces in it, and not the document marker."""
    for start, end in example.words or []:
        word = example.text[start:end]
        if word == DOCSTART or any(c.isspace() for c in word):
            what = "a document boundary" if word == DOCSTART else "several columns"
            raise UserError(f"{example.where()}: expected words that make one CoNLL column "
                            f"each, found {word!r}, which would read back as {what}")
