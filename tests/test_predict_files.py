"""Whole files in, entities out: the readers, ``recognize_file``, ``predict --output`` and the same
command under torchrun.

Most tests use a model whose answers are known (every word its own PER entity); the torchrun and
README tests use an untrained tiny model, whose scores change with the slightest difference in
how a text is batched, so equal bytes mean the processes recognized exactly as one does.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from live_app import label_winning_copy

from ner_core import Recognizer, batch, cli, records
from ner_core.batch import count_records, recognize_file
from ner_core.records import CSV_COLUMNS, csv_columns, read_records

ROOT = Path(__file__).resolve().parent.parent
LINES = ["anna weber visited berlin.", "", "omar haddad met globex in lagos.",
         "李伟 😀 Zu\u0308rich"]


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(objects) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def per_model(tmp_path_factory, tiny_bert) -> Path:
    """Every word is its own PER entity, scored 1.0."""
    return label_winning_copy(tiny_bert, tmp_path_factory.mktemp("per") / "model", "B-PER")


@pytest.fixture(scope="module")
def recognizer(per_model) -> Recognizer:
    return Recognizer(str(per_model))


# --- readers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, field, expected", [
    ("notes.txt", "\ufeffanna weber\r\n\n李伟 😀 Zu\u0308rich\nno end of line", "text",
     [(1, "anna weber", {"line": 1, "text": "anna weber"}), (2, "", {"line": 2, "text": ""}),
      (3, "李伟 😀 Zu\u0308rich", {"line": 3, "text": "李伟 😀 Zu\u0308rich"}),
      (4, "no end of line", {"line": 4, "text": "no end of line"})]),
    ("notes.jsonl", '{"id": 1, "text": "anna weber"}\n\n{"id": 2, "text": "omar", "tags": [1]}\r\n',
     "text", [(1, "anna weber", {"id": 1, "text": "anna weber"}),
              (3, "omar", {"id": 2, "text": "omar", "tags": [1]})]),
    ("body.jsonl", '{"body": "anna", "text": 3}\n', "body",
     [(1, "anna", {"body": "anna", "text": 3})]),
    ("notes.csv", 'id,body\r\n1,anna weber\r\n\r\n2,"omar\nhaddad, in ""lagos"""\n3,li wei', "body",
     [(2, "anna weber", {"id": "1", "body": "anna weber"}),
      (4, 'omar\nhaddad, in "lagos"', {"id": "2", "body": 'omar\nhaddad, in "lagos"'}),
      (6, "li wei", {"id": "3", "body": "li wei"})]),
    ("notes.tsv", "id\ttext\n7\tanna, weber\n", "text",
     [(2, "anna, weber", {"id": "7", "text": "anna, weber"})]),
])
def test_each_format_gives_its_records_with_their_lines(tmp_path, name, content, field, expected):
    path = write(tmp_path / name, content)
    found = list(read_records(path, field))
    assert [(r.line, r.text, r.fields) for r in found] == expected
    assert found[-1].end == path.stat().st_size
    assert count_records(path, field) == (len(expected), 0)


