"""Continued fine-tuning: inherited settings, extended labels, replay, the card and the refusals.

The parent is a run trained here from a tiny encoder, with input settings unlike the defaults, so
that what a continued run inherits can be told from what it would get anyway.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from conftest import make_sentences, vocabulary, write_conll
from safetensors.torch import load_file

from ner_core import TrainConfig, cli, fine_tune, load_data, models, preset, runs, to_dataset_dict
from ner_core.cli import _build_parser
from ner_core.continued import onto_model_labels, relabel, with_replay
from ner_core.data import Sentence
from ner_core.labels import CONLL2003_LABELS, extend_labels
from ner_core.config import CHOSEN_ON
from ner_core.plan import INHERITED, config_for, inherited_settings, plan_fine_tune, sized_for_data

ROOT = Path(__file__).resolve().parent.parent
PARENT_SETTINGS = {"case_feature": True, "document_context": True, "context_tokens": 16,
                   "max_length": 64}
PRODUCTS = ["zx widget", "omega phone", "kyoto lens"]


def save_tiny_bert(directory: Path, vocab_file: Path, labels: list[str] | None = None) -> Path:
    """A tiny BERT: an encoder (no entity labels) unless ``labels`` are given."""
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    torch.manual_seed(0)
    named = {"id2label": dict(enumerate(labels)),
             "label2id": {label: i for i, label in enumerate(labels)}} if labels else {}
    config = BertConfig(vocab_size=len(vocabulary()), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=37, max_position_embeddings=128,
                        **named)
    BertForTokenClassification(config).save_pretrained(directory)
    BertTokenizerFast(str(vocab_file)).save_pretrained(directory)
    return directory


def product_sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """The invented sentences, each followed by a product: a type the parent never saw."""
    sentences = make_sentences(n, seed)
    for i, sentence in enumerate(sentences):
        words = PRODUCTS[i % len(PRODUCTS)].split()
        sentence[-1:] = [("with", "O"), (words[0], "B-PRODUCT"), (words[1], "I-PRODUCT"), (".", "O")]
    return sentences


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, vocab_file) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("encoder"), vocab_file)


@pytest.fixture(scope="module")
def parent(tmp_path_factory, encoder) -> Path:
    """A run fine-tuned from the encoder, with every input setting unlike the default."""
    data_dir = tmp_path_factory.mktemp("parent-data")
    write_conll(data_dir / "train.txt", make_sentences(48, seed=1), docs=4)
    config = TrainConfig(base_model=str(encoder), epochs=1.0, train_batch_size=8,
                         learning_rate=1e-3, **PARENT_SETTINGS)
    return fine_tune(config, load_data(data_dir), tmp_path_factory.mktemp("parent") / "parent",
                     data_source=str(data_dir)).output_dir


@pytest.fixture(scope="module")
def replay_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("replay")
    write_conll(directory / "train.txt", make_sentences(40, seed=5), docs=4)
    write_conll(directory / "valid.txt", make_sentences(8, seed=6), docs=1)
    return directory


@pytest.fixture(scope="module")
def corrections(tmp_path_factory) -> Path:
    """Only a train.txt, holding the new type PRODUCT."""
    directory = tmp_path_factory.mktemp("corrections")
    write_conll(directory / "train.txt", product_sentences(16, seed=7), docs=2)
    return directory


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, parent, replay_dir, corrections) -> Path:
    """The acceptance command's shape, with the tiny parent for ``default``."""
    output = tmp_path_factory.mktemp("adapted") / "adapted"
    code = cli.main(["train", "--base-model", str(parent), "--data", str(corrections),
                     "--replay", str(replay_dir), "--epochs", "3", "--output", str(output)])
    assert code == 0
    return output


def parent_labels(parent: Path) -> list[str]:
    return models.trained_labels(models.resolve(str(parent)))


# Labels -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_labels, data_labels, expected", [
    (CONLL2003_LABELS, CONLL2003_LABELS, CONLL2003_LABELS),
    (CONLL2003_LABELS, ["O", "B-PER", "I-PER"], CONLL2003_LABELS),
    (CONLL2003_LABELS, ["O", "B-PRODUCT", "I-PRODUCT", "B-DRUG", "I-DRUG"],
     CONLL2003_LABELS + ["B-PRODUCT", "I-PRODUCT", "B-DRUG", "I-DRUG"]),
    (["O", "B-LOC", "I-LOC"], ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
     ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]),
    (["O", "B-PER"], ["O", "B-PER", "I-PER"], ["O", "B-PER", "I-PER"]),  # a type it half knew
])
def test_data_labels_extend_the_model_labels_after_its_own(model_labels, data_labels, expected):
    assert extend_labels(model_labels, data_labels) == expected


