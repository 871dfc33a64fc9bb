"""Fine-tuning benchmark: ``fine_tune`` against the recipe users write, and on a GPU.

CPU: our ``fine_tune`` against the Hugging Face token-classification tutorial (a plain ``Trainer``
with default arguments: random batches, fp32) on the offline MiniLM encoder. Both start from the
same weights with the same hyperparameters, one epoch, in one process with the same threads; the
recipe runs first. Figures: real (unpadded) training tokens per second, wall time of the epoch with
the preprocessing each needs, and validation F1 (word level, seqeval).

GPU, when there is one: the recipe's shape (DistilBERT randomly initialised from the
distilbert-base-uncased configuration, 3 epochs, large length-grouped batches, one validation pass)
and a real MiniLM fine-tune. ``--gpu-shape-on-cpu`` runs that configuration on the CPU on a subset,
to check the code without a GPU.

    python bench/training.py [--data ../shared/data/conll2003] [--max-train-sentences N]
                             [--output bench/results/training.json]
    python bench/training.py --gpu-shape-on-cpu --max-train-sentences 64
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from common import ROOT, default_data, machine  # first: puts the repository on sys.path
os.environ["HF_HUB_OFFLINE"] = "1"  # every model here is local: never wait on the Hub
if {"--skip-gpu", "--gpu-shape-on-cpu"} & set(sys.argv):
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CPU figures: hide the GPU before torch looks for it

import datasets  # noqa: E402
import torch  # noqa: E402
from datasets import DatasetDict  # noqa: E402
from transformers import (DataCollatorForTokenClassification, DistilBertConfig,  # noqa: E402
                          DistilBertForTokenClassification, PrinterCallback, Trainer,
                          TrainerCallback, TrainingArguments, set_seed)
from transformers.utils import logging as hf_logging  # noqa: E402

from ner_core import TrainConfig, fine_tune, load_data, models  # noqa: E402
from ner_core.features import IGNORE, windows_for_sentences  # noqa: E402
from ner_core.metrics import score  # noqa: E402
from ner_core.training import uses_bf16  # noqa: E402

SEED = 42
# The CPU comparison's hyperparameters; the recipe reads its own from here too.
CPU_RUN = TrainConfig(base_model=models.ENCODER, learning_rate=1e-4, train_batch_size=16,
                      epochs=1.0, weight_decay=0.01, warmup_ratio=0.0, lr_scheduler="linear",
                      eval_strategy="no", eval_batch_size=64, seed=SEED)
# The recipe (2e-5 at batch 16) at GPU scale: batches of 256, the learning rate scaled linearly,
# and a short warmup so a randomly initialised model survives that rate.
GPU_SHAPE = dict(learning_rate=2e-5 * 256 / 16, train_batch_size=256, eval_batch_size=512,
                 epochs=3.0, warmup_ratio=0.1, eval_strategy="no", seed=SEED)
GPU_MINILM = TrainConfig(base_model=models.ENCODER, learning_rate=1e-4, train_batch_size=32,
                         eval_batch_size=512, epochs=3.0, eval_strategy="no", seed=SEED)
# distilbert-base-uncased's configuration, written out because the Hub is out of reach.
DISTILBERT_BASE_UNCASED = dict(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                               max_position_embeddings=512, dropout=0.1, attention_dropout=0.1,
                               activation="gelu", sinusoidal_pos_embds=False, qa_dropout=0.1,
                               seq_classif_dropout=0.2)
H200_BF16_PEAK = 989e12  # dense bf16 FLOP/s
PEAK_FORMULA = ("peak fraction = 6 x parameters (all, embeddings included) x real tokens "
                "/ train seconds / 989e12 (H200 dense bf16 FLOP/s)")
TARGET_RATIO, TARGET_GPU_SECONDS = 1.5, 30.0


class StepClock(TrainerCallback):
    """When the last training step ended, and a progress line every ``every`` steps."""

    def __init__(self, name: str, every: int = 100):
        self.name, self.every, self.last = name, every, None

    def step(self, step: int, total: int) -> None:
        self.last = time.perf_counter()
        if step % self.every == 0 or step == total:
            print(f"  {self.name}: step {step}/{total}", flush=True)

    def on_step_end(self, args, state, control, **kwargs):  # the recipe's Trainer
        self.step(state.global_step, state.max_steps)

    def on_event(self, progress) -> None:  # fine_tune's on_event
        if progress.kind == "step":
            self.step(progress.step, progress.total_steps)


def tokenize_and_align_labels(tokenizer):
    """The tutorial's preprocessing: the tag on each word's first sub-token, -100 elsewhere."""

    def tokenize(examples):
        tokenized = tokenizer(examples["tokens"], truncation=True, is_split_into_words=True)
        labels = []
        for i, tags in enumerate(examples["ner_tags"]):
            previous, ids = None, []
            for word in tokenized.word_ids(batch_index=i):
                ids.append(-100 if word is None or word == previous else tags[word])
                previous = word
            labels.append(ids)
        tokenized["labels"] = labels
        return tokenized

    return tokenize


def run_recipe(config: TrainConfig, data: DatasetDict, labels: list[str], scratch: Path) -> dict:
    """The tutorial's fine-tune from our starting weights, timed like ours; F1 by ``predict``."""
    clock = StepClock("recipe")
    started = time.perf_counter()
    set_seed(config.seed)  # as fine_tune does before loading: the same new head
    model, tokenizer = models.load_for_training(models.resolve(config.base_model), labels)
    tokenized = DatasetDict({split: data[split] for split in ("train", "validation")}).map(
        tokenize_and_align_labels(tokenizer), batched=True)
    args = TrainingArguments(
        output_dir=str(scratch / "recipe"), learning_rate=config.learning_rate,
        per_device_train_batch_size=config.train_batch_size, num_train_epochs=config.epochs,
        weight_decay=config.weight_decay, seed=config.seed,
        # Not training work, so not measured: the default checkpoint at step 500 (with a pickled
        # optimizer) and the progress bar; ours has neither.
        save_strategy="no", disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=tokenized["train"],
                      eval_dataset=tokenized["validation"], processing_class=tokenizer,
                      data_collator=DataCollatorForTokenClassification(tokenizer),
                      callbacks=[clock])
    trainer.remove_callback(PrinterCallback)
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started
    epoch_seconds = clock.last - started
    prediction = trainer.predict(tokenized["validation"])
    tokens = sum(len(ids) for ids in tokenized["train"]["input_ids"]) * config.epochs
    return figures(train_seconds, epoch_seconds, epoch_seconds, tokens, len(data["train"]),
                   config.epochs, word_f1(prediction, labels), "fp32")