@pytest.mark.parametrize("name, content, field, message", [
    ("latin1.txt", b"anna\nZ\xfcrich\n", "text",
     "latin1.txt:2: expected UTF-8 text, found the byte 0xfc (byte 2 of the line) that UTF-8 "
     "does not allow there"),
    ("nul.txt", b"anna\nwe\x00ber\n", "text",
     "nul.txt:2: expected UTF-8 text, found binary data (a NUL byte)"),
    ("utf16.txt", "anna\n".encode("utf-16"), "text",
     "utf16.txt:1: expected UTF-8 text, found UTF-16"),
    ("latin1.jsonl", b'{"text": "Z\xfcrich"}\n', "text",
     "latin1.jsonl:1: expected UTF-8 text, found the byte 0xfc (byte 12 of the line)"),
    ("bad.jsonl", '{"text": "anna"}\n{"text": "omar",}\n', "text",
     "bad.jsonl:2: expected a JSON object, found invalid JSON (Expecting property name enclosed "
     "in double quotes at column 17)"),
    ("list.jsonl", '["anna"]\n', "text", "list.jsonl:1: expected a JSON object, found a list"),
    ("nofield.jsonl", '{"text": "a"}\n{"id": 2, "body": "omar"}\n', "text",
     "nofield.jsonl:2: expected a field 'text', found the fields 'id', 'body'"),
    ("empty.jsonl", '{}\n', "text", "empty.jsonl:1: expected a field 'text', found no fields"),
    ("number.jsonl", '{"text": 12}\n', "text",
     "number.jsonl:1: expected a string in the field 'text', found a number"),
    ("null.jsonl", '{"body": null}\n', "body",
     "null.jsonl:1: expected a string in the field 'body', found null"),
    ("nocolumn.csv", "id,body\n1,anna\n", "text",
     "nocolumn.csv:1: expected a column 'text', found the columns 'id', 'body'"),
    ("nocolumn.tsv", "\nid\tbody\n", "text",
     "nocolumn.tsv:2: expected a column 'text', found the columns 'id', 'body'"),
    ("short.csv", "id,text\n1,anna\n2\n", "text",
     "short.csv:3: expected 2 fields as in the header, found 1"),
    ("twice.csv", "text,id,text\n", "text",
     "twice.csv:1: expected distinct column names in the header, found 'text' more than once"),
    ("empty.csv", "", "text",
     "empty.csv:1: expected a header row naming the columns, found no rows"),
    ("quote.csv", 'id,text\n1,"anna\n', "text",
     "quote.csv:2: expected CSV fields, found an error: unexpected end of data"),
    ("texts.json", "[]", "text",
     "texts.json: expected a file ending in .txt, .jsonl, .csv or .tsv, found '.json'"),
])
def test_bad_input_names_the_file_line_and_what_was_expected(tmp_path, name, content, field,
                                                             message):
    path = write(tmp_path / name, content)
    with pytest.raises(ValueError, match=re.escape(message)):
        list(read_records(path, field))


def test_a_missing_file_is_refused(tmp_path):
    message = "absent.csv: expected a csv file, found no such file"
    with pytest.raises(ValueError, match=re.escape(message)):
        list(read_records(tmp_path / "absent.csv"))


def test_a_json_line_beyond_the_line_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "MAX_LINE_BYTES", 40)
    path = write(tmp_path / "long.jsonl", '{"text": "anna"}\n{"text": "' + "a" * 100 + '"}\n')
    message = "long.jsonl:2: expected a line of at most 40 bytes, found a longer one"
    with pytest.raises(ValueError, match=re.escape(message)):
        list(read_records(path))


@pytest.mark.parametrize("name, content", [
    ("long.txt",
     "anna\n" + "b" * 11 + "\n" + "é" * 300 + "\r\n" + "x" * 9000 + "\nomar\n" + "c" * 50),
    ("long.jsonl", '{"text": "anna"}\n{"text": "' + "b" * 11 + '"}\n' + '{"text": "omar"}\n'),
    ("long.csv", "text\nanna\n" + "b" * 11 + "\nomar\n"),
])
def test_texts_beyond_the_limit_are_skipped_by_line(tmp_path, monkeypatch, name, content):
    # Lines far beyond the limit are read past in pieces: 7 bytes cut 'é' in half at times.
    monkeypatch.setattr(records, "_READ_PAST_BYTES", 7)
    path = write(tmp_path / name, content)
    skipped = []
    kept = [(r.line, r.text) for r in read_records(path, max_chars=10, on_skip=skipped.append)]
    expected_skips = {"long.txt": [2, 3, 4, 6], "long.jsonl": [2], "long.csv": [3]}[name]
    assert skipped == expected_skips
    assert [text for _, text in kept] == ["anna", "omar"]
    assert count_records(path, max_chars=10) == (2, len(expected_skips))


