"""Batch benchmark: a file through ``recognize_file`` against ``Recognizer.recognize_batch``, and
the memory of ``predict --input ... --output`` as the input grows to 1 GB.

(a) CoNLL-2003's test sentences (tokens joined by spaces) as a .txt file through the path that
    ``predict --input --output`` and the app's batch tab take (read, recognize a chunk at a time,
    write JSONL), against ``recognize_batch`` on the same texts in memory; same model, one process,
    alternating repetitions. Texts per second of each and their ratio.
(b) Peak resident memory of child processes (``os.wait4``) on generated .txt inputs:
    ``python -m ner_core predict`` with a tiny model built here, on inputs of growing size; and the
    streaming path alone (a stand-in recognizer that answers at once) on a 1 GB input. Recognizing
    1 GB with any model takes hours on 2 cores; the two together show where memory goes.

    python bench/batch.py [--model default] [--data ../shared/data/conll2003] [--gigabytes 1]
                          [--threads 1]

Prints the figures and writes ``bench/results/batch.json`` (committed: ``--threads 1``, on a
machine busy with other work).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from common import ROOT, default_data, machine  # first: puts the repository on sys.path

import torch  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from conftest import _save_tiny_model, make_sentences, vocabulary  # noqa: E402
from ner_core import Recognizer, load_data  # noqa: E402
from ner_core.batch import recognize_file  # noqa: E402
from ner_core.data import sentences_of  # noqa: E402

SENTENCES_PER_LINE = 10  # generated lines are paragraphs of about 500 characters
# Input sizes for predict with the tiny model: one line, then 3 and 6 chunks of 2,000 lines.
GROWING_MB = [0, 2, 4]
# The measured process is started by a small Python process that reports its peak: Linux counts a
# child's peak from the memory of the process that forked it, and this one holds a model.
_LAUNCHER = ("import resource, subprocess, sys; "
             "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def timed(call):
    """``call()``'s result, wall seconds, and CPU seconds of this process (all its threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def file_against_memory(model: str, data: str, repeats: int, work: Path) -> dict:
    """Each repetition times the two paths back to back (in turn first), so that both see the
    same load; the ratio is the median of the repetitions' ratios."""
    texts = [" ".join(s.tokens) for s in sentences_of(load_data(data)["test"])]
    source, output = work / "test.txt", work / "test-entities.jsonl"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    recognizer = Recognizer(model, device="cpu")
    recognizer.recognize_batch(texts[:64])  # warm-up: first calls allocate
    calls = {"file": lambda: recognize_file(recognizer, source, output),
             "memory": lambda: recognizer.recognize_batch(texts)}
    wall, cpu, last = {"file": [], "memory": []}, {"file": [], "memory": []}, {}
    for repeat in range(repeats):
        for path in (["file", "memory"] if repeat % 2 == 0 else ["memory", "file"]):
            last[path], took, used = timed(calls[path])
            wall[path].append(took)
            cpu[path].append(used)
    from_file = [json.loads(line)["entities"] for line in output.read_text("utf-8").splitlines()]
    n = len(texts)
    per_s = {path: [round(n / s, 1) for s in times] for path, times in wall.items()}

    def ratio(times: dict) -> float:
        return round(median(m / f for f, m in zip(times["file"], times["memory"])), 3)

    return {"texts": n, "repeats": repeats, "texts_per_s": per_s,
            "median_texts_per_s": {path: median(rates) for path, rates in per_s.items()},
            "ratio_file_to_memory": ratio(wall), "ratio_file_to_memory_cpu_time": ratio(cpu),
            "same_entities": from_file == last["memory"]}


def generate_input(path: Path, megabytes: float) -> int:
    """A .txt input of about ``megabytes`` (0: one line) of invented paragraphs (whole blocks of
    2,000 lines); returns its lines."""
    sentences = [" ".join(word for word, _ in s) for s in make_sentences(20_000, seed=7)]
    block = "".join(" ".join(sentences[i:i + SENTENCES_PER_LINE]) + "\n"
                    for i in range(0, len(sentences), SENTENCES_PER_LINE)).encode("utf-8")
    lines_per_block = block.count(b"\n")
    with path.open("wb") as handle:
        if megabytes == 0:
            handle.write(block[:block.index(b"\n") + 1])
            return 1
        repeats = max(1, round(megabytes * 2**20 / len(block)))
        for _ in range(repeats):
            handle.write(block)
    return repeats * lines_per_block


def child_peak(args: list[str]) -> tuple[float, float]:
    """(peak resident MB from ``getrusage``, seconds) of a child process; it must succeed."""
    started = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}:\n"
                           f"{done.stderr[-3000:]}")
    kilobytes = int(done.stdout.split()[-1])
    return round(kilobytes / 1024, 1), round(time.perf_counter() - started, 1)


