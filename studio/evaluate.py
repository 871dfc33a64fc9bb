"""The Evaluate tab: scores, per-entity table and chart, model comparison, and the error browser."""

from __future__ import annotations

import functools
import html

import gradio as gr
import pandas as pd

from ner_core import evaluation, to_dataset_dict
from ner_core.errors import UserError
from ner_core.labels import spans
from ner_core.metrics import ERROR_KINDS

from . import models
from .data import conll2003, read_upload
from .errors import shown_to_user
from .views import color_map, per_entity_table

MAX_ERRORS_SHOWN = 200


def load_split(source: str, upload: str | None):
    """``validation`` or ``test`` of CoNLL-2003, or an uploaded labelled file."""
    if source == "upload":
        if not upload:
            raise UserError("upload a labelled CoNLL file, or choose a CoNLL-2003 split")
        return to_dataset_dict({"file": read_upload(upload).sentences})["file"]
    data = conll2003()
    if source not in data:
        raise UserError(f"expected a split the data has ({', '.join(data)}), found {source!r}")
    return data[source]


@functools.lru_cache(maxsize=8)
def _evaluate_cached(model: str, version: str, source: str, mode: str) -> dict:
    return evaluation.evaluate(models.recognizer(model), load_split(source, None), mode=mode,
                               errors=True)


def run_evaluation(model: str, source: str, upload: str | None, mode: str) -> dict:
    """Scores with errors; CoNLL-2003 results are kept for comparing models."""
    model = models.pick(model, None)
    if source == "upload":
        return evaluation.evaluate(models.recognizer(model), load_split(source, upload),
                                   mode=mode, errors=True)
    return _evaluate_cached(model, models.version(model), source, mode)


def overall_frame(result: dict) -> pd.DataFrame:
    o = result["overall"]
    return pd.DataFrame([[round(o["precision"], 4), round(o["recall"], 4), round(o["f1"], 4),
                          round(o["accuracy"], 4), result["n_sentences"]]],
                        columns=["precision", "recall", "F1", "accuracy", "sentences"])


def comparison(a_name: str, a: dict, b_name: str, b: dict) -> pd.DataFrame:
    """Per-entity F1 of two models side by side, with B minus A."""
    rows = []
    for entity in sorted(set(a["per_entity"]) | set(b["per_entity"])):
        fa = a["per_entity"].get(entity, {}).get("f1", 0.0)
        fb = b["per_entity"].get(entity, {}).get("f1", 0.0)
        rows.append([entity, round(fa, 4), round(fb, 4), round(fb - fa, 4)])
    rows.append(["overall", round(a["overall"]["f1"], 4), round(b["overall"]["f1"], 4),
                 round(b["overall"]["f1"] - a["overall"]["f1"], 4)])
    return pd.DataFrame(rows, columns=["entity", f"F1 {a_name}", f"F1 {b_name}", "difference"])


def _marked(tokens: list[str], tags: list[str], colors: dict[str, str]) -> str:
    """Tokens as HTML with each entity in its type's colour; all text escaped."""
    out, i = [], 0
    for label, start, end in spans(tags):
        out += [html.escape(t) for t in tokens[i:start]]
        words = html.escape(" ".join(tokens[start:end]))
        out.append(f"<mark style='background:{colors.get(label, '#ddd')}55'>{words} "
                   f"<small>{html.escape(label)}</small></mark>")
        i = end
    out += [html.escape(t) for t in tokens[i:]]
    return " ".join(out)


