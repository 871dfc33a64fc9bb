"""The Hub metadata that opens every run's model card: parsed back with huggingface_hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_sentences, write_conll
from huggingface_hub import ModelCard
from live_app import make_run

from ner_core import TrainConfig, fine_tune, load_data
from ner_core.card import CONLL2003_HUB_ID, ENCODER_HUB_ID, hub_base_model, model_card
from ner_core.labels import CONLL2003_LABELS

SCORES = {"validation": {"precision": 0.8125, "recall": 0.7031, "f1": 0.7539, "accuracy": 0.9512},
          "test": {"precision": 0.7812, "recall": 0.6875, "f1": 0.7314, "accuracy": 0.9433}}


def metrics_for(data: str | None, stopped: bool = False) -> dict:
    """A run's ``metrics.json`` as ``fine_tune`` writes it, with the scores of ``SCORES``."""
    facts = {"seconds": 12.0, "steps": 4, "total_steps": 4, "stopped_early": stopped,
             "train_sentences": 32, "device": "CPU (2 threads, fp32)", "train_loss": 0.5,
             "base_model": "minilm", "weights": "float32", "data": data,
             "labels": CONLL2003_LABELS, "lowercase": True}
    if stopped:
        return {"training": facts, "history": []}
    splits = {split: {"overall": overall, "n_sentences": 10,
                      "per_entity": {"PER": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10}}}
              for split, overall in SCORES.items()}
    return {**splits, "training": facts, "history": []}


def parsed(text: str) -> ModelCard:
    """The card as the Hub reads it; invalid metadata raises."""
    return ModelCard(text, ignore_metadata_errors=False)


def scores_of(card: ModelCard) -> dict:
    return {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}


def test_card_of_a_real_fine_tune_carries_its_scores_for_the_hub(tiny_bert, tmp_path, runs_dir):
    data_dir = tmp_path / "conll2003"
    data_dir.mkdir()
    write_conll(data_dir / "train.txt", make_sentences(24, seed=1), docs=2)
    write_conll(data_dir / "valid.txt", make_sentences(8, seed=2), docs=1)
    write_conll(data_dir / "test.txt", make_sentences(8, seed=3), docs=1)
    config = TrainConfig(base_model=str(tiny_bert), epochs=1, train_batch_size=8,
                         learning_rate=1e-3, max_length=64, logging_steps=1)
    result = fine_tune(config, load_data(data_dir), runs_dir / "card-run", data_source=str(data_dir))

    card = ModelCard.load(result.output_dir / "README.md", ignore_metadata_errors=False)
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "token-classification"
    assert card.data.tags == ["token-classification", "ner"]
    assert card.data.datasets == [CONLL2003_HUB_ID] and card.data.language == "en"
    # The tiny model's directory holds no train_config.json: no known Hub ancestor to name.
    assert card.data.base_model is None
    assert card.data.model_name == "card-run"
    expected = {(split, score): value for split in ("validation", "test")
                for score, value in result.metrics[split]["overall"].items()}
    assert scores_of(card) == pytest.approx(expected)
    assert {r.dataset_type for r in card.data.eval_results} == {CONLL2003_HUB_ID}
    assert card.text.lstrip().startswith("# card-run\n"), "the card itself follows the metadata"
    assert "## Scores on validation (8 sentences" in card.text


def test_card_without_conll2003_names_local_data_and_no_hub_dataset():
    card = parsed(model_card("mine", TrainConfig(base_model="minilm"), metrics_for("/srv/data/shop-ner")))
    assert card.data.datasets is None and card.data.language is None
    assert {(r.dataset_type, r.dataset_name) for r in card.data.eval_results} == {("local", "shop-ner")}
    assert scores_of(card) == {(split, score): value for split, overall in SCORES.items()
                               for score, value in overall.items()}


@pytest.mark.parametrize("data, dataset_name", [
    (None, "local CoNLL files"), ("/", "local CoNLL files"), ("mine/train.txt", "train.txt"),
    ("conll2003", "CoNLL-2003"), ("../shared/data/conll2003", "CoNLL-2003")])
