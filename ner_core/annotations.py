"""Named datasets of accepted examples: a model's entities as a person corrected them, kept to
fine-tune on.

A dataset is one JSONL file ``<name>.jsonl``, one accepted example a line:
``{"text", "entities": [{"start", "end", "label", "text"}], "model", "accepted_at"}``. A line is
only ever written whole, appended under an exclusive ``flock`` and synced to disk before the call
returns, so an accept survives a crash and two visitors' lines never interleave. A line cut short
by a crash mid-write is skipped with a warning when read, and dropped by the next append.

Every function that names a dataset takes its ``owner`` (an owner string of ``tenancy``). Off a
public host every dataset is ``data_home()/<name>.jsonl``, whoever asks. On a public host an
owner's datasets are ``data_home()/<tenant_key(owner)>/<name>.jsonl`` (``owner=None``, the CLI
say, keeps the host's own at the top); an admin also sees every other tenant's as
``<tenant_key>/<name>`` (the host's own as ``local/<name>``) and may name them so. Quotas per owner
and per dataset, and the disk budget, are checked before anything is written.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections import Counter, OrderedDict
from contextlib import contextmanager
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path

from . import runs, tenancy, utf8
from .data import Sentence
from .errors import UserError
from .text import segment, split_words

logger = logging.getLogger(__name__)

DATA_HOME_ENV = "NER_DATA_HOME"
HOST_TENANT = "local"  # how an admin names the host's own datasets: ``local/<name>``
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}", re.ASCII)
# The folders ``tenancy.tenant_key`` makes: an account's, a session's, the host's.
_TENANT = re.compile(r"u-[A-Za-z0-9][A-Za-z0-9._-]{0,95}|s-[0-9a-f]{24}|local", re.ASCII)
_TAIL_CHUNK = 64 * 1024
_word_start, _word_end = itemgetter(0), itemgetter(1)


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
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError("expected a dataset name of letters, digits, '-', '_' and '.', "
                        f"found {name!r}")
    return name


def _own_folder(owner: str | None) -> Path:
    """Where the datasets of ``owner`` are."""
    if owner is None or not tenancy.is_public():
        return data_home()
    return data_home() / tenancy.tenant_key(owner)


def _is_tenant(folder: str) -> bool:
    return bool(_TENANT.fullmatch(folder)) and ".." not in folder


def _located(name: str, owner: str | None) -> tuple[Path, str]:
    """The folder and the file stem of the dataset ``owner`` calls ``name``."""
    if not (isinstance(name, str) and "/" in name and tenancy.is_public()):
        return _own_folder(owner), check_name(name)
    if not tenancy.is_admin(owner):
        raise UserError(f"expected the name of a dataset of yours, of letters, digits, '-', '_' "
                        f"and '.', found {name!r}: only an admin of this server names another "
                        "visitor's dataset")
    tenant, _, stem = name.partition("/")
    if not _is_tenant(tenant):
        raise UserError(f"expected a visitor's dataset named like 'u-alice/corrections', found "
                        f"{name!r}")
    return (data_home() if tenant == HOST_TENANT else data_home() / tenant), check_name(stem)


def dataset_path(name: str, *, owner: str | None = None) -> Path:
    """The file of the dataset ``owner`` calls ``name`` (it may not exist yet); a ``UserError``
    for a name ``owner`` may not use."""
    folder, stem = _located(name, owner)
    return folder / f"{stem}.jsonl"


def _names_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.jsonl") if _NAME.fullmatch(p.stem) and p.is_file())


def dataset_names(*, owner: str | None = None) -> list[str]:
    """The datasets of ``owner``, sorted by name; for an admin on a public host, then every other
    tenant's as ``<tenant>/<name>``."""
    own = _names_in(_own_folder(owner))
    if not (tenancy.is_public() and tenancy.is_admin(owner)):
        return own
    home, mine = data_home(), _own_folder(owner)
    others = [f"{HOST_TENANT}/{name}" for name in _names_in(home)]
    tenants = sorted(p for p in home.iterdir() if p.is_dir()) if home.is_dir() else []
    for folder in tenants:
        if folder != mine and _is_tenant(folder.name) and folder.name != HOST_TENANT:
            others += [f"{folder.name}/{name}" for name in _names_in(folder)]
    return own + others


def _shown(path: Path) -> str:
    """A dataset file as a message names it: on a public host its name, never a server path."""
    return path.name if tenancy.is_public() else str(path)


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
        whose = "yours" if path.parent == _own_folder(owner) else \
            HOST_TENANT if path.parent == data_home() else path.parent.name
        _create(path, f"datasets of {whose}")
    with _locked(path, fcntl.LOCK_EX, create=True) as descriptor:
        size = _drop_partial_tail(path, descriptor)
        stamp = _stamp(descriptor, size)
        held, labels = _cached(path, stamp) or _recount(path, os.pread(descriptor, size, 0))
        tenancy.check_count("NER_MAX_DATASET_RECORDS", held + 1,
                            f"accepted examples in the dataset {name!r}")
        try:
            _write_all(descriptor, line)
            os.fsync(descriptor)
        except OSError as error:
            os.ftruncate(descriptor, size)  # never leave half a line behind
            _forget(path)
            raise UserError(f"{_shown(path)}: the example could not be saved "
                            f"({error.strerror or error}); expected a writable directory with "
                            "free space") from None
        labels += Counter(e["label"] for e in snapped)
        _remember(path, _stamp(descriptor, size + len(line), last=line), (held + 1, labels))
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
        tenancy.check_count("NER_MAX_DATASETS", len(_names_in(path.parent)) + 1, what)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
        os.fsync(folder)  # the new file's name survives a crash too
    finally:
        os.close(folder)  # closing releases the lock


