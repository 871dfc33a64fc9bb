"""``python -m ner_core``: JSON output, saved runs, and bad input as one line with exit code 2.

Each subprocess pays seconds for importing torch and transformers, so every error case calls
``cli.main`` in-process (stderr captured at the file descriptor) and a few representative ones also
run as processes of their own, side by side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import make_sentences, write_conll

from ner_core import cli, hardware, runs

ROOT = Path(__file__).resolve().parent.parent
ENTITY_KEYS = {"start", "end", "label", "score", "text"}


def environment(runs_dir: Path, **extra: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NER_RUNS_DIR": str(runs_dir), **extra}
    env.pop("NER_DATA_DIR", None)
    return env


def run_module(args: list[str], runs_dir: Path, timeout: float = 120, **extra: str):
    return subprocess.run([sys.executable, "-m", "ner_core", *map(str, args)], cwd=ROOT,
                          env=environment(runs_dir, **extra), capture_output=True, text=True,
                          timeout=timeout)


def assert_entities(text: str, entities) -> None:
    assert isinstance(entities, list)
    for entity in entities:
        assert set(entity) == ENTITY_KEYS
        assert entity["text"] == text[entity["start"]:entity["end"]]


@pytest.fixture(autouse=True)
def keep_sigint_handler():
    """``train`` installs a SIGINT handler; an in-process call must not leave it to pytest."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def data_dir(module_dir) -> Path:
    directory = module_dir / "conll"
    directory.mkdir()
    write_conll(directory / "train.txt", make_sentences(40, seed=1), docs=2)
    write_conll(directory / "valid.txt", make_sentences(12, seed=2), docs=2)
    write_conll(directory / "test.txt", make_sentences(10, seed=3), docs=2)
    return directory


# --- predict and evaluate -------------------------------------------------------------------------

