"""The file queue of the Annotate tab: a file's first texts, recognized a chunk at a time and
ranked least sure first, or a labelled file's texts with its own entities in the file's order;
kept on disk by id.

A queued file's texts are kept in the visitor's temporary folder (swept as they age), one file
per queue; the page's state holds only the owner, the id and how far the visitor got.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import gradio as gr

from ner_core import annotations, tenancy
from ner_core.errors import UserError
from ner_core.formats import Span
from ner_core.records import FORMATS as TEXT_FILES
from ner_core.records import TEXT_FIELD, read_records

from .errors import shown_to_user
from .labelled import (
    FOUND_FROM_FILE,
    describe,
    format_choices,
    read_upload,
    readable_formats,
    recognized_format,
)
from .models import MAX_CHARS
from .uploads import choose_field, uploaded

MAX_QUEUE = 200  # texts of a file recognized and ranked at once: a minute or so on 2 CPU cores
MAX_QUEUE_CHARS = 1_000_000  # characters of a file's texts queued at once
QUEUE_CHUNK = 16  # texts recognized in one step of the queue's progress
QUEUES = "annotate-queues"  # a visitor's queued files, in their temporary folder
_QUEUE_ID = re.compile(r"[0-9a-f]{32}")
TEXTS = "texts"  # the import choice that reads a file as plain texts for the model
T = TypeVar("T")


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
    with uploaded(path) as name:
        records = read_records(path, text_field or TEXT_FIELD, max_chars=MAX_CHARS,
                               on_skip=skipped.append)
        texts, more = _first((record.line, record.text) for record in records
                             if record.text.strip())
    if not texts:
        raise UserError(f"{name}: expected at least one text, found none")
    notes = [_cut(len(texts))] if more else []
    if skipped:
        notes.append(f"{len(skipped)} texts over {MAX_CHARS:,} characters left out")
    return texts, "; ".join(notes)


def _first(texts: Iterable[tuple[T, str]]) -> tuple[list[tuple[T, str]], bool]:
    """The first of ``texts`` that the queue holds (``MAX_QUEUE``, ``MAX_QUEUE_CHARS``; the first
    text always), and whether more were left."""
    kept: list[tuple[T, str]] = []
    chars = 0
    for item in texts:
        if len(kept) == MAX_QUEUE or (kept and chars + len(item[1]) > MAX_QUEUE_CHARS):
            return kept, True
        kept.append(item)
        chars += len(item[1])
    return kept, False


def _cut(queued: int) -> str:
    if queued == MAX_QUEUE:
        return f"the first {queued} texts are queued"
    return (f"the first {queued} texts are queued: with the next one the queue would pass "
            f"{MAX_QUEUE_CHARS:,} characters")


def is_labelled(path: str, file_format: str | None) -> bool:
    """Whether an upload is imported with its own entities (a labelled file) rather than read as
    plain texts for the model: the format chosen says, else the file (a ``.txt``, ``.jsonl``,
    ``.csv`` or ``.tsv`` whose content no labelled format recognizes holds texts)."""
    if file_format == TEXTS:
        return False
    if file_format not in (None, "", FOUND_FROM_FILE):
        return True
    if Path(path).suffix.lower() not in TEXT_FILES:
        return True
    with uploaded(path):
        return recognized_format(path) is not None


def import_choices() -> list[tuple[str, str]]:
    """What an uploaded file may be: found from the file, plain texts, or a labelled format."""
    return [("found from the file", FOUND_FROM_FILE), ("plain texts for the model", TEXTS),
            *format_choices(readable_formats())]


@shown_to_user
def text_fields(path: str | None):
    """The text-field picker for an upload: fixed at ``text`` for a labelled file (its format
    says where its texts are), else the file's fields or columns."""
    if path and is_labelled(path, FOUND_FROM_FILE):
        return gr.Dropdown(choices=[TEXT_FIELD], value=TEXT_FIELD, interactive=False)
    return choose_field(path)


def imported(path: str, file_format: str | None) -> tuple[list[dict], str, str]:
    """The queue of a labelled file, in the file's order, each text with the file's entities; a
    note on what was left out, and the import's report as Markdown."""
    # Label Studio's tasks not yet annotated are what is left to correct: kept, with their
    # predictions' spans when they have them.
    upload = read_upload(path, file_format, need_entities=False,
                         options={"label-studio": {"unannotated": "keep"}})
    long = [e for e in upload.examples if len(e.text) > MAX_CHARS]
    examples, more = _first((e, e.text) for e in upload.examples
                            if e.text.strip() and len(e.text) <= MAX_CHARS)
    items, merged = [], 0
    for example, text in examples:
        entities, dropped = on_studio_words(text, example.spans)
        merged += dropped
        items.append({"text": text, "entities": entities, "where": example.where(),
                      "line": None, "least": None, "model": None})
    if not items:
        raise UserError(f"{upload.name}: expected at least one text, found none")
    notes = [_cut(len(items))] if more else []
    if long:
        notes.append(f"{len(long)} texts over {MAX_CHARS:,} characters left out")
    if merged:
        notes.append(f"{merged} entities overlapping another once on the studio's words left out")
    return items, "; ".join(notes), describe(upload)


def on_studio_words(text: str, spans: list[Span]) -> tuple[list[dict], int]:
    """A file's spans as the Annotate tab's entities, on the studio's words
    (``annotations.snap``), and how many were left out because, widened to those words, they
    overlapped the one before (a file's own tokens may be finer: ``Anna`` ``-`` ``Maria``)."""
    given = [{"start": s.start, "end": s.end, "label": s.label} for s in spans]
    try:
        return annotations.snap(text, given)[0], 0
    except UserError:
        kept: list[dict] = []
        for entity in given:
            [snapped], _ = annotations.snap(text, [entity])
            if kept and snapped["start"] < kept[-1]["end"]:
                continue
            kept.append(snapped)
        return kept, len(given) - len(kept)


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
