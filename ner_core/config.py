"""Every hyperparameter of a fine-tune, with its default and its check, and the named presets."""

from __future__ import annotations

import functools
import json
import math
import shlex
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import UserError


def _hp(default, help: str):
    """A hyperparameter: its default and what it means (shown by ``--help`` and the app)."""
    return field(default=default, metadata={"help": help})


SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
EVAL_STRATEGIES = ("epoch", "steps", "no")
PRECISIONS = ("auto", "fp32")
# How a trained model computes at inference (Recognizer's precision); "auto" is bfloat16 where
# the device computes it natively, else float32 (ner_core.hardware).
INFERENCE_PRECISIONS = ("auto", "float32", "bfloat16", "int8")


@dataclass
class TrainConfig:
    """Hyperparameters of a fine-tune. Defaults are the classic DistilBERT CoNLL-2003 recipe.

    >>> TrainConfig(learning_rate=0)
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: learning_rate must be in (0, 1], found 0
    """

    base_model: str = _hp("distilbert-base-uncased",
        "what to fine-tune: any name the model resolver accepts")
    learning_rate: float = _hp(2e-5,
        "peak learning rate of AdamW")
    train_batch_size: int = _hp(16,
        "sentences per training step")
    eval_batch_size: int = _hp(16,
        "windows per evaluation step")
    epochs: float = _hp(3.0,
        "passes over the training sentences")
    seed: int = _hp(42,
        "seeds the head's initialisation, shuffling and sub-sampling")
    weight_decay: float = _hp(0.01,
        "AdamW's decoupled weight decay")
    warmup_ratio: float = _hp(0.0,
        "share of the steps over which the learning rate rises from 0")
    lr_scheduler: str = _hp("linear",
        "how the learning rate falls after warmup")
    max_length: int = _hp(256,
        "sub-tokens per window, special tokens included")
    max_train_sentences: int | None = _hp(None,
        "train on a random subset this large (short runs)")
    eval_strategy: str = _hp("epoch",
        "when to score the validation split during training")
    eval_steps: int = _hp(500,
        "steps between evaluations when eval_strategy is 'steps'")
    logging_steps: int = _hp(50,
        "steps between loss reports")
    label_all_tokens: bool = _hp(False,
        "label every sub-token of a word, not only the first")
    label_smoothing: float = _hp(0.0,
        "share of each target spread evenly over all the labels (0: none)")
    distillation: float = _hp(0.0,
        "with teacher models: share of the loss that matches their averaged predictions")
    document_context: bool = _hp(False,
        "read neighbouring sentences of the document as context")
    context_tokens: int = _hp(64,
        "most context sub-tokens on each side of a window")
    case_feature: bool = _hp(False,
        "mark words with a capital letter in token_type_ids, for encoders that lowercase")
    precision: str = _hp("auto",
        "auto: bf16 mixed precision where the hardware has it (most GPUs; CPUs with AVX-512 BF16 "
        "or AMX), else fp32; fp32: always fp32")
    replay_ratio: float = _hp(1.0,
        "with replay data: replayed sentences of it per new training sentence")

    def __post_init__(self) -> None:
        _in_range("learning_rate", self.learning_rate, 0, 1, low_open=True)
        _in_range("epochs", self.epochs, 0, 100, low_open=True)
        _in_range("weight_decay", self.weight_decay, 0, 1)
        _in_range("warmup_ratio", self.warmup_ratio, 0, 1, high_open=True)
        _in_range("replay_ratio", self.replay_ratio, 0, 100)
        _in_range("label_smoothing", self.label_smoothing, 0, 1, high_open=True)
        _in_range("distillation", self.distillation, 0, 1)
        for name in ("train_batch_size", "eval_batch_size"):
            _integer_in_range(name, getattr(self, name), 1, 1024)
        _integer_in_range("seed", self.seed, 0, 2**32 - 1)
        _integer_in_range("max_length", self.max_length, 8, 8192)
        _integer_in_range("eval_steps", self.eval_steps, 1, 10**7)
        _integer_in_range("logging_steps", self.logging_steps, 1, 10**7)
        _integer_in_range("context_tokens", self.context_tokens, 0, 8192)
        if self.max_train_sentences is not None:
            _integer_in_range("max_train_sentences", self.max_train_sentences, 1, 10**9)
        _one_of("lr_scheduler", self.lr_scheduler, SCHEDULERS)
        _one_of("eval_strategy", self.eval_strategy, EVAL_STRATEGIES)
        _one_of("precision", self.precision, PRECISIONS)
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            raise UserError(f"base_model must name a model, found {self.base_model!r}")
        for name in ("label_all_tokens", "document_context", "case_feature"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"{name} must be true or false, found {getattr(self, name)!r}")

    def command_line(self, output: str, data: str, half: bool = False, replay: str | None = None,
                     inherited: dict | None = None, teachers: list[str] | None = None) -> str:
        """The ``python -m ner_core train`` line that runs this config (flags for non-defaults).

        >>> TrainConfig(base_model="minilm", epochs=1.0).command_line("runs/x", "data/")
        'python -m ner_core train --base-model minilm --data data/ --output runs/x --epochs 1.0'

        A config that is exactly a named preset (other than the defaults) is named by it:

        >>> preset("short").command_line("runs/x", "data/")
        'python -m ner_core train --preset short --data data/ --output runs/x'

        A continued fine-tune (``inherited``: the input settings its trained base model passes on)
        is written as the command line builds it: the ``continue`` preset, then those settings.

        >>> preset("continue", base_model="runs/a", max_length=128, epochs=1.0).command_line(
        ...     "runs/b", "new/", replay="old/", inherited={"max_length": 128})
        'python -m ner_core train --base-model runs/a --data new/ --output runs/b --epochs 1.0 --replay old/'
        """
        extra = (["--replay", replay] if replay else [])
        for teacher in teachers or []:
            extra += ["--teacher", teacher]
        extra += ["--half"] if half else []
        if inherited is None:
            for name in PRESETS:
                if PRESETS[name] and name != CONTINUE and self == preset(name):
                    return shlex.join(["python", "-m", "ner_core", "train", "--preset", name,
                                       "--data", data, "--output", output, *extra])
        default = TrainConfig() if inherited is None else preset(CONTINUE, **inherited)
        args = ["python", "-m", "ner_core", "train", "--base-model", self.base_model,
                "--data", data, "--output", output]
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "base_model" or value == getattr(default, f.name):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + f.name.replace("_", "-"))
            else:
                args += [flag, str(value)]
        return shlex.join(args + extra)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from saved values; unknown keys (from newer versions) are refused by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown hyperparameters {', '.join(unknown)}; expected some of "
                            f"{', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


