"""Named datasets of accepted examples: a model's entities as a person corrected them, kept to
fine-tune on.

A dataset is one JSONL file ``<name>.jsonl``, one accepted example a line:
``{"text", "entities": [{"start", "end", "label", "text"}], "model", "accepted_at"}``. A line is
only ever written whole, appended under an exclusive ``flock`` and synced to disk before the call
returns, so an accept survives a crash and two visitors' lines never interleave. A line cut short
by a crash mid-write is skipped with a warning when read, and dropped by the next append
(``dataset_file``).

Every function that names a dataset takes its ``owner`` (an owner string of ``tenancy``), and
reaches only a dataset that owner may name (``dataset_paths`` says where each one is). Quotas per
owner and per dataset, and the disk budget, are checked before anything is written.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import logging
import os
from collections import Counter
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path

from . import tenancy, utf8
from .dataset_file import (
    cached_tally,
    complete_length,
    drop_partial_tail,
    forget_tally,
    locked,
    read_all,
    remember_tally,
    stamp_of,
    write_all,
)
from .dataset_paths import dataset_path, names_in, shown, whose
from .errors import UserError
from .text import split_words

logger = logging.getLogger(__name__)

_word_start, _word_end = itemgetter(0), itemgetter(1)


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
        # Words are sorted and apart: those the span touches are one run, found by bisection
        # (the first that ends after ``start``, up to the first that starts at ``end`` or later).
        first = bisect.bisect_right(words, start, key=_word_end)
        after = bisect.bisect_left(words, end, key=_word_start)
        if first >= after:
            raise UserError(f"entity {number} ({label}) at {start}-{end}: expected a span with "
                            f"words in it, found only whitespace {text[start:end]!r}")
        new_start, new_end = words[first][0], words[after - 1][1]
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


def append(name: str, text: str, entities: list[dict], model: str | None = None, *,
           owner: str | None = None) -> dict[str, int]:
    """Add an accepted example to the dataset ``name`` of ``owner`` (created on first use); the
    entity counts per type of the dataset afterwards. An example with no entities is allowed: it
    teaches what is not an entity.

    Refused past the quotas (``NER_MAX_ACCEPT_CHARS`` and ``NER_MAX_ACCEPT_ENTITIES`` for the
    example, ``NER_MAX_DATASET_RECORDS`` for the dataset, ``NER_MAX_DATASETS`` for a new one) and
    the disk budget. The counts are kept as examples come and go, not read again from the file.
    """
    path = dataset_path(name, owner=owner)
    if not isinstance(text, str) or not text.strip():
        raise UserError("expected a text with at least one word to accept, found an empty text")
    tenancy.check_count("NER_MAX_ACCEPT_CHARS", len(text), "characters in one accepted text")
    if isinstance(entities, list):  # anything else is refused by snap, saying what it found
        tenancy.check_count("NER_MAX_ACCEPT_ENTITIES", len(entities),
                            "entities in one accepted text")
    utf8.check_text(text)
    snapped, _ = snap(text, entities)  # checks each type too
    example = {"text": text, "entities": snapped, "model": model,
               "accepted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    line = (json.dumps(example, ensure_ascii=False) + "\n").encode("utf-8")
    tenancy.check_room(len(line), "this example")
    if not path.is_file():
        _create(path, f"datasets of {whose(path, owner)}")
    with locked(path, fcntl.LOCK_EX, create=True) as descriptor:
        size = drop_partial_tail(path, descriptor)
        stamp = stamp_of(descriptor, size)
        held, labels = cached_tally(path, stamp) or _recount(path, os.pread(descriptor, size, 0))
        tenancy.check_count("NER_MAX_DATASET_RECORDS", held + 1,
                            f"accepted examples in the dataset {name!r}")
        try:
            write_all(descriptor, line)
            os.fsync(descriptor)
        except OSError as error:
            os.ftruncate(descriptor, size)  # never leave half a line behind
            forget_tally(path)
            raise UserError(f"{shown(path)}: the example could not be saved "
                            f"({error.strerror or error}); expected a writable directory with "
                            "free space") from None
        labels += Counter(e["label"] for e in snapped)
        remember_tally(path, stamp_of(descriptor, size + len(line), last=line), (held + 1, labels))
        return dict(sorted(labels.items()))


def _create(path: Path, what: str) -> None:
    """Create the empty dataset ``path``, refused when its folder holds ``NER_MAX_DATASETS``
    already (``what`` says whose they are). The folder's lock keeps two creations from both
    passing the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        if path.is_file():
            return
        tenancy.check_count("NER_MAX_DATASETS", len(names_in(path.parent)) + 1, what)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
        os.fsync(folder)  # the new file's name survives a crash too
    finally:
        os.close(folder)  # closing releases the lock


