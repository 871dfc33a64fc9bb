"""NER studio: highlight entities, fine-tune a recognizer and judge it, in the browser.

A thin Gradio shell over ``ner_core``: ``build_demo()`` lays out the page and wires each widget to a
handler in ``studio/``; ``python app.py`` serves it (on 127.0.0.1:7860 unless Gradio's own
environment variables say otherwise).
"""

from __future__ import annotations

import logging

import gradio as gr
import pandas as pd

from ner_core import preset
from ner_core.jobs import JobSnapshot
from ner_core.training import device_description
from studio import evaluate as ev
from studio import finetune as ft
from studio import highlight as hl
from studio.errors import shown_to_user
from studio.models import model_choices

MAX_UPLOAD = "20mb"
HYPERPARAMETERS = ["learning_rate", "train_batch_size", "epochs", "seed", "weight_decay",
                   "warmup_ratio", "max_length", "max_train_sentences", "document_context",
                   "label_all_tokens"]
CSS = """
.errors td, .errors th { padding: 4px 8px; vertical-align: top; border-bottom: 1px solid #8883; }
.errors mark { border-radius: 4px; padding: 0 2px; }
"""


# Highlight ---------------------------------------------------------------------------------------

@shown_to_user
def highlight(text: str, model: str, hub_id: str, threshold: float, int8: bool = False):
    if not (text or "").strip():
        return (None, hl.table([]), None, "Paste or type some text, or pick an example below.",
                {"text": "", "entities": []})
    entities, timing = hl.recognize(text, model, hub_id, bool(int8))
    return (*_highlight_views(text, entities, threshold), timing, {"text": text, "entities": entities})


def _highlight_views(text: str, entities: list[dict], threshold: float):
    shown = hl.visible(entities, threshold)
    types = sorted({e["label"] for e in entities})
    return (gr.HighlightedText(value=hl.highlighted(text, shown), color_map=hl.color_map(types)),
            hl.table(shown), hl.downloads(shown))


@shown_to_user
def filter_by_score(found: dict, threshold: float):
    if not found or not found["text"]:
        return gr.skip(), gr.skip(), gr.skip()
    return _highlight_views(found["text"], found["entities"], threshold)


# Fine-tune ---------------------------------------------------------------------------------------

def apply_preset(name: str):
    config = preset(name)
    base = config.base_model if config.base_model in ft.base_choices()[0] else gr.skip()
    return [base] + [getattr(config, field) if field != "max_train_sentences"
                     else (config.max_train_sentences or 0) for field in HYPERPARAMETERS]


@shown_to_user
def describe_upload(path: str | None) -> str:
    return ft.describe_upload(path)


def _config(base, base_hub, values) -> "ft.TrainConfig":
    return ft.make_config(base, base_hub, dict(zip(HYPERPARAMETERS, values)))


@shown_to_user
def plan(base, base_hub, source, train_file, validation_file, *values) -> str:
    try:
        config = _config(base, base_hub, values)
    except ValueError as error:
        return f"Device: {device_description()}. Settings to fix: {error}"
    estimate = (f"; estimated time on CoNLL-2003: {ft.estimate(config, ft.CONLL_SENTENCES)}"
                if source == "conll2003" else "")
    return f"Device: {device_description(config)}{estimate}."


@shown_to_user
def start_fine_tune(name, base, base_hub, source, train_file, validation_file, *values):
    config = _config(base, base_hub, values)
    name = ft.run_name(name)
    load = ft.data_loader(source, train_file, validation_file)
    ft.JOBS.start(config, load, ft.runs.runs_dir() / name)
    data = "path/to/train.txt" if source == "upload" else "$NER_DATA_DIR"
    return ft.reproduce_command(config, name, data)


def stop_fine_tune() -> None:
    if not ft.JOBS.stop():
        gr.Info("No fine-tune is running.")


