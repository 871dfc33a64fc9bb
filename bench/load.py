"""Load benchmark: ``python app.py`` on a local port, driven through its API by many visitors.

(a) 32 visitors send a Highlight request at the same moment while a fine-tune trains: p50/p95
    latency, and whether every answer belongs to its own text (offsets checked against it);
(b) a second fine-tune requested while the first runs: refused, with the server's message;
(c) 1,000 Highlight requests one after another: the server's resident memory every 100 requests.

The server gets a temporary runs directory and is stopped at the end; traffic goes to 127.0.0.1
only. Highlight uses the bundled model (``assets/model``) when there is one, else a tiny BERT
built from a config (every word tagged I-ORG); the fine-tune trains the offline MiniLM encoder when
its package is installed, else the tiny BERT.

    python bench/load.py [--requests 1000] [--visitors 32]

Prints the figures and writes ``bench/results/load.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, percentile  # first: puts the repository on sys.path

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from conftest import _save_tiny_model, make_sentences, vocabulary, write_conll  # noqa: E402
from live_app import (fine_tune_request, highlight, highlight_concurrently,  # noqa: E402
                      resident_memory, runs_with_tiny, serve_app_process, visitor)
from ner_core import models, runs  # noqa: E402

PEOPLE = ["Angela Merkel", "Roland Busch", "Marie Curie", "Koji Sato", "Pierre Curie"]
ORGS = ["Siemens", "Toyota", "Nomura", "Goldman Sachs", "Volkswagen"]
PLACES = ["Paris", "Tokyo", "Warsaw", "North Carolina", "Berlin"]
TRAINING_SECONDS = 120  # how long to wait for the fine-tune's first steps


def visitor_text(i: int) -> str:
    """Text number ``i``: each one different, in length too, so a mix-up shows in the offsets."""
    person, org, place = PEOPLE[i % 5], ORGS[i // 5 % 5], PLACES[i // 25 % 5]
    return (f"{person} met the chief executive of {org} in {place} on day {i}."
            + " A spokesman said talks went well." * (i % 3))


def own_offsets(text: str, rows: list[list]) -> bool:
    """Whether every entity of ``rows`` is ``text[start:end]`` of this very text."""
    return all(text[start:end] == entity for entity, _, _, start, end in rows)


def wait_for_training(log: Path, name: str) -> None:
    """Until the server's log shows the fine-tune ``name`` past its first logged steps."""
    deadline = time.monotonic() + TRAINING_SECONDS
    while f"fine-tune {name}: step " not in log.read_text():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the fine-tune {name} logged no step within {TRAINING_SECONDS} s:\n"
                               f"{log.read_text()[-3000:]}")
        time.sleep(0.5)


def wait_until_saved(runs_dir: Path, name: str) -> None:
    deadline = time.monotonic() + TRAINING_SECONDS
    while name not in runs.list_runs(runs_dir):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stopped fine-tune {name} was not saved within "
                               f"{TRAINING_SECONDS} s")
        time.sleep(0.5)


def concurrent_visitors(url: str, model: str, visitors: int) -> dict:
    texts = [visitor_text(i) for i in range(visitors)]
    answers = highlight_concurrently(url, texts, model)
    seconds = [s for _, s in answers]
    return {"visitors": visitors, "answered": len(answers),
            "all_own_entities": all(own_offsets(t, rows) for t, (rows, _) in zip(texts, answers)),
            "entities": sum(len(rows) for rows, _ in answers),
            "p50_ms": round(percentile(seconds, 0.5) * 1000, 1),
            "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
            "max_ms": round(max(seconds) * 1000, 1)}


def second_fine_tune(client: Client, train_file: Path, base: str) -> dict:
    try:
        fine_tune_request(client, "second", train_file, base, epochs=1).result()
    except AppError as error:
        return {"refused": True, "message": str(error)}
    return {"refused": False, "message": "a second fine-tune started while one was running"}


def sequential_requests(client: Client, pid: int, model: str, requests: int) -> dict:
    samples, seconds, own = [resident_memory(pid)], [], True
    for i in range(requests):
        text = visitor_text(i)
        rows, took = highlight(client, text, model)
        own, seconds = own and own_offsets(text, rows), seconds + [took]
        if (i + 1) % 100 == 0 or i + 1 == requests:
            samples.append(resident_memory(pid))
    mib = [round(s / 2**20, 1) for s in samples]
    return {"requests": requests, "all_own_entities": own, "rss_start_mib": mib[0],
            "rss_end_mib": mib[-1], "rss_growth_mib": round(mib[-1] - mib[0], 1),
            "rss_every_100_mib": mib, "p50_ms": round(percentile(seconds, 0.5) * 1000, 1),
            "p95_ms": round(percentile(seconds, 0.95) * 1000, 1)}


def prepare(directory: Path) -> tuple[Path, str, str, Path]:
    """A runs directory with the tiny run, the Highlight model, the fine-tune's base, its data."""
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(vocabulary()) + "\n")
    tiny = _save_tiny_model(directory / "tiny-bert", "bert", vocab)
    runs_dir = runs_with_tiny(directory, tiny)
    bundled = (models.BUNDLED_DIR / "model.safetensors").is_file()
    try:
        models.encoder_dir()
        base = models.ENCODER
    except ImportError:
        base = "tiny"
    data = write_conll(directory / "train.txt", make_sentences(200, seed=1))
    return runs_dir, models.DEFAULT if bundled else "tiny", base, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="sequential Highlight requests")
    parser.add_argument("--visitors", type=int, default=32, help="Highlight requests at once")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "load.json"))
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ner-load-") as temporary:
        directory = Path(temporary)
        runs_dir, model, base, train_file = prepare(directory)
        log = directory / "app.log"
        print(f"serving {model} for Highlight; fine-tuning {base} in the background")
        with serve_app_process(runs_dir, log) as (url, server):
            client = visitor(url)
            fine_tune_request(client, "background", train_file, base, epochs=100,
                              batch_size=8).result()
            wait_for_training(log, "background")
            concurrent = concurrent_visitors(url, model, args.visitors)
            second = second_fine_tune(client, train_file, base)
            client.predict(api_name="/stop_fine_tune")
            wait_until_saved(runs_dir, "background")
            sequential = sequential_requests(client, server.pid, model, args.requests)
    results = {"machine": machine(), "highlight_model": model, "fine_tune_base": base,
               "concurrent_during_fine_tune": concurrent, "second_fine_tune": second,
               "sequential": sequential, "seconds": round(time.perf_counter() - started, 1)}

    print(f"{concurrent['visitors']} visitors at once during a fine-tune: "
          f"{concurrent['answered']} answered, each with its own entities: "
          f"{concurrent['all_own_entities']}; p50 {concurrent['p50_ms']} ms, "
          f"p95 {concurrent['p95_ms']} ms, max {concurrent['max_ms']} ms")
    print(f"second fine-tune while one runs: {'refused' if second['refused'] else 'STARTED'} "
          f"({second['message']})")
    print(f"{sequential['requests']} sequential requests: resident memory "
          f"{sequential['rss_start_mib']} MiB at the start, {sequential['rss_end_mib']} MiB at the "
          f"end ({sequential['rss_growth_mib']:+} MiB); every 100: {sequential['rss_every_100_mib']}; "
          f"p50 {sequential['p50_ms']} ms, p95 {sequential['p95_ms']} ms")
    print(f"{results['seconds']} s in all")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
