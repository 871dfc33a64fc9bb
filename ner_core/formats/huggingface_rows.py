"""The rows of a Hugging Face split as examples: the tag column found, ids named by the
ClassLabel, each row checked against its tokens, and the tags' scheme read as IOB2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..data import Sentence
from ..errors import UserError
from ..labels import is_scheme_tag, scheme_tag_problem, sequence_problem, tag_scheme, to_iob2
from .align import from_sentences
from .example import Example, Report
from .files import is_whole_number

TAG_COLUMNS = ("ner_tags", "tags", "ner", "labels", "ner_labels")  # the first there is read


@dataclass
class Table:
    """The columns of one split, however it is stored."""

    source: str  # for messages: the file, the folder and split, the Hub id and split
    name: str  # the examples' source
    columns: list[str]
    column: Callable[[str], list]
    features: object | None  # datasets.Features when the source has them
    lines: list[int] | None = None  # each row's line, for JSON Lines

    def where(self, row: int) -> str:
        return f"{self.source}:{self.lines[row]}" if self.lines else \
            f"{self.source}, record {row + 1}"


def examples_of(table: Table, report: Report, tag_column: str | None
                ) -> tuple[list[Example], str]:
    """The rows of ``table`` with tokens as examples, and the scheme their tags were in."""
    column = _tag_column(table, tag_column)
    names = class_names(table.features, column)
    doc_ids = table.column("doc_id") if "doc_id" in table.columns else None
    sentences, rows = [], []
    all_tokens, all_tags = table.column("tokens"), table.column(column)
    report.records += len(all_tokens)
    for row, (tokens, tags) in enumerate(zip(all_tokens, all_tags)):
        tags = _row_tags(table.where(row), tokens, tags, names, column)
        line = table.lines[row] if table.lines else 0
        if not tokens:
            report.add("empty text", Example("", [], record=row, line=line, source=table.name),
                       "no tokens")
            continue
        doc_id = doc_ids[row] if doc_ids and is_whole_number(doc_ids[row]) else row
        sentences.append(Sentence(list(tokens), tags, doc_id, line))
        rows.append(row)
    # A scheme shows in the names too: a BIOES dataset whose rows all hold B- and I- only.
    scheme = tag_scheme([s.tags for s in sentences]
                        + [[n] for n in names or [] if n[:2] in ("S-", "E-", "U-", "L-")])
    for sentence, row in zip(sentences, rows):
        problem = sequence_problem(sentence.tags, scheme)
        if problem is not None:
            raise UserError(f"{table.where(row)}: {problem[1]} (tag {problem[0] + 1} of the row)")
        sentence.tags = to_iob2(sentence.tags, scheme)
    examples = from_sentences(sentences, table.name)
    for example, row in zip(examples, rows):
        example.record = row
    return examples, scheme


def _tag_column(table: Table, chosen: str | None) -> str:
    found = ", ".join(table.columns) or "no columns"
    if "tokens" not in table.columns:
        raise UserError(f"{table.source}: expected a column 'tokens' (the words of each row), "
                        f"found {found}")
    if chosen is not None:
        if chosen not in table.columns:
            raise UserError(f"{table.source}: expected the tag column {chosen!r}, found {found}")
        return chosen
    column = next((c for c in TAG_COLUMNS if c in table.columns), None)
    if column is None:
        raise UserError(f"{table.source}: expected a tag column named one of "
                        f"{', '.join(TAG_COLUMNS)} (or one named with tag_column), found {found}")
    return column


def class_names(features, column: str | None) -> list[str] | None:
    """The ClassLabel names of a list-of-tags feature ``column``; ``None`` when it has none."""
    from datasets import ClassLabel

    feature = features.get(column) if features and column else None
    inner = getattr(feature, "feature", None)  # the ClassLabel of a list of tags
    return list(inner.names) if isinstance(inner, ClassLabel) else None


def _row_tags(where: str, tokens, tags, names: list[str] | None, column: str) -> list[str]:
    """A row's tags as strings, checked against its tokens."""
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise UserError(f"{where}: expected 'tokens' as a list of non-empty strings, found "
                        f"{tokens!r:.80}")
    if not isinstance(tags, list) or len(tags) != len(tokens):
        found = f"{len(tags)} tags" if isinstance(tags, list) else repr(tags)[:80]
        raise UserError(f"{where}: expected {len(tokens)} tags in {column!r}, one a token, "
                        f"found {found}")
    out = []
    for tag in tags:
        if is_whole_number(tag):
            if names is None:
                raise UserError(f"{where}: expected tag names for the ids in {column!r} (a "
                                "ClassLabel feature, as datasets saves it), found ids without "
                                "names; give the tags as strings like 'B-PER'")
            if not 0 <= tag < len(names):
                raise UserError(f"{where}: expected tag ids 0 to {len(names) - 1} (the names of "
                                f"{column!r}), found {tag}")
            tag = names[tag]
        if not isinstance(tag, str) or not is_scheme_tag(tag):
            raise UserError(f"{where}: {scheme_tag_problem(str(tag))}")
        out.append(tag)
    return out
