"""The Annotate tab: the model suggests entities, a person corrects them, accepted corrections
become a named dataset to fine-tune on.

Corrections are made in Gradio's interactive ``HighlightedText``: selecting words inside one
unmarked stretch marks them with the type ``label`` (the frontend's placeholder); clicking a mark
opens a box to type its type; × removes it. Every change comes back as ``(piece, type)`` tokens,
read here as character offsets (the pieces add up to the text) and snapped to whole words by
``ner_core.annotations``.

Every dataset handler acts on the visitor's own datasets (``annotations``' ``owner``): on a public
host a visitor lists, reads, exports, adds to and undoes in only theirs. A queued file's texts are
kept on disk by id (``annotate_queue``); the page's state holds the id and how far the visitor
got.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from ner_core import annotations, dataset_paths, tenancy
from ner_core.errors import UserError
from ner_core.records import TEXT_FIELD

from . import access, models, training
from .annotate_datasets import EXPORTS as EXPORTS  # where callers of the tab look for them
from .annotate_datasets import build_exports
from .annotate_datasets import export_dataset as export_dataset
from .annotate_datasets import export_jsonl as export_jsonl
from .annotate_datasets import owner as _owner
from .annotate_queue import (
    drop_queue,
    import_choices,
    imported,
    is_labelled,
    queued,
    ranked,
    read_texts,
    recognized,
    stored_queue,
)
from .annotate_queue import text_fields as text_fields
from .errors import shown_to_user
from .labelled import FOUND_FROM_FILE, upload_endings
from .models import recognize
from .views import color_map, entities_of, pairs, tokens

DEFAULT_DATASET = "corrections"
NEW_SPAN = "label"  # what the frontend calls a span selected but not yet given a type
ENTITY_COLUMNS = ["type", "text", "start", "end"]
COUNT_COLUMNS = ["type", "entities"]
EMPTY = {"text": "", "entities": [], "model": None, "line": None, "least": None, "where": None,
         "pending": False}
HOW_TO = ("Select words to mark them (a new mark reads 'label'). Click a mark to give it a type "
          "(PER, ORG, LOC, MISC or a new one) and press Enter; × removes it. Marks are widened to "
          "whole words.")
QUEUE_ORDER = ("A file's texts come least sure first: ranked by the lowest score among the "
               "model's entities in each text (1.0 when it finds none, so texts without entities "
               "come last); ties keep the file's order.")
IMPORT_ORDER = ("An imported file's texts come in the file's order, each with the file's own "
                "entities to correct; no model is run.")
TEXT_FILES = [".txt", ".jsonl", ".csv", ".tsv"]
SUGGESTING, QUEUEING = "suggestion", "file queue"  # heavy calls, as a refusal names them


def _view(current: dict):
    """The highlight and the entity table of ``current``."""
    entities = current["entities"]
    types = sorted({e["label"] for e in entities})
    shown = gr.HighlightedText(value=tokens(current["text"], entities) if current["text"] else None,
                               color_map=color_map(types))
    table = pd.DataFrame([[e["label"], e["text"], e["start"], e["end"]] for e in entities],
                         columns=ENTITY_COLUMNS)
    return shown, table


def suggested(item: dict) -> dict:
    """What is being corrected: a text, its entities, the model that suggested them and, for a
    file's text, its line and lowest score."""
    snapped, _ = annotations.snap(item["text"], [{k: e[k] for k in ("start", "end", "label")}
                                                 for e in item["entities"]])
    return {**EMPTY, **{k: item.get(k) for k in ("text", "model", "line", "least", "where")},
            "entities": snapped}


def _entities(text: str, model: str | None, who: access.Visitor) -> list[dict]:
    if not (text or "").strip():
        raise UserError("expected a text to suggest entities for, found an empty text")
    return recognize(text, model, None, who=who, default_when_omitted=True)[0]


@shown_to_user
def suggest(text: str, model: str | None = None, profile: gr.OAuthProfile | None = None,
            request: gr.Request = None) -> list[dict]:
    """The entities ``model`` finds in ``text``, to be corrected and accepted; without a model,
    those of the bundled ``default``."""
    who = access.visitor(profile, request)
    with tenancy.HEAVY.hold(who.identity, SUGGESTING):
        return _entities(text, model, who)


