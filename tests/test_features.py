"""Words -> windows: sub-token label alignment, long sentences, document context, and back to tags."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

from conftest import make_sentences
from ner_core.features import (IGNORE, b_to_i_ids, build_windows, case_flags, context_groups,
                               special_tokens, windows_for_sentences, word_pieces)
from ner_core.labels import CONLL2003_LABELS

LABEL_ID = {label: i for i, label in enumerate(CONLL2003_LABELS)}
ID2LABEL = dict(enumerate(CONLL2003_LABELS))


@pytest.fixture
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def labelled_windows(tokenizer, sentences, tags, doc_ids=None, max_length=32, document_context=False,
                     context_tokens=8, label_all_tokens=False):
    return windows_for_sentences(
        tokenizer, sentences, list(range(len(sentences))) if doc_ids is None else doc_ids, max_length,
        document_context, context_tokens,
        labels=[[LABEL_ID[t] for t in sentence] for sentence in tags],
        label_names=CONLL2003_LABELS, label_all_tokens=label_all_tokens)


def tokens_of(tokenizer, window) -> list[str]:
    return tokenizer.convert_ids_to_tokens(window.input_ids)


def labels_of(window) -> list[str | int]:
    return [IGNORE if i == IGNORE else ID2LABEL[i] for i in window.labels]


def test_words_outside_the_vocabulary_split_into_letters(tokenizer):
    pieces = word_pieces(tokenizer, [["zyx", "Berlin"], ["qw"]])
    assert [[tokenizer.convert_ids_to_tokens(p) for p in words] for words in pieces] == [
        [["z", "##y", "##x"], ["berlin"]], [["q", "##w"]]]


def test_word_pieces_of_nothing(tokenizer):
    assert word_pieces(tokenizer, []) == []
    assert word_pieces(tokenizer, [["a", "\u200b", "b"]])[0][1] == []  # a word with no sub-tokens


def test_special_tokens_are_cls_and_sep(tokenizer):
    assert special_tokens(tokenizer) == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])


def test_label_on_first_sub_token_only(tokenizer):
    [window] = labelled_windows(tokenizer, [["anna", "zyx", "visited", "qw"]],
                                [["B-PER", "I-PER", "O", "B-LOC"]])
    assert tokens_of(tokenizer, window) == ["[CLS]", "anna", "z", "##y", "##x", "visited", "q", "##w", "[SEP]"]
    assert labels_of(window) == [IGNORE, "B-PER", "I-PER", IGNORE, IGNORE, "O", "B-LOC", IGNORE, IGNORE]
    assert window.owned == [(0, 0, 1), (0, 1, 2), (0, 2, 5), (0, 3, 6)]


def test_label_all_tokens_turns_b_into_i_after_the_first(tokenizer):
    [window] = labelled_windows(tokenizer, [["zyx", "qw", "zz", "kyx"]],
                                [["B-PER", "I-PER", "O", "B-MISC"]], label_all_tokens=True)
    assert tokens_of(tokenizer, window) == ["[CLS]", "z", "##y", "##x", "q", "##w", "z", "##z",
                                            "k", "##y", "##x", "[SEP]"]
    assert labels_of(window) == [IGNORE, "B-PER", "I-PER", "I-PER", "I-PER", "I-PER", "O", "O",
                                 "B-MISC", "I-MISC", "I-MISC", IGNORE]


@pytest.mark.parametrize("labels, expected", [
    (CONLL2003_LABELS, {1: 2, 3: 4, 5: 6, 7: 8}),
    (["O", "B-DRUG", "I-DRUG", "B-GENE", "I-GENE"], {1: 2, 3: 4}),
    (["O", "B-ONLY"], {1: 1}),  # no I- label: the B- id stays
    (["O"], {}),
])
def test_b_to_i_ids(labels, expected):
    assert b_to_i_ids(labels) == expected


def test_both_families_run_on_windows(tiny_model, tokenizer):
    family = AutoConfig.from_pretrained(tiny_model).model_type
    # DistilBERT has no segment embeddings, and its tokenizer gives no token_type_ids.
    assert ("token_type_ids" in tokenizer("anna weber")) is (family == "bert")
    sentences = [[w for w, _ in s] for s in make_sentences(4, seed=7)] + [["zyx"] * 30]
    windows = windows_for_sentences(tokenizer, sentences, [0, 0, 1, 1, 2], 24, True, 4)
    assert len(windows) > len(sentences)  # the last sentence needs several windows
    width = max(len(w.input_ids) for w in windows)
    input_ids = torch.tensor([w.input_ids + [tokenizer.pad_token_id] * (width - len(w.input_ids))
                              for w in windows])
    attention_mask = (input_ids != tokenizer.pad_token_id).long()
    model = AutoModelForTokenClassification.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    assert logits.shape == (len(windows), width, len(CONLL2003_LABELS))
    tags = tags_from_windows(windows, logits.argmax(-1).tolist(), sentences, model.config.id2label)
    assert [len(t) for t in tags] == [len(s) for s in sentences]
    assert {tag for sentence in tags for tag in sentence} <= set(CONLL2003_LABELS)


def invented_sentences():
    """Short sentences, one long one, words of many sub-tokens and one of none, in three docs."""
    sentences = [list(s) for s in make_sentences(6, seed=8)]
    sentences[1] = [("zyxwvutsrq", "B-ORG"), ("kq", "I-ORG")] + sentences[1]
    sentences[3] = sentences[3] + [("\u200b", "O")]
    sentences.insert(4, [(w, "B-LOC" if i % 7 == 0 else "O") for i, w in
                         enumerate(["oslo", "zyx", "the", "quebec", "lima", "qqqq"] * 8)])
    words = [[w for w, _ in s] for s in sentences]
    tags = [[t for _, t in s] for s in sentences]
    return words, tags, [0, 0, 0, 1, 1, 1, 2]


@pytest.mark.parametrize("max_length, context_tokens, document_context", [
    (128, 16, True), (128, 0, True), (32, 8, True), (16, 4, True), (16, 4, False), (8, 2, True),
    (5, 1, True), (3, 0, False),
])
def test_window_invariants(tokenizer, max_length, context_tokens, document_context):
    sentences, tags, doc_ids = invented_sentences()
    pieces = word_pieces(tokenizer, sentences)
    windows = labelled_windows(tokenizer, sentences, tags, doc_ids, max_length, document_context,
                               context_tokens)
    budget = max_length - 2
    owners = {}
    for number, window in enumerate(windows):
        assert len(window.input_ids) <= max_length
        assert window.input_ids[0] == tokenizer.cls_token_id
        assert window.input_ids[-1] == tokenizer.sep_token_id
        assert len(window.labels) == len(window.input_ids)
        labelled = {position for position, label in enumerate(window.labels) if label != IGNORE}
        assert labelled == {position for _, _, position in window.owned}
        for s, w, position in window.owned:
            owners.setdefault((s, w), []).append(number)
            word = pieces[s][w][:budget]
            assert window.input_ids[position:position + len(word)] == word
            assert window.labels[position] == LABEL_ID[tags[s][w]]
    with_pieces = {(s, w) for s, words in enumerate(pieces) for w, p in enumerate(words) if p}
    assert set(owners) == with_pieces
    assert all(len(numbers) == 1 for numbers in owners.values())


def test_long_sentence_windows_overlap(tokenizer):
    words = ["anna", "weber", "visited", "berlin", "with", "omar", "haddad", "in", "lagos", "today"] * 3
    tags = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-PER", "I-PER", "O", "B-LOC", "O"] * 3]
    ids = [tokenizer.convert_tokens_to_ids(w) for w in words]
    windows = labelled_windows(tokenizer, [words], tags, max_length=16, context_tokens=4)
    assert len(windows) > 1
    owned_ranges = []
    for number, window in enumerate(windows):
        inner = window.input_ids[1:-1]
        owned = [w for _, w, _ in window.owned]
        assert owned == list(range(owned[0], owned[-1] + 1))
        owned_ranges.append((owned[0], owned[-1] + 1))
        left = owned[0] - (window.owned[0][2] - 1)
        right = left + len(inner)
        assert inner == ids[left:right]  # the words just before and after, in order
        if number > 0:
            assert left < owned[0]
        if number < len(windows) - 1:
            assert right > owned[-1] + 1
        context = [p for p in range(1, len(window.input_ids) - 1)
                   if left + p - 1 not in range(owned[0], owned[-1] + 1)]
        assert context and all(window.labels[p] == IGNORE for p in context)
    assert owned_ranges[0][0] == 0 and owned_ranges[-1][1] == len(words)
    assert all(a[1] == b[0] for a, b in zip(owned_ranges, owned_ranges[1:]))


DOCUMENT = [["anna", "weber", "visited", "berlin"], ["omar", "haddad", "met", "li", "wei"],
            ["the", "report", "."], ["kyoto", "talks"]]


def test_document_context_reads_neighbours_of_the_same_document(tokenizer):
    tags = [["O"] * len(s) for s in DOCUMENT]
    windows = labelled_windows(tokenizer, DOCUMENT, tags, [0, 0, 0, 1], max_length=64,
                               document_context=True, context_tokens=8)
    assert [tokens_of(tokenizer, w)[1:-1] for w in windows] == [
        ["anna", "weber", "visited", "berlin", "omar", "haddad", "met", "li", "wei", "the", "report", "."],
        ["anna", "weber", "visited", "berlin", "omar", "haddad", "met", "li", "wei", "the", "report", "."],
        ["weber", "visited", "berlin", "omar", "haddad", "met", "li", "wei", "the", "report", "."],
        ["kyoto", "talks"],  # another document: no context across the boundary
    ]
    assert [[w for _, w, _ in window.owned] for window in windows] == [[0, 1, 2, 3], [0, 1, 2, 3, 4],
                                                                      [0, 1, 2], [0, 1]]
    assert [{s for s, _, _ in window.owned} for window in windows] == [{0}, {1}, {2}, {3}]
    # Only the sentence a window owns is labelled.
    assert [sum(label != IGNORE for label in w.labels) for w in windows] == [4, 5, 3, 2]
    second = windows[1]
    assert second.labels[1:5] == [IGNORE] * 4  # context from the sentence before
    assert second.labels[10:13] == [IGNORE] * 3  # and after


@pytest.mark.parametrize("document_context, context_tokens", [(False, 8), (True, 0)])
def test_no_document_context(tokenizer, document_context, context_tokens):
    windows = windows_for_sentences(tokenizer, DOCUMENT, [0, 0, 0, 1], 64, document_context,
                                    context_tokens)
    assert [tokens_of(tokenizer, w) for w in windows] == [["[CLS]", *s, "[SEP]"] for s in DOCUMENT]
    assert all(w.labels is None for w in windows)


@pytest.mark.parametrize("doc_ids, document_context, expected", [
    ([], True, []),
    ([0, 0, 1, 1, 1], True, [[0, 1], [2, 3, 4]]),
    ([0, 0], False, [[0], [1]]),
    ([7, 7, 7], True, [[0, 1, 2]]),
    ([7, 7, 7], False, [[0], [1], [2]]),
    ([0, 1, 0], True, [[0], [1], [2]]),  # one id again later is another stretch of text
    ([0, 1, 2], True, [[0], [1], [2]]),
])
def test_context_groups(doc_ids, document_context, expected):
    assert context_groups(doc_ids, document_context) == expected


def tags_from_windows(windows, predictions, sentences, id2label):
    """Word tags from each window's predictions at the positions of the words it owns."""
    tags = [["O"] * len(words) for words in sentences]
    for window, predicted in zip(windows, predictions):
        for s, w, position in window.owned:
            tags[s][w] = id2label[int(predicted[position])]
    return tags


