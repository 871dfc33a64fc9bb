"""Cases that once went wrong, kept so they stay right."""

import pytest

from ner_core.data import read_conll
from ner_core.features import windows_for_sentences
from ner_core.metrics import score
from ner_core.text import sentences, split_words


@pytest.mark.parametrize("text, n_sentences", [
    ("He met them (in Lagos). Then he left.", 2),
    ('She said "no". Then he left.', 2),
    ("He scored 3. Then he left.", 2),
    ("J. K. Rowling wrote it. Then she left.", 2),
])
def test_sentence_ends_after_brackets_quotes_and_digits(text, n_sentences):
    assert len(sentences(text, split_words(text))) == n_sentences


@pytest.mark.parametrize("word", ["مُحَمَّد", "שָׁלוֹם", "हिन्दी", "❤️", "👩\u200d👩\u200d👧", "Cafe\u0301"])
def test_combining_marks_and_emoji_joiners_stay_in_their_word(word):
    text = f"x {word} y"
    assert [text[a:b] for a, b in split_words(text)] == ["x", word, "y"]


def test_conll_lines_break_only_at_newlines(tmp_path):
    path = tmp_path / "odd.txt"
    path.write_text("Anna B-PER\nWe\u2028ber I-PER\n10\u00a0000 O\nvisited X\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"odd.txt:4: expected a tag"):
        read_conll(path)


def test_score_refuses_nothing_to_score():
    with pytest.raises(ValueError, match="at least one tagged word"):
        score([[]], [[]])


def test_label_all_tokens_needs_label_names(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    with pytest.raises(ValueError, match="label_all_tokens needs"):
        windows_for_sentences(tokenizer, [["zyx"]], [0], 16, False, 0, labels=[[1]],
                              label_all_tokens=True)
