"""Files a visitor uploads: how large they may be, messages that name them as the visitor knows
them, and the field or column their texts are read from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr

from ner_core.errors import UserError
from ner_core.records import TEXT_FIELD, input_format, text_fields

from .errors import shown_to_user

UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024


@contextmanager
def uploaded(path: str) -> Iterator[str]:
    """Read the upload ``path`` inside: it is refused first when over ``UPLOAD_LIMIT_BYTES``, and
    every ``UserError`` names the file (given as the target) instead of its temporary path."""
    name = Path(path).name
    size = Path(path).stat().st_size
    if size > UPLOAD_LIMIT_BYTES:
        raise UserError(f"{name}: expected at most {UPLOAD_LIMIT_BYTES // 2**20} MB, "
                        f"found {size / 2**20:.1f} MB")
    try:
        yield name
    except UserError as error:
        raise UserError(str(error).replace(str(Path(path)), name)) from None


@shown_to_user
def choose_field(path: str | None):
    """The text-field picker for an upload: a CSV/TSV file's columns, a JSONL file's string
    fields; fixed at ``text`` for a text file."""
    if not path:
        return gr.Dropdown(choices=[TEXT_FIELD], value=TEXT_FIELD, interactive=True)
    with uploaded(path):
        names = text_fields(path)
        fixed = input_format(path) == "txt"
    return gr.Dropdown(choices=names, value=TEXT_FIELD if TEXT_FIELD in names else names[0],
                       interactive=not fixed)
