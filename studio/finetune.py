"""The Fine-tune tab: settings, data, start and stop, the shared job's progress, and the runs a
visitor owns (delete, push to the Hub).

On a public host the one job's log, curves, scores and zip are shown only to whoever started it
(and the Space's admins); every other visitor sees that a fine-tune runs, and how far it is.

On CPU and dedicated-GPU hosts a fine-tune is a background job that outlives the page. On a ZeroGPU
Space it runs inside the Start request, which streams it (see ``zerogpu``).
"""

from __future__ import annotations

import functools
from dataclasses import fields

import gradio as gr
import pandas as pd

from ner_core import TrainConfig, dataset_paths, hub, models, runs, tenancy
from ner_core.config import REPLAYED_AT_LEAST, REPLAYED_PER_NEW_SENTENCE, field_types
from ner_core.errors import UserError
from ner_core.jobs import FineTuneJobs, JobSnapshot
from ner_core.plan import AUTO, FineTunePlan
from ner_core.training import device_description

from . import access, pushing, zerogpu
from . import training as tr
from .data import TrainingData
from .data import describe_upload as _describe_upload
from .errors import shown_to_user
from .labelled import FORMATS_SAID
from .models import STATE_SECONDS
from .page import FineTuneForm, Page
from .training import FORM
from .views import per_entity_table

FIELDS = {f.name: f for f in fields(TrainConfig)}
JOBS = FineTuneJobs()  # the one fine-tune of this server, seen by every visitor


def _widget(name: str) -> gr.components.Component:
    """The form's widget for hyperparameter ``name``, from its type and help in ``TrainConfig``.

    Every widget starts empty and the page fills it when it loads: the ``/fine_tune`` API then
    has no default of its own for it, so a call that leaves a setting out gets what the base
    model and the preset give, as the form shows them.
    """
    info = FIELDS[name].metadata["help"]
    elem_id = name.replace("_", "-")
    if field_types()[name] is bool:
        return gr.Radio([("yes", True), ("no", False)], value=None, label=FORM[name], info=info,
                        elem_id=elem_id)
    # Whole-number boxes without precision=0: Gradio would round 2.5 to 2 and fail on text from an
    # API call; the plan refuses both, quoting the value.
    return gr.Number(None, label=FORM[name], info=info, elem_id=elem_id)


@shown_to_user
def list_datasets(chosen: str | None, profile: gr.OAuthProfile | None = None,
                  request: gr.Request = None):
    """The visitor's datasets of accepted corrections."""
    names = dataset_paths.dataset_names(owner=access.visitor(profile, request).identity)
    return gr.Dropdown(choices=names, value=chosen if chosen in names else None)


@shown_to_user
def fill_form(base: str, preset_name: str, profile: gr.OAuthProfile | None = None,
              request: gr.Request = None) -> list:
    """The form for ``base`` and the preset, whoever chose them (a person, a preset, another tab,
    a refresh of the list); unchanged for a name that is not listed for the visitor."""
    if base not in tr.base_choices(access.visitor(profile, request))[0]:
        return [gr.skip()] * len(FORM)
    return tr.form_values(base, preset_name)


@shown_to_user
def apply_preset(preset_name: str, base: str, profile: gr.OAuthProfile | None = None,
                 request: gr.Request = None) -> list:
    """The base model the preset sets, and the form for it."""
    chosen = tr.preset_base(preset_name, base, access.visitor(profile, request))
    return [chosen, *fill_form(chosen, preset_name, profile, request)]


@shown_to_user
def describe_upload(path: str | None) -> str:
    return _describe_upload(path)


def _trains_on_gpu() -> bool:
    if zerogpu.on_zero_gpu():
        return True  # asked without torch: the server's process never touches CUDA there
    import torch

    return torch.cuda.is_available()


