"""The Files tab end to end, in headless Chromium and through its named API, against the
session's ``app_server``.

The server serves the run ``tiny`` (a tiny BERT that scores every word I-ORG first): each line of the
uploaded file is one ORG entity from its first character to its last, so offsets are known.
A failing test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import make_sentences
from chromium import choose, opened
from live_app import CHROMIUM, TINY_LABEL

from ner_core.hardware import pick_precision

AUTO = pick_precision("auto", "cpu")[1]  # what the loaded models compute in here

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: the browser tests need it", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")

# What every progress bar on the page has said, kept as it changes (a run can be over in seconds).
WATCH_PROGRESS = """() => {
    window.progressSeen = [];
    const keep = () => document.querySelectorAll('[role=progressbar]').forEach(bar => {
        const said = bar.getAttribute('aria-valuetext');
        if (said && window.progressSeen.at(-1) !== said) window.progressSeen.push(said);
    });
    new MutationObserver(keep).observe(document.body,
        {subtree: true, childList: true, attributes: true, characterData: true});
}"""


@pytest.fixture
def page(app_server, browser, request):
    with opened(browser, app_server.url, request, ready="#text textarea",
                accept_downloads=True) as page:
        yield page


def test_a_thousand_lines_in_entities_out(page, tmp_path):
    lines = [" ".join(word for word, _ in sentence) for sentence in make_sentences(1000, seed=5)]
    upload = tmp_path / "lines.txt"
    upload.write_text("\n".join(lines) + "\n", encoding="utf-8")

    page.get_by_role("tab", name="Files").click()
    choose(page, "files-model", "tiny")  # the bundled model leads the list; tiny's are exact
    page.locator("#batch-file input[type=file]").set_input_files(str(upload))
    sync_api.expect(page.locator("#batch-file")).to_contain_text("lines.txt")
    page.evaluate(WATCH_PROGRESS)
    page.click("#recognize-file")

    # While it runs, a progress bar counts the records (the watcher keeps what it showed, however
    # long the server took to start).
    summary = page.locator("#files-summary")
    sync_api.expect(summary).to_contain_text(
        f"lines.txt with tiny ({AUTO}): 1,000 records, 1,000 entities.", timeout=180_000)
    seen = page.evaluate("window.progressSeen")
    counts = [int(m.group(1).replace(",", "")) for said in seen
              if (m := re.match(r"^(\d[\d,]*) / 1,?000 records$", said))]
    assert counts and min(counts) < 1000, seen

    marked = page.locator("#files-preview .token.highlighted")
    sync_api.expect(marked).to_have_count(20)
    assert marked.all_inner_texts() == lines[:20]
    sync_api.expect(page.locator("#files-per-type")).to_contain_text("1000")

    link = page.locator("#files-downloads a[download='lines.entities.jsonl']")
    with page.expect_download() as download:
        link.click()
    written = download.value.path().read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in written]
    assert [r["line"] for r in records] == list(range(1, 1001))
    assert [r["text"] for r in records] == lines
    for record in records:
        (entity,) = record["entities"]
        assert record["text"][entity["start"]:entity["end"]] == entity["text"] == record["text"]
        assert entity["label"] == TINY_LABEL[2:]


def test_the_named_endpoint_recognizes_a_file(app_server, tmp_path):
    texts = ["anna weber visited berlin.", "Then nordbank left. Li Wei met Globex."]
    upload = tmp_path / "notes.jsonl"
    upload.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(texts)),
                      encoding="utf-8")
    client = Client(app_server.url, verbose=False)  # downloads the output files
    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in endpoint["/recognize_file"]["parameters"]] \
        == ["file", "model", "text_field", "threshold"]

    summary, per_type, _, _, downloads = client.predict(
        handle_file(str(upload)), "tiny", "body", 0.0, api_name="/recognize_file")
    assert summary == f"`notes.jsonl` with `tiny` ({AUTO}): 2 records, 3 entities."
    assert per_type["data"] == [["ORG", 3]]
    jsonl, table, label_studio, doccano = downloads
    assert [Path(label_studio).name, Path(doccano).name] == ["notes.label-studio.json",
                                                             "notes.doccano.jsonl"]
    records = [json.loads(line) for line in Path(jsonl).read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["body"], [e["text"] for e in r["entities"]]) for r in records] == [
        (0, texts[0], [texts[0]]), (1, texts[1], ["Then nordbank left.", "Li Wei met Globex."])]
    assert Path(table).read_text(encoding="utf-8").splitlines()[1:] == [
        "1,ORG,anna weber visited berlin.,1.0,0,26", "2,ORG,Then nordbank left.,1.0,0,19",
        "2,ORG,Li Wei met Globex.,1.0,20,38"]

    with pytest.raises(AppError, match=re.escape("notes.jsonl:1: expected a field 'text', found "
                                                 "the fields 'id', 'body'")):
        client.predict(handle_file(str(upload)), "tiny", "text", 0.0, api_name="/recognize_file")
