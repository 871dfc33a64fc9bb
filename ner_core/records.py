"""The texts of a file, one record at a time: ``.txt``, ``.jsonl``, ``.csv`` and ``.tsv``.

Files are read a line at a time, never whole, so a gigabyte of input costs the memory of a line.
Each record knows the line it starts on; bad input is a ``UserError`` naming the file, the line
and what was expected. What is written for a record and its entities (a JSON object, CSV rows) is
decided here too, so the command line and the app write the same files.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import utf8
from .errors import UserError

FORMATS = {".txt": "txt", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv"}
TEXT_FIELD = "text"  # the JSONL field or CSV column read unless another is named
CSV_COLUMNS = ["line", "type", "text", "score", "start", "end"]  # one output row per entity
MAX_LINE_BYTES = 64 * 2**20  # a longer JSONL or CSV line is refused rather than read into memory
_READ_PAST_BYTES = 2**20  # a text line too long to recognize is read past in pieces this size
_DIALECTS = {"csv": csv.excel, "tsv": csv.excel_tab}


@dataclass(frozen=True)
class Record:
    """One text of a file.

    ``line`` is where it starts (1-based); ``fields`` are what it came with: the JSON object, the
    CSV row by column, or ``{"line", "text"}`` for a line of a text file; ``end`` is how many
    bytes of the file have been read once it is (for progress).
    """

    line: int
    text: str
    fields: dict
    end: int


def input_format(path: str | Path) -> str:
    """The format of a file of texts, from its extension.

    >>> input_format("notes.JSONL")
    'jsonl'
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{path}: expected a file ending in .txt, .jsonl, .csv or .tsv, "
                        f"found {suffix or 'no extension'!r}")
    return FORMATS[suffix]


def read_records(path: str | Path, text_field: str = TEXT_FIELD, *, max_chars: int | None = None,
                 on_skip: Callable[[int], None] | None = None) -> Iterator[Record]:
    """The records of ``path`` in file order, read lazily.

    ``text_field`` names the JSONL field or the CSV/TSV column holding the text (a text file is one
    text per line, split at ``\\n`` only). A text longer than ``max_chars`` is not an error: it is
    left out and its line passed to ``on_skip``; a text line that long is never held in memory.
    """
    path = Path(path)
    fmt = input_format(path)
    if not path.is_file():
        raise UserError(f"{path}: expected a {fmt} file, found no such file")
    with path.open("rb") as handle:
        if fmt == "txt":
            records = _text_records(path, handle, max_chars, on_skip)
        elif fmt == "jsonl":
            records = _json_records(path, handle, text_field)
        else:
            records = _table_records(path, handle, text_field, fmt)
        for record in records:
            if max_chars is not None and len(record.text) > max_chars:
                if on_skip is not None:
                    on_skip(record.line)
                continue
            yield record


def csv_columns(path: str | Path) -> list[str]:
    """The column names in the header of a ``.csv`` or ``.tsv`` file (for a column picker)."""
    path = Path(path)
    fmt = input_format(path)
    if fmt not in _DIALECTS:
        raise UserError(f"{path}: expected a .csv or .tsv file, found a {fmt} file")
    if not path.is_file():
        raise UserError(f"{path}: expected a {fmt} file, found no such file")
    with path.open("rb") as handle:
        rows = _rows(path, handle, fmt, {})
        return _header(path, next(rows, None))[1]


def text_fields(path: str | Path) -> list[str]:
    """Where a file's texts can be read from (for a field picker): a CSV/TSV file's columns, the
    string fields of a JSONL file's first object, else ``text`` (a text file, or a JSONL file whose
    first line is not an object: reading its records says what is wrong)."""
    path = Path(path)
    fmt = input_format(path)
    if fmt in _DIALECTS:
        return csv_columns(path)
    if fmt == "txt":
        return [TEXT_FIELD]
    if not path.is_file():
        raise UserError(f"{path}: expected a {fmt} file, found no such file")
    with path.open("rb") as handle:
        lines = _lines(path, handle, MAX_LINE_BYTES, refuse_longer=True)
        first = next((line for _, line, _ in lines if line.strip()), "")
    try:
        value = json.loads(first)
    except json.JSONDecodeError:
        return [TEXT_FIELD]
    names = [k for k, v in value.items() if isinstance(v, str)] if isinstance(value, dict) else []
    return names or [TEXT_FIELD]


def output_object(record: Record, entities: list[dict]) -> dict:
    """The JSONL output of a record: its fields plus ``entities`` (replacing a field of that name).

    >>> anna = {"start": 0, "end": 4, "label": "PER", "score": 0.9, "text": "Anna"}
    >>> output_object(Record(3, "Anna", {"id": 7, "text": "Anna"}, 0), [anna]) == {
    ...     "id": 7, "text": "Anna", "entities": [anna]}
    True
    """
    return {**record.fields, "entities": entities}


def csv_rows(record: Record, entities: list[dict]) -> list[list]:
    """The CSV output of a record: one row per entity, in the order of ``CSV_COLUMNS``.

    >>> csv_rows(Record(3, "Anna", {}, 0),
    ...          [{"start": 0, "end": 4, "label": "PER", "score": 0.9, "text": "Anna"}])
    [[3, 'PER', 'Anna', 0.9, 0, 4]]
    """
    return [[record.line, e["label"], e["text"], e["score"], e["start"], e["end"]]
            for e in entities]