def test_card_parses_whatever_the_data_source(data, dataset_name):
    card = parsed(model_card("r", TrainConfig(base_model="minilm"), metrics_for(data)))
    assert card.data.base_model == ENCODER_HUB_ID
    assert len(card.data.eval_results) == 8  # two splits, four scores
    assert {r.dataset_name for r in card.data.eval_results} == {dataset_name}
    assert (card.data.datasets == [CONLL2003_HUB_ID]) == (dataset_name == "CoNLL-2003")


def test_card_of_a_stopped_run_has_metadata_but_no_scores():
    text = model_card("halted", TrainConfig(base_model="dslim/bert-base-NER"), metrics_for(None, stopped=True))
    card = parsed(text)
    assert card.data.eval_results is None and "model-index" not in text
    assert card.data.base_model == "dslim/bert-base-NER"
    assert "Training was stopped at step 4 of 4" in card.text


def write_run(runs_dir: Path, name: str, base_model: str, model_dir: Path) -> Path:
    run = make_run(runs_dir, name, model_dir)
    (run / "train_config.json").write_text(TrainConfig(base_model=base_model).to_json())
    return run


def test_base_model_follows_local_runs_to_their_hub_ancestor(tiny_bert, runs_dir):
    write_run(runs_dir, "first", "minilm", tiny_bert)
    second = write_run(runs_dir, "second", "first", tiny_bert)
    write_run(runs_dir, "from-hub", "dslim/bert-base-NER", tiny_bert)
    write_run(runs_dir, "loop", "loop", tiny_bert)
    assert hub_base_model("second") == ENCODER_HUB_ID
    assert hub_base_model(str(second)) == ENCODER_HUB_ID, "a run's directory, not only its name"
    assert hub_base_model("from-hub") == "dslim/bert-base-NER"
    assert hub_base_model("loop") is None
    assert hub_base_model(str(tiny_bert)) is None  # a model directory without train_config.json


@pytest.mark.parametrize("name, expected", [
    ("minilm", ENCODER_HUB_ID),
    ("default", ENCODER_HUB_ID),  # the bundled model was fine-tuned from minilm
    ("dslim/bert-base-NER", "dslim/bert-base-NER"),
    ("distilbert-base-uncased", "distilbert-base-uncased"),
    ("/nowhere/model", None),
])
def test_base_model_of_each_kind_of_name(name, expected):
    assert hub_base_model(name) == expected
    card = parsed(model_card("r", TrainConfig(base_model=name), metrics_for("conll2003")))
    assert card.data.base_model == expected


def data_report() -> dict:
    """A report as ``load_labelled`` gives it for a doccano file: one span widened, one dropped."""
    from ner_core.formats import Example, Report, Span, align

    report = Report("shop.jsonl", "doccano")
    report.records = 2
    align([Example("Anna met Berliners.", [Span(0, 4, "PER"), Span(9, 15, "LOC")], line=1,
                   source="shop.jsonl"),
           Example("Zorg left.", [Span(0, 4, "ALIEN")], line=2, source="shop.jsonl")],
          report, labels={"PER", "LOC"})
    return report.as_dict()


def test_card_states_the_training_data_report():
    metrics = metrics_for("/srv/data/shop.jsonl")
    metrics["training"]["data_report"] = data_report()
    card = parsed(model_card("mine", TrainConfig(base_model="minilm"), metrics))
    section = card.text[card.text.index("## Training data"):card.text.index("## Training\n")]
    assert section.splitlines()[2:5] == [
        "### Fine-tuning data", "",
        "`shop.jsonl` (doccano JSONL): 2 records read, 2 examples kept, 2 of 3 entities kept."]
    assert "| widened | 1 | a span that cut a word, widened to the whole word |" in section
    assert "| unknown type | 1 | a span of a type outside the label set, dropped |" in section
    assert "| LOC | 1 |" in section and "| PER | 1 |" in section
    assert "### Replayed data" not in section


def test_card_without_a_data_report_has_no_training_data_section():
    card = model_card("mine", TrainConfig(base_model="minilm"), metrics_for("conll2003"))
    assert "## Training data" not in card and "## Training\n" in card
