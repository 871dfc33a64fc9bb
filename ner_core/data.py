"""Labelled data: CoNLL files, directories of them, the Hub's conll2003, and the DatasetDict.

We parse CoNLL by hand rather than with the ``conll`` builder of ``datasets``: that builder pads or
cuts malformed lines silently, drops ``-DOCSTART-`` boundaries and knows nothing of IOB1, while we
must refuse a bad line with its number and keep a document id for every sentence.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from . import hub, utf8
from .errors import UserError
from .labels import iob1_to_iob2, is_valid_tag, label_list, starts_entity_iob1, tag_problem

logger = logging.getLogger(__name__)

HUB_DATASET = "conll2003"
# What users call the splits, in the order a directory is searched.
SPLIT_FILES = {
    "train": ("train.txt", "eng.train"),
    "validation": ("valid.txt", "dev.txt", "validation.txt", "eng.testa"),
    "test": ("test.txt", "eng.testb"),
}


_COLUMNS = re.compile(r"[ \t]+")


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
    scheme: str  # the scheme found in the file: "IOB1" (converted to IOB2) or "IOB2"


def read_conll(path: str | Path) -> ConllFile:
    """Read one CoNLL file: token first, NER tag last, blank lines between sentences.

    Raises ``UserError`` naming the file and line for anything it cannot read; nothing is
    returned half-read.
    """
    path = Path(path)
    text = _read_text(path)
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    n_columns = None
    doc_id, saw_docstart, first_line = 0, False, 0

    def close_sentence() -> None:
        if tokens:
            sentences.append(Sentence(list(tokens), list(tags), doc_id, first_line))
            tokens.clear()
            tags.clear()

    # Lines end at '\n' only and columns are split at spaces and tabs only: str.splitlines() and
    # str.split() would also break at U+2028, form feeds or no-break spaces inside a token.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        columns = _COLUMNS.split(line.strip(" \t"))
        columns = [] if columns == [""] else columns
        if not columns:
            close_sentence()
            continue
        if columns[0] == "-DOCSTART-":
            close_sentence()
            doc_id += saw_docstart or bool(sentences)
            saw_docstart = True
            continue
        if n_columns is None:
            if len(columns) < 2:
                raise UserError(f"{path}:{number}: expected at least 2 columns (token ... tag), "
                                f"found 1: {line.strip()!r}")
            n_columns = len(columns)
        elif len(columns) != n_columns:
            raise UserError(f"{path}:{number}: expected {n_columns} columns like the lines above, "
                            f"found {len(columns)}: {line.strip()!r}")
        if not is_valid_tag(columns[-1]):
            raise UserError(f"{path}:{number}: {tag_problem(columns[-1])}")
        if not tokens:
            first_line = number
        tokens.append(columns[0])
        tags.append(columns[-1])
    close_sentence()

    if not sentences:
        raise UserError(f"{path}: expected sentences of 'token ... tag' lines, found none")
    if not saw_docstart:
        # Without -DOCSTART- nothing says which sentences belong together: keep each alone.
        for i, sentence in enumerate(sentences):
            sentence.doc_id = i
    scheme = "IOB1" if any(starts_entity_iob1(s.tags) for s in sentences) else "IOB2"
    if scheme == "IOB1":
        logger.info("%s uses IOB1 tags; converted to IOB2", path)
        for sentence in sentences:
            sentence.tags = iob1_to_iob2(sentence.tags)
    return ConllFile(path, sentences, scheme)


def _read_text(path: Path) -> str:
    text = read_utf8(path, "a CoNLL file")
    if not text.strip():
        raise UserError(f"{path}: expected CoNLL text, found an empty file")
    return text


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


def load_data(source: str | Path | None = None) -> DatasetDict:
    """Labelled data from a directory of CoNLL files, one CoNLL file, or the Hub's ``conll2003``.

    ``None`` means ``$NER_DATA_DIR`` when it is set, else the Hub. One file becomes the split
    ``train``.
    """
    if source is None:
        source = os.environ.get("NER_DATA_DIR") or HUB_DATASET
    path = Path(source)
    if path.is_dir():
        files = find_split_files(path)
        return to_dataset_dict({split: read_conll(f).sentences for split, f in files.items()})
    if path.is_file():
        return to_dataset_dict({"train": read_conll(path).sentences})
    if str(source) == HUB_DATASET:
        return load_hub_conll2003()
    raise UserError(f"expected a directory of CoNLL files, a CoNLL file or '{HUB_DATASET}', "
                    f"found {str(source)!r}, which does not exist")


def load_hub_conll2003() -> DatasetDict:
    """CoNLL-2003 from the Hugging Face Hub (the path a Space with a network takes)."""
    hub.require_hub(f"the dataset {HUB_DATASET}", "point --data or NER_DATA_DIR at a directory "
                    "of CoNLL files (train.txt, valid.txt, test.txt) instead")
    from datasets import load_dataset

    # The canonical "conll2003" is a loading script, which datasets >= 4 refuses; this is the
    # same data converted to parquet by the Hub.
    hub_data = load_dataset("eriktks/conll2003", revision="refs/convert/parquet")
    names = hub_data["train"].features["ner_tags"].feature.names
    splits = {}
    for split, rows in hub_data.items():
        # The Hub copy drops -DOCSTART- lines: no document boundaries, so each sentence stands alone.
        splits[split] = [Sentence(row["tokens"], [names[t] for t in row["ner_tags"]], i, 0)
                         for i, row in enumerate(rows) if row["tokens"]]
    return to_dataset_dict(splits, labels=names)


def sentences_of(split: Dataset) -> list[Sentence]:
    """The ``Sentence`` list back from a split of ``to_dataset_dict``."""
    names = split.features["ner_tags"].feature.names
    return [Sentence(tokens, [names[t] for t in tags], doc_id, 0)
            for tokens, tags, doc_id in zip(split["tokens"], split["ner_tags"], split["doc_id"])]
