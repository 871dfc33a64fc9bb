"""Labelled data in the formats NER people already have, in and out, with every change counted.

Each format is a module with ``NAME``, ``TITLE``, ``SUFFIXES``, ``EXAMPLE_LINE``,
``looks_like(path, head)``, ``read(path, report)`` and ``write(examples, path)``; they all meet in
``Example`` (a text and its character spans). ``read`` finds the format, reads the file and puts
its spans on words (``align``), counting in a ``Report`` what was changed; ``write`` writes
examples in any format; ``convert`` does both.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import UserError
from ..hub import is_dataset_id
from .align import CUTS, OVERLAPS, align, from_sentences, to_sentences
from .example import CHANGES, Example, Report, Span

logger = logging.getLogger(__name__)

__all__ = ["CHANGES", "CUTS", "OVERLAPS", "Example", "Report", "Span", "Converted", "FORMATS",
           "align", "by_content", "convert", "detect", "format_module", "from_sentences",
           "head_of", "read", "read_splits", "to_sentences", "write"]

# name -> (module, keyword arguments of its writer). Order matters: the first whose content
# matches a file's is its format.
_MODULES = {
    "conll": ("conll", {}),
    "conll-bioes": ("conll", {"scheme": "BIOES"}),
    "huggingface": ("huggingface", {}),
    "label-studio": ("label_studio", {}),
    "label-studio-predictions": ("label_studio", {"predictions": True}),
    "doccano": ("doccano", {}),
    "prodigy": ("prodigy", {}),
    "studio": ("studio", {}),
    "spacy": ("spacy_docbin", {}),
    "spacy-json": ("spacy_json", {}),
    "brat": ("brat", {}),
}
FORMATS = tuple(_MODULES)
READ_ONLY_ALIASES = {"label-studio-predictions": "label-studio", "conll-bioes": "conll"}
HEAD_BYTES = 64 * 1024  # what a format looks at to recognize a file


@dataclass
class Converted:
    """What ``read`` gives: the aligned examples and the report of what was changed."""

    examples: list[Example]
    report: Report


def format_module(name: str) -> ModuleType:
    """The module of the format ``name``; ``UserError`` naming the formats for another name."""
    if name not in _MODULES:
        raise UserError(f"expected a format among {', '.join(FORMATS)}, found {name!r}")
    return importlib.import_module(f".{_MODULES[name][0]}", __name__)


def head_of(path: Path) -> str:
    """The first ``HEAD_BYTES`` of a file as text ('' for a folder or a binary file): what a
    format looks at to recognize it."""
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        raw = handle.read(HEAD_BYTES)
    try:
        return raw.decode("utf-8-sig", errors="strict")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the end of the head is not a binary file.
        if error.start >= len(raw) - 3:
            return raw[:error.start].decode("utf-8-sig")
        return ""


def _readers() -> list[tuple[str, ModuleType]]:
    return [(name, format_module(name)) for name in FORMATS if name not in READ_ONLY_ALIASES]


def by_content(path: str | Path) -> str | None:
    """The format whose content ``path`` has, or ``None``: unlike ``detect``, never the one format
    of the file's ending for content that no format recognizes (a ``.txt`` of plain texts is not
    a CoNLL file with mistakes)."""
    path = Path(path)
    head = head_of(path)
    return next((name for name, module in _readers() if module.looks_like(path, head)), None)


def detect(path: str | Path) -> str:
    """The format of ``path``, from its ending and its content.

    A file whose content matches no format of its ending is refused with what each ending
    expects.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: expected a labelled file or folder, found no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"{path}: expected labelled data, found an empty file")
    head = head_of(path)
    suffix = "" if path.is_dir() else path.suffix.lower()
    candidates = [(name, module) for name, module in _readers()
                  if suffix in module.SUFFIXES or (not suffix and "" in module.SUFFIXES)]
    for name, module in candidates:
        if module.looks_like(path, head):
            return name
    for name, module in _readers():  # an unusual ending: the content decides
        if (name, module) not in candidates and module.looks_like(path, head):
            return name
    if len(candidates) == 1 and path.is_file():
        # The one format of this ending reads it, and names the line that is wrong (a bad tag).
        return candidates[0][0]
    if not candidates:
        endings = sorted({s for _, m in _readers() for s in m.SUFFIXES if s})
        raise UserError(f"{path}: expected a labelled file ending in {', '.join(endings)} or a "
                        f"folder, found {suffix or 'no ending'!r}")
    titles = " or ".join(module.TITLE for _, module in candidates)
    raise UserError(f"{path}: expected {titles}, found content that is none of them; name the "
                    "format with --format")


