"""``python -m ner_core convert``: every format to every other, each change of the alignment
counted in the printed report, and bad input as one line with exit code 2 and nothing written.

Every pair converts ONE small fixture: a span that cuts a word (``Berlin`` of ``Berliners``), a
span nested in a longer one (``New York`` in ``New York Times``) and a type outside ``--labels``
(``ALIEN``). Formats of character spans hold the fixture as it is; formats of words (CoNLL,
Hugging Face, spaCy) can hold neither a cut word nor a nested span, so theirs is the fixture on
whole words (as the studio writes it) and only the unknown type is left to count.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ner_core import cli, formats
from ner_core.formats import Example, Report, Span

TEXTS = ["Anna Weber met Berliners at the New York Times with Zorg.", "Omar Haddad left."]
SPANS = [[("Anna Weber", "PER"), ("Berlin", "LOC"), ("New York", "LOC"),
          ("New York Times", "ORG"), ("Zorg", "ALIEN")], [("Omar Haddad", "PER")]]
LABELS = "PER,LOC,ORG"
KEPT = [("Anna Weber", "PER"), ("Berliners", "LOC"), ("New York Times", "ORG"),
        ("Omar Haddad", "PER")]
CHANGED = {"widened": 1, "overlap": 1, "unknown type": 1}
SPAN_FORMATS = ("doccano", "label-studio", "prodigy", "studio", "brat")
WORD_FORMATS = ("conll", "huggingface", "spacy", "spacy-json")
SPACY_FORMATS = ("spacy", "spacy-json")
# Where each format's file goes: a folder for the formats of folders, else the first ending.
OUTPUTS = {"conll": "out.conll", "conll-bioes": "out.bioes", "huggingface": "out",
           "label-studio": "out.json", "label-studio-predictions": "out.json",
           "doccano": "out.jsonl", "prodigy": "out.jsonl", "studio": "out.jsonl",
           "spacy": "out.spacy", "spacy-json": "out.json", "brat": "out"}
# How an output is read back: predictions are tasks without annotations, kept as they are.
READ_BACK = {"label-studio-predictions": ("label-studio", {"unannotated": "keep"}),
             "conll-bioes": ("conll", {})}


def offsets(text: str, spans: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """Each ``(surface, label)`` as ``(start, end, label)``: the first match in ``text``."""
    return [(text.index(surface), text.index(surface) + len(surface), label)
            for surface, label in spans]


def records() -> list[tuple[str, list[tuple[int, int, str]]]]:
    return [(text, offsets(text, spans)) for text, spans in zip(TEXTS, SPANS)]


def write_doccano(path: Path) -> None:
    path.write_text("".join(json.dumps({"text": text, "label": [list(s) for s in spans]}) + "\n"
                            for text, spans in records()), encoding="utf-8")


def write_studio(path: Path) -> None:
    path.write_text("".join(json.dumps({"text": text, "entities": [
        {"start": a, "end": b, "label": label, "text": text[a:b]} for a, b, label in spans]}) + "\n"
        for text, spans in records()), encoding="utf-8")


def write_prodigy(path: Path) -> None:
    path.write_text("".join(json.dumps({"text": text, "answer": "accept", "spans": [
        {"start": a, "end": b, "label": label} for a, b, label in spans]}) + "\n"
        for text, spans in records()), encoding="utf-8")


def write_label_studio(path: Path) -> None:
    tasks = [{"id": i + 1, "data": {"text": text}, "annotations": [{"id": i + 1, "result": [
        {"id": f"r{j}", "from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": a, "end": b, "text": text[a:b], "labels": [label]}}
        for j, (a, b, label) in enumerate(spans)]}]} for i, (text, spans) in enumerate(records())]
    path.write_text(json.dumps(tasks, indent=1), encoding="utf-8")


def write_brat(path: Path) -> None:
    path.mkdir()
    for i, (text, spans) in enumerate(records()):
        (path / f"doc{i}.txt").write_text(text, encoding="utf-8")
        (path / f"doc{i}.ann").write_text("".join(
            f"T{j + 1}\t{label} {a} {b}\t{text[a:b]}\n" for j, (a, b, label) in enumerate(spans)),
            encoding="utf-8")


def write_on_words(path: Path, format: str) -> None:
    """The fixture as a format of words holds it: widened, the nested span left out."""
    examples = [Example(text, [Span(*s) for s in spans], record=i, source="fixture", doc_id=i)
                for i, (text, spans) in enumerate(records())]
    formats.write(formats.align(examples, Report("fixture", "doccano")), path, format)


SOURCES = {"doccano": ("in.jsonl", write_doccano), "studio": ("in.jsonl", write_studio),
           "prodigy": ("in.jsonl", write_prodigy), "label-studio": ("in.json", write_label_studio),
           "brat": ("in", write_brat)}
SOURCES.update({name: ({"conll": "in.conll", "huggingface": "in", "spacy": "in.spacy",
                        "spacy-json": "in.json"}[name],
                       lambda path, name=name: write_on_words(path, name))
                for name in WORD_FORMATS})
PAIRS = [(source, target) for source in (*SPAN_FORMATS, *WORD_FORMATS)
         for target in formats.FORMATS if target != source]


def source_file(tmp_path: Path, format: str) -> Path:
    if format in SPACY_FORMATS:
        pytest.importorskip("spacy", reason="the spaCy formats need spaCy")
    name, write = SOURCES[format]
    path = tmp_path / "source" / name
    path.parent.mkdir()
    write(path)
    return path


def kept(path: Path, format: str) -> list[tuple[str, str]]:
    """The entities of a written file, as (surface, label), read back by the registry."""
    name, options = READ_BACK.get(format, (format, {}))
    examples = formats.read(path, name, **options).examples
    return [(e.text[s.start:s.end], s.label) for e in examples for s in e.spans]


@pytest.mark.parametrize("source, target", PAIRS)
def test_convert_counts_each_change_and_keeps_the_entities(tmp_path, capsys, source, target):
    if target in SPACY_FORMATS:
        pytest.importorskip("spacy", reason="the spaCy formats need spaCy")
    given = source_file(tmp_path, source)
    output = tmp_path / OUTPUTS[target]
    args = ["convert", str(given), str(output), "--to", target, "--labels", LABELS]
    assert cli.main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    expected = CHANGED if source in SPAN_FORMATS else {"unknown type": 1}
    for change, count in expected.items():
        assert f"- {change}: {count} ({formats.CHANGES[change]})" in out
    assert sum(line.startswith("- ") for line in out.splitlines()) == len(expected)
    read = 6 if source in SPAN_FORMATS else 5  # a file of words cannot hold the nested span
    assert f"4 of {read} entities kept" in out.splitlines()[0]
    assert out.splitlines()[-1] == f"wrote {output} ({target})"
    assert kept(output, target) == KEPT


def test_the_report_names_each_case_and_is_written_as_json(tmp_path, capsys):
    given = source_file(tmp_path, "doccano")
    report = tmp_path / "report.json"
    assert cli.main(["convert", str(given), str(tmp_path / "out.conll"), "--labels", LABELS,
                     "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("in.jsonl (doccano): 2 records, 2 examples, 4 of 6 entities "
                                   "kept, 1 widened, 1 overlap, 1 unknown type")
    assert "    in.jsonl:1: LOC 'Berlin' widened to 'Berliners'" in out
    assert "    in.jsonl:1: ALIEN 'Zorg'" in out
    saved = json.loads(report.read_text())
    assert {change: c["count"] for change, c in saved["changes"].items()} == CHANGED
    assert saved["types"] == {"LOC": 1, "ORG": 1, "PER": 2}
    assert saved["changes"]["overlap"]["examples"][0]["where"] == "in.jsonl:1"


def test_tag_column_reads_the_tags_from_another_column(tmp_path, capsys):
    given = tmp_path / "tagged.conll"
    given.write_text("Anna B-PER NNP\nWeber I-PER NNP\nleft O VBD\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert cli.main(["convert", str(given), str(output), "--to", "doccano",
                     "--tag-column", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert kept(output, "doccano") == [("Anna Weber", "PER")]


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert captured.out == ""
    return lines[0]


# name -> (the input's name and content, None for the fixture; the arguments after the input and
# the output; what the one line says)
BAD_INPUT = {
    "malformed JSON line": (
        ("bad.jsonl", '{"text": "Anna left.", "label": [[0, 4, "PER"]]}\n{"text": "Bob", "label": [\n'),
        [], re.escape("bad.jsonl:2: expected a JSON object, found invalid JSON")),
    "bad CoNLL tag": (("bad.conll", "Anna B-PER\nWeber I-PER\nleft 0\n"), [],
                      re.escape("bad.conll:3: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found '0'")),
    "CoNLL named doccano": (
        ("named.conll", "Anna B-PER\nleft O\n"), ["--format", "doccano"],
        "the file looks like CoNLL columns, not doccano JSONL: pass --format conll$"),
    "doccano named CoNLL": (
        ("named.jsonl", '{"text": "Anna left.", "label": [[0, 4, "PER"]]}\n'), ["--format", "conll"],
        "the file looks like doccano JSONL, not CoNLL columns: pass --format doccano$"),
    "empty file": (("empty.jsonl", ""), [],
                   re.escape("empty.jsonl: expected labelled data, found an empty file")),
    "no entities": (("plain.jsonl", '{"text": "Anna left.", "label": []}\n'
                     '{"text": "Bob stayed.", "label": []}\n'), [],
                    re.escape("plain.jsonl: expected entities to learn from or score against, "
                              "found 0 in 2 records")),
    "a cut word refused": (None, ["--cut", "refuse"],
                           re.escape("in.jsonl:1: expected spans on whole words, found 'Berlin' "
                                     "(LOC) inside 'Berliners'")),
    "an overlap refused": (None, ["--overlap", "refuse"],
                           re.escape("in.jsonl:1: expected spans apart from each other, found "
                                     "'New York' (LOC) overlapping 'New York Times' (ORG)")),
}


@pytest.mark.parametrize("given, extra, message", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, given, extra, message):
    if given is None:
        path = source_file(tmp_path, "doccano")
    else:
        path = tmp_path / given[0]
        path.write_text(given[1], encoding="utf-8")
    output = tmp_path / "out" / "converted.jsonl"
    assert cli.main(["convert", str(path), str(output), "--to", "studio", *extra]) == 2
    assert re.search(message, one_error_line(capsys))
    assert not output.parent.exists(), "nothing written, not even a folder"


def test_an_output_ending_that_names_no_format_is_refused_before_reading(tmp_path, capsys):
    output = tmp_path / "out.xyz"
    assert cli.main(["convert", str(tmp_path / "absent.jsonl"), str(output)]) == 2
    assert one_error_line(capsys).endswith(
        f"{output}: expected an output ending that names a format, found '.xyz'; name one with "
        f"--to ({', '.join(formats.FORMATS)})")


@pytest.mark.parametrize("argv, message", [
    (["--to", "excel"], "argument --to: invalid choice: 'excel'"),
    (["--cut", "snap"], "argument --cut: invalid choice: 'snap'"),
    (["--labels", " , "], "argument --labels: expected entity types separated by commas"),
])
def test_usage_mistakes_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as caught:
        cli.main(["convert", str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), *argv])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_convert_refuses_to_write_over_its_input(tmp_path, capsys):
    given = source_file(tmp_path, "doccano")
    before = given.read_bytes()
    assert cli.main(["convert", str(given), str(given), "--to", "doccano"]) == 2
    assert "expected an output other than the input" in one_error_line(capsys)
    assert given.read_bytes() == before