@pytest.mark.parametrize("model_labels, data_labels, found", [
    (CONLL2003_LABELS, ["O", "S-PER", "B-PER", "I-PER", "E-PER"], "S-PER, E-PER"),
    (["O", "S-PER", "B-PER", "I-PER", "E-PER"], CONLL2003_LABELS, "S-PER, E-PER"),
    (CONLL2003_LABELS, ["O", "PER", "ORG"], "PER, ORG"),
    (["LABEL_PER", "LABEL_ORG"], ["O", "B-PER", "I-PER"], "LABEL_PER, LABEL_ORG"),
])
def test_labels_of_another_scheme_are_refused_naming_both_sets(model_labels, data_labels, found):
    message = (rf"^expected the data's labels \({re.escape(', '.join(data_labels))}\) and the "
               rf"model's \({re.escape(', '.join(model_labels))}\) to be IOB2 labels \(O, B-TYPE, "
               rf"I-TYPE\) so that the data's can extend the model's, found {found}$")
    with pytest.raises(ValueError, match=message):
        extend_labels(model_labels, data_labels)


def test_tag_ids_are_mapped_onto_the_extended_labels(parent, corrections, replay_dir):
    data, replay_train = onto_model_labels(parent_labels(parent), load_data(corrections),
                                           load_data(replay_dir))
    labels = CONLL2003_LABELS + ["B-PRODUCT", "I-PRODUCT"]
    for mapped, original in ((data["train"], load_data(corrections)["train"]),
                             (replay_train, load_data(replay_dir)["train"])):
        assert mapped.features["ner_tags"].feature.names == labels
        names = original.features["ner_tags"].feature.names
        assert [[labels[t] for t in tags] for tags in mapped["ner_tags"]] == \
            [[names[t] for t in tags] for tags in original["ner_tags"]]
        assert mapped["tokens"] == original["tokens"] and mapped["doc_id"] == original["doc_id"]
    # The corrections' own label list (alphabetical after O) differs from the model's order.
    assert load_data(corrections)["train"].features["ner_tags"].feature.names != labels


# The head -----------------------------------------------------------------------------------------

def test_new_labels_keep_the_old_classifier_rows_exactly(parent):
    source = models.resolve(str(parent))
    old = load_file(parent / "model.safetensors")
    labels = parent_labels(parent) + ["B-PRODUCT", "I-PRODUCT"]
    model, _ = models.load_for_training(source, labels)
    weight, bias = model.classifier.weight.detach(), model.classifier.bias.detach()
    assert weight.shape[0] == len(labels) == model.num_labels == model.config.num_labels
    assert torch.equal(weight[:9], old["classifier.weight"])
    assert torch.equal(bias[:9], old["classifier.bias"])
    begins = [i for i, label in enumerate(CONLL2003_LABELS) if label.startswith("B-")]
    insides = [i for i, label in enumerate(CONLL2003_LABELS) if label.startswith("I-")]
    assert torch.allclose(weight[9], old["classifier.weight"][begins].mean(0))
    assert torch.allclose(weight[10], old["classifier.weight"][insides].mean(0))
    assert torch.allclose(bias[9], old["classifier.bias"][begins].mean())
    assert model.config.id2label == dict(enumerate(labels))
    assert model.config.label2id == {label: i for i, label in enumerate(labels)}
    # The rest of the model is the parent's, untouched.
    state = model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in old.items()
               if not name.startswith("classifier."))


def test_grown_head_tags_like_the_parent_until_trained(parent):
    """A new row scores the mean of its peers, never above the best: every argmax is unchanged."""
    source = models.resolve(str(parent))
    grown, tokenizer = models.load_for_training(source, parent_labels(parent) + ["B-PRODUCT",
                                                                               "I-PRODUCT"])
    before, _ = models.load_for_inference(source)
    sentences = [[word for word, _ in sentence] for sentence in make_sentences(20, seed=9)]
    inputs = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.inference_mode():
        assert torch.equal(grown.eval()(**inputs).logits.argmax(-1), before(**inputs).logits.argmax(-1))


def test_an_encoder_still_gets_a_new_head(encoder):
    model, _ = models.load_for_training(models.resolve(str(encoder)), ["O", "B-PRODUCT", "I-PRODUCT"])
    assert model.config.id2label == {0: "O", 1: "B-PRODUCT", 2: "I-PRODUCT"}
    assert model.classifier.out_features == 3


