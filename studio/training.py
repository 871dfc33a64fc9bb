"""The Fine-tune tab's logic: the form -> ``TrainConfig``, time estimates, and the job as views."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import pandas as pd

from ner_core import TrainConfig, hub, list_runs, models, runs
from ner_core.jobs import FineTuneJobs, JobSnapshot

from . import access, zerogpu

RECIPE_BASE = "distilbert-base-uncased"
# The hyperparameters the form shows, in its order, with their labels: the widgets, the presets'
# values and the /fine_tune API's named parameters are all built from this one table.
FORM = {
    "learning_rate": "Learning rate", "train_batch_size": "Batch size", "epochs": "Epochs",
    "seed": "Seed", "weight_decay": "Weight decay", "warmup_ratio": "Warmup share",
    "max_length": "Max sequence length (sub-tokens)",
    "max_train_sentences": "Max training sentences (0 = all)",
    "document_context": "Document context", "label_all_tokens": "Label all sub-tokens",
    "case_feature": "Mark capitals (case feature)",
}
# Rough seconds per training sentence and epoch for a MiniLM-sized encoder: on 2 CPU cores,
# measured with the short preset; on a GPU, a guess until a fine-tune here measures it (see
# zerogpu.measured_rate). Scaled by model size. Only an estimate to set expectations.
CPU_SECONDS_PER_SENTENCE = 0.016
GPU_SECONDS_PER_SENTENCE = 0.001
# Loading the model, and scoring validation and test once trained, whatever the data's size.
GPU_OVERHEAD_SECONDS = 60
# The page draws the loss curve from these reports: more often than the command line's 50 steps.
LOGGING_STEPS = 10

JOBS = FineTuneJobs()


def base_choices() -> tuple[list[str], str, str]:
    """Base models to offer, the one chosen first, and a sentence saying why."""
    saved = ([models.DEFAULT] if (models.BUNDLED_DIR / "model.safetensors").is_file() else []) \
        + list_runs()  # trained models, to fine-tune further
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


def make_config(base: str, base_hub_id: str, values: dict) -> TrainConfig:
    """A ``TrainConfig`` from the form; its checks quote any bad value."""
    base_model = (base_hub_id or "").strip() or base
    if not base_model:
        raise ValueError("choose a base model")
    typed_hub_id = base_model not in base_choices()[0]
    if typed_hub_id and (not hub.is_hub_id(base_model) or Path(base_model).exists()):
        raise ValueError(f"expected a listed base model or a Hub id, found {base_model!r}")
    if typed_hub_id:
        limit = access.hub_model_limit_bytes()
        if limit is not None and hub.hub_reachable():
            hub.check_hub_model(base_model, limit, "training")
    # Resolved once, before the settings: a typed Hub id offline is refused at once.
    source = models.resolve(base_model, local_paths=False)
    typed = {}
    for f in fields(TrainConfig):
        if f.name in values:
            value = values[f.name]
            if f.type in ("int", "int | None") and isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(f"{f.name} must be a whole number, found {value!r}")
                value = int(value)
            typed[f.name] = value
    if typed.get("max_train_sentences") == 0:
        typed["max_train_sentences"] = None  # 0 in the form means all sentences
    typed.setdefault("logging_steps", LOGGING_STEPS)
    config = TrainConfig(base_model=base_model, **typed)
    models.check_max_length(source, config.max_length)
    models.check_case_feature(source, config.case_feature)
    return config


def run_name(name: str | None) -> str:
    name = (name or "").strip() or time.strftime("run-%Y%m%d-%H%M%S")
    if not runs.is_run_name(name):
        raise ValueError(f"expected a run name of letters, digits, '-', '_' and '.', found {name!r}")
    if runs.run_path(name) is not None:
        raise ValueError(f"a run named {name!r} exists already; choose another name")
    return name


def training_sentences(config: TrainConfig, n_sentences: int) -> int:
    return min(n_sentences, config.max_train_sentences or n_sentences)


def estimate_seconds(config: TrainConfig, n_sentences: int, gpu: bool,
                     replay: bool = False) -> float:
    """Expected wall time of a fine-tune of ``n_sentences`` (before max_train_sentences), with
    ``config.replay_ratio`` replayed sentences per sentence when ``replay``."""
    scale = 3.0 if config.base_model == RECIPE_BASE else 1.0  # DistilBERT is ~3x MiniLM-L6
    if config.document_context:
        scale *= 1 + 2 * config.context_tokens / 24  # windows grow from ~24 sub-tokens
    work = trained_sentences(config, n_sentences, replay) * config.epochs * scale
    if gpu:
        return GPU_OVERHEAD_SECONDS + work * (zerogpu.measured_rate() or GPU_SECONDS_PER_SENTENCE)
    return work * CPU_SECONDS_PER_SENTENCE


def trained_sentences(config: TrainConfig, n_sentences: int, replay: bool = False) -> int:
    """Sentences seen per epoch: the training sentences kept, and those replayed with them."""
    kept = training_sentences(config, n_sentences)
    return kept + (round(kept * config.replay_ratio) if replay else 0)


def in_words(seconds: float) -> str:
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def preset_values(config: TrainConfig) -> list:
    """The form's values for ``config``, in ``FORM`` order (0 for all training sentences)."""
    return [getattr(config, f) if f != "max_train_sentences" else (config.max_train_sentences or 0)
            for f in FORM]