@shown_to_user
def describe_plan(base, base_hub, source, train_file, validation_file,
                  profile: gr.OAuthProfile | None = None, request: gr.Request = None, *,
                  dataset=None, replay=False, preset=AUTO, **hyperparameters) -> str:
    """What Start would run: the device, where the settings come from, the time it may take."""
    try:
        plan = tr.plan_from_form(base, base_hub, preset, hyperparameters,
                                 who=access.visitor(profile, request))
    except UserError as error:
        return f"Settings to fix: {error}"
    device = (f"ZeroGPU (a GPU is lent to each fine-tune, for at most {zerogpu.max_seconds():,} s)"
              if zerogpu.on_zero_gpu() else device_description(plan.config))
    origin = f"the `{plan.preset}` preset"
    if plan.inherited:
        passed_on = ", ".join(f"{k} {v}" for k, v in plan.inherited.items())
        origin += f", and {plan.base.name}'s input settings ({passed_on}) unless changed here"
    estimate = ""
    if source == "conll2003":
        work = tr.training_work(plan, TrainingData("conll2003", None, None))
        estimate = (f" Estimated time on CoNLL-2003: "
                    f"{tr.in_words(tr.estimate_seconds(work, _trains_on_gpu()))}.")
    return f"Device: {device}. Settings: {origin}.{estimate}"


def _gpu_seconds(plan, data: TrainingData, work: float) -> int | None:
    """The GPU time a ZeroGPU call asks for this run (``None`` off ZeroGPU); on the CPU, the
    check that it is small enough to train there."""
    if zerogpu.on_zero_gpu():
        return zerogpu.request_seconds(tr.estimate_seconds(work, gpu=True))
    if not _trains_on_gpu():
        access.check_cpu_sentences(tr.trained_sentences(plan, data))
    return None


def _make_room(plan: FineTunePlan, who: access.Visitor) -> None:
    """Room for a run of ``who``'s, once their start has won the job slot (``JOBS.begin`` calls
    it) and before anything is written: the disk budget must hold the run and its zip, and past
    ``NER_MAX_RUNS`` the starter's own oldest runs go (never anyone else's, nor the base being
    trained further)."""
    tenancy.check_room(tr.run_disk_bytes(plan), "this fine-tune's run")
    keep = access.limit("NER_MAX_RUNS")
    if keep is not None:
        protect = {plan.base.name} if plan.base.kind == "run" else set()
        runs.prune_runs(keep - 1, who.identity, protect)


@shown_to_user
@tr.with_form_parameters
def start_fine_tune(name: str = "", base: str = models.ENCODER, base_hub: str = "",
                    source: str = "conll2003", train_file: str | None = None,
                    validation_file: str | None = None, profile: gr.OAuthProfile | None = None,
                    request: gr.Request = None, *, dataset: str | None = None,
                    replay: bool = False, preset: str = AUTO, **hyperparameters):
    """Check everything, then start the fine-tune; yields the command line that reproduces it.

    ``dataset`` names the accepted corrections to train on when ``source`` is ``dataset``;
    ``replay`` mixes CoNLL-2003 back in. Hyperparameters left out (``None``) come from the base
    model and the preset (``ner_core.plan``). Every refusal comes before any job or directory
    exists; only the start that wins the job slot makes room for its run (``_make_room``).
    """
    who = access.visitor(profile, request)
    access.check_may_start(who)
    plan = tr.plan_from_form(base, base_hub, preset, hyperparameters, who=who)
    name = tr.run_name(name)
    data = TrainingData(source, train_file, validation_file, dataset, bool(replay),
                        owner=who.identity)
    plan = tr.sized_for(plan, hyperparameters, data)
    work = tr.training_work(plan, data)
    seconds = _gpu_seconds(plan, data, work)
    JOBS.check_idle(who.identity)
    output_dir = runs.runs_dir() / name
    command = tr.reproduce_command(plan, name, data)
    budget = access.limit("NER_FINETUNE_BUDGET_SECONDS")
    prepare = functools.partial(_make_room, plan, who)
    if seconds is not None:
        yield from zerogpu.run_in_request(JOBS, plan, data, output_dir, who.identity, command,
                                          seconds, budget, work, prepare)
        return
    JOBS.start(plan.config, data.load, output_dir, owner=who.identity, budget_seconds=budget,
               options={"base": plan.base, "preset": plan.preset}, prepare=prepare)
    yield command


