"""``python -m ner_core train | evaluate | predict | push | convert``: the engine from the command
line.

Bad input (``UserError``, or a file that cannot be opened) prints one line on stderr and exits
with code 2; a bug is an ordinary traceback.
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

from . import utf8
from .cli_convert import (
    convert_parser,
    data_arguments,
    data_flags,
    data_options,
    print_report,
    run_convert,
)
from .cli_evaluate import evaluate_parser, run_evaluate
from .config import INFERENCE_PRECISIONS, PRESETS, TrainConfig, field_types
from .errors import UserError

EXIT_BAD_INPUT = 2
PREDICT_CHUNK_CHARS = 20_000  # characters of --input recognized together (batches stay full)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr, like every other bad input."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def precision_argument(parser) -> None:
    parser.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="auto",
                        help="how the model computes: auto (the default) is bfloat16 where the "
                             "device computes it natively (GPUs, CPUs with AVX-512 BF16 or AMX: "
                             "about twice float32's speed), else float32; int8 is faster on any "
                             "CPU; both score a little differently from float32")


def _train_parser(commands) -> None:
    parser = commands.add_parser(
        "train", help="fine-tune a model on labelled data",
        description="Fine-tune a token-classification model. Unset hyperparameters come from the "
                    "preset ('recipe': the classic DistilBERT recipe; 'short': about a minute of "
                    "the offline MiniLM encoder on 2 CPU cores; 'bundled': the settings of the "
                    "bundled default model; 'continue': continued fine-tuning of a trained model, "
                    "the preset when --base-model names one). A trained base model also passes on "
                    "its input settings (case feature, document context, context tokens, max "
                    "length) unless they are given, and keeps its labels, adding new ones.")
    data_arguments(parser)
    parser.add_argument("--output", required=True, help="directory to save the run into")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="default: 'continue' for a trained --base-model, else 'recipe'")
    parser.add_argument("--replay", help="with a trained --base-model: data of the kind it was "
                        "trained on (any format, found from its ending and content), mixed in at "
                        "--replay-ratio")
    parser.add_argument("--teacher", action="append", dest="teachers", default=[],
                        help="a trained model whose predictions to learn from (repeat it for "
                        "several: their predictions are averaged), with --distillation its share "
                        "of the loss")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run at --output")
    parser.add_argument("--half", action="store_true",
                        help="save the weights in float16: half the size, loaded as float32")
    kinds = field_types()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_ = f"{f.metadata['help']} (recipe: {f.default})"
        names = [flag, "--batch-size"] if f.name == "train_batch_size" else [flag]
        if kinds[f.name] is bool:
            parser.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_)
        else:
            parser.add_argument(*names, dest=f.name, type=kinds[f.name], default=None, help=help_)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ner_core",
                                     description="Fine-tune, evaluate and apply NER models.")
    commands = parser.add_subparsers(dest="command", required=True)
    _train_parser(commands)

    evaluate_parser(commands, precision_argument)

    predict = commands.add_parser("predict", help="print the entities of a text as JSON",
                                  description="Entities as JSON: a list for --text, one list per "
                                              "line for --input. With --output, a whole file of "
                                              "texts (.txt, .jsonl, .csv, .tsv) is streamed into "
                                              "a .jsonl or .csv file; under torchrun the "
                                              "processes share its records.")
    predict.add_argument("--model", required=True, help="'default', a run, a directory or a Hub id")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text to read")
    source.add_argument("--input", help="a UTF-8 file: one text per line (.txt), or with --output "
                                        "also .jsonl, .csv or .tsv")
    predict.add_argument("--threshold", type=float, default=0.0, help="drop entities scored below this")
    predict.add_argument("--output", help="write each record with its entities to this file, "
                                          "complete or not at all")
    predict.add_argument("--format", choices=["jsonl", "csv"],
                         help="of --output: each record plus 'entities' (jsonl) or a row per "
                              "entity (csv); default: from its extension")
    predict.add_argument("--text-field", help="the .jsonl field or .csv/.tsv column holding the "
                                              "text (default: text)")
    predict.add_argument("--batch-size", type=int,
                         help="texts read and recognized together with --output (default: "
                              "2048; under torchrun, each process takes such a chunk in turn)")
    precision_argument(predict)
    _push_parser(commands)
    convert_parser(commands)
    return parser


def _push_parser(commands) -> None:
    push = commands.add_parser(
        "push", help="upload a saved run to a Hugging Face Hub model repository",
        description="Upload a saved run (weights, tokenizer, configs, scores, model card) to a Hub "
                    "model repository, created when missing. The token comes from HF_TOKEN or a "
                    "saved login, and must have write access.")
    push.add_argument("run", help="a saved run's name or directory")
    push.add_argument("--repo", required=True, help="the Hub repository, owner/name")
    visibility = push.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="private", action="store_true", default=True,
                            help="create the repository private (the default)")
    visibility.add_argument("--public", dest="private", action="store_false",
                            help="create the repository public; an existing one keeps its visibility")


def _quiet_libraries() -> None:
    import datasets
    import transformers

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def run_train(args) -> None:
    from tqdm import tqdm

    from . import distill
    from .data import load_labelled
    from .plan import plan_fine_tune, sized_for_data
    from .training import device_description, fine_tune

    # Every setting is checked (max length against the model too) before the data is read and
    # anything is written.
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if getattr(args, f.name) is not None}  # a flag left out is not given
    plan = plan_fine_tune(given, args.preset)
    config = plan.config
    distill.check(args.teachers, config.distillation, config.label_smoothing)
    from . import models, runs

    output = Path(args.output)
    if output.resolve().parent == runs.runs_dir().resolve():
        models.check_run_name(output.name)  # a run there is named like a model: never a model's name
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} already exists; pass --overwrite to replace it")
    main_process = int(os.environ.get("RANK", "0")) == 0
    data, data_report = load_labelled(args.data, **data_options(args))
    replay, replay_report = load_labelled(args.replay) if args.replay else (None, None)
    if "train" in data:  # else fine_tune refuses it, naming the splits found
        plan = sized_for_data(plan, given, len(data["train"]), replay=replay is not None)
        config = plan.config
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
            # What reading the data changed, once every check has passed: a refusal stays one line.
            for report in (data_report, replay_report):
                if report is not None:
                    print_report(report, sys.stderr)
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
                           half=args.half, data_source=args.data or os.environ.get("NER_DATA_DIR"),
                           replay=replay, replay_source=args.replay, base=plan.base,
                           data_report=data_report, replay_report=replay_report,
                           data_flags=data_flags(args), preset=plan.preset,
                           teachers=args.teachers)
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


def run_predict(args) -> None:
    from tqdm import tqdm

    from .inference import MAX_TEXT_CHARS, Recognizer

    if args.output is not None:
        _predict_file(args)
        return
    for flag, value in (("--format", args.format), ("--text-field", args.text_field),
                        ("--batch-size", args.batch_size)):
        if value is not None:
            raise UserError(f"{flag} applies to --output, found it without --output")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("under torchrun, predict expected --input and --output, found no --output")
    if args.input is None:
        utf8.check_text(args.text, "--text", from_bytes=True)
        texts = [args.text]
    else:
        texts = _input_lines(Path(args.input), MAX_TEXT_CHARS)
    recognizer = Recognizer(args.model, precision=args.precision)
    said = f"{args.model} computes in {recognizer.precision_said}"
    if args.input is None:
        print(json.dumps(recognizer.recognize(args.text, args.threshold), ensure_ascii=False))
        print(said, file=sys.stderr)
        return
    # Lines (all read and checked above) are recognized a chunk at a time and printed as they are
    # done: the model's memory stays flat and the output starts at once, however long the file.
    with tqdm(total=len(texts), unit="line", disable=None) as bar:
        for chunk in _chunks(texts, PREDICT_CHUNK_CHARS):
            for entities in recognizer.recognize_batch(chunk, args.threshold):
                print(json.dumps(entities, ensure_ascii=False))
            bar.update(len(chunk))
    print(said, file=sys.stderr)


def _predict_file(args) -> None:
    """``predict --input FILE --output FILE``, in one process or in each of torchrun's."""
    from tqdm import tqdm

    from .batch import BATCH_SIZE, describe, recognize_file, torchrun_ranks
    from .inference import Recognizer
    from .records import TEXT_FIELD, input_format

    if args.input is None:
        raise UserError("--output expected --input FILE, found --text")
    if args.text_field is not None and input_format(args.input) == "txt":
        raise UserError(f"--text-field expected a .jsonl, .csv or .tsv input, found {args.input}, "
                        "a text per line")

    def terminate(signum, frame) -> None:
        raise KeyboardInterrupt  # torchrun stops its processes with SIGTERM: clean up as for Ctrl-C

    previous_handler = signal.signal(signal.SIGTERM, terminate)
    try:
        with torchrun_ranks() as ranks:
            recognizer = Recognizer(args.model, precision=args.precision, device=ranks.device)
            with tqdm(unit="text", disable=None if ranks.rank == 0 else True) as bar:
                def on_progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                summary = recognize_file(
                    recognizer, args.input, args.output, args.format,
                    TEXT_FIELD if args.text_field is None else args.text_field,
                    batch_size=BATCH_SIZE if args.batch_size is None else args.batch_size,
                    threshold=args.threshold, on_progress=on_progress, ranks=ranks)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    if summary is not None:
        print(describe(summary))
        print(f"{args.model} computed in {recognizer.precision_said}", file=sys.stderr)


def run_push(args) -> None:
    from .hub import push_run

    print(push_run(args.run, args.repo, private=args.private))


def _input_lines(path: Path, max_chars: int) -> list[str]:
    """The lines of ``--input``, each checked against the recognizer's limit before any work."""
    from .data import read_utf8

    text = read_utf8(path)
    # Lines end at '\n' only: str.splitlines() would also cut at U+2028 or a form feed inside a
    # line, and print more lists than the file has lines.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if len(line) > max_chars:
            raise UserError(f"{path}:{number}: expected at most {max_chars:,} characters on a "
                            f"line, found {len(line):,}; break the text into lines (paragraphs)")
    return lines


def _chunks(texts: list[str], chars: int):
    """``texts`` in consecutive groups of about ``chars`` characters (at least one text each)."""
    chunk, size = [], 0
    for text in texts:
        chunk.append(text)
        size += len(text)
        if size >= chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    _quiet_libraries()
    command = {"train": run_train, "evaluate": run_evaluate, "predict": run_predict,
               "push": run_push, "convert": run_convert}[args.command]
    try:
        command(args)
    except UserError as error:  # any other exception is a bug: its traceback is printed
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("aborted; nothing was saved", file=sys.stderr)
        return 130
    return 0
