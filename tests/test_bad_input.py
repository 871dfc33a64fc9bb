"""Bad input, as the app and the command line meet it: text, uploaded files, hyperparameters and
model names. Each is refused before any work starts, with a message that says what was expected,
what was found and where, or handled exactly; after a refusal the next good request works.

The app is driven through its handlers (``app.py``), the command line in-process (``cli.main``),
and what only a browser can show against the session's ``app_server``.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest

from chromium import choose, opened
from conftest import make_sentences, write_conll
from live_app import label_winning_copy, make_run
from ner_core import cli, hub, preset
from ner_core.inference import MAX_TEXT_CHARS
from ner_core.jobs import FineTuneJobs
from studio import finetune as ft
from studio import highlight as hl
from studio import evaluate as ev
from studio import training as tr
from studio import data

HYPERPARAMETERS = {"learning_rate": 3e-4, "train_batch_size": 16.0, "epochs": 1.0, "seed": 42.0,
                   "weight_decay": 0.01, "warmup_ratio": 0.1, "max_length": 64.0,
                   "max_train_sentences": 0.0, "document_context": False, "label_all_tokens": False}
# Characters that break naive offset arithmetic: each must come back exactly as text[start:end].
AWKWARD = {
    "control characters": "anna\x00weber\x07 visited\x1b berlin\x0b\x0c omar\x7f haddad\x01.",
    "zero-width joiners": "anna\u200dweber visited\u200d\u200d berlin \u200d omar\u200c haddad \u2060.",
    "right to left": "عمر حداد زار برلين. שלום anna weber \u200fמ\u200e lagos \u202eberlin\u202c.",
    "emoji": "anna weber 👩‍🔬 visited berlin 🇩🇪 today 😀! 👍🏽 nordbank ❤️ lagos",
    "cjk": "李伟在东京见了安娜。 anna weber visited 北京. 東京タワー と ソウル",
    "combining accents": "Jose\u0301 Mari\u0301a visited Sa\u0303o Paulo and Zu\u0308rich.",
    "line and paragraph separators": "anna\u2028weber visited\u2029berlin\x85 lagos",
}
# In a file a NUL byte means binary data (see the uploads below): every other character stays.
IN_A_FILE = {name: text.replace("\x00", "") for name, text in AWKWARD.items()}
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture(scope="module")
def every_word_model(tmp_path_factory, tiny_bert) -> Path:
    """A tiny BERT that tags every word B-PER: each word is an entity with its own offsets."""
    return label_winning_copy(tiny_bert, tmp_path_factory.mktemp("every-word") / "model", "B-PER")


@pytest.fixture(scope="module")
def sentence_model(tmp_path_factory, tiny_bert) -> Path:
    """A tiny BERT that scores every word I-ORG first: each sentence is one ORG entity."""
    return label_winning_copy(tiny_bert, tmp_path_factory.mktemp("sentence") / "model", "I-ORG")


@pytest.fixture
def served_runs(runs_dir, every_word_model, sentence_model) -> Path:
    """The runs the app offers: ``words`` (every word PER) and ``tiny`` (every sentence ORG)."""
    make_run(runs_dir, "words", every_word_model)
    make_run(runs_dir, "tiny", sentence_model)
    return runs_dir


@pytest.fixture
def jobs(monkeypatch) -> FineTuneJobs:
    """A job runner of its own whose fine-tune must never be reached."""

    def never(*args, **kwargs):
        raise AssertionError("a refused request started a fine-tune")

    runner = FineTuneJobs(never)
    monkeypatch.setattr(ft, "JOBS", runner)
    return runner


def uploaded(tmp_path: Path, name: str, content: str | bytes) -> str:
    """A file where Gradio keeps uploads (a hashed directory): messages must name only the file."""
    path = tmp_path / "gradio" / "5f1c0a9e7b" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def good_file(tmp_path: Path, name: str = "good.txt") -> str:
    """A well-formed CoNLL file of 20 sentences."""
    directory = tmp_path / "good"
    directory.mkdir(exist_ok=True)
    return str(write_conll(directory / name, make_sentences(20, seed=4)))


@contextmanager
def refused(expected: str, start: bool = False):
    """Expect ``gr.Error`` or ``ValueError`` whose message holds (or starts with) ``expected``.

    The message is compared as the user reads it: ``str(gr.Error)`` is its ``repr``.
    """
    with pytest.raises((gr.Error, ValueError)) as error:
        yield error
    message = getattr(error.value, "message", None) or str(error.value)
    assert (message.startswith(expected) if start else expected in message), message


def run_cli(args: list, capfd) -> tuple[int, str, str]:
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exit_:  # argparse refuses its own way
        code = exit_.code
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_error_line(code: int, out: str, err: str, expected: str) -> None:
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert err.count("\n") == 1, f"expected one line on stderr, found {err!r}"
    assert expected in err, err


# Text --------------------------------------------------------------------------------------------

def test_cli_predict_of_empty_or_blank_text_prints_no_entities(tiny_bert, tmp_path, capfd):
    assert run_cli(["predict", "--model", tiny_bert, "--text", ""], capfd)[:2] == (0, "[]\n")
    assert run_cli(["predict", "--model", tiny_bert, "--text", " \n\t "], capfd)[:2] == (0, "[]\n")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\t\n", encoding="utf-8")
    assert run_cli(["predict", "--model", tiny_bert, "--input", blank], capfd)[:2] \
        == (0, "[]\n[]\n[]\n")


def test_highlight_refuses_a_megabyte_before_loading_a_model(served_runs, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the model was loaded for a text that is refused")

    monkeypatch.setattr(hl.models, "recognizer", never)
    text = "anna weber visited berlin. " * 40_000
    assert len(text) >= 1_000_000
    with pytest.raises(gr.Error, match=f"expected at most 100,000 characters, found {len(text):,}; "
                                       "paste a shorter text or use `python -m ner_core predict"):
        hl.highlight(text, "tiny", "", 0.0)


def test_cli_predict_refuses_a_megabyte_line_naming_file_and_line(tmp_path, capfd):
    path = tmp_path / "book.txt"
    path.write_text("anna weber\n" + "berlin " * 150_000 + "\nlagos\n", encoding="utf-8")
    # The line is refused before the model is looked for: this model does not exist.
    code, out, err = run_cli(["predict", "--model", tmp_path / "no-model", "--input", path], capfd)
    assert_one_error_line(code, out, err, f"{path}:2: expected at most {MAX_TEXT_CHARS:,} characters "
                                          "on a line, found 1,050,000; break the text into lines")


def test_cli_predict_streams_a_megabyte_file_in_chunks(tmp_path, capfd, monkeypatch):
    """A 1 MB file is read a chunk at a time: memory stays flat, time grows with the file."""
    seen: list[list[str]] = []

    class Counting:
        precision_said = "float32, as asked"

        def __init__(self, model, **kwargs):
            pass

        def recognize_batch(self, texts, threshold=0.0):
            seen.append(texts)
            return [[] for _ in texts]

    monkeypatch.setattr("ner_core.inference.Recognizer", Counting)
    lines = [" ".join(word for word, _ in s) for s in make_sentences(28_000, seed=9)]
    path = tmp_path / "megabyte.txt"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    assert path.stat().st_size > 1_000_000

    code, out, _ = run_cli(["predict", "--model", "any", "--input", path], capfd)
    assert code == 0
    assert out == "[]\n" * len(lines)
    assert [text for chunk in seen for text in chunk] == lines
    longest = max(map(len, lines))
    assert len(seen) > 40
    assert all(sum(map(len, chunk)) < cli.PREDICT_CHUNK_CHARS + longest for chunk in seen)


def test_cli_predict_in_chunks_equals_one_text_at_a_time(every_word_model, tmp_path, capfd,
                                                        monkeypatch):
    from ner_core import Recognizer

    monkeypatch.setattr(cli, "PREDICT_CHUNK_CHARS", 60)
    texts = [" ".join(word for word, _ in s) for s in make_sentences(12, seed=3)]
    texts += list(IN_A_FILE.values())
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    code, out, _ = run_cli(["predict", "--model", every_word_model, "--input", path], capfd)
    assert code == 0
    recognizer = Recognizer(str(every_word_model))
    # One list per line of the file: U+2028, U+2029 and U+0085 stay inside their line.
    assert [json.loads(line) for line in out.splitlines()] == [recognizer.recognize(t) for t in texts]


@pytest.mark.parametrize("text", AWKWARD.values(), ids=AWKWARD.keys())
def test_highlight_offsets_stay_exact_on_awkward_characters(served_runs, text):
    update, table, files, _, found = hl.highlight(text, "words", "", 0.0)
    entities = found["entities"]
    assert entities, "every word the model reads is an entity"
    for entity in entities:
        assert entity["text"] == text[entity["start"]:entity["end"]]
    assert table.values.tolist() == [[e["text"], e["label"], e["score"], e["start"], e["end"]]
                                     for e in entities]
    assert "".join(t["token"] for t in update.value) == text
    assert json.loads(Path(files[0]).read_text(encoding="utf-8")) == entities


def test_cli_predict_offsets_stay_exact_on_awkward_characters(every_word_model, tmp_path, capfd):
    texts = list(IN_A_FILE.values())
    path = tmp_path / "awkward.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    code, out, _ = run_cli(["predict", "--model", every_word_model, "--input", path], capfd)
    assert code == 0
    lists = [json.loads(line) for line in out.splitlines()]
    assert len(lists) == len(texts)
    for text, entities in zip(texts, lists):
        assert entities and all(e["text"] == text[e["start"]:e["end"]] for e in entities)


def test_highlight_refuses_a_lone_surrogate_with_its_position(served_runs):
    # Only an API call can send one (JSON "\ud800"); the tokenizer and UTF-8 files cannot take it.
    with pytest.raises(gr.Error, match=r"expected Unicode text, found the lone surrogate U\+D800 at "
                                       r"character 6"):
        hl.highlight("anna \ud800 weber", "tiny", "", 0.0)
    assert hl.highlight("anna weber", "tiny", "", 0.0)[4]["entities"]


def test_cli_predict_refuses_text_that_is_not_utf8(tiny_bert, capfd):
    # Bytes that are not UTF-8 reach sys.argv as lone surrogates (surrogateescape).
    code, out, err = run_cli(["predict", "--model", tiny_bert, "--text", "anna \udcff weber"], capfd)
    assert_one_error_line(code, out, err, "--text: expected UTF-8 text, found the byte 0xff at "
                                          "character 6")


def test_html_in_text_comes_back_as_the_same_text(served_runs):
    text = f"anna weber {HOSTILE} visited berlin."
    update, table, files, _, found = hl.highlight(text, "tiny", "", 0.0)
    assert "".join(t["token"] for t in update.value) == text
    assert any(HOSTILE in cell for cell in table["text"])
    assert any(HOSTILE in e["text"] for e in found["entities"])
    assert json.loads(Path(files[0]).read_text(encoding="utf-8")) == found["entities"]


# Uploaded files ----------------------------------------------------------------------------------

# name -> (content, what the message says after the file's name)
BAD_UPLOADS = {
    "not UTF-8": (b"anna B-PER\n\ncaf\xe9 O\n",
                  ":3: expected UTF-8 text, found the byte 0xe9 (byte 4 of the line) that UTF-8 "
                  "does not allow there"),
    "UTF-16": ("anna B-PER\n".encode("utf-16"),
               ":1: expected UTF-8 text, found UTF-16 (it starts with a UTF-16 byte-order mark)"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
               ":3: expected UTF-8 text, found binary data (a NUL byte)"),
    "empty": (b"", ": expected labelled data, found an empty file"),
    "blank lines only": ("\r\n \n\t\n", ": expected CoNLL text, found an empty file"),
    "wrong number of columns": ("anna NN B-NP B-PER\nweber NN B-NP I-PER\nvisited VBD O\n",
                                ":3: expected 4 columns like the lines above, found 3: "
                                "'visited VBD O'"),
    "one column": ("anna\n", ":1: expected at least 2 columns (token ... tag), found 1"),
    "digit zero for O": ("anna B-PER\nweber I-PER\nvisited 0\n",
                         ":3: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found '0' (the digit zero; "
                         "the outside tag is the letter O)"),
    "type without prefix": ("anna PER\n", ":1: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found 'PER'"),
    "only -DOCSTART- lines": ("-DOCSTART- -X- -X- O\r\n\r\n-DOCSTART- -X- -X- O\r\n",
                              ": expected sentences of 'token ... tag' lines, found none"),
}


@pytest.mark.parametrize("content, message", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_bad_uploads_are_refused_by_file_and_line_everywhere(served_runs, jobs, tmp_path, content,
                                                             message):
    bad = uploaded(tmp_path, "upload.txt", content)
    good = good_file(tmp_path)
    expected = f"upload.txt{message}"  # the name the user knows, not the server's path
    # The Fine-tune tab's note about the file, as it is dropped in.
    with refused(expected, start=True):
        ft.describe_upload(bad)
    # Fine-tune, as training or as validation data: no job, no run directory.
    for train, validation in [(bad, None), (good, bad)]:
        with refused(expected, start=True):
            next(ft.start_fine_tune("never", "tiny", "", "upload", train, validation,
                                    **HYPERPARAMETERS))
    assert jobs.snapshot().state == "idle"
    assert sorted(p.name for p in served_runs.iterdir()) == ["tiny", "words"]
    # Evaluate.
    with refused(expected, start=True):
        ev.evaluate("tiny", "upload", bad, "default")
    # And the app goes on: the next good request works.
    assert ft.describe_upload(good).startswith("`good.txt`: 20 sentences")
    assert ev.evaluate("tiny", "upload", good, "default")[0].values.tolist()[0][-1] == 20


def test_an_upload_over_the_limit_is_refused_before_it_is_read(served_runs, jobs, tmp_path):
    path = Path(uploaded(tmp_path, "huge.txt", b""))
    with open(path, "wb") as f:
        f.truncate(data.UPLOAD_LIMIT_BYTES + 1)  # sparse: costs no disk
    message = "huge.txt: expected at most 20 MB, found 20.0 MB"
    with refused(message, start=True):
        ft.describe_upload(str(path))
    with refused(message, start=True):
        ev.evaluate("tiny", "upload", str(path), "default")
    with refused(message, start=True):
        next(ft.start_fine_tune("never", "tiny", "", "upload", str(path), None, **HYPERPARAMETERS))
    assert jobs.snapshot().state == "idle"


CRLF_AND_NO_FINAL_BLANK = ("-DOCSTART- -X- -X- O\r\n\r\nanna NN B-NP B-PER\r\nweber NN B-NP I-PER\r\n"
                           "\r\nnordbank NN B-NP B-ORG\r\nleft VBD B-VP O")
IOB1 = "anna I-PER\nweber I-PER\nmet O\njan I-PER\n\nlima I-LOC\nlagos B-LOC\n"


@pytest.mark.parametrize("content, note, gold", [
    pytest.param(CRLF_AND_NO_FINAL_BLANK, "2 sentences, IOB2, types ORG, PER",
                 [["B-PER", "I-PER"], ["B-ORG", "O"]], id="Windows line endings, last sentence "
                                                          "without a blank line or a newline"),
    pytest.param(IOB1, "2 sentences, IOB1, converted to IOB2, types LOC, PER",
                 [["B-PER", "I-PER", "O", "B-PER"], ["B-LOC", "B-LOC"]], id="IOB1"),
])
def test_uploads_in_other_layouts_are_read_whole(served_runs, tmp_path, content, note, gold):
    path = uploaded(tmp_path, "layout.txt", content)
    assert ft.describe_upload(path).split("\n")[0] == f"`layout.txt`: {note}"
    evaluated = ev.evaluate("tiny", "upload", path, "default")[3]
    assert ev.saved_evaluation(evaluated, None)["gold"] == gold


# Hyperparameters ---------------------------------------------------------------------------------

BAD_SETTINGS = {
    "learning rate 0": ({"learning_rate": 0.0}, r"learning_rate must be in (0, 1], found 0.0"),
    "learning rate below 0": ({"learning_rate": -1e-5}, r"learning_rate must be in (0, 1], found -1e-05"),
    "learning rate above 1": ({"learning_rate": 1.5}, r"learning_rate must be in (0, 1], found 1.5"),
    "epochs 0": ({"epochs": 0.0}, "epochs must be in (0, 100], found 0.0"),
    "epochs below 0": ({"epochs": -2.0}, "epochs must be in (0, 100], found -2.0"),
    "epochs above 100": ({"epochs": 101.0}, "epochs must be in (0, 100], found 101.0"),
    "batch size 0": ({"train_batch_size": 0.0}, "train_batch_size must be between 1 and 1024, found 0"),
    "batch size below 0": ({"train_batch_size": -4.0},
                           "train_batch_size must be between 1 and 1024, found -4"),
    "batch size above 1024": ({"train_batch_size": 1025.0},
                              "train_batch_size must be between 1 and 1024, found 1025"),
    "batch size 2.5": ({"train_batch_size": 2.5}, "train_batch_size must be a whole number, found 2.5"),
    "max length above the model's": ({"max_length": 256.0},
                                     "max_length must be at most 128 for tiny, found 256"),
    "max sentences below 0": ({"max_train_sentences": -3.0},
                              "max_train_sentences must be between 1 and 1000000000, found -3"),
    "learning rate not a number": ({"learning_rate": "fast"},
                                   "learning_rate must be a number, found 'fast'"),
    "learning rate NaN": ({"learning_rate": float("nan")}, "learning_rate must be a number, found nan"),
    "epochs infinite": ({"epochs": float("inf")}, "epochs must be a number, found inf"),
    "batch size not a number": ({"train_batch_size": "16x"},
                                "train_batch_size must be a whole number, found '16x'"),
}


@pytest.mark.parametrize("changes, message", BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_settings_are_refused_before_a_job_starts(served_runs, jobs, tmp_path, changes, message):
    values = {**HYPERPARAMETERS, **changes}
    with refused(message):
        next(ft.start_fine_tune("never", "tiny", "", "upload", good_file(tmp_path), None, **values))
    assert jobs.snapshot().state == "idle"
    assert sorted(p.name for p in served_runs.iterdir()) == ["tiny", "words"]
    # The plan line under the form names the same setting while it is being typed.
    assert ft.describe_plan("tiny", "", "upload", None, None, **values).endswith(f"Settings to fix: {message}")


def test_an_empty_box_takes_what_the_base_and_preset_give(served_runs):
    """An emptied field (None, as an API call that leaves it out) is not a setting given: the plan
    fills it, as the form shows it for that base."""
    values = {**HYPERPARAMETERS, "learning_rate": None, "train_batch_size": None}
    plan = tr.plan_from_form("tiny", "", None, values)
    continued = preset("continue")  # tiny is a trained model
    assert plan.preset == "continue"
    assert (plan.config.learning_rate, plan.config.train_batch_size) == (
        continued.learning_rate, continued.train_batch_size)


def test_max_sentences_zero_in_the_form_means_all(served_runs):
    assert tr.plan_from_form("tiny", "", None, HYPERPARAMETERS).config.max_train_sentences is None


CLI_SETTINGS = {
    "learning rate below 0": (["--learning-rate=-1e-5"], "learning_rate must be in (0, 1], found -1e-05"),
    "learning rate not a number": (["--learning-rate", "fast"],
                                   "argument --learning-rate: invalid float value: 'fast'"),
    "learning rate NaN": (["--learning-rate", "nan"], "learning_rate must be a number, found nan"),
    "epochs 0": (["--epochs", "0"], "epochs must be in (0, 100], found 0.0"),
    "epochs above 100": (["--epochs", "101"], "epochs must be in (0, 100], found 101.0"),
    "batch size below 0": (["--batch-size=-1"], "train_batch_size must be between 1 and 1024, found -1"),
    "batch size above 1024": (["--batch-size", "1025"],
                              "train_batch_size must be between 1 and 1024, found 1025"),
    "batch size not a whole number": (["--batch-size", "2.5"],
                                      "argument --train-batch-size/--batch-size: invalid int value: '2.5'"),
    "max sentences 0": (["--max-train-sentences", "0"],
                        "max_train_sentences must be between 1 and 1000000000, found 0"),
    "max length above the model's": (["--max-length", "256"], "max_length must be at most 128 for"),
}


@pytest.mark.parametrize("flags, message", CLI_SETTINGS.values(), ids=CLI_SETTINGS.keys())
def test_cli_train_refuses_bad_settings_before_reading_data(tiny_bert, tmp_path, capfd, flags, message):
    output = tmp_path / "out" / "run"
    # The data path does not exist: the settings are checked before the data is looked for.
    code, out, err = run_cli(["train", "--base-model", tiny_bert, "--data", tmp_path / "no-data",
                              "--output", output, "--max-length", "64", *flags], capfd)
    assert_one_error_line(code, out, err, message)
    assert not (tmp_path / "out").exists()


# Model names -------------------------------------------------------------------------------------

TRICKS = ["../x", "../../x", "/abs/x", "~", "~/x", "~root", "http://example.com/x",
          "https://huggingface.co/owner/name", "file:///etc/passwd", "owner\\name", "..\\x",
          "C:\\x", "owner/name/../../x", "owner/../x", "./x", "x/", "owner/name\n/x", "."]


@pytest.fixture
def traps(tmp_path, monkeypatch, every_word_model) -> dict[str, str]:
    """Model directories where each trick would land if it were read as a path."""
    import shutil

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    for target in [tmp_path / "x", home / "x", cwd / "x", cwd / "owner" / "name", tmp_path / "abs" / "x"]:
        shutil.copytree(every_word_model, target)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    return {"/abs/x": str(tmp_path / "abs" / "x")}


@pytest.mark.parametrize("trick", TRICKS)
def test_path_tricks_typed_into_the_page_are_refused(served_runs, traps, tmp_path, trick):
    trick = traps.get(trick, trick)
    text = "anna weber visited berlin."
    good = good_file(tmp_path)
    assert not hub.is_hub_id(trick)
    # Highlight: the Hub id box and the picker.
    with refused(f"expected a Hub id like 'owner/name', found {trick.strip()!r}"):
        hl.highlight(text, "tiny", trick, 0.0)
    with refused(f"expected one of the listed models, found {trick!r}"):
        hl.highlight(text, trick, "", 0.0)
    # Fine-tune: the base Hub box and the base picker.
    for base, base_hub in [("tiny", trick), (trick, "")]:
        with refused(f"expected a listed base model or a Hub id, found {trick.strip()!r}"):
            tr.plan_from_form(base, base_hub, None, HYPERPARAMETERS).config
    # Evaluate: both pickers.
    with refused(f"expected one of the listed models, found {trick!r}"):
        ev.evaluate(trick, "upload", good, "default")
    with refused(f"expected one of the listed models, found {trick!r}"):
        ev.compare("tiny", trick, "upload", good, "default")


def test_a_hub_id_that_is_also_a_local_directory_is_not_loaded(served_runs, traps, monkeypatch):
    # 'owner/name' is a valid Hub id and a model directory under the working directory here.
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    with pytest.raises(gr.Error, match="found 'owner/name', which is also a path on this machine"):
        hl.highlight("anna weber visited berlin.", "tiny", "owner/name", 0.0)
    with pytest.raises(ValueError, match="expected a listed base model or a Hub id, found 'owner/name'"):
        tr.plan_from_form("tiny", "owner/name", None, HYPERPARAMETERS).config


# The live app: the page in a browser, and its API -------------------------------------------------

@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    return Client(app_server.url, verbose=False, download_files=False)


def test_api_refuses_bad_input_and_keeps_serving(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    text = "anna weber visited berlin."
    with pytest.raises(AppError, match="expected at most 100,000 characters, found 1,000,000"):
        client.predict("a" * 1_000_000, "tiny", "", 0.0, api_name="/highlight")
    for trick in ["../x", "/etc/passwd", "owner/name/../../x", "~/x", "https://example.com/x"]:
        with pytest.raises(AppError, match=re.escape(f"found {trick!r}")):
            client.predict(text, "tiny", trick, 0.0, api_name="/highlight")
        with pytest.raises(AppError, match=re.escape(f"expected one of the listed models, found {trick!r}")):
            client.predict(trick, "upload", None, "default", api_name="/evaluate")
    bad = uploaded(tmp_path, "zero.txt", "anna B-PER\nweber I-PER\nvisited 0\n")
    with pytest.raises(AppError, match=r"zero\.txt:3: expected a tag 'O', 'B-TYPE' or 'I-TYPE', "
                                       r"found '0'"):
        client.predict("tiny", "upload", handle_file(bad), "default", api_name="/evaluate")
    with pytest.raises(AppError, match=re.escape("learning_rate must be in (0, 1], found 0")):
        client.predict("never", "tiny", "", "upload", handle_file(good_file(tmp_path)), None,
                       0, 16, 1, 42, 0.01, 0.1, 64, 0, False, False, False, api_name="/fine_tune")
    with pytest.raises(AppError, match=re.escape("train_batch_size must be a whole number, "
                                                 "found 'sixteen'")):
        client.predict("never", "tiny", "", "upload", handle_file(good_file(tmp_path)), None,
                       3e-4, "sixteen", 1, 42, 0.01, 0.1, 64, 0, False, False, False,
                       api_name="/fine_tune")
    # Still serving, and still right.
    _, table, _, _ = client.predict(text, "tiny", "", 0.0, api_name="/highlight")
    assert table["data"] == [[text, "ORG", 1.0, 0, len(text)]]
    overall = client.predict("tiny", "upload", handle_file(good_file(tmp_path)), "default",
                             api_name="/evaluate")[0]
    assert overall["data"][0][-1] == 20


def test_html_in_text_is_shown_as_text_and_never_runs(app_server, browser, request, tmp_path):
    """Script and markup in the text, in a Hub id and in an uploaded file's tags stay text."""
    sync_api = pytest.importorskip("playwright.sync_api")
    text = f"anna weber visited berlin. {HOSTILE} nordbank left."
    hostile_tag = "B-<img/src=y/onerror=window.__pwned=4>"
    upload = tmp_path / "hostile.txt"
    upload.write_text(f"anna {hostile_tag}\nweber O\n", encoding="utf-8")

    with opened(browser, app_server.url, request, ready="#text textarea") as page:
        page.set_default_timeout(30_000)
        # The bundled model leads the picker; tiny's answers are exact (each sentence one ORG).
        choose(page, "model", "tiny")
        page.fill("#text textarea", text)
        page.click("#find")
        sync_api.expect(page.get_by_text("entities in")).to_contain_text("with tiny", timeout=30_000)
        sync_api.expect(page.locator("#highlighted")).to_contain_text(HOSTILE)
        sync_api.expect(page.locator("#entities")).to_contain_text(HOSTILE)

        page.get_by_label("…or a Hugging Face Hub model id").fill('<img src=z onerror="window.__pwned=3">')
        page.click("#find")
        sync_api.expect(page.get_by_text("expected a Hub id like 'owner/name', found '<img src=z"))\
            .to_be_visible(timeout=30_000)

        page.get_by_role("tab", name="Fine-tune").click()
        page.locator("#train-file input[type=file]").set_input_files(str(upload))
        sync_api.expect(page.locator("#upload-note")).to_contain_text(
            "hostile.txt: 1 sentences, IOB2, types <img/src=y/onerror=window.__pwned=4>",
            timeout=30_000)  # the upload is read on the server: slow on a busy machine

        page.wait_for_timeout(1000)  # an onerror handler fires after the image fails to load
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#highlighted img, #entities img, #upload-note img").count() == 0
        assert page.locator("body script:not([src])", has_text="__pwned").count() == 0
        # The check can see an injection: markup that does reach the page runs its handler.
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x "
                      "onerror=\"window.__pwned=9\">')")
        page.wait_for_function("window.__pwned === 9")
