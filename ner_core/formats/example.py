"""What every format reads into and writes from: an ``Example`` (a text and its character spans,
with the file's own words when it has them), and the ``Report`` of what a conversion changed.

Readers fill a ``Report`` as they go (records read, records left out and why) and ``align`` adds
what putting the spans on words changed, so nothing is dropped without being counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

EXAMPLES_KEPT = 5  # the first cases of each change kept in a report, with their record and line

# What a report counts, in the user's words: the key, then what one of them means.
CHANGES = {
    "widened": "a span that cut a word, widened to the whole word",
    "trimmed": "a span with spaces at an end, trimmed to its first and last character",
    "overlap": "a span that overlapped a longer one (nested or crossing), dropped; the longer kept",
    "duplicate": "the same span twice, kept once",
    "no words": "a span over spaces only, dropped",
    "unknown type": "a span of a type outside the label set, dropped",
    "discontinuous": "a span in several pieces (BRAT fragments), dropped",
    "not an entity": "a relation, event, attribute or note of the file, not read",
    "not accepted": "a record not answered 'accept' (Prodigy), left out",
    "cancelled": "a cancelled annotation (Label Studio), not used",
    "older annotation": "an earlier annotation of a task that has a later one (Label Studio), not used",
    "unannotated": "a record with no annotation at all, left out",
    "empty text": "a record without text, left out",
    "utf-16 offsets": "offsets counted in UTF-16 units (older Label Studio, text with emoji), "
                      "moved onto the characters they meant",
    "whitespace word": "a word of only spaces or line breaks (spaCy), left out of word-based files",
}


@dataclass(frozen=True)
class Span:
    """An entity: ``text[start:end]`` is of type ``label``; ``score`` when a model found it."""

    start: int
    end: int
    label: str
    score: float | None = field(default=None, compare=False)


@dataclass
class Example:
    """One labelled text as a file gave it.

    ``words`` are the file's own tokens as ``(start, end)`` offsets into ``text`` when it has them
    (CoNLL, Hugging Face, spaCy, Prodigy with ``tokens``), else ``None`` and the studio's word
    splitter (``ner_core.text``) decides. ``record`` is the record's 0-based index in its file (a
    task, a line, a sentence, a document), ``line`` the 1-based line it starts on (0 when the
    format has no lines), ``source`` the file (or split) it came from, for messages. Examples of
    one document share ``doc_id``. A ``sentence`` example is kept as one sentence; any other is
    split into sentences for training and the word-based formats. ``meta`` keeps what a format
    wants back when the same format is written (a Label Studio task id, a BRAT document name).
    """

    text: str
    spans: list[Span]
    words: list[tuple[int, int]] | None = None
    record: int = 0
    line: int = 0
    source: str = ""
    doc_id: int = 0
    meta: dict = field(default_factory=dict)
    sentence: bool = False  # one sentence as the file gave it (CoNLL, Hugging Face rows): kept whole

    def where(self) -> str:
        """Where the example is, for messages: ``file:line`` or ``file, record N``.

        >>> Example("a", [], record=3, line=12, source="x.jsonl").where()
        'x.jsonl:12'
        >>> Example("a", [], record=3, source="x.json").where()
        'x.json, record 4'
        """
        if self.line:
            return f"{self.source}:{self.line}"
        return f"{self.source}, record {self.record + 1}"


class Report:
    """What a conversion read and changed: counts of each change with its first examples.

    >>> report = Report("x.jsonl", "doccano")
    >>> report.add("widened", Example("New Yorker", [], line=2, source="x.jsonl"), "'New York' -> 'New Yorker'")
    >>> report.counts["widened"], report.as_dict()["changes"]["widened"]["examples"][0]["where"]
    (1, 'x.jsonl:2')
    """

    def __init__(self, source: str, format: str) -> None:
        self.source = source
        self.format = format
        self.records = 0  # records the file holds (tasks, lines, sentences, documents)
        self.examples = 0  # examples kept
        self.entities_read = 0  # spans the kept records carried
        self.entities_kept = 0  # spans kept after alignment
        self.counts: Counter[str] = Counter()
        self.cases: dict[str, list[dict]] = {}
        self.types: Counter[str] = Counter()  # kept entities per type

    def add(self, change: str, example: Example | None, detail: str, n: int = 1) -> None:
        """Count ``n`` of ``change`` (a key of ``CHANGES``), keeping the first few cases."""
        if change not in CHANGES:
            raise KeyError(f"unknown change {change!r}; expected one of {', '.join(CHANGES)}")
        self.counts[change] += n
        kept = self.cases.setdefault(change, [])
        if len(kept) < EXAMPLES_KEPT:
            case = {"detail": detail}
            if example is not None:
                case.update(where=example.where(), record=example.record, line=example.line)
            kept.append(case)

    def merge(self, other: Report) -> None:
        """Add ``other``'s counts to these (the splits of one source)."""
        self.records += other.records
        self.examples += other.examples
        self.entities_read += other.entities_read
        self.entities_kept += other.entities_kept
        self.counts.update(other.counts)
        self.types.update(other.types)
        for change, cases in other.cases.items():
            kept = self.cases.setdefault(change, [])
            kept.extend(cases[:EXAMPLES_KEPT - len(kept)])

    @property
    def changed(self) -> int:
        """How many changes were counted in all."""
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        """The report as JSON: what the CLI's ``--report`` and a run's card keep."""
        return {
            "source": self.source, "format": self.format, "records": self.records,
            "examples": self.examples, "entities_read": self.entities_read,
            "entities_kept": self.entities_kept, "types": dict(sorted(self.types.items())),
            "changes": {change: {"count": self.counts[change], "meaning": CHANGES[change],
                                 "examples": self.cases.get(change, [])}
                        for change in CHANGES if self.counts[change]},
        }

    def summary(self) -> str:
        """One line: what was read and kept.

        >>> r = Report("x.jsonl", "doccano"); r.records = r.examples = 2
        >>> r.entities_read = r.entities_kept = 3
        >>> r.summary()
        'x.jsonl (doccano): 2 records, 2 examples, 3 of 3 entities kept, nothing changed'
        """
        changed = ", ".join(f"{self.counts[c]} {c}" for c in CHANGES if self.counts[c])
        return (f"{self.source} ({self.format}): {self.records:,} records, {self.examples:,} "
                f"examples, {self.entities_kept:,} of {self.entities_read:,} entities kept, "
                f"{changed or 'nothing changed'}")

    def lines(self) -> list[str]:
        """The summary, then a line per change with its first cases: the CLI's and the page's text."""
        out = [self.summary()]
        for change in CHANGES:
            if not self.counts[change]:
                continue
            out.append(f"- {change}: {self.counts[change]:,} ({CHANGES[change]})")
            out += [f"    {case.get('where', self.source)}: {case['detail']}"
                    for case in self.cases.get(change, [])]
        return out
