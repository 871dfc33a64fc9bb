"""Which of the fast path's differences from the recipe costs validation F1, over several seeds.

``bench/training.py`` compares our ``fine_tune`` with the recipe (a plain ``Trainer``: random
batches, fp32) after one epoch. Ours differed in two ways that could move F1: bf16 mixed precision
(where the CPU computes it natively) and length-grouped batches. This runs the 2 x 2 of those two
settings through ``fine_tune`` (each arm sets both), and the recipe itself, for each seed, and prints validation F1 as
mean and spread per arm with tokens per second, so a cause is not mistaken for seed noise.

    python bench/training_ablation.py [--seeds 42 43 44] [--arms recipe ours ...] [--jobs 2]
                                      [--max-train-sentences N] [--output FILE]

Every run is a child process with ``cores / jobs`` torch threads; with ``--jobs`` above 1 the runs
share the machine, so the tokens per second are for comparing arms, not the benchmark's own.
Results go, one line per run as it ends, to ``bench/results/training-ablation.jsonl`` (runs
already there for the same arm, seed and data are not repeated), then the summary to
``bench/results/training-ablation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from common import ROOT, default_data, machine  # first: puts the repository on sys.path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU figures

# arm: (precision for fine_tune, train_sampling_strategy), or None for the recipe's Trainer
ARMS = {
    "recipe": None,
    "ours": ("auto", "group_by_length"),
    "ours-fp32": ("fp32", "group_by_length"),
    "ours-random": ("auto", "random"),
    "ours-fp32-random": ("fp32", "random"),
}
RESULTS = ROOT / "bench" / "results"


def run_one(arm: str, seed: int, data_dir: str, max_train: int | None, threads: int) -> dict:
    """One arm at one seed, in this process."""
    import torch

    torch.set_num_threads(threads)
    import datasets
    from transformers.utils import logging as hf_logging

    import training as bench  # bench/training.py
    from ner_core import load_data
    from ner_core import training as ner_training

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    data = bench.train_and_validation(load_data(data_dir), max_train, None)
    labels = data["train"].features["ner_tags"].feature.names
    config = replace(bench.CPU_RUN, seed=seed)
    with tempfile.TemporaryDirectory(prefix="ner-ablation-") as scratch:
        if ARMS[arm] is None:
            figures = bench.run_recipe(config, data, labels, Path(scratch))
        else:
            precision, sampling = ARMS[arm]
            arguments = ner_training._training_arguments

            def with_sampling(*args, **kwargs):
                built = arguments(*args, **kwargs)
                built.train_sampling_strategy = sampling
                return built

            ner_training._training_arguments = with_sampling
            figures = bench.run_ours(replace(config, precision=precision), data,
                                     Path(scratch) / "run", arm)
    return {"arm": arm, "seed": seed, "max_train_sentences": max_train, "threads": threads,
            **figures}


def summary(runs: list[dict]) -> dict:
    by_arm = {}
    for run in runs:
        by_arm.setdefault(run["arm"], []).append(run)
    table = {}
    for arm in ARMS:
        if arm not in by_arm:
            continue
        f1 = [r["validation_f1"] for r in sorted(by_arm[arm], key=lambda r: r["seed"])]
        speed = [r["tokens_per_s"] for r in by_arm[arm]]
        table[arm] = {"seeds": sorted(r["seed"] for r in by_arm[arm]), "f1": f1,
                      "f1_mean": round(statistics.mean(f1), 4),
                      "f1_stdev": round(statistics.stdev(f1), 4) if len(f1) > 1 else None,
                      "tokens_per_s_mean": round(statistics.mean(speed), 1),
                      "precision": by_arm[arm][0]["precision"]}
    return table


def print_summary(table: dict) -> None:
    recipe = table.get("recipe")
    print(f"\n{'arm':18} {'seeds':>8} {'F1 mean':>8} {'stdev':>7} {'vs recipe':>10} "
          f"{'tokens/s':>9} {'speed':>6}  per seed")
    for arm, row in table.items():
        delta = (f"{(row['f1_mean'] - recipe['f1_mean']) * 100:+.2f}" if recipe else "")
        speed = (f"{row['tokens_per_s_mean'] / recipe['tokens_per_s_mean']:.2f}x" if recipe else "")
        stdev = "" if row["f1_stdev"] is None else f"{row['f1_stdev']:.4f}"
        print(f"{arm:18} {len(row['seeds']):>8} {row['f1_mean']:>8.4f} {stdev:>7} {delta:>10} "
              f"{row['tokens_per_s_mean']:>9,.0f} {speed:>6}  "
              + " ".join(f"{f:.4f}" for f in row["f1"]))
    print("(vs recipe: F1 points; tokens/s are comparable between arms only, as runs share cores)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_data(), help="CoNLL-2003 directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--max-train-sentences", type=int, help="a subset (a check of the code)")
    parser.add_argument("--output", default=str(RESULTS / "training-ablation.json"))
    parser.add_argument("--one", nargs=2, metavar=("ARM", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        arm, seed = args.one
        print(json.dumps(run_one(arm, int(seed), args.data, args.max_train_sentences,
                                 args.threads)))
        return 0

    log = Path(args.output).with_suffix(".jsonl")
    log.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    done = [r for r in done if r["max_train_sentences"] == args.max_train_sentences]
    have = {(r["arm"], r["seed"]) for r in done}
    todo = [(arm, seed) for seed in args.seeds for arm in args.arms if (arm, seed) not in have]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    print(f"{len(todo)} runs to do ({len(have)} on record), {args.jobs} at once, "
          f"{threads} threads each", flush=True)

    def child(job):
        arm, seed = job
        command = [sys.executable, __file__, "--one", arm, str(seed), "--data", args.data,
                   "--threads", str(threads)]
        if args.max_train_sentences is not None:
            command += ["--max-train-sentences", str(args.max_train_sentences)]
        finished = subprocess.run(command, check=True, capture_output=True, text=True)
        run = json.loads(finished.stdout.strip().splitlines()[-1])
        with log.open("a") as out:
            out.write(json.dumps(run) + "\n")
        print(f"  {arm} seed {seed}: F1 {run['validation_f1']:.4f}, "
              f"{run['tokens_per_s']:,.0f} tokens/s", flush=True)
        return run

    with ThreadPoolExecutor(args.jobs) as pool:
        done += list(pool.map(child, todo))
    runs = [r for r in done if r["arm"] in args.arms and r["seed"] in args.seeds]
    table = summary(runs)
    result = {"machine": machine(), "data": args.data, "epochs": 1.0,
              "max_train_sentences": args.max_train_sentences, "jobs": args.jobs,
              "threads_per_run": threads, "arms": {a: list(s) if s else "recipe Trainer"
                                                   for a, s in ARMS.items()},
              "summary": table, "runs": runs}
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print_summary(table)
    print(f"\nwritten to {args.output} (runs in {log})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
