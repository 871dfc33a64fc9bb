"""The Highlight tab: entities of pasted text, filtered by score, as highlights, a table and files."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from . import models
from .errors import shown_to_user

MAX_CHARS = 100_000
TABLE_COLUMNS = ["text", "type", "score", "start", "end"]
# One stable colour per type; types beyond CoNLL's four take the next palette colour by name.
COLORS = {"PER": "#f59e0b", "ORG": "#3b82f6", "LOC": "#10b981", "MISC": "#a855f7"}
PALETTE = ["#ef4444", "#14b8a6", "#eab308", "#ec4899", "#6366f1", "#84cc16", "#f97316", "#06b6d4"]

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


def color_map(types: list[str]) -> dict[str, str]:
    others = sorted(t for t in types if t not in COLORS)
    return {**COLORS, **{t: PALETTE[i % len(PALETTE)] for i, t in enumerate(others)}}


def recognize(text: str, choice: str | None, hub_id: str | None,
              int8: bool = False) -> tuple[list[dict], str]:
    """All entities of ``text`` (no threshold) and a line saying what it took."""
    if len(text) > MAX_CHARS:
        raise ValueError(f"expected at most {MAX_CHARS:,} characters, found {len(text):,}; "
                         "paste a shorter text or use `python -m ner_core predict --input FILE`")
    _check_unicode(text)
    name = models.pick(choice, hub_id)
    recognizer = models.recognizer(name, int8)
    started = time.perf_counter()
    entities = recognizer.recognize(text)
    milliseconds = (time.perf_counter() - started) * 1000
    mode = " (int8)" if int8 else ""
    return entities, f"{len(entities)} entities in {milliseconds:,.0f} ms with `{name}`{mode}"


def _check_unicode(text: str) -> None:
    """A lone surrogate (only an API call can send one) cannot be tokenized or saved as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"expected Unicode text, found the lone surrogate "
                         f"U+{ord(text[error.start]):04X} at character {error.start + 1:,}") from None


def visible(entities: list[dict], threshold: float) -> list[dict]:
    return [e for e in entities if e["score"] >= threshold]


def highlighted(text: str, entities: list[dict]) -> dict:
    return {"text": text, "entities": [{"entity": e["label"], "start": e["start"], "end": e["end"]}
                                       for e in entities]}


def table(entities: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([[e["text"], e["label"], e["score"], e["start"], e["end"]] for e in entities],
                        columns=TABLE_COLUMNS)


DOWNLOADS = Path(tempfile.gettempdir()) / "ner-studio-entities"


def downloads(entities: list[dict]) -> list[str]:
    """The entities as ``entities.json`` and ``entities.csv``, written once per distinct result.

    Files are named by their content's hash, so repeated requests and slider moves back and
    forth reuse them instead of writing a new directory each time.
    """
    content = json.dumps(entities, ensure_ascii=False, indent=2)
    directory = DOWNLOADS / hashlib.sha256(content.encode()).hexdigest()[:32]
    if (directory / "entities.csv").is_file():
        return [str(directory / "entities.json"), str(directory / "entities.csv")]
    staging = Path(tempfile.mkdtemp(prefix=".entities-", dir=_downloads_dir()))
    (staging / "entities.json").write_text(content, encoding="utf-8")
    with open(staging / "entities.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label", "score", "start", "end"])
        writer.writeheader()
        writer.writerows({k: e[k] for k in writer.fieldnames} for e in entities)
    try:
        staging.rename(directory)  # complete files appear at once; a concurrent twin may win
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return [str(directory / "entities.json"), str(directory / "entities.csv")]


def _downloads_dir() -> Path:
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    return DOWNLOADS


@shown_to_user
def highlight(text: str, model: str, hub_id: str, threshold: float, int8: bool = False):
    if not (text or "").strip():
        return (None, table([]), None, "Paste or type some text, or pick an example below.",
                {"text": "", "entities": []})
    entities, timing = recognize(text, model, hub_id, bool(int8))
    return (*_views(text, entities, threshold), timing, {"text": text, "entities": entities})


def _views(text: str, entities: list[dict], threshold: float):
    shown = visible(entities, threshold)
    types = sorted({e["label"] for e in entities})
    return (gr.HighlightedText(value=highlighted(text, shown), color_map=color_map(types)),
            table(shown), downloads(shown))


@shown_to_user
def filter_by_score(found: dict, threshold: float):
    if not found or not found["text"]:
        return gr.skip(), gr.skip(), gr.skip()
    return _views(found["text"], found["entities"], threshold)


def build(page) -> None:
    """The tab's components and events (inside ``gr.Tab("Highlight")``)."""
    choices = models.model_choices()
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=8, placeholder="Paste English text here",
                              elem_id="text")
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
    shown = gr.HighlightedText(label="Entities", show_legend=True, color_map=color_map([]),
                               elem_id="highlighted")
    entities = gr.Dataframe(table([]), label="Entity table", interactive=False, elem_id="entities")
    files = gr.File(label="Download (JSON, CSV)", file_count="multiple", interactive=False)
    found = gr.State({"text": "", "entities": []})
    page.model_pickers.append(model)

    inputs, outputs = [text, model, hub_id, threshold, int8], [shown, entities, files, timing, found]
    find.click(highlight, inputs, outputs, api_name="highlight")
    text.submit(highlight, inputs, outputs, api_visibility="undocumented")
    threshold.change(filter_by_score, [found, threshold], [shown, entities, files],
                     api_visibility="undocumented", show_progress="hidden")