@pytest.mark.parametrize("max_length", [128, 16, 6])
def test_tags_from_windows_round_trip(tokenizer, max_length):
    sentences, tags, doc_ids = invented_sentences()
    windows = labelled_windows(tokenizer, sentences, tags, doc_ids, max_length, True, 4)
    # Predict each window's own labels, and a label no word has wherever nothing is owned.
    predictions = [[LABEL_ID["I-MISC"] if label == IGNORE else label for label in w.labels] for w in windows]
    assert tags_from_windows(windows, predictions, sentences, ID2LABEL) == tags


def test_tags_from_windows_tags_a_word_without_sub_tokens_o(tokenizer):
    sentences = [["anna", "\u200b", "berlin"]]
    [window] = windows_for_sentences(tokenizer, sentences, [0], 16, False, 0)
    assert [w for _, w, _ in window.owned] == [0, 2]
    predicted = [[LABEL_ID["B-LOC"]] * len(window.input_ids)]
    assert tags_from_windows([window], predicted, sentences, ID2LABEL) == [["B-LOC", "O", "B-LOC"]]


def test_no_sentences_no_windows(tokenizer):
    assert windows_for_sentences(tokenizer, [], [], 16, True, 4) == []


@pytest.mark.parametrize("max_length", [2, 1, 0])
def test_max_length_without_room_for_a_token(max_length):
    with pytest.raises(ValueError, match=f"max_length must leave room for a token, found {max_length}"):
        build_windows([[[5]]], [[0]], max_length, ([2], [3]), 0)


