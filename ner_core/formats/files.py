"""Files of the formats: JSON records with the line each starts on, and files and folders written
whole or not at all (built beside the target, then renamed onto it).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from ..data import read_utf8
from ..errors import UserError
from .example import Example, Report
from .json_array import array_records


def json_records(path: Path, what: str, *, array: bool = False) -> list[tuple[int, dict]]:
    """``(line, object)`` for each non-blank line of a JSON Lines file, in file order; with
    ``array``, a file that is one JSON array of objects is read too (each record with the line it
    starts on).

    Invalid JSON, a line that is not an object and a file without records are refused, naming
    the file and the line (or the record).
    """
    text = read_utf8(path, what)
    if array and text.lstrip().startswith("["):
        return _array_records(path, what, text)
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: expected a JSON object, found invalid JSON "
                            f"({error.msg} at column {error.colno})") from None
        if not isinstance(value, dict):
            raise UserError(f"{path}:{number}: expected a JSON object, found {kind(value)}")
        found.append((number, value))
    if not found:
        raise UserError(f"{path}: expected {what}, one JSON object a line, found an empty file")
    return found


def _array_records(path: Path, what: str, text: str) -> list[tuple[int, dict]]:
    records = array_records(path, f"{what}, a JSON array of objects", text)
    found = []
    for index, (value, line) in enumerate(records):
        if not isinstance(value, dict):
            raise UserError(f"{path}:{line}: expected record {index + 1} as a JSON object, found "
                            f"{kind(value)}")
        found.append((line, value))
    if not found:
        raise UserError(f"{path}: expected {what}, a JSON array of objects, found an empty array")
    return found


def examples_of(path: Path, report: Report, what: str,
                example: Callable[[int, int, dict], Example | None]) -> list[Example]:
    """The examples of a JSON Lines file: ``example(index, line, record)`` for each record, in
    file order, those it answers ``None`` for (counted there) left out."""
    records = json_records(path, what)
    report.records += len(records)
    made = (example(index, number, record) for index, (number, record) in enumerate(records))
    return [found for found in made if found is not None]


def kind(value: object) -> str:
    """What a JSON value is, in words, for messages.

    >>> kind([1]), kind("a"), kind(None), kind(3.5), kind(True)
    ('a list', 'a string', 'null', 'a number', 'true')
    """
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def first_record(head: str) -> dict | None:
    """The first JSON object of a file's head (JSON Lines, or a JSON array), ``None`` when it
    does not start with one.

    >>> first_record('\\n{"text": "Anna"}\\n{"text": "Bob"}\\n'), first_record('[{"a": 1}, {"a": 2}]')
    ({'text': 'Anna'}, {'a': 1})
    >>> first_record("Anna B-PER") is None
    True
    """
    stripped = head.lstrip()
    if stripped.startswith("["):
        stripped = stripped[1:].lstrip()
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def is_whole_number(value: object) -> bool:
    """True for a JSON whole number (``true`` and ``false`` are not).

    >>> [is_whole_number(v) for v in (3, 3.0, True, "3")]
    [True, False, False, False]
    """
    return isinstance(value, int) and not isinstance(value, bool)


def write_jsonl(path: Path, objects: list[dict]) -> None:
    """Write one JSON object a line (UTF-8, characters as they are), whole or not at all."""
    write_text(path, "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects))


def write_text(path: Path, content: str) -> None:
    """Write ``content`` as UTF-8 to ``path``, whole or not at all."""
    replace_file(path, lambda temporary: temporary.write_bytes(content.encode("utf-8")))


def replace_file(path: Path, write: Callable[[Path], object]) -> None:
    """Let ``write`` fill a temporary file beside ``path``, then put it in place in one rename;
    on any failure the temporary file is removed and ``path`` is as it was."""
    temporary = _beside(path, ".part")
    try:
        write(temporary)
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise _unwritable(path, error) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def replace_folder(path: Path, build: Callable[[Path], object]) -> None:
    """Let ``build`` fill a new folder beside ``path``, then put it in place: a folder already
    there is renamed aside first and removed only once the new one is in place."""
    built = _beside(path, ".part")
    old = None
    try:
        built.mkdir()
        build(built)
        if path.exists():
            if not path.is_dir():
                raise UserError(f"{path}: expected a folder to write, found a file of that name")
            old = _beside(path, ".old")
            os.replace(path, old)
        os.replace(built, path)
    except OSError as error:
        shutil.rmtree(built, ignore_errors=True)
        raise _unwritable(path, error) from None
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise
    finally:
        if old is not None:
            if not path.exists():  # the new folder did not arrive: put the old one back
                os.replace(old, path)
            else:
                shutil.rmtree(old)


def _beside(path: Path, suffix: str) -> Path:
    """A new name in ``path``'s folder (created if need be), hidden, that nothing else uses; the
    file or folder made there gets the usual permissions, unlike ``tempfile``'s private ones."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(path, error) from None
    return path.parent / f".{path.name}.{uuid.uuid4().hex}{suffix}"


def _unwritable(path: Path, error: OSError) -> UserError:
    return UserError(f"{path}: could not be written ({error.strerror or error}); expected a "
                     "writable folder with free space")
