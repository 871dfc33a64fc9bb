"""Hugging Face datasets: saved folders, Parquet and JSON Lines read with their ClassLabel names or
string tags, Hub ids refused offline, and what is written reads back the same."""

import json
import re

import datasets
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from ner_core import hub
from ner_core.errors import UserError
from ner_core.formats import Example, Report, Span, align, huggingface, read_splits
from ner_core.labels import label_list


def entities(examples):
    return [(e.text[s.start:s.end], s.label) for e in examples for s in e.spans]


def rows_dataset(rows, names=None, column="ner_tags"):
    """A Dataset of (tokens, tags) rows; ClassLabel ids when ``names`` is given."""
    tag_feature = Value("string") if names is None else ClassLabel(names=names)
    features = Features({"tokens": Sequence(Value("string")), column: Sequence(tag_feature)})
    tags = [[t if names is None else names.index(t) for t in r[1]] for r in rows]
    return Dataset.from_dict({"tokens": [r[0] for r in rows], column: tags}, features=features)


ROWS = [(["Anna", "Weber", "left", "Lagos"], ["B-PER", "I-PER", "O", "B-LOC"]),
        (["Omar", "met", "Li"], ["B-PER", "O", "B-PER"])]
EXPECTED = [("Anna Weber", "PER"), ("Lagos", "LOC"), ("Omar", "PER"), ("Li", "PER")]
NAMES = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]  # not CoNLL-2003's order: ids must be kept


def read(path, **options):
    report = Report(path.name, "huggingface")
    return huggingface.read(path, report, **options), report


def test_a_saved_dataset_is_read_with_its_class_label_names(tmp_path):
    rows_dataset(ROWS, NAMES).save_to_disk(str(tmp_path / "saved"))
    examples, report = read(tmp_path / "saved")
    assert entities(examples) == EXPECTED
    assert examples[0].text == "Anna Weber left Lagos" and examples[0].sentence
    assert [e.where() for e in examples] == ["saved, record 1", "saved, record 2"]
    assert report.records == 2 and report.format == "huggingface (IOB2)"
    assert huggingface.label_names(tmp_path / "saved") == NAMES


def test_a_dataset_dict_is_read_by_split_with_the_studio_names(tmp_path):
    DatasetDict({"train": rows_dataset(ROWS), "dev": rows_dataset(ROWS[:1]),
                 "test": rows_dataset(ROWS[1:])}).save_to_disk(str(tmp_path / "dd"))
    report = Report("dd", "huggingface")
    splits = huggingface.read_splits(tmp_path / "dd", report)
    assert {s: len(e) for s, e in splits.items()} == {"train": 2, "validation": 1, "test": 1}
    assert splits["validation"][0].where() == "dd/dev, record 1"
    assert report.records == 4


@pytest.mark.parametrize("splits, message", [
    (["train", "extra"], r"expected splits named train, validation \(or valid, dev, val\) and "
                         r"test, found train, extra"),
    (["train", "dev", "valid"], r"expected one validation split, found dev and valid"),
])
def test_split_names_outside_the_usual_are_refused(tmp_path, splits, message):
    DatasetDict({s: rows_dataset(ROWS) for s in splits}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "dd")) + ": " + message):
        huggingface.read_splits(tmp_path / "dd", Report("dd", "huggingface"))


@pytest.mark.parametrize("names, scheme", [
    (["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"], "BIOES"),
    (["O", "I-PER", "B-PER", "I-LOC", "B-LOC"], "IOB1"),
])
def test_other_schemes_are_read_as_iob2_with_iob2_names(tmp_path, names, scheme):
    rows = [(["Anna", "Weber", "left", "Lagos"],
             ["B-PER", "E-PER", "O", "S-LOC"] if scheme == "BIOES" else ["I-PER", "I-PER", "O",
                                                                          "I-LOC"])]
    rows_dataset(rows, names).save_to_disk(str(tmp_path / "saved"))
    examples, report = read(tmp_path / "saved")
    assert entities(examples) == [("Anna Weber", "PER"), ("Lagos", "LOC")]
    assert report.format == f"huggingface ({scheme})"
    assert set(huggingface.label_names(tmp_path / "saved")) == {
        "O", "B-PER", "I-PER", "B-LOC", "I-LOC"}


