"""Named datasets of accepted examples: a model's entities as a person corrected them, kept to
fine-tune on.

A dataset is one JSONL file ``<name>.jsonl`` under ``data_home()``, one accepted example a line:
``{"text", "entities": [{"start", "end", "label", "text"}], "model", "accepted_at"}``. A line is
only ever written whole, appended under an exclusive ``flock`` and synced to disk before the call
returns, so an accept survives a crash and two visitors' lines never interleave. A line cut short
by a crash mid-write is skipped with a warning when read, and dropped by the next append.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import tempfile
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from . import runs, utf8
from .data import Sentence
from .errors import UserError
from .text import segment, split_words

logger = logging.getLogger(__name__)

DATA_HOME_ENV = "NER_DATA_HOME"
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
_TAIL_CHUNK = 64 * 1024


def data_home() -> Path:
    """``$NER_DATA_HOME``; else ``datasets/`` beside the runs directory (``/data/datasets`` on a
    Space with persistent storage)."""
    if os.environ.get(DATA_HOME_ENV):
        return Path(os.environ[DATA_HOME_ENV])
    return runs.runs_dir().parent / "datasets"


def check_name(name: str) -> str:
    """``name`` when it can name a dataset file; a ``UserError`` for anything path-like.

    >>> check_name("corrections-2.1")
    'corrections-2.1'
    >>> check_name("../x")
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: expected a dataset name of letters, digits, '-', '_' and '.', found '../x'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError("expected a dataset name of letters, digits, '-', '_' and '.', "
                        f"found {name!r}")
    return name


def dataset_path(name: str) -> Path:
    return data_home() / f"{check_name(name)}.jsonl"


def dataset_names() -> list[str]:
    """The datasets under ``data_home()``, sorted by name."""
    home = data_home()
    if not home.is_dir():
        return []
    return sorted(p.stem for p in home.glob("*.jsonl") if _NAME.match(p.stem) and p.is_file())


def snap(text: str, entities: list[dict]) -> tuple[list[dict], list[str]]:
    """Entities on whole words, sorted, as ``{"start", "end", "label", "text"}``, and notes on what
    was changed. A span that cuts a word is widened to the whole word; surrounding spaces are
    trimmed. Empty, whitespace-only, out-of-range and overlapping spans are refused.

    >>> snap("Anna met them in Berlin.", [{"start": 18, "end": 22, "label": "LOC"}])
    ([{'start': 17, 'end': 23, 'label': 'LOC', 'text': 'Berlin'}], ["'erli' widened to 'Berlin'"])
    """
    if not isinstance(entities, list):
        raise UserError(f"expected a list of entities, found {type(entities).__name__}")
    words = split_words(text)
    snapped, notes = [], []
    for number, entity in enumerate(entities, start=1):
        start, end, label = _checked(text, number, entity)
        inside = [(a, b) for a, b in words if a < end and b > start]
        if not inside:
            raise UserError(f"entity {number} ({label}) at {start}-{end}: expected a span with "
                            f"words in it, found only whitespace {text[start:end]!r}")
        new_start, new_end = inside[0][0], inside[-1][1]
        if (new_start, new_end) != (start, end):
            how = "widened" if new_start < start or new_end > end else "trimmed"
            notes.append(f"{text[start:end]!r} {how} to {text[new_start:new_end]!r}")
        snapped.append({"start": new_start, "end": new_end, "label": label,
                        "text": text[new_start:new_end]})
    snapped.sort(key=lambda e: (e["start"], e["end"]))
    for before, after in zip(snapped, snapped[1:]):
        if after["start"] < before["end"]:
            raise UserError(f"entities overlap: {_described(before)} and {_described(after)}")
    return snapped, notes