# Settings -----------------------------------------------------------------------------------------

def test_a_trained_base_passes_on_its_input_settings_with_the_continue_preset(parent):
    config = config_for({"base_model": str(parent)})
    assert config == preset("continue", base_model=str(parent), **PARENT_SETTINGS)
    assert inherited_settings(models.resolve(str(parent))) == PARENT_SETTINGS
    assert set(PARENT_SETTINGS) == set(INHERITED)


@pytest.mark.parametrize("overrides", [
    {"max_length": 32},
    {"case_feature": False},  # explicitly set to the default value: still an override
    {"document_context": False, "context_tokens": 64, "max_length": 128},
])
def test_explicit_settings_win_over_inherited_ones(parent, overrides):
    config = config_for({"base_model": str(parent), **overrides})
    for name in INHERITED:
        assert getattr(config, name) == overrides.get(name, PARENT_SETTINGS[name])


def test_a_named_preset_gives_hyperparameters_and_the_parent_its_input_settings(parent):
    config = config_for({"base_model": str(parent)}, "bundled")
    assert config.learning_rate == preset("bundled").learning_rate
    assert config.max_length == 64  # the parent's, not the bundled preset's 128


def test_an_encoder_gets_the_recipe_and_inherits_nothing(encoder):
    assert config_for({"base_model": str(encoder), "max_length": 64}) == \
        TrainConfig(base_model=str(encoder), max_length=64)
    assert inherited_settings(models.resolve(str(encoder))) is None


def test_inherited_max_length_is_checked_against_an_override_too(parent):
    with pytest.raises(ValueError, match=r"max_length must be at most 128 for .*parent, found 512"):
        config_for({"base_model": str(parent), "max_length": 512})


@pytest.mark.parametrize("sentences, replay_ratio", [(1, 100.0), (100, 10.0), (300, 3.33),
                                                     (500, 2.0), (1000, 2.0), (20000, 2.0)])
def test_the_continue_preset_replays_a_thousand_sentences_or_two_per_new_one(parent, sentences,
                                                                             replay_ratio):
    config = config_for({"base_model": str(parent)}, train_sentences=sentences)
    assert config == preset("continue", base_model=str(parent), replay_ratio=replay_ratio,
                            **PARENT_SETTINGS)


def test_a_given_replay_ratio_wins_over_the_one_for_the_data_size(parent):
    given = {"base_model": str(parent), "replay_ratio": 0.5}
    assert config_for(given, train_sentences=100).replay_ratio == 0.5


def test_only_the_continue_preset_follows_the_data_size(parent):
    assert config_for({"base_model": str(parent)}, "short", train_sentences=100) == \
        config_for({"base_model": str(parent)}, "short")
    plan = plan_fine_tune({"base_model": str(parent)}, "bundled")
    assert sized_for_data(plan, {"base_model": str(parent)}, 100) is plan


def test_without_replay_there_is_nothing_to_size(parent):
    plan = plan_fine_tune({"base_model": str(parent)})
    assert sized_for_data(plan, {"base_model": str(parent)}, 100, replay=False) is plan


def test_the_data_size_counts_only_the_sentences_kept(parent):
    given = {"base_model": str(parent), "max_train_sentences": 200}
    plan = sized_for_data(plan_fine_tune(given), given, 5000)
    assert plan.config.replay_ratio == 5.0  # 200 kept of 5,000: 1,000 replayed


def test_continue_preset_defaults_to_the_bundled_model():
    config = config_for({}, "continue")
    assert config.base_model == "default"
    assert (config.case_feature, config.max_length) == (True, 128), "the bundled model's settings"
    assert config.learning_rate == preset("continue").learning_rate < preset("bundled").learning_rate


@pytest.mark.parametrize("value", [-0.5, 101, "1", float("inf"), True])
def test_bad_replay_ratio_is_refused_quoting_it(value):
    with pytest.raises(ValueError, match=rf"^replay_ratio must .*, found {re.escape(repr(value))}$"):
        TrainConfig(replay_ratio=value)


@pytest.mark.parametrize("value", [0, 0.25, 100])
def test_edge_replay_ratios_are_accepted(value):
    assert TrainConfig(replay_ratio=value).replay_ratio == value


# Replay -------------------------------------------------------------------------------------------

