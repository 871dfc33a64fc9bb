"""Recognizer on tiny untrained models: the shape of its answers, not their quality.

Labels of an untrained model are arbitrary, so exact entities are pinned only with models whose
classifier bias makes one label win every word (``biased_model``).
"""

from __future__ import annotations

import random

import pytest

from ner_core import Recognizer
from ner_core.errors import UserError
from ner_core.text import segment, split_words
from ner_core.quantize import Int8Linear

ENTITY_KEYS = {"start", "end", "label", "score", "text"}

AWKWARD_TEXTS = {
    "plain": "anna weber visited berlin with omar haddad.",
    "emoji": "anna weber 👩‍🔬 visited berlin 🇩🇪 today 😀! 👍🏽 nordbank ❤️ lagos",
    "decomposed accents": "Jose\u0301 Mari\u0301a visited Sa\u0303o Paulo and Zu\u0308rich.",
    "cjk": "李伟在东京见了安娜。 anna weber visited 北京. 東京タワー と ソウル",
    "whitespace": "anna   weber\n\n\n  visited \t\t berlin\n\n\n\nomar  haddad .\r\n\r\n  lima  ",
    "right to left": "عمر حداد زار برلين. שלום anna weber \u200fמ\u200e lagos.",
    "control characters": "anna\x00weber\x07 visited\x1b berlin\x0b\x0c omar\x7f haddad\x01.",
    "zero-width joiners": "anna\u200dweber visited\u200d\u200d berlin \u200d omar\u200c haddad \u2060.",
    "marks and invisibles": "\ufeff\u0301anna \ufe0f \u00ad weber\u0301\u0301 \u200b berlin",
    "one word of 300 sub-tokens": "x " + "-".join(["anna"] * 150) + " y",
    "one word of 5000 letters": "x " + "a" * 5000 + " y",
}

# Sentences of vocabulary words (see conftest.vocabulary), so every word has a sub-token.
WORDS = ["anna", "weber", "omar", "haddad", "visited", "met", "the", "nordbank", "in", "berlin",
         "lagos", "with", "german", "group", "report", "said", "today", "globex", "kyoto"]


