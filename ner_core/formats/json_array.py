"""The records of a JSON file (an array, or a single value) with the line each starts on, so that
the JSON formats (Label Studio, spaCy's JSON) say ``file:line`` in their messages as the JSONL
formats do.

The standard library's decoder reads each record (``raw_decode``); only the array's brackets and
commas are walked here, which is what finding each record's line needs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..data import read_utf8
from ..errors import UserError

_BLANK = re.compile(r"[ \t\n\r]*")  # the whitespace JSON allows between values
_DECODER = json.JSONDecoder()


def array_records(path: Path, what: str, text: str | None = None) -> list[tuple[object, int]]:
    """Each record of the JSON file ``path`` with its 1-based line: the items of a top-level
    array, or the one top-level value. ``what`` names the expected content for messages;
    ``text`` is the file's content when the caller has read it already.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "tasks.json")
    ...     _ = path.write_text('[\\n  {"a": 1},\\n  {"a": 2}\\n]\\n')
    ...     array_records(path, "tasks")
    [({'a': 1}, 2), ({'a': 2}, 3)]
    """
    text = read_utf8(path, what) if text is None else text
    lines = _Lines(text)
    at = _skip(text, 0)
    if at == len(text):
        raise UserError(f"{path}: expected {what} as JSON, found an empty file")
    if text[at] != "[":
        value, end = _decode(text, at, path, what)
        _expect_end(text, end, path, lines)
        return [(value, lines.at(at))]
    records: list[tuple[object, int]] = []
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        _expect_end(text, at + 1, path, lines)
        return records
    while True:
        value, end = _decode(text, at, path, what)
        records.append((value, lines.at(at)))
        at = _skip(text, end)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
        elif text.startswith("]", at):
            _expect_end(text, at + 1, path, lines)
            return records
        else:
            raise UserError(f"{path}:{lines.at(at)}: expected ',' or ']' after record "
                            f"{len(records)}, found {_found(text, at)}")


class _Lines:
    """Line numbers of offsets visited in increasing order, counted once."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        if offset < self.offset:  # only for a message after an earlier offset: count afresh
            return self.text.count("\n", 0, offset) + 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _skip(text: str, at: int) -> int:
    match = _BLANK.match(text, at)
    return match.end() if match else at


def _decode(text: str, at: int, path: Path, what: str) -> tuple[object, int]:
    try:
        return _DECODER.raw_decode(text, at)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: expected {what} as JSON, found "
                        f"{error.msg.lower()} (column {error.colno})") from None


def _expect_end(text: str, at: int, path: Path, lines: _Lines) -> None:
    at = _skip(text, at)
    if at < len(text):
        raise UserError(f"{path}:{lines.at(at)}: expected the end of the JSON, found "
                        f"{_found(text, at)}")


def _found(text: str, at: int) -> str:
    return repr(text[at:at + 20]) if at < len(text) else "the end of the file"
