"""Fixtures: tiny BERT and DistilBERT models built from configs, a tiny WordPiece vocabulary, and
CoNLL files of invented sentences. Nothing here touches the network or the real corpus."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ner_core.labels import CONLL2003_LABELS  # noqa: E402

# The ``spaces`` double is loaded by the tests that use it, never collected: collecting its module
# for doctests would put it on sys.path as ``spaces`` for every test after it.
collect_ignore = ["spaces_double"]

PEOPLE = ["anna weber", "omar haddad", "li wei", "maria lopez", "jan novak", "ines costa"]
ORGS = ["acme corp", "nordbank", "globex", "united metals"]
PLACES = ["berlin", "lagos", "kyoto", "lima", "oslo", "quebec"]
MISC = ["german", "olympic", "nobel"]
VERBS = ["visited", "met", "left", "praised", "joined"]
FILLER = ["the", "a", "in", "on", "with", "said", "today", "talks", "group", "report", "."]


def _entity(words: str, kind: str) -> list[tuple[str, str]]:
    parts = words.split()
    return [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(parts)]


def make_sentences(n: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    """Invented, learnable sentences: PER verb ORG/LOC, with MISC and filler words."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        sentence = _entity(rng.choice(PEOPLE), "PER") + [(rng.choice(VERBS), "O")]
        if rng.random() < 0.5:
            sentence += [("the", "O")] + _entity(rng.choice(ORGS), "ORG")
        else:
            sentence += [("in", "O")] + _entity(rng.choice(PLACES), "LOC")
        if rng.random() < 0.3:
            sentence += [("with", "O")] + _entity(rng.choice(MISC), "MISC") + [("group", "O")]
        sentence.append((".", "O"))
        sentences.append(sentence)
    return sentences


def write_conll(path: Path, sentences, docs: int = 2, columns: int = 4) -> Path:
    """Write sentences as CoNLL, split into ``docs`` documents with -DOCSTART- lines."""
    lines = []
    per_doc = max(1, len(sentences) // docs)
    for i, sentence in enumerate(sentences):
        if i % per_doc == 0:
            lines += ["-DOCSTART- -X- -X- O" if columns == 4 else "-DOCSTART- O", ""]
        for word, tag in sentence:
            lines.append(f"{word} NN B-NP {tag}" if columns == 4 else f"{word} {tag}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def vocabulary() -> list[str]:
    words = {w for group in (PEOPLE, ORGS, PLACES, MISC) for name in group for w in name.split()}
    words |= set(VERBS) | set(FILLER) | {"paris", "merkel", "angela", "siemens"}
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    punctuation = list(".,;:!?'\"()-&/")
    return specials + punctuation + list(letters) + [f"##{c}" for c in letters] + sorted(words)


@pytest.fixture(scope="session")
def vocab_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocabulary()) + "\n")
    return path


def _save_tiny_model(directory: Path, family: str, vocab_file: Path) -> Path:
    import torch
    from transformers import (BertConfig, BertForTokenClassification, BertTokenizerFast,
                              DistilBertConfig, DistilBertForTokenClassification,
                              DistilBertTokenizerFast)

    torch.manual_seed(0)
    labels = dict(enumerate(CONLL2003_LABELS))
    label2id = {v: k for k, v in labels.items()}
    size = len(vocabulary())
    if family == "bert":
        config = BertConfig(vocab_size=size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=37, max_position_embeddings=128, id2label=labels,
                            label2id=label2id)
        model, tokenizer = BertForTokenClassification(config), BertTokenizerFast(str(vocab_file))
    else:
        config = DistilBertConfig(vocab_size=size, dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                                  max_position_embeddings=128, id2label=labels, label2id=label2id)
        model, tokenizer = DistilBertForTokenClassification(config), DistilBertTokenizerFast(str(vocab_file))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, vocab_file) -> Path:
    return _save_tiny_model(tmp_path_factory.mktemp("tiny-bert"), "bert", vocab_file)


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory, vocab_file) -> Path:
    return _save_tiny_model(tmp_path_factory.mktemp("tiny-distilbert"), "distilbert", vocab_file)


@pytest.fixture(params=["bert", "distilbert"])
def tiny_model(request, tiny_bert, tiny_distilbert) -> Path:
    return tiny_bert if request.param == "bert" else tiny_distilbert


@pytest.fixture
def conll_dir(tmp_path) -> Path:
    """train.txt / valid.txt / test.txt of invented sentences."""
    write_conll(tmp_path / "train.txt", make_sentences(120, seed=1), docs=6)
    write_conll(tmp_path / "valid.txt", make_sentences(30, seed=2), docs=3)
    write_conll(tmp_path / "test.txt", make_sentences(30, seed=3), docs=3)
    return tmp_path


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch) -> Path:
    """Every test saves runs into its own directory."""
    directory = tmp_path / "runs"
    monkeypatch.setenv("NER_RUNS_DIR", str(directory))
    return directory


@pytest.fixture(scope="module")
def biased_model(tmp_path_factory, tiny_bert) -> Path:
    """A tiny BERT whose answers are known: every word I-ORG, so each sentence is one ORG entity."""
    from live_app import TINY_LABEL, label_winning_copy

    return label_winning_copy(tiny_bert, tmp_path_factory.mktemp("biased") / "model", TINY_LABEL)


@pytest.fixture
def biased(runs_dir, biased_model) -> str:
    """The saved run ``biased``: ``biased_model`` in this test's runs directory."""
    from live_app import make_run

    make_run(runs_dir, "biased", biased_model)
    return "biased"


@pytest.fixture
def untrained(runs_dir, tiny_bert) -> str:
    """The saved run ``untrained``: the tiny BERT as initialised, with varied labels and scores."""
    from live_app import make_run

    make_run(runs_dir, "untrained", tiny_bert)
    return "untrained"
