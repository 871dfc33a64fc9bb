"""Inference benchmark: ``Recognizer`` against ``transformers.pipeline("token-classification")``
and spaCy, in each precision.

All read the same saved weights in one process with the same threads:

(a) one paragraph, p50/p95 latency over ``--calls`` calls (the two alternate, so noise hits both);
(b) the CoNLL-2003 test sentences as separate texts: texts per second, and the share of entities
    the two agree on;
(c) a document of 5,000+ words: entities found (the pipeline reads at most 512 tokens);
(d) the same raw texts against spaCy's small English model: texts per second and entity F1
    (exact character spans);
then each precision on (b) and on validation F1: ``auto`` (what every user gets: the choice is
recorded), float32, bfloat16 (on a slice where the CPU only emulates it), our int8 and torch's
default int8; and the full validation evaluation against the loop most people write (batches of
64 in corpus order). "ours" in (a) to (d) is ``auto``.

    python bench/inference.py [--model default] [--data ../shared/data/conll2003]

Prints the figures, the machine and its instruction set, and writes ``bench/results/inference.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from common import ROOT, default_data, machine, percentile  # first: puts the repository on sys.path

import torch  # noqa: E402
from seqeval.metrics import f1_score  # noqa: E402
from transformers import pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner_core import Recognizer, evaluate, hardware, load_data, models, quantize  # noqa: E402
from ner_core.data import sentences_of  # noqa: E402
from ner_core.labels import spans  # noqa: E402
from studio.highlight import EXAMPLES  # noqa: E402

PARAGRAPH = EXAMPLES[0]  # the app's first example
LONG_DOC_WORDS = 5000
EMULATED_BF16_TEXTS = 500
# OntoNotes types (spaCy's English models) read as CoNLL-2003's; the rest are not entities there.
SPACY_TYPES = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
               "NORP": "MISC", "EVENT": "MISC", "PRODUCT": "MISC", "WORK_OF_ART": "MISC",
               "LANGUAGE": "MISC", "LAW": "MISC"}


def spans_of_pipeline(found: list[dict]) -> set[tuple[int, int, str]]:
    return {(e["start"], e["end"], e["entity_group"]) for e in found}


def spans_of_ours(found: list[dict]) -> set[tuple[int, int, str]]:
    return {(e["start"], e["end"], e["label"]) for e in found}


def identical_share(ours_found: list[list[dict]], pipe_found: list[list[dict]]) -> float:
    """Entities both found (same start, end and type), as a share of those either found."""
    agreed = union = 0
    for a, b in zip(ours_found, pipe_found):
        a, b = spans_of_ours(a), spans_of_pipeline(b)
        agreed, union = agreed + len(a & b), union + len(a | b)
    return round(agreed / union, 4) if union else 1.0


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def latency(ours: Recognizer, pipe, calls: int) -> dict:
    for _ in range(5):  # warm-up: first calls allocate
        ours.recognize(PARAGRAPH), pipe(PARAGRAPH)
    times = {"ours": [], "pipeline": []}
    for _ in range(calls):
        times["ours"].append(timed(lambda: ours.recognize(PARAGRAPH))[1] * 1000)
        times["pipeline"].append(timed(lambda: pipe(PARAGRAPH))[1] * 1000)
    return {name: {"p50_ms": round(percentile(t, 0.5), 2), "p95_ms": round(percentile(t, 0.95), 2)}
            for name, t in times.items()}


def long_document(split) -> tuple[str, int]:
    """Whole test documents, one paragraph each, until ``LONG_DOC_WORDS`` words; and their gold
    entity count."""
    paragraphs, current, doc, words, gold = [], [], None, 0, 0
    for sentence in sentences_of(split):
        if sentence.doc_id != doc and current:
            paragraphs.append(" ".join(current))
            current = []
            if words >= LONG_DOC_WORDS:
                break
        doc = sentence.doc_id
        current.append(" ".join(sentence.tokens))
        words += len(sentence.tokens)
        gold += sum(tag.startswith("B-") for tag in sentence.tags)
    if current and words < LONG_DOC_WORDS + len(current[-1].split()):
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs), gold


def torch_default_int8(model):
    """The usual recipe: every ``Linear`` through ``quantize_dynamic`` with torch's defaults
    (weights per tensor, activations in 7 bits)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that the API moves to torchao
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def gold_raw_spans(split) -> tuple[list[str], list[set]]:
    """Each test sentence as raw text (its words joined by spaces) and its gold entities as
    character spans of that text."""
    texts, gold = [], []
    for sentence in sentences_of(split):
        starts, position = [], 0
        for word in sentence.tokens:
            starts.append(position)
            position += len(word) + 1
        found = set()
        for label, first, last in spans(sentence.tags):
            end = starts[last - 1] + len(sentence.tokens[last - 1])
            found.add((starts[first], end, label))
        texts.append(" ".join(sentence.tokens))
        gold.append(found)
    return texts, gold


