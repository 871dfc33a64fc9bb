"""The bundled model in assets/model: complete, safetensors in float16, and it finds names offline."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from ner_core import Recognizer, TrainConfig, cli, models, preset

BUNDLED = models.BUNDLED_DIR
SENTENCE = "Angela Merkel met the chief executive of Siemens in Paris on Tuesday."


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer("default", precision="float32")


def test_bundled_model_holds_what_it_promises():
    names = {p.name for p in BUNDLED.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
            "train_config.json", "metrics.json", "README.md"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    assert (BUNDLED / "model.safetensors").stat().st_size <= 50 * 1024 * 1024
    with safe_open(str(BUNDLED / "model.safetensors"), "pt") as weights:
        assert {str(weights.get_slice(k).get_dtype()) for k in weights.keys()} == {"F16"}
    config = json.loads((BUNDLED / "config.json").read_text())
    assert sorted(config["id2label"].values()) == sorted(
        ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"])


def test_bundled_model_was_trained_by_its_rebuild_script():
    # bench/default_model.py: the bundled preset with document context and every sub-token
    # labelled, installed as that run saved itself.
    assert TrainConfig.load(BUNDLED / "train_config.json") == preset(
        "bundled", document_context=True, label_all_tokens=True)
    card = (BUNDLED / "README.md").read_text()
    rebuild = card.split("## Rebuild")[1].split("```bash\n")[1].split("\n```")[0]
    assert rebuild.startswith("python -m ner_core train --base-model minilm ")
    assert "--output assets/model" in rebuild and "--document-context" in rebuild
    assert "--teacher" not in rebuild
    for limit in ("English news", "lowercases", "PER, ORG, LOC, MISC"):
        assert limit in card


def test_bundled_model_scores_are_saved_for_both_splits():
    metrics = json.loads((BUNDLED / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert set(metrics[split]["per_entity"]) == {"LOC", "MISC", "ORG", "PER"}
        assert 0 < metrics[split]["overall"]["f1"] <= 1


def test_default_loads_as_float32_and_finds_the_names(recognizer):
    assert {p.dtype for p in recognizer.model.parameters()} == {__import__("torch").float32}
    found = {(e["text"], e["label"]) for e in recognizer.recognize(SENTENCE)}
    assert {("Angela Merkel", "PER"), ("Siemens", "ORG"), ("Paris", "LOC")} <= found


def test_predict_default_works_offline_without_data(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("NER_DATA_DIR", raising=False)
    assert cli.main(["predict", "--model", "default", "--text", SENTENCE]) == 0
    found = {(e["text"], e["label"]) for e in json.loads(capsys.readouterr().out)}
    assert {("Angela Merkel", "PER"), ("Siemens", "ORG"), ("Paris", "LOC")} <= found