def _recount(path: Path, raw: bytes) -> tuple[int, Counter]:
    """Examples and entities per type of the file's content ``raw``, read line by line."""
    found = _parsed_lines(path, raw)
    return len(found), Counter(e["label"] for example in found for e in example["entities"])


def examples(name: str, *, owner: str | None = None) -> list[dict]:
    """The accepted examples of ``name`` in the order they were accepted (none for a dataset not
    yet created)."""
    path = dataset_path(name, owner=owner)
    if not path.is_file():
        return []
    with locked(path, fcntl.LOCK_SH) as descriptor:
        return _parsed_lines(path, read_all(descriptor))


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
    where = f"{shown(path)}:{number}"
    try:
        example = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{where}: expected an accepted example as a JSON object, found invalid "
                        f"JSON ({error})") from None
    if not isinstance(example, dict) or not isinstance(example.get("text"), str) \
            or not isinstance(example.get("entities"), list):
        raise UserError(f"{where}: expected a JSON object with 'text' and 'entities', found "
                        f"{line[:80].decode('utf-8', 'replace')!r}")
    for entity in example["entities"]:
        # Lines were snapped when appended; only what a hand edit could break is checked here.
        if not isinstance(entity, dict) or not isinstance(entity.get("label"), str) \
                or not _in_text(example["text"], entity.get("start"), entity.get("end")):
            raise UserError(f"{where}: expected entities with 'start' and 'end' inside the text "
                            f"and a 'label', found {entity!r}")
    example["line"] = number
    return example


def _in_text(text: str, start, end) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) \
        and 0 <= start < end <= len(text)


def tally(name: str, *, owner: str | None = None) -> tuple[int, dict[str, int]]:
    """The number of accepted examples in the dataset ``name`` and its entities per type, sorted
    by type; read from the file only when it changed since it was last counted."""
    path = dataset_path(name, owner=owner)
    if not path.is_file():
        return 0, {}
    with locked(path, fcntl.LOCK_SH) as descriptor:
        size = os.fstat(descriptor).st_size
        stamp = stamp_of(descriptor, complete_length(descriptor, size))
        found = cached_tally(path, stamp)
        if found is None:
            found = _recount(path, read_all(descriptor))
            remember_tally(path, stamp, found)
    return found[0], dict(sorted(found[1].items()))


def counts(name: str, *, owner: str | None = None) -> dict[str, int]:
    """Entities per type in the dataset ``name``, sorted by type."""
    return tally(name, owner=owner)[1]


def remove_last(name: str, text: str, *, owner: str | None = None) -> bool:
    """Undo the last accept: remove the dataset's last example if it is of ``text``; whether it
    was."""
    path = dataset_path(name, owner=owner)
    if not path.is_file():
        return False
    with locked(path, fcntl.LOCK_EX) as descriptor:
        size = drop_partial_tail(path, descriptor)
        before = cached_tally(path, stamp_of(descriptor, size))
        start = complete_length(descriptor, size - 1) if size else 0
        last = os.pread(descriptor, size - start, start)
        try:
            removed = json.loads(last) if last.strip() else None
            removable = removed.get("text") == text
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            removable = False
        if removable:
            os.ftruncate(descriptor, start)
            os.fsync(descriptor)
            if before is None:
                forget_tally(path)
            else:
                labels = before[1] - Counter(e["label"] for e in removed["entities"])
                remember_tally(path, stamp_of(descriptor, start), (before[0] - 1, labels))
        return removable