@shown_to_user
def suggest_text(text: str, model: str, queue: dict | None = None,
                 profile: gr.OAuthProfile | None = None, request: gr.Request = None):
    """A pasted text's suggestions, to correct; a file's queue is let go."""
    who = access.visitor(profile, request)
    with tenancy.HEAVY.hold(who.identity, SUGGESTING):
        entities = _entities(text, model, who)
    name = models.pick(model, None, who=who, default_when_omitted=True)
    current = suggested({"text": text, "model": name, "entities": entities})
    drop_queue(queue)
    return (current, None, *_view(current), f"{len(entities)} entities suggested by `{name}`.",
            "Pasted text.")


@shown_to_user
def queue_file(path: str | None, text_field: str, model: str, queue: dict | None = None,
               file_format: str | None = FOUND_FROM_FILE, progress=gr.Progress(),
               profile: gr.OAuthProfile | None = None, request: gr.Request = None):
    """Queue a file: a labelled file's texts with its own entities, in its order (``file_format``
    names its format, else the file says), or a file of plain texts with the model's entities,
    least sure first. The queue's views, then the import's report (none for plain texts)."""
    who = access.visitor(profile, request)
    owner = _owner(who)
    if not path:
        raise UserError("upload a file of texts (.txt, .jsonl, .csv or .tsv) or a labelled file "
                        "first")
    name = Path(path).name
    with tenancy.HEAVY.hold(who.identity, QUEUEING):
        if is_labelled(path, file_format):
            items, left_out, report = imported(path, file_format)
            said = f"Imported {len(items)} texts of `{name}` with their entities"
        else:
            texts, left_out = read_texts(path, text_field)
            chosen = models.pick(model, None, who=who)
            found = recognized(models.recognizer(chosen), [text for _, text in texts], progress)
            items = [{**item, "model": chosen} for item in ranked(texts, found)]
            said, report = f"Queued {len(texts)} texts of `{name}`", ""
    drop_queue(queue)
    stored = stored_queue(owner, items)
    return (*_next(stored, said + (f" ({left_out})" if left_out else "") + "."), report)


def _next(queue: dict | None, said: str = ""):
    """Show the next queued text (or nothing): current, queue, text box, highlight, table, notes,
    queue line."""
    items = queued(queue)
    if len(items) <= 1:
        drop_queue(queue)
    if not items:
        current = dict(EMPTY)
        return (current, None, "", *_view(current), said, "The queue is empty.")
    item, rest = items[0], len(items) - 1
    current = suggested(item)
    order = IMPORT_ORDER if item.get("where") else QUEUE_ORDER
    if item.get("where"):
        where = f"{item['where']}, with the file's entities"
    elif item.get("line"):
        where = f"Line {item['line']} (lowest score {item['least']:.2f})"
    else:
        where = "This text"
    return (current, {**queue, "at": queue["at"] + 1} if rest else None, item["text"],
            *_view(current), said, f"{where}; {rest} more in the queue. {order}")


@shown_to_user
def edited(current: dict, value: list | None):
    """A correction made in the highlight: the entities read back, snapped, and shown again when
    snapping changed them."""
    text = current["text"]
    given = pairs(value or [])
    entities = entities_of(given, text) if text else None
    if entities is None:  # an event about a text no longer shown
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    if any(e["label"] == NEW_SPAN for e in entities):
        # Leave the highlight as the visitor left it: a new value would move the marks under them.
        return ({**current, "pending": True}, gr.skip(), gr.skip(),
                f"Click the mark that reads {NEW_SPAN!r}, type its type and press Enter.")
    try:
        snapped, notes = annotations.snap(text, entities)
    except UserError as error:
        return ({**current, "pending": False}, *_view(current), f"Not taken: {error}.")
    # Without a change to tell, the note stays ("suggested by ..."), unless it asked for a type.
    said = "; ".join(notes) + "." if notes else "" if current.get("pending") else gr.skip()
    current = {**current, "entities": snapped, "pending": False}
    shown, table = _view(current)
    if given == tokens(text, snapped):
        shown = gr.skip()  # already shown as it is: sending it again would echo back here
    return current, shown, table, said


