"""Distillation: a run learns from the averaged predictions of trained teachers (``distill.py``)."""

from __future__ import annotations

import pytest
from conftest import make_sentences, write_conll, write_splits

from ner_core import Recognizer, TrainConfig, cli, evaluate, fine_tune, load_data
from ner_core.distill import teacher_targets

TINY = dict(epochs=3, train_batch_size=8, learning_rate=1e-3, max_length=64, logging_steps=2,
            eval_strategy="no")
SWAP = {"PER": "ORG", "ORG": "PER"}


def swapped(sentences):
    """The sentences with PER and ORG tags exchanged: gold labels a teacher contradicts."""
    out = []
    for sentence in sentences:
        out.append([(word, tag if tag == "O" else tag[:2] + SWAP.get(tag[2:], tag[2:]))
                    for word, tag in sentence])
    return out


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    return (write_splits(tmp_path_factory.mktemp("true")),
            write_splits(tmp_path_factory.mktemp("swapped"), swapped))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_bert, data_dirs):
    output = tmp_path_factory.mktemp("teacher") / "run"
    fine_tune(TrainConfig(base_model=str(tiny_bert), **TINY), load_data(data_dirs[0]), output)
    return output


def test_teacher_targets_are_the_averaged_word_probabilities(teacher, data_dirs):
    split = load_data(data_dirs[0])["test"]
    labels = split.features["ner_tags"].feature.names
    recognizer = Recognizer(str(teacher))
    words = recognizer.word_probabilities(list(split["tokens"]), list(split["doc_id"]))
    tags = recognizer.tag(list(split["tokens"]), list(split["doc_id"]))
    for sentence, sentence_tags in zip(words, tags):
        for probabilities, tag in zip(sentence, sentence_tags):
            assert sum(probabilities) == pytest.approx(1, abs=1e-4)
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            assert recognizer.labels[best] == tag
    # Two copies of one teacher average to its own probabilities, reordered to the data's labels.
    averaged = teacher_targets([str(teacher), str(teacher)], split, labels)
    order = [recognizer.labels.index(label) for label in labels]
    assert averaged[0][0] == pytest.approx([words[0][0][i] for i in order], abs=1e-5)


def test_a_distilled_run_follows_its_teacher_over_wrong_gold_labels(teacher, data_dirs, tiny_bert,
                                                                     tmp_path):
    # The training labels call every person an organisation and the reverse; the teacher knows
    # better. A run that learns only from the teacher tags people as people; one that learns from
    # the labels, as organisations.
    data = load_data(data_dirs[1])
    f1 = {}
    for share in (0.0, 1.0):
        config = TrainConfig(base_model=str(tiny_bert), distillation=share, **TINY)
        fine_tune(config, data, tmp_path / str(share), teachers=[str(teacher)] if share else None)
        scores = evaluate(Recognizer(str(tmp_path / str(share))), data["test"])
        f1[share] = scores["per_entity"]["PER"]["f1"]
    assert f1[1.0] > 0.8 and f1[0.0] < 0.2, f1


def test_the_card_names_the_teachers_and_its_rebuild_line_distils_again(teacher, data_dirs,
                                                                        tiny_bert, tmp_path):
    run = tmp_path / "student"
    code = cli.main(["train", "--base-model", str(tiny_bert), "--data", str(data_dirs[0]),
                     "--output", str(run), "--teacher", str(teacher), "--distillation", "0.5",
                     "--epochs", "1", "--learning-rate", "1e-3", "--max-length", "64"])
    assert code == 0
    card = (run / "README.md").read_text()
    assert f"50% of the loss matched the averaged predictions of `{teacher}`" in card
    rebuild = card.split("## Rebuild")[1].split("```bash\n")[1].split("\n```")[0]
    assert f"--teacher {teacher}" in rebuild and "--distillation 0.5" in rebuild
    # The line builds the same run again, over the old one.
    args = rebuild.split()[3:]
    assert cli.main(args + ["--overwrite"]) == 0
    again = (run / "README.md").read_text()
    assert again.split("## Rebuild")[1] == card.split("## Rebuild")[1]


@pytest.mark.parametrize("flags, message", [
    (["--teacher", "TEACHER"], "teachers given (TEACHER) but distillation is 0"),
    (["--distillation", "0.5"], "distillation is 0.5 but no teacher model is given"),
    (["--teacher", "TEACHER", "--distillation", "0.5", "--label-smoothing", "0.1"],
     "label_smoothing is 0.1 with teachers"),
])
def test_settings_that_cannot_distil_are_refused_before_anything_is_read(
        flags, message, tiny_bert, teacher, tmp_path, capsys):
    flags = [str(teacher) if flag == "TEACHER" else flag for flag in flags]
    message = message.replace("TEACHER", str(teacher))
    code = cli.main(["train", "--base-model", str(tiny_bert), "--data", str(tmp_path / "absent"),
                     "--output", str(tmp_path / "run"), "--max-length", "64", *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_teacher_of_other_labels_is_refused_by_name(tiny_bert, data_dirs, teacher, tmp_path):
    # A teacher that learned EVENT where the data has MISC cannot say what MISC words are.
    events = [[(w, t.replace("MISC", "EVENT")) for w, t in s] for s in make_sentences(120, seed=1)]
    other = tmp_path / "other"
    other.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        write_conll(other / name, events, docs=3)
    fine_tune(TrainConfig(base_model=str(tiny_bert), **{**TINY, "epochs": 1}), load_data(other),
              tmp_path / "events")
    config = TrainConfig(base_model=str(tiny_bert), distillation=0.5, **TINY)
    with pytest.raises(ValueError, match=r"teacher .*events predicts the labels .*B-EVENT.*; "
                                         r"expected the data's labels .*B-MISC"):
        fine_tune(config, load_data(data_dirs[0]), tmp_path / "refused",
                  teachers=[str(tmp_path / "events")])
    assert not (tmp_path / "refused").exists()
