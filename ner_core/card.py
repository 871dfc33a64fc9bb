"""The model card (``README.md``) written with every saved run."""

from __future__ import annotations

from dataclasses import asdict

from .config import TrainConfig
from .labels import entity_types


def _scores_table(scores: dict) -> list[str]:
    lines = ["| entity | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
    for entity, s in scores["per_entity"].items():
        lines.append(f"| {entity} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |")
    o = scores["overall"]
    lines.append(f"| **overall** | {o['precision']:.4f} | {o['recall']:.4f} | {o['f1']:.4f} | "
                 f"accuracy {o['accuracy']:.4f} |")
    return lines


def _lowercase_limit(case_feature: bool) -> str:
    if case_feature:
        return ("- Its tokenizer lowercases; capitals, a strong cue for names, reach it only as one "
                "mark per word (has a capital letter or not), so text in all capitals or all lower "
                "case loses that cue.")
    return "- Its tokenizer lowercases: capitals, a strong cue for names, are invisible to it."


def _domain_limit(data: str | None) -> list[str]:
    if data and "conll2003" in data.replace("-", "").lower():
        return ["- It learned English news (Reuters stories of 1996-97, CoNLL-2003): other domains, "
                "registers and languages score lower."]
    return []


def model_card(name: str, config: TrainConfig, metrics: dict, output: str | None = None) -> str:
    """Markdown describing a run: what it is, its scores, how it was trained and how long it took.

    ``output`` is where the rebuild command saves (``runs/NAME`` unless given).
    """
    facts = metrics["training"]
    lines = [
        f"# {name}",
        "",
        f"A token-classification (NER) model fine-tuned from `{config.base_model}` with `ner_core` "
        f"on {facts['train_sentences']:,} training sentences.",
        "",
    ]
    if facts["stopped_early"]:
        lines += [f"Training was stopped at step {facts['steps']} of {facts['total_steps']}; these "
                  "are the weights at that step, not scored after training.", ""]
    for split in ("validation", "test"):
        if split in metrics:
            lines += [f"## Scores on {split} ({metrics[split]['n_sentences']:,} sentences, "
                      "seqeval, word level, conlleval mode)", "", *_scores_table(metrics[split]), ""]
    lines += [
        "## Training",
        "",
        f"- Device: {facts['device']}",
        f"- Weights saved as {facts.get('weights', 'float32')}",
        f"- Wall time: {facts['seconds']:.0f} s ({facts['seconds'] / 60:.0f} min) for "
        f"{facts['steps']} steps; final training loss {facts['train_loss']}",
        "",
        "| hyperparameter | value |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in asdict(config).items()],
        "",
        "## Rebuild",
        "",
        "```bash",
        config.command_line(output or f"runs/{name}", facts.get("data") or "DATA",
                            half=facts.get("weights") == "float16"),
        "```",
        "",
        "## Limits",
        "",
        f"- It knows only the entity types of its training data: {', '.join(entity_types(facts['labels']))}.",
        *_domain_limit(facts.get("data")),
        *([_lowercase_limit(config.case_feature)] if facts.get("lowercase") else []),
        "- It is as good as its training data is like your text; scores above are on held-out "
        "sentences of the same collection.",
        "",
        "## Use",
        "",
        "```python",
        "from ner_core import Recognizer",
        f"Recognizer(\"{name}\").recognize(\"Angela Merkel visited Paris.\")",
        "```",
        "",
    ]
    return "\n".join(lines)
