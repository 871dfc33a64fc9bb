"""The file queue of the Annotate tab: a file's first texts, recognized a chunk at a time and
ranked least sure first, kept on disk by id.

A queued file's texts are kept in the visitor's temporary folder (swept as they age), one file
per queue; the page's state holds only the owner, the id and how far the visitor got.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

from ner_core import tenancy
from ner_core.errors import UserError
from ner_core.records import TEXT_FIELD, read_records

from .models import MAX_CHARS
from .uploads import uploaded

MAX_QUEUE = 200  # texts of a file recognized and ranked at once: a minute or so on 2 CPU cores
MAX_QUEUE_CHARS = 1_000_000  # characters of a file's texts queued at once
QUEUE_CHUNK = 16  # texts recognized in one step of the queue's progress
QUEUES = "annotate-queues"  # a visitor's queued files, in their temporary folder
_QUEUE_ID = re.compile(r"[0-9a-f]{32}")


def ranked(texts: list[tuple[int, str]], found: list[list[dict]]) -> list[dict]:
    """Texts least sure first: by their lowest entity score (1.0 without entities), then line.

    >>> [t["line"] for t in ranked([(1, "a"), (2, "b"), (3, "c")],
    ...                            [[], [{"score": 0.9}], [{"score": 0.4}, {"score": 0.99}]])]
    [3, 2, 1]
    """
    items = [{"line": line, "text": text, "entities": entities,
              "least": min((e["score"] for e in entities), default=1.0)}
             for (line, text), entities in zip(texts, found)]
    return sorted(items, key=lambda item: (item["least"], item["line"]))


def read_texts(path: str, text_field: str) -> tuple[list[tuple[int, str]], str]:
    """(line, text) of a file's first texts, at most ``MAX_QUEUE`` of them and
    ``MAX_QUEUE_CHARS`` characters, and a note on what was left out."""
    skipped: list[int] = []
    texts: list[tuple[int, str]] = []
    chars, more = 0, False
    with uploaded(path) as name:
        for record in read_records(path, text_field or TEXT_FIELD, max_chars=MAX_CHARS,
                                   on_skip=skipped.append):
            if not record.text.strip():
                continue
            if len(texts) == MAX_QUEUE or (texts and chars + len(record.text) > MAX_QUEUE_CHARS):
                more = True
                break
            texts.append((record.line, record.text))
            chars += len(record.text)
    if not texts:
        raise UserError(f"{name}: expected at least one text, found none")
    notes = []
    if more:
        notes.append(f"the first {len(texts)} texts are queued" if len(texts) == MAX_QUEUE else
                     f"the first {len(texts)} texts are queued: with the next one the queue "
                     f"would pass {MAX_QUEUE_CHARS:,} characters")
    if skipped:
        notes.append(f"{len(skipped)} texts over {MAX_CHARS:,} characters left out")
    return texts, "; ".join(notes)


def recognized(recognizer, texts: list[str], progress) -> list[list[dict]]:
    """The entities of each text, ``QUEUE_CHUNK`` texts at a time with progress."""
    found: list[list[dict]] = []
    progress((0, len(texts)), unit="texts")
    for start in range(0, len(texts), QUEUE_CHUNK):
        found += recognizer.recognize_batch(texts[start:start + QUEUE_CHUNK])
        progress((len(found), len(texts)), unit="texts")
    return found


def _queue_path(queue: dict) -> Path:
    if not _QUEUE_ID.fullmatch(queue["id"]):
        raise ValueError(f"not a queue id: {queue['id']!r}")
    return tenancy.tenant_temp(queue["owner"], QUEUES) / f"{queue['id']}.json"


def stored_queue(owner: str | None, items: list[dict]) -> dict | None:
    """The page's state of a queue of ``items``: they are written to a file of ``owner``'s, the
    state names it by id and says how many were shown (``None`` for no items)."""
    if not items:
        return None
    queue = {"owner": owner, "id": uuid.uuid4().hex, "at": 0}
    content = json.dumps(items, ensure_ascii=False).encode("utf-8")
    tenancy.check_room(len(content), "this queue")
    path = _queue_path(queue)
    staging = path.with_name(f".{path.name}")
    staging.write_bytes(content)
    os.replace(staging, path)
    return queue


def queued(queue: dict | None) -> list[dict]:
    """The texts of ``queue`` not yet shown; none once its file is gone (swept as old)."""
    if not queue:
        return []
    path = _queue_path(queue)
    try:
        items = json.loads(path.read_bytes())
        os.utime(path)  # in use: the sweep of temporary files goes by age
    except FileNotFoundError:
        return []
    return items[queue["at"]:]


def drop_queue(queue: dict | None) -> None:
    """Remove the file of ``queue`` (also the state's ``delete_callback``: a page closed or
    expired)."""
    if queue:
        _queue_path(queue).unlink(missing_ok=True)