# Datasets are what fine-tunes train on: on a Space, who may add to them is who may fine-tune.
ADDING = "add examples to a dataset"


@shown_to_user
def accept(dataset: str, text: str, entities: list[dict], profile: gr.OAuthProfile | None = None,
           request: gr.Request = None) -> dict[str, int]:
    """Add ``text`` with ``entities`` (``[{"start", "end", "label"}]``) to the dataset; the
    dataset's entity counts per type."""
    who = access.visitor(profile, request)
    access.check_may_start(who, ADDING)
    return annotations.append(dataset, text, entities, owner=_owner(who))


@shown_to_user
def accept_current(dataset: str, text: str, current: dict, queue: dict | None,
                   profile: gr.OAuthProfile | None = None, request: gr.Request = None):
    who = access.visitor(profile, request)
    access.check_may_start(who, ADDING)
    owner = _owner(who)
    if not current["text"]:
        raise UserError("nothing to accept: suggest entities for a text first")
    if text != current["text"]:
        raise UserError("the text was changed after its entities were suggested: press "
                        "Suggest entities again, or put the text back")
    if current["pending"]:
        raise UserError(f"give the selected span a type first (it still reads {NEW_SPAN!r})")
    annotations.append(dataset, current["text"], current["entities"], current["model"],
                       owner=owner)
    last = {**current, "dataset": dataset}
    return (last, *_next(queue, f"Accepted into `{dataset}`."), *dataset_view(dataset, owner))


@shown_to_user
def skip_current(queue: dict | None):
    return _next(queue, "Skipped.")


@shown_to_user
def undo(last: dict | None, current: dict, queue: dict | None,
         profile: gr.OAuthProfile | None = None, request: gr.Request = None):
    """Take the last accept out of its dataset and show it again; what was shown goes back to
    the front of the queue."""
    owner = _owner(access.visitor(profile, request))
    if not last or not annotations.remove_last(last["dataset"], last["text"], owner=owner):
        raise UserError("nothing to undo: the dataset's last example is not your last accept")
    items = [last, *([current] if current["text"] else []), *queued(queue)]
    drop_queue(queue)
    return (None, *_next(stored_queue(owner, items),
                         f"Took the last accept out of `{last['dataset']}`."),
            *dataset_view(last["dataset"], owner))


def dataset_view(name: str, owner: str | None):
    """The dataset picker's choices (``owner``'s datasets), its counts per type and a line about
    it (a name, never where it is kept)."""
    accepted, tally = annotations.tally(name, owner=owner)
    table = pd.DataFrame(list(tally.items()), columns=COUNT_COLUMNS)
    names = sorted({*dataset_paths.dataset_names(owner=owner), name})
    said = f"`{name}`: {accepted} accepted texts, {sum(tally.values())} entities"
    return gr.Dropdown(choices=names, value=name), table, said


@shown_to_user
def show_dataset(name: str, profile: gr.OAuthProfile | None = None, request: gr.Request = None):
    owner = _owner(access.visitor(profile, request))
    dataset_paths.dataset_path(name, owner=owner)  # refuses a name the visitor may not use
    return dataset_view(name, owner)


@shown_to_user
def fine_tune_on(dataset: str, current: dict, model: str, profile: gr.OAuthProfile | None = None,
                 request: gr.Request = None):
    """The Fine-tune tab set to train the corrected model on this dataset, with replay: the form
    holds what that run would use (``training.fill_for_dataset``)."""
    who = access.visitor(profile, request)
    dataset_paths.dataset_path(dataset, owner=_owner(who))
    base = current["model"] or model
    return (*training.fill_for_dataset(dataset, base, who=who),
            f"The Fine-tune tab is set to train `{base}` on `{dataset}`: open it to start.")


