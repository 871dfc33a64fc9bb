"""Rebuild the bundled model and measure its levers: each a full run of the ``bundled`` preset with
settings changed, then the table of what each gave; the ``context-and-subtokens`` run becomes the
bundled model.

    python bench/default_model.py [--data DIR] [--runs DIR] [--output DIR] [--levers NAME ...]
                                  [--retrain] [-- FLAG ...]

Every run is ``python -m ner_core train --preset bundled`` with its lever's flags (and any FLAGs
after ``--``, given to every run, for a trial on small data). Lever runs go to ``--runs``
(default ``runs/default-levers``); one already complete there is kept unless ``--retrain``. The
``distilled`` lever learns from the averaged predictions of every other lever run of the same
invocation. The ``BUNDLED`` lever's run, once complete, is copied to ``--output`` (default
``assets/model``) as it was saved, with its card written for the name ``default``. Each run's own
``metrics.json`` gives its row of ``bench/results/default-ablation.json``; rows of levers not run
this time stay as they were measured, each with its machine and how its tags were decoded.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from common import ROOT, default_data, machine  # first: puts the repository on sys.path

from ner_core import cli, runs

# lever: (what it is, its flags). "distilled" takes every other lever's run as a teacher.
LEVERS = {
    "case-feature": ("capitals marked (the bundled preset as it is)", []),
    "document-context": ("... and document context, 64 sub-tokens each side",
                         ["--document-context"]),
    "label-all-tokens": ("... and every sub-token labelled", ["--label-all-tokens"]),
    "context-and-subtokens": ("... document context and every sub-token labelled",
                              ["--document-context", "--label-all-tokens"]),
    "distilled": ("... every sub-token labelled, and half the loss from the other runs' averaged "
                  "predictions", ["--label-all-tokens", "--distillation", "0.5"]),
}
STUDENT = "distilled"
BUNDLED = "context-and-subtokens"
# How the runs' tags are read from their probabilities (Recognizer.tag); rows measured before
# IOB2 decoding took each word's most probable label.
DECODING = "most probable IOB2 sequence"
EARLIER_DECODING = "each word's most probable label"
RESULTS = ROOT / "bench" / "results" / "default-ablation.json"


def shown(path) -> str:
    """A path as the runs' cards give it: from the repository root (where the runs are trained)
    when it lies below the folder of the checkout, as ``../shared/data/conll2003`` does, so that
    their rebuild lines work from any clone; else in full."""
    path = Path(path).resolve()
    return os.path.relpath(path, ROOT) if path.is_relative_to(ROOT.parent) else str(path)


def command(lever: str, data: str, output: Path, teachers: list[Path], extra: list[str]) -> list[str]:
    flags = list(LEVERS[lever][1])
    for teacher in teachers:
        flags += ["--teacher", shown(teacher)]
    return ["python", "-m", "ner_core", "train", "--preset", "bundled", "--data", shown(data),
            "--output", shown(output), "--half", "--overwrite", *flags, *extra]


def row(lever: str, run: Path, argv: list[str]) -> dict:
    """A lever's figures, all from its run's metrics.json."""
    metrics = json.loads((run / "metrics.json").read_text())
    facts = metrics["training"]
    by_epoch = [round(h["eval"]["f1"], 4) for h in metrics["history"] if "eval" in h]
    return {
        "lever": lever, "what": LEVERS[lever][0],
        "command": shlex.join(argv),
        "validation_f1": round(metrics["validation"]["overall"]["f1"], 4),
        "test_f1": round(metrics["test"]["overall"]["f1"], 4),
        "validation_f1_by_epoch": by_epoch,  # the Trainer's: each word's most probable label
        "per_entity_test_f1": {kind: round(s["f1"], 4)
                               for kind, s in metrics["test"]["per_entity"].items()},
        "evaluation_seconds_float32": {split: metrics[split]["seconds"]
                                       for split in ("validation", "test")},
        "train_seconds": facts["seconds"], "train_steps": facts["steps"],
        "device": facts["device"], "teachers": facts.get("teachers", []),
        "decoding": DECODING, "machine": machine(),
        "words_read_from": "every sub-token" if json.loads(
            (run / "train_config.json").read_text()).get("label_all_tokens") else
        "the first sub-token",
        **({"rescored": metrics["rescored"]} if "rescored" in metrics else {}),
    }


def ensemble_row(teachers: list[Path], data: str) -> dict:
    """What the student learns from, scored as a model: the teachers' averaged probabilities,
    decoded as a run's are (float32, as the runs are scored)."""
    from ner_core import load_data
    from ner_core.distill import teacher_targets
    from ner_core.labels import decode, transitions
    from ner_core.metrics import score

    splits, scores = load_data(Path(ROOT, data)), {}
    for split in ("validation", "test"):
        labels = splits[split].features["ner_tags"].feature.names
        allowed = transitions(labels)
        started = time.perf_counter()
        predicted = [["O" if label is None else labels[label] for label in decode(sentence, allowed)]
                     for sentence in teacher_targets([str(t) for t in teachers], splits[split],
                                                     labels, "float32")]
        gold = [[labels[i] for i in tags] for tags in splits[split]["ner_tags"]]
        scores[split] = (score(gold, predicted), round(time.perf_counter() - started, 2))
    return {
        "lever": "teachers", "what": "the teachers' averaged predictions (not one model: "
                                     f"{len(teachers)} read every sentence)",
        "validation_f1": round(scores["validation"][0]["overall"]["f1"], 4),
        "test_f1": round(scores["test"][0]["overall"]["f1"], 4),
        "per_entity_test_f1": {kind: round(s["f1"], 4)
                               for kind, s in scores["test"][0]["per_entity"].items()},
        "evaluation_seconds_float32": {split: scores[split][1] for split in scores},
        "teachers": [shown(t) for t in teachers], "decoding": DECODING, "machine": machine(),
    }


