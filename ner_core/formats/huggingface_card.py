"""The README.md of a labelled dataset on the Hub: YAML front matter the Hub files it by, and
what it holds (sentences per split, entities per type).
"""

from __future__ import annotations

import json
from collections import Counter

from ..labels import spans

# The Hub's size categories: the first whose bound exceeds the number of sentences.
SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))


def size_category(n: int) -> str:
    """The Hub's size category for ``n`` rows.

    >>> size_category(999), size_category(1_000), size_category(20_000_000)
    ('n<1K', '1K<n<10K', 'n>10M')
    """
    return next((name for bound, name in SIZES if n < bound), "n>10M")


def entity_counts(split) -> Counter:
    """Entities per type in a split of ``tokens`` and ClassLabel ``ner_tags`` (IOB2)."""
    names = split.features["ner_tags"].feature.names
    counts: Counter = Counter()
    for ids in split["ner_tags"]:
        counts.update(kind for kind, _, _ in spans([names[i] for i in ids]))
    return counts


def dataset_card(dataset_dict, name: str) -> str:
    """README.md for a ``DatasetDict`` of ``tokens``, ``ner_tags`` and ``doc_id`` pushed to the
    Hub as ``name``."""
    splits = list(dataset_dict)
    counts = {split: entity_counts(dataset_dict[split]) for split in splits}
    sentences = {split: dataset_dict[split].num_rows for split in splits}
    names = dataset_dict[splits[0]].features["ner_tags"].feature.names
    types = sorted({kind for c in counts.values() for kind in c})
    lines = [
        "---",
        "task_categories:", "- token-classification",
        "task_ids:", "- named-entity-recognition",
        f"pretty_name: {json.dumps(name, ensure_ascii=False)}",
        "size_categories:", f"- {size_category(sum(sentences.values()))}",
        "tags:", "- ner",
        "---", "",
        f"# {name}", "",
        "Sentences labelled with named entities. Each row has `tokens` (the words), `ner_tags` "
        "(their IOB2 tags, as ids of the names below) and `doc_id` (the sentences of one "
        "document share it).", "",
        "| split | sentences | entities |", "| --- | ---: | ---: |",
        *(f"| {s} | {sentences[s]:,} | {sum(counts[s].values()):,} |" for s in splits), "",
        "Entities per type:", "",
        f"| type | {' | '.join(splits)} |", f"| --- |{' ---: |' * len(splits)}",
        *(f"| {kind} | {' | '.join(f'{counts[s][kind]:,}' for s in splits)} |"
          for kind in types), "",
        f"Tag names, in id order: {', '.join(f'`{n}`' for n in names)}.", "",
    ]
    return "\n".join(lines)
