"""The Fine-tune tab: settings, data, start and stop, the shared job's progress, and the runs a
visitor owns (delete, push to the Hub).

On CPU and dedicated-GPU hosts a fine-tune is a background job that outlives the page. On a ZeroGPU
Space it runs inside the Start request, which streams it (see ``zerogpu``).
"""

from __future__ import annotations

from dataclasses import fields

import gradio as gr
import pandas as pd

from ner_core import TrainConfig, hub, models, preset, runs
from ner_core.jobs import JobSnapshot
from ner_core.training import device_description

from . import access, zerogpu
from . import training as tr
from .data import CONLL_SENTENCES, TrainingData
from .data import describe_upload as _describe_upload
from .errors import shown_to_user
from .evaluate import per_entity_table
from .page import Page
from .training import FORM, JOBS

FIELDS = {f.name: f for f in fields(TrainConfig)}
SLIDERS = {"warmup_ratio": (0, 0.5, 0.01), "max_length": (16, 512, 8)}
PRESET_BUTTONS = {"recipe": "Recipe settings", "short": "Short run (about a minute on 2 CPU cores)",
                  "bundled": "Bundled settings (the default model's)"}


def _widget(name: str, default) -> gr.components.Component:
    """The form's widget for hyperparameter ``name``, from its type and help in ``TrainConfig``."""
    info = FIELDS[name].metadata["help"]
    if FIELDS[name].type in ("bool", bool):
        return gr.Checkbox(default, label=FORM[name], info=info, elem_id=name.replace("_", "-"))
    if name in SLIDERS:
        low, high, step = SLIDERS[name]
        return gr.Slider(low, high, value=default, step=step, label=FORM[name], info=info)
    # Whole-number boxes without precision=0: Gradio would round 2.5 to 2 and fail on text from an
    # API call; make_config refuses both, quoting the value.
    return gr.Number(default, label=FORM[name], info=info, elem_id=name.replace("_", "-"))


@shown_to_user
def list_datasets(chosen: str | None):
    from ner_core import annotations

    names = annotations.dataset_names()
    return gr.Dropdown(choices=names, value=chosen if chosen in names else None)


@shown_to_user
def continue_from(base: str) -> list:
    """The form for continuing to train ``base`` when it is a trained model; unchanged otherwise."""
    if base not in tr.base_choices()[0]:
        return [gr.skip()] * len(FORM)
    config = tr.continued_config(base)
    return [gr.skip()] * len(FORM) if config is None else tr.preset_values(config)


def apply_preset(name: str) -> list:
    config = preset(name)
    base = config.base_model if config.base_model in tr.base_choices()[0] else gr.skip()
    return [base, *tr.preset_values(config)]


@shown_to_user
def describe_upload(path: str | None) -> str:
    return _describe_upload(path)


def _config(base: str, base_hub: str, hyperparameters: dict) -> TrainConfig:
    unknown = sorted(set(hyperparameters) - set(FORM))
    if unknown:
        raise ValueError(f"expected hyperparameters among {', '.join(FORM)}, found {', '.join(unknown)}")
    config = tr.make_config(base, base_hub, hyperparameters)
    access.check_epochs(config.epochs)
    return config


def _trains_on_gpu() -> bool:
    if zerogpu.ON_ZERO_GPU:
        return True  # asked without torch: the server's process never touches CUDA there
    import torch

    return torch.cuda.is_available()


@shown_to_user
def plan(base, base_hub, source, train_file, validation_file, *, dataset=None, replay=False,
         **hyperparameters) -> str:
    try:
        config = _config(base, base_hub, hyperparameters)
    except ValueError as error:
        return f"Settings to fix: {error}"
    gpu = _trains_on_gpu()
    device = (f"ZeroGPU (a GPU is lent to each fine-tune, for at most {zerogpu.max_seconds():,} s)"
              if zerogpu.ON_ZERO_GPU else device_description(config))
    estimate = ""
    if source == "conll2003":
        estimate = (f"; estimated time on CoNLL-2003: "
                    f"{tr.in_words(tr.estimate_seconds(config, CONLL_SENTENCES, gpu))}")
    return f"Device: {device}{estimate}."


