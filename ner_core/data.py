"""Labelled data as the ``DatasetDict`` training and scoring read: from a file or folder in any
format of ``ner_core.formats``, a Hub dataset, or the Hub's CoNLL-2003; and the CoNLL splits of a
folder by their usual names.

Every source goes the same way: its examples are read (``formats.read_splits``), put on whole
words with every change counted in a ``Report``, and made IOB2-tagged sentences (``Sentence``,
one ``doc_id`` per document: context never crosses documents).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from . import hub, utf8
from .errors import UserError
from .labels import label_list

if TYPE_CHECKING:
    from .formats import Example, Report

logger = logging.getLogger(__name__)

HUB_DATASET = "conll2003"
# What users call the splits, in the order a directory is searched.
SPLIT_FILES = {
    "train": ("train.txt", "eng.train"),
    "validation": ("valid.txt", "dev.txt", "validation.txt", "eng.testa"),
    "test": ("test.txt", "eng.testb"),
}


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]  # IOB2
    doc_id: int  # sentences of one document share it; context never crosses documents
    line: int  # line number of the first token, for messages


@dataclass
class ConllFile:
    path: Path
    sentences: list[Sentence]
    scheme: str  # the file's tag scheme ("IOB1", "IOB2", "BIOES", "BILOU"), read as IOB2


def read_conll(path: str | Path) -> ConllFile:
    """Read one CoNLL file: token first, NER tag last, blank lines between sentences.

    Raises ``UserError`` naming the file and line for anything it cannot read; nothing is
    returned half-read. The parser is ``formats.conll``'s, the one every CoNLL source goes through.
    """
    from .formats.conll import read_sentences

    sentences, scheme = read_sentences(Path(path))
    return ConllFile(Path(path), sentences, scheme)


def read_utf8(path: Path, what: str = "a text file") -> str:
    """A UTF-8 text file's content; ``UserError`` naming the file and line when it is not one."""
    if not path.is_file():
        raise UserError(f"{path}: expected {what}, found no such file")
    return utf8.decode(utf8.without_bom(path.read_bytes(), path), path)


def find_split_files(directory: str | Path) -> dict[str, Path]:
    """The CoNLL files of a directory by split, found by their usual names."""
    directory = Path(directory)
    found = {}
    for split, names in SPLIT_FILES.items():
        for name in names:
            if (directory / name).is_file():
                found[split] = directory / name
                break
    if not found:
        expected = ", ".join(name for names in SPLIT_FILES.values() for name in names)
        raise UserError(f"{directory}: expected CoNLL files named one of {expected}; found none")
    return found


def to_dataset_dict(splits: dict[str, list[Sentence]], labels: list[str] | None = None) -> DatasetDict:
    """Sentences by split as a ``DatasetDict`` of ``tokens``, ``ner_tags`` and ``doc_id``.

    ``labels`` fixes the label names; by default they come from the tags of every split.
    """
    if labels is None:
        labels = label_list({tag for sentences in splits.values() for s in sentences for tag in s.tags})
    features = Features({
        "tokens": Sequence(Value("string")),
        "ner_tags": Sequence(ClassLabel(names=labels)),
        "doc_id": Value("int32"),
    })
    index = {label: i for i, label in enumerate(labels)}
    return DatasetDict({
        split: Dataset.from_dict({
            "tokens": [s.tokens for s in sentences],
            "ner_tags": [[index[tag] for tag in s.tags] for s in sentences],
            "doc_id": [s.doc_id for s in sentences],
        }, features=features)
        for split, sentences in splits.items()
    })


def load_data(source: str | Path | None = None, format: str | None = None, *,
              data_config: str | None = None, labels: set[str] | None = None,
              cut: str = "widen", overlap: str = "longest") -> DatasetDict:
    """Labelled data by split: ``load_labelled``'s splits, without the report."""
    return load_labelled(source, format, data_config=data_config, labels=labels, cut=cut,
                         overlap=overlap)[0]


