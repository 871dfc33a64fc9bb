"""doccano, Prodigy and the studio's JSONL: each shape read, what is left out counted, bad lines
refused with file and line, the four JSON formats told apart, and what is written reads back."""

import json
import re

import pytest

from ner_core.errors import UserError
from ner_core.formats import Example, Report, Span, align, doccano, huggingface, prodigy, studio
from ner_core.formats import read as read_any
from ner_core.formats.files import replace_file, replace_folder

MODULES = {"doccano": doccano, "prodigy": prodigy, "studio": studio}


def write_lines(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
                    encoding="utf-8")
    return path


def read(module, path, **options):
    report = Report(path.name, module.NAME)
    return module.read(path, report, **options), report


def spans_of(examples):
    return [[(e.text, s.start, s.end, s.label) for s in e.spans] for e in examples]


# Invented texts: a span that cuts a word, a nested span, a type outside the label set.
FIXTURE = [
    Example("Anna Weber met the Nordbank board in Lagos.",
            [Span(0, 10, "PER"), Span(19, 27, "ORG"), Span(37, 42, "LOC")]),
    Example("Li Wei praised the Berliners today.", [Span(19, 25, "LOC")]),
    Example("The University of Oslo hired Maria Lopez.",
            [Span(4, 22, "ORG"), Span(18, 22, "LOC"), Span(29, 40, "PER")]),
    Example("Jan Novak bought a Fjord 3000.", [Span(0, 9, "PER"), Span(19, 29, "PRODUCT")]),
]


@pytest.mark.parametrize("name", MODULES)
def test_round_trip_keeps_the_aligned_entities(tmp_path, name):
    report = Report("fixture", "test")
    examples = align(FIXTURE, report)
    assert report.counts == {"widened": 1, "overlap": 1}
    MODULES[name].write(examples, tmp_path / "out.jsonl")
    back, back_report = read(MODULES[name], tmp_path / "out.jsonl")
    assert spans_of(align(back, Report("out.jsonl", name))) == spans_of(examples)
    assert back_report.records == 4 and not back_report.changed
    assert [e.line for e in back] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", MODULES)
def test_a_type_outside_the_label_set_is_counted_when_read(tmp_path, name):
    MODULES[name].write(align(FIXTURE[3:], Report("f", "t")), tmp_path / "out.jsonl")
    converted = read_any(tmp_path / "out.jsonl", name, labels={"PER", "LOC"})
    assert spans_of(converted.examples) == [[(FIXTURE[3].text, 0, 9, "PER")]]
    assert converted.report.counts == {"unknown type": 1}


DOCCANO_SHAPES = {
    "label": {"id": 7, "text": "Anna left Lagos", "label": [[0, 4, "PER"], [10, 15, "LOC"]]},
    "labels": {"text": "Anna left Lagos", "labels": [[0, 4, "PER"], [10, 15, "LOC"]]},
    "entities": {"text": "Anna left Lagos", "relations": [],
                 "entities": [{"id": 1, "start_offset": 0, "end_offset": 4, "label": "PER"},
                              {"id": 2, "start_offset": 10, "end_offset": 15, "label": "LOC"}]},
    "data": {"data": "Anna left Lagos", "label": [[0, 4, "PER"], [10, 15, "LOC"]]},
}


@pytest.mark.parametrize("record", DOCCANO_SHAPES.values(), ids=DOCCANO_SHAPES.keys())
def test_every_doccano_shape_is_read(tmp_path, record):
    [example], _ = read(doccano, write_lines(tmp_path / "d.jsonl", record))
    assert spans_of([example]) == [[("Anna left Lagos", 0, 4, "PER"),
                                    ("Anna left Lagos", 10, 15, "LOC")]]
    assert doccano.looks_like(tmp_path / "d.jsonl", json.dumps(record))


def test_doccano_fields_come_back_and_relations_are_counted(tmp_path):
    record = {"id": 7, "text": "Anna met Omar", "Comments": ["checked"],
              "entities": [{"id": 1, "start_offset": 0, "end_offset": 4, "label": "PER"},
                           {"id": 2, "start_offset": 9, "end_offset": 13, "label": "PER"}],
              "relations": [{"id": 3, "from_id": 1, "to_id": 2, "type": "met"}]}
    examples, report = read(doccano, write_lines(tmp_path / "d.jsonl", record))
    assert report.counts == {"not an entity": 1}
    doccano.write(align(examples, report), tmp_path / "out.jsonl")
    assert json.loads((tmp_path / "out.jsonl").read_text()) == {
        "id": 7, "Comments": ["checked"], "text": "Anna met Omar",
        "label": [[0, 4, "PER"], [9, 13, "PER"]]}


