"""The model card (``README.md``) written with every saved run."""

from __future__ import annotations

import shlex
from dataclasses import asdict
from pathlib import Path

from huggingface_hub import EvalResult, ModelCardData

from . import hub, models, runs
from .config import CHOSEN_ON, TrainConfig
from .labels import entity_types

# The Hub repository of the offline encoder ``minilm`` (the pip package ships its weights).
ENCODER_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
# The Hub copy of CoNLL-2003 that ``load_data("conll2003")`` reads.
CONLL2003_HUB_ID = "eriktks/conll2003"
SCORE_NAMES = ("precision", "recall", "f1", "accuracy")


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


def _is_conll2003(data: str | None) -> bool:
    """True when the data source names CoNLL-2003: the Hub's or a directory of its files."""
    return bool(data) and "conll2003" in data.replace("-", "").lower()


def _domain_limit(data: str | None) -> list[str]:
    if _is_conll2003(data):
        return ["- It learned English news (Reuters stories of 1996-97, CoNLL-2003): other domains, "
                "registers and languages score lower."]
    return []


def _lineage(facts: dict) -> list[str]:
    """For a continued fine-tune: the model it continued, the types it added, and the replay."""
    parent = facts.get("continued_from")
    if not parent:
        return []
    added = [kind for kind in entity_types(facts["labels"])
             if kind not in entity_types(parent["labels"])]
    lines = [f"Continued fine-tuning of the trained model `{parent['model']}`: its labels and "
             "classifier rows are kept as they were, "
             + (f"with rows added for the entity types new to it ({', '.join(added)})."
                if added else "and the data brought no entity type new to it.")]
    replay = facts.get("replay")
    if replay:
        lines += ["", f"Replay: {replay['sentences']:,} sentences drawn from `{_replayed(facts)}` "
                      f"(replay_ratio {replay['ratio']}) were trained on with the new ones, so "
                      "that it keeps what it knew."]
    return lines + [""]


def _teachers(facts: dict, config) -> list[str]:
    """For a distilled run: the teachers it learned from, and how much."""
    if not facts.get("teachers"):
        return []
    return [f"- Distilled: {config.distillation:.0%} of the loss matched the averaged predictions "
            f"of {', '.join(f'`{t}`' for t in facts['teachers'])}, each reading the training "
            "sentences as it was trained to; the rest, the gold labels."]


def _settings_origin(facts: dict) -> list[str]:
    """The preset the settings started from and the benchmark that preset was chosen on."""
    name = facts.get("preset")
    if name is None:
        return []
    return [f"- Settings: the `{name}` preset, then any given on top (the table below). "
            f"{CHOSEN_ON.get(name, 'No benchmark chose it.')}"]


def _replayed(facts: dict) -> str | None:
    """The replay data for the rebuild command: where it came from, or a placeholder."""
    return (facts["replay"]["data"] or "REPLAY") if facts.get("replay") else None


def _data_report(title: str, report: dict | None) -> list[str]:
    """What reading the data counted and changed, as the card states it: records, examples,
    entities kept of those read, each change with its count and meaning, entities per type."""
    if not report:
        return []
    lines = [f"### {title}", "",
             f"`{report['source']}` ({_format_title(report['format'])}): {report['records']:,} "
             f"records read, {report['examples']:,} examples kept, {report['entities_kept']:,} of "
             f"{report['entities_read']:,} entities kept.", ""]
    if report["changes"]:
        lines += ["| change | count | meaning |", "| --- | --- | --- |",
                  *[f"| {change} | {c['count']:,} | {c['meaning']} |"
                    for change, c in report["changes"].items()], ""]
    else:
        lines += ["Every entity was kept as the data gave it.", ""]
    if report["types"]:
        lines += ["| entity type | entities |", "| --- | --- |",
                  *[f"| {kind} | {n:,} |" for kind, n in report["types"].items()], ""]
    return lines


def _format_title(format: str) -> str:
    """How the studio names a report's format: ``label-studio`` is Label Studio JSON, ``conll
    (IOB1)`` CoNLL columns (IOB1)."""
    from .formats import READ_ONLY_ALIASES, format_module

    name, _, detail = format.partition(" (")
    title = format_module(READ_ONLY_ALIASES.get(name, name)).TITLE
    return f"{title} ({detail}" if detail else title


def _training_data(facts: dict) -> list[str]:
    """The card's "Training data" section, for a run that kept its data's reports."""
    sections = (_data_report("Fine-tuning data", facts.get("data_report"))
                + _data_report("Replayed data", facts.get("replay_report")))
    return ["## Training data", "", *sections] if sections else []