@shown_to_user
def start_fine_tune(name: str = "", base: str = models.ENCODER, base_hub: str = "",
                    source: str = "conll2003", train_file: str | None = None,
                    validation_file: str | None = None, profile: gr.OAuthProfile | None = None,
                    request: gr.Request = None, *, dataset: str | None = None,
                    replay: bool = False, **hyperparameters):
    """Check everything, then start the fine-tune; yields the command line that reproduces it.

    ``dataset`` names the accepted corrections to train on when ``source`` is ``dataset``;
    ``replay`` mixes CoNLL-2003 back in. Every refusal comes before any job or directory exists.
    """
    who = access.visitor(profile, request)
    access.check_may_start(who)
    config = _config(base, base_hub, hyperparameters)
    name = tr.run_name(name)
    data = TrainingData(source, train_file, validation_file, dataset, bool(replay))
    if not _trains_on_gpu():
        access.check_cpu_sentences(tr.trained_sentences(config, data.train_sentences, data.replay))
    seconds = (zerogpu.request_seconds(tr.estimate_seconds(config, data.train_sentences, True,
                                                           data.replay))
               if zerogpu.ON_ZERO_GPU else None)
    running = JOBS.snapshot()
    if running.active:
        raise ValueError(f"a fine-tune ({running.run_name}) is already running; wait for it to "
                         "finish or stop it first")
    keep = access.limit("NER_MAX_RUNS")
    if keep is not None:
        runs.prune_runs(keep - 1, protect=set())  # room for this one; no other job is running
    output_dir = runs.runs_dir() / name
    command = tr.reproduce_command(config, name, data)
    budget = access.limit("NER_FINETUNE_BUDGET_SECONDS")
    if seconds is not None:
        pace = (tr.estimate_seconds(config, data.train_sentences, False, data.replay)
                / tr.CPU_SECONDS_PER_SENTENCE)
        yield from zerogpu.run_in_request(JOBS, config, data, output_dir, who.identity, command,
                                          seconds, budget, pace)
        return
    JOBS.start(config, data.load, output_dir, owner=who.identity, budget_seconds=budget,
               options={"data_source": data.name})
    runs.set_owner(name, who.identity)
    yield command


@shown_to_user
def stop_fine_tune(profile: gr.OAuthProfile | None = None, request: gr.Request = None) -> None:
    snapshot = JOBS.snapshot()
    if not snapshot.active:
        gr.Info("No fine-tune is running.")
        return
    if not access.may_manage(access.visitor(profile, request), snapshot.owner):
        raise ValueError(f"only whoever started {snapshot.run_name} "
                         f"({access.owner_label(snapshot.owner)}) or the Space's owner can stop it")
    if not JOBS.stop(snapshot.run_name):
        gr.Info("No fine-tune is running.")


def poll(zipped: str | None):
    """The shared job's views; the zip and score table once per finished run."""
    snapshot = JOBS.snapshot()
    losses, scores = tr.curves(snapshot)
    table, download = gr.skip(), gr.skip()
    if snapshot.result is not None and snapshot.run_name != zipped \
            and runs.run_path(snapshot.run_name) is not None:
        table = _result_table(snapshot)
        download = tr.zip_run(snapshot.run_name)
        zipped = snapshot.run_name
    error = f"**Failed:** {snapshot.error}" if snapshot.state == "failed" else ""
    return (tr.progress_html(snapshot), losses, scores, "\n".join(snapshot.log), table, download,
            error, zipped)


