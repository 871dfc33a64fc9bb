"""The Files tab: a whole file of texts in, its entities out as JSONL and CSV downloads, and as
files Label Studio (predictions to correct there) and doccano import.

The file is checked whole (size, format, every record, their number) before the model reads a
word; ``ner_core.batch.recognize_file`` then streams it through the recognizer in batches, so
the server stays responsive for other visitors while a long file runs. The outputs go to a fresh
folder of each request under the visitor's own temporary folder, once the disk has room for them.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from ner_core import formats, tenancy
from ner_core.batch import BatchSummary, count_records, recognize_file, skipped_text
from ner_core.errors import UserError
from ner_core.formats import Report
from ner_core.records import CSV_COLUMNS, TEXT_FIELD, csv_rows, read_records

from . import access, models
from .errors import shown_to_user
from .uploads import choose_field, uploaded
from .views import color_map, highlighted, minimum_score

MAX_RECORDS = 100_000
PREVIEW_RECORDS = 20  # records shown highlighted on the page; the downloads hold them all
TYPE_COLUMNS = ["type", "entities"]
FREQUENT_COLUMNS = ["entity", "type", "count"]
FILE_TYPES = [".txt", ".jsonl", ".csv", ".tsv"]
OUTPUTS = "files"  # their kind among a visitor's temporary files
# The JSONL repeats every record with its entities, and the CSV lists the entities again.
OUTPUT_BYTES_PER_INPUT_BYTE = 3
# The Label Studio and doccano files repeat the JSONL's texts and entities, Label Studio's in
# indented JSON with several fields per entity: about 3.7 and 0.4 times the JSONL.
LABELLED_BYTES_PER_JSONL_BYTE = 5
# The entities for the labelling tools too: a file Label Studio imports as predictions to correct
# there, and doccano's JSONL.
LABELLED_OUTPUTS = {"label-studio-predictions": ".label-studio.json", "doccano": ".doccano.jsonl"}
LABELLED_SAID = "Label Studio and doccano"
MAX_FIELD_CHARS = 200


def checked_records(path: str, text_field: str, max_chars: int) -> int:
    """How many records of ``path`` are to be recognized (those up to ``max_chars`` long),
    refusing the file before any work: too large, of another kind, with a bad record (file and
    line), with no records or more than ``MAX_RECORDS``."""
    with uploaded(path) as name:
        kept, skipped = count_records(path, text_field, max_chars)
    total = kept + skipped
    if total == 0:
        raise UserError(f"{name}: expected at least one text, found none")
    if total > MAX_RECORDS:
        raise UserError(f"{name}: expected at most {MAX_RECORDS:,} records, found {total:,}; "
                        "split the file, or use `python -m ner_core predict --input FILE "
                        "--output FILE`")
    return kept


def write_csv(input_path: str, text_field: str, max_chars: int, jsonl: Path,
              output: Path) -> tuple[list[tuple[str, list[dict]]], int]:
    """The CSV of the JSONL ``recognize_file`` wrote, built from its entities rather than by
    recognizing again; returns the first ``PREVIEW_RECORDS`` (text, entities) and how many
    records have a text that is more than spaces.

    The JSONL holds one line per record ``read_records`` yields with the same limit, in order.
    """
    preview, texts = [], 0
    records = read_records(input_path, text_field, max_chars=max_chars)
    with open(jsonl, encoding="utf-8") as found, \
            open(output, "w", newline="", encoding="utf-8") as out:
        rows = csv.writer(out, lineterminator="\n")
        rows.writerow(CSV_COLUMNS)
        for record, line in zip(records, found, strict=True):
            entities = json.loads(line)["entities"]
            rows.writerows(csv_rows(record, entities))
            if len(preview) < PREVIEW_RECORDS:
                preview.append((record.text, entities))
            texts += bool(record.text.strip())
    return preview, texts


def write_labelled(jsonl: Path, text_field: str, outputs: dict[str, Path], name: str) -> Report:
    """The JSONL ``recognize_file`` wrote (the studio's JSONL, its texts in ``text_field``)
    converted by the registry into each format of ``outputs`` (format -> file), once the disk
    has room for them; the report of the conversion. ``name`` is the upload's."""
    tenancy.check_room(LABELLED_BYTES_PER_JSONL_BYTE * jsonl.stat().st_size,
                       f"the {LABELLED_SAID} files of {name}")
    converted = formats.read(jsonl, "studio", text_field=text_field, need_entities=False)
    for name, path in outputs.items():
        formats.write(converted.examples, path, name)
    return converted.report


def summary_text(name: str, model: str, summary: BatchSummary, precision: str) -> str:
    line = (f"`{name}` with `{model}` ({precision}): {summary.records:,} records, "
            f"{summary.entities:,} entities.")
    if summary.skipped:
        skipped = skipped_text(summary)
        line += f" {skipped[0].upper()}{skipped[1:]}."
    if not summary.most_frequent_exact:
        line += (" The file has too many distinct entities to count them all: the most frequent "
                 "ones' counts are lower bounds.")
    return line


def preview_value(preview: list[tuple[str, list[dict]]]) -> dict:
    """The first records one per line, their entities shifted to where each line starts."""
    text, entities, start = [], [], 0
    for record_text, found in preview:
        text.append(record_text)
        entities += [{**e, "start": e["start"] + start, "end": e["end"] + start} for e in found]
        start += len(record_text) + 1
    return highlighted("\n".join(text), entities)


@shown_to_user
def recognize_upload(file: str | None, model: str, text_field: str | None, threshold: float,
                     progress=gr.Progress(), profile: gr.OAuthProfile | None = None,
                     request: gr.Request = None):
    """Entities of every record of ``file``: a summary, counts per type, the most frequent
    entities, the first records highlighted, and the JSONL and CSV downloads."""
    if not file:
        raise UserError("upload a .txt, .jsonl, .csv or .tsv file first")
    threshold = minimum_score(threshold)
    text_field = text_field or TEXT_FIELD
    if not isinstance(text_field, str) or len(text_field) > MAX_FIELD_CHARS:
        raise UserError(f"expected the name of a text field or column of at most "
                        f"{MAX_FIELD_CHARS} characters, found {text_field!r:.60}")
    who = access.visitor(profile, request)
    with tenancy.HEAVY.hold(who.identity, f"file job on {Path(file).name}"):
        return _recognize(file, models.pick(model, None, who=who), text_field, threshold,
                          progress, who.identity)


def _recognize(file: str, name: str, text_field: str, threshold: float, progress,
               owner: str | None):
    recognizer = models.recognizer(name)
    total = checked_records(file, text_field, recognizer.max_text_chars)
    tenancy.check_room(OUTPUT_BYTES_PER_INPUT_BYTE * Path(file).stat().st_size,
                       f"the entities of {Path(file).name}")
    progress((0, total), unit="records")
    # Fresh: one per request, so that two requests on files of one name never share outputs.
    directory = Path(tempfile.mkdtemp(prefix="job-", dir=tenancy.tenant_temp(owner, OUTPUTS)))
    stem = Path(file).stem
    jsonl, table = directory / f"{stem}.entities.jsonl", directory / f"{stem}.entities.csv"
    labelled = {fmt: directory / f"{stem}{ending}" for fmt, ending in LABELLED_OUTPUTS.items()}
    try:
        with uploaded(file):
            summary = recognize_file(recognizer, file, jsonl, "jsonl", text_field,
                                     threshold=threshold, checked=total,
                                     on_progress=lambda done, of: progress((done, of),
                                                                           unit="records"))
            preview, texts = write_csv(file, text_field, recognizer.max_text_chars, jsonl,
                                       table)
        # Without a text (all too long, or blank) there is nothing to label in another tool.
        report = write_labelled(jsonl, text_field, labelled, Path(file).name) if texts else None
    except BaseException:  # nothing is left of a request that failed
        shutil.rmtree(directory, ignore_errors=True)
        raise
    types = sorted(summary.per_type)
    said = summary_text(Path(file).name, name, summary, recognizer.precision_said)
    if report is not None and report.changed:
        said += f" The {LABELLED_SAID} files: {_changes(report)}."
    return (said,
            pd.DataFrame(list(summary.per_type.items()), columns=TYPE_COLUMNS),
            pd.DataFrame([[e["text"], e["type"], e["count"]] for e in summary.most_frequent],
                         columns=FREQUENT_COLUMNS),
            gr.HighlightedText(value=preview_value(preview), color_map=color_map(types)),
            [str(jsonl), str(table), *(map(str, labelled.values()) if report else [])])


def _changes(report: Report) -> str:
    return ", ".join(f"{count:,} {change}" for change, count in report.counts.items() if count)


def build(page) -> None:
    """The tab's components and events (inside ``gr.Tab("Files")``)."""
    choices = models.model_choices()
    with gr.Row():
        with gr.Column(scale=3):
            upload = gr.File(label="File of texts: .txt (one per line), .jsonl, .csv or .tsv",
                             file_types=FILE_TYPES, type="filepath", height=130,
                             elem_id="batch-file")
        with gr.Column(scale=1, min_width=240):
            model = gr.Dropdown(choices, value=choices[0] if choices else None, label="Model",
                                elem_id="files-model", allow_custom_value=True)
            text_field = gr.Dropdown([TEXT_FIELD], value=TEXT_FIELD, label="Text field or column",
                                     info="JSONL field or CSV/TSV column holding the text",
                                     allow_custom_value=True, elem_id="text-field")
            threshold = gr.Slider(0, 1, value=0, step=0.01, label="Minimum score")
            run = gr.Button("Recognize file", variant="primary", elem_id="recognize-file")
    summary = gr.Markdown(elem_id="files-summary")
    with gr.Row():
        per_type = gr.Dataframe(pd.DataFrame(columns=TYPE_COLUMNS), label="Entities per type",
                                interactive=False, elem_id="files-per-type")
        frequent = gr.Dataframe(pd.DataFrame(columns=FREQUENT_COLUMNS),
                                label="Most frequent entities", interactive=False,
                                elem_id="files-frequent")
    preview = gr.HighlightedText(label=f"The first {PREVIEW_RECORDS} records", show_legend=True,
                                 color_map=color_map([]), elem_id="files-preview")
    downloads = gr.File(label="Download (JSONL, CSV, Label Studio predictions, doccano JSONL)",
                        file_count="multiple", interactive=False, elem_id="files-downloads")
    page.model_pickers.append(model)

    upload.change(choose_field, upload, text_field, api_visibility="private",
                  show_progress="hidden")
    # In the one group of all model work: a long file takes one of its slots, as a highlight does.
    run.click(recognize_upload, [upload, model, text_field, threshold],
              [summary, per_type, frequent, preview, downloads], api_name="recognize_file",
              **models.model_work())
