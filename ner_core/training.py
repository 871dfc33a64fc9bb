"""``fine_tune``: train a token-classification model with the Hugging Face ``Trainer``.

The same code runs on a GPU (bf16 where it is supported) and on the CPU, and under ``torchrun`` for
several processes. A run is written into a hidden directory and renamed into place when complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict
from transformers import (
    DataCollatorForTokenClassification,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from . import continued, distill, hardware, models, runs
from .card import model_card
from .config import TrainConfig
from .errors import UserError
from .evaluation import evaluate
from .features import IGNORE, Window, windows_for_sentences
from .formats.example import Report
from .inference import Recognizer
from .metrics import score
from .plan import inherited_settings

logger = logging.getLogger(__name__)


@dataclass
class TrainProgress:
    """What a fine-tune reports after each step, each log line and each evaluation."""

    step: int
    total_steps: int
    epoch: float
    loss: float | None
    learning_rate: float | None
    elapsed_seconds: float
    remaining_seconds: float | None
    eval_metrics: dict | None = None
    kind: str = "step"  # "step" after each step, "log" with a new loss, "eval" with eval_metrics


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict  # "validation"/"test" scores when evaluated, and "training" facts
    stopped_early: bool
    steps: int
    total_steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)


class ProgressCallback(TrainerCallback):
    """Passes progress to ``on_event`` and stops training within one step of ``should_stop()``."""

    def __init__(self, on_event: Callable[[TrainProgress], None] | None,
                 should_stop: Callable[[], bool] | None):
        self.on_event, self.should_stop = on_event, should_stop
        self.started = time.monotonic()
        self.loss = self.learning_rate = None
        self.stopped = False
        self.history: list[dict] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            control.should_training_stop = True
        self._emit(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.loss, self.learning_rate = logs["loss"], logs.get("learning_rate")
            self.history.append({"step": state.global_step, "epoch": state.epoch, "loss": self.loss,
                                 "learning_rate": self.learning_rate})
            self._emit(state, kind="log")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = {k.removeprefix("eval_"): v for k, v in (metrics or {}).items()}
        self.history.append({"step": state.global_step, "epoch": state.epoch, "eval": metrics})
        self._emit(state, metrics, kind="eval")

    def _emit(self, state, eval_metrics: dict | None = None, kind: str = "step") -> None:
        if self.on_event is None or not state.is_world_process_zero:
            return
        elapsed = time.monotonic() - self.started
        step, total = state.global_step, state.max_steps
        remaining = elapsed / step * (total - step) if step else None
        self.on_event(TrainProgress(step, total, round(state.epoch or 0.0, 3), self.loss,
                                    self.learning_rate, elapsed, remaining, eval_metrics, kind))


def native_bf16() -> bool:
    """Whether the device trains in bf16 natively: a GPU that supports it, or a CPU with AVX-512
    BF16 or AMX instructions (elsewhere bf16 is emulated, slower than fp32)."""
    return hardware.native_bf16()


def uses_bf16(config: TrainConfig) -> bool:
    return config.precision == "auto" and native_bf16()


def device_description(config: TrainConfig | None = None) -> str:
    """Where training runs, in words: the GPU's name or the CPU's threads, and the precision."""
    precision = "bf16" if uses_bf16(config or TrainConfig()) else "fp32"
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)} ({precision})"
    return f"CPU ({torch.get_num_threads()} threads, {precision})"


def fine_tune(config: TrainConfig, data: DatasetDict, output_dir: str | Path,
              on_event: Callable[[TrainProgress], None] | None = None,
              should_stop: Callable[[], bool] | None = None, overwrite: bool = False,
              half: bool = False, data_source: str | None = None,
              replay: DatasetDict | None = None, replay_source: str | None = None,
              base: models.ModelSource | None = None, data_report: Report | dict | None = None,
              replay_report: Report | dict | None = None,
              data_flags: list[str] | None = None, preset: str | None = None,
              teachers: list[str] | None = None) -> TrainResult:
    """Fine-tune ``config.base_model`` on ``data["train"]`` and save the run to ``output_dir``.

    ``half`` saves the weights in float16 (half the size; loaded as float32 and scored as saved).
    ``data_source`` says where ``data`` came from, for the model card's rebuild command, and
    ``data_flags`` how it was read there (``--format doccano``, ``--labels PER,ORG``).

    A trained base model is fine-tuned further (``continued``): it keeps its labels and their
    classifier rows, entity types new to it are added after them, and ``config.replay_ratio``
    sentences of ``replay["train"]`` (named by ``replay_source``) per training sentence are mixed in.

    ``data`` comes from ``load_data``; its ``validation`` split, when there is one, is scored during
    and after training, and its ``test`` split after. A stopped run keeps the weights trained so far.
    ``base`` is ``config.base_model`` already resolved (a ``FineTunePlan``'s), so it is not again.
    ``preset`` names the preset the settings started from (a ``FineTunePlan``'s); the card states
    what that preset was chosen on.
    ``data_report`` and ``replay_report`` (``load_labelled``'s) say what reading each source
    counted and changed; the run keeps them in its facts and its card states them.
    ``teachers`` name trained models whose averaged predictions the run learns from, with
    ``config.distillation`` its share of the loss (``distill.py``).
    """
    teachers = list(teachers or [])
    distill.check(teachers, config.distillation, config.label_smoothing)
    output_dir = Path(output_dir)
    if output_dir.exists() and not overwrite:
        raise UserError(f"{output_dir} already exists; choose another output or allow overwriting")
    if output_dir.exists() and not runs.is_complete(output_dir):
        raise UserError(f"{output_dir} exists and is not a saved run; overwriting replaces only runs")
    if "train" not in data:
        raise UserError(f"expected a 'train' split in the data, found {', '.join(data) or 'none'}")
    set_seed(config.seed)
    source = base if base is not None else models.resolve(config.base_model)
    model_labels = models.trained_labels(source)
    parent = None
    if model_labels is not None:
        data, replay_train = continued.onto_model_labels(model_labels, data, replay)
        parent = {"model": config.base_model, "labels": model_labels,
                  "inherited": inherited_settings(source)}
    elif replay is not None:
        raise UserError(f"replay expected a trained model to continue from, found the encoder "
                        f"{config.base_model!r}, which has no earlier training data to replay")
    labels = data["train"].features["ner_tags"].feature.names
    model, tokenizer = models.load_for_training(source, labels)
    # A Hub model is in the cache by now, so its configuration can be read.
    models.check_max_length(source, config.max_length)
    models.check_case_feature(source, config.case_feature)

    train_split = data["train"]
    if config.max_train_sentences is not None and config.max_train_sentences < len(train_split):
        train_split = train_split.shuffle(seed=config.seed).select(range(config.max_train_sentences))
    trained_on = train_split
    if replay is not None:
        trained_on = continued.with_replay(train_split, replay_train, config.replay_ratio,
                                           config.seed)
    train_windows = _windows(tokenizer, trained_on, config, labels, config.label_all_tokens)
    train_dataset = _as_dataset(train_windows)
    eval_split = data["validation"] if "validation" in data else None
    eval_windows = _windows(tokenizer, eval_split, config, labels, False) if eval_split else None
    collator = DataCollatorForTokenClassification(tokenizer)
    trainer_class, distilling = Trainer, {}
    if teachers:
        targets = distill.teacher_targets(teachers, trained_on, labels)
        train_dataset = train_dataset.add_column(
            distill.TARGETS, distill.window_targets(train_windows, targets, len(labels)))
        collator = distill.TargetCollator(collator, len(labels))
        trainer_class, distilling = distill.DistillingTrainer, {"distillation": config.distillation}

    progress = ProgressCallback(on_event, should_stop)
    trainer = trainer_class(
        model=model,
        args=_training_arguments(config, train_windows, evaluate_during=eval_split is not None,
                                 keep_columns=bool(teachers)),
        data_collator=collator,
        train_dataset=train_dataset,
        eval_dataset=_as_dataset(eval_windows) if eval_windows else None,
        processing_class=tokenizer,
        compute_metrics=_compute_metrics(labels),
        preprocess_logits_for_metrics=lambda logits, _: logits.argmax(-1),
        callbacks=[progress],
        **distilling,
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to on_event, not to stdout
    started = time.perf_counter()
    state = trainer.train()
    seconds = time.perf_counter() - started
    facts = {"seconds": round(seconds, 1), "steps": trainer.state.global_step,
             "total_steps": trainer.state.max_steps, "stopped_early": progress.stopped,
             "train_sentences": len(train_split), "device": device_description(config),
             "train_loss": round(state.training_loss, 4), "base_model": config.base_model,
             "weights": "float16" if half else "float32", "data": data_source,
             "data_flags": list(data_flags or []),
             "labels": labels, "lowercase": bool(getattr(tokenizer, "do_lower_case", False))}
    if preset is not None:
        facts["preset"] = preset
    if parent is not None:
        facts["continued_from"] = parent
    if teachers:
        facts["teachers"] = teachers
    if replay is not None:
        facts["replay"] = {"data": replay_source, "ratio": config.replay_ratio,
                           "sentences": len(trained_on) - len(train_split)}
    for key, report in (("data_report", data_report), ("replay_report", replay_report)):
        if report is not None:
            facts[key] = report if isinstance(report, dict) else report.as_dict()
    metrics = {"training": facts, "history": progress.history}
    if trainer.is_world_process_zero():
        metrics.update(_save(trainer, tokenizer, config, data, output_dir, metrics, progress, half))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # under torchrun, every process returns once the run is saved
    return TrainResult(output_dir, metrics, progress.stopped, trainer.state.global_step,
                       trainer.state.max_steps, seconds, progress.history)


def _windows(tokenizer, split: Dataset, config: TrainConfig, labels: list[str],
             label_all_tokens: bool) -> list[Window]:
    return windows_for_sentences(
        tokenizer, list(split["tokens"]), list(split["doc_id"]), config.max_length,
        config.document_context, config.context_tokens, labels=list(split["ner_tags"]), label_names=labels,
        label_all_tokens=label_all_tokens, case_feature=config.case_feature)


def _as_dataset(windows: list[Window]) -> Dataset:
    columns = {
        "input_ids": [w.input_ids for w in windows],
        "attention_mask": [[1] * len(w.input_ids) for w in windows],
        "labels": [w.labels for w in windows],
    }
    if windows and windows[0].token_type_ids is not None:
        columns["token_type_ids"] = [w.token_type_ids for w in windows]
    return Dataset.from_dict(columns)


def _training_arguments(config: TrainConfig, train_windows: list[Window], evaluate_during: bool,
                        keep_columns: bool = False):
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        # Checkpoints are off; the Trainer still wants a directory of its own.
        output_dir=str(Path(tempfile.gettempdir(), "ner-trainer")),
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.train_batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        num_train_epochs=config.epochs,
        seed=config.seed,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the steps
        lr_scheduler_type=config.lr_scheduler,
        label_smoothing_factor=config.label_smoothing,
        # Fused AdamW updates all parameters in a few kernels, not a loop over tensors: on a GPU
        # fewer launches; on the CPU, measured with MiniLM, a step of it took a tenth as long.
        optim="adamw_torch_fused",
        eval_strategy=config.eval_strategy if evaluate_during else "no",
        eval_steps=config.eval_steps,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=uses_bf16(config),
        # Under torchrun on CPUs, the Trainer's DDP needs gloo (nccl is for GPUs).
        ddp_backend="gloo" if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        # Random batches, as the recipe's: length-grouped ones padded less (1.8x the tokens/s)
        # but cost 0.87 validation F1 points after one epoch of MiniLM, the same over three seeds
        # in fp32 and bf16; bf16 itself cost nothing (bench/training_ablation.py).
        train_sampling_strategy="random",
        dataloader_num_workers=0,
        # Page-locked batches copy to the GPU without blocking; on the CPU there is nothing to copy.
        dataloader_pin_memory=cuda,
        # The teachers' targets are no argument of the model's forward: the Trainer would drop them.
        remove_unused_columns=not keep_columns,
    )


def _compute_metrics(labels: list[str]):
    """``compute_metrics`` for the Trainer: word-level seqeval scores from each window's labels.

    Evaluation windows carry the gold label on the first sub-token of each owned word, so the
    positions with a label are the words. The Trainer's batches need not follow sentence order,
    so each window is scored as a sequence of its own; this equals the final scoring by
    sentence except for sentences too long for one window.
    """

    def compute_metrics(prediction) -> dict:
        gold, predicted = [], []
        for window_predictions, window_labels in zip(prediction.predictions, prediction.label_ids):
            positions = window_labels != IGNORE
            gold.append([labels[i] for i in window_labels[positions]])
            predicted.append([labels[i] for i in window_predictions[positions]])
        scores = score(gold, predicted)
        flat = dict(scores["overall"])
        flat.update({f"f1_{entity}": s["f1"] for entity, s in scores["per_entity"].items()})
        return flat

    return compute_metrics


def _card_name(output_dir: Path) -> tuple[str, str | None]:
    """The name a run's card calls it by and the directory its rebuild command saves to: the
    bundled model is ``default`` and rebuilds in place; a run is its directory's name in runs/."""
    if output_dir.resolve() == models.BUNDLED_DIR.resolve():
        return models.DEFAULT, "assets/model"  # from the repository root, as the README runs it
    return output_dir.name, None


def rescore(run: str | Path, data: DatasetDict) -> dict:
    """Score a saved run again as ``Recognizer`` reads text now (float32, on each split it was
    scored on that ``data`` has) and rewrite its metrics.json and card: for a run saved before a
    change in how models are read. What training reported is kept; ``rescored`` gives the date.
    Each file is replaced whole, so a failure leaves the run as it was."""
    run = Path(run)
    metrics = json.loads((run / "metrics.json").read_text())
    config = TrainConfig.load(run / "train_config.json")
    recognizer = Recognizer(str(run), batch_size=config.eval_batch_size, precision="float32")
    for split in ("validation", "test"):
        if split in metrics and split in data:
            metrics[split] = evaluate(recognizer, data[split])
    metrics["rescored"] = time.strftime("%Y-%m-%d")
    name, rebuilt_in = _card_name(run)
    card = model_card(name, config, metrics, rebuilt_in)
    for path, write in ((run / "metrics.json", lambda p: runs.write_json(p, metrics)),
                        (run / "README.md", lambda p: p.write_text(card))):
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        write(partial)
        os.replace(partial, path)
    return metrics


def _save(trainer, tokenizer, config, data, output_dir: Path, facts: dict, progress,
          half: bool) -> dict:
    """Write the run into a hidden directory, score it from disk, then rename it into place.

    ``facts`` holds what training reported (``training`` and ``history``); the scores are returned.
    """
    staging = runs.staging_dir(output_dir)
    try:
        model = trainer.accelerator.unwrap_model(trainer.model)
        if half:
            model = model.to(torch.float16)  # training is over; scores below read the saved copy
        # save_pretrained, not trainer.save_model: that also pickles the TrainingArguments.
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        (staging / "train_config.json").write_text(config.to_json())
        scores = {}
        if not progress.stopped:
            # Scored in float32 whatever the machine, so a run's figures compare across machines.
            recognizer = Recognizer(str(staging), batch_size=config.eval_batch_size,
                                    precision="float32")
            for split in ("validation", "test"):
                if split in data:
                    scores[split] = evaluate(recognizer, data[split])
        elif progress.history and "eval" in progress.history[-1]:
            scores["last_evaluation"] = progress.history[-1]["eval"]
        metrics = {**scores, **facts}
        runs.write_json(staging / "metrics.json", metrics)
        name, rebuilt_in = _card_name(output_dir)
        (staging / "README.md").write_text(model_card(name, config, metrics, rebuilt_in))
        runs.publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return scores

