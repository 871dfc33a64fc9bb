"""Labelled files in and out of the page in headless Chromium, against the session's
``app_server``: a doccano upload's report in the Fine-tune tab, and a Label Studio export
imported into the Annotate tab, corrected, accepted and downloaded as spaCy and BRAT.

A failing test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import json

import pytest

from chromium import WORD_CENTRE, choose, opened, table_rows
from live_app import CHROMIUM
from ner_core import formats

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: the browser tests need it", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")

DATASET = "from-label-studio"  # no other test accepts into it


@pytest.fixture
def page(app_server, browser, request):
    with opened(browser, app_server.url, request, ready="#text textarea",
                accept_downloads=True) as page:
        yield page


def test_a_doccano_upload_shows_its_report_beside_it(page, tmp_path):
    upload = tmp_path / "train.jsonl"
    upload.write_text('{"text": "anna weber spoke.", "label": [[0, 10, "PER"]]}\n'
                      '{"text": "omar left berlin.", "label": [[0, 4, "PER"], [10, 14, "LOC"]]}\n',
                      encoding="utf-8")
    page.get_by_role("tab", name="Fine-tune").click()
    page.get_by_label("Upload labelled files").check()
    page.locator("#train-file input[type=file]").set_input_files(str(upload))
    note = page.locator("#upload-note")
    sync_api.expect(note).to_contain_text("train.jsonl: 2 sentences, doccano JSONL, types LOC, PER",
                                          timeout=30_000)
    sync_api.expect(note).to_contain_text("3 of 3 entities kept, 1 widened")
    sync_api.expect(note).to_contain_text("train.jsonl:2: LOC 'berl' widened to 'berlin'")


def label_studio_export() -> list[dict]:
    """Two annotated tasks; the first lacks the LOC a person adds on the page."""
    def region(start, end, text, label):
        return {"from_name": "label", "to_name": "text", "type": "labels",
                "value": {"start": start, "end": end, "text": text, "labels": [label]}}
    return [{"id": 1, "data": {"text": "anna weber visited berlin."},
             "annotations": [{"id": 1, "result": [region(0, 10, "anna weber", "PER")]}]},
            {"id": 2, "data": {"text": "nordbank left oslo."},
             "annotations": [{"id": 2, "result": [region(0, 8, "nordbank", "ORG"),
                                                  region(14, 18, "oslo", "LOC")]}]}]


def download(page, tmp_path, name: str):
    """The file the Annotate tab offers as ``name``, saved under ``tmp_path``."""
    with page.expect_download() as saved:
        page.locator(f"#annotate-export a[download='{name}']").click()
    path = tmp_path / name
    saved.value.save_as(path)
    return path


def held(path) -> list[tuple[str, str]]:
    converted = formats.read(path)
    return [(e.text[s.start:s.end], s.label) for e in converted.examples for s in e.spans]


def test_a_label_studio_export_is_corrected_accepted_and_downloaded(page, tmp_path):
    pytest.importorskip("spacy", reason="the spaCy download is written and read with spaCy")
    tasks = tmp_path / "project.json"
    tasks.write_text(json.dumps(label_studio_export(), indent=2), encoding="utf-8")
    page.get_by_role("tab", name="Annotate").click()
    dataset = page.locator("#annotate-dataset input")
    dataset.fill(DATASET)
    dataset.press("Enter")
    sync_api.expect(page.locator("#annotate-summary")).to_contain_text(f"{DATASET}: 0 accepted")
    page.locator("#annotate-file input[type=file]").set_input_files(str(tasks))
    sync_api.expect(page.locator("#annotate-file")).to_contain_text("project.json")
    page.click("#queue-file")

    sync_api.expect(page.locator("#annotate-text textarea")).to_have_value(
        "anna weber visited berlin.")
    sync_api.expect(page.locator("#annotate-queue")).to_contain_text(
        "project.json:2, with the file's entities; 1 more in the queue.")
    sync_api.expect(page.locator("#annotate-import-report")).to_contain_text(
        "project.json (label-studio): 2 records, 2 examples, 3 of 3 entities kept")
    marked = page.locator("#annotate-highlight .token.highlighted")
    sync_api.expect(marked).to_have_count(1)
    assert table_rows(page, "annotate-entities") == [["PER", "anna weber", "0", "10"]]

    x, y = page.locator("#annotate-highlight").evaluate(WORD_CENTRE, "berlin")
    page.mouse.move(x, y)
    page.mouse.dblclick(x, y)  # selects the word: it is marked 'label'
    page.locator("#annotate-highlight .token.highlighted", has_text="berlin").click()
    box = page.locator("#annotate-highlight input.label-input")
    box.fill("LOC")
    box.press("Enter")
    sync_api.expect(marked).to_have_count(2)
    page.click("#accept")
    sync_api.expect(page.locator("#annotate-text textarea")).to_have_value("nordbank left oslo.")
    page.click("#accept")
    sync_api.expect(page.locator("#annotate-summary")).to_contain_text(
        f"{DATASET}: 2 accepted texts, 4 entities")

    wanted = [("anna weber", "PER"), ("berlin", "LOC"), ("nordbank", "ORG"), ("oslo", "LOC")]
    choose(page, "export-format", "spaCy DocBin (spacy)")
    page.click("#export-as")
    assert held(download(page, tmp_path, f"{DATASET}-spacy.spacy")) == wanted
    choose(page, "export-format", "BRAT standoff (brat)")
    page.click("#export-as")
    assert held(download(page, tmp_path, f"{DATASET}-brat.zip")) == wanted