def raw_text_f1(found: list[list[dict]], gold: list[set]) -> float:
    """Micro F1 of exact (start, end, type) entities against the gold character spans."""
    predicted = [{(e["start"], e["end"], e["label"]) for e in entities} for entities in found]
    hits = sum(len(p & g) for p, g in zip(predicted, gold))
    guessed, wanted = sum(map(len, predicted)), sum(map(len, gold))
    return round(2 * hits / (guessed + wanted), 4) if guessed + wanted else 1.0


def spacy_reference(texts: list[str], gold: list[set]) -> dict:
    """spaCy's small English model on the same raw texts: texts per second through ``nlp.pipe``
    with its defaults, and entity F1 with its types read as CoNLL's. Where ``en_core_web_sm`` is
    not installed (it comes from spaCy's releases, not from the package index), a blank English
    pipeline with spaCy's default ``ner`` (the model en_core_web_sm's entity recognizer is built
    on), untrained, gives the speed of entity recognition alone: more than the full small
    pipeline's, so a ratio against it understates ours. It has no F1."""
    try:
        import spacy
    except ImportError:
        return {"said": "spaCy not installed"}
    try:
        nlp, kind = spacy.load("en_core_web_sm"), "en_core_web_sm " + spacy.__version__
    except OSError:
        nlp = spacy.blank("en")
        nlp.add_pipe("ner")
        for label in SPACY_TYPES.values():
            nlp.get_pipe("ner").add_label(label)
        nlp.initialize()
        kind = f"spaCy {spacy.__version__} ner alone, untrained (en_core_web_sm not installed)"
    list(nlp.pipe(texts[:200]))  # warm-up
    docs, seconds = timed(lambda: list(nlp.pipe(texts)))
    result = {"said": kind, "texts_per_s": round(len(texts) / seconds, 1)}
    if kind.startswith("en_core_web_sm"):
        found = [[{"start": e.start_char, "end": e.end_char, "label": SPACY_TYPES[e.label_]}
                  for e in doc.ents if e.label_ in SPACY_TYPES] for doc in docs]
        result["f1"] = raw_text_f1(found, gold)
    return result


