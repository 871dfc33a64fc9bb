"""fine_tune on tiny models and invented CoNLL data; TrainConfig's checks and presets."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from conftest import write_splits

from ner_core import Recognizer, TrainConfig, cli, evaluate, fine_tune, load_data, preset, runs
from ner_core.features import word_pieces
from ner_core.labels import CONLL2003_LABELS
from ner_core.training import TrainProgress

TINY = dict(epochs=2, train_batch_size=8, learning_rate=1e-3, max_length=64, logging_steps=2,
            eval_strategy="epoch")


def tiny_config(model: Path, **overrides) -> TrainConfig:
    return TrainConfig(base_model=str(model), **{**TINY, **overrides})


@pytest.fixture(scope="module")
def module_data(tmp_path_factory):
    """The data of ``conll_dir``, written once for the module's shared runs."""
    return load_data(write_splits(tmp_path_factory.mktemp("conll")))


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def trained(request, tmp_path_factory, module_data):
    """One complete two-epoch run per model family, with every progress event it reported."""
    model = request.getfixturevalue("tiny_bert" if request.param == "bert" else "tiny_distilbert")
    parent = tmp_path_factory.mktemp(f"trained-{request.param}")
    config = tiny_config(model)
    events: list[TrainProgress] = []
    result = fine_tune(config, module_data, parent / "run", on_event=events.append)
    return {"config": config, "result": result, "events": events, "run": parent / "run",
            "parent": parent, "data": module_data}