def test_case_feature_marks_every_sub_token_of_capitalised_words(tokenizer):
    sentences = [["Angela", "met", "xqzv"], ["in", "PARIS", "today"]]
    windows = windows_for_sentences(tokenizer, sentences, [0, 0], 64, True, 16, case_feature=True)
    assert len(windows) == 2
    for window in windows:
        assert len(window.token_type_ids) == len(window.input_ids)
        assert window.token_type_ids[0] == window.token_type_ids[-1] == 0  # [CLS] and [SEP]
    # The first window reads the second sentence as context: its flags come along.
    pieces = word_pieces(tokenizer, sentences)
    expected = [0]
    for sentence, flags in zip(pieces, case_flags(sentences)):
        for word, flag in zip(sentence, flags):
            expected += [flag] * len(word)
    assert windows[0].token_type_ids == expected + [0]
    assert sum(windows[0].token_type_ids) == len(pieces[0][0]) + len(pieces[1][1])


def test_without_case_feature_windows_carry_no_token_types(tokenizer):
    windows = windows_for_sentences(tokenizer, [["Angela", "met", "Paris"]], [0], 64, False, 16)
    assert windows[0].token_type_ids is None


@pytest.mark.parametrize("max_length, context_tokens", [(8, 2), (12, 4), (32, 8)])
def test_case_feature_in_long_sentence_windows(tokenizer, max_length, context_tokens):
    sentences = [[w.capitalize() if i % 3 == 0 else w for i, (w, _) in enumerate(s)]
                 for s in make_sentences(6, seed=5)]
    windows = windows_for_sentences(tokenizer, sentences, [0] * 6, max_length, True,
                                    context_tokens, case_feature=True)
    pieces = word_pieces(tokenizer, sentences)
    flags = case_flags(sentences)
    for window in windows:
        assert len(window.token_type_ids) == len(window.input_ids) <= max_length
        for s, w, position in window.owned:
            n = len(pieces[s][w][:max_length - 2])
            assert window.token_type_ids[position:position + n] == [flags[s][w]] * n
