"""Labelled files on the page, in every format the studio reads and writes: an upload read with
the report of what reading it changed, that report as Markdown, and the formats offered for
download.

An upload's format is found from the file (``ner_core.formats.detect``) unless the visitor names
one; every message names the file as the visitor knows it, never the server's copy.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ner_core import formats
from ner_core.data import Sentence
from ner_core.errors import UserError
from ner_core.formats import CHANGES, Example, Report

from .uploads import uploaded

FOUND_FROM_FILE = "auto"  # the format choice that lets the file say what it is
# A download is one file: formats written as a folder are offered in the one-file form they
# also write (``ner_core.formats.output_format`` takes these endings for them).
ONE_FILE = {"brat": ".zip", "huggingface": ".parquet"}
# How upload labels name the formats read.
FORMATS_SAID = "CoNLL, Label Studio, doccano, Prodigy, spaCy, BRAT .zip, ..."
# What Markdown (and the HTML in it) would read as markup in a file's words; '.', '-', '(' and
# the like are markup only where our own lines never put a file's words.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]#|<>~!&])")


@dataclass
class Upload:
    """A labelled upload: its examples on whole words, as IOB2 sentences, and the report."""

    name: str  # the file's name as the visitor knows it
    format: str
    examples: list[Example]
    report: Report

    @functools.cached_property
    def sentences(self) -> list[Sentence]:
        """The examples as tagged sentences, as training and scoring read them."""
        return formats.to_sentences(self.examples)


def read_upload(path: str, format: str | None = None, *, need_entities: bool = True,
                options: dict[str, dict] | None = None) -> Upload:
    """Read a labelled upload in any format of the registry (BRAT as a ``.zip``).

    ``format`` is found from the file (``formats.detect``) when ``None`` (or
    ``FOUND_FROM_FILE``). ``options`` are the reader's keywords by format
    (``{"label-studio": {"unannotated": "keep"}}``).
    """
    format = None if format in (None, "", FOUND_FROM_FILE) else format
    with uploaded(path) as name:
        try:
            chosen = format or formats.detect(path)
            given = (options or {}).get(formats.READ_ONLY_ALIASES.get(chosen, chosen), {})
            converted = formats.read(path, chosen, need_entities=need_entities, **given)
        except UserError as error:
            raise UserError(in_page_words(str(error))) from None
    return Upload(name, chosen, converted.examples, converted.report)


def recognized_format(path: str | Path) -> str | None:
    """The format whose content ``path`` has, or ``None`` (plain texts)."""
    return formats.by_content(path)


def readable_formats() -> list[str]:
    """The formats a file can be read as (a writer's variant reads as its format)."""
    return [name for name in formats.FORMATS if name not in formats.READ_ONLY_ALIASES]


def in_page_words(message: str) -> str:
    """A registry message as the page says it: the page has a format choice, not ``--format``.

    >>> in_page_words("x.json: expected A, found B; pass --format doccano")
    'x.json: expected A, found B; choose the format doccano'
    """
    return (message.replace("pass --format ", "choose the format ")
            .replace("name the format with --format", "choose its format"))


def upload_endings() -> list[str]:
    """Every file ending a labelled upload may have, ``.zip`` (BRAT) among them."""
    return sorted({suffix for name in readable_formats()
                   for suffix in formats.format_module(name).SUFFIXES if suffix}
                  | set(ONE_FILE.values()))


def format_choices(names: list[str] | tuple[str, ...] = formats.FORMATS) -> list[tuple[str, str]]:
    """(label, name) of each format in ``names``, as a dropdown offers them."""
    return [(f"{formats.format_module(name).TITLE} ({name})", name) for name in names]


def download_ending(name: str) -> str:
    """The ending of a one-file download in the format ``name``."""
    if name in ONE_FILE:
        return ONE_FILE[name]
    return next(s for s in formats.format_module(name).SUFFIXES if s)


def escaped(text: str) -> str:
    r"""``text`` with Markdown's punctuation escaped, so a file's words show as they are.

    >>> escaped("B-LOC 'New_York' *")
    "B-LOC 'New\\_York' \\*"
    """
    return _MARKDOWN.sub(r"\\\1", text)


def report_markdown(report: Report) -> str:
    """The report as Markdown: its summary line, then each change with its count, what it means
    and its first cases with where they are."""
    lines = [escaped(report.summary())]
    for change in CHANGES:
        if not report.counts[change]:
            continue
        lines.append(f"- **{report.counts[change]:,} {change}**: {escaped(CHANGES[change])}")
        lines += [f"    - {escaped(case.get('where', report.source))}: {escaped(case['detail'])}"
                  for case in report.cases.get(change, [])]
    return "\n".join(lines)


def describe(upload: Upload) -> str:
    """A line about the upload (its sentences, how it was read, its entity types), then its
    report."""
    sentences = upload.sentences
    types = sorted({tag[2:] for s in sentences for tag in s.tags if tag != "O"})
    return (f"`{upload.name}`: {len(sentences):,} sentences, {_read_as(upload)}, types "
            f"{escaped(', '.join(types)) or 'none'}\n\n{report_markdown(upload.report)}")


def _read_as(upload: Upload) -> str:
    """CoNLL's tag scheme (``IOB1, converted to IOB2``), else the format's title."""
    if upload.format != "conll":
        return formats.format_module(upload.format).TITLE
    found = re.search(r"\((\w+)\)$", upload.report.format)  # "conll (IOB1)"
    scheme = found.group(1) if found else "IOB2"
    return scheme if scheme == "IOB2" else f"{scheme}, converted to IOB2"