def error_browser(result: dict | None, kind: str, entity_type: str, query: str) -> str:
    """The sentences with errors of the chosen kind and type, gold and predicted side by side."""
    if not result:
        return "<p>Evaluate a model to browse its errors.</p>"
    query = (query or "").strip().lower()
    colors = color_map(list(result["per_entity"]))
    by_sentence: dict[int, list[dict]] = {}
    for error in result["errors"]:
        span = error["gold"] or error["predicted"]
        words = " ".join(result["tokens"][error["sentence"]][span[1]:span[2]]).lower()
        if (kind in ("all", error["kind"]) and entity_type in ("all", span[0])
                and query in words):
            by_sentence.setdefault(error["sentence"], []).append(error)
    if not by_sentence:
        return "<p>No errors match these filters.</p>"
    rows = []
    for s in list(by_sentence)[:MAX_ERRORS_SHOWN]:
        tokens = result["tokens"][s]
        labels = ", ".join(sorted({e["kind"] for e in by_sentence[s]}))
        rows.append(f"<tr><td>{s}</td><td>{html.escape(labels)}</td>"
                    f"<td>{_marked(tokens, result['gold'][s], colors)}</td>"
                    f"<td>{_marked(tokens, result['predicted'][s], colors)}</td></tr>")
    shown = f"{min(len(by_sentence), MAX_ERRORS_SHOWN)} of {len(by_sentence)} sentences"
    return (f"<p>{shown}</p><table class='errors'><tr><th>#</th><th>errors</th><th>gold</th>"
            f"<th>predicted</th></tr>{''.join(rows)}</table>")


KIND_CHOICES = ["all", *ERROR_KINDS]


@shown_to_user
def evaluate(model, source, upload, mode):
    result = run_evaluation(model, source, upload, mode)
    table = per_entity_table(result)
    types = gr.Dropdown(choices=["all", *result["per_entity"]], value="all")
    return (overall_frame(result), table, table[["entity", "F1"]], result,
            error_browser(result, "all", "all", ""), types)


@shown_to_user
def compare(model_a, model_b, source, upload, mode):
    a = run_evaluation(model_a, source, upload, mode)
    b = run_evaluation(model_b, source, upload, mode)
    return comparison(model_a, a, model_b, b)


def build(page) -> None:
    """The tab's components and events (inside ``gr.Tab("Evaluate")``)."""
    choices = models.model_choices()
    first = choices[0] if choices else None
    with gr.Row():
        model = gr.Dropdown(choices, value=first, label="Model", elem_id="eval-model",
                            allow_custom_value=True)
        source = gr.Radio([("CoNLL-2003 validation", "validation"), ("CoNLL-2003 test", "test"),
                           ("Uploaded file", "upload")], value="validation", label="Data")
        upload = gr.File(label="Labelled CoNLL file", type="filepath", height=130,
                         elem_id="eval-file")
        mode = gr.Radio([("default (conlleval)", "default"), ("strict IOB2", "strict")],
                        value="default", label="Mode")
    evaluate_button = gr.Button("Evaluate", variant="primary", elem_id="evaluate")
    overall = gr.Dataframe(label="Overall", interactive=False, elem_id="overall")
    with gr.Row():
        per_entity = gr.Dataframe(label="Per entity", interactive=False, elem_id="per-entity")
        chart = gr.BarPlot(x="entity", y="F1", title="F1 per entity", y_lim=[0, 1], height=260)
    with gr.Accordion("Compare with another model", open=False):
        with gr.Row():
            other = gr.Dropdown(choices, value=first, label="Model B", allow_custom_value=True)
            compare_button = gr.Button("Compare")
        comparison_table = gr.Dataframe(interactive=False)
    with gr.Accordion("Errors", open=True):
        with gr.Row():
            kind = gr.Dropdown(KIND_CHOICES, value="all", label="Kind")
            entity_type = gr.Dropdown(["all"], value="all", label="Type")
            query = gr.Textbox(label="Entity contains", placeholder="e.g. Paris")
        errors = gr.HTML(error_browser(None, "all", "all", ""), elem_id="errors")
    evaluated = gr.State(None)
    page.model_pickers.extend([model, other])

    evaluate_button.click(evaluate, [model, source, upload, mode],
                          [overall, per_entity, chart, evaluated, errors, entity_type],
                          api_name="evaluate", concurrency_limit=1)
    compare_button.click(compare, [model, other, source, upload, mode], comparison_table,
                         api_name="compare", concurrency_limit=1)
    for widget in (kind, entity_type, query):
        widget.change(error_browser, [evaluated, kind, entity_type, query], errors,
                      api_visibility="private", show_progress="hidden")