def naive_evaluation(model, tokenizer, split, batch_size: int = 64) -> tuple[float, float]:
    """The loop most people write: batches in corpus order padded to their longest sentence,
    labels from each word's first sub-token. Returns (seconds, F1)."""
    sentences = sentences_of(split)
    id2label = model.config.id2label
    started = time.perf_counter()
    predicted = []
    with torch.inference_mode():
        for b in range(0, len(sentences), batch_size):
            batch = [s.tokens for s in sentences[b:b + batch_size]]
            encoding = tokenizer(batch, is_split_into_words=True, padding=True, truncation=True,
                                 return_tensors="pt")
            labels = model(**encoding).logits.argmax(-1).tolist()
            for row, words in enumerate(batch):
                tags, seen = ["O"] * len(words), set()
                for position, word in enumerate(encoding.word_ids(row)):
                    if word is not None and word not in seen:
                        seen.add(word)
                        tags[word] = id2label[labels[row][position]]
                predicted.append(tags)
    seconds = time.perf_counter() - started
    return seconds, f1_score([s.tags for s in sentences], predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="a model name the resolver accepts")
    parser.add_argument("--data", default=default_data(), help="CoNLL-2003 directory")
    parser.add_argument("--calls", type=int, default=200, help="calls for the latency figures")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "inference.json"))
    args = parser.parse_args()
    hf_logging.set_verbosity_error()

    data = load_data(args.data)
    source = models.resolve(args.model)
    ours = Recognizer(args.model, device="cpu")
    # The pipeline reads the same files, as a user would point it at them.
    pipe = pipeline("token-classification", model=str(source.path), aggregation_strategy="simple",
                    device="cpu")
    print(f"model {args.model} ({source.path}); {torch.get_num_threads()} threads; "
          f"case feature {ours.case_feature}")

    print(f"(a) latency, {args.calls} calls each, alternating ...", flush=True)
    lat = latency(ours, pipe, args.calls)

    print("(b) test sentences as separate texts ...", flush=True)
    texts, gold_raw = gold_raw_spans(data["test"])
    ours_found, ours_s = timed(lambda: ours.recognize_batch(texts))
    pipe_found, pipe_s = timed(lambda: pipe(texts))
    pipe_batched, pipe_batched_s = timed(lambda: pipe(texts, batch_size=32))
    share = identical_share(ours_found, pipe_found)
    # The pipeline cannot mark capitals for a model trained with them; fed the same inputs as the
    # pipeline (capitals unmarked), our entities show what windows and word grouping change.
    # The pipeline's "simple" grouping reads every sub-token's own label, though the model learned
    # labels on first sub-tokens only; its "first" grouping reads words as Recognizer does.
    case_feature, ours.case_feature = ours.case_feature, False
    unmarked = ours.recognize_batch(texts)
    ours.case_feature = case_feature
    same_inputs_share = identical_share(unmarked, pipe_found)
    by_first = pipeline("token-classification", model=str(source.path),
                        aggregation_strategy="first", device="cpu")
    same_inputs_first_share = identical_share(unmarked, by_first(texts, batch_size=32))

    print("(c) long document ...", flush=True)
    document, gold_entities = long_document(data["test"])
    long_ours = ours.recognize(document)
    long_pipe = pipe(document)

    print("precisions: auto, float32, bfloat16, int8 (ours and torch's default) ...", flush=True)
    native = hardware.native_bf16("cpu")
    plain = Recognizer(args.model, device="cpu", precision="float32")
    fast = Recognizer(args.model, precision="int8")
    brain = ours if ours.precision == "bfloat16" else Recognizer(args.model, device="cpu",
                                                                 precision="bfloat16")
    usual = Recognizer(args.model, device="cpu", precision="float32")
    usual.model = torch_default_int8(usual.model)
    # Where bfloat16 is emulated it is timed on a slice only (it is about six times slower).
    bf16_texts = texts if native else texts[:EMULATED_BF16_TEXTS]
    for recognizer in (plain, fast, brain, usual):
        recognizer.recognize_batch(texts[:64])  # warm-up
    speeds, found = {}, {}
    for name, recognizer, part in (("float32", plain, texts), ("auto", ours, texts),
                                   ("int8", fast, texts), ("int8_torch_default", usual, texts),
                                   ("bfloat16", brain, bf16_texts)):
        found[name], seconds = timed(lambda: recognizer.recognize_batch(part))
        speeds[name] = round(len(part) / seconds, 1)
    raw = {"ours_" + name: raw_text_f1(found[name], gold_raw)
           for name in ("auto", "float32", "int8")}
    reference = spacy_reference(texts, gold_raw)
    evaluations = {"auto": evaluate(ours, data["validation"]),
                   "float32": evaluate(plain, data["validation"]),
                   "int8": evaluate(fast, data["validation"]),
                   "int8_torch_default": evaluate(usual, data["validation"])}
    if native:
        evaluations["bfloat16"] = evaluations["auto"] if brain is ours else \
            evaluate(brain, data["validation"])
    naive_s, naive_f1 = naive_evaluation(plain.model, plain.tokenizer, data["validation"])
    f1 = {name: round(e["overall"]["f1"], 4) for name, e in evaluations.items()}
    points = (lambda name: round((evaluations[name]["overall"]["f1"]
                                  - evaluations["float32"]["overall"]["f1"]) * 100, 2))
    ours_eval = evaluations["auto"]

    n = len(texts)
    results = {
        "machine": machine(),
        "model": args.model,
        "case_feature": ours.case_feature,
        "auto_precision": ours.precision,
        "auto_precision_said": ours.precision_said,
        "bfloat16_native": native,
        "auto_f1_points_vs_float32": points("auto"),
        "throughput_ratio_vs_pipeline": round((n / ours_s) / (n / pipe_s), 2),
        "p50_ratio_vs_pipeline": round(lat["ours"]["p50_ms"] / lat["pipeline"]["p50_ms"], 2),
        "identical_entity_share": share,
        "identical_entity_share_same_inputs": same_inputs_share,
        "identical_entity_share_same_inputs_first": same_inputs_first_share,
        "long_doc_entities_ours": len(long_ours),
        "long_doc_entities_pipeline": len(long_pipe),
        "int8_speedup": round(speeds["int8"] / speeds["float32"], 2),
        "int8_f1_points_vs_float32": points("int8"),
        "int8_torch_default_speedup": round(speeds["int8_torch_default"] / speeds["float32"], 2),
        "int8_torch_default_f1_points_vs_float32": points("int8_torch_default"),
        "int8_weight_bits": quantize.weight_bits(hardware.cpu_vnni()),
        "raw_text_entity_f1": {**raw, "spacy": reference.get("f1")},
        "spacy": reference,
        "speed_vs_spacy": (round(speeds["auto"] / reference["texts_per_s"], 2)
                           if reference.get("texts_per_s") else None),
        "eval_validation_seconds": ours_eval["seconds"],
        "eval_validation_seconds_by_precision": {name: e["seconds"]
                                                 for name, e in evaluations.items()},
        "naive_eval_validation_seconds": round(naive_s, 2),
        "latency_ms": lat,
        "texts": n,
        "texts_per_s": {"ours": round(n / ours_s, 1), "pipeline": round(n / pipe_s, 1),
                        "pipeline_batch_32": round(n / pipe_batched_s, 1),
                        **{"ours_" + name: speed for name, speed in speeds.items()}},
        "bfloat16_timed_texts": len(bf16_texts),
        "throughput_ratio_vs_pipeline_batch_32": round(pipe_batched_s / ours_s, 2),
        "long_doc_words": len(document.split()),
        "long_doc_gold_entities": gold_entities,
        "validation_f1": {**f1, "naive_loop": round(naive_f1, 4)},
        "eval_speedup_vs_naive": round(naive_s / ours_eval["seconds"], 2),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")

    rows = [
        ("(a) paragraph p50 latency, ms", lat["ours"]["p50_ms"], lat["pipeline"]["p50_ms"],
         f"{results['p50_ratio_vs_pipeline']} (ours/pipeline)"),
        ("(a) paragraph p95 latency, ms", lat["ours"]["p95_ms"], lat["pipeline"]["p95_ms"],
         f"{lat['ours']['p95_ms'] / lat['pipeline']['p95_ms']:.2f} (ours/pipeline)"),
        (f"(b) {n} test sentences, texts/s", results["texts_per_s"]["ours"],
         results["texts_per_s"]["pipeline"], f"{results['throughput_ratio_vs_pipeline']}x"),
        ("(b) ... pipeline with batch_size=32", results["texts_per_s"]["ours"],
         results["texts_per_s"]["pipeline_batch_32"],
         f"{results['throughput_ratio_vs_pipeline_batch_32']}x"),
        ("(b) identical entities (share of union)", share, "", ""),
        ("(b) ... capitals unmarked, as the pipeline reads them", same_inputs_share, "", ""),
        ("(b) ... and the pipeline grouping words by their first sub-token",
         same_inputs_first_share, "", ""),
        (f"(c) {results['long_doc_words']}-word document, entities "
         f"(gold {gold_entities})", len(long_ours), len(long_pipe), ""),
        (f"(d) raw test texts, auto ({ours.precision}) vs spaCy, texts/s",
         speeds["auto"], reference.get("texts_per_s", "-"),
         f"{results['speed_vs_spacy']}x" if results["speed_vs_spacy"] else reference["said"]),
        ("(d) entity F1 on those raw texts, auto vs spaCy", raw["ours_auto"],
         reference.get("f1") if reference.get("f1") is not None else "-",
         f"{(raw['ours_auto'] - reference['f1']) * 100:+.2f} points"
         if reference.get("f1") is not None else ""),
        ("(d) ... float32 / int8", raw["ours_float32"], raw["ours_int8"], ""),
        (f"auto ({ours.precision}) vs float32 on (b), texts/s", speeds["auto"],
         speeds["float32"], f"{speeds['auto'] / speeds['float32']:.2f}x"),
        ("validation F1, auto vs float32", f1["auto"], f1["float32"],
         f"{results['auto_f1_points_vs_float32']:+.2f} points"),
        ("int8 vs float32 on (b), texts/s", speeds["int8"], speeds["float32"],
         f"{results['int8_speedup']}x"),
        ("validation F1, int8 vs float32", f1["int8"], f1["float32"],
         f"{results['int8_f1_points_vs_float32']:+.2f} points"),
        ("torch's default int8 vs float32 on (b), texts/s", speeds["int8_torch_default"],
         speeds["float32"], f"{results['int8_torch_default_speedup']}x"),
        ("validation F1, torch's default int8 vs float32", f1["int8_torch_default"],
         f1["float32"], f"{results['int8_torch_default_f1_points_vs_float32']:+.2f} points"),
        (f"bfloat16 vs float32, texts/s ({len(bf16_texts)} texts)", speeds["bfloat16"],
         speeds["float32"], f"{speeds['bfloat16'] / speeds['float32']:.2f}x"),
        ("validation evaluation, auto, s (vs naive loop)", ours_eval["seconds"],
         results["naive_eval_validation_seconds"], f"{results['eval_speedup_vs_naive']}x"),
    ]
    print(f"\n{'figure':52} {'ours':>10} {'reference':>10}  ratio")
    for name, a, b, ratio in rows:
        print(f"{name:52} {a!s:>10} {b!s:>10}  {ratio}")
    print(f"\nmachine: {results['machine']['cpu']} ({results['machine']['instruction_set']}); "
          f"auto computes in {ours.precision_said}")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
