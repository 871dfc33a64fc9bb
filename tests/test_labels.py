"""Tag schemes: IOB1 -> IOB2, spotting IOB1, label sets and entity spans."""

from __future__ import annotations

import pytest

from ner_core.labels import (CONLL2003_LABELS, entity_types, iob1_to_iob2, is_valid_tag,
                             label_list, spans, starts_entity_iob1)


@pytest.mark.parametrize("iob1, iob2", [
    ([], []),
    (["O", "O"], ["O", "O"]),
    (["I-PER"], ["B-PER"]),
    (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
    # B- in IOB1 only separates two adjacent entities of one type: it stays.
    (["I-PER", "I-PER", "B-PER", "I-PER"], ["B-PER", "I-PER", "B-PER", "I-PER"]),
    # A change of type starts a new entity.
    (["I-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),
    (["O", "I-ORG", "O", "I-ORG"], ["O", "B-ORG", "O", "B-ORG"]),
    (["I-MISC", "I-MISC", "I-MISC"], ["B-MISC", "I-MISC", "I-MISC"]),
    # IOB2 input comes back unchanged.
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
    (["B-LOC", "B-LOC", "I-LOC"], ["B-LOC", "B-LOC", "I-LOC"]),
    # Types with a hyphen keep all of it.
    (["I-DATE-TIME", "I-DATE-TIME"], ["B-DATE-TIME", "I-DATE-TIME"]),
])
def test_iob1_to_iob2(iob1, iob2):
    assert iob1_to_iob2(iob1) == iob2


def test_iob1_to_iob2_is_idempotent():
    tags = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    once = iob1_to_iob2(tags)
    assert iob1_to_iob2(once) == once
    assert tags == ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]  # input left alone


@pytest.mark.parametrize("tags, expected", [
    ([], False),
    (["O", "O"], False),
    (["B-PER", "I-PER", "O"], False),
    (["B-PER", "B-PER", "I-PER"], False),
    (["I-PER"], True),
    (["O", "I-LOC"], True),
    (["B-PER", "I-LOC"], True),  # I- after another type begins an entity
    (["B-ORG", "I-ORG", "O", "I-ORG"], True),
])
def test_starts_entity_iob1(tags, expected):
    assert starts_entity_iob1(tags) is expected


@pytest.mark.parametrize("tag, valid", [
    ("O", True), ("B-PER", True), ("I-MISC", True), ("B-DATE-TIME", True),
    ("0", False), ("B-", False), ("I-", False), ("PER", False), ("o", False), ("E-PER", False),
    ("B PER", False), ("", False),
])
def test_is_valid_tag(tag, valid):
    assert is_valid_tag(tag) is valid


@pytest.mark.parametrize("tags", [
    set(CONLL2003_LABELS),
    {"O"},
    {"O", "B-PER", "I-PER"},
    {"B-MISC"},
    {"I-ORG", "O", "B-LOC"},
])
def test_label_list_conll_subset_gets_hub_order(tags):
    assert label_list(tags) == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC",
                                "B-MISC", "I-MISC"]


@pytest.mark.parametrize("tags, expected", [
    ({"O", "B-DRUG"}, ["O", "B-DRUG", "I-DRUG"]),
    ({"I-DRUG"}, ["O", "B-DRUG", "I-DRUG"]),
    ({"O", "B-PER", "B-DRUG", "I-GENE"},
     ["O", "B-DRUG", "I-DRUG", "B-GENE", "I-GENE", "B-PER", "I-PER"]),
    ({"B-ZOO", "B-ANIMAL", "I-ZOO"}, ["O", "B-ANIMAL", "I-ANIMAL", "B-ZOO", "I-ZOO"]),
])
def test_label_list_other_sets_are_alphabetical(tags, expected):
    assert label_list(tags) == expected


def test_entity_types_in_label_order():
    assert entity_types(CONLL2003_LABELS) == ["PER", "ORG", "LOC", "MISC"]
    assert entity_types(["O", "B-DRUG", "I-DRUG", "B-GENE", "I-GENE"]) == ["DRUG", "GENE"]


@pytest.mark.parametrize("tags, expected", [
    ([], []),
    (["O", "O"], []),
    (["B-PER"], [("PER", 0, 1)]),
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["O", "B-ORG", "I-ORG", "I-ORG"], [("ORG", 1, 4)]),  # an entity at the end of the sentence
    (["B-LOC", "B-LOC"], [("LOC", 0, 1), ("LOC", 1, 2)]),
    (["B-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),
    # An I- after O starts an entity, as in seqeval's default mode (conlleval).
    (["O", "I-MISC", "I-MISC"], [("MISC", 1, 3)]),
    (["B-PER", "I-PER", "O", "I-LOC", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5)]),
])
def test_spans(tags, expected):
    assert spans(tags) == expected
