"""Hugging Face datasets: rows of ``tokens`` and their tags, from a ``save_to_disk`` folder, a
Parquet or JSON Lines file, or the Hub; written as ``tokens``, ``ner_tags`` and ``doc_id``.

Tags are ``ner_tags`` ids with the ClassLabel names of the features, or strings, in a column
``ner_tags``, ``tags``, ``ner``, ``labels`` or ``ner_labels`` (the first there, unless one is
named); IOB1, BIOES and BILOU tags are read as IOB2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..data import to_dataset_dict
from ..errors import UserError
from ..hub import is_dataset_id
from ..labels import (
    iob2_labels,
)
from .align import to_sentences
from .example import Example, Report
from .files import (
    first_record,
    json_records,
    replace_file,
    replace_folder,
    write_jsonl,
)
from .huggingface_card import dataset_card
from .huggingface_rows import TAG_COLUMNS, Table, class_names, examples_of

NAME = "huggingface"
TITLE = "Hugging Face dataset"
SUFFIXES = ("", ".parquet", ".jsonl", ".json")  # "": a save_to_disk folder
EXAMPLE_LINE = ('{"tokens": ["Anna", "lives", "in", "Berlin", "."], '
                '"ner_tags": ["B-PER", "O", "O", "B-LOC", "O"]}')
SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation",
               "dev": "validation", "val": "validation", "test": "test"}
SAVED_FILES = ("dataset_dict.json", "state.json")  # what save_to_disk leaves in its folder

T = TypeVar("T")

__all__ = ["dataset_card", "label_names", "looks_like", "read", "read_hub", "read_splits",
           "to_dataset", "write"]


def looks_like(path: Path, head: str) -> bool:
    """True for a ``save_to_disk`` folder, a Parquet file with ``tokens``, or JSON whose first
    record has ``tokens`` as a list of strings."""
    if path.is_dir():
        return any((path / name).is_file() for name in SAVED_FILES)
    if path.suffix.lower() == ".parquet":
        with path.open("rb") as handle:
            if handle.read(4) != b"PAR1":
                return False
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return "tokens" in pq.read_schema(path).names
        except pa.ArrowException:  # the magic bytes but no readable schema: not this format
            return False
    record = first_record(head)
    tokens = record.get("tokens") if record else None
    return isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) \
        and "spans" not in record


def read(path: Path, report: Report, tag_column: str | None = None) -> list[Example]:
    """Every row with tokens as an example, split after split for a ``DatasetDict``."""
    tables = _tables(Path(path))
    return [e for examples in _split_examples(tables, report, tag_column).values()
            for e in examples]


def read_splits(path: Path, report: Report, tag_column: str | None = None
                ) -> dict[str, list[Example]]:
    """The examples of each split (train; validation, valid, dev or val; test); one file or
    ``Dataset`` is the split ``train``."""
    path = Path(path)
    tables = _tables(path)
    return _split_examples({_split_names(str(path), list(tables))[s]: t
                            for s, t in tables.items()}, report, tag_column)


def read_hub(repo_id: str, report: Report, config: str | None = None,
             revision: str | None = None, tag_column: str | None = None
             ) -> dict[str, list[Example]]:
    """The examples of each split of a Hub dataset, through ``datasets.load_dataset``."""
    dataset = _load_hub(repo_id, config, revision)
    names = _split_names(repo_id, list(dataset))
    tables = {names[split]: _dataset_table(rows, f"{repo_id} ({split})", f"{repo_id}/{split}")
              for split, rows in dataset.items()}
    return _split_examples(tables, report, tag_column)


def label_names(source: str | Path, config: str | None = None, revision: str | None = None,
                tag_column: str | None = None) -> list[str] | None:
    """The IOB2 label names of a source's ClassLabel tags, in their order (so a model trained
    on it keeps its label ids); ``None`` when its tags have no names (strings, JSON)."""
    path = Path(source)
    if not path.exists() and is_dataset_id(str(source)):
        from datasets import load_dataset_builder

        features = _from_hub(str(source), lambda: load_dataset_builder(
            str(source), config, revision=revision)).info.features
    elif path.is_dir():
        from datasets import DatasetDict

        dataset = _load_from_disk(path)
        features = (next(iter(dataset.values())) if isinstance(dataset, DatasetDict)
                    else dataset).features
    elif path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq
        from datasets import Features

        features = Features.from_arrow_schema(pq.read_schema(path))
    else:
        return None
    if not features:
        return None
    column = tag_column or next((c for c in TAG_COLUMNS if c in features), None)
    names = class_names(features, column)
    return iob2_labels(names) if names else None


def _require_hub(repo_id: str) -> None:
    from ..hub import require_hub

    require_hub(f"the dataset {repo_id}", "save it with datasets' save_to_disk (or as Parquet or "
                "JSON Lines) where the Hub can be reached, and give that path instead")


def _load_hub(repo_id: str, config: str | None, revision: str | None):
    from datasets import DatasetDict, load_dataset

    dataset = _from_hub(repo_id, lambda: load_dataset(repo_id, config, revision=revision))
    return dataset if isinstance(dataset, DatasetDict) else DatasetDict({"train": dataset})


def _from_hub(repo_id: str, ask: Callable[[], T]) -> T:
    """What ``ask`` gets from the Hub about ``repo_id``, the Hub's refusals said in one line."""
    _require_hub(repo_id)
    from datasets.exceptions import DatasetNotFoundError

    try:
        return ask()
    except DatasetNotFoundError as error:
        raise UserError(f"{repo_id}: expected a dataset of the Hub this token may read, found "
                        f"none ({str(error).splitlines()[0]})") from None
    except ValueError as error:  # a config or revision it does not have, said by datasets
        raise UserError(f"{repo_id}: {str(error).splitlines()[0]}") from None