def _result_table(snapshot: JobSnapshot) -> pd.DataFrame:
    metrics = snapshot.result.metrics
    if "validation" in metrics:
        table = per_entity_table(metrics["validation"])
        overall = metrics["validation"]["overall"]
        table.loc[len(table)] = ["overall", round(overall["precision"], 4),
                                 round(overall["recall"], 4), round(overall["f1"], 4),
                                 int(table["support"].sum())]
        return table
    why = ("it was stopped before the final scoring" if snapshot.result.stopped_early
           else "no validation data was given")
    return pd.DataFrame({"note": [f"Not scored: {why}. The weights are saved; score them in the "
                                  "Evaluate tab."]})


def _own_run(run: str | None, who: access.Visitor) -> str:
    """``run`` when it is a saved run that ``who`` may manage; ``ValueError`` otherwise."""
    if run == models.DEFAULT:
        raise ValueError("the bundled model 'default' is not a run; choose one of your runs")
    if not run or runs.run_path(run) is None:
        raise ValueError(f"expected the name of a saved run, found {run!r}")
    owner = runs.owner_of(run)
    if not access.may_manage(who, owner):
        raise ValueError(f"only whoever started {run} ({access.owner_label(owner)}) or the "
                         "Space's owner may change it")
    return run


@shown_to_user
def delete_run(run: str, profile: gr.OAuthProfile | None = None, request: gr.Request = None) -> str:
    run = _own_run(run, access.visitor(profile, request))
    running = JOBS.snapshot()
    if running.active and running.run_name == run:
        raise ValueError(f"{run} is being trained; stop it first")
    runs.delete_run(run)
    return f"Deleted `{run}`."


@shown_to_user
def push_run(run: str, repo: str, private: bool, profile: gr.OAuthProfile | None = None,
             token: gr.OAuthToken | None = None, request: gr.Request = None) -> str:
    """Push a finished run to the Hub: the signed-in visitor's namespace on a Space, else the
    ``owner/name`` typed, with ``HF_TOKEN``."""
    who = access.visitor(profile, request)
    run = _own_run(run, who)
    repo = (repo or "").strip()
    if access.on_space():
        if profile is None or token is None:
            raise ValueError("sign in with Hugging Face (the button at the top of the page) to push "
                             "a run to your account")
        name = repo.split("/")[-1] or run
        repo_id, secret = f"{profile.username}/{name}", token.token
    else:
        if "/" not in repo:
            raise ValueError(f"expected a Hub repository as owner/name, found {repo!r}")
        repo_id, secret = repo, None  # huggingface_hub reads HF_TOKEN itself
    url = hub.push_run(run, repo_id, token=secret, private=bool(private))
    return f"Pushed `{run}` to [{repo_id}]({url}) ({'private' if private else 'public'})."


