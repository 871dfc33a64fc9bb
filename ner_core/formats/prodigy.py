"""Prodigy JSONL: one task a line, ``text`` and ``spans`` of ``{start, end, label}``, with the
``tokens`` the spans were drawn on when the task has them, and the annotator's ``answer``.

Only accepted tasks are read (a task without ``answer`` has not been answered otherwise: it is
taken as accepted); a task's tokens become the example's words. Written tasks have ``tokens`` and
spans with ``token_start`` and ``token_end`` (the last token, included, as Prodigy counts).
"""

from __future__ import annotations

import bisect
from pathlib import Path

from ..errors import UserError
from .example import Example, Report, Span
from .files import examples_of, first_record, is_whole_number, kind, write_jsonl

NAME = "prodigy"
TITLE = "Prodigy JSONL"
SUFFIXES = (".jsonl",)
EXAMPLE_LINE = ('{"text": "Anna lives in Berlin.", "spans": [{"start": 0, "end": 4, "label": '
                '"PER"}, {"start": 14, "end": 20, "label": "LOC"}], "answer": "accept"}')
WRITTEN = ("text", "tokens", "spans", "answer")  # fields the writer makes; the others are meta


def looks_like(path: Path, head: str) -> bool:
    """True when the first task has ``spans``, or Prodigy's hashes, or tokens with ``ws``."""
    record = first_record(head)
    if record is None:
        return False
    tokens = record.get("tokens")
    token_objects = isinstance(tokens, list) and bool(tokens) and isinstance(tokens[0], dict)
    return ("spans" in record or "_task_hash" in record or "_input_hash" in record
            or token_objects)


def read(path: Path, report: Report) -> list[Example]:
    """The accepted tasks with a text, in file order; the others are counted and left out."""
    path = Path(path)
    return examples_of(path, report, TITLE,
                       lambda index, number, record: _example(path, index, number, record, report))


def _example(path: Path, index: int, number: int, record: dict, report: Report) -> Example | None:
    where = f"{path}:{number}"
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        raise UserError(f"{where}: expected the text as a string, found {kind(text)}")
    meta = {key: value for key, value in record.items() if key not in WRITTEN}
    example = Example(text or "", [], record=index, line=number, source=path.name, doc_id=index,
                      meta={NAME: meta})
    answer = record.get("answer", "accept")
    if answer != "accept":
        report.add("not accepted", example, f"answer {answer!r}")
        return None
    if not example.text.strip():
        report.add("empty text", example, "no text" if text is None else f"text {text!r}")
        return None
    if "spans" not in record:
        report.add("unannotated", example, "no 'spans' field")
        return None
    if not isinstance(record["spans"], list):
        raise UserError(f"{where}: expected 'spans' as a list, found {kind(record['spans'])}")
    example.spans = [_span(where, span) for span in record["spans"]]
    if record.get("tokens") is not None:
        example.words = _words(where, record["tokens"])
    return example


def _span(where: str, span: object) -> Span:
    ok = (isinstance(span, dict) and is_whole_number(span.get("start"))
          and is_whole_number(span.get("end")) and isinstance(span.get("label"), str))
    if not ok:
        raise UserError(f"{where}: expected each span as an object with whole-number 'start' and "
                        f"'end' and a 'label', found {span!r}")
    return Span(span["start"], span["end"], span["label"])


def _words(where: str, tokens: object) -> list[tuple[int, int]]:
    if not isinstance(tokens, list):
        raise UserError(f"{where}: expected 'tokens' as a list, found {kind(tokens)}")
    words = []
    for token in tokens:
        ok = (isinstance(token, dict) and is_whole_number(token.get("start"))
              and is_whole_number(token.get("end")))
        if not ok:
            raise UserError(f"{where}: expected each token as an object with whole-number "
                            f"'start' and 'end', found {token!r}")
        words.append((token["start"], token["end"]))
    return words


def write(examples: list[Example], path: Path) -> None:
    """One accepted task a line: its tokens, its spans on them, and the fields (hashes, meta) a
    Prodigy task came with."""
    write_jsonl(Path(path), [_task(example) for example in examples])


def _task(example: Example) -> dict:
    if example.words is None:
        raise ValueError("prodigy.write expects aligned examples (words set); call align first")
    text, words = example.text, example.words
    tokens = [{"text": text[a:b], "start": a, "end": b, "id": i,
               "ws": b < len(text) and text[b].isspace()} for i, (a, b) in enumerate(words)]
    starts, ends = [a for a, _ in words], [b for _, b in words]
    spans = []
    for span in example.spans:
        first, last = bisect.bisect_left(starts, span.start), bisect.bisect_left(ends, span.end)
        if first >= len(words) or last >= len(words) or (starts[first], ends[last]) != (
                span.start, span.end):
            raise ValueError(f"{example.where()}: a span off the words; call align first")
        spans.append({"start": span.start, "end": span.end, "text": text[span.start:span.end],
                      "token_start": first, "token_end": last, "label": span.label})
    return {"text": text, "tokens": tokens, "spans": spans, **example.meta.get(NAME, {}),
            "answer": "accept"}