def _split_names(source: str, splits: list[str]) -> dict[str, str]:
    """Each split's name as the studio calls it; other names refused, listing them."""
    if any(split not in SPLIT_NAMES for split in splits):
        raise UserError(f"{source}: expected splits named train, validation (or valid, dev, val) "
                        f"and test, found {', '.join(splits)}")
    names: dict[str, str] = {}
    for split in splits:
        twin = next((s for s, n in names.items() if n == SPLIT_NAMES[split]), None)
        if twin is not None:
            raise UserError(f"{source}: expected one {SPLIT_NAMES[split]} split, found {twin} "
                            f"and {split}")
        names[split] = SPLIT_NAMES[split]
    return names


def _tables(path: Path) -> dict[str, Table]:
    """The splits of a source by its own names (one file or ``Dataset``: ``train``)."""
    if path.is_dir():
        from datasets import DatasetDict

        dataset = _load_from_disk(path)
        if isinstance(dataset, DatasetDict):
            return {split: _dataset_table(rows, f"{path} ({split})", f"{path.name}/{split}")
                    for split, rows in dataset.items()}
        return {"train": _dataset_table(dataset, str(path), path.name)}
    if path.suffix.lower() == ".parquet":
        return {"train": _parquet_table(path)}
    return {"train": _json_table(path)}


def _load_from_disk(path: Path):
    from datasets import load_from_disk

    try:
        return load_from_disk(str(path))
    except FileNotFoundError:
        raise UserError(f"{path}: expected a folder saved by datasets' save_to_disk (with "
                        f"{' or '.join(SAVED_FILES)}), found none of them") from None


def _dataset_table(dataset, source: str, name: str) -> Table:
    return Table(source, name, list(dataset.column_names), lambda c: list(dataset[c]),
                 dataset.features)


def _parquet_table(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features

    if not path.is_file():
        raise UserError(f"{path}: expected a Parquet file, found no such file")
    try:
        table = pq.read_table(path)
    except pa.ArrowException as error:
        raise UserError(f"{path}: expected a Parquet file, found one it cannot read "
                        f"({str(error).splitlines()[0]})") from None
    return Table(str(path), path.name, table.column_names,
                 lambda c: table.column(c).to_pylist(), Features.from_arrow_schema(table.schema))


def _json_table(path: Path) -> Table:
    records = json_records(path, "rows of tokens and tags", array=True)
    columns = list(dict.fromkeys(key for _, record in records for key in record))
    lines = [line for line, _ in records]
    return Table(str(path), path.name, columns, lambda c: [r.get(c) for _, r in records], None,
                 lines if all(lines) else None)


def _split_examples(tables: dict[str, Table], report: Report, tag_column: str | None
                    ) -> dict[str, list[Example]]:
    splits, schemes = {}, []
    for split, table in tables.items():
        splits[split], scheme = examples_of(table, report, tag_column)
        schemes.append(scheme)
    report.format = f"{NAME} ({', '.join(dict.fromkeys(schemes))})"
    return splits


def to_dataset(examples_by_split: dict[str, list[Example]], labels: list[str] | None = None):
    """Aligned examples by split as a ``datasets.DatasetDict`` of ``tokens``, ``ner_tags``
    (ClassLabel: ``labels``, else the IOB2 names of ``labels.label_list``) and ``doc_id``."""
    splits = {split: to_sentences(examples) for split, examples in examples_by_split.items()}
    if labels is not None:
        missing = sorted({t for ss in splits.values() for s in ss for t in s.tags} - set(labels))
        if missing:
            raise UserError(f"expected the data's tags among the labels {', '.join(labels)}, "
                            f"found {', '.join(missing)}")
    return to_dataset_dict(splits, labels)


def write(examples: list[Example], path: Path) -> None:
    """A ``save_to_disk`` folder, or a ``.parquet`` file (ClassLabel ids), or a ``.jsonl`` or
    ``.json`` file of JSON Lines (tags as strings, which need no names to read back)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        write_jsonl(path, [{"tokens": s.tokens, "ner_tags": s.tags, "doc_id": s.doc_id}
                           for s in to_sentences(examples)])
        return
    dataset = to_dataset({"train": examples})["train"]
    if suffix == ".parquet":
        replace_file(path, lambda temporary: dataset.to_parquet(str(temporary)))
    else:
        replace_folder(path, lambda folder: dataset.save_to_disk(str(folder)))
