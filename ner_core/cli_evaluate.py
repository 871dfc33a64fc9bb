"""``python -m ner_core evaluate``: a model's scores on labelled data in any format, each F1 with
its interval, the partial-match schemes and the confused types, printed and as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .cli_convert import data_arguments, data_options, print_report


def evaluate_parser(commands, precision_argument) -> None:
    evaluate = commands.add_parser("evaluate", help="score a model on labelled data",
                                   description="Per-entity and overall precision, recall and F1 "
                                               "(seqeval, word level), each F1 with a bootstrap "
                                               "interval, the SemEval-2013 partial-match schemes "
                                               "and the confusion of types.")
    evaluate.add_argument("--model", required=True,
                          help="'default', 'minilm', a run, a directory or a Hub id")
    data_arguments(evaluate)
    evaluate.add_argument("--split", choices=["train", "validation", "test"],
                          help="default: validation")
    evaluate.add_argument("--mode", choices=["default", "strict"], default="default",
                          help="default: conlleval-compatible; strict: IOB2 entities must start "
                               "with B-")
    evaluate.add_argument("--decoding", choices=["iob2", "per-word"], default="iob2",
                          help="how tags are read from the probabilities: iob2 (default), the "
                               "most probable sequence IOB2 allows; per-word, each word's most "
                               "probable tag")
    evaluate.add_argument("--output", help="also write the scores to this JSON file")
    precision_argument(evaluate)


def run_evaluate(args) -> None:
    from .data import load_labelled
    from .evaluation import evaluate, pick_split
    from .inference import Recognizer
    from .metrics import per_entity_frame
    from .partial import confusion_frame, partial_frame
    from .significance import intervals_frame

    data, data_report = load_labelled(args.data, **data_options(args))
    split, dataset = pick_split(data, args.split)
    recognizer = Recognizer(args.model, precision=args.precision, decoding=args.decoding)
    result = evaluate(recognizer, dataset, mode=args.mode)
    result.update(model=args.model, precision=recognizer.precision, decoding=args.decoding,
                  data=str(args.data or os.environ.get("NER_DATA_DIR") or "conll2003"),
                  split=split, data_report=data_report.as_dict())
    print_report(data_report)
    print(f"{args.model} computes in {recognizer.precision_said}; tags decoded {args.decoding}")
    four = "{:.4f}".format
    print(per_entity_frame(result["per_entity"]).to_string(float_format=four))
    overall = result["overall"]
    print(f"overall ({split}, {result['n_sentences']} sentences, {args.mode} mode): "
          + "  ".join(f"{k} {v:.4f}" for k, v in overall.items()))
    intervals = result["intervals"]
    print(f"\nF1 with {intervals['level']:.0%} bootstrap intervals "
          f"({intervals['resamples']} resamples of the sentences):")
    print(intervals_frame(intervals).to_string(float_format=four))
    print("\npartial match (SemEval-2013 task 9.1 schemes):")
    print(partial_frame(result["partial"]["overall"]).to_string(float_format=four))
    print("\nconfusion of types (rows gold, columns predicted):")
    print(confusion_frame(result["confusion"]).to_string())
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