def word_f1(prediction, labels: list[str]) -> float:
    """seqeval F1 over the words (first sub-tokens), as the tutorial's ``compute_metrics``."""
    gold, predicted = [], []
    for logits, ids in zip(prediction.predictions, prediction.label_ids):
        words = ids != IGNORE
        gold.append([labels[i] for i in ids[words]])
        predicted.append([labels[i] for i in logits.argmax(-1)[words]])
    return score(gold, predicted)["overall"]["f1"]


def run_ours(config: TrainConfig, data: DatasetDict, output: Path, name: str) -> dict:
    """``fine_tune`` timed: the epoch ends at its last step; the full wall includes saving the run
    and scoring the validation split from it."""
    clock = StepClock(name, every=100 if config.train_batch_size < 64 else 10)
    started = time.perf_counter()
    result = fine_tune(config, data, output, on_event=clock.on_event)
    wall = time.perf_counter() - started
    return figures(result.seconds, clock.last - started, wall, real_tokens(config, data["train"]),
                   len(data["train"]), config.epochs,
                   result.metrics["validation"]["overall"]["f1"],
                   "bf16" if uses_bf16(config) else "fp32")


def real_tokens(config: TrainConfig, split) -> float:
    """Non-padding tokens ``fine_tune`` trains on over all epochs (its windows, counted again)."""
    tokenizer = models.load_tokenizer(models.resolve(config.base_model))
    windows = windows_for_sentences(tokenizer, list(split["tokens"]), list(split["doc_id"]),
                                    config.max_length, config.document_context,
                                    config.context_tokens, case_feature=config.case_feature)
    return sum(len(w.input_ids) for w in windows) * config.epochs


def figures(train_seconds, epoch_seconds, wall_seconds, tokens, sentences, epochs, f1,
            precision) -> dict:
    return {"train_seconds": round(train_seconds, 2), "epoch_wall_seconds": round(epoch_seconds, 2),
            "wall_seconds": round(wall_seconds, 2), "real_tokens": int(tokens),
            "tokens_per_s": round(tokens / train_seconds, 1),
            "samples_per_s": round(sentences * epochs / train_seconds, 1),
            "validation_f1": round(f1, 4), "precision": precision}


def cpu_comparison(data: DatasetDict, scratch: Path) -> dict:
    labels = data["train"].features["ner_tags"].feature.names
    print(f"CPU: {len(data['train']):,} training sentences, one epoch, "
          f"{torch.get_num_threads()} torch threads; the recipe runs first, then ours", flush=True)
    recipe = run_recipe(CPU_RUN, data, labels, scratch)
    ours = run_ours(CPU_RUN, data, scratch / "ours", "ours")
    return {"order": "recipe first, then ours", "torch_threads": torch.get_num_threads(),
            "hyperparameters": asdict(CPU_RUN), "recipe": recipe, "ours": ours}