def replay_split(n: int) -> tuple:
    sentences = [Sentence([f"w{i}"], ["O"], i // 3, i) for i in range(n)]
    return to_dataset_dict({"train": sentences[:6], "replay": sentences})


@pytest.mark.parametrize("ratio, expected", [(1.0, 6), (0.5, 3), (0, 0), (2.5, 15), (10, 30)])
def test_replay_draws_ratio_times_the_training_sentences(ratio, expected):
    data = replay_split(30)
    mixed = with_replay(data["train"], data["replay"], ratio, seed=1)
    assert len(mixed) == 6 + expected
    assert mixed["tokens"][:6] == data["train"]["tokens"]
    replayed = mixed["tokens"][6:]
    assert replayed == sorted(replayed, key=lambda t: int(t[0][1:])), "in corpus order"
    assert len({tuple(t) for t in replayed}) == expected
    # Documents renumbered after the training data's: context never joins old and new.
    assert min(mixed["doc_id"][6:], default=2) > max(mixed["doc_id"][:6])


def test_replay_draw_follows_the_seed():
    data = replay_split(30)
    draw = lambda seed: with_replay(data["train"], data["replay"], 1.0, seed)["tokens"][6:]  # noqa: E731
    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_relabel_onto_the_same_labels_returns_the_split_itself():
    split = replay_split(3)["train"]
    assert relabel(split, split.features["ner_tags"].feature.names) is split


# A whole continued run (the acceptance command's shape) ----------------------------------------------

def test_continued_run_extends_the_labels_without_validation_data(adapted, parent, replay_dir):
    assert runs.is_complete(adapted)
    labels = list(models.trained_labels(models.resolve(str(adapted))))
    assert labels == parent_labels(parent) + ["B-PRODUCT", "I-PRODUCT"]
    metrics = runs.read_json(adapted / "metrics.json")
    assert "validation" not in metrics and "test" not in metrics
    facts = metrics["training"]
    assert facts["continued_from"] == {"model": str(parent), "labels": parent_labels(parent),
                                       "inherited": PARENT_SETTINGS}
    # 16 corrections: the continue preset asks for 1,000 replayed (62.5 each); the replay data
    # holds 40, so all are replayed.
    assert facts["replay"] == {"data": str(replay_dir), "ratio": 62.5, "sentences": 40}
    assert facts["train_sentences"] == 16
    assert facts["steps"] == 3 * 4  # 56 sentences, batches of 16, 3 epochs
    assert facts["preset"] == "continue"


def test_continued_run_keeps_the_parent_input_settings(adapted):
    config = TrainConfig.load(adapted / "train_config.json")
    assert {name: getattr(config, name) for name in INHERITED} == PARENT_SETTINGS
    assert (config.learning_rate, config.epochs) == (preset("continue").learning_rate, 3.0)
    from ner_core import Recognizer

    recognizer = Recognizer(str(adapted))
    assert (recognizer.case_feature, recognizer.document_context, recognizer.max_length) == \
        (True, True, 64)
    assert recognizer.labels[-2:] == ["B-PRODUCT", "I-PRODUCT"]


def test_card_names_the_parent_the_new_type_and_the_replay(adapted, parent, replay_dir):
    card = (adapted / "README.md").read_text()
    assert f"Continued fine-tuning of the trained model `{parent}`" in card
    assert "rows added for the entity types new to it (PRODUCT)" in card
    assert f"Replay: 40 sentences drawn from `{replay_dir}` (replay_ratio 62.5)" in card
    assert "## Scores on" not in card
    assert "PER, ORG, LOC, MISC, PRODUCT" in card


def test_card_states_the_preset_and_what_it_was_chosen_on(adapted):
    card = (adapted / "README.md").read_text()
    assert f"- Settings: the `continue` preset, then any given on top (the table below). " \
           f"{CHOSEN_ON['continue']}" in card
    assert "bench/continued.py" in CHOSEN_ON["continue"]


def test_card_rebuild_command_rebuilds_the_config(adapted, parent, corrections, replay_dir):
    command = next(line for line in (adapted / "README.md").read_text().splitlines()
                   if line.startswith("python -m ner_core train"))
    assert f"--replay {replay_dir}" in command and f"--data {corrections}" in command
    assert "--case-feature" not in command, "inherited settings need no flag"
    args = _build_parser().parse_args(shlex.split(command)[3:])
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name) is not None}
    assert config_for(overrides, args.preset) == TrainConfig.load(adapted / "train_config.json")