def install(run: Path, output: Path) -> None:
    """The bundled model: ``run`` as it was saved (weights, settings, its own metrics.json), its
    card written for the name ``default``, rebuilt in place; swapped into ``output`` whole."""
    from ner_core import TrainConfig, models
    from ner_core.card import model_card

    staging = runs.staging_dir(output)
    try:
        shutil.copytree(run, staging, ignore=shutil.ignore_patterns("README.md"), dirs_exist_ok=True)
        metrics = json.loads((run / "metrics.json").read_text())
        config = TrainConfig.load(run / "train_config.json")
        (staging / "README.md").write_text(model_card(models.DEFAULT, config, metrics,
                                                      shown(output)))
        runs.publish(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def earlier_rows(results: Path) -> dict[str, dict]:
    """The rows of the table as last written, by lever; a row written before rows carried their
    own machine and decoding takes the file's machine and the decoding of that time."""
    if not results.exists():
        return {}
    table = json.loads(results.read_text())
    rows = {}
    for r in table["runs"]:
        r.setdefault("decoding", EARLIER_DECODING)
        if "machine" in table:
            r.setdefault("machine", table["machine"])
        rows[r["lever"]] = r
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_data())
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "default-levers")
    parser.add_argument("--output", type=Path, default=ROOT / "assets" / "model")
    parser.add_argument("--levers", nargs="+", choices=list(LEVERS), default=list(LEVERS))
    parser.add_argument("--retrain", action="store_true", help="retrain lever runs already there")
    parser.add_argument("--rescore", action="store_true",
                        help="score the lever runs kept again as models are read now")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args, extra = parser.parse_known_args()
    if extra[:1] == ["--"]:
        extra = extra[1:]
    elif extra:
        parser.error(f"unknown arguments {' '.join(extra)}; flags for every run go after --")
    args.runs, args.output, args.results = (p.resolve() for p in (args.runs, args.output, args.results))
    if Path(args.data).exists():  # else a Hub dataset's name
        args.data = str(Path(args.data).resolve())
    os.chdir(ROOT)  # the runs' paths are given from the repository root, as their cards give them
    rows, teachers, data = earlier_rows(args.results), [], None
    started = time.perf_counter()
    for lever in [name for name in LEVERS if name in args.levers]:  # the student last
        student = lever == STUDENT
        output = args.runs / lever
        if student and teachers:
            rows["teachers"] = ensemble_row(teachers, shown(args.data))
            print(f"teachers: validation F1 {rows['teachers']['validation_f1']:.4f}, test F1 "
                  f"{rows['teachers']['test_f1']:.4f}", flush=True)
        if runs.is_complete(output) and not args.retrain and not student:
            print(f"{lever}: kept {output}", file=sys.stderr)
            argv = command(lever, args.data, output, [], extra)
            if args.rescore:
                from ner_core import load_data
                from ner_core.training import rescore

                if data is None:  # read once for every run scored again
                    data = load_data(args.data)
                rescore(output, data)
                print(f"{lever}: scored again", file=sys.stderr)
        else:
            argv = command(lever, args.data, output, teachers if student else [], extra)
            print(f"{lever}: {shlex.join(argv)}", file=sys.stderr, flush=True)
            if cli.main(argv[3:]) != 0:  # in this process: the line is what the CLI runs
                return 1
        if not student:
            teachers.append(output)
        rows[lever] = row(lever, output, argv)
        print(f"{lever}: validation F1 {rows[lever]['validation_f1']:.4f}, test F1 "
              f"{rows[lever]['test_f1']:.4f}", flush=True)
    if BUNDLED in args.levers:
        install(args.runs / BUNDLED, args.output)
        print(f"{BUNDLED}: installed as {args.output}", file=sys.stderr)
    order = [*[name for name in LEVERS if name != STUDENT], "teachers", STUDENT]
    table = [rows[name] for name in order if name in rows]
    base = rows.get("case-feature")
    print(f"\n{'lever':<22} {'validation':>10} {'test':>8} {'eval s':>7}  {'decoding':<12}")
    for r in table:
        gain = (f"  {100 * (r['validation_f1'] - base['validation_f1']):+.2f} / "
                f"{100 * (r['test_f1'] - base['test_f1']):+.2f}") if base and r is not base else ""
        decoded = "IOB2" if r["decoding"] == DECODING else "per word"
        print(f"{r['lever']:<22} {r['validation_f1']:>10.4f} {r['test_f1']:>8.4f} "
              f"{r['evaluation_seconds_float32']['validation']:>7.1f}  {decoded:<12}{gain}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(
        {"what": "levers of the bundled model: each a full run of the bundled preset (MiniLM-L6, "
                 "6 epochs, lr 1e-4, batch 32, capitals marked) with settings changed; F1 scored "
                 "in float32 after training (seqeval, conlleval mode); rows of levers not run by "
                 "the last command are as measured before, on their machine",
         "command": shlex.join(["python", "bench/default_model.py", *sys.argv[1:]]),
         "bundled": BUNDLED, "seconds": round(time.perf_counter() - started),
         "runs": table}, indent=2) + "\n")
    print(f"\nwrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
