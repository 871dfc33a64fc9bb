"""The Fine-tune form shows what a run will use, whichever way its base was chosen, and the
``/fine_tune`` API trains with those settings when it leaves them out: in headless Chromium and
through ``gradio_client``, against the session's ``app_server``.

The base here is the bundled ``default`` (MiniLM-L6 with capitals marked, windows of 128
sub-tokens): a trained model, so its form is the ``continue`` preset with the input settings its
train_config.json passes on.
"""

from __future__ import annotations

import time

import pytest

from chromium import choose, opened
from live_app import CHROMIUM, visitor
from ner_core import TrainConfig, models, preset
from ner_core.plan import inherited_settings

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: the browser tests need it", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")

DATASET = "form-settings"
TEXT = "Anna Weber met Omar Haddad in Berlin."
# What the form shows for `default`: the continue preset, and the input settings default passes on.
CONTINUED = preset("continue", **inherited_settings(models.resolve("default")))
NUMBER_BOXES = {"learning-rate": CONTINUED.learning_rate, "epochs": CONTINUED.epochs,
                "warmup-ratio": CONTINUED.warmup_ratio, "max-length": CONTINUED.max_length,
                "train-batch-size": CONTINUED.train_batch_size, "seed": CONTINUED.seed,
                "weight-decay": CONTINUED.weight_decay, "max-train-sentences": 0}
YES_NO = {"case-feature": "yes" if CONTINUED.case_feature else "no",
          "document-context": "yes" if CONTINUED.document_context else "no",
          "label-all-tokens": "no"}


@pytest.fixture
def page(app_server, browser, request):
    with opened(browser, app_server.url, request, ready="#text textarea") as page:
        yield page


def expect_form(page, numbers: dict, yes_no: dict) -> None:
    """Wait until the Fine-tune form's boxes hold ``numbers`` and its yes/no choices ``yes_no``."""
    for elem_id, value in numbers.items():
        page.wait_for_function(
            f"() => Number(document.querySelector('#{elem_id} input').value) === {value}")
    for elem_id, answer in yes_no.items():
        sync_api.expect(page.locator(f"#{elem_id}").get_by_label(answer, exact=True)).to_be_checked()


def test_every_route_to_a_trained_base_fills_the_form_alike(page):
    """Accept a correction, press "Fine-tune on this dataset": the form holds the continue preset
    and default's input settings; choosing default by hand in the form gives the same."""
    page.get_by_role("tab", name="Annotate").click()
    choose(page, "annotate-model", "default")
    page.fill("#annotate-dataset input", DATASET)
    page.keyboard.press("Enter")
    page.fill("#annotate-text textarea", TEXT)
    page.click("#suggest")
    sync_api.expect(page.locator("#annotate-notes")).to_contain_text("suggested by default")
    page.click("#accept")
    sync_api.expect(page.locator("#annotate-notes")).to_contain_text(f"Accepted into {DATASET}")
    page.click("#finetune-dataset")
    sync_api.expect(page.locator("#annotate-notes")).to_have_text(
        f"The Fine-tune tab is set to train default on {DATASET}: open it to start.")

    page.get_by_role("tab", name="Fine-tune").click()
    sync_api.expect(page.locator("#base input")).to_have_value("default")
    sync_api.expect(page.get_by_label("Annotated dataset", exact=True).and_(
        page.locator("input[type=radio]"))).to_be_checked()
    sync_api.expect(page.locator("#dataset input")).to_have_value(DATASET)
    sync_api.expect(page.locator("#replay input")).to_be_checked()
    sync_api.expect(page.locator("#preset").get_by_label(
        "Automatic: continue a trained model, the recipe for an encoder")).to_be_checked()
    expect_form(page, NUMBER_BOXES, YES_NO)
    sync_api.expect(page.get_by_text("Settings: the continue preset, and default's input "
                                     "settings")).to_be_visible()

    # Another base by hand gives its own settings; default again gives the same as the button.
    choose(page, "base", "minilm")
    recipe = TrainConfig()
    expect_form(page, {"learning-rate": recipe.learning_rate, "epochs": recipe.epochs,
                       "max-length": recipe.max_length}, {"case-feature": "no"})
    choose(page, "base", "default")
    expect_form(page, NUMBER_BOXES, YES_NO)


def test_the_api_leaves_out_the_hyperparameters_and_trains_with_the_form_settings(app_server):
    """``/fine_tune`` with the base ``default`` and no hyperparameters saves a run whose
    ``train_config.json`` holds what the form shows for default."""
    client = visitor(app_server.url)
    client.predict(DATASET, "Anna Weber met Omar Haddad in Berlin.",
                   [{"start": 0, "end": 10, "label": "PER"}, {"start": 15, "end": 26, "label": "PER"},
                    {"start": 30, "end": 36, "label": "LOC"}], api_name="/accept")
    name = "api-settings"
    client.predict(name=name, base="default", base_hub="", source="dataset", dataset=DATASET,
                   api_name="/fine_tune")
    saved = app_server.runs_dir / name / "train_config.json"
    deadline = time.monotonic() + 240
    while not saved.is_file() and time.monotonic() < deadline:
        time.sleep(1)
    assert saved.is_file(), app_server.log.read_text()[-3000:]
    # What the page asks for is what the form showed, plus its more frequent loss reports.
    expected = preset("continue", base_model="default", logging_steps=10,
                      **inherited_settings(models.resolve("default")))
    assert TrainConfig.load(saved) == expected
