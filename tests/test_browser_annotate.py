"""The Annotate tab end to end in headless Chromium, against the session's ``app_server``.

The server serves the run ``tiny`` (a tiny BERT that scores every word I-ORG first: each sentence is one
ORG entity), and keeps its datasets in a directory of its own. Corrections are made as a person
makes them: a click on a span and a typed type, the span's × button, a double-click on a word.
A failing test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import json

import pytest

from chromium import TABLE_ROWS, WORD_CENTRE, choose, opened
from live_app import CHROMIUM
from ner_core.data import read_conll

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: the browser tests need it", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")

TEXT = "anna weber spoke. She visited berlin."


@pytest.fixture
def page(app_server, browser, request):
    with opened(browser, app_server.url, request, ready="#text textarea",
                accept_downloads=True) as page:
        page.get_by_role("tab", name="Annotate").click()
        page.wait_for_selector("#annotate-text textarea")
        yield page


def entity_rows(page) -> list[list[str]]:
    return page.locator("#annotate-entities").evaluate(TABLE_ROWS)


def expect_entities(page, rows: list[list[str]]) -> None:
    """Wait until the entity table shows ``rows`` (cell texts)."""
    table = page.locator("#annotate-entities")
    sync_api.expect(table.locator("[role=row].virtual-row")).to_have_count(len(rows))
    wanted = json.dumps(json.dumps(rows, separators=(",", ":")))
    page.wait_for_function(f"""() => JSON.stringify(({TABLE_ROWS})(
        document.querySelector('#annotate-entities'))) === {wanted}""")


def span(page, text: str):
    """A marked span of the highlight, by its text."""
    return page.locator("#annotate-highlight .token.highlighted", has_text=text)


def give_type(page, kind: str) -> None:
    """Type into the type box the highlight opened, as a person does, and press Enter."""
    box = page.locator("#annotate-highlight input.label-input")
    sync_api.expect(box).to_have_count(1)
    box.fill(kind)
    box.press("Enter")


def test_correct_accept_and_export_a_text(page, app_server, tmp_path):
    choose(page, "annotate-model", "tiny")
    page.fill("#annotate-text textarea", TEXT)
    page.click("#suggest")
    expect_entities(page, [["ORG", "anna weber spoke.", "0", "17"],
                           ["ORG", "She visited berlin.", "18", "37"]])

    span(page, "anna weber spoke.").click()  # retype: ORG -> PER
    give_type(page, "PER")
    expect_entities(page, [["PER", "anna weber spoke.", "0", "17"],
                           ["ORG", "She visited berlin.", "18", "37"]])

    second = page.locator("#annotate-highlight .token-container", has_text="She visited berlin.")
    second.hover()
    second.get_by_role("button", name="Remove label").click()
    expect_entities(page, [["PER", "anna weber spoke.", "0", "17"]])

    x, y = page.locator("#annotate-highlight").evaluate(WORD_CENTRE, "berlin")
    page.mouse.move(x, y)
    page.mouse.dblclick(x, y)  # selects the word: it is marked 'label'
    sync_api.expect(page.locator("#annotate-notes")).to_have_text(
        "Click the mark that reads 'label', type its type and press Enter.")
    span(page, "berlin").click()
    give_type(page, "LOC")
    expect_entities(page, [["PER", "anna weber spoke.", "0", "17"], ["LOC", "berlin", "30", "36"]])

    page.click("#accept")
    sync_api.expect(page.locator("#annotate-notes")).to_have_text("Accepted into corrections.")
    sync_api.expect(page.locator("#annotate-summary")).to_contain_text(
        "corrections: 1 accepted texts, 2 entities")
    sync_api.expect(page.locator("#annotate-counts [role=row].virtual-row")).to_have_count(2)
    assert page.locator("#annotate-counts").evaluate(TABLE_ROWS) == [["LOC", "1"], ["PER", "1"]]
    sync_api.expect(page.locator("#annotate-entities [role=row].virtual-row")).to_have_count(0)

    page.click("#export-conll")
    link = page.locator("#annotate-export a[download='corrections.conll']")
    with page.expect_download() as download:
        link.click()
    exported = tmp_path / "corrections.conll"
    download.value.save_as(exported)
    [first, second] = read_conll(exported).sentences
    assert list(zip(first.tokens, first.tags)) == [
        ("anna", "B-PER"), ("weber", "I-PER"), ("spoke", "I-PER"), (".", "I-PER")]
    assert list(zip(second.tokens, second.tags)) == [
        ("She", "O"), ("visited", "O"), ("berlin", "B-LOC"), (".", "O")]
    # The page's own dataset name: no other test accepts into it.
    [line] = (app_server.data_home / "corrections.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["model"] == "tiny"


def test_a_word_on_a_later_line_is_marked_where_it_is(page):
    # The frontend measures a selection within its line: the page must hold one line a token.
    text = "anna left.\nShe visited berlin."
    choose(page, "annotate-model", "tiny")
    page.fill("#annotate-text textarea", text)
    page.click("#suggest")
    expect_entities(page, [["ORG", "anna left.", "0", "10"],
                           ["ORG", "She visited berlin.", "11", "30"]])
    second = page.locator("#annotate-highlight .token-container", has_text="She visited berlin.")
    second.hover()
    second.get_by_role("button", name="Remove label").click()
    expect_entities(page, [["ORG", "anna left.", "0", "10"]])

    x, y = page.locator("#annotate-highlight").evaluate(WORD_CENTRE, "berlin")
    page.mouse.move(x, y)
    page.mouse.dblclick(x, y)
    span(page, "berlin").click()
    give_type(page, "LOC")
    expect_entities(page, [["ORG", "anna left.", "0", "10"], ["LOC", "berlin", "23", "29"]])


def test_a_queued_file_comes_text_by_text_and_undo_brings_one_back(page, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("anna left.\n\nThen nordbank left.\nLi Wei met Globex.\n", encoding="utf-8")
    choose(page, "annotate-model", "tiny")
    dataset = page.locator("#annotate-dataset input")
    dataset.fill("queued")
    dataset.press("Enter")
    sync_api.expect(page.locator("#annotate-summary")).to_contain_text("queued: 0 accepted texts")
    page.locator("#annotate-file input[type=file]").set_input_files(str(texts))
    sync_api.expect(page.locator("#annotate-file")).to_contain_text("texts.txt")
    page.click("#queue-file")

    queue_note = page.locator("#annotate-queue")
    # tiny scores every entity 1.0: the file's order stands.
    sync_api.expect(queue_note).to_contain_text("Line 1 (lowest score 1.00); 2 more in the queue.")
    sync_api.expect(queue_note).to_contain_text("least sure first")
    sync_api.expect(page.locator("#annotate-text textarea")).to_have_value("anna left.")
    page.click("#accept")
    sync_api.expect(page.locator("#annotate-text textarea")).to_have_value("Then nordbank left.")
    sync_api.expect(page.locator("#annotate-summary")).to_contain_text("queued: 1 accepted texts")
    page.click("#skip")
    sync_api.expect(page.locator("#annotate-text textarea")).to_have_value("Li Wei met Globex.")

    page.click("#undo")
    sync_api.expect(page.locator("#annotate-text textarea")).to_have_value("anna left.")
    sync_api.expect(page.locator("#annotate-summary")).to_contain_text("queued: 0 accepted texts")
    sync_api.expect(queue_note).to_contain_text("1 more in the queue.")
    expect_entities(page, [["ORG", "anna left.", "0", "10"]])


def test_fine_tune_on_this_dataset_fills_the_fine_tune_tab(page):
    choose(page, "annotate-model", "tiny")
    page.fill("#annotate-text textarea", TEXT)
    page.click("#suggest")
    expect_entities(page, [["ORG", "anna weber spoke.", "0", "17"],
                           ["ORG", "She visited berlin.", "18", "37"]])
    page.click("#finetune-dataset")
    sync_api.expect(page.locator("#annotate-notes")).to_have_text(
        "The Fine-tune tab is set to train tiny on corrections: open it to start.")

    page.get_by_role("tab", name="Fine-tune").click()
    sync_api.expect(page.get_by_label("Annotated dataset", exact=True).and_(
        page.locator("input[type=radio]"))).to_be_checked()
    sync_api.expect(page.locator("#dataset input")).to_have_value("corrections")
    sync_api.expect(page.locator("#base input")).to_have_value("tiny")
    sync_api.expect(page.locator("#replay input")).to_be_checked()
