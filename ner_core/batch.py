"""Whole files in, entities out: ``recognize_file`` streams a file of texts through a recognizer.

Records are read a chunk at a time, recognized together and written before the next chunk is
read, so memory stays flat however large the file. The output is written under a temporary name
beside it and renamed when complete: an error or Ctrl-C leaves neither a half file nor the
temporary one. Under ``torchrun`` the processes share the chunks (chunk k goes to rank k % world)
and rank 0 writes them in file order; each chunk is recognized exactly as one process would, so
the output is the same byte for byte.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .records import CSV_COLUMNS, TEXT_FIELD, Record, csv_rows, output_object, read_records

OUTPUT_FORMATS = {".jsonl": "jsonl", ".csv": "csv"}
# Texts read and recognized together. Their windows are sorted by length into the model's
# batches: on CoNLL-2003 sentences, chunks of 256 texts pad 24% more than one sort of the whole
# test set, 2,048 only 3%.
BATCH_SIZE = 2048
CHUNK_CHARS = 1_000_000  # a chunk also ends at this many characters, so long texts stay bounded
MOST_FREQUENT = 10  # entities listed in a summary
SKIPPED_LINES_KEPT = 1_000  # line numbers of skipped records kept in a summary (all are counted)
SKIPPED_LINES_SHOWN = 10  # of those, named in a message
_DISTINCT_COUNTED = 100_000  # distinct entities counted exactly; past that, the rarest are dropped


@dataclass(frozen=True)
class Ranks:
    """Processes sharing one file: ``gather`` brings every rank's results of a round to rank 0
    (a list, by rank) and returns ``None`` elsewhere. The default is one process."""

    rank: int = 0
    world: int = 1
    gather: Callable[[list], list | None] = lambda found: [found]
    device: str | None = None  # where this rank's model runs; None lets the Recognizer choose


@dataclass
class BatchSummary:
    """What ``recognize_file`` did: records recognized and skipped, entities by type and the most
    frequent ones (``{"text", "type", "count"}``; exact unless ``most_frequent_exact`` is False,
    when the file had too many distinct entities to count them all and counts are lower bounds)."""

    output: str
    format: str
    records: int = 0
    entities: int = 0
    per_type: dict[str, int] = field(default_factory=dict)
    most_frequent: list[dict] = field(default_factory=list)
    most_frequent_exact: bool = True
    skipped: int = 0
    skipped_lines: list[int] = field(default_factory=list)  # the first SKIPPED_LINES_KEPT
    max_chars: int | None = None  # the longest text recognized; longer ones were skipped


def output_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format the output's extension names.

    >>> output_format("entities.csv"), output_format("out.txt", "jsonl")
    ('csv', 'jsonl')
    """
    if fmt is None:
        suffix = Path(path).suffix.lower()
        if suffix not in OUTPUT_FORMATS:
            raise UserError(f"{path}: expected an output file ending in .jsonl or .csv (or a "
                            f"format named), found {suffix or 'no extension'!r}")
        return OUTPUT_FORMATS[suffix]
    if fmt not in OUTPUT_FORMATS.values():
        raise UserError(f"format must be one of jsonl, csv, found {fmt!r}")
    return fmt


def count_records(path: str | Path, text_field: str = TEXT_FIELD,
                  max_chars: int | None = None) -> tuple[int, int]:
    """(records to recognize, records too long to) in ``path``, read through once: bad input is
    found here, before any work."""
    skipped = []
    kept = sum(1 for _ in read_records(path, text_field, max_chars=max_chars,
                                       on_skip=skipped.append))
    return kept, len(skipped)