@shown_to_user
def stop_fine_tune(profile: gr.OAuthProfile | None = None, request: gr.Request = None) -> None:
    snapshot = JOBS.snapshot()
    if not snapshot.active:
        gr.Info("No fine-tune is running.")
        return
    if not access.may_manage(access.visitor(profile, request), snapshot.owner):
        # Neither the run's name nor its starter is another visitor's business.
        raise UserError("the running fine-tune is another visitor's: only they or an admin of "
                        "this server can stop it")
    if not JOBS.stop(snapshot.run_name):
        gr.Info("No fine-tune is running.")


def poll(zipped: str | None, profile: gr.OAuthProfile | None = None, request: gr.Request = None):
    """The shared job's views for this visitor; the zip and score table once per finished run.

    Only whoever started the job (or an admin) gets its log, curves, scores and zip; anyone else
    its progress bar alone, without its name.
    """
    who = access.visitor(profile, request)
    snapshot = JOBS.snapshot()
    if not access.may_manage(who, snapshot.owner):
        losses, scores = tr.curves(JobSnapshot("idle"))  # no curves
        return (tr.progress_html(snapshot, in_full=False), losses, scores, "", gr.skip(),
                gr.skip(), "", zipped)
    losses, scores = tr.curves(snapshot)
    table, download = gr.skip(), gr.skip()
    if snapshot.result is not None and snapshot.run_name != zipped \
            and runs.run_path(snapshot.run_name) is not None:
        table = _result_table(snapshot)
        download = tr.zip_for_download(snapshot.run_name, who.identity)
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
    """``run`` when it is a saved run that ``who`` may manage; ``UserError`` otherwise."""
    if run == models.DEFAULT:
        raise UserError("the bundled model 'default' is not a run; choose one of your runs")
    # Another visitor's run is answered as a missing one: its name and owner stay theirs.
    if not run or runs.run_path(run) is None or not access.may_manage(who, runs.owner_of(run)):
        mine = " of yours" if access.is_public() else ""
        raise UserError(f"expected the name of a saved run{mine}, found {run!r}")
    return run


@shown_to_user
def delete_run(run: str, profile: gr.OAuthProfile | None = None, request: gr.Request = None) -> str:
    run = _own_run(run, access.visitor(profile, request))
    running = JOBS.snapshot()
    if running.active and running.run_name == run:
        raise UserError(f"{run} is being trained; stop it first")
    runs.delete_run(run)
    return f"Deleted `{run}`."


@shown_to_user
def push_run(run: str, repo: str, private: bool, profile: gr.OAuthProfile | None = None,
             token: gr.OAuthToken | None = None, request: gr.Request = None) -> str:
    """Push a finished run to the Hub: the signed-in visitor's namespace on a Space, else the
    ``owner/name`` typed, with ``HF_TOKEN``."""
    run = _own_run(run, access.visitor(profile, request))
    repo_id, secret = pushing.destination(repo, run, "a run", profile, token)
    url = hub.push_run(run, repo_id, token=secret, private=bool(private))
    return pushing.pushed(run, repo_id, url, bool(private))