def _text_records(path: Path, handle, max_chars: int | None, on_skip) -> Iterator[Record]:
    # A character is at most 4 bytes of UTF-8: a line longer than this (with its '\r\n') is too
    # long whatever it holds, and is read past rather than read.
    limit = None if max_chars is None else 4 * max_chars + 2
    for number, line, end in _lines(path, handle, limit, refuse_longer=False):
        if line is None:
            if on_skip is not None:
                on_skip(number)
            continue
        text = line.removesuffix("\n").removesuffix("\r")
        yield Record(number, text, {"line": number, "text": text}, end)


def _json_records(path: Path, handle, text_field: str) -> Iterator[Record]:
    for number, line, end in _lines(path, handle, MAX_LINE_BYTES, refuse_longer=True):
        if not line.strip():
            continue  # blank lines (a trailing one, most often) hold no record
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: expected a JSON object, found invalid JSON "
                            f"({error.msg} at column {error.colno})") from None
        if not isinstance(value, dict):
            raise UserError(f"{path}:{number}: expected a JSON object, found {_kind(value)}")
        if text_field not in value:
            raise UserError(f"{path}:{number}: expected a field {text_field!r}, found "
                            f"{_names('field', list(value))}")
        if not isinstance(value[text_field], str):
            raise UserError(f"{path}:{number}: expected a string in the field {text_field!r}, "
                            f"found {_kind(value[text_field])}")
        yield Record(number, value[text_field], value, end)


def _table_records(path: Path, handle, column: str, fmt: str) -> Iterator[Record]:
    read = {}
    rows = _rows(path, handle, fmt, read)
    header_line, columns = _header(path, next(rows, None))
    if column not in columns:
        raise UserError(f"{path}:{header_line}: expected a column {column!r}, found "
                        f"{_names('column', columns)}")
    at = columns.index(column)
    for number, row in rows:
        if len(row) != len(columns):
            raise UserError(f"{path}:{number}: expected {len(columns)} fields as in the header, "
                            f"found {len(row)}")
        yield Record(number, row[at], dict(zip(columns, row)), read["end"])


def _header(path: Path, first) -> tuple[int, list[str]]:
    if first is None:
        raise UserError(f"{path}:1: expected a header row naming the columns, found no rows")
    number, columns = first
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise UserError(f"{path}:{number}: expected distinct column names in the header, found "
                        f"{', '.join(map(repr, repeated))} more than once")
    return number, columns


def _rows(path: Path, handle, fmt: str, read: dict) -> Iterator[tuple[int, list[str]]]:
    """(starting line, fields) of each non-blank row; ``read["end"]`` follows the bytes read."""
    def lines():
        for _, line, end in _lines(path, handle, MAX_LINE_BYTES, refuse_longer=True):
            read["end"] = end
            yield line

    # Quoted fields may span lines: a field is bounded like a line, not by csv's 128 KiB default.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    reader = csv.reader(lines(), _DIALECTS[fmt], strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise UserError(f"{path}:{reader.line_num}: expected {fmt.upper()} fields, found an "
                            f"error: {error}") from None
        if row:
            yield start, row


def _lines(path: Path, handle, limit: int | None, refuse_longer: bool):
    """(number, line with its ``\\n``, bytes read) for each line, decoded as UTF-8. A line of more
    than ``limit`` bytes is refused, or (``refuse_longer=False``) read past and given as None."""
    position = 0
    for number in itertools.count(1):
        raw = handle.readline(-1 if limit is None else limit + 1)
        if not raw:
            return
        position += len(raw)
        if number == 1:
            raw = utf8.without_bom(raw, path)
        if limit is not None and len(raw) > limit and not raw.endswith(b"\n"):
            if refuse_longer:
                raise UserError(f"{path}:{number}: expected a line of at most {limit:,} bytes, "
                                "found a longer one")
            position += _read_past(path, handle, number, raw)
            yield number, None, position
        else:
            yield number, utf8.decode(raw, path, number), position


def _read_past(path: Path, handle, number: int, start: bytes) -> int:
    """Read the rest of a line too long to hold, piece by piece, checking that it is UTF-8.
    Returns the bytes read after ``start``."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8.decode(start, path, number, decoder=decoder)
    offset = len(start)
    while not (piece := handle.readline(_READ_PAST_BYTES)).endswith(b"\n") and piece:
        utf8.decode(piece, path, number, decoder=decoder, offset=offset)
        offset += len(piece)
    utf8.decode(piece, path, number, decoder=decoder, offset=offset, final=True)
    return offset + len(piece) - len(start)


def _kind(value) -> str:
    """A JSON value's kind, in words."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    kinds = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return kinds[type(value)]


def _names(what: str, names: list[str], shown: int = 10) -> str:
    """``the fields 'a', 'b'`` (the first ``shown`` of them), or ``no fields``."""
    if not names:
        return f"no {what}s"
    listed = ", ".join(map(repr, names[:shown])) + (", ..." if len(names) > shown else "")
    return f"the {what}{'s' if len(names) > 1 else ''} {listed}"
