"""What a CPU with AVX2 and nothing newer gets from each precision, measured on any x86 CPU.

On a CPU with AVX-512 or AMX this is an emulation, and the results say so: every kernel library
torch computes with is held to AVX2 before torch loads (``ATEN_CPU_CAPABILITY``,
``MKL_ENABLE_INSTRUCTIONS``, ``ONEDNN_MAX_CPU_ISA``, ``FBGEMM_ENABLE_INSTRUCTIONS``), and the
studio's instruction checks answer as such a CPU would (AVX2, no BF16, no VNNI), so ``auto`` and
int8 choose what they would choose there: float32, and int8 weights in 7 bits. The caches, clock
and memory stay the bigger machine's, so the ratios are the figures to read, not the speeds.

Figures: texts per second on the CoNLL-2003 test sentences (float32, ``auto``, our int8, torch's
default int8, bfloat16 on a slice) and validation F1 of each but bfloat16.

    python bench/avx2.py [--model default] [--data ../shared/data/conll2003]
"""

from __future__ import annotations

import os

# Before torch loads: the kernel libraries read these once.
CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}
os.environ.update(CAPS)

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from common import ROOT, default_data, machine  # noqa: E402  (puts the repository on sys.path)
from inference import EMULATED_BF16_TEXTS, gold_raw_spans, timed, torch_default_int8  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner_core import Recognizer, evaluate, hardware, load_data, quantize  # noqa: E402

AVX2_HAS = {"avx2"}  # what torch's instruction checks find on such a CPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="a model name the resolver accepts")
    parser.add_argument("--data", default=default_data(), help="CoNLL-2003 directory")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "avx2.json"))
    args = parser.parse_args()
    hf_logging.set_verbosity_error()

    host = machine()  # read before the checks are held to AVX2
    emulated = not host["instruction_set"].startswith("AVX2")
    hardware._cpu_has = lambda check: check in AVX2_HAS
    data = load_data(args.data)
    texts, _ = gold_raw_spans(data["test"])

    auto = Recognizer(args.model, device="cpu")
    plain = Recognizer(args.model, device="cpu", precision="float32")
    fast = Recognizer(args.model, device="cpu", precision="int8")
    brain = Recognizer(args.model, device="cpu", precision="bfloat16")
    usual = Recognizer(args.model, device="cpu", precision="float32")
    usual.model = torch_default_int8(usual.model)
    arms = {"float32": plain, "auto": auto, "int8": fast, "int8_torch_default": usual,
            "bfloat16": brain}
    print(f"{len(texts)} test texts; auto computes in {auto.precision_said}; int8 weights in "
          f"{quantize.weight_bits(hardware.cpu_vnni())} bits", flush=True)
    speeds = {}
    for name, recognizer in arms.items():
        part = texts[:EMULATED_BF16_TEXTS] if name == "bfloat16" else texts
        recognizer.recognize_batch(texts[:64])  # warm-up
        speeds[name] = round(len(part) / timed(lambda: recognizer.recognize_batch(part))[1], 1)
        print(f"  {name:20} {speeds[name]:8.1f} texts/s ({len(part)} texts)", flush=True)
    f1 = {name: round(evaluate(arms[name], data["validation"])["overall"]["f1"], 4)
          for name in ("float32", "int8", "int8_torch_default")}
    f1["auto"] = f1[auto.precision] if auto.precision in f1 else None

    def ratio(name):
        return round(speeds[name] / speeds["float32"], 2)

    def points(name):
        return round((f1[name] - f1["float32"]) * 100, 2)

    results = {"machine": host, "emulated_on": host["instruction_set"] if emulated else None,
               "caps": CAPS, "held_to": hardware.instruction_set(), "model": args.model,
               "auto_precision": auto.precision, "auto_precision_said": auto.precision_said,
               "int8_weight_bits": quantize.weight_bits(hardware.cpu_vnni()),
               "texts": len(texts), "bfloat16_timed_texts": EMULATED_BF16_TEXTS,
               "texts_per_s": speeds, "validation_f1": f1,
               "speedup_vs_float32": {name: ratio(name) for name in speeds},
               "f1_points_vs_float32": {name: points(name) for name in
                                        ("int8", "int8_torch_default")}}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")

    print(f"\n{'precision':20} {'texts/s':>9} {'vs float32':>11} {'val F1':>7} {'points':>7}")
    for name in speeds:
        score = f1.get(name)
        print(f"{name:20} {speeds[name]:9.1f} {ratio(name):10.2f}x "
              f"{score if score is not None else '-':>7} "
              f"{points(name) if name in results['f1_points_vs_float32'] else '':>7}")
    where = (f"AVX2 emulated on {host['cpu']} ({host['instruction_set']})" if emulated
             else f"{host['cpu']} ({host['instruction_set']})")
    print(f"\nmachine: {where}; auto computes in {auto.precision_said}")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