def test_predict_text_prints_a_json_list(tiny_bert, runs_dir):
    text = "anna weber visited berlin 😀 with omar haddad."
    done = run_module(["predict", "--model", tiny_bert, "--text", text], runs_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    entities = json.loads(lines[0])
    assert entities, "an untrained model tags most words"
    assert_entities(text, entities)
    assert "\\u" not in done.stdout, "entity text is printed as UTF-8, not \\u-escaped"


def test_predict_input_prints_one_json_list_per_line(tiny_model, tmp_path, capsys):
    texts = ["anna weber visited berlin.", "", "omar haddad met globex in lagos.", "李伟 😀 Zu\u0308rich"]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert cli.main(["predict", "--model", str(tiny_model), "--input", str(source)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(texts)
    for text, line in zip(texts, lines):
        assert_entities(text, json.loads(line))
    assert json.loads(lines[1]) == []


def test_predict_threshold(tiny_bert, capsys):
    text = "anna weber visited berlin with omar haddad."
    assert cli.main(["predict", "--model", str(tiny_bert), "--text", text]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert cli.main(["predict", "--model", str(tiny_bert), "--text", text, "--threshold", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == [e for e in everything if e["score"] >= 1.0]


def test_predict_a_saved_run_by_name(tiny_bert, runs_dir, capsys):
    import shutil

    shutil.copytree(tiny_bert, runs_dir / "named")
    for name in ("train_config.json", "metrics.json"):
        runs.write_json(runs_dir / "named" / name, {})
    assert cli.main(["predict", "--model", "named", "--text", "anna weber"]) == 0
    assert_entities("anna weber", json.loads(capsys.readouterr().out))


@pytest.mark.parametrize("split, mode, n_sentences", [
    (None, "default", 12),
    ("test", "default", 10),
    ("test", "strict", 10),
    ("train", "strict", 40),
])
def test_evaluate_writes_scores_and_prints_a_table(tiny_model, data_dir, tmp_path, capsys,
                                                   split, mode, n_sentences):
    output = tmp_path / "m.json"
    args = ["evaluate", "--model", str(tiny_model), "--data", str(data_dir), "--output", str(output),
            "--mode", mode]
    assert cli.main(args + (["--split", split] if split else [])) == 0
    result = json.loads(output.read_text())
    assert set(result["overall"]) == {"precision", "recall", "f1", "accuracy"}
    assert result["n_sentences"] == n_sentences
    assert result["split"] == (split or "validation") and result["mode"] == mode
    assert {"PER", "ORG", "LOC"} <= set(result["per_entity"])
    for scores in result["per_entity"].values():
        assert set(scores) == {"precision", "recall", "f1", "support"}
    out = capsys.readouterr().out
    # What reading the data counted comes first (62 sentences in the three files), then the scores.
    report = result["data_report"]
    assert (report["records"], report["examples"], report["changes"]) == (62, 62, {})
    assert out.splitlines()[0].startswith(f"{data_dir.name} (conll (IOB2)): 62 records, 62 "
                                          "examples, ")
    picked, said = hardware.pick_precision("auto", "cpu")  # auto, the default
    assert out.splitlines()[1] == f"{tiny_model} computes in {said}; tags decoded iob2"
    assert result["decoding"] == "iob2"
    assert result["precision"] == picked
    assert out.splitlines()[2].split() == ["precision", "recall", "f1", "support"]
    for entity, scores in result["per_entity"].items():
        assert any(line.split()[:1] == [entity] and line.split()[-1] == str(scores["support"])
                   for line in out.splitlines())
    assert f"overall ({split or 'validation'}, {n_sentences} sentences, {mode} mode)" in out


def test_evaluate_reads_tags_word_by_word_when_asked(tiny_bert, data_dir, tmp_path, capsys):
    # The untrained tiny model's tags break IOB2 (an I- after O): the two readings differ.
    scores = {}
    for decoding in ("iob2", "per-word"):
        output = tmp_path / f"{decoding}.json"
        assert cli.main(["evaluate", "--model", str(tiny_bert), "--data", str(data_dir), "--output",
                         str(output), "--mode", "strict", "--decoding", decoding]) == 0
        assert f"tags decoded {decoding}" in capsys.readouterr().out
        scores[decoding] = json.loads(output.read_text())
        assert scores[decoding]["decoding"] == decoding
    assert scores["iob2"]["overall"] != scores["per-word"]["overall"]


def test_evaluate_one_file_as_the_split_asked_for(tiny_bert, data_dir, capsys):
    assert cli.main(["evaluate", "--model", str(tiny_bert), "--data", str(data_dir / "test.txt"),
                     "--split", "test"]) == 0
    assert "overall (test, 10 sentences, default mode)" in capsys.readouterr().out


# --- train ----------------------------------------------------------------------------------------

def test_train_saves_a_run(tiny_bert, data_dir, tmp_path, capfd):
    output = tmp_path / "trained"
    code = cli.main(["train", "--base-model", str(tiny_bert), "--data", str(data_dir), "--output",
                     str(output), "--epochs", "1", "--batch-size", "8", "--max-length", "64",
                     "--learning-rate", "1e-3"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert out.startswith(f"saved {output} (5 steps")
    assert "validation: precision" in out and "test: precision" in out
    assert runs.is_complete(output)
    assert [p.name for p in tmp_path.iterdir() if p.name != "runs"] == ["trained"]
    saved = json.loads((output / "train_config.json").read_text())
    assert (saved["epochs"], saved["train_batch_size"], saved["max_length"], saved["learning_rate"]) \
        == (1.0, 8, 64, 1e-3)
    assert "Traceback" not in err


def test_torchrun_trains_on_two_cpu_processes(tiny_bert, data_dir, tmp_path, runs_dir):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.is_file():
        pytest.skip(f"torchrun is not installed next to {sys.executable}")
    output = tmp_path / "parent" / "ddp"
    done = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "-m", "ner_core", "train", "--base-model",
         str(tiny_bert), "--data", str(data_dir), "--output", str(output), "--epochs", "1",
         "--batch-size", "8", "--max-length", "64"],
        cwd=ROOT, env=environment(runs_dir, OMP_NUM_THREADS="1"), capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert runs.is_complete(output)
    assert [p.name for p in output.parent.iterdir()] == ["ddp"]
    # 40 sentences, 8 per process and step, 2 processes: 3 steps, where one process would take 5.
    assert runs.read_json(output / "metrics.json")["training"]["steps"] == 3
    assert done.stdout.count("saved ") == 1, "only the main process reports"


# --- bad input: one line on stderr, exit code 2 ---------------------------------------------------

def bad_tag_file(directory: Path) -> Path:
    path = directory / "bad-tag.txt"
    path.write_text("anna B-PER\nweber I-PER\nvisited 0\nberlin B-LOC\n", encoding="utf-8")
    return path


def latin1_file(directory: Path) -> Path:
    path = directory / "latin1.txt"
    path.write_bytes("anna Zürich\n".encode("latin-1"))
    return path


def error_cases(tiny: Path, data: Path, work: Path) -> dict[str, tuple[list, str]]:
    """Name -> (arguments, a piece of the one line expected on stderr)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "taken").mkdir(exist_ok=True)
    partial = work / "no-test"
    partial.mkdir(exist_ok=True)
    for name in ("train.txt", "valid.txt"):
        (partial / name).write_text((data / name).read_text())
    train = ["train", "--base-model", tiny, "--data", data, "--epochs", "1", "--batch-size", "8",
             "--max-length", "64"]
    cases = {
        "missing model directory": (["predict", "--model", "/no/such/model", "--text", "anna"],
                                    "found '/no/such/model'"),
        "unknown model name": (["predict", "--model", "no-such-run", "--text", "anna"],
                               "cannot be reached"),
        "missing model to evaluate": (["evaluate", "--model", work / "absent", "--data", data],
                                      "absent"),
        "bad data path": (["evaluate", "--model", tiny, "--data", "/no/such/data"],
                          "found '/no/such/data', which does not exist"),
        "bad tag": (["evaluate", "--model", tiny, "--data", bad_tag_file(work)],
                    "bad-tag.txt:3: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found '0'"),
        "learning rate 0": ([*train, "--output", work / "lr0", "--learning-rate", "0"],
                            "learning_rate must be in (0, 1], found 0"),
        "learning rate 2": ([*train, "--output", work / "lr2", "--learning-rate", "2"],
                            "learning_rate must be in (0, 1], found 2.0"),
        "batch size 0": ([*train, "--output", work / "bs0", "--batch-size", "0"],
                         "train_batch_size must be between 1 and 1024, found 0"),
        "unknown scheduler": ([*train, "--output", work / "sched", "--lr-scheduler", "bogus"],
                              "lr_scheduler must be one of linear, cosine, constant, "
                              "constant_with_warmup, found 'bogus'"),
        "existing output": ([*train, "--output", work / "taken"],
                            "already exists; pass --overwrite to replace it"),
        "train on a bad data path": ([*train, "--output", work / "nodata", "--data", "/no/such/data"],
                                     "found '/no/such/data', which does not exist"),
        "missing input file": (["predict", "--model", tiny, "--input", work / "absent.txt"],
                               "absent.txt: expected a text file, found no such file"),
        "input not UTF-8": (["predict", "--model", tiny, "--input", latin1_file(work)],
                            "latin1.txt:1: expected UTF-8 text, found the byte 0xfc"),
        "threshold 2": (["predict", "--model", tiny, "--text", "anna", "--threshold", "2"],
                        "threshold must be between 0 and 1, found 2.0"),
        "split the data lacks": (["evaluate", "--model", tiny, "--data", partial, "--split", "test"],
                                 "expected a split the data has (train, validation), found 'test'"),
        "unknown split": (["evaluate", "--model", tiny, "--data", data, "--split", "bogus"],
                          "invalid choice: 'bogus'"),
        "missing base model": ([*train, "--output", work / "nobase", "--base-model", "/no/such/base"],
                               "found '/no/such/base'"),
        "max length beyond the model": ([*train, "--output", work / "long", "--max-length", "256"],
                                        "max_length must be at most 128"),
    }
    return {name: ([str(a) for a in args], expected) for name, (args, expected) in cases.items()}


def assert_one_error_line(code, stdout: str, stderr: str, expected: str, work: Path) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, found {len(lines)}: {stderr!r}"
    assert expected in lines[0]
    assert stdout == ""
    made = sorted(p.name for p in work.iterdir()
                  if p.name.startswith(runs.PARTIAL_PREFIX) or p.name in ("lr0", "nobase", "long"))
    assert made == []


ALL_CASES = ["missing model directory", "unknown model name", "missing model to evaluate",
             "bad data path", "bad tag", "learning rate 0", "learning rate 2", "batch size 0",
             "unknown scheduler", "existing output", "train on a bad data path", "missing input file",
             "input not UTF-8", "threshold 2", "split the data lacks", "unknown split", "missing base model",
             "max length beyond the model"]
# Each as a process of its own: what really reaches stderr, warnings and progress bars included.
IN_A_PROCESS = ["missing model directory", "bad tag", "existing output", "unknown split"]


@pytest.fixture(scope="module")
def error_processes(tiny_bert, data_dir, module_dir):
    """The ``IN_A_PROCESS`` cases, run two at a time."""
    work = module_dir / "errors"
    cases = error_cases(tiny_bert, data_dir, work)
    assert list(cases) == ALL_CASES
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = {name: pool.submit(run_module, cases[name][0], work / "runs") for name in IN_A_PROCESS}
        return {name: (future.result(), cases[name][1], work) for name, future in done.items()}


@pytest.mark.parametrize("case", IN_A_PROCESS)
def test_bad_input_exits_2_with_one_line(error_processes, case):
    done, expected, work = error_processes[case]
    assert_one_error_line(done.returncode, done.stdout, done.stderr, expected, work)


@pytest.mark.parametrize("case", ALL_CASES)
def test_bad_input_exits_2_with_one_line_in_process(tiny_bert, data_dir, tmp_path, capfd, case):
    work = tmp_path / "errors"
    args, expected = error_cases(tiny_bert, data_dir, work)[case]
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse refuses its own way
        code = exit_.code
    out, err = capfd.readouterr()
    assert_one_error_line(code, out, err, expected, work)


@pytest.mark.parametrize("command, flags", [
    ("train", ["--base-model", "--learning-rate", "--batch-size", "--epochs", "--max-length",
               "--output", "--overwrite", "--preset", "--document-context", "--no-document-context"]),
    ("evaluate", ["--model", "--data", "--split", "--mode", "--output"]),
    ("predict", ["--model", "--text", "--input", "--threshold"]),
])
def test_help_of_each_command(capsys, command, flags):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m ner_core {command}")
    for flag in flags:
        assert flag in out


def test_help_of_the_program(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m ner_core")
    assert all(command in out for command in ("train", "evaluate", "predict"))
