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


def test_half_saves_float16_weights_that_load_as_float32(tiny_bert, conll_dir, tmp_path):
    from safetensors import safe_open

    from ner_core import Recognizer, TrainConfig, fine_tune, load_data

    config = TrainConfig(base_model=str(tiny_bert), epochs=1, train_batch_size=8, max_length=64,
                         learning_rate=1e-3)
    result = fine_tune(config, load_data(conll_dir), tmp_path / "half", half=True)
    with safe_open(str(tmp_path / "half" / "model.safetensors"), "pt") as weights:
        assert {str(weights.get_tensor(k).dtype) for k in weights.keys()} == {"torch.float16"}
    assert result.metrics["training"]["weights"] == "float16"
    recognizer = Recognizer(str(tmp_path / "half"), precision="float32")
    assert next(recognizer.model.parameters()).dtype.is_floating_point
    assert str(next(recognizer.model.parameters()).dtype) == "torch.float32"
    assert "validation" in result.metrics


def test_a_cached_hub_model_resolves_offline(tmp_path, monkeypatch):
    """A Hub model in the local cache is usable with no network; an uncached one is refused."""
    from ner_core import hub, models

    monkeypatch.setattr(hub, "is_cached", lambda repo_id: repo_id == "owner/cached")
    assert models.resolve("owner/cached") == models.ModelSource("owner/cached", "hub", "owner/cached")
    with pytest.raises(ValueError, match="cannot be reached"):
        models.resolve("owner/absent")