# Each dataset's count of examples and of entities per type, as of a stamp of its file: kept as
# this process appends and undoes, counted again from the file when another changed it.
_TALLIES_KEPT = 1_024
_tallies: OrderedDict[str, tuple[tuple, tuple[int, Counter]]] = OrderedDict()
_tallies_lock = threading.Lock()


def _stamp(descriptor: int, size: int, last: bytes | None = None) -> tuple:
    """What tells one content of the file from another: its inode, size and times, and a digest
    of its last complete line (``last`` when the caller has it), which changes with a line
    removed and another of the same length added within one tick of the clock."""
    info = os.fstat(descriptor)
    if last is None:
        start = _complete_length(descriptor, size - 1) if size else 0
        last = os.pread(descriptor, size - start, start)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
            hashlib.blake2b(last, digest_size=16).digest())


def _cached(path: Path, stamp: tuple) -> tuple[int, Counter] | None:
    with _tallies_lock:
        kept = _tallies.get(str(path))
        if kept is None or kept[0] != stamp:
            return None
        _tallies.move_to_end(str(path))
        return kept[1][0], Counter(kept[1][1])


def _remember(path: Path, stamp: tuple, tally: tuple[int, Counter]) -> None:
    with _tallies_lock:
        _tallies[str(path)] = (stamp, tally)
        _tallies.move_to_end(str(path))
        while len(_tallies) > _TALLIES_KEPT:
            _tallies.popitem(last=False)


def _forget(path: Path) -> None:
    with _tallies_lock:
        _tallies.pop(str(path), None)


def _recount(path: Path, raw: bytes) -> tuple[int, Counter]:
    """Examples and entities per type of the file's content ``raw``, read line by line."""
    found = _parsed_lines(path, raw)
    return len(found), Counter(e["label"] for example in found for e in example["entities"])


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


def examples(name: str, *, owner: str | None = None) -> list[dict]:
    """The accepted examples of ``name`` in the order they were accepted (none for a dataset not
    yet created)."""
    path = dataset_path(name, owner=owner)
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
    where = f"{_shown(path)}:{number}"
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
    with _locked(path, fcntl.LOCK_SH) as descriptor:
        size = os.fstat(descriptor).st_size
        stamp = _stamp(descriptor, _complete_length(descriptor, size))
        found = _cached(path, stamp)
        if found is None:
            found = _recount(path, _read_all(descriptor))
            _remember(path, stamp, found)
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
    with _locked(path, fcntl.LOCK_EX) as descriptor:
        size = _drop_partial_tail(path, descriptor)
        before = _cached(path, _stamp(descriptor, size))
        start = _complete_length(descriptor, size - 1) if size else 0
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
                _forget(path)
            else:
                labels = before[1] - Counter(e["label"] for e in removed["entities"])
                _remember(path, _stamp(descriptor, start), (before[0] - 1, labels))
        return removable


def to_sentences(name: str, *, owner: str | None = None) -> list[Sentence]:
    """The dataset as tagged sentences: each example split into sentences and words as the
    recognizer splits text, tagged IOB2 from its entity spans, one document per example.

    Sentences an entity runs across (the splitter broke inside a name, as in ``U.S. Steel``) are
    joined, so every entity stays whole. A dataset with no examples yet has no sentences.
    """
    sentences = []
    for doc_id, example in enumerate(examples(name, owner=owner)):
        entities = sorted(example["entities"], key=lambda e: (e["start"], e["end"]))
        for words in _joined_sentences(example["text"], entities):
            tokens = [example["text"][a:b] for a, b in words]
            sentences.append(Sentence(tokens, _tags(words, entities), doc_id, example["line"]))
    return sentences


def _joined_sentences(text: str, entities: list[dict]) -> list[list[tuple[int, int]]]:
    """Sentences of ``text``, those an entity crosses into joined; one pass over the sentences
    and the entities (sorted by start)."""
    groups: list[list[tuple[int, int]]] = []
    at = 0
    for sentence in (s for paragraph in segment(text) for s in paragraph):
        while at < len(entities) and entities[at]["end"] <= sentence[0][0]:
            at += 1  # ends before this sentence, so before every later one too
        if groups and at < len(entities) and entities[at]["start"] < groups[-1][-1][1]:
            groups[-1].extend(sentence)
        else:
            groups.append(list(sentence))
    return groups


def _tags(words: list[tuple[int, int]], entities: list[dict]) -> list[str]:
    """IOB2 tags of ``words`` from whole-word ``entities`` sorted by start, in one pass."""
    tags, previous, at = [], None, 0
    for a, b in words:
        while at < len(entities) and entities[at]["end"] <= a:
            at += 1
        inside = at < len(entities) and entities[at]["start"] <= a and b <= entities[at]["end"]
        entity = entities[at] if inside else None
        if entity is None:
            tags.append("O")
        else:
            tags.append(("I-" if entity is previous else "B-") + entity["label"])
        previous = entity
    return tags


def export_conll(name: str, path: str | Path, *, owner: str | None = None) -> Path:
    """Write the dataset as CoNLL (``word TAG`` lines, IOB2), a ``-DOCSTART- O`` line before each
    example so document context never crosses texts; written whole or not at all."""
    sentences = to_sentences(name, owner=owner)
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


def export_jsonl(name: str, path: str | Path, *, owner: str | None = None) -> Path:
    """Write the dataset's complete examples as JSONL (one example a line), whole or not at all."""
    found = examples(name, owner=owner)
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