def poll(seen: list[str], zipped: str | None, *picked: str):
    """Refresh the job's views, and every model picker once the list of runs changes."""
    snapshot = ft.JOBS.snapshot()
    losses, scores = ft.curves(snapshot)
    choices = model_choices()
    pickers = [gr.skip()] * 4
    if choices != seen:
        # Name the value too: an update of the choices alone resets the picker to the first one.
        lists = [choices, choices, choices, ft.base_choices()[0]]
        values = list(picked) + [None] * (len(lists) - len(picked))
        pickers = [gr.Dropdown(choices=c, value=v if v in c else (c[0] if c else None))
                   for c, v in zip(lists, values)]
    table, download = gr.skip(), gr.skip()
    if snapshot.result is not None and snapshot.run_name != zipped:
        table = _result_table(snapshot)
        download = ft.zip_run(snapshot.run_name)
        zipped = snapshot.run_name
    error = f"**Failed:** {snapshot.error}" if snapshot.state == "failed" else ""
    return (ft.progress_html(snapshot), losses, scores, "\n".join(snapshot.log), table, download,
            error, *pickers, choices, zipped)


def _result_table(snapshot: JobSnapshot) -> pd.DataFrame:
    metrics = snapshot.result.metrics
    if "validation" in metrics:
        table = ev.per_entity_table(metrics["validation"])
        overall = metrics["validation"]["overall"]
        table.loc[len(table)] = ["overall", round(overall["precision"], 4),
                                 round(overall["recall"], 4), round(overall["f1"], 4),
                                 int(table["support"].sum())]
        return table
    why = ("it was stopped before the final scoring" if snapshot.result.stopped_early
           else "no validation data was given")
    return pd.DataFrame({"note": [f"Not scored: {why}. The weights are saved; score them in the "
                                  "Evaluate tab."]})


# Evaluate ----------------------------------------------------------------------------------------

@shown_to_user
def run_evaluation(model, source, upload, mode):
    result = ev.run_evaluation(model, source, upload, mode)
    table = ev.per_entity_table(result)
    types = gr.Dropdown(choices=["all", *result["per_entity"]], value="all")
    return (ev.overall_frame(result), table, table[["entity", "F1"]], result,
            ev.error_browser(result, "all", "all", ""), types)


@shown_to_user
def compare(model_a, model_b, source, upload, mode):
    a = ev.run_evaluation(model_a, source, upload, mode)
    b = ev.run_evaluation(model_b, source, upload, mode)
    return ev.comparison(model_a, a, model_b, b)


# Layout ------------------------------------------------------------------------------------------