def load_labelled(source: str | Path | None = None, format: str | None = None, *,
                  data_config: str | None = None, labels: set[str] | None = None,
                  cut: str = "widen", overlap: str = "longest") -> tuple[DatasetDict, Report]:
    """Labelled data by split as a ``DatasetDict`` of ``tokens``, ``ner_tags`` and ``doc_id``,
    and the ``Report`` of what reading it counted and changed.

    ``source`` is a file or folder in any format (``format`` names it, else it is found from the
    source), a Hub dataset id ``owner/name`` (``data_config`` its configuration), or ``conll2003``
    (the Hub's); ``None`` means ``$NER_DATA_DIR`` when it is set, else ``conll2003``. A folder of
    CoNLL files or a saved ``DatasetDict`` has its splits; any other file is the split ``train``.
    ``labels`` keeps only entities of those types; ``cut`` and ``overlap`` say what to do with a
    span that cuts a word or overlaps another (``formats.align``).
    """
    from .formats import read_splits

    if source is None:
        source = os.environ.get("NER_DATA_DIR") or HUB_DATASET
    path = Path(source)
    if not path.exists() and str(source) == HUB_DATASET:
        return _hub_conll2003(labels=labels, cut=cut, overlap=overlap)
    if not path.exists() and not hub.is_dataset_id(str(source)):
        raise UserError(f"expected a labelled file or folder, a Hub dataset id (owner/name) or "
                        f"'{HUB_DATASET}', found {str(source)!r}, which does not exist")
    splits, report = read_splits(source, format, data_config=data_config, labels=labels, cut=cut,
                                 overlap=overlap)
    return _dataset_dict(splits, _class_label_names(source, report, data_config)), report


def _class_label_names(source: str | Path, report: Report,
                       data_config: str | None) -> list[str] | None:
    """The label names a Hugging Face source gives its tags, in its ``ClassLabel`` order (so
    their ids stay as the dataset has them); ``None`` for any other source."""
    from .formats import huggingface

    if report.format.partition(" (")[0] != huggingface.NAME:
        return None
    return huggingface.label_names(source, data_config)


def _dataset_dict(splits: dict[str, list[Example]], names: list[str] | None) -> DatasetDict:
    """Aligned examples by split as tagged sentences in a ``DatasetDict``; the label names are
    ``names`` when they hold every tag, else those of the tags found."""
    from .formats import to_sentences

    sentences = {split: _numbered(to_sentences(examples)) for split, examples in splits.items()}
    tags = {tag for found in sentences.values() for s in found for tag in s.tags}
    if names is not None and not tags <= set(names):
        logger.info("the data's tags %s are not all among its label names; named from the tags",
                    sorted(tags - set(names)))
        names = None
    return to_dataset_dict(sentences, labels=names)


def _numbered(sentences: list[Sentence]) -> list[Sentence]:
    """The sentences with tokens, their documents numbered 0, 1, ... in order within the split.

    >>> [s.doc_id for s in _numbered([Sentence(["a"], ["O"], 7, 1), Sentence([], [], 7, 2),
    ...                                Sentence(["b"], ["O"], 9, 3)])]
    [0, 1]
    """
    numbers: dict[int, int] = {}
    kept = [s for s in sentences if s.tokens]
    for sentence in kept:
        sentence.doc_id = numbers.setdefault(sentence.doc_id, len(numbers))
    return kept


def _hub_conll2003(*, labels: set[str] | None, cut: str,
                   overlap: str) -> tuple[DatasetDict, Report]:
    """CoNLL-2003 from the Hugging Face Hub (the path a Space with a network takes)."""
    from .formats import Report, align, from_sentences

    hub.require_hub(f"the dataset {HUB_DATASET}", "point --data or NER_DATA_DIR at a directory "
                    "of CoNLL files (train.txt, valid.txt, test.txt) instead")
    from datasets import load_dataset

    # The canonical "conll2003" is a loading script, which datasets >= 4 refuses; this is the
    # same data converted to parquet by the Hub.
    hub_data = load_dataset("eriktks/conll2003", revision="refs/convert/parquet")
    names = hub_data["train"].features["ner_tags"].feature.names
    report = Report(HUB_DATASET, "huggingface")
    splits = {}
    for split, rows in hub_data.items():
        # The Hub copy drops -DOCSTART- lines: no document boundaries, so each sentence stands alone.
        sentences = [Sentence(row["tokens"], [names[t] for t in row["ner_tags"]], i, 0)
                     for i, row in enumerate(rows) if row["tokens"]]
        report.records += len(rows)
        if len(rows) > len(sentences):
            report.add("empty text", None, f"{len(rows) - len(sentences)} rows of {split} without "
                       "tokens", n=len(rows) - len(sentences))
        splits[split] = align(from_sentences(sentences, split), report, labels=labels, cut=cut,
                              overlap=overlap)
    return _dataset_dict(splits, names), report


def sentences_of(split: Dataset) -> list[Sentence]:
    """The ``Sentence`` list back from a split of ``to_dataset_dict``."""
    names = split.features["ner_tags"].feature.names
    return [Sentence(tokens, [names[t] for t in tags], doc_id, 0)
            for tokens, tags, doc_id in zip(split["tokens"], split["ner_tags"], split["doc_id"])]