@pytest.mark.parametrize("name, records, change, detail", [
    ("doccano", [{"label": []}, {"text": "", "label": []}], "empty text", "no text"),
    ("doccano", [{"text": "Anna"}], "unannotated", "no label, labels, entities field"),
    ("prodigy", [{"text": "Anna", "spans": [], "answer": "reject"},
                 {"text": "Omar", "spans": [], "answer": "ignore"}], "not accepted",
     "answer 'reject'"),
    ("prodigy", [{"text": "  ", "spans": []}], "empty text", "text '  '"),
    ("prodigy", [{"text": "Anna", "_input_hash": 1}], "unannotated", "no 'spans' field"),
    ("studio", [{"entities": []}], "empty text", "no 'text'"),
    ("studio", [{"text": "Anna", "line": 3}], "unannotated", "no 'entities' field"),
])
def test_records_left_out_are_counted_with_where_they_were(tmp_path, name, records, change,
                                                           detail):
    path = write_lines(tmp_path / "x.jsonl", {"text": "Lagos", "label": [], "spans": [],
                                              "entities": []}, *records)
    examples, report = read(MODULES[name], path)
    assert [e.text for e in examples] == ["Lagos"]
    assert report.records == 1 + len(records)
    assert report.counts == {change: len(records)}
    assert report.cases[change][0] == {"detail": detail, "where": "x.jsonl:2", "record": 1,
                                       "line": 2}


def test_prodigy_tokens_are_the_words_and_written_back_with_token_offsets(tmp_path):
    task = {"text": "Anna left the U.S. today", "_input_hash": 11, "_task_hash": 12,
            "meta": {"source": "notes"},
            "tokens": [{"text": t, "start": a, "end": b, "id": i, "ws": True}
                       for i, (t, a, b) in enumerate([("Anna", 0, 4), ("left", 5, 9),
                                                      ("the", 10, 13), ("U.S.", 14, 18),
                                                      ("today", 19, 24)])],
            "spans": [{"start": 14, "end": 17, "label": "LOC"}], "answer": "accept"}
    examples, report = read(prodigy, write_lines(tmp_path / "p.jsonl", task))
    assert examples[0].words == [(0, 4), (5, 9), (10, 13), (14, 18), (19, 24)]
    [example] = align(examples, report)
    assert report.counts == {"widened": 1}  # "U.S" to the token "U.S.", not the splitter's "U.S"
    prodigy.write([example], tmp_path / "out.jsonl")
    written = json.loads((tmp_path / "out.jsonl").read_text())
    assert written["spans"] == [{"start": 14, "end": 18, "text": "U.S.", "token_start": 3,
                                 "token_end": 3, "label": "LOC"}]
    assert [t["ws"] for t in written["tokens"]] == [True, True, True, True, False]
    assert (written["_input_hash"], written["_task_hash"], written["meta"]) == (
        11, 12, {"source": "notes"})
    assert written["answer"] == "accept"


def test_prodigy_writes_no_hashes_it_was_not_given(tmp_path):
    prodigy.write(align([Example("Anna Weber left", [Span(0, 10, "PER")])], Report("f", "t")),
                  tmp_path / "out.jsonl")
    written = json.loads((tmp_path / "out.jsonl").read_text())
    assert set(written) == {"text", "tokens", "spans", "answer"}
    assert written["spans"][0]["token_start"] == 0 and written["spans"][0]["token_end"] == 1


def test_studio_scores_and_fields_come_back(tmp_path):
    record = {"text": "Anna left", "model": "tiny", "accepted_at": "2024-05-01T10:00:00+00:00",
              "entities": [{"start": 0, "end": 4, "label": "PER", "text": "Anna",
                            "score": 0.875}]}
    examples, report = read(studio, write_lines(tmp_path / "s.jsonl", record))
    assert examples[0].spans[0].score == 0.875
    studio.write(align(examples, report), tmp_path / "out.jsonl")
    assert json.loads((tmp_path / "out.jsonl").read_text()) == record


def test_studio_reads_the_text_from_another_field(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", {"body": "Anna left", "entities": [
        {"start": 0, "end": 4, "label": "PER"}]})
    [example], _ = read(studio, path, text_field="body")
    assert spans_of([example]) == [[("Anna left", 0, 4, "PER")]]


