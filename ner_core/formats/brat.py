"""BRAT standoff: a folder (or a .zip) of documents, each a ``.txt`` and its ``.ann``.

An entity is a ``T`` line, ``T1<TAB>PER 0 4<TAB>Anna``, its offsets in characters of the
``.txt``; the text column is checked against the ``.txt``. A span in several pieces
(``LOC 0 5;10 15``) is counted and dropped; relations, events, attributes, normalizations and
notes are counted and not read. Each document is one example; ``meta["brat"]["name"]`` keeps its
name for a later write.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath

from .. import utf8
from ..errors import UserError
from .example import Example, Report, Span
from .files import replace_file, replace_folder

NAME = "brat"
TITLE = "BRAT standoff"
SUFFIXES = ("", ".zip")  # a folder, or a zip of one
EXAMPLE_LINE = "T1\tPER 0 4\tAnna"
MAX_MEMBERS = 10_000  # a zip with more is refused (a zip bomb, or not a corpus)
MAX_UNZIPPED = 200 * 1024 * 1024  # bytes all members of a zip may hold together
_NOT_ENTITIES = ("R", "E", "A", "M", "N", "#", "*")  # relation, event, attribute, ..., note
_LAYOUT = re.compile(r"[\t\n\r]")  # characters a text column cannot hold: written as spaces


def looks_like(path: Path, head: str) -> bool:
    """A folder holding an ``.ann`` file (at any depth), or a zip with one."""
    if path.is_dir():
        return next(path.rglob("*.ann"), None) is not None
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(_wanted(name) == ".ann" for name in archive.namelist())


def read(path: Path, report: Report) -> list[Example]:
    """Every document of the folder or zip, in order of name, with its entities."""
    documents = _documents(path)
    if not documents:
        raise UserError(f"{path}: expected BRAT documents (.txt and .ann files), found none")
    report.records = len(documents)
    examples = []
    for index, (name, (text_file, ann_file)) in enumerate(sorted(documents.items())):
        if text_file is None:
            raise UserError(f"{path}/{name}.ann: expected the document's text in "
                            f"{PurePosixPath(name).name}.txt beside it, found none")
        text = _decode(text_file, f"{path}/{name}.txt")
        example = Example(text, [], record=index, source=f"{name}.ann", doc_id=index,
                          meta={NAME: {"name": name}})
        if ann_file is not None:
            where = f"{path}/{name}.ann"
            example.spans = _entities(_decode(ann_file, where), example, where, report)
        examples.append(example)
    return examples


def _documents(path: Path) -> dict[str, list]:
    """Document name (its path without the ending) -> [text, annotations], each a file path, the
    bytes of a zip member, or ``None``."""
    documents: dict[str, list] = {}
    if not path.exists():
        raise UserError(f"{path}: expected a folder or a zip of BRAT files, found no such file")
    if path.is_dir():
        files = {file.relative_to(path).as_posix(): file for file in sorted(path.rglob("*"))
                 if file.is_file()}
    else:
        files = _unzipped(path)
    for name, content in files.items():
        ending = _wanted(name)
        if ending is not None:
            documents.setdefault(name[:-4], [None, None])[ending == ".ann"] = content
    return documents


def _wanted(name: str) -> str | None:
    """``.txt`` or ``.ann`` for a document's file; ``None`` for anything else (configuration, the
    ``__MACOSX`` copies and ``._`` files a Mac adds to zips, hidden files)."""
    parts = PurePosixPath(name).parts
    if not parts or any(part.startswith((".", "__MACOSX")) for part in parts):
        return None
    ending = name[-4:].lower()
    return ending if ending in (".txt", ".ann") else None


def _unzipped(path: Path) -> dict[str, bytes]:
    """The documents' files of a zip, read in memory after checking it is safe to."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise UserError(f"{path}: expected a zip of BRAT files, found {error}") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise UserError(f"{path}: expected at most {MAX_MEMBERS:,} files in the zip, "
                            f"found {len(members):,}")
        total = sum(member.file_size for member in members)
        if total > MAX_UNZIPPED:
            raise UserError(f"{path}: expected at most {MAX_UNZIPPED // 2**20} MB unzipped, "
                            f"found {total / 2**20:,.0f} MB")
        for member in members:
            _check_member(path, member)
        # ZipFile stops reading a member at its declared size, so the total above bounds memory.
        return {member.filename: archive.read(member) for member in members
                if not member.is_dir() and _wanted(member.filename) is not None}


def _check_member(path: Path, member: zipfile.ZipInfo) -> None:
    name = member.filename
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
        raise UserError(f"{path}: expected files inside the zip's own folder, found the "
                        f"path {name!r}")
    if (member.external_attr >> 16) & 0o170000 == 0o120000:
        raise UserError(f"{path}: expected plain files in the zip, found the link {name!r}")
    if member.flag_bits & 0x1:
        raise UserError(f"{path}: expected a zip without a password, found {name!r} "
                        "encrypted")


def _decode(content: Path | bytes, where: str) -> str:
    raw = content.read_bytes() if isinstance(content, Path) else content
    return utf8.decode(utf8.without_bom(raw, where), where)