def test_an_override_equal_to_the_default_survives_the_rebuild_command(parent, corrections,
                                                                        tmp_path):
    config = config_for({"base_model": str(parent), "max_length": 128, "case_feature": False,
                         "epochs": 1.0})
    command = config.command_line("runs/x", str(corrections),
                                  inherited=inherited_settings(models.resolve(str(parent))))
    assert "--no-case-feature" in command and "--max-length 128" in command
    args = _build_parser().parse_args(shlex.split(command)[3:])
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name) is not None}
    assert config_for(overrides, args.preset) == config


# Refusals -----------------------------------------------------------------------------------------

def test_data_of_another_tag_scheme_is_refused_before_training(parent, tmp_path):
    bioes = ["O", "S-PER", "B-PER", "I-PER", "E-PER"]
    data = to_dataset_dict({"train": [Sentence(["anna", "weber", "met", "li"],
                                               ["B-PER", "E-PER", "O", "S-PER"], 0, 1)]},
                           labels=bioes)
    with pytest.raises(ValueError, match=r"expected the data's labels \(O, S-PER, B-PER, I-PER, "
                                         r"E-PER\) and the model's \(O, B-PER, .*\) to be IOB2"):
        fine_tune(config_for({"base_model": str(parent)}), data, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_a_model_of_another_tag_scheme_is_refused(tmp_path, vocab_file, corrections):
    bioes_model = save_tiny_bert(tmp_path / "bioes", vocab_file,
                                 ["O", "S-PER", "B-PER", "I-PER", "E-PER"])
    with pytest.raises(ValueError, match=r"model's \(O, S-PER, B-PER, I-PER, E-PER\) to be IOB2 .* "
                                         r"found S-PER, E-PER$"):
        fine_tune(TrainConfig(base_model=str(bioes_model), max_length=64), load_data(corrections),
                  tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_replay_with_an_encoder_is_refused_in_one_line(encoder, corrections, replay_dir, tmp_path,
                                                        capfd):
    code = cli.main(["train", "--base-model", str(encoder), "--data", str(corrections), "--replay",
                     str(replay_dir), "--max-length", "64", "--output", str(tmp_path / "refused")])
    out, err = capfd.readouterr()
    assert (code, out) == (2, "")
    assert err == (f"error: replay expected a trained model to continue from, found the encoder "
                   f"{str(encoder)!r}, which has no earlier training data to replay\n")
    assert not (tmp_path / "refused").exists()


def test_replay_data_without_a_train_split_is_refused(parent, corrections, tmp_path):
    write_conll(tmp_path / "valid.txt", make_sentences(4, seed=8), docs=1)
    with pytest.raises(ValueError, match=r"^expected a 'train' split in the replay data, found "
                                         r"validation$"):
        fine_tune(config_for({"base_model": str(parent)}), load_data(corrections),
                  tmp_path / "refused", replay=load_data(tmp_path))
    assert not (tmp_path / "refused").exists()


def test_missing_replay_data_is_refused_in_one_line(parent, corrections, tmp_path, capfd):
    code = cli.main(["train", "--base-model", str(parent), "--data", str(corrections), "--replay",
                     str(tmp_path / "nowhere"), "--output", str(tmp_path / "refused")])
    out, err = capfd.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "nowhere', which does not exist" in err


# The README's commands ----------------------------------------------------------------------------

def readme_continue_commands() -> list[str]:
    """The command lines of the README's "Continue fine-tuning" part, in order."""
    text = (ROOT / "README.md").read_text()
    part = text.split("### Continue fine-tuning", 1)[1].split("\n#", 1)[0]
    return [line.strip() for line in part.splitlines() if line.startswith("python -m ner_core ")]


def test_readme_continue_commands_run_on_tiny_data(parent, replay_dir, corrections, tmp_path,
                                                   capfd):
    """Each command, with the tiny parent for ``default``, tiny data for the corrections and for
    CoNLL-2003, and runs written under ``tmp_path``."""
    commands = readme_continue_commands()
    assert [shlex.split(c)[3] for c in commands][:1] == ["train"]
    assert any("--replay" in c and "--base-model default" in c for c in commands)
    stand_ins = {"default": str(parent), "../shared/data/conll2003": str(replay_dir),
                 "corrections": str(corrections)}
    for command in commands:
        args = [stand_ins.get(arg, arg) for arg in shlex.split(command)[3:]]
        args = [str(tmp_path / arg) if arg.startswith("runs/") else arg for arg in args]
        assert cli.main(args) == 0, f"{command}\n{capfd.readouterr().err}"
    card = (tmp_path / "runs" / "adapted" / "README.md").read_text()
    assert f"Continued fine-tuning of the trained model `{parent}`" in card
    assert f"drawn from `{replay_dir}`" in card