def build(page: Page) -> None:
    """The tab's components and events (inside ``gr.Tab("Fine-tune")``)."""
    bases, base_first, base_note = tr.base_choices(None)  # the page's config: no visitor's runs
    gr.Markdown(base_note)
    with gr.Row():
        base = gr.Dropdown(bases, value=base_first, label="Base model", elem_id="base",
                           allow_custom_value=True)
        base_hub = gr.Textbox(label="…or a Hub model id", placeholder="owner/name")
        name = gr.Textbox(label="Run name", placeholder="run-YYYYMMDD-HHMMSS", elem_id="run-name")
    with gr.Row():
        source = gr.Radio([("CoNLL-2003", "conll2003"), ("Upload labelled files", "upload"),
                           ("Annotated dataset", "dataset")], value="conll2003", label="Data")
        # No list of endings: a CoNLL file may have none (eng.train), and the content decides.
        train_file = gr.File(label=f"Training file ({FORMATS_SAID})", type="filepath",
                             height=130, elem_id="train-file")
        validation_file = gr.File(label="Validation file (optional; the same formats)",
                                  type="filepath", height=130, elem_id="validation-file")
    with gr.Row():
        dataset = gr.Dropdown([], value=None, label="Annotated dataset",
                              info="accepted corrections from the Annotate tab",
                              allow_custom_value=True, elem_id="dataset")
        replay = gr.Checkbox(False, label="Replay CoNLL-2003", elem_id="replay",
                             info="mix the base's original kind of data back in, so a trained "
                                  "model keeps what it knew (the continue preset replays at "
                                  f"least {REPLAYED_AT_LEAST:,} sentences and "
                                  f"{REPLAYED_PER_NEW_SENTENCE:g} per new one; other presets as "
                                  "many as the new ones)")
    upload_note = gr.Markdown(elem_id="upload-note")
    preset = gr.Radio(tr.PRESET_CHOICES, value=AUTO, label="Settings", elem_id="preset",
                      info="the form shows what the run will use; change any field")
    hyperparameters = {}
    with gr.Row():
        for field_name in FORM:
            hyperparameters[field_name] = _widget(field_name)
    plan_note = gr.Markdown()
    with gr.Row():
        start = gr.Button("Start fine-tune", variant="primary", elem_id="start")
        stop = gr.Button("Stop", variant="stop", elem_id="stop")
    # In the page's config, which every visitor gets: on a public host, no run's name.
    progress = gr.HTML(tr.progress_html(JOBS.snapshot(), in_full=not tenancy.is_public()),
                       elem_id="progress")
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
            run = gr.Dropdown(tr.managed_runs(None), label="Run", elem_id="manage-run",
                              allow_custom_value=True)
            repo = gr.Textbox(label="Hub repository", elem_id="push-repo",
                              placeholder="name (your account on a Space) or owner/name")
            private = gr.Checkbox(True, label="Private")
        with gr.Row():
            push = gr.Button("Push to the Hub", elem_id="push")
            delete = gr.Button("Delete run", variant="stop", elem_id="delete")
        manage_note = gr.Markdown(elem_id="manage-note")
    zipped = gr.State(None, time_to_live=STATE_SECONDS)  # the run whose results this page has
    page.base_pickers.append(base)
    page.run_pickers.append(run)
    widgets = list(hyperparameters.values())
    page.fine_tune = FineTuneForm(source, dataset, base, replay, preset, widgets)
    choices = {**hyperparameters, "dataset": dataset, "replay": replay, "preset": preset}
    hidden = {"api_visibility": "private", "show_progress": "hidden"}
    zerogpu.gpu_worker()  # on ZeroGPU, registered before the server launches

    settings = [base, base_hub, source, train_file, validation_file]
    # The form follows the base model and the preset, whoever changes them (a person, a preset,
    # another tab, a refresh of the list of runs); it starts empty and is filled when the page
    # loads (see _widget).
    base.change(fill_form, [base, preset], widgets, **hidden)
    preset.change(apply_preset, [preset, base], [base, *widgets], **hidden)
    page.demo.load(fill_form, [base, preset], widgets, **hidden)
    for box in (train_file, validation_file):
        box.upload(describe_upload, box, upload_note, api_visibility="private")
    for widget in [*settings, *choices.values()]:
        widget.change(describe_plan, settings, plan_note, inputs_kwargs=choices, **hidden)
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
    page.demo.load(describe_plan, settings, plan_note, inputs_kwargs=choices, **hidden)
    # Datasets grow while the server runs: listed afresh when a page opens or the list is opened.
    for event in (page.demo.load, dataset.focus):
        event(list_datasets, dataset, dataset, api_visibility="private", show_progress="hidden")