def cpu_comparison_without_gpu(args) -> dict:
    """The CPU comparison in a child process that cannot see the GPU (fine_tune would take it)."""
    with tempfile.TemporaryDirectory(prefix="ner-bench-cpu-") as scratch:
        output = Path(scratch) / "cpu.json"
        command = [sys.executable, __file__, "--skip-gpu", "--data", str(args.data),
                   "--output", str(output)]
        for flag in ("max_train_sentences", "max_eval_sentences"):
            if getattr(args, flag) is not None:
                command += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
        subprocess.run(command, check=True)
        return json.loads(output.read_text())["cpu"]


def save_random_distilbert(directory: Path, labels: list[str]) -> int:
    """DistilBERT with random weights and MiniLM's tokenizer (the same uncased vocabulary), saved
    as safetensors for ``fine_tune``; returns its parameter count."""
    set_seed(SEED)
    tokenizer = models.load_tokenizer(models.resolve(models.ENCODER))
    if len(tokenizer) != DISTILBERT_BASE_UNCASED["vocab_size"]:
        raise RuntimeError(f"expected the {DISTILBERT_BASE_UNCASED['vocab_size']}-token uncased "
                           f"vocabulary, found {len(tokenizer)} tokens")
    config = DistilBertConfig(**DISTILBERT_BASE_UNCASED, num_labels=len(labels))
    model = DistilBertForTokenClassification(config)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return sum(p.numel() for p in model.parameters())


def gpu_figures(data: DatasetDict, scratch: Path) -> dict:
    """The recipe's shape and a MiniLM fine-tune, each with one validation pass."""
    labels = data["train"].features["ner_tags"].feature.names
    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    if cuda:
        torch.zeros(1, device="cuda")  # the CUDA context, which a running app already has
    print(f"GPU path on {name}: {len(data['train']):,} training sentences x 3 epochs "
          f"+ one validation pass", flush=True)
    base = scratch / "distilbert-random"
    parameters = {"shape": save_random_distilbert(base, labels)}
    parameters["minilm"] = sum(p.numel() for p in models.load_for_training(
        models.resolve(models.ENCODER), labels)[0].parameters())
    shape = run_ours(TrainConfig(base_model=str(base), **GPU_SHAPE), data, scratch / "shape",
                     "DistilBERT shape")
    minilm = run_ours(GPU_MINILM, data, scratch / "minilm", "MiniLM")
    for run, key in ((shape, "shape"), (minilm, "minilm")):
        run["parameters"] = parameters[key]
        run["peak_fraction"] = (round(6 * parameters[key] * run["tokens_per_s"] / H200_BF16_PEAK, 4)
                                if cuda else None)
    return {"name": name, "wall_seconds": shape["wall_seconds"],
            "samples_per_s": shape["samples_per_s"], "peak_fraction": shape["peak_fraction"],
            "minilm_validation_f1": minilm["validation_f1"], "peak_formula": PEAK_FORMULA,
            "shape": {**shape, "hyperparameters": GPU_SHAPE},
            "minilm": {**minilm, "hyperparameters": asdict(GPU_MINILM)}}


def train_and_validation(data: DatasetDict, train: int | None,
                         validation: int | None) -> DatasetDict:
    """The two splits the benchmark reads (no test: no figure needs it), optionally cut down to
    ``train`` random training sentences and the first ``validation`` validation sentences."""
    missing = [split for split in ("train", "validation") if split not in data]
    if missing:
        raise ValueError(f"expected train and validation splits, found {', '.join(data)}")
    return DatasetDict({
        "train": data["train"].shuffle(seed=SEED).select(range(train))
        if train is not None and train < len(data["train"]) else data["train"],
        "validation": data["validation"].select(range(validation))
        if validation is not None and validation < len(data["validation"]) else data["validation"]})


def print_table(title: str, header: tuple, rows: list[tuple]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, *rows]:
        print("  " + "  ".join(str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))))


def print_cpu(cpu: dict) -> None:
    recipe, ours = cpu["recipe"], cpu["ours"]
    print_table(f"CPU, {cpu['torch_threads']} torch threads ({cpu['order']})",
                ("figure", "recipe", "ours", "ratio", "target"), [
        ("real tokens / s (training)", f"{recipe['tokens_per_s']:,.0f}",
         f"{ours['tokens_per_s']:,.0f}", f"{ours['tokens_per_s'] / recipe['tokens_per_s']:.2f}x",
         f">= {TARGET_RATIO}x"),
        ("epoch wall s (with preprocessing)", f"{recipe['epoch_wall_seconds']:.1f}",
         f"{ours['epoch_wall_seconds']:.1f}",
         f"{recipe['epoch_wall_seconds'] / ours['epoch_wall_seconds']:.2f}x",
         f">= {TARGET_RATIO}x"),
        ("training s", f"{recipe['train_seconds']:.1f}", f"{ours['train_seconds']:.1f}", "", ""),
        ("real tokens", f"{recipe['real_tokens']:,}", f"{ours['real_tokens']:,}", "", ""),
        ("validation F1", f"{recipe['validation_f1']:.4f}", f"{ours['validation_f1']:.4f}", "", ""),
        ("precision", recipe["precision"], ours["precision"], "", "")])


