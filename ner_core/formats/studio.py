"""The studio's own JSONL: one text a line with ``entities`` of ``{start, end, label, text,
score}``, as the Annotate tab's datasets and the Files tab's output keep them.

A model's ``score`` is kept on the span; the record's other fields (``model``, ``accepted_at``,
the input's own fields) come back when the studio's JSONL is written again.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .example import Example, Report, Span
from .files import examples_of, first_record, is_whole_number, kind, write_jsonl

NAME = "studio"
TITLE = "studio JSONL"
SUFFIXES = (".jsonl",)
EXAMPLE_LINE = ('{"text": "Anna lives in Berlin.", "entities": [{"start": 0, "end": 4, "label": '
                '"PER", "text": "Anna"}, {"start": 14, "end": 20, "label": "LOC", '
                '"text": "Berlin"}]}')
TEXT_FIELD = "text"


def looks_like(path: Path, head: str) -> bool:
    """True when the first record has ``entities`` with ``start`` and ``end`` (or none), and
    none of doccano's ``start_offset`` or ``relations``."""
    record = first_record(head)
    if record is None or not isinstance(record.get("entities"), list) or "relations" in record:
        return False
    return all(isinstance(e, dict) and "start" in e and "end" in e for e in record["entities"])


def read(path: Path, report: Report, text_field: str = TEXT_FIELD) -> list[Example]:
    """Every record with a text and ``entities``, in file order; ``text_field`` names the field
    of the text when the Files tab read it from another. Records without either are counted and
    left out."""
    path = Path(path)
    return examples_of(path, report, TITLE, lambda index, number, record: _example(
        path, index, number, record, text_field, report))


def _example(path: Path, index: int, number: int, record: dict, text_field: str,
             report: Report) -> Example | None:
    where = f"{path}:{number}"
    text = record.get(text_field)
    if text is not None and not isinstance(text, str):
        raise UserError(f"{where}: expected the text in {text_field!r} as a string, found "
                        f"{kind(text)}")
    meta = {key: value for key, value in record.items() if key not in (text_field, "entities")}
    example = Example(text or "", [], record=index, line=number, source=path.name, doc_id=index,
                      meta={NAME: meta})
    if not example.text.strip():
        report.add("empty text", example, f"no {text_field!r}" if text is None else
                   f"text {text!r}")
        return None
    if "entities" not in record:
        report.add("unannotated", example, "no 'entities' field")
        return None
    if not isinstance(record["entities"], list):
        raise UserError(f"{where}: expected 'entities' as a list, found "
                        f"{kind(record['entities'])}")
    example.spans = [_span(where, example.text, entity) for entity in record["entities"]]
    return example


def _span(where: str, text: str, entity: object) -> Span:
    ok = (isinstance(entity, dict) and is_whole_number(entity.get("start"))
          and is_whole_number(entity.get("end")) and isinstance(entity.get("label"), str))
    if not ok:
        raise UserError(f"{where}: expected each entity as an object with whole-number 'start' "
                        f"and 'end' and a 'label', found {entity!r}")
    start, end, score = entity["start"], entity["end"], entity.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise UserError(f"{where}: expected an entity's 'score' as a number, found {score!r}")
    said = entity.get("text")
    # The entity's own text shows offsets counted in other units (bytes, UTF-16) at once.
    if said is not None and 0 <= start < end <= len(text) and said != text[start:end]:
        raise UserError(f"{where}: expected the entity at {start}-{end} to read {said!r} as its "
                        f"'text' says, found {text[start:end]!r} there")
    return Span(start, end, entity["label"], None if score is None else float(score))


def write(examples: list[Example], path: Path) -> None:
    """One ``{"text", "entities"}`` object a line, then the fields a studio record came with."""
    lines = []
    for example in examples:
        entities = []
        for span in example.spans:
            entity = {"start": span.start, "end": span.end, "label": span.label,
                      "text": example.text[span.start:span.end]}
            if span.score is not None:
                entity["score"] = span.score
            entities.append(entity)
        meta = {k: v for k, v in example.meta.get(NAME, {}).items() if k not in ("text", "entities")}
        lines.append({"text": example.text, "entities": entities, **meta})
    write_jsonl(Path(path), lines)
