"""The Evaluate tab: scores with their intervals, per-entity table and chart, partial matches and
confused types, model comparison with a paired test, and the error browser.

An evaluation's tokens, tags and errors (megabytes for a CoNLL-2003 split) are kept on disk, in
the visitor's temporary folder under a random id; the page's state holds only the id, and the
error browser and the match tables read the file. The file goes when the state expires or the
page evaluates again.
"""

from __future__ import annotations

import functools
import html
import json
import re
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from ner_core import evaluation, significance, tenancy, to_dataset_dict
from ner_core.errors import UserError
from ner_core.labels import spans
from ner_core.metrics import ERROR_KINDS

from . import access, models
from .data import conll2003, read_upload
from .errors import shown_to_user
from .labelled import FORMATS_SAID
from .score_tables import comparison, entity_table, match_frames, overall_frame, verdict_text
from .views import color_map, per_entity_table  # noqa: F401 (still read as ev.per_entity_table)

MAX_ERRORS_SHOWN = 200
MAX_FILTER_CHARS = 200  # the type and the words the error browser filters by
# CoNLL-2003 results kept in memory: whole ones (with every sentence's tags) for the error
# browser, scores alone for comparing models.
RESULTS_KEPT = 2
SCORES_KEPT = 32
EVALUATIONS = "evaluations"  # their kind among a visitor's temporary files
BROWSED = ("per_entity", "tokens", "gold", "predicted", "errors")  # what the error browser reads
KEPT = (*BROWSED, "partial", "confusion")  # what is kept on disk: that and the match tables
_EVALUATION_ID = re.compile(r"[0-9a-f]{32}")
NOTHING_YET = "<p>Evaluate a model to browse its errors.</p>"
GONE = ("<p>The errors of this evaluation are no longer kept on the server: evaluate again to "
        "browse them.</p>")


def load_split(source: str, upload: str | None):
    """``validation`` or ``test`` of CoNLL-2003, or an uploaded labelled file.

    An upload may hold at most ``NER_MAX_EVAL_SENTENCES`` sentences; the CoNLL-2003 splits are
    the host's own (3,250 and 3,453 sentences) and scored once per model.
    """
    if source == "upload":
        if not upload:
            raise UserError(f"upload a labelled file ({FORMATS_SAID}), or choose a CoNLL-2003 "
                            "split")
        sentences = read_upload(upload).sentences
        check_sentences(Path(upload).name, len(sentences))
        return to_dataset_dict({"file": sentences})["file"]
    data = conll2003()
    if source not in data:
        raise UserError(f"expected a split the data has ({', '.join(data)}), found {source!r:.60}")
    return data[source]


def check_sentences(name: str, found: int) -> None:
    """``UserError`` when the upload ``name`` holds more labelled sentences than one evaluation
    may score here (``NER_MAX_EVAL_SENTENCES``)."""
    most = tenancy.limit("NER_MAX_EVAL_SENTENCES")
    if most is not None and found > most:
        raise UserError(f"{name}: expected at most {most:,} labelled sentences to evaluate on "
                        f"this server (NER_MAX_EVAL_SENTENCES), found {found:,}; evaluate on a "
                        "part of the file, or with `python -m ner_core evaluate`")


@functools.lru_cache(maxsize=RESULTS_KEPT)
def _evaluate_cached(model: str, version: str, source: str, mode: str) -> dict:
    return evaluation.evaluate(models.recognizer(model), load_split(source, None), mode=mode,
                               errors=True)


def scores_of(full: dict) -> dict:
    """An evaluation with ``errors`` without its tokens, tags and errors, but with what a paired
    test reads of them: ``sentence_totals``, each sentence's true positives, predicted and gold
    entities (a few bytes a sentence)."""
    _, counts = significance.sentence_counts(full["gold"], full["predicted"], full["mode"])
    scores = {key: value for key, value in full.items() if key not in BROWSED[1:]}
    return {**scores, "sentence_totals": counts.sum(axis=1, dtype=np.int32)}


@functools.lru_cache(maxsize=SCORES_KEPT)
def _scores_cached(model: str, version: str, source: str, mode: str) -> dict:
    return scores_of(_evaluate_cached(model, version, source, mode))