def build(page) -> None:
    """The tab's components and events (inside ``gr.Tab("Annotate")``)."""
    choices = models.model_choices()
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=5, elem_id="annotate-text",
                              placeholder="Paste a text, or queue a file of texts")
            with gr.Row():
                upload = gr.File(label="…or a file: texts (.txt one per line, .jsonl, .csv, .tsv) "
                                       "for the model, or labelled (Label Studio, doccano, "
                                       "Prodigy, spaCy, BRAT .zip, studio JSONL, CoNLL) to "
                                       "correct", file_types=sorted({*TEXT_FILES,
                                                                     *upload_endings()}),
                                 type="filepath", height=110, elem_id="annotate-file")
                with gr.Column():
                    field = gr.Dropdown([TEXT_FIELD], value=TEXT_FIELD,
                                        label="Text field or column", allow_custom_value=True,
                                        elem_id="annotate-field")
                    file_format = gr.Dropdown(import_choices(), value=FOUND_FROM_FILE,
                                              label="The file is", elem_id="annotate-format")
            import_report = gr.Markdown(elem_id="annotate-import-report")
        with gr.Column(scale=1, min_width=240):
            model = gr.Dropdown(choices, value=choices[0] if choices else None, label="Model",
                                allow_custom_value=True, elem_id="annotate-model")
            # The visitor's own datasets come with the page's load: none are in its config.
            dataset = gr.Dropdown([DEFAULT_DATASET], value=DEFAULT_DATASET, label="Dataset",
                                  allow_custom_value=True, elem_id="annotate-dataset",
                                  info="accepted texts are added to it; a new name starts one")
            suggest_button = gr.Button("Suggest entities", variant="primary", elem_id="suggest")
            queue_button = gr.Button("Queue the file", elem_id="queue-file")
    queue_note = gr.Markdown(QUEUE_ORDER, elem_id="annotate-queue")
    shown = gr.HighlightedText(label="Entities: correct them here", interactive=True,
                               show_legend=False, color_map=color_map([]),
                               elem_id="annotate-highlight")
    gr.Markdown(HOW_TO)
    notes = gr.Markdown(elem_id="annotate-notes")
    with gr.Row():
        accept_button = gr.Button("Accept", variant="primary", elem_id="accept")
        skip_button = gr.Button("Skip", elem_id="skip")
        undo_button = gr.Button("Undo last accept", elem_id="undo")
    entities = gr.Dataframe(pd.DataFrame(columns=ENTITY_COLUMNS), label="Entities",
                            interactive=False, elem_id="annotate-entities")
    with gr.Row():
        with gr.Column():
            summary = gr.Markdown(elem_id="annotate-summary")
            counts = gr.Dataframe(pd.DataFrame(columns=COUNT_COLUMNS), label="Entities per type",
                                  interactive=False, elem_id="annotate-counts")
        with gr.Column():
            build_exports(dataset)
            train_button = gr.Button("Fine-tune on this dataset", elem_id="finetune-dataset")
    kept = {"time_to_live": models.STATE_SECONDS}
    current, last = gr.State(dict(EMPTY), **kept), gr.State(None, **kept)
    queue = gr.State(None, delete_callback=drop_queue, **kept)  # {"owner", "id", "at"}
    page.model_pickers.append(model)

    private = {"api_visibility": "private"}
    shown_next = [current, queue, text, shown, entities, notes, queue_note]
    with_dataset = [last, *shown_next, dataset, counts, summary]
    suggest_button.click(suggest_text, [text, model, queue],
                         [current, queue, shown, entities, notes, queue_note],
                         **models.model_work(), **private)
    queue_button.click(queue_file, [upload, field, model, queue, file_format],
                       [*shown_next, import_report], **models.model_work(), **private)
    upload.change(text_fields, upload, field, show_progress="hidden", **private)
    shown.change(edited, [current, shown], [current, shown, entities, notes],
                 show_progress="hidden", **private)
    accept_button.click(accept_current, [dataset, text, current, queue], with_dataset, **private)
    skip_button.click(skip_current, queue, shown_next, **private)
    undo_button.click(undo, [last, current, queue], with_dataset, **private)
    dataset.change(show_dataset, dataset, [dataset, counts, summary], show_progress="hidden",
                   **private)
    page.demo.load(show_dataset, dataset, [dataset, counts, summary], **private)
    gr.api(suggest, api_name="suggest", **models.model_work())
    gr.api(accept, api_name="accept")

    def wire_fine_tune() -> None:  # once every tab exists: the Fine-tune form may come later
        if page.fine_tune is None:
            train_button.visible = False  # a page without the Fine-tune tab
            return
        train_button.click(fine_tune_on, [dataset, current, model],
                           [*page.fine_tune.settings, notes], **private)

    page.when_built(wire_fine_tune)