def test_run_directory_holds_a_complete_run(trained):
    run = trained["run"]
    assert runs.is_complete(run)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                 "train_config.json", "metrics.json", "README.md"):
        assert (run / name).is_file(), f"{name} is missing from the run"
    config = json.loads((run / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(CONLL2003_LABELS)}
    assert config["label2id"] == {label: i for i, label in enumerate(CONLL2003_LABELS)}
    assert TrainConfig.load(run / "train_config.json") == trained["config"]


def test_run_holds_no_pickled_files(trained):
    pickled = sorted(p.name for p in trained["run"].rglob("*") if p.suffix in (".bin", ".pt", ".pkl"))
    assert pickled == [], f"a run is safetensors only, found pickled files {pickled}"


def test_no_partial_directory_is_left(trained):
    assert [p.name for p in trained["parent"].iterdir()] == ["run"]


def test_metrics_hold_validation_and_test_scores(trained):
    metrics = runs.read_json(trained["run"] / "metrics.json")
    for split in ("validation", "test"):
        scores = metrics[split]
        assert set(scores["overall"]) == {"precision", "recall", "f1", "accuracy"}
        assert all(0.0 <= v <= 1.0 for v in scores["overall"].values())
        assert set(scores["per_entity"]) <= {"PER", "ORG", "LOC", "MISC"}
        assert {"PER", "ORG", "LOC"} <= set(scores["per_entity"])
        for entity in scores["per_entity"].values():
            assert set(entity) == {"precision", "recall", "f1", "support"}
        assert scores["n_sentences"] == 30
        assert scores["per_entity"]["PER"]["support"] == 30  # one person per invented sentence
    assert metrics["training"]["steps"] == 30 and metrics["training"]["stopped_early"] is False
    assert metrics["training"]["train_sentences"] == 120
    result = trained["result"]
    assert (result.steps, result.total_steps, result.stopped_early) == (30, 30, False)
    assert result.output_dir == trained["run"]
    assert result.metrics["validation"] == metrics["validation"]


def test_model_card_shows_per_entity_scores_and_hyperparameters(trained):
    card = (trained["run"] / "README.md").read_text()
    metrics = runs.read_json(trained["run"] / "metrics.json")
    assert card.startswith("---\n") and "\n---\n\n# run\n" in card  # front matter, then the title
    for split in ("validation", "test"):
        assert f"## Scores on {split} (30 sentences" in card
        for entity, s in metrics[split]["per_entity"].items():
            assert f"| {entity} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | " \
                   f"{s['support']} |" in card
    for name, value in (("learning_rate", "0.001"), ("epochs", "2"), ("train_batch_size", "8"),
                        ("max_length", "64"), ("base_model", str(trained["config"].base_model))):
        assert f"| {name} | {value} |" in card
    assert "Training was stopped" not in card


def test_progress_reports_steps_time_and_evaluations(trained):
    events = trained["events"]
    assert events and all(isinstance(e, TrainProgress) for e in events)
    assert all(e.total_steps == 30 for e in events)
    assert {e.kind for e in events} == {"step", "log", "eval"}
    assert [e.step for e in events if e.kind == "step"] == list(range(1, 31)), "one per step, in order"
    logs = [e for e in events if e.kind == "log"]
    assert [e.step for e in logs] == list(range(2, 31, 2)), "a loss every logging_steps=2 steps"
    assert all(e.loss is not None and e.learning_rate is not None for e in logs)
    assert [e.step for e in events] == sorted(e.step for e in events)
    elapsed = [e.elapsed_seconds for e in events]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    assert all(e.remaining_seconds is not None and e.remaining_seconds >= 0 for e in events)
    assert events[-1].remaining_seconds == 0
    assert any(e.loss is not None and e.learning_rate is not None for e in events)
    evaluations = [e for e in events if e.kind == "eval"]
    assert evaluations == [e for e in events if e.eval_metrics is not None]
    assert [e.step for e in evaluations] == [15, 30], "one evaluation per epoch"
    for e in evaluations:
        assert {"precision", "recall", "f1", "accuracy", "f1_PER"} <= set(e.eval_metrics)
        assert 0.0 <= e.eval_metrics["f1"] <= 1.0
    assert [e.epoch for e in evaluations] == [1.0, 2.0]


def test_saved_run_tags_like_its_weights(trained):
    """The saved run, reloaded, tags as its weights do on each word's first sub-token."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    run = trained["run"]
    sentences = [s for s in trained["data"]["test"]["tokens"]]
    recognizer = Recognizer(str(run))
    assert recognizer.max_length == 64
    tagged = recognizer.tag(sentences)
    model = AutoModelForTokenClassification.from_pretrained(run, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(run)
    expected = []
    with torch.inference_mode():
        for words in sentences:
            encoding = tokenizer(words, is_split_into_words=True, return_tensors="pt")
            labels = model(**encoding).logits[0].argmax(-1).tolist()
            firsts = {}
            for position, word in enumerate(encoding.word_ids()):
                if word is not None:
                    firsts.setdefault(word, position)
            expected.append([model.config.id2label[labels[firsts[w]]] for w in range(len(words))])
    assert tagged == expected
    # And scoring the reloaded run gives the scores saved with it.
    saved = runs.read_json(run / "metrics.json")["test"]
    again = evaluate(recognizer, trained["data"]["test"])
    assert (again["overall"], again["per_entity"]) == (saved["overall"], saved["per_entity"])


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_fast_precisions_tag_a_trained_run_like_float32(trained, precision):
    sentences = list(trained["data"]["test"]["tokens"]) + list(trained["data"]["validation"]["tokens"])
    plain = Recognizer(str(trained["run"])).tag(sentences)
    fast = Recognizer(str(trained["run"]), precision=precision).tag(sentences)
    words = [(a, b) for p, f in zip(plain, fast) for a, b in zip(p, f)]
    same = sum(a == b for a, b in words) / len(words)
    assert same >= 0.95, f"{precision} changed {1 - same:.1%} of {len(words)} word tags"


def test_training_learns_the_invented_data(trained):
    metrics = runs.read_json(trained["run"] / "metrics.json")
    assert metrics["validation"]["overall"]["f1"] > 0.3, "two epochs at 1e-3 learn PER verb LOC/ORG"


def test_should_stop_stops_within_one_step_and_saves(tiny_model, conll_dir, tmp_path):
    calls = []

    def should_stop() -> bool:
        calls.append(True)
        return len(calls) >= 2

    output = tmp_path / "out" / "stopped"
    result = fine_tune(tiny_config(tiny_model), load_data(conll_dir), output, should_stop=should_stop)
    assert result.stopped_early
    assert result.steps <= 3 and result.total_steps == 30
    assert runs.is_complete(output)
    assert [p.name for p in output.parent.iterdir()] == ["stopped"]
    metrics = runs.read_json(output / "metrics.json")
    assert metrics["training"]["stopped_early"] is True and metrics["training"]["steps"] == result.steps
    assert "Training was stopped at step" in (output / "README.md").read_text()
    entities = Recognizer(str(output)).recognize("anna weber visited berlin.")
    assert isinstance(entities, list)


def test_existing_output_without_overwrite_is_refused(tiny_bert, conll_dir, tmp_path):
    output = tmp_path / "taken"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=rf"{re.escape(str(output))} already exists; choose another "
                                         r"output or allow overwriting"):
        fine_tune(tiny_config(tiny_bert), load_data(conll_dir), output)
    assert (output / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_an_existing_run(tiny_bert, conll_dir, tmp_path):
    output = tmp_path / "runs-here" / "again"
    fine_tune(tiny_config(tiny_bert, seed=3), load_data(conll_dir), output, should_stop=lambda: True)
    (output / "old.txt").write_text("old")
    fine_tune(tiny_config(tiny_bert, seed=7), load_data(conll_dir), output,
              should_stop=lambda: True, overwrite=True)
    assert runs.is_complete(output) and not (output / "old.txt").exists()
    assert TrainConfig.load(output / "train_config.json").seed == 7
    assert [p.name for p in output.parent.iterdir()] == ["again"]


def test_overwrite_never_replaces_a_directory_that_is_not_a_run(tiny_bert, conll_dir, tmp_path):
    output = tmp_path / "project"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not a saved run"):
        fine_tune(tiny_config(tiny_bert), load_data(conll_dir), output, overwrite=True)
    assert (output / "notes.txt").read_text() == "keep me"


def test_overwriting_a_file_saves_cleanly_or_is_refused(tiny_bert, conll_dir, tmp_path):
    """``overwrite`` over a plain file: refuse it up front, or replace it; never half of each."""
    output = tmp_path / "parent" / "model.safetensors"
    output.parent.mkdir()
    output.write_text("not a run")
    try:
        fine_tune(tiny_config(tiny_bert), load_data(conll_dir), output, should_stop=lambda: True,
                  overwrite=True)
    except ValueError:
        assert output.read_text() == "not a run"
    else:
        assert runs.is_complete(output)
    assert [p.name for p in output.parent.iterdir()] == ["model.safetensors"]


def test_max_length_beyond_the_model_is_refused(tiny_bert, conll_dir, tmp_path):
    with pytest.raises(ValueError, match=r"max_length must be at most 128 for .*tiny-bert.*, found 256"):
        fine_tune(tiny_config(tiny_bert, max_length=256), load_data(conll_dir), tmp_path / "out" / "x")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_data_without_train_split_is_refused(tiny_bert, conll_dir, tmp_path):
    (conll_dir / "train.txt").unlink()
    with pytest.raises(ValueError, match=r"expected a 'train' split in the data, found validation, test"):
        fine_tune(tiny_config(tiny_bert), load_data(conll_dir), tmp_path / "out")


def test_crash_in_on_event_leaves_nothing(tiny_model, conll_dir, tmp_path):
    def crash(progress: TrainProgress) -> None:
        if progress.step == 3:
            raise RuntimeError("simulated crash at step 3")

    parent = tmp_path / "parent"
    parent.mkdir()
    with pytest.raises(RuntimeError, match="simulated crash at step 3"):
        fine_tune(tiny_config(tiny_model), load_data(conll_dir), parent / "crashed", on_event=crash)
    assert list(parent.iterdir()) == []


def test_crash_while_saving_leaves_nothing(tiny_bert, conll_dir, tmp_path, monkeypatch):
    import ner_core.training

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while scoring the saved run")

    monkeypatch.setattr(ner_core.training, "evaluate", crash)
    parent = tmp_path / "parent"
    with pytest.raises(RuntimeError, match="simulated crash while scoring"):
        fine_tune(tiny_config(tiny_bert, epochs=1), load_data(conll_dir), parent / "crashed")
    assert list(parent.iterdir()) == []


def test_document_context_and_all_tokens_are_kept_with_the_run(tiny_bert, conll_dir, tmp_path):
    output = tmp_path / "context"
    config = tiny_config(tiny_bert, epochs=1, document_context=True, context_tokens=16,
                         label_all_tokens=True, max_train_sentences=40)
    result = fine_tune(config, load_data(conll_dir), output)
    assert result.metrics["training"]["train_sentences"] == 40
    assert result.total_steps == 5
    recognizer = Recognizer(str(output))
    assert (recognizer.document_context, recognizer.context_tokens, recognizer.max_length) == (True, 16, 64)


def test_case_feature_is_kept_with_the_run_and_read_at_inference(tiny_bert, conll_dir, tmp_path,
                                                                   monkeypatch):
    output = tmp_path / "cased"
    config = tiny_config(tiny_bert, epochs=1, case_feature=True, max_train_sentences=40)
    fine_tune(config, load_data(conll_dir), output)
    recognizer = Recognizer(str(output))
    assert recognizer.case_feature is True
    seen = []
    forward = recognizer.model.forward
    monkeypatch.setattr(recognizer.model, "forward",
                        lambda **inputs: seen.append(inputs) or forward(**inputs))
    recognizer.recognize("Angela met bob in Paris")
    pieces = word_pieces(recognizer.tokenizer, [["Angela", "met", "bob", "in", "Paris"]])[0]
    expected = [0]  # [CLS]
    for word, flag in zip(pieces, [1, 0, 0, 0, 1]):
        expected += [flag] * len(word)
    assert seen[0]["token_type_ids"][0].tolist() == expected + [0]  # [SEP]


@pytest.mark.parametrize("precision", ["auto", "fp32"])
def test_precision_reaches_the_trainer_and_the_model_card(tiny_bert, conll_dir, tmp_path, precision):
    from ner_core.training import _training_arguments, native_bf16
    config = tiny_config(tiny_bert, epochs=1, precision=precision, max_train_sentences=16)
    bf16 = precision == "auto" and native_bf16()
    assert _training_arguments(config, [], evaluate_during=False).bf16 is bf16
    result = fine_tune(config, load_data(conll_dir), tmp_path / "run")
    assert result.metrics["training"]["device"].endswith("bf16)" if bf16 else "fp32)")
    assert TrainConfig.load(tmp_path / "run" / "train_config.json").precision == precision


def test_label_smoothing_reaches_the_loss_and_is_kept_with_the_run(tiny_bert, conll_dir, tmp_path):
    # Smoothed targets keep the loss of a model that has learned the data from falling towards 0:
    # a share of every target sits on the labels that are wrong.
    data = load_data(conll_dir)
    losses = {}
    for smoothing in (0.0, 0.3):
        config = tiny_config(tiny_bert, label_smoothing=smoothing, eval_strategy="no")
        result = fine_tune(config, data, tmp_path / f"run-{smoothing}")
        losses[smoothing] = result.metrics["training"]["train_loss"]
    assert losses[0.3] > losses[0.0] + 0.1, losses
    assert TrainConfig.load(tmp_path / "run-0.3" / "train_config.json").label_smoothing == 0.3
    assert "--label-smoothing 0.3" in (tmp_path / "run-0.3" / "README.md").read_text()


def test_case_feature_needs_token_type_embeddings(tiny_distilbert, conll_dir, tmp_path):
    config = tiny_config(tiny_distilbert, epochs=1, case_feature=True)
    with pytest.raises(ValueError, match="case_feature needs a model with token type embeddings"):
        fine_tune(config, load_data(conll_dir), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("field, value", [
    ("learning_rate", 0),
    ("learning_rate", -1),
    ("learning_rate", 2),
    ("learning_rate", "abc"),
    ("learning_rate", float("nan")),
    ("epochs", 0),
    ("epochs", 101),
    ("train_batch_size", 0),
    ("train_batch_size", 1025),
    ("train_batch_size", 2.5),
    ("train_batch_size", True),
    ("eval_batch_size", 0),
    ("max_length", 4),
    ("max_length", 8193),
    ("max_train_sentences", 0),
    ("lr_scheduler", "bogus"),
    ("eval_strategy", "x"),
    ("label_all_tokens", "yes"),
    ("document_context", 1),
    ("case_feature", "yes"),
    ("precision", "fp16"),
    ("warmup_ratio", 1.0),
    ("weight_decay", -0.1),
    ("seed", -1),
    ("context_tokens", -1),
    ("label_smoothing", 1.0),
    ("label_smoothing", -0.1),
    ("base_model", ""),
    ("base_model", None),
])
def test_bad_hyperparameters_are_refused_quoting_the_value(field, value):
    with pytest.raises(ValueError, match=rf"^{field} must .*, found {re.escape(repr(value))}$"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("field, value", [
    ("learning_rate", 1), ("learning_rate", 1e-6), ("epochs", 100), ("epochs", 0.5),
    ("train_batch_size", 1), ("train_batch_size", 1024), ("max_length", 8), ("max_train_sentences", 1),
    ("warmup_ratio", 0.0), ("lr_scheduler", "cosine"), ("eval_strategy", "no"),
    ("label_smoothing", 0.0), ("label_smoothing", 0.5),
])
def test_edge_hyperparameters_are_accepted(field, value):
    assert getattr(TrainConfig(**{field: value}), field) == value


def test_config_survives_json(tmp_path):
    config = TrainConfig(base_model="minilm", learning_rate=3e-4, max_train_sentences=10,
                         document_context=True)
    (tmp_path / "c.json").write_text(config.to_json())
    assert TrainConfig.load(tmp_path / "c.json") == config


def test_unknown_saved_hyperparameters_are_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown hyperparameters dropout, fp16; expected some of "):
        TrainConfig.from_dict({"learning_rate": 1e-4, "fp16": True, "dropout": 0.1})


def test_presets():
    short = preset("short")
    assert (short.learning_rate, short.base_model) == (3e-4, "minilm")
    assert (short.max_train_sentences, short.epochs) == (2000, 1.0)
    assert preset("recipe") == TrainConfig()
    assert preset("short", learning_rate=1e-4).learning_rate == 1e-4
    bundled = preset("bundled")
    assert (bundled.base_model, bundled.case_feature) == ("minilm", True)
    assert bundled.command_line("assets/model", "data", half=True) == \
        "python -m ner_core train --preset bundled --data data --output assets/model --half"
    assert preset("bundled", epochs=1.0).command_line("x", "d").startswith(
        "python -m ner_core train --base-model minilm --data d --output x --learning-rate")
    with pytest.raises(ValueError, match=r"preset must be one of recipe, short, bundled, continue, found 'long'"):
        preset("long")
    with pytest.raises(ValueError, match=r"learning_rate must be in \(0, 1\], found 0"):
        preset("short", learning_rate=0)


DATA_DIR = os.environ.get("NER_DATA_DIR")


@pytest.mark.skipif(not DATA_DIR or not Path(DATA_DIR).is_dir(),
                    reason="needs the CoNLL-2003 files: set NER_DATA_DIR to their directory")
def test_short_preset_learns_conll2003(tmp_path):
    """The 'short' preset: MiniLM, 2,000 sentences, one epoch at 3e-4.

    Scored on 500 validation sentences drawn at random, without the test split: scoring the whole
    of both would cost three times the training, and tells no more about whether it learns.
    """
    from datasets import DatasetDict

    data = load_data(DATA_DIR)
    sample = DatasetDict(train=data["train"],
                         validation=data["validation"].shuffle(seed=0).select(range(500)))
    result = fine_tune(preset("short"), sample, tmp_path / "short")
    assert result.metrics["training"]["train_sentences"] == 2000
    assert result.metrics["validation"]["n_sentences"] == 500
    f1 = result.metrics["validation"]["overall"]["f1"]
    assert f1 > 0.6, f"validation F1 {f1:.3f} after the short preset"


def test_a_rebuild_of_the_bundled_model_is_carded_as_default_and_rebuilds_in_place(
        tiny_bert, conll_dir, tmp_path, monkeypatch):
    from ner_core import models

    bundled = tmp_path / "assets" / "model"
    monkeypatch.setattr(models, "BUNDLED_DIR", bundled)
    config = tiny_config(tiny_bert, epochs=1, max_train_sentences=40)
    fine_tune(config, load_data(conll_dir), bundled, data_source=str(conll_dir))
    card = (bundled / "README.md").read_text()
    assert "\n# default\n" in card and 'Recognizer("default")' in card
    rebuild = rebuild_command(card)
    assert f"--data {conll_dir} --output assets/model " in rebuild
    assert rebuild.endswith(" --overwrite")  # the directory is there: a rebuild replaces it
    # Run from the repository root, as the README does, it rebuilds the model in place.
    monkeypatch.chdir(tmp_path)
    (bundled / "stale").write_text("from before the rebuild")
    assert cli.main(shlex.split(rebuild)[3:]) == 0
    assert not (bundled / "stale").exists() and (bundled / "model.safetensors").is_file()
    assert TrainConfig.load(bundled / "train_config.json") == config
    # Any other directory is a run named after it, rebuilt into runs/.
    fine_tune(tiny_config(tiny_bert, epochs=1, max_train_sentences=40), load_data(conll_dir),
              tmp_path / "mine", data_source=str(conll_dir))
    card = (tmp_path / "mine" / "README.md").read_text()
    assert "\n# mine\n" in card
    assert " --output runs/mine " in rebuild_command(card) and "--overwrite" not in card


def rebuild_command(card: str) -> str:
    return card.split("## Rebuild\n\n```bash\n", 1)[1].split("\n", 1)[0]
