"""Text as the studio takes it: files of UTF-8 bytes, and strings that UTF-8 can hold.

Every file reader decodes through ``without_bom`` and ``decode``, and every string that comes from
outside a file (an API call, the command line) through ``check_text``, so a refusal reads the same
wherever it happens: what was expected, what was found, and where.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from .errors import UserError


def without_bom(raw: bytes, where: str | Path) -> bytes:
    """The first bytes of a file without a UTF-8 byte-order mark; UTF-16 is refused.

    >>> without_bom(codecs.BOM_UTF8 + b"Anna", "notes.txt")
    b'Anna'
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UserError(f"{where}:1: expected UTF-8 text, found UTF-16 (it starts with a UTF-16 "
                        "byte-order mark); save the file as UTF-8")
    return raw.removeprefix(codecs.BOM_UTF8)


def decode(raw: bytes, where: str | Path, line: int = 1, *, decoder=None, offset: int = 0,
           final: bool = False) -> str:
    """``raw``, bytes of ``where`` from line ``line`` on, as text; a ``UserError`` naming the line
    (and the byte of that line) for a NUL byte or a byte that UTF-8 does not allow.

    A line read in pieces passes the same incremental ``decoder`` for each, with ``offset``, the
    bytes of the line before this piece.

    >>> decode(b"Anna\\nZ\\xfcrich\\n", "notes.txt")
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: notes.txt:2: expected UTF-8 text, found the byte 0xfc (byte 2 of the line) that UTF-8 does not allow there
    """
    if b"\x00" in raw:
        at = line + raw.count(b"\n", 0, raw.index(b"\x00"))
        raise UserError(f"{where}:{at}: expected UTF-8 text, found binary data (a NUL byte)")
    pending = len(decoder.buffer) if decoder is not None else 0
    try:
        return raw.decode("utf-8") if decoder is None else decoder.decode(raw, final)
    except UnicodeDecodeError as error:
        before = error.object[:error.start]  # what a decoder held back, then this piece
        newline = before.rfind(b"\n")
        if newline < 0:
            at, byte = line, offset - pending + error.start + 1
        else:
            at, byte = line + before.count(b"\n"), error.start - newline
        raise UserError(f"{where}:{at}: expected UTF-8 text, found the byte "
                        f"0x{error.object[error.start]:02x} (byte {byte:,} of the line) that "
                        "UTF-8 does not allow there") from None


def check_text(text: str, where: str = "", *, from_bytes: bool = False) -> None:
    """Refuse a string that UTF-8 cannot hold: one with a lone surrogate, which only an API call
    can send, or (``from_bytes``: ``sys.argv``, decoded with surrogateescape) a byte that was not
    UTF-8.

    >>> check_text("Anna \\ud800")
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: expected Unicode text, found the lone surrogate U+D800 at character 6
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        expected = "UTF-8 text" if from_bytes else "Unicode text"
        found = (f"the byte 0x{code - 0xDC00:02x}" if from_bytes and 0xDC80 <= code <= 0xDCFF
                 else f"the lone surrogate U+{code:04X}")
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}expected {expected}, found {found} at character "
                        f"{error.start + 1:,}") from None