def _checked(text: str, number: int, entity) -> tuple[int, int, str]:
    """An entity's start, end and label, checked against ``text``."""
    if not isinstance(entity, dict) or not {"start", "end", "label"} <= set(entity):
        raise UserError(f"entity {number}: expected an object with 'start', 'end' and 'label', "
                        f"found {entity!r}")
    start, end, label = entity["start"], entity["end"], entity["label"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise UserError(f"entity {number}: expected whole-number offsets, found start={start!r} "
                        f"and end={end!r}")
    if not isinstance(label, str) or not label.strip() or len(label.split()) != 1:
        raise UserError(f"entity {number} at {start}-{end}: expected a type without spaces like "
                        f"'PER' or 'LOC', found {label!r}")
    utf8.check_text(label, f"entity {number} at {start}-{end}")
    if not 0 <= start < end <= len(text):
        kind = "an empty span" if start == end else f"{start}-{end}"
        raise UserError(f"entity {number} ({label.strip()}): expected offsets with 0 <= start < "
                        f"end <= {len(text)} (the text's length), found {kind} at {start}-{end}")
    return start, end, label.strip()


def _described(entity: dict) -> str:
    return f"{entity['text']!r} ({entity['start']}-{entity['end']}, {entity['label']})"


def append(name: str, text: str, entities: list[dict], model: str | None = None) -> dict[str, int]:
    """Add an accepted example to the dataset ``name`` (created on first use); the entity counts
    per type of the dataset afterwards. An example with no entities is allowed: it teaches what is
    not an entity."""
    path = dataset_path(name)
    if not isinstance(text, str) or not text.strip():
        raise UserError("expected a text with at least one word to accept, found an empty text")
    utf8.check_text(text)
    snapped, _ = snap(text, entities)  # checks each type too
    example = {"text": text, "entities": snapped, "model": model,
               "accepted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    line = (json.dumps(example, ensure_ascii=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path, fcntl.LOCK_EX, create=True) as descriptor:
        size = _drop_partial_tail(path, descriptor)
        try:
            _write_all(descriptor, line)
            os.fsync(descriptor)
        except OSError as error:
            os.ftruncate(descriptor, size)  # never leave half a line behind
            raise UserError(f"{path}: the example could not be saved ({error.strerror or error}); "
                            "expected a writable directory with free space") from None
        if size == 0:
            _sync_directory(path.parent)  # the new file's name survives a crash too
        return _counts(_parsed_lines(path, _read_all(descriptor)))


@contextmanager
def _locked(path: Path, operation: int, create: bool = False):
    """A descriptor of ``path`` holding an ``flock``: shared to read, exclusive to change."""
    if operation == fcntl.LOCK_SH:
        flags = os.O_RDONLY
    else:
        flags = os.O_RDWR | (os.O_APPEND | os.O_CREAT if create else 0)
    descriptor = os.open(path, flags, 0o644)
    try:
        fcntl.flock(descriptor, operation)
        yield descriptor
    finally:
        os.close(descriptor)  # closing releases the lock


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _drop_partial_tail(path: Path, descriptor: int) -> int:
    """Cut what a crash left after the last complete line (the caller holds the lock); the size
    of the complete lines."""
    size = os.fstat(descriptor).st_size
    complete = _complete_length(descriptor, size)
    if complete < size:
        logger.warning("%s: dropped %d bytes of an example cut short by a crash", path,
                       size - complete)
        os.ftruncate(descriptor, complete)
    return complete


def _complete_length(descriptor: int, size: int) -> int:
    """The length of the file up to and including its last newline."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        chunk = os.pread(descriptor, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def examples(name: str) -> list[dict]:
    """The accepted examples of ``name`` in the order they were accepted (none for a dataset not
    yet created)."""
    path = dataset_path(name)
    if not path.is_file():
        return []
    with _locked(path, fcntl.LOCK_SH) as descriptor:
        return _parsed_lines(path, _read_all(descriptor))


def _read_all(descriptor: int) -> bytes:
    size = os.fstat(descriptor).st_size
    return os.pread(descriptor, size, 0) if size else b""


def _parsed_lines(path: Path, raw: bytes) -> list[dict]:
    complete = raw.rfind(b"\n") + 1
    if complete < len(raw):
        line = raw[:complete].count(b"\n") + 1
        logger.warning("%s:%d: ignored an example cut short by a crash (%d bytes without an end "
                       "of line)", path, line, len(raw) - complete)
    found = []
    for number, line in enumerate(raw[:complete].split(b"\n")[:-1], start=1):
        if line.strip():
            found.append(_parsed(path, number, line))
    return found


def _parsed(path: Path, number: int, line: bytes) -> dict:
    try:
        example = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}:{number}: expected an accepted example as a JSON object, found "
                        f"invalid JSON ({error})") from None
    if not isinstance(example, dict) or not isinstance(example.get("text"), str) \
            or not isinstance(example.get("entities"), list):
        raise UserError(f"{path}:{number}: expected a JSON object with 'text' and 'entities', "
                        f"found {line[:80].decode('utf-8', 'replace')!r}")
    for entity in example["entities"]:
        # Lines were snapped when appended; only what a hand edit could break is checked here.
        if not isinstance(entity, dict) or not isinstance(entity.get("label"), str) \
                or not _in_text(example["text"], entity.get("start"), entity.get("end")):
            raise UserError(f"{path}:{number}: expected entities with 'start' and 'end' inside "
                            f"the text and a 'label', found {entity!r}")
    example["line"] = number
    return example


def _in_text(text: str, start, end) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) \
        and 0 <= start < end <= len(text)


def counts(name: str) -> dict[str, int]:
    """Entities per type in the dataset ``name``, sorted by type."""
    return _counts(examples(name))


def _counts(found: list[dict]) -> dict[str, int]:
    tally = Counter(e["label"] for example in found for e in example["entities"])
    return dict(sorted(tally.items()))


def remove_last(name: str, text: str) -> bool:
    """Undo the last accept: remove the dataset's last example if it is of ``text``; whether it
    was."""
    path = dataset_path(name)
    if not path.is_file():
        return False
    with _locked(path, fcntl.LOCK_EX) as descriptor:
        size = _drop_partial_tail(path, descriptor)
        start = _complete_length(descriptor, size - 1) if size else 0
        last = os.pread(descriptor, size - start, start)
        try:
            removable = bool(last.strip()) and json.loads(last).get("text") == text
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            removable = False
        if removable:
            os.ftruncate(descriptor, start)
            os.fsync(descriptor)
        return removable


def to_sentences(name: str) -> list[Sentence]:
    """The dataset as tagged sentences: each example split into sentences and words as the
    recognizer splits text, tagged IOB2 from its entity spans, one document per example.

    Sentences an entity runs across (the splitter broke inside a name, as in ``U.S. Steel``) are
    joined, so every entity stays whole. A dataset with no examples yet has no sentences.
    """
    sentences = []
    for doc_id, example in enumerate(examples(name)):
        for words in _joined_sentences(example["text"], example["entities"]):
            tokens = [example["text"][a:b] for a, b in words]
            sentences.append(Sentence(tokens, _tags(words, example["entities"]), doc_id,
                                      example["line"]))
    return sentences


def _joined_sentences(text: str, entities: list[dict]) -> list[list[tuple[int, int]]]:
    groups: list[list[tuple[int, int]]] = []
    for sentence in (s for paragraph in segment(text) for s in paragraph):
        if groups and any(e["start"] < groups[-1][-1][1] and e["end"] > sentence[0][0]
                          for e in entities):
            groups[-1].extend(sentence)
        else:
            groups.append(list(sentence))
    return groups


def _tags(words: list[tuple[int, int]], entities: list[dict]) -> list[str]:
    tags, previous = [], None
    for a, b in words:
        entity = next((e for e in entities if e["start"] <= a and b <= e["end"]), None)
        if entity is None:
            tags.append("O")
        else:
            tags.append(("I-" if entity is previous else "B-") + entity["label"])
        previous = entity
    return tags


def export_conll(name: str, path: str | Path) -> Path:
    """Write the dataset as CoNLL (``word TAG`` lines, IOB2), a ``-DOCSTART- O`` line before each
    example so document context never crosses texts; written whole or not at all."""
    sentences = to_sentences(name)
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


def export_jsonl(name: str, path: str | Path) -> Path:
    """Write the dataset's complete examples as JSONL (one example a line), whole or not at all."""
    found = examples(name)
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
