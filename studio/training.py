"""The Fine-tune tab's logic: the form <-> a ``FineTunePlan``, time estimates, and the job as views.

The form is filled from, and read back into, ``ner_core.plan.plan_fine_tune``, the one builder of
every fine-tune's settings, so the form, the ``/fine_tune`` API and the command line agree.
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr
import pandas as pd

from ner_core import dataset_paths, hub, hub_check, models, runs, tenancy
from ner_core.config import CONTINUE, PRESETS, field_types, typed_value
from ner_core.errors import UserError
from ner_core.jobs import JobSnapshot
from ner_core.plan import AUTO, FineTunePlan, inherited_settings, plan_fine_tune, sized_for_data

from . import access, zerogpu
from .data import TrainingData
from .models import model_choices

RECIPE_BASE = "distilbert-base-uncased"
# The hyperparameters the form shows, in its order, with their labels: the widgets, the values
# each base and preset fill in and the /fine_tune API's named parameters are all built from it.
FORM = {
    "learning_rate": "Learning rate", "train_batch_size": "Batch size", "epochs": "Epochs",
    "seed": "Seed", "weight_decay": "Weight decay", "warmup_ratio": "Warmup share",
    "max_length": "Max sequence length (sub-tokens)",
    "max_train_sentences": "Max training sentences (0 = all)",
    "document_context": "Document context", "label_all_tokens": "Label all sub-tokens",
    "case_feature": "Mark capitals (case feature)",
}
PRESET_CHOICES = [("Automatic: continue a trained model, the recipe for an encoder", AUTO),
                  ("Recipe", "recipe"), ("Short run (about a minute on 2 CPU cores)", "short"),
                  ("Bundled model's settings", "bundled"), ("Continue a trained model", "continue")]
# Rough seconds per training sentence and epoch of the offline MiniLM encoder: on 2 CPU cores,
# measured with the short preset; on a GPU, a guess until a fine-tune here measures it (see
# zerogpu.measured_rate). Other bases scale by what they compute per token
# (models.compute_parameters). Only an estimate to set expectations.
CPU_SECONDS_PER_SENTENCE = 0.016
GPU_SECONDS_PER_SENTENCE = 0.001
# Loading the model, and scoring validation and test once trained, whatever the data's size.
GPU_OVERHEAD_SECONDS = 60
# The page draws the loss curve from these reports: more often than the command line's 50 steps.
LOGGING_STEPS = 10
# A run's float32 weights take 4 bytes a parameter, embeddings included, which
# models.compute_parameters leaves out: they add between a third and as much again for the
# encoders offered here, so twice its figure. Its zip is about as large (weights barely compress).
RUN_BYTES_PER_COMPUTE_PARAMETER = 4 * 2


def base_choices(who: access.Visitor | None = None) -> tuple[list[str], str, str]:
    """Base models to offer ``who``, the one chosen first, and a sentence saying why.

    ``who=None`` (the page as first built) is offered no visitor's runs on a public host.
    """
    saved = model_choices(who)  # trained models, to fine-tune further
    if hub.hub_reachable():
        return ([RECIPE_BASE, models.ENCODER] + saved, RECIPE_BASE,
                f"Base model: `{RECIPE_BASE}` from the Hugging Face Hub, as in the recipe.")
    if hub.is_cached(RECIPE_BASE):
        return ([RECIPE_BASE, models.ENCODER] + saved, RECIPE_BASE,
                f"Base model: `{RECIPE_BASE}`, as in the recipe, from the local cache (the Hub "
                "cannot be reached).")
    return ([models.ENCODER] + saved, models.ENCODER,
            f"The Hugging Face Hub cannot be reached, so `{RECIPE_BASE}` cannot be downloaded: the "
            f"offline MiniLM-L6 encoder (`{models.ENCODER}`, same uncased vocabulary) is the base.")


def managed_runs(who: access.Visitor | None) -> list[str]:
    """The finished runs ``who`` may delete or push, newest first (``None``: none, on a public
    host)."""
    return [name for name in runs.list_runs()
            if tenancy.may_manage(who.identity if who else None, runs.owner_of(name))]


def _base_model(base: str | None, base_hub_id: str | None, who: access.Visitor | None) -> str:
    """The base the form names: a typed Hub id wins over the picker; checked before it resolves.

    A run ``who`` is not offered is refused even when its name looks like a Hub id: runs are
    resolved before the Hub.
    """
    base_model = (base_hub_id or "").strip() or (base or "")
    if not base_model:
        raise UserError("choose a base model")
    if base_model not in base_choices(who)[0]:
        if not hub.is_hub_id(base_model) or Path(base_model).exists() \
                or runs.run_path(base_model) is not None:
            raise UserError(f"expected a listed base model or a Hub id, found {base_model!r}")
        hub.check_hub_use(base_model, who.username if who is not None else None)
        limit = hub.max_model_bytes()
        if limit is not None and hub.hub_reachable():
            hub_check.check_hub_model(base_model, limit, "training")
    return base_model


def given_settings(values: dict) -> dict:
    """The hyperparameters a form or an API call gave, as their types; ``None`` is not given and
    a maximum of 0 training sentences means all of them."""
    unknown = sorted(set(values) - set(FORM))
    if unknown:
        raise UserError(f"expected hyperparameters among {', '.join(FORM)}, found "
                        f"{', '.join(unknown)}")
    given = {name: typed_value(name, value) for name, value in values.items() if value is not None}
    if given.get("max_train_sentences") == 0:
        given["max_train_sentences"] = None
    return given


def plan_from_form(base: str | None, base_hub_id: str | None, preset_name: str | None,
                   values: dict, who: access.Visitor | None = None) -> FineTunePlan:
    """The plan of the form's (or an API call's) settings, from the bases ``who`` is offered; its
    checks quote any bad value."""
    given = {**form_given(values), "base_model": _base_model(base, base_hub_id, who)}
    plan = plan_fine_tune(given, preset_name or AUTO, local_paths=False)
    access.check_epochs(plan.config.epochs)
    return plan


def form_given(values: dict) -> dict:
    """What the form's (or an API call's) ``values`` give a plan, the base model aside."""
    return {"logging_steps": LOGGING_STEPS, **given_settings(values)}


def sized_for(plan: FineTunePlan, values: dict, data: TrainingData) -> FineTunePlan:
    """``plan_from_form``'s plan for the form's ``values``, with the ``continue`` preset's settings
    for how much training data ``data`` holds (with replay: the settings size the replay)."""
    return sized_for_data(plan, form_given(values), data.train_sentences, data.replay)


def form_values(base: str, preset_name: str | None) -> list:
    """What the form shows for ``base`` and the preset, in ``FORM`` order (0 for all training
    sentences): what a run started now with nothing changed would use."""
    config = plan_fine_tune({"base_model": base}, preset_name or AUTO, local_paths=False).config
    return [getattr(config, name) if name != "max_train_sentences"
            else (config.max_train_sentences or 0) for name in FORM]


def preset_base(preset_name: str | None, base: str, who: access.Visitor | None = None) -> str:
    """The base model a preset picked in the form sets: the one it names when that is listed for
    ``who`` (for ``continue``, only when ``base`` is not a trained model already), else ``base``."""
    if not preset_name or preset_name == AUTO:
        return base
    named = PRESETS[preset_name].get("base_model") if preset_name in PRESETS else None
    listed = base_choices(who)[0]
    if named is None or named not in listed:
        return base
    if preset_name == CONTINUE and base in listed \
            and inherited_settings(models.resolve(base, local_paths=False)) is not None:
        return base
    return named


def fill_for_dataset(dataset: str, base: str, who: access.Visitor | None = None) -> list:
    """The Fine-tune form set to train ``base`` on the dataset of accepted corrections
    ``dataset``, with CoNLL-2003 replayed: values for ``page.FineTuneForm.settings``. The
    datasets offered are those of ``who``."""
    owner = who.identity if who is not None else None
    names = sorted({*dataset_paths.dataset_names(owner=owner), dataset})
    return ["dataset", gr.Dropdown(choices=names, value=dataset), base, True, AUTO,
            *form_values(base, AUTO)]


def with_form_parameters(handler):
    """``handler`` (taking the form's hyperparameters as ``**values``) with one keyword parameter
    per ``FORM`` field in its signature, each ``None`` by default: the named API parameters of its
    event, which an API call may leave out to take what the base model and preset give."""
    signature = inspect.signature(handler)
    kept = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    kinds = field_types()
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=kinds[name] | None) for name in FORM]
    handler.__signature__ = signature.replace(parameters=kept + added)
    handler.__annotations__ = {**handler.__annotations__,
                               **{p.name: p.annotation for p in added}}
    return handler


def run_name(name: str | None) -> str:
    """The new run's name: as typed (no base model's, ``models.check_run_name``), else the time."""
    name = (name or "").strip() or time.strftime("run-%Y%m%d-%H%M%S")
    models.check_run_name(name)
    if runs.run_path(name) is not None:
        raise UserError(f"a run named {name!r} exists already; choose another name")
    return name


def trained_sentences(plan: FineTunePlan, data: TrainingData) -> int:
    """Sentences seen per epoch: the training sentences kept, and those replayed with them."""
    config = plan.config
    kept = min(data.train_sentences, config.max_train_sentences or data.train_sentences)
    return kept + (round(kept * config.replay_ratio) if data.replay else 0)


def training_work(plan: FineTunePlan, data: TrainingData) -> float:
    """The size of a fine-tune: sentences times epochs, scaled by what the base computes per
    token against the MiniLM encoder the pace was measured on, and by document context."""
    ours = models.compute_parameters(plan.base)
    scale = ours / _reference_parameters() if ours else 1.0
    if plan.config.document_context:
        scale *= 1 + 2 * plan.config.context_tokens / 24  # windows grow from ~24 sub-tokens
    return trained_sentences(plan, data) * plan.config.epochs * scale


@functools.cache
def _reference_parameters() -> int:
    """What the encoder the pace was measured on computes with per token."""
    return models.compute_parameters(models.resolve(models.ENCODER))


def run_disk_bytes(plan: FineTunePlan) -> int:
    """About what the run of ``plan`` and its zip take on disk, for the disk budget."""
    return 2 * RUN_BYTES_PER_COMPUTE_PARAMETER * (models.compute_parameters(plan.base) or 0)


def estimate_seconds(work: float, gpu: bool) -> float:
    """Expected wall time of a fine-tune of ``work`` (``training_work``)."""
    if gpu:
        return GPU_OVERHEAD_SECONDS + work * (zerogpu.measured_rate() or GPU_SECONDS_PER_SENTENCE)
    return work * CPU_SECONDS_PER_SENTENCE


def in_words(seconds: float) -> str:
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def reproduce_command(plan: FineTunePlan, name: str, data: TrainingData) -> str:
    """The shell lines that run this plan from the command line, as they can be pasted.

    CoNLL-2003 is named by the server's data directory (absolute, so it works from any directory)
    or ``conll2003`` (the Hub); uploads by the names the visitor gave their files; a dataset of
    corrections by its CoNLL export.
    """
    replay = data.replay_name if data.replay else None

    def line(source: str) -> str:
        return plan.command_line(f"runs/{name}", source, replay=replay)

    if data.source == "conll2003":
        return line(data.name)
    if data.source == "dataset":
        return (f"# {data.dataset}.conll: the dataset exported as CoNLL (Annotate tab, Export)\n"
                + line(f"{data.dataset}.conll"))
    if data.validation_name is None:
        return line(data.train_name)
    if set(data.formats.values()) == {"conll"}:
        return ("# data/ holds your training file as train.txt and your validation file as "
                "valid.txt\n" + line("data/"))
    # One --data source holds both splits only as a folder of CoNLL files: convert the files.
    return (f"python -m ner_core convert {shlex.quote(data.train_name)} data/train.txt --to conll\n"
            f"python -m ner_core convert {shlex.quote(data.validation_name)} data/valid.txt "
            "--to conll\n" + line("data/"))


def progress_html(snapshot: JobSnapshot, in_full: bool = True) -> str:
    """The job's state and progress bar; without ``in_full`` (a visitor who did not start it, on
    a public host) neither its run's name nor who started it."""
    p = snapshot.progress
    if snapshot.state == "idle":
        return "<p>No fine-tune has run since the server started.</p>"
    done = p.step / p.total_steps if p and p.total_steps else 0.0
    eta = f", about {p.remaining_seconds:.0f} s left" if p and p.remaining_seconds is not None \
        and snapshot.active else ""
    steps = (f"step {p.step} of {p.total_steps}, epoch {p.epoch:.2f}{eta}" if p
             else "preparing" if snapshot.active else "before the first step")
    what, by = snapshot.run_name, ""
    if not in_full:
        what = "a fine-tune of another visitor"
    elif snapshot.owner:
        by = f" · started by {access.owner_label(snapshot.owner)}"
    return (f"<div class='job-state'><b>{snapshot.state}</b> · {what} · {steps}{by}"
            f"</div><progress max='1' value='{done:.4f}' style='width:100%'></progress>")


def curves(snapshot: JobSnapshot) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame(snapshot.losses, columns=["step", "loss"]),
            pd.DataFrame(snapshot.scores, columns=["step", "validation F1"]))


def zip_for_download(name: str, who: str | None) -> str | None:
    """The zip of the run ``name`` (made when its fine-tune ended) as the page can offer it to
    the visitor ``who`` (an owner string); ``None`` when none was made.

    Gradio hands out only files under the working directory or the temporary directory: from a
    runs directory elsewhere (a Space's persistent ``/data``), the zip is linked (copied, across
    file systems) among the visitor's temporary files, which are swept on their schedule.
    """
    path = runs.zip_of(name)
    if path is None:
        return None
    served_as_is = (Path(os.getcwd()).resolve(), Path(tempfile.gettempdir()).resolve())
    if any(path.resolve().is_relative_to(root) for root in served_as_is):
        return str(path)
    served = tenancy.tenant_temp(who, "downloads") / path.name
    staging = served.with_name(f".{uuid.uuid4().hex}.zip")
    try:
        os.link(path, staging)
    except OSError:
        shutil.copyfile(path, staging)
    os.replace(staging, served)
    return str(served)
