"""The app end to end in headless Chromium, against the session's ``app_server``.

The server serves the run ``tiny`` (a tiny BERT that scores every word I-ORG first: each sentence is one
ORG entity). The server runs one fine-tune at a time: a test that starts one sees it end before
it ends itself. A failing test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import make_sentences, write_conll
from chromium import choose, opened, table_rows
from live_app import APP_DIR, CHROMIUM, make_run

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: the browser tests need it", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")


@pytest.fixture
def page(app_server, browser, request):
    with opened(browser, app_server.url, request, ready="#text textarea") as page:
        yield page


def open_options(page, dropdown_id: str, wait_for: str, timeout: float = 20_000) -> list[str]:
    """Open a dropdown, wait until it offers ``wait_for``, and return what it offers (left open)."""
    page.locator(f"#{dropdown_id} input").click()
    option = page.get_by_role("option", name=wait_for, exact=True)
    sync_api.expect(option).to_be_visible(timeout=timeout)
    return [text.split("\n")[-1] for text in page.get_by_role("option").all_inner_texts()]


def set_number(page, label: str, value) -> None:
    box = page.locator("input[type=number]").and_(page.get_by_label(label))
    box.fill(str(value))
    box.press("Enter")


def fill_fine_tune(page, train_file: Path, name: str, epochs: int, batch_size: int = 16) -> None:
    page.get_by_role("tab", name="Fine-tune").click()
    choose(page, "base", "tiny")
    page.get_by_label("Upload labelled files").check()
    page.locator("#train-file input[type=file]").set_input_files(str(train_file))
    sync_api.expect(page.locator("#upload-note")).to_contain_text(
        f"{train_file.name}: 40 sentences, IOB2, types LOC, MISC, ORG, PER")
    page.get_by_label("Run name").fill(name)
    set_number(page, "Epochs", epochs)
    set_number(page, "Batch size", batch_size)
    set_number(page, "Max sequence length (sub-tokens)", 64)  # tiny models hold 128 positions
    sync_api.expect(page.locator("#base input")).to_have_value("tiny")


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    return write_conll(tmp_path_factory.mktemp("browser-data") / "train.txt",
                       make_sentences(40, seed=11))


def test_highlight_marks_entities_and_lists_them(page):
    text = "anna weber visited berlin. Then nordbank left."
    choose(page, "model", "tiny")  # the bundled model leads the list; tiny's answers are exact
    page.fill("#text textarea", text)
    page.click("#find")

    marked = page.locator("#highlighted .token.highlighted")
    sync_api.expect(marked).to_have_count(2)
    assert marked.all_inner_texts() == ["anna weber visited berlin.", "Then nordbank left."]
    sync_api.expect(page.locator("#entities [role=row].virtual-row")).to_have_count(2)
    assert table_rows(page, "entities") == [["anna weber visited berlin.", "ORG", "1", "0", "26"],
                                            ["Then nordbank left.", "ORG", "1", "27", "46"]]
    sync_api.expect(page.get_by_text("2 entities in")).to_contain_text("with tiny")


def reproduce_in_a_shell(command: str, train_file: Path, runs_dir: Path, directory: Path) -> None:
    """Paste the page's command into a shell, in a directory holding the uploaded file under its
    name, with the server's runs (its base) at hand: it trains and saves the run."""
    shutil.copy(train_file, directory / train_file.name)
    env = {**os.environ, "NER_RUNS_DIR": str(runs_dir), "PYTHONPATH": str(APP_DIR),
           "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(["bash", "-c", command], cwd=directory, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fine-tuning tiny on CPU" in done.stderr
    output = re.search(r"--output (\S+)", command)[1]
    assert (directory / output / "model.safetensors").is_file()


def test_fine_tune_runs_and_offers_the_new_model(page, train_file, app_server, tmp_path):
    fill_fine_tune(page, train_file, "browser-run", epochs=1)
    progress = page.locator("#progress")
    before = progress.inner_text()
    assert "browser-run" not in before

    page.click("#start")
    # 40 sentences in batches of 16: three steps.
    sync_api.expect(progress).to_contain_text("finished · browser-run · step 3 of 3", timeout=120_000)
    assert progress.locator("progress").get_attribute("value") == "1.0000"
    log = page.locator("#log textarea").input_value()
    assert "training on 40 sentences" in log and log.endswith("finished; saved as browser-run")
    sync_api.expect(page.locator("#failure")).to_have_text("")
    sync_api.expect(page.locator("a[href$='/browser-run.zip']")).to_have_count(1)
    sync_api.expect(page.locator("#result-table")).to_contain_text("no validation data")
    command = page.locator(".cm-content", has_text="python -m ner_core train")
    sync_api.expect(command).to_contain_text("--base-model tiny")

    reproduce_in_a_shell(command.inner_text(), train_file, app_server.runs_dir, tmp_path)

    page.get_by_role("tab", name="Highlight").click()  # no reload: the timer refreshed the pickers
    offered = open_options(page, "model", "browser-run")
    # The bundled model first, then the runs newest first: this one was saved last.
    assert offered[:2] == ["default", "browser-run"] and "tiny" in offered
    page.get_by_role("option", name="browser-run", exact=True).click()
    page.fill("#text textarea", "anna weber visited berlin.")
    page.click("#find")
    sync_api.expect(page.get_by_text("entities in")).to_contain_text("with browser-run")


def test_a_new_page_offers_runs_made_after_the_server_started(app_server, browser, request):
    runs_dir = app_server.runs_dir
    make_run(runs_dir, "browser-later", runs_dir / "tiny")
    try:
        with opened(browser, app_server.url, request, ready="#text textarea") as page:
            assert "browser-later" in open_options(page, "model", "browser-later", timeout=5_000)
    finally:
        shutil.rmtree(runs_dir / "browser-later")


def test_evaluate_an_uploaded_file(page, tmp_path):
    sentences = make_sentences(30, seed=7)
    labelled = write_conll(tmp_path / "labelled.txt", sentences)
    support = {kind: sum(tag == f"B-{kind}" for s in sentences for _, tag in s)
               for kind in ["LOC", "MISC", "ORG", "PER"]}

    page.get_by_role("tab", name="Evaluate").click()
    choose(page, "eval-model", "tiny")  # tiny tags each sentence as one ORG: every one is wrong
    page.get_by_label("Uploaded file").check()
    page.locator("#eval-file input[type=file]").set_input_files(str(labelled))
    sync_api.expect(page.locator("#eval-file")).to_contain_text("labelled.txt")
    page.click("#evaluate")

    sync_api.expect(page.locator("#per-entity [role=row].virtual-row")).to_have_count(4, timeout=60_000)
    rows = table_rows(page, "per-entity")
    assert [row[0] for row in rows] == ["LOC", "MISC", "ORG", "PER"]
    assert {row[0]: int(row[-1]) for row in rows} == support
    assert table_rows(page, "overall")[0][-1] == "30"
    sync_api.expect(page.locator("#errors")).to_contain_text("30 of 30 sentences")


def test_stop_keeps_the_weights_so_far(page, train_file):
    fill_fine_tune(page, train_file, "browser-stop", epochs=50, batch_size=1)
    page.click("#start")
    progress = page.locator("#progress")
    # 40 steps an epoch: the step counter shows long before the end.
    sync_api.expect(progress).to_contain_text("running · browser-stop · step", timeout=60_000)
    page.click("#stop")
    command = page.locator(".cm-content", has_text="python -m ner_core train")
    for flag in ["--base-model tiny", "--epochs 50", "--train-batch-size 1"]:
        sync_api.expect(command).to_contain_text(flag)
    # The max length of 64 is tiny's own: the command line takes it from the base, as the app did.
    assert "--max-length" not in command.inner_text()

    sync_api.expect(progress).to_contain_text("stopped · browser-stop · step", timeout=60_000)
    assert "of 2000" in progress.inner_text()
    log = page.locator("#log textarea")
    sync_api.expect(log).to_have_value(re.compile(
        r"stopped at step (\d+) of 2000; the weights so far are saved as browser-stop$"))
    lines = log.input_value()
    assert lines.index("stop requested: finishing the current step") < lines.index("stopped at step")
    steps = int(re.search(r"stopped at step (\d+) of 2000", lines).group(1))
    assert 0 < steps < 2000
    sync_api.expect(page.locator("a[href$='/browser-stop.zip']")).to_have_count(1)
    sync_api.expect(page.locator("#result-table")).to_contain_text("stopped before")
