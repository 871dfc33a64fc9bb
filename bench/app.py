"""App benchmark: ``python app.py`` from start to ready, its memory, and Highlight's latency.

Starts the app on a free local port with an empty runs directory (so the bundled model is the one
loaded), and measures: seconds from launch to the first HTTP 200; resident memory then and after
the first Highlight request; and for the example paragraph over ``--calls`` requests through the
API, the server-side time the page reports (the model's work) and the round trip a visitor waits,
in the default precision (``auto``: what the page says it chose is recorded) and in the int8
mode.

    python bench/app.py [--calls 50]

Prints the figures and writes ``bench/results/app.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, percentile  # first: puts the repository on sys.path

from live_app import resident_memory, serve_app_process, visitor  # noqa: E402
from studio.highlight import EXAMPLES  # noqa: E402

MIB = 1024 * 1024


def latencies(client, text: str, int8: bool, calls: int) -> dict:
    server, round_trip, said = [], [], None
    for i in range(calls + 3):
        started = time.perf_counter()
        _, _, _, timing = client.predict(text, "default", "", 0.0, int8, api_name="/highlight")
        elapsed = (time.perf_counter() - started) * 1000
        if i < 3:
            continue  # warm-up (the int8 model is built on its first request)
        match = re.search(r"entities in ([\d,]+) ms .*\((.+)\)$", timing)
        if not match:
            raise RuntimeError(f"expected 'N entities in X ms with ... (precision)' from the app, "
                               f"found {timing!r}")
        said = match.group(2)
        server.append(float(match.group(1).replace(",", "")))
        round_trip.append(elapsed)
    return {"server_ms_p50": percentile(server, 0.5), "server_ms_p95": percentile(server, 0.95),
            "round_trip_ms_p50": round(percentile(round_trip, 0.5), 1),
            "round_trip_ms_p95": round(percentile(round_trip, 0.95), 1), "precision_said": said}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="Highlight requests per mode")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "app.json"))
    args = parser.parse_args()
    if not (ROOT / "assets" / "model" / "model.safetensors").is_file():
        sys.exit("error: expected the bundled model in assets/model, found none")

    with tempfile.TemporaryDirectory(prefix="ner-bench-app-") as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        with serve_app_process(scratch / "runs", scratch / "app.log") as (url, process):
            ready_s = time.perf_counter() - started
            rss_ready = resident_memory(process.pid)
            client = visitor(url)
            text = EXAMPLES[0]
            auto = latencies(client, text, False, args.calls)
            rss_after = resident_memory(process.pid)
            int8 = latencies(client, text, True, args.calls)
            rss_int8 = resident_memory(process.pid)

    results = {
        "startup_seconds": round(ready_s, 1),
        "rss_mib_ready": round(rss_ready / MIB, 1),
        "rss_mib_after_highlight": round(rss_after / MIB, 1),
        "rss_mib_with_int8_too": round(rss_int8 / MIB, 1),
        "highlight_auto": auto,
        "highlight_int8": int8,
        "example": text,
        "calls": args.calls,
        "machine": machine(),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"start-up to first HTTP 200: {ready_s:.1f} s")
    print(f"resident memory: {results['rss_mib_ready']} MiB ready, "
          f"{results['rss_mib_after_highlight']} MiB after Highlight, "
          f"{results['rss_mib_with_int8_too']} MiB with the int8 model loaded too")
    for name, figures in (("auto", auto), ("int8", int8)):
        print(f"Highlight, example paragraph, {name} ({figures['precision_said']}): server "
              f"{figures['server_ms_p50']:.0f} ms p50 / {figures['server_ms_p95']:.0f} ms p95; "
              f"round trip {figures['round_trip_ms_p50']:.0f} ms p50 / "
              f"{figures['round_trip_ms_p95']:.0f} ms p95")
    print(f"machine: {results['machine']['cpu']} ({results['machine']['instruction_set']})")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
