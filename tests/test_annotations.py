"""Datasets of accepted examples: names, snapping spans to words (in time linear in the text),
atomic appends from threads and processes with counts kept as they go, crash leftovers, undo, and
CoNLL/JSONL exports that read back to the same entities."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import random
import re
import threading
from pathlib import Path

import pytest

from ner_core import annotations, dataset_export, dataset_paths
from ner_core.data import read_conll
from ner_core.labels import spans
from ner_core.text import split_words


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "datasets-home"
    monkeypatch.setenv("NER_DATA_HOME", str(home))
    return home


def entity(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label}


@pytest.mark.parametrize("name", ["corrections", "run-2.1", "A_b", "x" * 100])
def test_dataset_names_of_letters_digits_and_punctuation_pass(name):
    assert dataset_paths.check_name(name) == name


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "a b", "x" * 101, "é", None,
                                  "corrections\n", "corrections\r"])
def test_path_like_dataset_names_are_refused(name):
    with pytest.raises(ValueError, match=r"^expected a dataset name of letters, digits, '-', '_' "
                                         r"and '\.', found " + re.escape(repr(name)) + "$"):
        dataset_paths.check_name(name)


def test_data_home_is_beside_the_runs_without_the_variable(monkeypatch, runs_dir):
    monkeypatch.delenv("NER_DATA_HOME")
    assert dataset_paths.data_home() == runs_dir.parent / "datasets"


def test_snap_widens_cut_words_and_trims_spaces():
    text = "Anna Weber met them in Berlin ."
    snapped, notes = annotations.snap(text, [entity(24, 28, "LOC"), entity(0, 7, "PER"),
                                             entity(14, 20, "MISC")])
    assert snapped == [
        {"start": 0, "end": 10, "label": "PER", "text": "Anna Weber"},
        {"start": 15, "end": 19, "label": "MISC", "text": "them"},
        {"start": 23, "end": 29, "label": "LOC", "text": "Berlin"},
    ]
    assert notes == ["'erli' widened to 'Berlin'", "'Anna We' widened to 'Anna Weber'",
                     "' them ' trimmed to 'them'"]


def test_snap_keeps_whole_words_as_they_are():
    text = "Li Wei met Globex."
    given = [{"start": 0, "end": 6, "label": "PER", "text": "Li Wei"}]
    assert annotations.snap(text, given) == (given, [])


@pytest.mark.parametrize("entities, message", [
    ([entity(0, 10, "PER"), entity(5, 10, "ORG")],
     r"^entities overlap: 'Anna Weber' \(0-10, PER\) and 'Weber' \(5-10, ORG\)$"),
    ([entity(0, 2, "PER"), entity(3, 6, "ORG")],  # 'An' and 'a W' widen onto one word
     r"^entities overlap: 'Anna' \(0-4, PER\) and 'Anna Weber' \(0-10, ORG\)$"),
    ([entity(4, 5, "PER")], r"^entity 1 \(PER\) at 4-5: expected a span with words in it, "
                            r"found only whitespace ' '$"),
    ([entity(3, 3, "PER")], r"^entity 1 \(PER\): expected offsets with 0 <= start < end <= 19 "
                            r"\(the text's length\), found an empty span at 3-3$"),
    ([entity(15, 40, "LOC")], r"found 15-40 at 15-40$"),
    ([entity(-1, 4, "LOC")], r"found -1-4 at -1-4$"),
    ([entity(0, 4, "New type")], r"^entity 1 at 0-4: expected a type without spaces like 'PER' "
                                 r"or 'LOC', found 'New type'$"),
    ([entity(0, 4, "")], r"found ''$"),
    ([entity(0, 4.5, "PER")], r"^entity 1: expected whole-number offsets, found start=0 and "
                              r"end=4\.5$"),
    ([{"start": 0, "label": "PER"}], r"^entity 1: expected an object with 'start', 'end' and "
                                     r"'label', found"),
])
def test_snap_refuses_bad_spans(entities, message):
    with pytest.raises(ValueError, match=message):
        annotations.snap("Anna Weber left now", entities)


def old_snap_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """How a span was snapped before bisection: every word looked at, for every span."""
    inside = [(a, b) for a, b in split_words(text) if a < end and b > start]
    return (inside[0][0], inside[-1][1]) if inside else None


def test_snap_gives_what_looking_at_every_word_gave_on_a_long_text():
    rng = random.Random(7)
    text = " ".join(rng.choice(["Anna", "Weber-Lüdenscheid", "U.S.", ",", "met", "in", "Oslo.",
                                "  ", "\n"]) for _ in range(3_000))
    for _ in range(300):
        start = rng.randrange(len(text) - 1)
        end = rng.randrange(start + 1, min(len(text), start + 40) + 1)
        expected = old_snap_span(text, start, end)
        if expected is None:
            with pytest.raises(ValueError, match="expected a span with words in it"):
                annotations.snap(text, [entity(start, end, "X")])
        else:
            [snapped], _ = annotations.snap(text, [entity(start, end, "X")])
            assert (snapped["start"], snapped["end"]) == expected


class LookedAt(list):
    """Words that count how many of them are looked at (by index or by going through them)."""

    looks = 0

    def __getitem__(self, index):
        LookedAt.looks += 1
        return super().__getitem__(index)

    def __iter__(self):
        LookedAt.looks += len(self)
        return super().__iter__()


@pytest.mark.parametrize("n_words", [1_000, 16_000])
def test_snap_looks_at_a_few_words_per_entity_not_at_every_word(n_words, monkeypatch):
    # Looking at every word per entity made snapping quadratic: 40k characters took seconds.
    monkeypatch.setattr(annotations, "split_words", lambda text: LookedAt(split_words(text)))
    text = "Anna met Oslo " * (n_words // 3)
    entities = [entity(start, start + 4, "PER") for start in range(0, len(text), 140)]
    LookedAt.looks = 0
    snapped, _ = annotations.snap(text, entities)
    assert len(snapped) == len(entities)
    assert LookedAt.looks <= len(entities) * (2 * math.ceil(math.log2(n_words)) + 2)


def test_append_returns_counts_and_writes_one_line_per_accept(data_home):
    assert annotations.append("fixes", "Anna Weber visited Berlin.",
                              [entity(19, 25, "LOC"), entity(0, 10, "PER")], "tiny") \
        == {"LOC": 1, "PER": 1}
    assert annotations.append("fixes", "Nothing to see here.", []) == {"LOC": 1, "PER": 1}
    assert annotations.append("fixes", "Berlin and Oslo.",
                              [entity(0, 6, "LOC"), entity(11, 15, "LOC")]) == {"LOC": 3, "PER": 1}

    lines = (data_home / "fixes.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert set(first) == {"text", "entities", "model", "accepted_at"}
    assert first["model"] == "tiny" and json.loads(lines[1])["entities"] == []
    assert first["entities"] == [{"start": 0, "end": 10, "label": "PER", "text": "Anna Weber"},
                                 {"start": 19, "end": 25, "label": "LOC", "text": "Berlin"}]
    assert dataset_paths.dataset_names() == ["fixes"]
    assert annotations.counts("fixes") == {"LOC": 3, "PER": 1}
    assert [e["text"] for e in annotations.examples("fixes")] \
        == ["Anna Weber visited Berlin.", "Nothing to see here.", "Berlin and Oslo."]


@pytest.mark.parametrize("text, message", [
    ("   ", "^expected a text with at least one word to accept, found an empty text$"),
    ("Anna \ud800", "^expected Unicode text, found the lone surrogate U\\+D800 at character 6$"),
])
def test_append_refuses_texts_it_cannot_keep(text, message, data_home):
    with pytest.raises(ValueError, match=message):
        annotations.append("fixes", text, [])
    assert not (data_home / "fixes.jsonl").exists() or annotations.examples("fixes") == []


def test_a_missing_dataset_has_no_examples_and_cannot_be_exported(tmp_path):
    assert annotations.examples("never") == [] and annotations.counts("never") == {}
    assert dataset_export.to_sentences("never") == []
    with pytest.raises(ValueError, match="^expected accepted examples in the dataset 'never', "
                                         "found none$"):
        dataset_export.export_conll("never", tmp_path / "never.conll")
    with pytest.raises(ValueError, match="^expected accepted examples in the dataset 'never', "
                                         "found none$"):
        dataset_export.export_jsonl("never", tmp_path / "never.jsonl")


N_WRITERS, M_LINES = 6, 25
# Lines of 8 kB: longer than the 4 kB (PIPE_BUF) that POSIX promises to write in one piece.
FILLER = "Anna Weber visited Berlin. " * 300


def check_all_lines(path: Path, expected: set[str]) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    found = [json.loads(line)["text"] for line in lines[:-1]]
    assert len(found) == len(expected) and set(found) == expected
    assert len(annotations.examples(path.stem)) == len(expected)


def test_concurrent_appends_from_threads_are_all_kept_whole(data_home):
    def write(writer: int) -> None:
        for line in range(M_LINES):
            annotations.append("busy", f"{writer} {line} {FILLER}", [entity(0, 1, "X")])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(N_WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check_all_lines(data_home / "busy.jsonl",
                    {f"{w} {m} {FILLER}" for w in range(N_WRITERS) for m in range(M_LINES)})
    assert annotations.counts("busy") == {"X": N_WRITERS * M_LINES}


def write_lines(writer: int) -> None:
    for line in range(M_LINES):
        annotations.append("busy", f"{writer} {line} {FILLER}", [])


def test_concurrent_appends_from_processes_are_all_kept_whole(data_home):
    # Forked: each writer is a process of its own (its own descriptors and locks) that need not
    # import the package again.
    fork = multiprocessing.get_context("fork")
    writers = [fork.Process(target=write_lines, args=(w,)) for w in range(N_WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
        assert writer.exitcode == 0
    check_all_lines(data_home / "busy.jsonl",
                    {f"{w} {m} {FILLER}" for w in range(N_WRITERS) for m in range(M_LINES)})


def test_a_line_cut_short_by_a_crash_is_skipped_then_dropped(data_home, caplog):
    annotations.append("crashy", "Anna left.", [entity(0, 4, "PER")])
    path = data_home / "crashy.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"text": "Oslo is cold.", "entities": [{"sta')

    with caplog.at_level(logging.WARNING, logger="ner_core.annotations"):
        assert [e["text"] for e in annotations.examples("crashy")] == ["Anna left."]
    assert "crashy.jsonl:2: ignored an example cut short by a crash" in caplog.text

    with caplog.at_level(logging.WARNING, logger="ner_core.dataset_file"):
        assert annotations.append("crashy", "Oslo is cold.", [entity(0, 4, "LOC")]) \
            == {"LOC": 1, "PER": 1}
    assert "dropped 44 bytes of an example cut short by a crash" in caplog.text
    assert [json.loads(line)["text"] for line in path.read_text().splitlines()] \
        == ["Anna left.", "Oslo is cold."]


def test_a_broken_line_in_the_middle_is_an_error_with_its_line(data_home):
    annotations.append("broken", "Anna left.", [])
    path = data_home / "broken.jsonl"
    path.write_text(path.read_text() + "not json\n" + path.read_text())
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: expected an accepted example as a "
                                         r"JSON object, found invalid JSON"):
        annotations.examples("broken")


def count_reads(monkeypatch) -> list[int]:
    """The size of every reading of a whole dataset to count its examples."""
    reads: list[int] = []
    recount = annotations._recount
    monkeypatch.setattr(annotations, "_recount",
                        lambda path, raw: reads.append(len(raw)) or recount(path, raw))
    return reads


def test_append_keeps_the_counts_without_reading_the_dataset_again(data_home, monkeypatch):
    reads = count_reads(monkeypatch)
    for n in range(20):
        assert annotations.append("kept", f"Anna left {n}.", [entity(0, 4, "PER")]) \
            == {"PER": n + 1}
    assert annotations.remove_last("kept", "Anna left 19.") is True
    assert annotations.tally("kept") == (19, {"PER": 19})
    assert annotations.append("kept", "Oslo.", [entity(0, 4, "LOC")]) == {"LOC": 1, "PER": 19}
    assert reads == [0]  # only the new, empty file was read


def test_counts_are_read_again_when_the_file_changed_behind_our_back(data_home, monkeypatch):
    annotations.append("shared", "Anna left.", [entity(0, 4, "PER")])
    annotations.append("shared", "Oslo.", [entity(0, 4, "LOC")])
    reads = count_reads(monkeypatch)
    path = data_home / "shared.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    # Another process took the last line out and wrote one of the same length in its place.
    path.write_bytes(lines[0] + lines[1].replace(b'"LOC"', b'"ORG"'))
    assert annotations.counts("shared") == {"ORG": 1, "PER": 1}
    assert annotations.append("shared", "Li.", [entity(0, 2, "PER")]) == {"ORG": 1, "PER": 2}
    assert len(reads) == 1
    with open(path, "ab") as handle:  # and another appended
        handle.write(lines[1])
    assert annotations.append("shared", "Li.", []) == {"LOC": 1, "ORG": 1, "PER": 2}
    assert len(reads) == 2


def test_remove_last_undoes_only_the_last_accept_of_that_text():
    annotations.append("undo", "Anna left.", [entity(0, 4, "PER")])
    annotations.append("undo", "Oslo is cold.", [entity(0, 4, "LOC")])

    assert annotations.remove_last("undo", "Anna left.") is False
    assert annotations.remove_last("undo", "Oslo is cold.") is True
    assert annotations.remove_last("undo", "Oslo is cold.") is False
    assert annotations.counts("undo") == {"PER": 1}
    assert annotations.remove_last("undo", "Anna left.") is True
    assert annotations.examples("undo") == [] and annotations.remove_last("undo", "x") is False
    assert annotations.remove_last("nothing-here", "x") is False


def test_to_sentences_tags_iob2_one_document_per_example():
    annotations.append("tags", "Anna Weber met Li. Then Acme Corp left.",
                       [entity(0, 10, "PER"), entity(15, 17, "PER"), entity(24, 33, "ORG")])
    annotations.append("tags", "Berlin", [entity(0, 6, "LOC")])

    found = dataset_export.to_sentences("tags")
    assert [(s.tokens, s.tags, s.doc_id) for s in found] == [
        (["Anna", "Weber", "met", "Li", "."], ["B-PER", "I-PER", "O", "B-PER", "O"], 0),
        (["Then", "Acme", "Corp", "left", "."], ["O", "B-ORG", "I-ORG", "O", "O"], 0),
        (["Berlin"], ["B-LOC"], 1),
    ]


def test_adjacent_entities_of_one_type_stay_apart():
    annotations.append("adjacent", "Anna Weber", [entity(0, 4, "PER"), entity(5, 10, "PER")])
    assert dataset_export.to_sentences("adjacent")[0].tags == ["B-PER", "B-PER"]


AWKWARD = [
    ("Müller-Lüdenscheid (Köln) met O'Brien, then Zoë in São Paulo",
     ["PER", "LOC", "PER", "PER", "LOC"],
     ["Müller-Lüdenscheid", "Köln", "O'Brien", "Zoë", "São Paulo"]),
    ("U.S. Steel said: \"Ça va!\" Prices rose 3.5% at Acme & Co.", ["ORG", "MISC", "ORG"],
     ["U.S. Steel", "Ça va!", "Acme & Co."]),
    ("First paragraph ends with Oslo.\n\n  Second one, about the E.U., ends with Kyoto",
     ["LOC", "ORG", "LOC"], ["Oslo", "E.U.", "Kyoto"]),
    ("No entities at all here.", [], []),
]


def entities_in(text: str, names: list[str], labels: list[str]) -> list[dict]:
    found, position = [], 0
    for name, label in zip(names, labels):
        start = text.index(name, position)
        found.append(entity(start, start + len(name), label))
        position = start + len(name)
    return found


def read_back(path: Path, texts: list[str]) -> list[list[dict]]:
    """The entities of each text, from the CoNLL file: words found in the text in order."""
    documents: dict[int, list] = {}
    for sentence in read_conll(path).sentences:
        documents.setdefault(sentence.doc_id, []).append(sentence)
    assert len(documents) == len(texts)
    result = []
    for text, sentences in zip(texts, documents.values()):
        position, found = 0, []
        for sentence in sentences:
            offsets = []
            for token in sentence.tokens:
                start = text.index(token, position)
                offsets.append((start, start + len(token)))
                position = start + len(token)
            found += [{"start": offsets[a][0], "end": offsets[b - 1][1], "label": label,
                       "text": text[offsets[a][0]:offsets[b - 1][1]]}
                      for label, a, b in spans(sentence.tags)]
        result.append(found)
    return result


def test_export_conll_reads_back_to_the_same_entities(tmp_path):
    expected = []
    for text, labels, names in AWKWARD:
        given = entities_in(text, names, labels)
        annotations.append("awkward", text, given)
        expected.append(annotations.snap(text, given)[0])
    assert [e["text"] for e in expected[1]] == ["U.S. Steel", "Ça va!", "Acme & Co."]

    path = dataset_export.export_conll("awkward", tmp_path / "out" / "awkward.conll")
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[:3] == ["-DOCSTART- O", "", "Müller-Lüdenscheid B-PER"]
    assert lines.count("-DOCSTART- O") == len(AWKWARD)
    conll = read_conll(path)
    assert conll.scheme == "IOB2"
    assert read_back(path, [t for t, _, _ in AWKWARD]) == expected
    assert [(s.tokens, s.tags) for s in conll.sentences] \
        == [(s.tokens, s.tags) for s in dataset_export.to_sentences("awkward")]


def test_export_jsonl_holds_the_examples(tmp_path):
    annotations.append("plain", "Anna left.", [entity(0, 4, "PER")], "tiny")
    path = dataset_export.export_jsonl("plain", tmp_path / "plain.jsonl")
    [line] = path.read_text(encoding="utf-8").splitlines()
    example = json.loads(line)
    assert example["text"] == "Anna left." and example["model"] == "tiny"
    assert example["entities"] == [{"start": 0, "end": 4, "label": "PER", "text": "Anna"}]
