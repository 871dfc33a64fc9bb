"""The Annotate tab's datasets going out: whose a request's datasets are, downloads of a dataset
in every format of ``ner_core.formats``, and a dataset pushed to the Hugging Face Hub.

Downloads lie among the visitor's own temporary files, each set in a folder named by its content
(``downloads``), so a repeated export neither copies nor moves it.
"""

from __future__ import annotations

import gradio as gr

from ner_core import dataset_export, dataset_paths, hub, tenancy
from ner_core.errors import UserError

from . import access, pushing
from .downloads import saved_by_content
from .errors import shown_to_user
from .labelled import download_ending, format_choices

EXPORTS = "exports"  # a visitor's exports, in their temporary folder


def owner(who: access.Visitor) -> str | None:
    """Whose datasets and queues ``who``'s requests use; on a public host a request must say
    who sent it (a browser session, at least), or it would reach the host's own."""
    if who.identity is None and tenancy.is_public():
        raise UserError("expected a browser session or a signed-in account to keep your "
                        "datasets apart from others' on this server, found neither")
    return who.identity


def download(name: str, suffix: str, export, who: access.Visitor) -> str:
    """The dataset exported by ``export(name, path, owner=...)`` into a file named after it, in a
    folder named by its content among the visitor's temporary files."""
    mine = owner(who)
    path = dataset_paths.dataset_path(name, owner=mine)
    tenancy.check_room(path.stat().st_size if path.is_file() else 0, "this export")
    file = f"{name.rpartition('/')[2]}{suffix}"
    folder = saved_by_content(tenancy.tenant_temp(mine, EXPORTS),
                              lambda folder: export(name, folder / file, owner=mine))
    return str(folder / file)


@shown_to_user
def export_dataset(dataset: str, profile: gr.OAuthProfile | None = None,
                   request: gr.Request = None) -> str:
    """The dataset as a CoNLL file (IOB2, ``-DOCSTART-`` between texts)."""
    return download(dataset, ".conll", dataset_export.export_conll,
                    access.visitor(profile, request))


@shown_to_user
def export_jsonl(dataset: str, profile: gr.OAuthProfile | None = None,
                 request: gr.Request = None) -> str:
    return download(dataset, ".jsonl", dataset_export.export_jsonl,
                    access.visitor(profile, request))


@shown_to_user
def export_as(dataset: str, format: str, profile: gr.OAuthProfile | None = None,
              request: gr.Request = None) -> str:
    """The dataset as one file in ``format`` (a name of ``ner_core.formats.FORMATS``; BRAT as a
    ``.zip``), named ``<dataset>-<format><ending>``."""
    ending = download_ending(format)  # refuses a name that is not a format's

    def export(name, path, *, owner):
        return dataset_export.export(name, path, format, owner=owner)

    return download(dataset, f"-{format}{ending}", export,
                    access.visitor(profile, request))


@shown_to_user
def push_dataset(dataset: str, repo: str, private: bool, profile: gr.OAuthProfile | None = None,
                 token: gr.OAuthToken | None = None, request: gr.Request = None) -> str:
    """Push a dataset of the visitor's to the Hub as a Hugging Face dataset, private unless
    unticked: the signed-in visitor's namespace on a Space, else the ``owner/name`` typed, with
    ``HF_TOKEN`` (the rules of a run's push)."""
    mine = owner(access.visitor(profile, request))
    dataset_paths.dataset_path(dataset, owner=mine)  # refuses a name they may not use
    repo_id, secret = pushing.destination(repo, dataset.rpartition("/")[2], "a dataset",
                                          profile, token)
    url = hub.push_dataset(dataset, repo_id, owner=mine, token=secret, private=bool(private))
    return pushing.pushed(dataset, repo_id, url, bool(private))


def build_exports(dataset: gr.Dropdown) -> None:
    """The Annotate tab's exports of the chosen ``dataset`` (CoNLL, JSONL, any format) and its
    push to the Hub: components and events."""
    with gr.Row():
        conll_button = gr.Button("Export CoNLL", elem_id="export-conll")
        jsonl_button = gr.Button("Export JSONL", elem_id="export-jsonl")
    with gr.Row():
        export_format = gr.Dropdown(format_choices(), value="conll", label="Export format",
                                    elem_id="export-format")
        format_button = gr.Button("Export", elem_id="export-as")
    download = gr.File(label="Download", interactive=False, elem_id="annotate-export")
    with gr.Accordion("Push the dataset to the Hugging Face Hub", open=False):
        with gr.Row():
            repo = gr.Textbox(label="Hub dataset repository", elem_id="push-dataset-repo",
                              placeholder="name (your account on a Space) or owner/name")
            private = gr.Checkbox(True, label="Private", elem_id="push-dataset-private")
        push_button = gr.Button("Push to the Hub", elem_id="push-dataset")
        pushed = gr.Markdown(elem_id="push-dataset-note")
    conll_button.click(export_dataset, dataset, download, api_name="export_dataset")
    jsonl_button.click(export_jsonl, dataset, download, api_name="export_jsonl")
    format_button.click(export_as, [dataset, export_format], download, api_name="export_as")
    push_button.click(push_dataset, [dataset, repo, private], pushed, api_name="push_dataset")
