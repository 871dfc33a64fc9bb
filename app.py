"""NER studio: highlight entities, fine-tune a recognizer and judge it, in the browser.

A thin Gradio shell over ``ner_core``: each tab is a module under ``studio/`` that lays out its
components and wires its events; ``build_demo()`` puts them on one page. ``python app.py`` serves
it (on 127.0.0.1:7860 unless Gradio's own environment variables say otherwise).
"""

from __future__ import annotations

import logging

import gradio as gr
from gradio.utils import get_space
from starlette.middleware import Middleware

from ner_core import tenancy
from studio import access, annotate, evaluate, files, finetune, highlight, housekeeping
from studio.models import model_choices, recognizer
from studio.page import Page

MAX_UPLOAD = "20mb"
# Events waiting at once, every visitor's together (NER_QUEUE_SIZE). Set here because, on ZeroGPU,
# Gradio caps a queue given no size at one waiting event: every other visitor's request then
# fails with "Queue is full".
QUEUE_SIZE = 64
# Browser sessions whose state is kept at once (NER_SESSIONS); past it the oldest are dropped.
SESSIONS = 1_000
TABS = {"Highlight": highlight, "Files": files, "Fine-tune": finetune, "Annotate": annotate,
        "Evaluate": evaluate}
CSS = """
.errors td, .errors th { padding: 4px 8px; vertical-align: top; border-bottom: 1px solid #8883; }
.errors mark { border-radius: 4px; padding: 0 2px; }
"""


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="NER studio", delete_cache=housekeeping.delete_cache()) as demo:
        page = Page(demo, gr.Timer(1.0))
        with gr.Row():
            gr.Markdown("# NER studio\nFind people, organisations, places and other names in "
                        "text; fine-tune a recognizer; see where it goes wrong.")
            if get_space():  # Sign-in exists on a Space only; a local user is never asked
                gr.LoginButton(scale=0, min_width=200)
        for title, tab in TABS.items():
            with gr.Tab(title):
                tab.build(page)
        page.finish()
    return demo


def warm_up() -> None:
    """Load the first model before serving, so the first visitor does not wait for it."""
    choices = model_choices()
    if choices:
        recognizer(choices[0]).recognize("Warm up.")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    housekeeping.start_up()
    warm_up()
    queued = access.int_setting("NER_QUEUE_SIZE", QUEUE_SIZE)
    server = {"lifespan": housekeeping.lifespan,
              "middleware": [Middleware(housekeeping.UploadBudget)]}
    build_demo().queue(default_concurrency_limit=2, max_size=queued).launch(
        max_file_size=MAX_UPLOAD, css=CSS, app_kwargs=server,
        allowed_paths=[str(tenancy.temp_root())],  # NER_TEMP_DIR may lie outside the temp dir
        state_session_capacity=access.int_setting("NER_SESSIONS", SESSIONS))