def run_evaluation(model: str, source: str, upload: str | None, mode: str, *,
                   who: access.Visitor | None = None, errors: bool = True) -> dict:
    """Scores, with every sentence's tags and errors, or with ``errors`` false as ``scores_of``
    keeps them; CoNLL-2003 results are kept for comparing models."""
    model = models.pick(model, None, who=who)
    if source == "upload":
        split = load_split(source, upload)  # checked whole before a model is loaded
        full = evaluation.evaluate(models.recognizer(model), split, mode=mode, errors=True)
        return full if errors else scores_of(full)
    kept = _evaluate_cached if errors else _scores_cached
    return kept(model, models.version(model), source, mode)


def save_evaluation(result: dict, owner: str | None) -> str:
    """Keep what the error browser and the match tables read of ``result`` in ``owner``'s
    temporary folder; its id."""
    content = json.dumps({key: result[key] for key in KEPT}, ensure_ascii=False).encode()
    tenancy.check_room(len(content), "the errors of this evaluation")
    evaluation_id = uuid.uuid4().hex
    (tenancy.tenant_temp(owner, EVALUATIONS) / f"{evaluation_id}.json").write_bytes(content)
    return evaluation_id


def _evaluation_file(evaluation_id, owner: str | None) -> Path | None:
    if not isinstance(evaluation_id, str) or not _EVALUATION_ID.fullmatch(evaluation_id):
        return None
    return tenancy.temp_root() / tenancy.tenant_key(owner) / EVALUATIONS / f"{evaluation_id}.json"


def saved_evaluation(evaluation_id, owner: str | None) -> dict | None:
    """What ``save_evaluation`` kept for ``owner`` under ``evaluation_id``; ``None`` when there
    is no such evaluation of theirs (any more)."""
    path = _evaluation_file(evaluation_id, owner)
    try:
        return json.loads(path.read_bytes()) if path else None
    except FileNotFoundError:
        return None


def forget_evaluation(evaluation_id, owner: str | None) -> None:
    """Remove ``owner``'s evaluation ``evaluation_id``, if it is still there."""
    path = _evaluation_file(evaluation_id, owner)
    if path:
        path.unlink(missing_ok=True)


def _forget_expired(evaluation_id) -> None:
    """The state's delete callback, which is given the id alone: ids are random, so the one
    file of that name, in whichever visitor's folder, is this state's."""
    if isinstance(evaluation_id, str) and _EVALUATION_ID.fullmatch(evaluation_id):
        for path in tenancy.temp_root().glob(f"*/{EVALUATIONS}/{evaluation_id}.json"):
            path.unlink(missing_ok=True)


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


def browse_errors(result: dict | None, kind: str, entity_type: str, query: str) -> str:
    """The sentences with errors of the chosen kind and type, gold and predicted side by side."""
    if not result:
        return NOTHING_YET
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
def error_browser(evaluation_id: str | None, kind: str, entity_type: str, query: str,
                  profile: gr.OAuthProfile | None = None, request: gr.Request = None) -> str:
    """The error browser of the evaluation ``evaluation_id`` (the page's state), read from disk."""
    if kind not in KIND_CHOICES:
        raise UserError(f"expected a kind of error ({', '.join(KIND_CHOICES)}), "
                        f"found {kind!r:.60}")
    for what, value in (("an entity type", entity_type), ("the words to look for", query or "")):
        if not isinstance(value, str) or len(value) > MAX_FILTER_CHARS:
            raise UserError(f"expected {what} as text of at most {MAX_FILTER_CHARS} characters, "
                            f"found {value!r:.60}")
    if evaluation_id is None:
        return NOTHING_YET
    result = saved_evaluation(evaluation_id, access.visitor(profile, request).identity)
    return GONE if result is None else browse_errors(result, kind, entity_type, query)


@shown_to_user
def evaluate(model, source, upload, mode, previous: str | None = None,
             profile: gr.OAuthProfile | None = None, request: gr.Request = None):
    """Scores, table and chart of ``model``; the id of its kept errors replaces ``previous``."""
    who = access.visitor(profile, request)
    with tenancy.HEAVY.hold(who.identity, "evaluation"):
        result = run_evaluation(model, source, upload, mode, who=who)
    evaluation_id = save_evaluation(result, who.identity)
    forget_evaluation(previous, who.identity)  # this page browses the new one now
    table = entity_table(result)
    types = gr.Dropdown(choices=["all", *result["per_entity"]], value="all")
    return (overall_frame(result), table, table[["entity", "F1"]], evaluation_id,
            browse_errors(result, "all", "all", ""), types)


