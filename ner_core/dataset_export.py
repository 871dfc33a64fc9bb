"""A dataset of accepted examples as what training and other tools read: tagged sentences, and
files in any format of ``ner_core.formats`` (CoNLL, the studio's JSONL, Label Studio, ...).

The examples go the way every format goes: ``Example``s, put on words (``formats.align``, which
changes nothing in examples the Annotate tab snapped to words), then written or made sentences.
Like ``annotations``, every function takes the ``owner`` of the request and reads only a dataset
that owner may name.
"""

from __future__ import annotations

from pathlib import Path

from . import formats
from .annotations import examples
from .data import Sentence
from .errors import UserError
from .formats import Example, Report, Span, huggingface
from .formats import studio as studio_jsonl

STUDIO_FIELDS = ("model", "accepted_at")  # what an accepted example keeps besides its entities
# Where the Hub looks for a dataset's split "train" (its default data files), as push_to_hub names it.
HUB_PARQUET = "data/train-00000-of-00001.parquet"


def aligned_examples(name: str, *, owner: str | None = None) -> tuple[list[Example], Report]:
    """The dataset's accepted examples on whole words, one document each, in the order they were
    accepted, and the report of reading them (none for a dataset not yet created)."""
    report = Report(f"{name}.jsonl", studio_jsonl.NAME)
    found = []
    for index, accepted in enumerate(examples(name, owner=owner)):
        spans = [Span(e["start"], e["end"], e["label"]) for e in accepted["entities"]]
        meta = {key: accepted[key] for key in STUDIO_FIELDS if key in accepted}
        found.append(Example(accepted["text"], spans, record=index, line=accepted["line"],
                             source=f"{name}.jsonl", doc_id=index,
                             meta={studio_jsonl.NAME: meta}))
    report.records = len(found)
    return formats.align(found, report), report


def to_sentences(name: str, *, owner: str | None = None) -> list[Sentence]:
    """The dataset as tagged sentences: each example split into sentences and words as the
    recognizer splits text, tagged IOB2 from its entity spans, one document per example.

    Sentences an entity runs across (the splitter broke inside a name, as in ``U.S. Steel``) are
    joined, so every entity stays whole (``formats.to_sentences``). A dataset with no examples
    yet has no sentences.
    """
    return formats.to_sentences(aligned_examples(name, owner=owner)[0])


def export(name: str, path: str | Path, format: str | None = None, *,
           owner: str | None = None) -> Path:
    """Write the dataset to ``path`` in ``format`` (any name of ``formats.FORMATS``; by default
    the one the ending of ``path`` names), whole or not at all; the path written."""
    found, _ = aligned_examples(name, owner=owner)
    if not found:
        raise UserError(f"expected accepted examples in the dataset {name!r}, found none")
    formats.write(found, Path(path), format)
    return Path(path)


def export_conll(name: str, path: str | Path, *, owner: str | None = None) -> Path:
    """Write the dataset as CoNLL (``word TAG`` lines, IOB2), a ``-DOCSTART- O`` line before each
    example so document context never crosses texts; written whole or not at all."""
    return export(name, path, "conll", owner=owner)


def export_jsonl(name: str, path: str | Path, *, owner: str | None = None) -> Path:
    """Write the dataset's examples as the studio's JSONL (one example a line, with the model
    that suggested it and when it was accepted), whole or not at all."""
    return export(name, path, "studio", owner=owner)


def write_hub_dataset(found: list[Example], folder: Path, name: str) -> list[str]:
    """Aligned examples as a Hub dataset repository holds them, in ``folder``: the split
    ``train`` as Parquet (``tokens``, ClassLabel ``ner_tags``, ``doc_id``) and a README.md card
    titled ``name`` with the entities per type; the files written."""
    dataset = huggingface.to_dataset({"train": found})
    (folder / HUB_PARQUET).parent.mkdir(parents=True, exist_ok=True)
    dataset["train"].to_parquet(str(folder / HUB_PARQUET))
    (folder / "README.md").write_text(huggingface.dataset_card(dataset, name), encoding="utf-8")
    return ["README.md", HUB_PARQUET]
