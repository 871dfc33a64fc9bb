"""doccano JSONL: one text a line with its spans as ``"label": [[start, end, "TYPE"], ...]``.

doccano's sequence-labelling export has written three shapes over its versions: ``label`` (or
``labels``) lists of ``[start, end, type]``, and ``entities`` objects with ``start_offset``,
``end_offset`` and ``label`` (beside ``relations``); older exports hold the text in ``data``. All
are read; ``label`` is written, with the record's other fields when it came from doccano.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .example import Example, Report, Span
from .files import examples_of, first_record, is_whole_number, kind, write_jsonl

NAME = "doccano"
TITLE = "doccano JSONL"
SUFFIXES = (".jsonl",)
EXAMPLE_LINE = '{"text": "Anna lives in Berlin.", "label": [[0, 4, "PER"], [14, 20, "LOC"]]}'
SPAN_KEYS = ("label", "labels", "entities")  # where a record's spans may be, the first one found
TEXT_KEYS = ("text", "data")
NOT_KEPT = (*SPAN_KEYS, *TEXT_KEYS, "relations")  # fields that are not the record's meta


def looks_like(path: Path, head: str) -> bool:
    """True when the first record has a text and doccano's ``label`` lists or ``entities`` with
    ``start_offset``."""
    record = first_record(head)
    if record is None or not any(key in record for key in TEXT_KEYS):
        return False
    if isinstance(record.get("label"), list) or isinstance(record.get("labels"), list):
        return True
    entities = record.get("entities")
    return isinstance(entities, list) and (
        "relations" in record
        or any(isinstance(e, dict) and "start_offset" in e for e in entities))


def read(path: Path, report: Report) -> list[Example]:
    """Every record with a text and spans, in file order; records without text or without any
    span field are counted and left out."""
    path = Path(path)
    return examples_of(path, report, TITLE,
                       lambda index, number, record: _example(path, index, number, record, report))


def _example(path: Path, index: int, number: int, record: dict, report: Report) -> Example | None:
    where = f"{path}:{number}"
    text = next((record[key] for key in TEXT_KEYS if key in record), None)
    if text is not None and not isinstance(text, str):
        raise UserError(f"{where}: expected the text as a string, found {kind(text)}")
    meta = {key: value for key, value in record.items() if key not in NOT_KEPT}
    example = Example(text or "", [], record=index, line=number, source=path.name, doc_id=index,
                      meta={NAME: meta})
    if not example.text.strip():
        report.add("empty text", example, "no text" if text is None else f"text {text!r}")
        return None
    key = next((key for key in SPAN_KEYS if key in record), None)
    if key is None:
        report.add("unannotated", example, f"no {', '.join(SPAN_KEYS)} field")
        return None
    if not isinstance(record[key], list):
        raise UserError(f"{where}: expected {key!r} as a list of spans, found {kind(record[key])}")
    read_span = _entity if key == "entities" else _triple
    example.spans = [read_span(where, key, item) for item in record[key]]
    relations = record.get("relations") or []
    if relations:
        report.add("not an entity", example, f"{len(relations)} relations", n=len(relations))
    return example


def _triple(where: str, key: str, item: object) -> Span:
    ok = (isinstance(item, list) and len(item) == 3 and is_whole_number(item[0])
          and is_whole_number(item[1]) and isinstance(item[2], str))
    if not ok:
        raise UserError(f"{where}: expected each of {key!r} as [start, end, \"TYPE\"] with "
                        f"whole-number offsets, found {item!r}")
    return Span(item[0], item[1], item[2])


def _entity(where: str, key: str, item: object) -> Span:
    ok = (isinstance(item, dict) and is_whole_number(item.get("start_offset"))
          and is_whole_number(item.get("end_offset")) and isinstance(item.get("label"), str))
    if not ok:
        raise UserError(f"{where}: expected each of {key!r} as an object with whole-number "
                        f"'start_offset' and 'end_offset' and a 'label', found {item!r}")
    return Span(item["start_offset"], item["end_offset"], item["label"])


def write(examples: list[Example], path: Path) -> None:
    """One ``{"text", "label"}`` object a line, after the fields a doccano record came with."""
    lines = []
    for example in examples:
        spans = [[span.start, span.end, span.label] for span in example.spans]
        lines.append({**example.meta.get(NAME, {}), "text": example.text, "label": spans})
    write_jsonl(Path(path), lines)
