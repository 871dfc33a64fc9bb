"""Raw text -> paragraphs, sentences and words, as offsets into the original string."""

from __future__ import annotations

import pytest

from ner_core.text import paragraphs, segment, sentences, split_words


def assert_covers_every_character(text, spans):
    """Spans in order, none overlapping, none holding whitespace, together all non-space text."""
    assert all(a < b for a, b in spans)
    assert all(b <= a2 for (_, b), (a2, _) in zip(spans, spans[1:]))
    assert not any(c.isspace() for a, b in spans for c in text[a:b])
    assert "".join(text[a:b] for a, b in spans) == "".join(text.split())


@pytest.mark.parametrize("text, expected", [
    pytest.param("I \u2764 Berlin \U0001F600!", [(0, 1), (2, 3), (4, 10), (11, 12), (12, 13)], id="emoji"),
    pytest.param("Kyoto\U0001F5FC\U0001F600 trip", [(0, 5), (5, 6), (6, 7), (8, 12)], id="emoji after a word"),
    pytest.param("Jose\u0301 Mu\u0308ller", [(0, 5), (6, 13)], id="decomposed accents"),
    pytest.param("e\u0301te\u0301 \u00e9t\u00e9", [(0, 5), (6, 9)], id="decomposed and composed"),
    pytest.param("\u6771\u4eac\u3001\u5927\u962a\u3002", [(0, 2), (2, 3), (3, 5), (5, 6)], id="CJK"),
    pytest.param("Anna   Weber  visited", [(0, 4), (7, 12), (14, 21)], id="repeated spaces"),
    pytest.param("Anna\tWeber\n\nvisited\r\n Berlin", [(0, 4), (5, 10), (12, 19), (22, 28)],
                 id="tabs and newlines"),
    pytest.param("\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd", [(0, 4), (5, 9)], id="Hebrew"),
    pytest.param("\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645.",
                 [(0, 5), (6, 13), (13, 14)], id="Arabic"),
    pytest.param("Anna \u0642\u0627\u0644\u062a: Berlin", [(0, 4), (5, 9), (9, 10), (11, 17)],
                 id="left-to-right and right-to-left"),
    pytest.param("  AT&T 1996-08-22 U.S. ", [(2, 6), (7, 17), (18, 21), (21, 22)], id="CoNLL words"),
    pytest.param("Siemens' CEO", [(0, 7), (7, 8), (9, 12)], id="apostrophe"),
    pytest.param("", [], id="empty"),
    pytest.param(" \t\n ", [], id="whitespace only"),
])
def test_split_words_offsets(text, expected):
    spans = split_words(text)
    assert spans == expected
    assert_covers_every_character(text, spans)


@pytest.mark.parametrize("text", [
    "\U0001F44D\U0001F3FD fine \U0001F1E9\U0001F1EA",  # skin tone, flag
    "\U0001F468\u200d\U0001F469\u200d\U0001F467 family",  # joined with ZWJ
    "\u2764\ufe0f Berlin",  # variation selector
    "caf\u00e9 cafe\u0301 na\u0131\u0308ve",
    "\u5317\u4eac\u5e02 \ud55c\uad6d\uc5b4 \u3068\u3046\u304d\u3087\u3046",
    "\u0645\u0631\u062d\u0628\u0627\u060c \u05e9\u05dc\u05d5\u05dd!",
    "a\u00a0b\u2003c\u3000d",  # no-break, em and ideographic spaces
])
def test_split_words_covers_every_character(text):
    assert_covers_every_character(text, split_words(text))


def test_split_words_between_offsets_keeps_absolute_offsets():
    text = "Anna Weber \U0001F600 visited Berlin."
    spans = split_words(text, 5, 27)
    assert [text[a:b] for a, b in spans] == ["Weber", "\U0001F600", "visited", "Berlin"]
    assert spans[0] == (5, 10)


@pytest.mark.parametrize("text, expected", [
    ("One.\n\nTwo.", ["One.", "Two."]),
    ("  One.\n   \n\n Two\nlines.  \n", ["One.", "Two\nlines."]),
    ("One.\r\n\r\nTwo.\r\n", ["One.", "Two."]),
    ("A\n\t\nB\n \t \n\nC", ["A", "B", "C"]),
    ("One line\nand another", ["One line\nand another"]),
    ("\n\nOnly.\n\n", ["Only."]),
    ("", []),
    ("\n \n\t\n", []),
])
def test_paragraphs(text, expected):
    spans = paragraphs(text)
    assert [text[a:b] for a, b in spans] == expected


def test_paragraph_offsets():
    text = "First one.\n\n   Second\tone.\n"
    assert paragraphs(text) == [(0, 10), (15, 26)]


def read(text):
    return [" ".join(text[a:b] for a, b in sentence) for sentence in sentences(text, split_words(text))]


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith flew to Paris. He met Dr. Jones! Then home",
     ["Mr . Smith flew to Paris .", "He met Dr . Jones !", "Then home"]),
    ("Mr. Smith and Mrs. Lopez met Prof. Weber in St. Louis. They talked.",
     ["Mr . Smith and Mrs . Lopez met Prof . Weber in St . Louis .", "They talked ."]),
    ("J. K. Rowling wrote it. She smiled.", ["J . K . Rowling wrote it .", "She smiled ."]),
    ("George W. Bush spoke. Anna listened.", ["George W . Bush spoke .", "Anna listened ."]),
    ("MR. SMITH arrived. He sat.", ["MR . SMITH arrived .", "He sat ."]),
    ("Is it? Yes. Really!", ["Is it ?", "Yes .", "Really !"]),
    ("Is it? yes it is.", ["Is it ? yes it is ."]),  # no capital after: no break
    ('It rained. "Go home," he said.', ["It rained .", '" Go home , " he said .']),
    ("It ended. (Reuters)", ["It ended .", "( Reuters )"]),
    ("No full stop at the end", ["No full stop at the end"]),
    ("", []),
])
def test_sentences(text, expected):
    assert read(text) == expected


def test_segment_is_paragraphs_of_sentences_of_words():
    text = "Anna met Mr. Weber. He left.\n\nIn Kyoto."
    assert [[[text[a:b] for a, b in s] for s in paragraph] for paragraph in segment(text)] == [
        [["Anna", "met", "Mr", ".", "Weber", "."], ["He", "left", "."]],
        [["In", "Kyoto", "."]],
    ]
