"""``python -m ner_core train | evaluate | predict``: the engine from the command line.

Bad input prints one line on stderr and exits with code 2; a bug is an ordinary traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from dataclasses import fields
from pathlib import Path

from .config import PRESETS, TrainConfig, preset

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr, like every other bad input."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def _train_parser(commands) -> None:
    parser = commands.add_parser(
        "train", help="fine-tune a model on CoNLL data",
        description="Fine-tune a token-classification model. Unset hyperparameters come from the "
                    "preset ('recipe': the classic DistilBERT recipe; 'short': about a minute of "
                    "the offline MiniLM encoder on 2 CPU cores).")
    parser.add_argument("--data", help="a directory of CoNLL files, one CoNLL file, or 'conll2003' "
                        "(the Hub); default $NER_DATA_DIR")
    parser.add_argument("--output", required=True, help="directory to save the run into")
    parser.add_argument("--preset", default="recipe", choices=sorted(PRESETS))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run at --output")
    parser.add_argument("--half", action="store_true",
                        help="save the weights in float16: half the size, loaded as float32")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_ = f"{f.metadata['help']} (recipe: {f.default})"
        names = [flag, "--batch-size"] if f.name == "train_batch_size" else [flag]
        if f.type in ("bool", bool):
            parser.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_)
        else:
            kind = {"float": float, "int": int, "int | None": int}.get(str(f.type), str)
            parser.add_argument(*names, dest=f.name, type=kind, default=None, help=help_)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ner_core",
                                     description="Fine-tune, evaluate and apply NER models.")
    commands = parser.add_subparsers(dest="command", required=True)
    _train_parser(commands)

    evaluate = commands.add_parser("evaluate", help="score a model on labelled data",
                                   description="Per-entity and overall precision, recall and F1 "
                                               "(seqeval, word level).")
    evaluate.add_argument("--model", required=True, help="'default', 'minilm', a run, a directory or a Hub id")
    evaluate.add_argument("--data", help="a directory of CoNLL files, one CoNLL file, or 'conll2003'; "
                          "default $NER_DATA_DIR")
    evaluate.add_argument("--split", choices=["train", "validation", "test"],
                          help="default: validation")
    evaluate.add_argument("--mode", choices=["default", "strict"], default="default",
                          help="default: conlleval-compatible; strict: IOB2 entities must start with B-")
    evaluate.add_argument("--output", help="also write the scores to this JSON file")

    predict = commands.add_parser("predict", help="print the entities of a text as JSON",
                                  description="Entities as JSON: a list for --text, one list per "
                                              "line for --input.")
    predict.add_argument("--model", required=True, help="'default', a run, a directory or a Hub id")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text to read")
    source.add_argument("--input", help="a UTF-8 file, one text per line")
    predict.add_argument("--threshold", type=float, default=0.0, help="drop entities scored below this")
    return parser


def _quiet_libraries() -> None:
    import datasets
    import transformers

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def run_train(args) -> None:
    from tqdm import tqdm

    from .data import load_data
    from .training import device_description, fine_tune

    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name) is not None}
    config = preset(args.preset, **overrides)
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise ValueError(f"{output} already exists; pass --overwrite to replace it")
    data = load_data(args.data)
    main_process = int(os.environ.get("RANK", "0")) == 0
    stop = []

    def request_stop(signum, frame) -> None:
        if stop:
            raise KeyboardInterrupt
        stop.append(True)
        print("\nstopping after this step (Ctrl-C again to abort without saving)", file=sys.stderr)

    previous_handler = signal.signal(signal.SIGINT, request_stop)
    bars = []  # created at the first step, once the model and settings have passed their checks

    def on_event(progress) -> None:
        if not bars:
            print(f"fine-tuning {config.base_model} on {device_description(config)}", file=sys.stderr)
            bars.append(tqdm(total=progress.total_steps, unit="step", dynamic_ncols=True))
        bar = bars[0]
        bar.total = progress.total_steps
        bar.n = progress.step
        postfix = {"epoch": f"{progress.epoch:.2f}"}
        if progress.loss is not None:
            postfix["loss"] = f"{progress.loss:.4f}"
        if progress.eval_metrics and "f1" in progress.eval_metrics:
            postfix["val_f1"] = f"{progress.eval_metrics['f1']:.4f}"
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    try:
        result = fine_tune(config, data, output, on_event=on_event if main_process else None,
                           should_stop=lambda: bool(stop), overwrite=args.overwrite,
                           half=args.half, data_source=args.data or os.environ.get("NER_DATA_DIR"))
    finally:
        for bar in bars:
            bar.close()
        signal.signal(signal.SIGINT, previous_handler)
        _end_distributed()
    if not main_process:
        return
    kept = (f"stopped at step {result.steps} of {result.total_steps}; the weights so far are saved"
            if result.stopped_early else f"{result.steps} steps")
    print(f"saved {output} ({kept}, {result.seconds:.0f} s)")
    for split in ("validation", "test"):
        if split in result.metrics:
            overall = result.metrics[split]["overall"]
            print(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in overall.items()))


def _end_distributed() -> None:
    """Under torchrun, close the process group the Trainer opened before the process exits."""
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def run_evaluate(args) -> None:
    from .data import load_data
    from .evaluation import evaluate, pick_split
    from .inference import Recognizer
    from .metrics import per_entity_frame

    data = load_data(args.data)
    split, dataset = pick_split(data, args.split)
    recognizer = Recognizer(args.model)
    result = evaluate(recognizer, dataset, mode=args.mode)
    result.update(model=args.model, data=str(args.data or os.environ.get("NER_DATA_DIR") or "conll2003"),
                  split=split)
    print(per_entity_frame(result["per_entity"]).to_string(float_format=lambda v: f"{v:.4f}"))
    overall = result["overall"]
    print(f"overall ({split}, {result['n_sentences']} sentences, {args.mode} mode): "
          + "  ".join(f"{k} {v:.4f}" for k, v in overall.items()))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


def run_predict(args) -> None:
    from .data import read_utf8
    from .inference import Recognizer

    if args.input is not None:
        texts = read_utf8(Path(args.input)).splitlines()
    recognizer = Recognizer(args.model)
    if args.input is None:
        print(json.dumps(recognizer.recognize(args.text, args.threshold), ensure_ascii=False))
    else:
        for entities in recognizer.recognize_batch(texts, args.threshold):
            print(json.dumps(entities, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    _quiet_libraries()
    command = {"train": run_train, "evaluate": run_evaluate, "predict": run_predict}[args.command]
    try:
        command(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("aborted; nothing was saved", file=sys.stderr)
        return 130
    return 0