BAD = {
    "malformed JSON line": ("doccano", ['{"text": "Anna", "label": []}', '{"text": "Omar", '],
                            r":2: expected a JSON object, found invalid JSON \(Expecting "
                            r"property name enclosed in double quotes at column 18\)"),
    "a record that is no object": ("prodigy", ['["Anna", []]'],
                                   r":1: expected a JSON object, found a list"),
    "a doccano span that is no triple": ("doccano", [{"text": "Anna", "label": [[0, 4]]}],
                                         r":1: expected each of 'label' as \[start, end, "
                                         r"\"TYPE\"\] with whole-number offsets, found \[0, 4\]"),
    "a doccano entity without offsets": ("doccano", [{"text": "Anna", "entities": [
        {"start": 0, "end": 4, "label": "PER"}]}], r":1: expected each of 'entities' as an "
                                                   r"object with whole-number 'start_offset'"),
    "offsets that are not whole numbers": ("doccano", [{"text": "Anna", "label": [
        [0.0, 4, "PER"]]}], r":1: expected each of 'label' as \[start, end"),
    "a prodigy span without a label": ("prodigy", [{"text": "Anna", "spans": [
        {"start": 0, "end": 4}]}], r":1: expected each span as an object with whole-number "
                                   r"'start' and 'end' and a 'label'"),
    "prodigy tokens that are no list": ("prodigy", [{"text": "Anna", "spans": [],
                                                     "tokens": "Anna"}],
                                        r":1: expected 'tokens' as a list, found a string"),
    "a studio entity text that disagrees": ("studio", [{"text": "Zoë met Annabel", "entities": [
        {"start": 9, "end": 13, "label": "PER", "text": "Anna"}]}],  # offsets in bytes
        r":1: expected the entity at 9-13 to read 'Anna' as its 'text' says, found 'nnab' there"),
    "a studio score that is no number": ("studio", [{"text": "Anna", "entities": [
        {"start": 0, "end": 4, "label": "PER", "score": "high"}]}],
        r":1: expected an entity's 'score' as a number, found 'high'"),
    "a text that is no string": ("studio", [{"text": 3, "entities": []}],
                                 r":1: expected the text in 'text' as a string, found a number"),
    "spans that are no list": ("doccano", [{"text": "Anna", "label": "PER"}],
                               r":1: expected 'label' as a list of spans, found a string"),
    "an empty file": ("prodigy", [], r": expected Prodigy JSONL, one JSON object a line, found "
                                     r"an empty file"),
    "blank lines only": ("studio", ["", "  "], r": expected studio JSONL, one JSON object a "
                                               r"line, found an empty file"),
}


@pytest.mark.parametrize("name, lines, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_with_file_and_line(tmp_path, name, lines, message):
    path = write_lines(tmp_path / "bad.jsonl", *lines) if lines else tmp_path / "bad.jsonl"
    if not lines:
        path.write_bytes(b"")
    with pytest.raises(UserError, match=re.escape(str(path)) + message):
        read(MODULES[name], path)


@pytest.mark.parametrize("name", MODULES)
def test_a_file_that_is_not_utf8_names_its_line(tmp_path, name):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "Anna"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(UserError, match=re.escape(f"{path}:2: expected UTF-8 text")):
        read(MODULES[name], path)


FIRST_LINES = {
    "doccano": [{"text": "Anna", "label": [[0, 4, "PER"]]}, {"id": 1, "data": "Anna", "label": []},
                {"text": "Anna", "entities": [], "relations": []},
                {"text": "Anna", "entities": [{"start_offset": 0, "end_offset": 4,
                                               "label": "PER"}]}],
    "prodigy": [{"text": "Anna", "spans": [{"start": 0, "end": 4, "label": "PER"}]},
                {"text": "Anna", "_input_hash": 1, "_task_hash": 2, "answer": "reject"},
                {"text": "Anna", "tokens": [{"text": "Anna", "start": 0, "end": 4, "id": 0,
                                             "ws": False}], "spans": []}],
    "studio": [{"text": "Anna", "entities": [{"start": 0, "end": 4, "label": "PER",
                                              "text": "Anna", "score": 0.9}]},
               {"text": "Anna", "entities": [], "model": "tiny"}],
    "huggingface": [{"tokens": ["Anna"], "ner_tags": [1]}, {"tokens": ["Anna"], "tags": ["O"]}],
}
JSON_MODULES = {**MODULES, "huggingface": huggingface}


@pytest.mark.parametrize("name, record", [(n, r) for n, rs in FIRST_LINES.items() for r in rs])
def test_the_json_formats_are_told_apart_by_their_first_record(tmp_path, name, record):
    head = json.dumps(record) + "\n" + json.dumps({"text": "more"}) + "\n"
    claimed = [n for n, module in JSON_MODULES.items()
               if module.looks_like(tmp_path / "x.jsonl", head)]
    assert claimed == [name]


@pytest.mark.parametrize("head", ["", "Anna B-PER\n", "[1, 2]\n", '"text"\n'])
def test_what_is_not_json_records_is_no_json_format(tmp_path, head):
    assert not any(m.looks_like(tmp_path / "x.jsonl", head) for m in JSON_MODULES.values())


def test_a_failed_write_leaves_the_file_as_it_was_and_nothing_beside_it(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("kept\n")

    def half_then_fail(temporary):
        temporary.write_text("half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        replace_file(path, half_then_fail)
    assert path.read_text() == "kept\n" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_failed_folder_build_leaves_the_old_folder(tmp_path):
    target = tmp_path / "saved"
    target.mkdir()
    (target / "old.txt").write_text("old")

    def fail(folder):
        (folder / "new.txt").write_text("new")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        replace_folder(target, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    replace_folder(target, lambda folder: (folder / "new.txt").write_text("new"))
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]


def test_an_unwritable_place_is_refused_in_words(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / 'file' / 'out.jsonl'}: could not "
                                                  "be written (") + r".*\); expected a writable "
                                                                    r"folder with free space"):
        studio.write(align(FIXTURE[:1], Report("f", "t")), tmp_path / "file" / "out.jsonl")
