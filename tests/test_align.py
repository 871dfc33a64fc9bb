"""Spans onto words: every change counted, every refusal naming the record."""

import pytest

from ner_core.errors import UserError
from ner_core.formats import Example, Report, Span, align, from_sentences, to_sentences
from ner_core.data import Sentence


def aligned(text, spans, **options):
    report = Report("t.jsonl", "doccano")
    [example] = align([Example(text, spans, line=7, source="t.jsonl")], report, **options)
    return [(text[s.start:s.end], s.label) for s in example.spans], report


@pytest.mark.parametrize("text, spans, kept, change", [
    ("Anna met Berliners.", [Span(9, 15, "LOC")], [("Berliners", "LOC")], "widened"),
    ("Anna met them", [Span(0, 5, "PER")], [("Anna", "PER")], "trimmed"),
    ("Anna   met", [Span(4, 7, "PER")], [], "no words"),
    ("New York Times", [Span(0, 8, "LOC"), Span(0, 14, "ORG")], [("New York Times", "ORG")],
     "overlap"),
    ("New York Times", [Span(4, 14, "ORG"), Span(0, 8, "LOC")], [("New York", "LOC")],
     "overlap"),  # as long as each other: the earlier is kept
    ("Anna met Bob", [Span(0, 4, "PER"), Span(0, 4, "PER")], [("Anna", "PER")], "duplicate"),
])
def test_each_change_is_counted_with_where_it_was(text, spans, kept, change):
    found, report = aligned(text, spans)
    assert found == kept
    assert report.counts == {change: 1}
    assert report.cases[change][0]["where"] == "t.jsonl:7"
    assert report.entities_read == len(spans) and report.entities_kept == len(kept)


def test_a_type_outside_the_label_set_is_dropped_and_listed():
    found, report = aligned("Anna met Bob", [Span(0, 4, "PER"), Span(9, 12, "ALIEN")],
                            labels={"PER", "LOC"})
    assert found == [("Anna", "PER")]
    assert report.counts["unknown type"] == 1
    assert "ALIEN 'Bob'" in report.cases["unknown type"][0]["detail"]
    assert report.types == {"PER": 1}


@pytest.mark.parametrize("spans, option, message", [
    ([Span(9, 15, "LOC")], {"cut": "refuse"}, r"t.jsonl:7: expected spans on whole words, found "
                                              r"'Berlin' \(LOC\) inside 'Berliners'"),
    ([Span(0, 8, "ORG"), Span(5, 15, "LOC")], {"overlap": "refuse"},
     r"t.jsonl:7: expected spans apart from each other"),
    ([Span(3, 40, "LOC")], {}, r"t.jsonl:7: expected a span with 0 <= start < end <= 19 "
                               r"\(the text's length\), found 3-40 \(LOC\)"),
    ([Span(5, 5, "LOC")], {}, r"found 5-5"),
    ([Span(0, 4, "NEW PLACE")], {}, r"expected an entity type without spaces, found 'NEW PLACE'"),
    ([], {"cut": "shrink"}, r"expected a way to treat spans that cut a word \(widen, refuse\)"),
])
def test_refusals_name_the_record_and_what_was_expected(spans, option, message):
    with pytest.raises(UserError, match=message):
        aligned("Anna met Berliners.", spans, **option)


def test_the_file_words_are_kept_split_at_spaces_and_whitespace_words_counted():
    report = Report("d.spacy", "spacy")
    text = "New York\n\nis big"
    example = Example(text, [Span(0, 8, "LOC")], words=[(0, 8), (8, 10), (10, 12), (13, 16)])
    [done] = align([example], report)
    assert done.words == [(0, 3), (4, 8), (10, 12), (13, 16)]
    assert report.counts["whitespace word"] == 1
    # A blank line ends a paragraph, so a sentence.
    assert [s.tags for s in to_sentences([done])] == [["B-LOC", "I-LOC"], ["O", "O"]]


def test_sentences_are_split_but_joined_where_an_entity_crosses():
    text = "He joined U.S. Steel. Then he left. Paris was next."
    [example] = align([Example(text, [Span(10, 20, "ORG"), Span(36, 41, "LOC")])],
                      Report("x", "doccano"))
    sentences = to_sentences([example])
    assert [" ".join(s.tokens) for s in sentences] == [
        "He joined U.S . Steel .", "Then he left .", "Paris was next ."]
    assert sentences[0].tags == ["O", "O", "B-ORG", "I-ORG", "I-ORG", "O"]


def test_sentences_round_trip_through_examples_whole():
    sentences = [Sentence(["Mr", ".", "Smith", "left", ".", "Then", "Anna"],
                          ["O", "O", "B-PER", "O", "O", "O", "B-PER"], 3, 12)]
    examples = align(from_sentences(sentences, "a.conll"), Report("a.conll", "conll"))
    [back] = to_sentences(examples)
    assert (back.tokens, back.tags, back.doc_id, back.line) == (
        sentences[0].tokens, sentences[0].tags, 3, 12)