def long_text(n_words: int = 3000, seed: int = 0) -> str:
    """Paragraphs of sentences of vocabulary words, plus one sentence far longer than a window."""
    rng = random.Random(seed)
    paragraphs, total = [], 0
    while total < n_words:
        sentences = []
        for _ in range(rng.randint(3, 8)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(5, 25))]
            sentences.append(" ".join(words).capitalize() + ".")
            total += len(words) + 1
        paragraphs.append(" ".join(sentences))
    # No sentence break in 400 words: one sentence that needs several windows.
    paragraphs.insert(len(paragraphs) // 2, " ".join(rng.choice(WORDS) for _ in range(400)))
    return "\n\n".join(paragraphs)


LONG_TEXT = long_text()


@pytest.fixture(scope="module")
def long_entities():
    """``long_entities(recognizer)``: the entities of ``LONG_TEXT``, computed once per model."""
    found: list[tuple[Recognizer, list[dict]]] = []  # holding each recognizer keeps its id unique

    def recognize(recognizer: Recognizer) -> list[dict]:
        for known, entities in found:
            if known is recognizer:
                return entities
        found.append((recognizer, recognizer.recognize(LONG_TEXT)))
        return found[-1][1]

    return recognize


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for paragraph in text.split("\n\n"):
        spans.append((start, start + len(paragraph)))
        start += len(paragraph) + 2
    return spans


def assert_well_formed(text: str, entities: list[dict]) -> None:
    """The entity contract of DESIGN.md: keys, exact text, sorted, disjoint, whole words."""
    words = split_words(text)
    starts, ends = {a for a, _ in words}, {b for _, b in words}
    for entity in entities:
        assert set(entity) == ENTITY_KEYS
        assert isinstance(entity["start"], int) and isinstance(entity["end"], int)
        assert 0 <= entity["start"] < entity["end"] <= len(text)
        assert entity["text"] == text[entity["start"]:entity["end"]]
        assert isinstance(entity["label"], str) and entity["label"]
        assert not entity["label"].startswith(("B-", "I-"))
        assert 0.0 <= entity["score"] <= 1.0
        assert entity["start"] in starts, f"{entity} starts inside a word"
        assert entity["end"] in ends, f"{entity} ends inside a word"
    for before, after in zip(entities, entities[1:]):
        assert before["start"] < after["start"], "entities are not sorted by start"
        assert before["end"] <= after["start"], f"{before} overlaps {after}"


@pytest.fixture(scope="module")
def biased_model(tmp_path_factory, tiny_bert, tiny_distilbert):
    """``biased_model(family, label, runner_up=None)``: a tiny model whose classifier bias makes
    ``label`` win (and ``runner_up`` come second, far above the rest)."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    made = {}

    def make(family: str, label: str, runner_up: str | None = None):
        if (family, label, runner_up) not in made:
            source = tiny_bert if family == "bert" else tiny_distilbert
            model = AutoModelForTokenClassification.from_pretrained(source)
            with torch.no_grad():
                model.classifier.weight.zero_()
                model.classifier.bias.fill_(-20.0)
                model.classifier.bias[model.config.label2id[label]] = 20.0
                if runner_up is not None:
                    model.classifier.bias[model.config.label2id[runner_up]] = 10.0
            directory = tmp_path_factory.mktemp(f"biased-{family}-{label}")
            model.save_pretrained(directory)
            AutoTokenizer.from_pretrained(source).save_pretrained(directory)
            made[family, label, runner_up] = directory
        return made[family, label, runner_up]

    return make


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def recognizer(family, tiny_bert, tiny_distilbert) -> Recognizer:
    return Recognizer(str(tiny_bert if family == "bert" else tiny_distilbert))


@pytest.fixture(scope="module")
def every_word_per(family, biased_model) -> Recognizer:
    """Tags every word B-PER: every word with a sub-token is an entity of its own."""
    return Recognizer(str(biased_model(family, "B-PER")))


@pytest.fixture(scope="module")
def every_word_inside(family, biased_model) -> Recognizer:
    """Scores every word I-PER first and B-PER second: the most probable IOB2 sequence of every
    sentence is one entity, B-PER then I-PER (a one-word sentence is B-PER)."""
    return Recognizer(str(biased_model(family, "I-PER", "B-PER")))


@pytest.mark.parametrize("text", AWKWARD_TEXTS.values(), ids=AWKWARD_TEXTS.keys())
def test_entities_are_well_formed(recognizer, text):
    assert_well_formed(text, recognizer.recognize(text))


def tokenized_words(recognizer: Recognizer, text: str, words: list[tuple[int, int]]):
    """The words the model reads: those with at least one sub-token (a lone ZWJ has none)."""
    return [(a, b) for a, b in words
            if recognizer.tokenizer(text[a:b], add_special_tokens=False)["input_ids"]]


@pytest.mark.parametrize("text", AWKWARD_TEXTS.values(), ids=AWKWARD_TEXTS.keys())
def test_every_word_the_model_reads_is_an_entity(every_word_per, text):
    entities = every_word_per.recognize(text)
    assert_well_formed(text, entities)
    assert {e["label"] for e in entities} == {"PER"}
    assert all(e["score"] == pytest.approx(1.0) for e in entities)
    expected = tokenized_words(every_word_per, text, split_words(text))
    assert [(e["start"], e["end"]) for e in entities] == expected
    # Letters and digits always have a sub-token.
    assert all((a, b) in expected for a, b in split_words(text) if text[a:b].isalnum())


@pytest.mark.parametrize("text", AWKWARD_TEXTS.values(), ids=AWKWARD_TEXTS.keys())
def test_every_sentence_is_one_entity(every_word_inside, text):
    entities = every_word_inside.recognize(text)
    assert_well_formed(text, entities)
    expected = []
    for paragraph in segment(text):
        for sentence in paragraph:
            read = tokenized_words(every_word_inside, text, sentence)
            if read:
                expected.append((read[0][0], read[-1][1]))
    assert [(e["start"], e["end"]) for e in entities] == expected


def test_tags_are_the_most_probable_iob2_sequence(every_word_inside):
    # I-PER wins every word, but no entity may begin with I-: the first word is B-PER.
    assert every_word_inside.tag([["anna", "weber", "visited"], ["lima"]]) == [
        ["B-PER", "I-PER", "I-PER"], ["B-PER"]]
    # Read word by word, the same model says I-PER everywhere.
    per_word = Recognizer(every_word_inside.source.location, decoding="per-word")
    assert per_word.tag([["anna", "weber"], ["lima"]]) == [["I-PER", "I-PER"], ["I-PER"]]
    with pytest.raises(UserError, match="decoding must be one of iob2, per-word, found 'viterbi'"):
        Recognizer(every_word_inside.source.location, decoding="viterbi")


def test_long_text_every_word_is_predicted(every_word_per, long_entities):
    text = LONG_TEXT
    assert len(text.split()) >= 3000
    entities = long_entities(every_word_per)
    assert_well_formed(text, entities)
    assert [(e["start"], e["end"]) for e in entities] == split_words(text)
    # Far past the first 128 tokens: the last words of the text are entities too.
    assert entities[-1]["end"] == len(text)
    assert entities[-1]["text"] == "."
    assert entities[-2]["end"] == len(text) - 1


def test_long_sentence_is_one_entity_across_windows(every_word_inside, long_entities):
    text = LONG_TEXT
    entities = long_entities(every_word_inside)
    assert_well_formed(text, entities)
    sentences = [s for p in segment(text) for s in p]
    assert [(e["start"], e["end"]) for e in entities] == [(s[0][0], s[-1][1]) for s in sentences]
    longest = max(entities, key=lambda e: e["end"] - e["start"])
    assert len(longest["text"].split()) == 400, "a sentence longer than a window was cut"


def test_paragraph_alone_equals_paragraph_in_long_text(recognizer, long_entities):
    text = LONG_TEXT
    everything = long_entities(recognizer)
    assert_well_formed(text, everything)
    spans = paragraph_spans(text)
    for a, b in (spans[1], spans[len(spans) // 2], spans[-1]):
        alone = recognizer.recognize(text[a:b])
        inside = [e for e in everything if a <= e["start"] and e["end"] <= b]
        assert alone, "an untrained model tags most words; this paragraph got none"
        assert [(e["start"] + a, e["end"] + a, e["label"], e["text"]) for e in alone] == \
               [(e["start"], e["end"], e["label"], e["text"]) for e in inside]
        assert [e["score"] for e in alone] == pytest.approx([e["score"] for e in inside], abs=1e-3)


def test_recognize_batch_equals_recognize_per_text(recognizer):
    texts = [*AWKWARD_TEXTS.values(), "", "   \n ", long_text(200, seed=3)]
    batch = recognizer.recognize_batch(texts)
    assert len(batch) == len(texts)
    for text, entities in zip(texts, batch):
        alone = recognizer.recognize(text)
        assert [(e["start"], e["end"], e["label"], e["text"]) for e in entities] == \
               [(e["start"], e["end"], e["label"], e["text"]) for e in alone]
        assert [e["score"] for e in entities] == pytest.approx([e["score"] for e in alone], abs=1e-3)


def test_threshold_keeps_entities_scored_at_least_it(recognizer, long_entities):
    text = LONG_TEXT
    everything = long_entities(recognizer)
    scores = sorted({e["score"] for e in everything})
    assert len(scores) > 2
    # Half-way between two scores, so rounding to 4 decimals cannot move an entity across it.
    threshold = (scores[len(scores) // 2] + scores[len(scores) // 2 + 1]) / 2
    kept = recognizer.recognize(text, threshold=threshold)
    assert kept == [e for e in everything if e["score"] >= threshold]
    assert 0 < len(kept) < len(everything)
    short = AWKWARD_TEXTS["plain"]
    assert recognizer.recognize(short, threshold=0.0) == recognizer.recognize(short)
    assert recognizer.recognize(short, threshold=1.0) == []  # no untrained model is that sure


@pytest.mark.parametrize("threshold", [-0.01, 1.01, 2, -1, float("nan"), float("inf")])
def test_threshold_outside_unit_interval_is_refused(recognizer, threshold):
    with pytest.raises(ValueError, match=r"threshold must be between 0 and 1, found"):
        recognizer.recognize("anna weber visited berlin.", threshold=threshold)
    with pytest.raises(ValueError, match=r"threshold must be between 0 and 1"):
        recognizer.recognize_batch(["anna"], threshold=threshold)


def test_text_longer_than_max_text_chars_is_refused(tiny_bert):
    recognizer = Recognizer(str(tiny_bert), max_text_chars=50)
    assert_well_formed("a" * 50, recognizer.recognize("a" * 50))
    with pytest.raises(ValueError, match=r"text 0: expected at most 50 characters, found 51"):
        recognizer.recognize("a" * 51)
    with pytest.raises(ValueError, match=r"text 1: expected at most 50 characters, found 1,000; split it"):
        recognizer.recognize_batch(["anna", "b" * 1000])


@pytest.mark.parametrize("value", [None, 42, b"anna weber", ["anna"]])
def test_text_that_is_not_a_string_is_refused(recognizer, value):
    with pytest.raises(ValueError, match=r"text 0: expected a string, found"):
        recognizer.recognize(value)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t", "\u200d\u200b", "\x00"])
def test_empty_text_has_no_entities(recognizer, text):
    assert recognizer.recognize(text) == []


def test_recognize_batch_of_nothing(recognizer):
    assert recognizer.recognize_batch([]) == []


def test_labels_are_the_models_labels(recognizer):
    assert recognizer.labels == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC",
                                 "B-MISC", "I-MISC"]
    assert recognizer.max_length == 128  # min(default 256, max_position_embeddings)


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_fast_precisions_find_the_same_entities_on_every_awkward_text(family, biased_model,
                                                                       precision):
    import torch

    directory = str(biased_model(family, "B-PER"))
    plain = Recognizer(directory, precision="float32")
    fast = Recognizer(directory, precision=precision)
    assert (plain.precision, fast.precision) == ("float32", precision)
    layers = [m for m in fast.model.modules() if type(m) is torch.nn.Linear]
    if precision == "int8":
        assert layers == [fast.model.classifier]  # kept in float32
        quantized = [m for m in fast.model.modules() if isinstance(m, Int8Linear)]
        assert len(quantized) == sum(type(m) is torch.nn.Linear for m in plain.model.modules()) - 1
    else:
        assert {m.weight.dtype for m in layers} == {torch.bfloat16}
    texts = [*AWKWARD_TEXTS.values(), LONG_TEXT]
    for text, expected, got in zip(texts, plain.recognize_batch(texts), fast.recognize_batch(texts)):
        assert_well_formed(text, got)
        assert [(e["start"], e["end"], e["label"]) for e in got] == \
               [(e["start"], e["end"], e["label"]) for e in expected]


def test_int8_mode_is_refused_off_the_cpu(tiny_bert):
    with pytest.raises(ValueError, match="int8 quantization runs on the CPU, found device cuda"):
        Recognizer(str(tiny_bert), device="cuda", precision="int8")


def test_unknown_precision_is_refused(tiny_bert):
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16, int8, found 'fp8'"):
        Recognizer(str(tiny_bert), precision="fp8")


def test_a_model_trained_on_every_subtoken_reads_every_subtoken(tiny_bert, tmp_path):
    from live_app import make_run

    from ner_core import TrainConfig
    from ner_core.features import windows_for_sentences
    from ner_core.inference import pooled

    run = make_run(tmp_path, "all", tiny_bert)
    config = TrainConfig.load(run / "train_config.json")
    config.label_all_tokens = True
    (run / "train_config.json").write_text(config.to_json())
    first, every = Recognizer(str(tiny_bert)), Recognizer(str(run))
    assert (first.every_subtoken, every.every_subtoken) == (False, True)
    words = ["anna", "weberstrasse", "visited", "berlin"]
    widths = [len(first.tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words]
    assert widths[0] == 1 and widths[1] > 1  # one word of one sub-token, one of several
    [as_first], [as_every] = first.word_probabilities([words]), every.word_probabilities([words])
    for word, width, a, b in zip(words, widths, as_first, as_every):
        assert a == pytest.approx(b) if width == 1 else a != pytest.approx(b), word
        assert sum(b) == pytest.approx(1.0)
    # What the several sub-tokens of a word said, pooled: each type's mass is their mean.
    window = windows_for_sentences(first.tokenizer, [words], [0], 64, False, 0)
    [(_, probabilities)] = list(first._probabilities(window))
    rows = probabilities[0].tolist()[2:2 + widths[1]]  # [CLS] anna, then the long word
    assert as_every[1] == pytest.approx(pooled(rows, every._pairs))