def _entities(ann: str, example: Example, where: str, report: Report) -> list[Span]:
    spans = []
    for number, line in enumerate(ann.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        kind = line[:1]
        if kind == "T":
            span = _textbound(line, number, example, where, report)
            if span is not None:
                spans.append(span)
        elif kind in _NOT_ENTITIES:
            fields = line.split("\t")
            what = fields[1].split(" ")[0] if len(fields) > 1 else ""
            report.add("not an entity", example, f"line {number}: {fields[0]} {what}".rstrip())
        else:
            raise UserError(f"{where}:{number}: expected an annotation line starting with T, R, "
                            f"E, A, M, N, # or *, found {line[:30]!r}")
    return spans


def _textbound(line: str, number: int, example: Example, ann: str,
               report: Report) -> Span | None:
    """The span of the ``T`` line ``number`` of ``ann``; ``None`` for one in several pieces
    (counted)."""
    where = f"{ann}:{number}"
    fields = line.split("\t", 2)
    if len(fields) < 3:
        raise UserError(f"{where}: expected 'T1<TAB>TYPE START END<TAB>text' (three fields "
                        f"separated by tabs), found {line[:40]!r}")
    identifier, type_offsets, said = fields
    label, _, offsets = type_offsets.partition(" ")
    pieces = []
    for piece in offsets.split(";"):
        bounds = piece.split(" ")
        if len(bounds) != 2 or not all(b.isascii() and b.isdigit() for b in bounds):
            raise UserError(f"{where}: expected 'TYPE START END' with integer offsets, found "
                            f"{type_offsets!r}")
        pieces.append((int(bounds[0]), int(bounds[1])))
    if len(pieces) > 1:
        report.add("discontinuous", example, f"line {number}: {identifier} {label} {offsets} "
                                             f"{said!r}")
        return None
    start, end = pieces[0]
    if end > len(example.text):
        raise UserError(f"{where}: expected offsets within the {len(example.text):,} characters "
                        f"of the .txt, found {identifier} at {start}-{end}")
    found = example.text[start:end]
    if _LAYOUT.sub(" ", found) != _LAYOUT.sub(" ", said):
        raise UserError(f"{where}: expected the text of {identifier} ({label} {start}-{end}) as "
                        f"in the .txt, {found!r}, found {said!r}")
    return Span(start, end, label)


def write(examples: list[Example], path: Path) -> None:
    """A folder (a zip when ``path`` ends in .zip) of ``NAME.txt`` and ``NAME.ann`` per document
    and an ``annotation.conf`` naming the entity types. The sentences of one document (CoNLL,
    Hugging Face rows) are one document, a sentence a line."""
    files = _files(examples)
    if path.suffix.lower() == ".zip":
        def fill(temporary: Path) -> None:
            with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, content in files.items():
                    archive.writestr(name, content)
        replace_file(path, fill)
    else:
        def fill(temporary: Path) -> None:
            for name, content in files.items():
                (temporary / name).parent.mkdir(parents=True, exist_ok=True)
                (temporary / name).write_bytes(content)
        replace_folder(path, fill)


def _files(examples: list[Example]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    types = set()
    for number, (text, spans, kept_name) in enumerate(_joined(examples), 1):
        name = _name(kept_name, number, files)
        lines = [f"T{k}\t{span.label} {span.start} {span.end}\t"
                 f"{_LAYOUT.sub(' ', text[span.start:span.end])}\n"
                 for k, span in enumerate(spans, 1)]
        types.update(span.label for span in spans)
        files[f"{name}.txt"] = text.encode("utf-8")
        files[f"{name}.ann"] = "".join(lines).encode("utf-8")
    sections = ["[entities]", *sorted(types), "[relations]", "[events]", "[attributes]"]
    files["annotation.conf"] = ("\n".join(sections) + "\n").encode("utf-8")
    return files


def _joined(examples: list[Example]) -> list[tuple[str, list[Span], str | None]]:
    """Documents of examples: consecutive sentences of one ``doc_id`` joined by line breaks; any
    other example a document of its own, with the name it came with."""
    groups: list[list[Example]] = []
    for example in examples:
        previous = groups[-1][-1] if groups else None
        if (example.sentence and previous is not None and previous.sentence
                and previous.doc_id == example.doc_id):
            groups[-1].append(example)
        else:
            groups.append([example])
    documents = []
    for group in groups:
        spans, shift = [], 0
        for example in group:
            spans += [Span(s.start + shift, s.end + shift, s.label) for s in example.spans]
            shift += len(example.text) + 1
        documents.append(("\n".join(example.text for example in group), spans,
                          group[0].meta.get(NAME, {}).get("name")))
    return documents


def _name(kept: object, number: int, taken: dict[str, bytes]) -> str:
    """The document's kept name when it is a safe relative path not yet used, else doc-NNNN."""
    if isinstance(kept, str) and kept and f"{kept}.txt" not in taken:
        parts = PurePosixPath(kept).parts
        if not kept.startswith("/") and ".." not in parts and "\\" not in kept \
                and _wanted(f"{kept}.txt") == ".txt":
            return kept
    name = f"doc-{number:04d}"
    while f"{name}.txt" in taken:
        name += "-"
    return name