def build(page: Page) -> None:
    """The tab's components and events (inside ``gr.Tab("Fine-tune")``)."""
    bases, base_first, base_note = tr.base_choices()
    recipe = preset("recipe")
    gr.Markdown(base_note)
    with gr.Row():
        base = gr.Dropdown(bases, value=base_first, label="Base model", elem_id="base",
                           allow_custom_value=True)
        base_hub = gr.Textbox(label="…or a Hub model id", placeholder="owner/name")
        name = gr.Textbox(label="Run name", placeholder="run-YYYYMMDD-HHMMSS", elem_id="run-name")
    with gr.Row():
        source = gr.Radio([("CoNLL-2003", "conll2003"), ("Upload CoNLL files", "upload"),
                           ("Annotated dataset", "dataset")], value="conll2003", label="Data")
        train_file = gr.File(label="Training file (CoNLL)", type="filepath", height=130,
                             elem_id="train-file")
        validation_file = gr.File(label="Validation file (optional)", type="filepath", height=130,
                                  elem_id="validation-file")
    with gr.Row():
        dataset = gr.Dropdown([], value=None, label="Annotated dataset",
                              info="accepted corrections from the Annotate tab",
                              allow_custom_value=True, elem_id="dataset")
        replay = gr.Checkbox(False, label="Replay CoNLL-2003", elem_id="replay",
                             info="mix the base's original kind of data back in (replay ratio "
                                  "below), so a trained model keeps what it knew")
    upload_note = gr.Markdown(elem_id="upload-note")
    with gr.Row():
        preset_buttons = {key: gr.Button(label, size="sm") for key, label in PRESET_BUTTONS.items()}
    hyperparameters = {}
    defaults = dict(zip(FORM, tr.preset_values(recipe)))
    with gr.Row():
        for field_name in FORM:
            hyperparameters[field_name] = _widget(field_name, defaults[field_name])
    plan_note = gr.Markdown()
    with gr.Row():
        start = gr.Button("Start fine-tune", variant="primary", elem_id="start")
        stop = gr.Button("Stop", variant="stop", elem_id="stop")
    progress = gr.HTML(tr.progress_html(JOBS.snapshot()), elem_id="progress")
    failure = gr.Markdown(elem_id="failure")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="loss", title="Training loss", height=240)
        f1_plot = gr.LinePlot(x="step", y="validation F1", title="Validation F1", height=240)
    log = gr.Textbox(label="Log", lines=6, max_lines=12, autoscroll=True, interactive=False,
                     elem_id="log")
    result_table = gr.Dataframe(per_entity_table({"per_entity": {}}), interactive=False,
                                label="Per-entity scores of the finished run", elem_id="result-table")
    zip_file = gr.File(label="Trained model (zip)", interactive=False)
    command = gr.Code(label="Reproduce from the command line", language="shell", elem_id="command")
    with gr.Accordion("Your runs: delete, or push to the Hugging Face Hub", open=False):
        with gr.Row():
            run = gr.Dropdown(runs.list_runs(), label="Run", elem_id="manage-run",
                              allow_custom_value=True)
            repo = gr.Textbox(label="Hub repository", elem_id="push-repo",
                              placeholder="name (your account on a Space) or owner/name")
            private = gr.Checkbox(True, label="Private")
        with gr.Row():
            push = gr.Button("Push to the Hub", elem_id="push")
            delete = gr.Button("Delete run", variant="stop", elem_id="delete")
        manage_note = gr.Markdown(elem_id="manage-note")
    zipped = gr.State(None)
    page.base_pickers.append(base)
    page.model_pickers.append(run)
    page.finetune = {"source": source, "dataset": dataset, "base": base, "replay": replay}
    choices = {**hyperparameters, "dataset": dataset, "replay": replay}

    settings = [base, base_hub, source, train_file, validation_file]
    form = [base, *hyperparameters.values()]
    # A trained base passes on how it reads text: the form takes its settings and the
    # continued-training preset (the user may still change them).
    base.input(continue_from, base, list(hyperparameters.values()), api_visibility="private")
    for key, button in preset_buttons.items():
        button.click(lambda key=key: apply_preset(key), None, form, api_visibility="private")
    for box in (train_file, validation_file):
        box.upload(describe_upload, box, upload_note, api_visibility="private")
    for widget in [*settings, *choices.values()]:
        widget.change(plan, settings, plan_note, inputs_kwargs=choices,
                      api_visibility="private", show_progress="hidden")
    page.timer.tick(poll, zipped, [progress, loss_plot, f1_plot, log, result_table, zip_file,
                                   failure, zipped],
                    api_visibility="private", show_progress="hidden", concurrency_limit=None)
    # One start wins even when two arrive at once (the job's lock decides); a start on ZeroGPU
    # streams for as long as it trains, so starts do not queue behind it.
    start.click(start_fine_tune, [name, *settings], command, inputs_kwargs=choices,
                api_name="fine_tune", concurrency_limit=None)
    stop.click(stop_fine_tune, None, None, api_name="stop_fine_tune")
    delete.click(delete_run, run, manage_note, api_name="delete_run")
    push.click(push_run, [run, repo, private], manage_note, api_name="push_run")
    page.demo.load(plan, settings, plan_note, inputs_kwargs=choices, api_visibility="private")
    # Datasets grow while the server runs: listed afresh when a page opens or the list is opened.
    for event in (page.demo.load, dataset.focus):
        event(list_datasets, dataset, dataset, api_visibility="private", show_progress="hidden")
