"""The settings of every fine-tune, built one way: a preset, then what a trained base model passes
on, then what the user gave.

The command line, the app's form, its ``/fine_tune`` API, the Annotate tab's "Fine-tune on this
dataset" and ZeroGPU's worker all get their ``TrainConfig`` from ``plan_fine_tune``. The base
model is resolved once, here; the plan carries the resolved model to the checks, the command line
that reproduces the run and ``fine_tune`` itself.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from . import models
from .config import CONTINUE, PRESETS, TrainConfig, continue_settings, preset
from .errors import UserError

logger = logging.getLogger(__name__)

# The settings that shape a model's inputs: a continued fine-tune takes them from its base model.
INHERITED = ("case_feature", "document_context", "context_tokens", "max_length")
AUTO = "auto"  # no preset named: 'continue' for a trained base model, 'recipe' for an encoder


@dataclass(frozen=True)
class FineTunePlan:
    """A fine-tune's settings and the base model they were checked against."""

    config: TrainConfig
    base: models.ModelSource  # resolved once; ``fine_tune`` trains this one
    preset: str  # the preset the settings started from
    inherited: dict | None  # the input settings the trained base passes on; None for an encoder

    def command_line(self, output: str, data: str, replay: str | None = None,
                     half: bool = False) -> str:
        """The ``python -m ner_core train`` line that builds this plan again."""
        return self.config.command_line(output, data, half=half, replay=replay,
                                        inherited=self.inherited)


def plan_fine_tune(given: dict, preset_name: str | None = None, local_paths: bool = True,
                   base: models.ModelSource | None = None) -> FineTunePlan:
    """The plan of a fine-tune from the settings the user ``given`` (a flag passed, a field of the
    form, a parameter of an API call; a setting left out is not given).

    What is not given comes, in this order, from the base model when it is a trained model
    (``INHERITED``, from its ``train_config.json``), then from the preset. Without a preset (or
    with ``auto``) a trained base model gets the ``continue`` preset and an encoder the
    ``recipe``. The base model is ``given["base_model"]``, else the preset's; ``base`` is that
    model already resolved (``local_paths`` is ``models.resolve``'s otherwise). ``UserError``
    for a model that cannot be resolved or a setting it cannot take. Once the data is read,
    ``sized_for_data`` gives the ``continue`` preset's settings for its size.

    >>> plan = plan_fine_tune({"base_model": "minilm", "epochs": 1.0})
    >>> plan.config == TrainConfig(base_model="minilm", epochs=1.0), plan.preset, plan.inherited
    (True, 'recipe', None)
    """
    if preset_name == AUTO:
        preset_name = None
    if preset_name is not None and preset_name not in PRESETS:
        raise UserError(f"preset must be one of {AUTO}, {', '.join(PRESETS)}, found {preset_name!r}")
    base_model = given.get("base_model") or PRESETS[preset_name or "recipe"].get(
        "base_model", TrainConfig.base_model)
    source = base if base is not None else models.resolve(base_model, local_paths)
    passed_on = inherited_settings(source)
    if preset_name is None:
        preset_name = "recipe" if passed_on is None else CONTINUE
    inherited = {name: value for name, value in (passed_on or {}).items() if name not in given}
    if inherited:
        logger.info("%s passes on its input settings %s", base_model, inherited)
    config = preset(preset_name, **{**inherited, **given, "base_model": base_model})
    models.check_max_length(source, config.max_length)
    models.check_case_feature(source, config.case_feature)
    return FineTunePlan(config, source, preset_name, passed_on)


def sized_for_data(plan: FineTunePlan, given: dict, train_sentences: int,
                   replay: bool = True) -> FineTunePlan:
    """``plan`` once its data is read: with the ``continue`` preset and data ``replay``-ed, its
    settings for ``train_sentences`` new training sentences (``config.continue_settings``) where
    ``given`` (what ``plan`` was built from) does not set them; any other plan as it was."""
    if plan.preset != CONTINUE or not replay:
        return plan
    if plan.config.max_train_sentences is not None:
        train_sentences = min(train_sentences, plan.config.max_train_sentences)
    sized = {name: value for name, value in continue_settings(train_sentences).items()
             if name not in given}
    return dataclasses.replace(plan, config=dataclasses.replace(plan.config, **sized))


def config_for(given: dict, preset_name: str | None = None, local_paths: bool = True,
               train_sentences: int | None = None) -> TrainConfig:
    """The ``TrainConfig`` of ``plan_fine_tune``, sized for ``train_sentences`` when given
    (``sized_for_data``).

    >>> config_for({"base_model": "minilm", "epochs": 1.0}) == TrainConfig(base_model="minilm",
    ...                                                                   epochs=1.0)
    True
    """
    plan = plan_fine_tune(given, preset_name, local_paths)
    return plan.config if train_sentences is None else \
        sized_for_data(plan, given, train_sentences).config


def inherited_settings(source: models.ModelSource) -> dict | None:
    """The input settings (``INHERITED``) a trained model passes on, from its
    ``train_config.json`` (``{}`` when it has none); ``None`` for an encoder, which has none."""
    if models.trained_labels(source) is None:
        return None
    saved = models.train_config_of(source) or {}
    return {name: saved[name] for name in INHERITED if name in saved}
