"""Label Studio JSON: the tasks a Label Studio project exports, and files it imports.

A task is ``{"id", "data": {"text": ...}, "annotations": [{"result": [...], "was_cancelled",
"created_at", "updated_at"}], "predictions": [...]}``; an entity is a result of type ``labels``
whose ``value`` holds ``start``, ``end``, ``text`` and ``labels``. The latest annotation that was
not cancelled is read; the JSON-MIN export (``{"text", "label": [{start, end, text, labels}]}``)
and a single task object are read too. What a later write of this format keeps is in
``meta[NAME]``: the task id, the other data fields, the names the project's labeling
configuration gives the text and its labels.
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path

from ..errors import UserError
from .example import Example, Report, Span
from .files import is_whole_number, kind, write_text
from .json_array import array_records

NAME = "label-studio"
TITLE = "Label Studio JSON"
SUFFIXES = (".json",)
EXAMPLE_LINE = ('[{"data": {"text": "Anna lives in Berlin."}, "annotations": [{"result": '
                '[{"type": "labels", "value": {"start": 0, "end": 4, "text": "Anna", '
                '"labels": ["PER"]}}]}]}]')
UNANNOTATED = ("skip", "keep")  # a task with no usable annotation: left out, or kept
MODEL_VERSION = "ner-studio"  # the model_version of written predictions
_TASK_KEYS = ('"annotations"', '"predictions"', '"completions"')


def looks_like(path: Path, head: str) -> bool:
    """Tasks with ``data`` and annotations or predictions, or JSON-MIN rows with ``labels``."""
    if head.lstrip()[:1] not in ("[", "{"):
        return False
    tasks = '"data"' in head and any(key in head for key in _TASK_KEYS)
    json_min = '"labels"' in head and '"start"' in head and '"paragraphs"' not in head
    return tasks or json_min


def read(path: Path, report: Report, *, text_field: str | None = None,
         unannotated: str = "skip") -> list[Example]:
    """The tasks of a Label Studio export, one example each, with the latest annotation's spans.

    ``text_field`` names the data field that holds the text when a task has several. A task
    without a usable annotation is counted "unannotated" and left out; with
    ``unannotated="keep"`` (a queue of texts to annotate) it is kept, with the spans of its
    latest prediction when it has one, else none.
    """
    if unannotated not in UNANNOTATED:
        raise UserError(f"expected unannotated= one of {', '.join(UNANNOTATED)}, found "
                        f"{unannotated!r}")
    records = array_records(path, "Label Studio tasks")
    report.records = len(records)
    examples = []
    for index, (task, line) in enumerate(records):
        if not isinstance(task, dict):
            raise UserError(f"{path}:{line}: expected a Label Studio task (an object with "
                            f"data and annotations), found {kind(task)}")
        example = _read_task(task, Example("", [], record=index, line=line, source=path.name,
                                           doc_id=index), report, text_field, unannotated)
        if example is not None:
            examples.append(example)
    return examples


def _read_task(task: dict, example: Example, report: Report, text_field: str | None,
               unannotated: str) -> Example | None:
    json_min = "data" not in task
    data = task if json_min else task["data"]
    if not isinstance(data, dict):
        raise UserError(f"{example.where()}: expected the task's data as an object, found "
                        f"{kind(data)}")
    field = _text_field(data, text_field, example, json_min)
    example.text = data[field]
    own: dict = {"text_field": field}
    if "id" in task:
        own["id"] = task["id"]
    if not json_min:
        own["data"] = {key: value for key, value in data.items() if key != field}
    example.meta = {NAME: own}
    if not example.text.strip():
        report.add("empty text", example, f"the field {field!r} is {example.text!r}")
        return None
    if json_min:
        results = _min_results(task, field)
        if results is None and unannotated == "keep":
            results = []
        elif results is None:
            report.add("unannotated", example, "no annotation")
    else:
        results = _chosen(task, example, report, unannotated)
    if results is None:
        return None
    example.spans = _spans(results, example, report, json_min)
    return example


def _text_field(data: dict, text_field: str | None, example: Example, json_min: bool) -> str:
    """The data field that holds the text: ``text_field``, else ``text``, else the only string."""
    strings = [key for key, value in data.items() if isinstance(value, str)]
    if text_field is not None:
        if not isinstance(data.get(text_field), str):
            raise UserError(f"{example.where()}: expected the text in the field {text_field!r}, "
                            f"found {'no such field' if text_field not in data else 'no string'}"
                            f" (string fields: {', '.join(strings) or 'none'})")
        return text_field
    if isinstance(data.get("text"), str):
        return "text"
    if json_min or not strings:
        raise UserError(f"{example.where()}: expected a task with a text (a string field "
                        f"'text'{'' if json_min else ' in data'}), found "
                        f"{'the fields ' + ', '.join(data) if data else 'no fields'}")
    if len(strings) > 1:
        raise UserError(f"{example.where()}: expected one text field in data, found several "
                        f"({', '.join(strings)}); name one with text_field")
    return strings[0]


def _chosen(task: dict, example: Example, report: Report, unannotated: str) -> list | None:
    """The results of the latest annotation not cancelled, the others counted; ``None`` when the
    task is left out."""
    annotations = _entries(task, "annotations" if "annotations" in task else "completions",
                           example)
    usable = []
    for index, annotation in enumerate(annotations):
        if annotation.get("was_cancelled"):
            report.add("cancelled", example, f"annotation {annotation.get('id', index + 1)}")
        else:
            usable.append((index, annotation))
    if usable:
        index, latest = max(usable, key=_recency)
        if len(usable) > 1:
            report.add("older annotation", example, f"{len(usable) - 1} older than annotation "
                       f"{latest.get('id', index + 1)}", n=len(usable) - 1)
        return _results(latest, example)
    if unannotated == "keep":
        predictions = _entries(task, "predictions", example)
        if not predictions:
            return []
        example.meta[NAME]["from_predictions"] = True
        return _results(max(enumerate(predictions), key=_recency)[1], example)
    report.add("unannotated", example, "only cancelled annotations" if annotations
               else "no annotation")
    return None


def _entries(task: dict, key: str, example: Example) -> list[dict]:
    entries = task.get(key) or []
    if not isinstance(entries, list):
        raise UserError(f"{example.where()}: expected {key} as a list of objects, found "
                        f"{kind(entries)}")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise UserError(f"{example.where()}: expected each of {key} as an object, found "
                            f"{kind(entry)} (number {number})")
    return entries


def _recency(entry: tuple[int, dict]) -> tuple[str, str, int]:
    """Latest by ``updated_at``, then ``created_at`` (ISO times sort as text), then file order."""
    index, annotation = entry
    return (str(annotation.get("updated_at") or ""), str(annotation.get("created_at") or ""),
            index)


def _results(annotation: dict, example: Example) -> list:
    results = annotation.get("result") or []
    if not isinstance(results, list):
        raise UserError(f"{example.where()}: expected an annotation's result as a list, found "
                        f"{kind(results)}")
    return results


def _min_results(task: dict, field: str) -> list | None:
    """JSON-MIN: the values of the fields that hold lists of labelled regions (the export names
    each after its labels' tag); ``None`` for a task that was never annotated."""
    values = [region for key, value in task.items() if key != field and isinstance(value, list)
              for region in value if isinstance(region, dict) and "labels" in region]
    if not values and "annotation_id" not in task:
        return None
    return [{"type": "labels", "value": region} for region in values]


def _spans(results: list, example: Example, report: Report, json_min: bool) -> list[Span]:
    spans, units = [], _utf16_offsets(example.text)
    for number, result in enumerate(results, 1):
        if not isinstance(result, dict):
            raise UserError(f"{example.where()}: expected result {number} as an object, found "
                            f"{kind(result)}")
        if result.get("type") != "labels":
            report.add("not an entity", example, f"result {number} of type {result.get('type')!r}")
            continue
        value = result.get("value")
        start, end, labels = _value(value, number, example)
        moved = _code_points(example.text, start, end, value.get("text"), units)
        if moved != (start, end):
            report.add("utf-16 offsets", example, f"{labels[0]} {value.get('text')!r} at "
                       f"{start}-{end} read as {moved[0]}-{moved[1]}")
        start, end = moved
        if len(labels) > 1:
            report.add("overlap", example, f"{example.text[start:end]!r} labelled "
                       f"{', '.join(labels)}: {labels[0]} kept")
        score = result.get("score")
        number_score = isinstance(score, (int, float)) and not isinstance(score, bool)
        spans.append(Span(start, end, labels[0], float(score) if number_score else None))
        own = example.meta[NAME]
        if not json_min and "from_name" not in own:
            own.update(from_name=result.get("from_name"), to_name=result.get("to_name"))
    return spans


def _value(value: object, number: int, example: Example) -> tuple[int, int, list[str]]:
    where = f"{example.where()}: result {number}"
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected a value with start, end and labels, found "
                        f"{kind(value)}")
    start, end, labels = value.get("start"), value.get("end"), value.get("labels")
    for name, offset in (("start", start), ("end", end)):
        if not is_whole_number(offset):
            raise UserError(f"{where}: expected an integer {name}, found {offset!r}")
    if (not isinstance(labels, list) or not labels
            or not all(isinstance(label, str) for label in labels)):
        raise UserError(f"{where}: expected labels as a list of names, found {labels!r}")
    return start, end, labels


