"""The search the ``continue`` preset's settings were chosen by: ``bench/continued.py``'s hard case
(``transcripts``), each grid row at each number of corrections, in one process.

A row is a learning rate, epochs and replay ratio, given to the preset as a user would give them,
so the preset's own choice for the size does not apply. Each result is appended to
``--output`` (JSON Lines) as it comes, so a long search can be read while it runs; a row already
there is not run again. The preset takes, for each size, the row with the largest held-out gain
whose CoNLL-2003 validation F1 falls by at most one point.

    python bench/continued_tuning.py [--sizes 100,300,1000] [--output bench/results/continued-tuning.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import ROOT, default_data, machine  # first: puts the repository on sys.path
from continued import (MOST_VALIDATION_LOSS, TRANSCRIPT_SIZES, continued_point,  # noqa: E402
                       f1_on, novel_case, transcripts_case)
from transformers.utils import logging as hf_logging  # noqa: E402

from ner_core import Recognizer, load_data, to_dataset_dict  # noqa: E402

# (learning rate, epochs, replay ratio)
GRID = ((5e-5, 5.0, 1.0), (1e-4, 5.0, 1.0), (1e-4, 10.0, 1.0), (1e-4, 5.0, 3.0), (2e-4, 5.0, 1.0),
        (1e-4, 3.0, 1.0), (1e-4, 3.0, 0.5), (1e-4, 5.0, 10.0), (1e-4, 5.0, 3.33),
        (5e-5, 5.0, 10.0), (1e-4, 5.0, 2.0), (1e-4, 5.0, 20.0), (1e-4, 5.0, 6.67),
        (5e-5, 5.0, 3.33), (3e-5, 5.0, 10.0), (5e-5, 3.0, 10.0), (2e-5, 5.0, 10.0),
        (3e-5, 5.0, 1.0), (5e-5, 3.0, 1.0), (3e-5, 5.0, 2.0), (2e-5, 5.0, 1.0), (3e-5, 3.0, 2.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_data(), help="CoNLL-2003 directory")
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--rows", help="only these grid rows (0-based, separated by commas)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" /
                                                "continued-tuning.jsonl"))
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    sizes = [int(size) for size in args.sizes.split(",")]
    rows = [GRID[int(i)] for i in args.rows.split(",")] if args.rows else list(GRID)

    conll = load_data(args.data)
    novel = novel_case(args.data, max(*sizes, TRANSCRIPT_SIZES[-1]))
    pool, held_out_sentences, _ = transcripts_case(*novel)
    held_out = to_dataset_dict({"held_out": held_out_sentences})["held_out"]
    default = Recognizer("default")
    before = {"held_out": f1_on(default, held_out),
              "validation": f1_on(default, conll["validation"])}
    print(f"default: held-out F1 {before['held_out']:.4f}, validation {before['validation']:.4f}",
          flush=True)
    # A row is done when it was run from this same bundled model on the same kind of machine
    # (the same scores before: bfloat16 scores differ a little between CPUs).
    output = Path(args.output)
    done = set()
    if output.is_file():
        for line in output.read_text().splitlines():
            r = json.loads(line)
            if r["before"] == before:
                done.add((r["corrections"], r["learning_rate"], r["epochs"], r["replay_ratio"]))
    with tempfile.TemporaryDirectory(prefix="ner-tuning-") as work:
        for size in sizes:
            for learning_rate, epochs, replay_ratio in rows:
                if (size, learning_rate, epochs, replay_ratio) in done:
                    continue
                overrides = {"learning_rate": learning_rate, "epochs": epochs,
                             "replay_ratio": replay_ratio}
                point = continued_point(pool[:size], held_out, conll, overrides, Path(work),
                                        args.data)
                row = {"corrections": size, **overrides,
                       "held_out_f1": point["held_out_f1"],
                       "validation_f1": point["validation_f1"],
                       "held_out_gain_points": round(100 * (point["held_out_f1"]
                                                            - before["held_out"]), 2),
                       "validation_change_points": round(100 * (point["validation_f1"]
                                                                - before["validation"]), 2),
                       "train_steps": point["train_steps"],
                       "train_seconds": point["train_seconds"],
                       "before": before, "machine": machine()}
                row["within_validation_limit"] = \
                    row["validation_change_points"] >= -MOST_VALIDATION_LOSS
                print(f"{size:>5} lr {learning_rate:g} epochs {epochs:g} replay {replay_ratio:g}: "
                      f"held-out {row['held_out_gain_points']:+.2f}, validation "
                      f"{row['validation_change_points']:+.2f} ({row['train_steps']} steps, "
                      f"{row['train_seconds']:.0f} s)", flush=True)
                with output.open("a") as sink:
                    sink.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