def hub_base_model(base_model: str) -> str | None:
    """The Hub id of the nearest Hub model ``base_model`` descends from; ``None`` when unknown.

    The Hub links a card's ``base_model`` to that repository, so a local name cannot stand there.
    A local ancestor (the bundled model, a saved run, a run's directory) is followed through its
    ``train_config.json`` to the Hub model it was fine-tuned from: the weights do descend from
    it. A directory without ``train_config.json`` has no known ancestor and gives ``None``.

    >>> hub_base_model("minilm"), hub_base_model("default"), hub_base_model("dslim/bert-base-NER")
    ('sentence-transformers/all-MiniLM-L6-v2', 'sentence-transformers/all-MiniLM-L6-v2', 'dslim/bert-base-NER')
    """
    name, seen = base_model, set()
    while name not in seen:  # a run may name itself or an earlier run as its base
        seen.add(name)
        if name == models.ENCODER:
            return ENCODER_HUB_ID
        directory = models.BUNDLED_DIR if name == models.DEFAULT else runs.run_path(name)
        if directory is None and Path(name).expanduser().is_dir():
            directory = Path(name).expanduser()
        if directory is None:
            return name if hub.is_hub_id(name) else None
        parent = (runs.read_json(directory / "train_config.json") or {}).get("base_model")
        if not isinstance(parent, str):
            return None
        name = parent
    return None


def _local_data_name(data: str | None) -> str:
    """The folder or file name of local data ('.' names the folder it stands for)."""
    return (Path(data).resolve().name if data else "") or "local CoNLL files"


def hub_metadata(name: str, config: TrainConfig, metrics: dict) -> ModelCardData:
    """The card's front matter as the Hub reads it: task, library, base model, data and scores.

    ``model-index`` holds the overall validation and test scores of ``metrics`` (seqeval, word
    level); a run stopped before scoring has none.
    """
    data = metrics["training"].get("data")
    conll = _is_conll2003(data)
    results = [
        EvalResult(task_type="token-classification", task_name="Named entity recognition",
                   # Local files have no Hub id: the type says so and the name is the folder's.
                   dataset_type=CONLL2003_HUB_ID if conll else "local",
                   dataset_name="CoNLL-2003" if conll else _local_data_name(data),
                   dataset_config="conll2003" if conll else None, dataset_split=split,
                   metric_type=score, metric_name=score.capitalize(),
                   metric_value=float(metrics[split]["overall"][score]))
        for split in ("validation", "test") if split in metrics
        for score in SCORE_NAMES if score in metrics[split]["overall"]]
    return ModelCardData(
        library_name="transformers", pipeline_tag="token-classification",
        base_model=hub_base_model(config.base_model),
        datasets=[CONLL2003_HUB_ID] if conll else None, language="en" if conll else None,
        tags=["token-classification", "ner"],
        **({"model_name": name, "eval_results": results} if results else {}))


def model_card(name: str, config: TrainConfig, metrics: dict, output: str | None = None) -> str:
    """Markdown describing a run: what it is, its scores, how it was trained and how long it took.

    It opens with the Hub's YAML front matter (``hub_metadata``). The rebuild command saves to
    ``runs/NAME``, or over ``output`` where given (the bundled model rebuilds in place).
    """
    facts = metrics["training"]
    lines = [
        "---",
        hub_metadata(name, config, metrics).to_yaml(),
        "---",
        "",
        f"# {name}",
        "",
        f"A token-classification (NER) model fine-tuned from `{config.base_model}` with `ner_core` "
        f"on {facts['train_sentences']:,} training sentences.",
        "",
        *_lineage(facts),
    ]
    if facts["stopped_early"]:
        lines += [f"Training was stopped at step {facts['steps']} of {facts['total_steps']}; these "
                  "are the weights at that step, not scored after training.", ""]
    if metrics.get("rescored"):
        lines += [f"Scored again on {metrics['rescored']} as `ner_core` reads models now; the "
                  "scores after each epoch are the training's own.", ""]
    for split in ("validation", "test"):
        if split in metrics:
            lines += [f"## Scores on {split} ({metrics[split]['n_sentences']:,} sentences, "
                      "seqeval, word level, conlleval mode)", "", *_scores_table(metrics[split]), ""]
    lines += [
        *_training_data(facts),
        "## Training",
        "",
        *_settings_origin(facts),
        *_teachers(facts, config),
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
        " ".join([config.command_line(output or f"runs/{name}", facts.get("data") or "DATA",
                                      half=facts.get("weights") == "float16",
                                      replay=_replayed(facts),
                                      inherited=(facts.get("continued_from") or {}).get("inherited"),
                                      teachers=facts.get("teachers")),
                  *map(shlex.quote, facts.get("data_flags") or []),
                  *(["--overwrite"] if output else [])]),
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
