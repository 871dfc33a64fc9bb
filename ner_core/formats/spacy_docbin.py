"""spaCy's binary training format: a ``.spacy`` file of ``DocBin``-serialized ``Doc`` objects.

spaCy reads and writes it (``DocBin.from_bytes``, ``DocBin.to_bytes``); the entities are each
``Doc``'s ``doc.ents``. A DocBin is zlib-compressed msgpack: ``from_bytes`` decodes it with
``srsly.msgpack_loads``, whose only extension turns msgpack maps into numpy arrays with
``numpy.frombuffer`` (which refuses object arrays); nothing in it unpickles, so reading an
uploaded ``.spacy`` file runs no code of the file's.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from ..errors import UserError
from .example import Example, Report
from .files import replace_file
from .spacy_docs import doc_of, example_of, need_spacy

NAME = "spacy"
TITLE = "spaCy DocBin"
SUFFIXES = (".spacy",)
EXAMPLE_LINE = 'DocBin(docs=[doc]).to_disk("train.spacy"), the entities in each doc.ents'
MAX_INFLATED = 1024 ** 3  # bytes a .spacy file may unpack to: refused above (a zip bomb)
_BLOCK = 16 * 1024 * 1024  # bytes unpacked at a time while measuring


def looks_like(path: Path, head: str) -> bool:
    """A zlib stream whose first bytes unpack to the msgpack map of a DocBin."""
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        start = handle.read(4096)
    try:
        unpacked = zlib.decompressobj().decompress(start, 512)
    except zlib.error:
        return False
    return b"attrs" in unpacked and b"version" in unpacked


def read(path: Path, report: Report) -> list[Example]:
    """Every ``Doc`` of the file, one example each: its text, tokens and ``doc.ents``."""
    need_spacy("reading .spacy files")
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    if not path.is_file():
        raise UserError(f"{path}: expected a spaCy DocBin (.spacy), found no such file")
    data = path.read_bytes()
    _check_size(data, path)
    try:
        docs = list(DocBin().from_bytes(data).get_docs(Vocab()))
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise UserError(f"{path}: expected a spaCy DocBin, found data spaCy cannot read "
                        f"({error})") from None
    if not docs:
        raise UserError(f"{path}: expected Docs in the DocBin, found none")
    report.records = len(docs)
    return [example_of(doc, report, record=index, line=0, source=path.name, doc_id=index)
            for index, doc in enumerate(docs)]


def _check_size(data: bytes, path: Path) -> None:
    """Refuse a file that unpacks to more than ``MAX_INFLATED`` bytes, measured a block at a
    time before spaCy unpacks it whole."""
    inflater = zlib.decompressobj()
    total, pending = 0, data
    try:
        while not inflater.eof:
            unpacked = len(inflater.decompress(pending, _BLOCK))
            total += unpacked
            if total > MAX_INFLATED:
                raise UserError(f"{path}: expected a DocBin of at most {MAX_INFLATED // 2**20:,} "
                                "MB unpacked, found more")
            pending = inflater.unconsumed_tail
            if not unpacked and not pending:
                break  # a truncated stream: spaCy refuses it below
    except zlib.error as error:
        raise UserError(f"{path}: expected a spaCy DocBin (zlib-compressed), found data that is "
                        f"not ({error})") from None


def write(examples: list[Example], path: Path) -> None:
    """A DocBin of one ``Doc`` an example: its words as tokens, its spans as ``doc.ents``."""
    need_spacy("writing .spacy files")
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    vocab = Vocab()
    doc_bin = DocBin(docs=[doc_of(vocab, example) for example in examples])
    replace_file(path, lambda temporary: temporary.write_bytes(doc_bin.to_bytes()))