def read(path: str | Path, format: str | None = None, *, labels: set[str] | None = None,
         cut: str = "widen", overlap: str = "longest", need_entities: bool = True,
         **options) -> Converted:
    """The examples of ``path`` on whole words, and the report of what that changed.

    ``format`` is found from the file unless named; ``options`` go to the format's reader (a
    CoNLL ``tag_column``, a Label Studio ``text_field``). A file with no entities is refused
    unless ``need_entities`` is false.
    """
    path = Path(path)
    name = format or detect(path)
    name = READ_ONLY_ALIASES.get(name, name)
    module = format_module(name)
    report = Report(path.name, name)
    try:
        examples = module.read(path, report, **options)
        if not examples:
            raise UserError(f"{path}: expected labelled records in {module.TITLE}, found none")
        aligned = align(examples, report, labels=labels, cut=cut, overlap=overlap)
        if need_entities and not report.entities_kept:
            raise UserError(f"{path}: expected entities to learn from or score against, found "
                            f"{report.entities_read} in {report.records} records"
                            + (f" ({report.summary()})" if report.changed else ""))
    except UserError as error:
        raise _named_wrong(error, path, name, format) from None
    logger.info("%s", report.summary())
    return Converted(aligned, report)


def _named_wrong(error: UserError, path: Path, name: str, given: str | None) -> UserError:
    """A reader's refusal, with the format the file looks like when the user named another."""
    if given is None:
        return error
    try:
        found = detect(path)
    except UserError:
        return error
    if READ_ONLY_ALIASES.get(found, found) == name:
        return error
    return UserError(f"{error}; the file looks like {format_module(found).TITLE}, not "
                     f"{format_module(name).TITLE}: pass --format {found}")


def output_format(path: str | Path, to: str | None = None) -> str:
    """The format to write ``path`` in: ``to`` when given, else the one its ending names alone."""
    if to is not None:
        format_module(to)
        return to
    suffix = Path(path).suffix.lower()
    writers = [name for name in FORMATS
               if suffix in format_module(name).SUFFIXES and name not in READ_ONLY_ALIASES]
    if len(writers) == 1:
        return writers[0]
    if not suffix:
        raise UserError(f"{path}: expected --to FORMAT for an output without an ending "
                        f"(one of {', '.join(FORMATS)})")
    if not writers:
        raise UserError(f"{path}: expected an output ending that names a format, found "
                        f"{suffix!r}; name one with --to ({', '.join(FORMATS)})")
    raise UserError(f"{path}: the ending {suffix} fits {', '.join(writers)}; choose one with --to")


def write(examples: list[Example], path: str | Path, format: str | None = None) -> str:
    """Write aligned ``examples`` to ``path`` in ``format`` (from the ending when not named),
    whole or not at all; the format written."""
    name = output_format(path, format)
    module = format_module(name)
    if not examples:
        raise UserError(f"{path}: expected examples to write, found none")
    module.write(examples, Path(path), **_MODULES[name][1])
    return name


def convert(source: str | Path, target: str | Path, *, from_format: str | None = None,
            to: str | None = None, **read_options) -> tuple[Report, str]:
    """Read ``source``, write ``target``; the report of what changed and the format written.

    The target's format is checked before the source is read, so a mistyped ``--to`` costs
    nothing.
    """
    name = output_format(target, to)
    if Path(source).resolve() == Path(target).resolve():
        raise UserError(f"{target}: expected an output other than the input")
    converted = read(source, from_format, **read_options)
    write(converted.examples, target, name)
    return converted.report, name


def read_splits(source: str | Path, format: str | None = None, *, data_config: str | None = None,
                labels: set[str] | None = None, cut: str = "widen", overlap: str = "longest",
                need_entities: bool = True,
                **reader_options) -> tuple[dict[str, list[Example]], Report]:
    """The examples of a labelled source by split, and one report for them all.

    A folder of CoNLL files or a saved Hugging Face ``DatasetDict`` has its splits; a Hub id
    (``owner/name``, with ``data_config``) is read from the Hub; any other file is the split
    ``train``. ``reader_options`` go to the format's reader.
    """
    align_options = dict(labels=labels, cut=cut, overlap=overlap, need_entities=need_entities)
    path = Path(source)
    if not path.exists() and is_dataset_id(str(source)):
        module = format_module("huggingface")
        report = Report(str(source), "huggingface")
        splits = module.read_hub(str(source), report, config=data_config, **reader_options)
    else:
        if data_config is not None:
            raise UserError(f"--data-config applies to a Hub dataset id, found the path {source}")
        name = format or detect(path)
        name = READ_ONLY_ALIASES.get(name, name)
        module = format_module(name)
        if not hasattr(module, "read_splits"):
            converted = read(path, name, **align_options, **reader_options)
            return {"train": converted.examples}, converted.report
        report = Report(path.name, name)
        try:
            splits = module.read_splits(path, report, **reader_options)
        except UserError as error:
            raise _named_wrong(error, path, name, format) from None
    return _aligned_splits(splits, report, str(source), **align_options), report


def _aligned_splits(splits: dict[str, list[Example]], report: Report, source: str, *,
                    labels: set[str] | None = None, cut: str = "widen", overlap: str = "longest",
                    need_entities: bool = True) -> dict[str, list[Example]]:
    aligned = {split: align(examples, report, labels=labels, cut=cut, overlap=overlap)
               for split, examples in splits.items()}
    if not any(aligned.values()):
        raise UserError(f"{source}: expected labelled records, found none")
    if need_entities and not report.entities_kept:
        raise UserError(f"{source}: expected entities to learn from or score against, found none")
    return aligned