@shown_to_user
def match_tables(evaluation_id: str | None, profile: gr.OAuthProfile | None = None,
                 request: gr.Request = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The partial-match and confusion tables of the evaluation ``evaluation_id``, from disk."""
    return match_frames(saved_evaluation(evaluation_id, access.visitor(profile, request).identity))


@shown_to_user
def compare(model_a, model_b, source, upload, mode, profile: gr.OAuthProfile | None = None,
            request: gr.Request = None):
    """The paired test's verdict on B against A, and their per-entity F1 side by side."""
    who = access.visitor(profile, request)
    with tenancy.HEAVY.hold(who.identity, "comparison"):
        a = run_evaluation(model_a, source, upload, mode, who=who, errors=False)
        b = run_evaluation(model_b, source, upload, mode, who=who, errors=False)
    test = significance.paired_test_of(a["sentence_totals"], b["sentence_totals"],
                                       names=(f"`{model_a}`", f"`{model_b}`"))
    return verdict_text(test, a["n_sentences"]), comparison(model_a, a, model_b, b)


def build(page) -> None:
    """The tab's components and events (inside ``gr.Tab("Evaluate")``)."""
    choices = models.model_choices()
    first = choices[0] if choices else None
    with gr.Row():
        model = gr.Dropdown(choices, value=first, label="Model", elem_id="eval-model",
                            allow_custom_value=True)
        source = gr.Radio([("CoNLL-2003 validation", "validation"), ("CoNLL-2003 test", "test"),
                           ("Uploaded file", "upload")], value="validation", label="Data")
        upload = gr.File(label=f"Labelled file ({FORMATS_SAID})", type="filepath", height=130,
                         elem_id="eval-file")
        mode = gr.Radio([("default (conlleval)", "default"), ("strict IOB2", "strict")],
                        value="default", label="Mode")
    evaluate_button = gr.Button("Evaluate", variant="primary", elem_id="evaluate")
    overall = gr.Dataframe(label="Overall", interactive=False, elem_id="overall")
    with gr.Row():
        per_entity = gr.Dataframe(label="Per entity", interactive=False, elem_id="per-entity")
        chart = gr.BarPlot(x="entity", y="F1", title="F1 per entity", y_lim=[0, 1], height=260)
    with gr.Accordion("Partial matches and confused types", open=True):
        with gr.Row():
            schemes = gr.Dataframe(label="Partial match (SemEval-2013 schemes)",
                                   interactive=False, elem_id="partial")
            confused = gr.Dataframe(label="Types confused (rows gold, columns predicted)",
                                    interactive=False, elem_id="confusion")
    with gr.Accordion("Compare with another model", open=False):
        with gr.Row():
            other = gr.Dropdown(choices, value=first, label="Model B", elem_id="compare-model",
                                allow_custom_value=True)
            compare_button = gr.Button("Compare", elem_id="compare")
        verdict = gr.Markdown(elem_id="comparison-verdict")
        comparison_table = gr.Dataframe(interactive=False, elem_id="comparison")
    with gr.Accordion("Errors", open=True):
        with gr.Row():
            kind = gr.Dropdown(KIND_CHOICES, value="all", label="Kind")
            entity_type = gr.Dropdown(["all"], value="all", label="Type")
            query = gr.Textbox(label="Entity contains", placeholder="e.g. Paris")
        errors = gr.HTML(NOTHING_YET, elem_id="errors")
    # The id of the page's evaluation; its file goes with it when the state expires.
    evaluated = gr.State(None, time_to_live=models.STATE_SECONDS, delete_callback=_forget_expired)
    page.model_pickers.extend([model, other])

    evaluate_button.click(evaluate, [model, source, upload, mode, evaluated],
                          [overall, per_entity, chart, evaluated, errors, entity_type],
                          api_name="evaluate", **models.model_work()
                          ).success(match_tables, evaluated, [schemes, confused],
                                    api_visibility="private", show_progress="hidden")
    compare_button.click(compare, [model, other, source, upload, mode],
                         [verdict, comparison_table], api_name="compare", **models.model_work())
    for widget in (kind, entity_type, query):
        widget.change(error_browser, [evaluated, kind, entity_type, query], errors,
                      api_visibility="private", show_progress="hidden")