def test_bad_bytes_in_a_line_read_past_are_still_found(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "_READ_PAST_BYTES", 7)
    path = write(tmp_path / "long.txt", b"anna\n" + "é".encode() * 40 + b"\xfc" + b"b" * 50)
    message = "long.txt:2: expected UTF-8 text, found the byte 0xfc (byte 81 of the line)"
    with pytest.raises(ValueError, match=re.escape(message)):
        list(read_records(path, max_chars=10))


@pytest.mark.parametrize("name, content, expected", [
    ("a.csv", "\ufeffid,body\n1,anna\n", ["id", "body"]),
    ("a.tsv", "id\tlong text\n", ["id", "long text"]),
])
def test_csv_columns_for_a_column_picker(tmp_path, name, content, expected):
    assert csv_columns(write(tmp_path / name, content)) == expected


def test_csv_columns_of_a_text_file_is_refused(tmp_path):
    message = "a.txt: expected a .csv or .tsv file, found a txt file"
    with pytest.raises(ValueError, match=re.escape(message)):
        csv_columns(write(tmp_path / "a.txt", "anna\n"))


# --- recognize_file -------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    from ner_core.text import split_words

    return [text[a:b] for a, b in split_words(text)]


@pytest.mark.parametrize("name, content", [
    ("in.txt", "\n".join(LINES) + "\n"),
    ("in.jsonl", jsonl({"n": i, "text": t} for i, t in enumerate(LINES))),
    ("in.csv", "n,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(LINES))),
])
def test_jsonl_output_is_each_record_with_its_entities(recognizer, tmp_path, name, content):
    source = write(tmp_path / name, content)
    summary = recognize_file(recognizer, source, tmp_path / "out.jsonl", batch_size=3)
    written = read_jsonl(tmp_path / "out.jsonl")
    assert [{k: v for k, v in w.items() if k != "entities"} for w in written] \
        == [r.fields for r in read_records(source)]
    for line, record in zip(LINES, written):
        assert record["text"] == line
        assert [e["text"] for e in record["entities"]] == words(line)
        assert all(line[e["start"]:e["end"]] == e["text"] and e["label"] == "PER"
                   for e in record["entities"])
    n_words = sum(len(words(line)) for line in LINES)
    assert (summary.records, summary.entities, summary.per_type, summary.skipped) \
        == (4, n_words, {"PER": n_words}, 0)


def test_csv_output_rows_point_into_the_input_lines(recognizer, tmp_path):
    source = write(tmp_path / "in.txt", "\n".join(LINES) + "\n")
    recognize_file(recognizer, source, tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == CSV_COLUMNS
    assert [row[2] for row in rows[1:]] == [w for line in LINES for w in words(line)]
    for line, kind, text, score, start, end in rows[1:]:
        assert LINES[int(line) - 1][int(start):int(end)] == text and kind == "PER"
        assert float(score) == 1.0


def test_summary_counts_types_frequent_entities_and_skips(per_model, tmp_path):
    short = Recognizer(str(per_model), max_text_chars=20)
    source = write(tmp_path / "in.txt",
                   "anna met anna\n" + "x" * 21 + "\nanna in lima\n" + "y" * 200 + "\n")
    summary = recognize_file(short, source, tmp_path / "out.jsonl")
    assert (summary.records, summary.skipped, summary.skipped_lines) == (2, 2, [2, 4])
    assert summary.most_frequent[0] == {"text": "anna", "type": "PER", "count": 3}
    assert summary.most_frequent_exact
    assert [record["line"] for record in read_jsonl(tmp_path / "out.jsonl")] == [1, 3]
    assert batch.describe(summary).endswith(
        "; skipped 2 records longer than the model reads (20 characters), on lines 2, 4")


def test_most_frequent_stays_bounded_on_many_distinct_entities(recognizer, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "_DISTINCT_COUNTED", 6)
    lines = ["anna"] * 5 + [f"name{i}" for i in range(30)]
    source = write(tmp_path / "in.txt", "\n".join(lines))
    summary = recognize_file(recognizer, source, tmp_path / "o.jsonl", batch_size=4)
    assert not summary.most_frequent_exact
    assert summary.most_frequent[0] == {"text": "anna", "type": "PER", "count": 5}
    assert summary.entities == 35


class Counting:
    """A recognizer that counts its calls and raises ``error`` on call number ``fail_at``."""

    def __init__(self, recognizer: Recognizer, fail_at: int | None = None, error=None):
        self.recognizer, self.fail_at, self.error, self.calls = recognizer, fail_at, error, 0
        self.max_text_chars = recognizer.max_text_chars

    def recognize_batch(self, texts, threshold=0.0):
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        return self.recognizer.recognize_batch(texts, threshold)


@pytest.mark.parametrize("error", [RuntimeError("the model failed"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [None, "an earlier result\n"])
def test_an_interruption_leaves_no_half_file_and_no_temporary_one(recognizer, tmp_path, error,
                                                                  existing):
    source = write(tmp_path / "in.txt", "\n".join(LINES * 5))
    output = tmp_path / "out.jsonl"
    if existing is not None:
        output.write_text(existing)
    with pytest.raises(type(error)):
        recognize_file(Counting(recognizer, fail_at=3, error=error), source, output, batch_size=2)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["in.txt", "out.jsonl"] if existing else ["in.txt"])
    if existing is not None:
        assert output.read_text() == existing


def test_bad_input_is_found_before_any_work(recognizer, tmp_path):
    source = write(tmp_path / "in.jsonl", '{"text": "anna"}\n' * 600 + '{"body": "omar"}\n')
    counting = Counting(recognizer)
    message = "in.jsonl:601: expected a field 'text', found the field 'body'"
    with pytest.raises(ValueError, match=re.escape(message)):
        recognize_file(counting, source, tmp_path / "out.csv", batch_size=10)
    assert counting.calls == 0
    assert [p.name for p in tmp_path.iterdir()] == ["in.jsonl"]


@pytest.mark.parametrize("output, fmt, batch_size, message", [
    ("out.txt", None, 8,
     "out.txt: expected an output file ending in .jsonl or .csv (or a format named), found '.txt'"),
    ("out.jsonl", "xml", 8, "format must be one of jsonl, csv, found 'xml'"),
    ("no/out.jsonl", None, 8,
     "out.jsonl: expected a file in an existing directory, found no directory"),
    ("in.jsonl", "csv", 8, "in.jsonl: expected an output file other than the input"),
    ("out.jsonl", None, 0, "batch size must be between 1 and 100000, found 0"),
])
def test_bad_output_settings_are_refused(recognizer, tmp_path, output, fmt, batch_size, message):
    source = write(tmp_path / "in.jsonl", '{"text": "anna"}\n')
    with pytest.raises(ValueError, match=re.escape(message)):
        recognize_file(recognizer, source, tmp_path / output, fmt, batch_size=batch_size)
    assert [p.name for p in tmp_path.iterdir()] == ["in.jsonl"]
    assert source.read_text() == '{"text": "anna"}\n'


def test_ranks_share_the_chunks_in_turn_and_rank_0_writes_them_in_order(recognizer, tmp_path):
    """Two ranks in one process: rank 1 runs first and hands its results over as gloo would."""
    source = write(tmp_path / "in.txt", "\n".join(f"{LINES[i % 4]} {i}" for i in range(23)))
    recognize_file(recognizer, source, tmp_path / "one.jsonl", batch_size=4)
    handed_over = []
    second = Counting(recognizer)
    assert recognize_file(second, source, tmp_path / "rank1.jsonl", batch_size=4,
                          ranks=batch.Ranks(1, 2, gather=handed_over.append)) is None
    assert not (tmp_path / "rank1.jsonl").exists()
    # 23 texts in chunks of 4: rank 1 takes chunks 1, 3 and 5 of 0-5, in three rounds.
    assert [len(found) for found in handed_over] == [4, 4, 3] and second.calls == 3
    first = Counting(recognizer)
    rank0 = batch.Ranks(0, 2, gather=lambda found: [found, handed_over.pop(0)])
    summary = recognize_file(first, source, tmp_path / "two.jsonl", batch_size=4, ranks=rank0)
    assert first.calls == 3 and summary.records == 23
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()


def test_the_help_states_the_default_batch_size(capsys):
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    assert f"(default: {batch.BATCH_SIZE};" in " ".join(capsys.readouterr().out.split())


# --- the command line -----------------------------------------------------------------------------

@pytest.mark.parametrize("output, options, fmt", [
    ("e.jsonl", [], "jsonl"), ("e.csv", [], "csv"), ("e.data", ["--format", "csv"], "csv"),
])
def test_predict_output_writes_the_file_and_prints_one_line(per_model, tmp_path, capsys, output,
                                                            options, fmt):
    source = write(tmp_path / "in.csv",
                   "id,body\n" + "".join(f"{i},{t}\n" for i, t in enumerate(LINES)))
    args = ["predict", "--model", str(per_model), "--input", str(source), "--output",
            str(tmp_path / output), "--text-field", "body", "--batch-size", "2", *options]
    assert cli.main(args) == 0
    n_words = sum(len(words(line)) for line in LINES)
    assert capsys.readouterr().out == (f"wrote {tmp_path / output} ({fmt}): 4 records, {n_words} "
                                       f"entities (PER {n_words})\n")
    text = (tmp_path / output).read_text("utf-8")
    lines = text.splitlines()
    assert len(lines) == (n_words + 1 if fmt == "csv" else 4)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "runs")
    assert left == sorted(["in.csv", output])


def test_predict_stdout_form_gives_the_entities_of_the_file_form(per_model, tmp_path, capsys):
    source = write(tmp_path / "in.txt", "\n".join(LINES) + "\n")
    assert cli.main(["predict", "--model", str(per_model), "--input", str(source)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert cli.main(["predict", "--model", str(per_model), "--input", str(source), "--output",
                     str(tmp_path / "out.jsonl")]) == 0
    written = [record["entities"] for record in read_jsonl(tmp_path / "out.jsonl")]
    assert printed == written


@pytest.mark.parametrize("extra, message", [
    (["--format", "csv"], "error: --format applies to --output, found it without --output"),
    (["--batch-size", "8"], "error: --batch-size applies to --output, found it without --output"),
    (["--output", "{tmp}/out.jsonl", "--text-field", "body"],
     "in.jsonl:1: expected a field 'body', found the field 'text'"),
    (["--output", "{tmp}/out.jsonl", "--batch-size", "0"],
     "error: batch size must be between 1 and 100000, found 0"),
    (["--output", "{tmp}/out.jsonl", "--threshold", "2"],
     "error: threshold must be between 0 and 1, found 2.0"),
])
def test_predict_bad_file_options_exit_2_with_one_line(tiny_bert, tmp_path, capfd, extra, message):
    source = write(tmp_path / "in.jsonl", '{"text": "anna"}\n')
    args = ["predict", "--model", str(tiny_bert), "--input", str(source),
            *[a.format(tmp=tmp_path) for a in extra]]
    assert cli.main(args) == 2
    out, err = capfd.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "out.jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_predict_text_field_of_a_text_file_is_refused(tiny_bert, tmp_path, capfd):
    source = write(tmp_path / "in.txt", "anna\n")
    assert cli.main(["predict", "--model", str(tiny_bert), "--input", str(source), "--output",
                     str(tmp_path / "o.jsonl"), "--text-field", "body"]) == 2
    assert capfd.readouterr().err == (f"error: --text-field expected a .jsonl, .csv or .tsv input, "
                                      f"found {source}, a text per line\n")
    assert not (tmp_path / "o.jsonl").exists()


def test_predict_text_with_output_is_refused(tiny_bert, tmp_path, capfd):
    assert cli.main(["predict", "--model", str(tiny_bert), "--text", "anna", "--output",
                     str(tmp_path / "o.jsonl")]) == 2
    assert capfd.readouterr().err == "error: --output expected --input FILE, found --text\n"


def test_sigterm_mid_file_aborts_and_leaves_nothing(per_model, tmp_path, capfd, monkeypatch):
    """torchrun stops its processes with SIGTERM: the command cleans up as for Ctrl-C."""
    source = write(tmp_path / "in.txt", "\n".join(LINES * 10))
    real = Recognizer.recognize_batch
    calls = []

    def terminated_on_the_second_chunk(self, texts, threshold=0.0):
        calls.append(len(texts))
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, texts, threshold)

    monkeypatch.setattr(Recognizer, "recognize_batch", terminated_on_the_second_chunk)
    handler = signal.getsignal(signal.SIGTERM)
    assert cli.main(["predict", "--model", str(per_model), "--input", str(source), "--output",
                     str(tmp_path / "out.jsonl"), "--batch-size", "4"]) == 130
    assert signal.getsignal(signal.SIGTERM) is handler
    assert capfd.readouterr().err.endswith("aborted; nothing was saved\n")
    assert len(calls) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name != "runs"] == ["in.txt"]


# --- the README's commands, and torchrun ---------------------------------------------------------

N_ARTICLES = 5000


def readme_predict_commands() -> list[str]:
    """The README's ``predict ... --output`` command lines, in order."""
    text = (ROOT / "README.md").read_text()
    return [line.strip() for line in text.splitlines()
            if re.match(r"(python -m ner_core|torchrun .* -m ner_core) predict .*--output",
                        line.strip())]


def in_process(args: list[str], work: Path, env: dict) -> subprocess.CompletedProcess:
    """``python -m ner_core ...`` (``args``) run by ``cli.main`` in this process, in ``work`` with
    ``env``, on one thread as each process under torchrun: what a process of its own would do,
    without its imports."""
    import torch

    out, err, threads = io.StringIO(), io.StringIO(), torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.chdir(work)
        for name in ("NER_RUNS_DIR", "HF_HUB_OFFLINE"):
            patch.setenv(name, env[name])
        patch.delenv("WORLD_SIZE", raising=False)
        torch.set_num_threads(1)
        try:
            code = cli.main(args[3:])  # after "python -m ner_core"
        finally:
            torch.set_num_threads(threads)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory, tiny_bert):
    """Each README command run in a directory holding ``runs/smoke`` (the untrained tiny model)
    and the articles the commands read; the output of each is kept in its order. 5,000 articles
    are three chunks of the default size: under torchrun, two rounds, the second one short."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(tiny_bert, work / "runs" / "smoke")
    texts = [" ".join(LINES[i % 4].split()[: 1 + i % 7]) + f" no {i}." for i in range(N_ARTICLES)]
    write(work / "articles.jsonl", jsonl({"id": i, "text": t} for i, t in enumerate(texts)))
    write(work / "articles.csv", "id,body\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "NER_RUNS_DIR": str(work / "no-runs")}
    env.pop("WORLD_SIZE", None)
    done = []
    for command in readme_predict_commands():
        args = shlex.split(command)
        if args[0] == "torchrun":  # torch.distributed.run, through this interpreter
            args = [sys.executable, "-m", "torch.distributed.run", *args[1:]]
            result = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True,
                                    timeout=300)
        else:
            result = in_process(args, work, env)
        output = work / args[args.index("--output") + 1]
        done.append((command, result, output.read_bytes() if output.is_file() else None))
        output.unlink(missing_ok=True)
        assert not list(work.glob(".*.partial"))
    return done


def test_readme_lists_predict_to_a_file_and_under_torchrun():
    commands = readme_predict_commands()
    assert any(c.startswith("python -m ner_core predict") for c in commands)
    assert any(c.startswith("torchrun ") for c in commands)


def test_readme_predict_commands_run(readme_runs):
    for command, result, output in readme_runs:
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
        assert result.stdout.startswith("wrote ") and result.stdout.count("\n") == 1, result.stdout
        assert output


def test_torchrun_writes_the_same_bytes_as_one_process(readme_runs):
    single = [output for command, _, output in readme_runs
              if command.startswith("python") and "entities.jsonl" in command]
    shared = [output for command, _, output in readme_runs if command.startswith("torchrun")]
    assert single and shared
    assert len(single[0].splitlines()) == N_ARTICLES
    assert all(output == single[0] for output in shared)