def print_gpu(gpu: dict) -> None:
    peak = (lambda run: "-" if run["peak_fraction"] is None else f"{run['peak_fraction']:.1%}")
    print_table(f"GPU path on {gpu['name']}",
                ("run", "wall s", "train s", "samples/s", "peak", "validation F1"), [
        (name, f"{run['wall_seconds']:.1f}", f"{run['train_seconds']:.1f}",
         f"{run['samples_per_s']:,.0f}", peak(run), f"{run['validation_f1']:.4f}")
        for name, run in (("DistilBERT shape (random init)", gpu["shape"]),
                          ("MiniLM", gpu["minilm"]))])
    print(f"  target: DistilBERT shape wall <= {TARGET_GPU_SECONDS:.0f} s; {PEAK_FORMULA}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_data(), help="CoNLL-2003 directory")
    parser.add_argument("--max-train-sentences", type=int, help="train on this many random "
                        "sentences (a quick check; the figures then are not the benchmark's)")
    parser.add_argument("--max-eval-sentences", type=int, help="score only the first this many "
                        "validation sentences; with --gpu-shape-on-cpu, by default as many as "
                        "--max-train-sentences")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "training.json"))
    parser.add_argument("--skip-cpu", action="store_true", help="measure only the GPU figures")
    parser.add_argument("--skip-gpu", action="store_true", help="measure only the CPU comparison")
    parser.add_argument("--gpu-shape-on-cpu", action="store_true", help="run the GPU path's "
                        "configuration on the CPU on a subset (needs --max-train-sentences)")
    args = parser.parse_args(argv)
    for flag in ("max_train_sentences", "max_eval_sentences"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, found {value}")
    if args.gpu_shape_on_cpu and args.max_train_sentences is None:
        parser.error("--gpu-shape-on-cpu needs --max-train-sentences N (3 epochs of DistilBERT "
                     "on the full data take hours on a CPU)")
    if args.gpu_shape_on_cpu and args.max_eval_sentences is None:
        args.max_eval_sentences = args.max_train_sentences
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    # The recipe's default pin_memory=True warns on a machine without a GPU; it changes nothing.
    warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true.*")
    try:
        data = train_and_validation(load_data(args.data), args.max_train_sentences,
                                    args.max_eval_sentences)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = {"tokens_per_s_ratio": None, "wall_time_ratio": None, "validation_f1_ours": None,
               "validation_f1_recipe": None, "cpu_threads": torch.get_num_threads(), "gpu": None,
               "machine": machine(), "data": str(args.data),
               "sentences": {split: len(rows) for split, rows in data.items()},
               "subset": any(n is not None for n in (args.max_train_sentences,
                                                     args.max_eval_sentences))}
    with tempfile.TemporaryDirectory(prefix="ner-bench-") as scratch:
        scratch = Path(scratch)
        cpu = None
        if not (args.skip_cpu or args.gpu_shape_on_cpu):
            cpu = cpu_comparison_without_gpu(args) if torch.cuda.is_available() \
                else cpu_comparison(data, scratch)
        if cpu is not None:
            recipe, ours = cpu["recipe"], cpu["ours"]
            results.update(
                tokens_per_s_ratio=round(ours["tokens_per_s"] / recipe["tokens_per_s"], 3),
                wall_time_ratio=round(recipe["epoch_wall_seconds"] / ours["epoch_wall_seconds"], 3),
                validation_f1_ours=ours["validation_f1"],
                validation_f1_recipe=recipe["validation_f1"],
                cpu_threads=cpu["torch_threads"], cpu=cpu)
        if args.gpu_shape_on_cpu:
            results["gpu_shape_on_cpu"] = gpu_figures(data, scratch)
        elif torch.cuda.is_available() and not args.skip_gpu:
            results["gpu"] = gpu_figures(data, scratch)
    if cpu is not None:
        print_cpu(cpu)
    if results.get("gpu_shape_on_cpu"):
        print_gpu(results["gpu_shape_on_cpu"])
        print("  (the GPU path's configuration run on the CPU to check the code: not GPU figures)")
    if results["gpu"]:
        print_gpu(results["gpu"])
    elif not args.skip_gpu:
        print("\nGPU: none here (torch.cuda.is_available() is False); the GPU numbers are still "
              "to be measured.")
    if results["subset"]:
        print(f"\nsubset run ({results['sentences']}): a check of the code, not the benchmark")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
