"""The Highlight tab: entities of pasted text, filtered by score, as highlights, a table and files."""

from __future__ import annotations

import csv
import io
import json

import gradio as gr
import pandas as pd

from ner_core import tenancy

from . import access, models
from .downloads import saved_by_content
from .errors import shown_to_user
from .models import MAX_CHARS, recognize
from .views import COLORS, color_map, highlighted, minimum_score

TABLE_COLUMNS = ["text", "type", "score", "start", "end"]
DOWNLOADS = "entities"  # their kind among a visitor's temporary files

EXAMPLES = [
    "Angela Merkel met Siemens chief executive Roland Busch in Paris on Tuesday, a spokesman for "
    "the German government said.",
    "Marie Curie was born in Warsaw in 1867. She moved to Paris, studied at the Sorbonne and "
    "shared the 1903 Nobel Prize in Physics with Pierre Curie and Henri Becquerel.",
    "Toyota said on Friday it would build a new battery plant in North Carolina.\n\n"
    "The Japanese carmaker, which competes with Volkswagen and General Motors, expects the "
    "factory near Greensboro to employ 1,750 people. Chief executive Koji Sato told reporters in "
    "Tokyo that the United States remained its most important market.\n\n"
    "Shares of Toyota rose 2 percent in Tokyo, while analysts at Nomura and Goldman Sachs said "
    "the plan matched their forecasts.",
]


def visible(entities: list[dict], threshold: float) -> list[dict]:
    return [e for e in entities if e["score"] >= threshold]


def table(entities: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([[e["text"], e["label"], e["score"], e["start"], e["end"]] for e in entities],
                        columns=TABLE_COLUMNS)


def downloads(entities: list[dict], owner: str | None = None) -> list[str]:
    """The entities as ``entities.json`` and ``entities.csv`` in ``owner``'s temporary folder,
    kept once per distinct result: repeated requests and slider moves back and forth give the
    same files."""
    as_json = json.dumps(entities, ensure_ascii=False, indent=2).encode("utf-8")
    rows = io.StringIO(newline="")
    writer = csv.DictWriter(rows, fieldnames=["text", "label", "score", "start", "end"])
    writer.writeheader()
    writer.writerows({k: e[k] for k in writer.fieldnames} for e in entities)
    as_csv = rows.getvalue().encode("utf-8")
    tenancy.check_room(len(as_json) + len(as_csv), "the downloads of these entities")

    def write(folder):
        (folder / "entities.json").write_bytes(as_json)
        (folder / "entities.csv").write_bytes(as_csv)

    folder = saved_by_content(DOWNLOADS, write, owner=owner)
    return [str(folder / "entities.json"), str(folder / "entities.csv")]


@shown_to_user
def highlight(text: str, model: str, hub_id: str, threshold: float, int8: bool = False,
              profile: gr.OAuthProfile | None = None, request: gr.Request = None):
    threshold = minimum_score(threshold)
    if not (text or "").strip():
        return (None, table([]), None, "Paste or type some text, or pick an example below.",
                {"text": "", "entities": []})
    who = access.visitor(profile, request)
    with tenancy.HEAVY.hold(who.identity, "highlight"):
        entities, timing = recognize(text, model, hub_id, bool(int8), who=who)
    return (*_views(text, entities, threshold, who.identity), timing,
            {"text": text, "entities": entities})


def _views(text: str, entities: list[dict], threshold: float, owner: str | None):
    shown = visible(entities, threshold)
    types = sorted({e["label"] for e in entities})
    return (gr.HighlightedText(value=highlighted(text, shown), color_map=color_map(types)),
            table(shown), downloads(shown, owner))


@shown_to_user
def filter_by_score(found: dict, threshold: float, profile: gr.OAuthProfile | None = None,
                    request: gr.Request = None):
    threshold = minimum_score(threshold)
    if not isinstance(found, dict) or not found.get("text"):
        return gr.skip(), gr.skip(), gr.skip()
    return _views(found["text"], found["entities"], threshold,
                  access.visitor(profile, request).identity)


def build(page) -> None:
    """The tab's components and events (inside ``gr.Tab("Highlight")``)."""
    choices = models.model_choices()
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=8, elem_id="text",
                              placeholder=f"Paste English text here (up to {MAX_CHARS:,} "
                                          "characters)")
            gr.Examples(EXAMPLES, inputs=text, label="Examples")
        with gr.Column(scale=1, min_width=240):
            # Pickers accept any value: runs appear while the server runs, and
            # studio.models.pick checks every name against the current list.
            model = gr.Dropdown(choices, value=choices[0] if choices else None, label="Model",
                                elem_id="model", allow_custom_value=True)
            hub_id = gr.Textbox(label="…or a Hugging Face Hub model id", placeholder="owner/name")
            threshold = gr.Slider(0, 1, value=0, step=0.01, label="Minimum score")
            int8 = gr.Checkbox(False, label="Fast int8 mode (CPU)", elem_id="int8",
                               info="quantized weights: several times faster; scores differ "
                                    "slightly from the full model")
            find = gr.Button("Find entities", variant="primary", elem_id="find")
    timing = gr.Markdown()
    shown = gr.HighlightedText(label="Entities", show_legend=True, color_map=COLORS,
                               elem_id="highlighted")
    entities = gr.Dataframe(table([]), label="Entity table", interactive=False, elem_id="entities")
    files = gr.File(label="Download (JSON, CSV)", file_count="multiple", interactive=False)
    found = gr.State({"text": "", "entities": []}, time_to_live=models.STATE_SECONDS)
    page.model_pickers.append(model)

    inputs, outputs = [text, model, hub_id, threshold, int8], [shown, entities, files, timing, found]
    find.click(highlight, inputs, outputs, api_name="highlight", **models.model_work())
    text.submit(highlight, inputs, outputs, api_visibility="undocumented", **models.model_work())
    threshold.change(filter_by_score, [found, threshold], [shown, entities, files],
                     api_visibility="undocumented", show_progress="hidden")