def test_string_tags_in_another_column_are_found_or_chosen(tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [{"tokens": t, "ner": ["O"] * len(t), "tags": g} for t, g in ROWS]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    examples, _ = read(path)
    assert entities(examples) == EXPECTED  # "tags" comes before "ner"
    assert [e.where() for e in examples] == ["rows.jsonl:1", "rows.jsonl:2"]
    chosen, _ = read(path, tag_column="ner")
    assert entities(chosen) == []
    assert huggingface.label_names(path) is None


def test_an_empty_row_is_counted_and_left_out(tmp_path):
    rows_dataset([ROWS[0], ([], []), ROWS[1]]).to_parquet(str(tmp_path / "d.parquet"))
    examples, report = read(tmp_path / "d.parquet")
    assert [e.record for e in examples] == [0, 2]
    assert report.counts == {"empty text": 1} and report.records == 3
    assert report.cases["empty text"][0]["where"] == "d.parquet, record 2"


BAD_ROWS = {
    "integer tags without names": ('{"tokens": ["Anna"], "ner_tags": [1]}\n',
                                   r":1: expected tag names for the ids in 'ner_tags' \(a "
                                   r"ClassLabel feature"),
    "fewer tags than tokens": ('{"tokens": ["Anna"], "ner_tags": ["O"]}\n'
                               '{"tokens": ["Anna", "left"], "ner_tags": ["O"]}\n',
                               r":2: expected 2 tags in 'ner_tags', one a token, found 1 tags"),
    "tag outside every scheme": ('{"tokens": ["Anna"], "tags": ["PERSON"]}\n',
                                 r":1: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found 'PERSON'"),
    "broken BIOES": ('{"tokens": ["Anna"], "tags": ["S-PER"]}\n'
                     '{"tokens": ["Anna", "Weber"], "tags": ["B-PER", "O"]}\n',
                     r":2: expected I-PER or E-PER after B-PER \(BIOES\), found 'O' \(tag 2 of "
                     r"the row\)"),
    "no tokens column": ('{"words": ["Anna"], "tags": ["O"]}\n',
                         r": expected a column 'tokens' \(the words of each row\), found words, "
                         r"tags"),
    "no tag column": ('{"tokens": ["Anna"], "pos": ["NN"]}\n',
                      r": expected a tag column named one of ner_tags, tags, ner, labels, "
                      r"ner_labels \(or one named with tag_column\), found tokens, pos"),
    "an empty token": ('{"tokens": ["Anna", ""], "tags": ["O", "O"]}\n',
                       r":1: expected 'tokens' as a list of non-empty strings"),
    "malformed JSON": ('{"tokens": ["Anna"], "tags": ["O"]}\n{"tokens": [\n',
                       r":2: expected a JSON object, found invalid JSON"),
    "empty file": ("", r": expected rows of tokens and tags, one JSON object a line, found an "
                       r"empty file"),
}


@pytest.mark.parametrize("content, message", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_rows_are_refused_with_where_they_are(tmp_path, content, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(str(path)) + message):
        read(path)


def test_a_chosen_tag_column_that_is_not_there_is_refused(tmp_path):
    rows_dataset(ROWS).to_parquet(str(tmp_path / "d.parquet"))
    with pytest.raises(UserError, match=r"d.parquet: expected the tag column 'ner', found tokens, "
                                        r"ner_tags"):
        read(tmp_path / "d.parquet", tag_column="ner")


def test_a_folder_not_saved_by_datasets_is_refused(tmp_path):
    with pytest.raises(UserError, match=re.escape(f"{tmp_path}: expected a folder saved by "
                                                  "datasets' save_to_disk")):
        read(tmp_path)


FIXTURE = [
    Example("Anna Weber met the Nordbank board in Lagos.",
            [Span(0, 10, "PER"), Span(19, 27, "ORG"), Span(37, 42, "LOC")]),
    Example("Li Wei praised the Berliners today.", [Span(19, 25, "LOC")], doc_id=1),
    Example("The University of Oslo hired Maria Lopez.",
            [Span(4, 22, "ORG"), Span(18, 22, "LOC"), Span(29, 40, "PER")], doc_id=1),
    Example("Jan Novak bought a Fjord 3000.", [Span(0, 9, "PER"), Span(19, 29, "PRODUCT")],
            doc_id=2),
]


@pytest.mark.parametrize("name", ["saved", "d.parquet", "d.jsonl"])
def test_round_trip_keeps_the_aligned_entities_and_documents(tmp_path, name):
    report = Report("fixture", "test")
    examples = align(FIXTURE, report)
    assert report.counts == {"widened": 1, "overlap": 1}
    huggingface.write(examples, tmp_path / name)
    back, _ = read(tmp_path / name)
    assert entities(align(back, Report(name, "huggingface"))) == entities(examples)
    assert [e.doc_id for e in back] == [0, 1, 1, 2]
    tags = {f"{p}-{t}" for t in ("PER", "ORG", "LOC", "PRODUCT") for p in "BI"} | {"O"}
    expected_names = None if name.endswith(".jsonl") else label_list(tags)
    assert huggingface.label_names(tmp_path / name) == expected_names


def test_writing_a_folder_replaces_the_one_there(tmp_path):
    examples = align(FIXTURE[:1], Report("fixture", "test"))
    huggingface.write(align(FIXTURE, Report("fixture", "test")), tmp_path / "saved")
    huggingface.write(examples, tmp_path / "saved")
    assert len(read(tmp_path / "saved")[0]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]


def test_to_dataset_keeps_given_label_ids_and_refuses_tags_outside_them():
    examples = {"train": align(FIXTURE[:1], Report("f", "t")),
                "test": align(FIXTURE[1:2], Report("f", "t"))}
    names = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    dataset = huggingface.to_dataset(examples, labels=names)
    assert dataset["train"].features["ner_tags"].feature.names == names
    assert dataset["test"]["ner_tags"][0] == [0, 0, 0, 0, 1, 0, 0]
    with pytest.raises(UserError, match="expected the data's tags among the labels O, B-LOC, "
                                        "I-LOC, found B-ORG, B-PER"):
        huggingface.to_dataset(examples, labels=names[:3])


def test_the_dataset_card_counts_sentences_and_entities():
    dataset = huggingface.to_dataset({"train": align(FIXTURE, Report("f", "t")),
                                      "test": align(FIXTURE[:1], Report("f", "t"))})
    card = huggingface.dataset_card(dataset, "anna/invented-ner")
    assert card.startswith("---\ntask_categories:\n- token-classification\n")
    assert 'pretty_name: "anna/invented-ner"\nsize_categories:\n- n<1K\n' in card
    assert "| train | 4 | 8 |\n| test | 1 | 3 |\n" in card
    assert "| type | train | test |\n| --- | ---: | ---: |\n| LOC | 2 | 1 |\n| ORG | 2 | 1 |\n" in card
    assert "| PRODUCT | 1 | 0 |" in card


@pytest.mark.parametrize("first, expected", [
    ({"tokens": ["Anna"], "ner_tags": [1]}, True),
    ({"tokens": [], "tags": []}, True),
    ({"text": "Anna", "tokens": [{"text": "Anna", "start": 0, "end": 4}], "spans": []}, False),
    ({"text": "Anna", "label": [[0, 4, "PER"]]}, False),
])
def test_looks_like_json_rows(tmp_path, first, expected):
    assert huggingface.looks_like(tmp_path / "x.jsonl", json.dumps(first) + "\n") is expected


def test_looks_like_saved_folders_and_parquet(tmp_path):
    rows_dataset(ROWS).save_to_disk(str(tmp_path / "saved"))
    rows_dataset(ROWS).to_parquet(str(tmp_path / "d.parquet"))
    Dataset.from_dict({"text": ["Anna"]}).to_parquet(str(tmp_path / "texts.parquet"))
    (tmp_path / "fake.parquet").write_text("not parquet")
    assert huggingface.looks_like(tmp_path / "saved", "")
    assert huggingface.looks_like(tmp_path / "d.parquet", "")
    assert not huggingface.looks_like(tmp_path / "texts.parquet", "")
    assert not huggingface.looks_like(tmp_path / "fake.parquet", "")
    assert not huggingface.looks_like(tmp_path, "")


def test_a_hub_dataset_is_refused_offline_in_one_sentence():
    with pytest.raises(UserError, match=r"^the dataset anna/invented-ner must come from the "
                                        r"Hugging Face Hub, which cannot be reached from here "
                                        r"\(no network or HF_HUB_OFFLINE=1\); save it with "):
        huggingface.read_hub("anna/invented-ner", Report("anna/invented-ner", "huggingface"))


def test_a_hub_dataset_is_read_by_split_through_load_dataset(monkeypatch):
    asked = []

    def load_dataset(repo_id, config=None, revision=None):
        asked.append((repo_id, config, revision))
        return DatasetDict({"train": rows_dataset(ROWS, NAMES),
                            "validation": rows_dataset(ROWS[:1], NAMES)})

    monkeypatch.setattr(hub, "require_hub", lambda what, instead: None)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    splits, report = read_splits("anna/invented-ner", data_config="en")
    assert asked == [("anna/invented-ner", "en", None)]
    assert {s: entities(e) for s, e in splits.items()} == {"train": EXPECTED,
                                                           "validation": EXPECTED[:2]}
    assert splits["validation"][0].where() == "anna/invented-ner/validation, record 1"
    assert report.records == 3 and report.entities_kept == 6


def test_hub_label_names_are_refused_offline_too():
    with pytest.raises(UserError, match=r"^the dataset anna/invented-ner must come from the "
                                        r"Hugging Face Hub"):
        huggingface.label_names("anna/invented-ner")


def test_hub_label_names_come_from_the_builder_and_a_missing_dataset_is_said(monkeypatch):
    class Builder:
        class info:
            features = rows_dataset(ROWS, NAMES).features

    def missing(*args, **kwargs):
        raise datasets.exceptions.DatasetNotFoundError("Dataset 'anna/gone' doesn't exist")

    monkeypatch.setattr(hub, "require_hub", lambda what, instead: None)
    monkeypatch.setattr(datasets, "load_dataset_builder", lambda *a, **k: Builder)
    assert huggingface.label_names("anna/invented-ner") == NAMES
    monkeypatch.setattr(datasets, "load_dataset", missing)
    with pytest.raises(UserError, match=r"^anna/gone: expected a dataset of the Hub this token may "
                                        r"read, found none \(Dataset 'anna/gone' doesn't exist\)"):
        huggingface.read_hub("anna/gone", Report("anna/gone", "huggingface"))