def build_demo() -> gr.Blocks:
    choices = model_choices()
    first = choices[0] if choices else None
    bases, base_first, base_note = ft.base_choices()
    recipe = preset("recipe")
    with gr.Blocks(title="NER studio") as demo:
        # At page level, not inside a tab: a tab's components start only once the tab is shown.
        timer = gr.Timer(1.0)
        gr.Markdown("# NER studio\nFind people, organisations, places and other names in text; "
                    "fine-tune a recognizer; see where it goes wrong.")
        with gr.Tab("Highlight"):
            with gr.Row():
                with gr.Column(scale=3):
                    text = gr.Textbox(label="Text", lines=8, placeholder="Paste English text here",
                                      elem_id="text")
                    gr.Examples(hl.EXAMPLES, inputs=text, label="Examples")
                with gr.Column(scale=1, min_width=240):
                    # Pickers accept any value: runs appear while the server runs, and
                    # studio.models.pick checks every name against the current list.
                    model = gr.Dropdown(choices, value=first, label="Model", elem_id="model",
                                        allow_custom_value=True)
                    hub_id = gr.Textbox(label="…or a Hugging Face Hub model id",
                                        placeholder="owner/name")
                    threshold = gr.Slider(0, 1, value=0, step=0.01, label="Minimum score")
                    int8 = gr.Checkbox(False, label="Fast int8 mode (CPU)", elem_id="int8",
                                       info="quantized weights: several times faster; scores "
                                            "differ slightly from the full model")
                    find = gr.Button("Find entities", variant="primary", elem_id="find")
            timing = gr.Markdown()
            highlighted = gr.HighlightedText(label="Entities", show_legend=True,
                                             color_map=hl.color_map([]), elem_id="highlighted")
            entities = gr.Dataframe(hl.table([]), label="Entity table", interactive=False,
                                    elem_id="entities")
            files = gr.File(label="Download (JSON, CSV)", file_count="multiple", interactive=False)
            found = gr.State({"text": "", "entities": []})

        with gr.Tab("Fine-tune"):
            gr.Markdown(base_note)
            with gr.Row():
                base = gr.Dropdown(bases, value=base_first, label="Base model", elem_id="base",
                                   allow_custom_value=True)
                base_hub = gr.Textbox(label="…or a Hub model id", placeholder="owner/name")
                name = gr.Textbox(label="Run name", placeholder="run-YYYYMMDD-HHMMSS", elem_id="run-name")
            with gr.Row():
                source = gr.Radio([("CoNLL-2003", "conll2003"), ("Upload CoNLL files", "upload")],
                                  value="conll2003", label="Data")
                train_file = gr.File(label="Training file (CoNLL)", type="filepath", height=130,
                                     elem_id="train-file")
                validation_file = gr.File(label="Validation file (optional)", type="filepath",
                                          height=130, elem_id="validation-file")
            upload_note = gr.Markdown(elem_id="upload-note")
            with gr.Row():
                recipe_button = gr.Button("Recipe settings", size="sm")
                short_button = gr.Button("Short run (about a minute on 2 CPU cores)", size="sm")
            with gr.Row():
                learning_rate = gr.Number(recipe.learning_rate, label="Learning rate")
                # Whole-number boxes without precision=0: Gradio would round 2.5 to 2 and fail on
                # text from an API call; make_config refuses both, quoting the value.
                batch_size = gr.Number(recipe.train_batch_size, label="Batch size")
                epochs = gr.Number(recipe.epochs, label="Epochs")
                seed = gr.Number(recipe.seed, label="Seed")
                weight_decay = gr.Number(recipe.weight_decay, label="Weight decay")
            with gr.Row():
                warmup = gr.Slider(0, 0.5, value=recipe.warmup_ratio, step=0.01, label="Warmup share")
                max_length = gr.Slider(16, 512, value=recipe.max_length, step=8,
                                       label="Max sequence length (sub-tokens)")
                max_sentences = gr.Number(0, label="Max training sentences (0 = all)")
                document_context = gr.Checkbox(recipe.document_context, label="Document context")
                label_all = gr.Checkbox(recipe.label_all_tokens, label="Label all sub-tokens")
            plan_note = gr.Markdown()
            with gr.Row():
                start = gr.Button("Start fine-tune", variant="primary", elem_id="start")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
            progress = gr.HTML(ft.progress_html(ft.JOBS.snapshot()), elem_id="progress")
            failure = gr.Markdown(elem_id="failure")
            with gr.Row():
                loss_plot = gr.LinePlot(x="step", y="loss", title="Training loss", height=240)
                f1_plot = gr.LinePlot(x="step", y="validation F1", title="Validation F1", height=240)
            log = gr.Textbox(label="Log", lines=6, max_lines=12, autoscroll=True, interactive=False,
                             elem_id="log")
            result_table = gr.Dataframe(ev.per_entity_table({"per_entity": {}}), interactive=False,
                                        label="Per-entity scores of the finished run",
                                        elem_id="result-table")
            zip_file = gr.File(label="Trained model (zip)", interactive=False)
            command = gr.Code(label="Reproduce from the command line", language="shell")
            seen = gr.State(choices)
            zipped = gr.State(None)

        with gr.Tab("Evaluate"):
            with gr.Row():
                eval_model = gr.Dropdown(choices, value=first, label="Model", elem_id="eval-model",
                                         allow_custom_value=True)
                eval_source = gr.Radio([("CoNLL-2003 validation", "validation"),
                                        ("CoNLL-2003 test", "test"), ("Uploaded file", "upload")],
                                       value="validation", label="Data")
                eval_file = gr.File(label="Labelled CoNLL file", type="filepath", height=130,
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
                comparison = gr.Dataframe(interactive=False)
            with gr.Accordion("Errors", open=True):
                with gr.Row():
                    kind = gr.Dropdown(ev.KIND_CHOICES, value="all", label="Kind")
                    entity_type = gr.Dropdown(["all"], value="all", label="Type")
                    query = gr.Textbox(label="Entity contains", placeholder="e.g. Paris")
                errors = gr.HTML(ev.error_browser(None, "all", "all", ""), elem_id="errors")
            evaluated = gr.State(None)

        # Wiring ----------------------------------------------------------------------------------
        find.click(highlight, [text, model, hub_id, threshold, int8],
                   [highlighted, entities, files, timing, found], api_name="highlight")
        text.submit(highlight, [text, model, hub_id, threshold, int8],
                    [highlighted, entities, files, timing, found], api_visibility="undocumented")
        threshold.change(filter_by_score, [found, threshold], [highlighted, entities, files],
                         api_visibility="undocumented", show_progress="hidden")

        settings = [base, base_hub, source, train_file, validation_file, learning_rate, batch_size,
                    epochs, seed, weight_decay, warmup, max_length, max_sentences, document_context,
                    label_all]
        form = [base, learning_rate, batch_size, epochs, seed, weight_decay, warmup, max_length,
                max_sentences, document_context, label_all]
        recipe_button.click(lambda: apply_preset("recipe"), None, form, api_visibility="private")
        short_button.click(lambda: apply_preset("short"), None, form, api_visibility="private")
        for box in (train_file, validation_file):
            box.upload(describe_upload, box, upload_note, api_visibility="private")
        for widget in settings:
            widget.change(plan, settings, plan_note, api_visibility="private", show_progress="hidden")
        demo.load(plan, settings, plan_note, api_visibility="private")
        # A page opened after new runs were saved gets them before its first click.
        watched = [seen, zipped, model, eval_model, other, base]
        refreshed = [progress, loss_plot, f1_plot, log, result_table, zip_file, failure,
                     model, eval_model, other, base, seen, zipped]
        demo.load(poll, watched, refreshed, api_visibility="private")
        start.click(start_fine_tune, [name, *settings], command, api_name="fine_tune",
                    concurrency_limit=1)
        stop.click(stop_fine_tune, None, None, api_name="stop_fine_tune")
        timer.tick(poll, watched, refreshed, api_visibility="private", show_progress="hidden",
                   concurrency_limit=None)

        evaluate_button.click(run_evaluation, [eval_model, eval_source, eval_file, mode],
                              [overall, per_entity, chart, evaluated, errors, entity_type],
                              api_name="evaluate", concurrency_limit=1)
        compare_button.click(compare, [eval_model, other, eval_source, eval_file, mode], comparison,
                             api_name="compare", concurrency_limit=1)
        for widget in (kind, entity_type, query):
            widget.change(ev.error_browser, [evaluated, kind, entity_type, query], errors,
                          api_visibility="private", show_progress="hidden")
    return demo


def warm_up() -> None:
    """Load the first model before serving, so the first visitor does not wait for it."""
    choices = model_choices()
    if choices:
        from studio.models import recognizer

        recognizer(choices[0]).recognize("Warm up.")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ft.runs.remove_stale_staging()  # what a fine-tune killed with the last server left half-written
    warm_up()
    build_demo().queue(default_concurrency_limit=2).launch(max_file_size=MAX_UPLOAD, css=CSS)
