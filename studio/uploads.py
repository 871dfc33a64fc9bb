"""Files a visitor uploads: how large they may be, whether the disk has room for them, messages
that name them as the visitor knows them, and the field or column their texts are read from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from ner_core import tenancy
from ner_core.errors import UserError
from ner_core.records import TEXT_FIELD, input_format, text_fields

from .errors import shown_to_user

UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024


@contextmanager
def uploaded(path: str) -> Iterator[str]:
    """Read the upload ``path`` inside. It is refused first when it is gone (removed after a
    while), over ``UPLOAD_LIMIT_BYTES``, or while the disk is over its budget; every
    ``UserError`` names the file (given as the target) instead of its temporary path."""
    name = Path(path).name
    gone = UserError(f"{name}: this upload is no longer on the server (uploads are kept for a "
                     "while only); upload the file again")
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        raise gone from None
    if size > UPLOAD_LIMIT_BYTES:
        raise UserError(f"{name}: expected at most {UPLOAD_LIMIT_BYTES // 2**20} MB, "
                        f"found {size / 2**20:.1f} MB")
    _check_room(path, name)
    try:
        yield name
    except UserError as error:
        if not Path(path).exists():  # swept while it was read
            raise gone from None
        raise UserError(str(error).replace(str(Path(path)), name)) from None


def _check_room(path: str, name: str) -> None:
    """Refuse the upload while the disk is over its budget, and remove it.

    The upload is on disk already (the web framework kept it before any handler ran), so it adds
    nothing that is not counted. Removing it is safe although the framework names a kept upload
    by the hash of its content and the page sends that path again with later events: the next
    event that names it is told above to upload the file again, not shown a fault, and while the
    disk is over budget every request with it would be refused anyway. Only files inside the
    framework's upload folder are removed, never one the command line or a test passes.
    """
    try:
        tenancy.check_room(0, f"keeping the upload {name}")
    except UserError:
        _remove_upload(Path(path))
        raise


def _remove_upload(path: Path) -> None:
    folder, upload = Path(get_upload_folder()).resolve(), path.resolve()
    if upload == folder or not upload.is_relative_to(folder):
        return
    upload.unlink(missing_ok=True)
    tenancy.DISK.forget()  # the next check measures without it
    if upload.parent != folder:
        try:
            upload.parent.rmdir()  # the upload's own folder, once empty
        except OSError:
            pass


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
