"""The README's "Data in other formats": every format and every change it names is the code's,
each example record reads as its format, the sample report is what ``convert`` prints, and its
commands run as written."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from ner_core import cli, formats
from ner_core.formats.example import CHANGES

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = README.read_text(encoding="utf-8").split("## Data in other formats")[1].split("\n## ")[0]
# The Label Studio export of the README's sample report: a span cutting a word ("Berlin" of
# "Berliners"), one nested in another ("Anna" in "Anna Schmidt"), a type outside --labels.
EXPORT = [
    {"id": 1, "data": {"text": "Anna Schmidt met the Berliners in Paris."},
     "annotations": [{"id": 11, "result": [
         {"type": "labels", "value": {"start": 0, "end": 12, "text": "Anna Schmidt", "labels": ["PER"]}},
         {"type": "labels", "value": {"start": 0, "end": 4, "text": "Anna", "labels": ["PER"]}},
         {"type": "labels", "value": {"start": 21, "end": 27, "text": "Berlin", "labels": ["LOC"]}},
         {"type": "labels", "value": {"start": 34, "end": 39, "text": "Paris", "labels": ["LOC"]}}]}]},
    {"id": 2, "data": {"text": "Acme Corp hired Zorblax."},
     "annotations": [{"id": 12, "result": [
         {"type": "labels", "value": {"start": 0, "end": 9, "text": "Acme Corp", "labels": ["ORG"]}},
         {"type": "labels", "value": {"start": 16, "end": 23, "text": "Zorblax", "labels": ["ALIEN"]}}]}]},
]


def write_export(directory: Path) -> Path:
    # One result a line, as the sample report's line numbers count them.
    lines = ["["]
    for t, task in enumerate(EXPORT):
        lines.append(' {"id": %d, "data": %s,' % (task["id"], json.dumps(task["data"])))
        lines.append('  "annotations": [{"id": %d, "result": [' % task["annotations"][0]["id"])
        results = task["annotations"][0]["result"]
        lines += ["    " + json.dumps(r) + ("," if i + 1 < len(results) else "]}]}")
                  for i, r in enumerate(results)]
        lines[-1] += "," if t + 1 < len(EXPORT) else ""
    lines.append("]")
    path = directory / "export.json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert json.loads(path.read_text()) == EXPORT
    return path


def test_every_format_and_every_change_is_in_the_readme():
    for name in formats.FORMATS:
        assert f"`{name}`" in SECTION, name
    for change, meaning in CHANGES.items():
        assert f"| {change} | {meaning} |" in SECTION, change


@pytest.mark.parametrize("name, suffix", [("huggingface", ".jsonl"), ("label-studio", ".json"),
                                          ("doccano", ".jsonl"), ("prodigy", ".jsonl"),
                                          ("studio", ".jsonl"), ("conll", ".conll")])
def test_each_example_record_of_the_table_reads_as_its_format(tmp_path, name, suffix):
    row = next(line for line in SECTION.splitlines() if line.startswith(f"| `{name}`"))
    record = row.rsplit("| `", 1)[1].rsplit("` |", 1)[0]
    path = tmp_path / f"example{suffix}"
    path.write_text(record + "\n", encoding="utf-8")
    assert formats.detect(path) == name
    converted = formats.read(path)
    assert [(e.text[s.start:s.end], s.label) for e in converted.examples for s in e.spans][0] == (
        "Anna", "PER")


def test_the_sample_report_is_what_convert_prints(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_export(tmp_path)
    block = SECTION.split("```\n$ ")[1].split("\n```")[0]
    command, *printed = block.split("\n")
    assert cli.main(shlex.split(command)[3:]) == 0
    assert capsys.readouterr().out.splitlines() == printed


def test_the_commands_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_export(tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Omar Haddad visited Lagos.\n", encoding="utf-8")
    (corpus / "a.ann").write_text("T1\tPER 0 11\tOmar Haddad\nT2\tLOC 20 25\tLagos\n",
                                  encoding="utf-8")
    block = SECTION.split("```bash\n")[1].split("\n```")[0]
    commands = [line for line in block.splitlines() if line.startswith("python -m ner_core")]
    assert len(commands) == 5
    for command in commands:
        assert cli.main(shlex.split(command)[3:]) == 0, command
    out = capsys.readouterr().out
    assert re.search(r"wrote corpus.jsonl \(doccano\)", out)
    assert json.loads((tmp_path / "report.json").read_text())["entities_kept"] == 2
    assert (tmp_path / "runs" / "mine" / "model.safetensors").is_file()
    assert "overall (" in out  # the evaluation of runs/mine on corpus.jsonl