CONTINUE = "continue"  # the preset of continued fine-tuning

# Named starting points. Short runs of a small encoder need a far larger learning rate than the
# recipe's 2e-5 (measured on CoNLL-2003 with the offline MiniLM encoder, 2,000 sentences, one epoch:
# 2e-5 -> validation F1 0.01, 1e-4 -> 0.57, 3e-4 -> 0.73).
PRESETS: dict[str, dict] = {
    "recipe": {},
    "short": {"base_model": "minilm", "max_train_sentences": 2000, "epochs": 1.0,
              "learning_rate": 3e-4, "warmup_ratio": 0.1},
    # The bundled model (assets/model): the offline encoder with capitals marked, since it
    # lowercases (validation F1 +3 points after two epochs against the same run without).
    "bundled": {"base_model": "minilm", "learning_rate": 1e-4, "train_batch_size": 32,
                "eval_batch_size": 64, "epochs": 6.0, "warmup_ratio": 0.1, "max_length": 128,
                "case_feature": True},
    # Continued fine-tuning of a trained model (the bundled one unless a base model is named); its
    # input settings come from the model (``plan.plan_fine_tune``); its replay ratio follows the
    # number of new sentences (``continue_settings``). Chosen by bench/continued_tuning.py on the
    # hard case of bench/continued.py (CHOSEN_ON below); on its near case (199 corrections, as
    # many replayed) 5e-5 without replay lost 2.40 validation points.
    CONTINUE: {"base_model": "default", "learning_rate": 3e-5, "epochs": 3.0, "replay_ratio": 2.0,
               "warmup_ratio": 0.1},
}