def _utf16_offsets(text: str) -> list[int] | None:
    """The UTF-16 offset of each character (and of the end), when the text has characters
    outside the Basic Multilingual Plane (emoji): there JavaScript's offsets differ from ours."""
    if all(ord(c) <= 0xFFFF for c in text):
        return None
    units = [0]
    for c in text:
        units.append(units[-1] + (2 if ord(c) > 0xFFFF else 1))
    return units


def _code_points(text: str, start: int, end: int, said: object,
                 units: list[int] | None) -> tuple[int, int]:
    """Older Label Studio versions counted offsets in UTF-16 units (JavaScript's string length),
    so after an emoji they point one character too far per emoji; the span's own ``text`` says
    which count was used."""
    if units is None or not isinstance(said, str) or text[start:end] == said or end > units[-1]:
        return start, end
    a, b = bisect.bisect_left(units, start), bisect.bisect_left(units, end)
    if b < len(units) and units[a] == start and units[b] == end and text[a:b] == said:
        return a, b
    return start, end


def write(examples: list[Example], path: Path, predictions: bool = False) -> None:
    """Tasks a Label Studio project imports: each example's spans as its annotation, or with
    ``predictions`` as a prediction (with each span's score) to be corrected there."""
    tasks = [_task(example, number, predictions) for number, example in enumerate(examples, 1)]
    # A task a line: compact (a file of model output stays near its JSONL's size), and a
    # message about a task can name its line.
    lines = ",\n".join(json.dumps(task, ensure_ascii=False) for task in tasks)
    write_text(path, f"[\n{lines}\n]\n")


def _task(example: Example, number: int, predictions: bool) -> dict:
    own = example.meta.get(NAME, {})
    names = {"from_name": own.get("from_name") or "label", "to_name": own.get("to_name") or "text"}
    result = []
    for index, span in enumerate(example.spans, 1):
        region = {"id": f"{number}-{index}", **names, "type": "labels",
                  "value": {"start": span.start, "end": span.end,
                            "text": example.text[span.start:span.end], "labels": [span.label]}}
        if predictions and span.score is not None:
            region["score"] = span.score
        result.append(region)
    task = {"id": own["id"]} if "id" in own else {}
    task["data"] = {**own.get("data", {}), own.get("text_field", "text"): example.text}
    if not predictions:
        task["annotations"] = [{"result": result, "was_cancelled": False}]
        return task
    prediction: dict = {"model_version": MODEL_VERSION, "result": result}
    scores = [span.score for span in example.spans if span.score is not None]
    if scores:
        prediction["score"] = sum(scores) / len(scores)
    task["predictions"] = [prediction]
    return task