def recognize_file(recognizer, input_path: str | Path, output_path: str | Path,
                   fmt: str | None = None, text_field: str = TEXT_FIELD, *,
                   batch_size: int = BATCH_SIZE, threshold: float = 0.0,
                   on_progress: Callable[[int, int], None] | None = None,
                   ranks: Ranks = Ranks(), checked: int | None = None) -> BatchSummary | None:
    """Recognize every record of ``input_path`` and write them with their entities to
    ``output_path`` (``fmt`` jsonl: each record's fields plus ``entities``; csv: a row per entity,
    ``CSV_COLUMNS``). Texts longer than the recognizer's limit are skipped and counted.

    The whole input is checked first (``count_records``), unless the caller has done so and
    passes the number of records to recognize as ``checked``; ``on_progress(done, total)`` then
    follows the records. Returns the summary on rank 0 and ``None`` on the others.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    fmt = output_format(output_path, fmt)
    if not 1 <= batch_size <= 100_000:
        raise UserError(f"batch size must be between 1 and 100000, found {batch_size!r}")
    if not output_path.parent.is_dir():
        raise UserError(f"{output_path}: expected a file in an existing directory, found no "
                        f"directory {output_path.parent}")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise UserError(f"{output_path}: expected an output file other than the input")
    total = checked if checked is not None else \
        count_records(input_path, text_field, recognizer.max_text_chars)[0]
    summary = BatchSummary(output=str(output_path), format=fmt,
                           max_chars=recognizer.max_text_chars)
    records = read_records(input_path, text_field, max_chars=recognizer.max_text_chars,
                           on_skip=lambda line: _skip(summary, line))
    tally = _Tally()
    writing = _written_then_renamed(output_path) if ranks.rank == 0 else nullcontext()
    with writing as handle:
        write = _writer(handle, fmt) if handle is not None else None
        for round_ in _rounds(_chunks(records, batch_size), ranks.world):
            mine = round_[ranks.rank] if ranks.rank < len(round_) else []
            found = recognizer.recognize_batch([r.text for r in mine], threshold) if mine else []
            gathered = ranks.gather(found)
            if gathered is None:
                continue
            for chunk, chunk_entities in zip(round_, gathered):
                for record, entities in zip(chunk, chunk_entities):
                    write(record, entities)
                    tally.add(entities)
                summary.records += len(chunk)
            if on_progress is not None:
                on_progress(summary.records, total)
    if ranks.rank != 0:
        return None
    tally.fill(summary)
    return summary


def describe(summary: BatchSummary) -> str:
    """One line saying what ``recognize_file`` did."""
    types = ", ".join(f"{label} {n:,}" for label, n in summary.per_type.items())
    line = (f"wrote {summary.output} ({summary.format}): {summary.records:,} records, "
            f"{summary.entities:,} entities" + (f" ({types})" if types else ""))
    return line + (f"; {skipped_text(summary)}" if summary.skipped else "")


def skipped_text(summary: BatchSummary) -> str:
    """What was skipped, and where (the first ``SKIPPED_LINES_SHOWN`` lines).

    >>> skipped_text(BatchSummary("out.jsonl", "jsonl", skipped=2, skipped_lines=[2, 4],
    ...                           max_chars=30))
    'skipped 2 records longer than the model reads (30 characters), on lines 2, 4'
    """
    shown = ", ".join(map(str, summary.skipped_lines[:SKIPPED_LINES_SHOWN]))
    more = ", ..." if summary.skipped > SKIPPED_LINES_SHOWN else ""
    limit = f" ({summary.max_chars:,} characters)" if summary.max_chars is not None else ""
    return (f"skipped {summary.skipped:,} records longer than the model reads{limit}, on lines "
            f"{shown}{more}")


@contextmanager
def torchrun_ranks() -> Iterator[Ranks]:
    """The processes of a ``torchrun`` launch (from its ``WORLD_SIZE``, ``RANK`` and
    ``LOCAL_RANK``), joined over gloo on CPUs or nccl on GPUs; one process without torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        yield Ranks()
        return
    import torch
    import torch.distributed as dist

    device = None
    if torch.cuda.is_available():
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    def gather(found: list) -> list | None:
        gathered = [None] * world if rank == 0 else None
        dist.gather_object(found, gathered, dst=0)
        return gathered

    try:
        yield Ranks(rank=rank, world=world, gather=gather, device=device)
    finally:
        dist.destroy_process_group()


def _skip(summary: BatchSummary, line: int) -> None:
    summary.skipped += 1
    if len(summary.skipped_lines) < SKIPPED_LINES_KEPT:
        summary.skipped_lines.append(line)


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """Consecutive records, ``size`` at a time or fewer where they reach ``CHUNK_CHARS``."""
    chunk, chars = [], 0
    for record in records:
        chunk.append(record)
        chars += len(record.text)
        if len(chunk) == size or chars >= CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _rounds(chunks: Iterable[list[Record]], world: int) -> Iterator[list[list[Record]]]:
    """Chunks ``world`` at a time: one round gives every rank at most one chunk."""
    chunks = iter(chunks)
    while round_ := list(itertools.islice(chunks, world)):
        yield round_


@contextmanager
def _written_then_renamed(path: Path):
    """A text file to write ``path``'s content into, renamed to ``path`` only once complete."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("x", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _writer(handle, fmt: str) -> Callable[[Record, list[dict]], None]:
    if fmt == "jsonl":
        return lambda record, entities: handle.write(
            json.dumps(output_object(record, entities), ensure_ascii=False) + "\n")
    rows = csv.writer(handle, lineterminator="\n")
    rows.writerow(CSV_COLUMNS)
    return lambda record, entities: rows.writerows(csv_rows(record, entities))


class _Tally:
    """Entities by type, and by (text, type) for the most frequent: past ``_DISTINCT_COUNTED``
    distinct ones the rarer half is dropped, so a huge file cannot fill memory with counts."""

    def __init__(self) -> None:
        self.per_type: Counter = Counter()
        self.by_entity: Counter = Counter()
        self.exact = True

    def add(self, entities: list[dict]) -> None:
        for entity in entities:
            self.per_type[entity["label"]] += 1
            self.by_entity[entity["text"], entity["label"]] += 1
        if len(self.by_entity) > _DISTINCT_COUNTED:
            self.by_entity = Counter(dict(self.by_entity.most_common(_DISTINCT_COUNTED // 2)))
            self.exact = False

    def fill(self, summary: BatchSummary) -> None:
        summary.entities = sum(self.per_type.values())
        summary.per_type = dict(self.per_type.most_common())
        summary.most_frequent = [{"text": text, "type": label, "count": n}
                                 for (text, label), n in self.by_entity.most_common(MOST_FREQUENT)]
        summary.most_frequent_exact = self.exact