class InstantRecognizer:
    """The interface ``recognize_file`` uses, answering at once (each text's first word as a PER
    entity), so that 1 GB streams through reading, chunking and writing in minutes."""

    max_text_chars = 200_000

    def recognize_batch(self, texts: list[str], threshold: float = 0.0) -> list[list[dict]]:
        found = []
        for text in texts:
            word = text.split(" ", 1)[0]
            found.append([{"start": 0, "end": len(word), "label": "PER", "score": 1.0,
                           "text": word}] if word else [])
        return found


def stream_only(source: str, output: str) -> None:
    """Child process of (b): ``recognize_file`` with the stand-in recognizer."""
    recognize_file(InstantRecognizer(), source, output)


def memory(gigabytes: float, work: Path) -> dict:
    tiny = _save_tiny_model(work / "tiny-bert", "bert", _vocab_file(work))
    growing = {}
    for megabytes in GROWING_MB:
        source = work / f"in-{megabytes}mb.txt"
        lines = generate_input(source, megabytes)
        peak, seconds = child_peak([sys.executable, "-m", "ner_core", "predict", "--model",
                                    str(tiny), "--input", str(source), "--output",
                                    str(work / "out.jsonl")])
        size = source.stat().st_size
        growing[f"{size / 2**20:.1f} MB" if megabytes else "1 line"] = {
            "lines": lines, "bytes": size, "peak_rss_mb": peak, "seconds": seconds}
        source.unlink()
    big = work / "in-big.txt"
    lines = generate_input(big, gigabytes * 1024)
    size = big.stat().st_size
    small = work / "in-small.txt"
    generate_input(small, 0)
    streamed = {}
    for name, source in (("1 line", small), (f"{size / 2**30:.2f} GB", big)):
        peak, seconds = child_peak([sys.executable, __file__, "--stream-only", str(source),
                                    str(work / "streamed.jsonl")])
        streamed[name] = {"peak_rss_mb": peak, "seconds": seconds,
                          "output_mb": round((work / "streamed.jsonl").stat().st_size / 2**20)}
    return {"predict_tiny_model": growing, "stream_only": streamed, "big_input_bytes": size,
            "big_input_lines": lines}


def _vocab_file(work: Path) -> Path:
    path = work / "vocab.txt"
    path.write_text("\n".join(vocabulary()) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="a model name the resolver accepts")
    parser.add_argument("--data", default=default_data(), help="CoNLL-2003 directory")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repetitions of (a)")
    parser.add_argument("--threads", type=int, help="torch threads for (a) (default: torch's); "
                        "on a machine shared with other work, 1 keeps the two paths' times "
                        "comparable: two threads on busy cores wait on each other")
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of the big input of (b)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "batch.json"))
    parser.add_argument("--stream-only", nargs=2, metavar=("INPUT", "OUTPUT"),
                        help=argparse.SUPPRESS)  # the child process of (b)
    args = parser.parse_args()
    if args.stream_only:
        stream_only(*args.stream_only)
        return
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as directory:
        work = Path(directory)
        print(f"(a) {args.model} on the CoNLL-2003 test sentences, file against memory ...",
              flush=True)
        speed = file_against_memory(args.model, args.data, args.repeats, work)
        print("(b) peak memory of predict as the input grows ...", flush=True)
        peaks = memory(args.gigabytes, work)
    results = {"machine": machine(), "model": args.model, **speed,
               "memory": peaks, "seconds": round(time.perf_counter() - started),
               # Other work on the machine slows both sides of (a) alike, not their ratio.
               "load_average_1min": {"start": load_at_start, "end": os.getloadavg()[0]}}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")

    print(f"\n{speed['texts']} texts, median of {args.repeats}: file "
          f"{speed['median_texts_per_s']['file']} texts/s, memory "
          f"{speed['median_texts_per_s']['memory']} texts/s, ratio "
          f"{speed['ratio_file_to_memory']} (CPU time: {speed['ratio_file_to_memory_cpu_time']}; "
          f"same entities: {speed['same_entities']})")
    for name, figures in peaks["predict_tiny_model"].items():
        print(f"predict, tiny model, {name:>8}: peak {figures['peak_rss_mb']} MB "
              f"({figures['lines']} lines, {figures['seconds']} s)")
    for name, figures in peaks["stream_only"].items():
        print(f"streaming path alone, {name:>8}: peak {figures['peak_rss_mb']} MB "
              f"({figures['seconds']} s, {figures['output_mb']} MB written)")
    print(f"CPU: {results['machine']['cpu']} ({results['machine']['instruction_set']}); "
          f"{results['seconds']} s in all; written to {args.output}")


if __name__ == "__main__":
    main()