def continued_config(base: str) -> TrainConfig | None:
    """The continued-training settings for ``base`` (its preset, and the input settings it passes
    on) when it is a trained model; ``None`` for an encoder."""
    from ner_core.continued import config_for, inherited_settings

    if inherited_settings(models.resolve(base, local_paths=False)) is None:
        return None
    return config_for({"base_model": base}, local_paths=False)


def reproduce_command(config: TrainConfig, name: str, data) -> str:
    """The shell lines that run these settings from the command line, as they can be pasted.

    CoNLL-2003 is named by the server's data directory (absolute, so it works from any directory)
    or ``conll2003`` (the Hub); uploads by the names the visitor gave their files; a dataset of
    corrections by its CoNLL export.
    """
    from ner_core.continued import inherited_settings

    inherited = inherited_settings(models.resolve(config.base_model, local_paths=False))
    replay = data.replay_name if data.replay else None

    def line(source: str) -> str:
        return config.command_line(f"runs/{name}", source, replay=replay, inherited=inherited)

    if data.source == "conll2003":
        return line(data.name)
    if data.source == "dataset":
        return (f"# {data.dataset}.conll: the dataset exported as CoNLL (Annotate tab, Export)\n"
                + line(f"{data.dataset}.conll"))
    if data.validation_name is None:
        return line(data.train_name)
    return ("# data/ holds your training file as train.txt and your validation file as valid.txt\n"
            + line("data/"))


def progress_html(snapshot: JobSnapshot) -> str:
    p = snapshot.progress
    if snapshot.state == "idle":
        return "<p>No fine-tune has run since the server started.</p>"
    done = p.step / p.total_steps if p and p.total_steps else 0.0
    eta = f", about {p.remaining_seconds:.0f} s left" if p and p.remaining_seconds is not None \
        and snapshot.active else ""
    steps = (f"step {p.step} of {p.total_steps}, epoch {p.epoch:.2f}{eta}" if p
             else "preparing" if snapshot.active else "before the first step")
    by = f" · started by {access.owner_label(snapshot.owner)}" if snapshot.owner else ""
    return (f"<div class='job-state'><b>{snapshot.state}</b> · {snapshot.run_name} · {steps}{by}"
            f"</div><progress max='1' value='{done:.4f}' style='width:100%'></progress>")


def curves(snapshot: JobSnapshot) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame(snapshot.losses, columns=["step", "loss"]),
            pd.DataFrame(snapshot.scores, columns=["step", "validation F1"]))


_zips: dict[tuple[str, int], str] = {}


def zip_run(name: str) -> str:
    """The saved run as a zip file, made once per version of the run for every visitor."""
    path = runs.run_path(name)
    if path is None:
        raise ValueError(f"no finished run named {name!r}")
    key = (name, (path / "model.safetensors").stat().st_mtime_ns)
    if key not in _zips or not Path(_zips[key]).is_file():
        target = Path(tempfile.mkdtemp(prefix="run-zip-")) / name
        _zips[key] = shutil.make_archive(str(target), "zip", root_dir=path)
    return _zips[key]