# What each preset's settings were chosen on, with its figures: a run's card states it.
CHOSEN_ON = {
    "recipe": "Chosen on: the classic DistilBERT fine-tune of CoNLL-2003 (learning rate 2e-5, batch "
              "16, 3 epochs), reported at validation P 0.9288, R 0.9374, F1 0.9331, accuracy "
              "0.9840.",
    "short": "Chosen on: 2,000 CoNLL-2003 training sentences, one epoch of the offline MiniLM "
             "encoder, validation F1 by learning rate (2e-5: 0.01, 1e-4: 0.57, 3e-4: 0.73).",
    "bundled": "Chosen on: `python bench/default_model.py`, rebuilds of the bundled model on "
               "CoNLL-2003 (bench/results/default-ablation.json): this preset gave validation F1 "
               "0.9349, test 0.8873 (each word's most probable tag); labelling every sub-token "
               "+0.50 / +0.43; document context +0.27 / +0.28; distillation from those three "
               "runs nothing over labelling every sub-token. The bundled model adds document "
               "context and every sub-token labelled: validation 0.9412, test 0.9011 (read from "
               "every sub-token, decoded as IOB2 sequences), at four times the evaluation time.",
    "continue": "Chosen on: `python bench/continued_tuning.py`, the hard case of "
                "`bench/continued.py` (CoNLL-2003 test documents of entities unseen in training, "
                "lower-cased, no punctuation; from the bundled model, held-out F1 0.4272 and "
                "validation 0.9414 before): learning rate 3e-5, 3 epochs, at least 1,000 "
                "sentences replayed and two per correction gave held-out +31.40 / +33.16 / "
                "+35.47 F1 points from 100 / 300 / 1,000 corrections and validation -0.54 / "
                "-0.89 / -0.40 (`bench/continued.py`); at 1,000, 5 epochs gave +35.30 / -0.38 in "
                "two thirds more steps, one replayed per correction +35.62 / -1.07, and that at "
                "2e-5 +35.27 / -1.15.",
}


# The continue preset replays at least this many sentences of the base's data, and at least
# this many per new sentence (see below).
REPLAYED_AT_LEAST = 1000
REPLAYED_PER_NEW_SENTENCE = 2.0


def continue_settings(train_sentences: int) -> dict:
    """The ``continue`` preset's settings that depend on how many new training sentences there
    are: the replay ratio, so that at least ``REPLAYED_AT_LEAST`` sentences are replayed, and at
    least ``REPLAYED_PER_NEW_SENTENCE`` per new one. Corrections of another kind of text otherwise
    pull the model off what it knew: on bench/continued.py's hard case (lower-cased test documents
    of unseen entities), 100 corrections with as many replayed cost 3.10 validation F1 points, with
    ten times as many 1.06; 300 cost 2.01 and 1.00; from the bundled model with document context,
    1,000 with as many replayed cost 1.07, with twice as many 0.38 (bench/continued_tuning.py).

    >>> continue_settings(100), continue_settings(400), continue_settings(5000)
    ({'replay_ratio': 10.0}, {'replay_ratio': 2.5}, {'replay_ratio': 2.0})
    """
    if train_sentences < 1:
        return {}
    ratio = max(REPLAYED_PER_NEW_SENTENCE, REPLAYED_AT_LEAST / train_sentences)
    return {"replay_ratio": round(min(100.0, ratio), 2)}


@functools.cache
def field_types() -> dict[str, type]:
    """Each ``TrainConfig`` field's type, from its annotation: ``int | None`` reads as ``int``.

    >>> types = field_types()
    >>> types["epochs"], types["max_train_sentences"], types["case_feature"]
    (<class 'float'>, <class 'int'>, <class 'bool'>)
    """
    found = {}
    for name, hint in typing.get_type_hints(TrainConfig).items():
        if isinstance(hint, types.UnionType):
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        if hint not in (bool, int, float, str):
            raise TypeError(f"TrainConfig.{name}: expected bool, int, float or str, found {hint}")
        found[name] = hint
    return found


def typed_value(name: str, value):
    """``value`` of field ``name`` as its type, from a form or an API call: a whole float is an
    int where the field is one; anything else is left for ``TrainConfig``'s checks to refuse.

    >>> typed_value("seed", 7.0), typed_value("learning_rate", 1)
    (7, 1.0)
    >>> typed_value("seed", 2.5)
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: seed must be a whole number, found 2.5
    """
    kind = field_types()[name]
    if kind is int and isinstance(value, float):
        if not value.is_integer():
            raise UserError(f"{name} must be a whole number, found {value!r}")
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def preset(name: str, **overrides) -> TrainConfig:
    """A ``TrainConfig`` from a named preset, with ``overrides`` on top."""
    if name not in PRESETS:
        raise UserError(f"preset must be one of {', '.join(PRESETS)}, found {name!r}")
    return TrainConfig(**{**PRESETS[name], **overrides})


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a number, found {value!r}")
    return value


def _in_range(name, value, low, high, low_open=False, high_open=False) -> None:
    value = _number(name, value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise UserError(f"{name} must be in {interval}, found {value!r}")


def _integer_in_range(name, value, low, high) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be a whole number, found {value!r}")
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low} and {high}, found {value!r}")


def _one_of(name, value, choices) -> None:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}, found {value!r}")
