"""The Fine-tune tab: settings -> ``TrainConfig``, uploads -> data, and the job's progress as views."""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import pandas as pd
import torch

from ner_core import TrainConfig, hub, list_runs, models, runs, to_dataset_dict
from ner_core.data import load_data, read_conll
from ner_core.jobs import FineTuneJobs, JobSnapshot
from ner_core.training import fine_tune

RECIPE_BASE = "distilbert-base-uncased"
# Rough CPU seconds per training sentence and epoch for a MiniLM-sized encoder on 2 cores,
# measured with the short preset; scaled by model size. Only an estimate to set expectations.
CPU_SECONDS_PER_SENTENCE = 0.016
GPU_SECONDS_PER_SENTENCE = 0.0005
CONLL_SENTENCES = 14_041
UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024
# The page draws the loss curve from these reports: more often than the command line's 50 steps.
LOGGING_STEPS = 10


def _zero_gpu(function):
    """On a ZeroGPU Space (the ``spaces`` package imports), the fine-tune holds a GPU while it runs."""
    try:
        import spaces
    except ImportError:
        return function
    return spaces.GPU(duration=lambda config, *args, **kwargs: int(600 * config.epochs))(function)


JOBS = FineTuneJobs(_zero_gpu(fine_tune))


def base_choices() -> tuple[list[str], str, str]:
    """Base models to offer, the one chosen first, and a sentence saying why."""
    saved = list_runs()
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


def describe_upload(path: str | None) -> str:
    """A line about an uploaded CoNLL file, or the reason it was refused (file and line)."""
    if not path:
        return ""
    conll = read_upload(path)
    types = sorted({t[2:] for s in conll.sentences for t in s.tags if t != "O"})
    scheme = "IOB1, converted to IOB2" if conll.scheme == "IOB1" else "IOB2"
    return (f"`{Path(path).name}`: {len(conll.sentences):,} sentences, {scheme}, "
            f"types {', '.join(types) or 'none'}")


def read_upload(path: str):
    """Read an uploaded CoNLL file; messages name the file as the user knows it, not its temp path."""
    size = Path(path).stat().st_size
    if size > UPLOAD_LIMIT_BYTES:
        raise ValueError(f"{Path(path).name}: expected at most {UPLOAD_LIMIT_BYTES // 2**20} MB, "
                         f"found {size / 2**20:.1f} MB")
    try:
        return read_conll(path)
    except ValueError as error:
        raise ValueError(str(error).replace(str(Path(path)), Path(path).name)) from None


@functools.cache
def conll2003():
    """CoNLL-2003 from ``$NER_DATA_DIR``, else the Hub; loaded once per process."""
    return load_data(None)


def data_loader(source: str, train_file: str | None, validation_file: str | None):
    """A function that loads the chosen data (called in the job's thread), checked up front."""
    if source == "upload":
        if not train_file:
            raise ValueError("upload a training file in CoNLL format, or choose CoNLL-2003")
        splits = {"train": read_upload(train_file).sentences}
        if validation_file:
            splits["validation"] = read_upload(validation_file).sentences
        return lambda: to_dataset_dict(splits)
    return conll2003


def make_config(base: str, base_hub_id: str, values: dict) -> TrainConfig:
    """A ``TrainConfig`` from the form; its checks quote any bad value."""
    base_model = (base_hub_id or "").strip() or base
    if not base_model:
        raise ValueError("choose a base model")
    typed_hub_id = base_model not in base_choices()[0]
    if typed_hub_id and (not hub.is_hub_id(base_model) or Path(base_model).exists()):
        raise ValueError(f"expected a listed base model or a Hub id, found {base_model!r}")
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
    return config


def run_name(name: str | None) -> str:
    name = (name or "").strip() or time.strftime("run-%Y%m%d-%H%M%S")
    if not runs.is_run_name(name):
        raise ValueError(f"expected a run name of letters, digits, '-', '_' and '.', found {name!r}")
    if runs.run_path(name) is not None:
        raise ValueError(f"a run named {name!r} exists already; choose another name")
    return name


def estimate(config: TrainConfig, n_sentences: int) -> str:
    sentences = min(n_sentences, config.max_train_sentences or n_sentences)
    per_sentence = GPU_SECONDS_PER_SENTENCE if torch.cuda.is_available() else CPU_SECONDS_PER_SENTENCE
    scale = 3.0 if config.base_model == RECIPE_BASE else 1.0  # DistilBERT is ~3x MiniLM-L6
    if config.document_context:
        scale *= 1 + 2 * config.context_tokens / 24  # windows grow from ~24 sub-tokens
    seconds = sentences * config.epochs * per_sentence * scale
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def reproduce_command(config: TrainConfig, name: str, data: str) -> str:
    """The ``python -m ner_core train`` line that runs these settings."""
    return config.command_line(f"runs/{name}", data)


def progress_html(snapshot: JobSnapshot) -> str:
    p = snapshot.progress
    if snapshot.state == "idle":
        return "<p>No fine-tune has run since the server started.</p>"
    done = p.step / p.total_steps if p and p.total_steps else 0.0
    eta = f", about {p.remaining_seconds:.0f} s left" if p and p.remaining_seconds is not None \
        and snapshot.active else ""
    steps = (f"step {p.step} of {p.total_steps}, epoch {p.epoch:.2f}{eta}" if p
             else "preparing" if snapshot.active else "before the first step")
    return (f"<div class='job-state'><b>{snapshot.state}</b> · {snapshot.run_name} · {steps}</div>"
            f"<progress max='1' value='{done:.4f}' style='width:100%'></progress>")


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
