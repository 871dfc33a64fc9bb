"""Fixtures: tiny BERT and DistilBERT models built from configs, a tiny WordPiece vocabulary, and
CoNLL files of invented sentences; the session's servers (``python app.py`` in each configuration
the tests need) and its one Chromium. Nothing here touches the network or the real corpus."""

from __future__ import annotations

import os
import random
import subprocess
import uuid
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ner_core.labels import CONLL2003_LABELS  # noqa: E402

# The ``spaces`` double is loaded by the tests that use it, never collected: collecting its module
# for doctests would put it on sys.path as ``spaces`` for every test after it.
collect_ignore = ["spaces_double"]
SPACES_DOUBLE = Path(__file__).resolve().parent / "spaces_double"
# The Hub token in the environment of ``app_server``: the security tests check it never leaves.
SERVER_TOKEN = f"hf_secret{uuid.uuid4().hex}"

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


def write_splits(directory: Path, change=lambda sentences: sentences) -> Path:
    """train.txt / valid.txt / test.txt of invented sentences; ``change`` rewrites the training
    sentences (the held-out ones stay true)."""
    write_conll(directory / "train.txt", change(make_sentences(120, seed=1)), docs=6)
    write_conll(directory / "valid.txt", make_sentences(30, seed=2), docs=3)
    write_conll(directory / "test.txt", make_sentences(30, seed=3), docs=3)
    return directory


@pytest.fixture
def conll_dir(tmp_path) -> Path:
    """train.txt / valid.txt / test.txt of invented sentences."""
    return write_splits(tmp_path)


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch) -> Path:
    """Every test saves runs into its own directory."""
    directory = tmp_path / "runs"
    monkeypatch.setenv("NER_RUNS_DIR", str(directory))
    return directory


@pytest.fixture(scope="module")
def biased_model(tmp_path_factory, tiny_bert) -> Path:
    """A tiny BERT whose answers are known: every word I-ORG first, so each sentence is one ORG entity."""
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


# The session's servers ---------------------------------------------------------------------------
# Each starts once, on first use, and serves every module that needs its configuration. Tests that
# change what a server keeps (runs, datasets, the one fine-tune slot) give what they make names of
# their own and leave no fine-tune running, so they pass in any order.

def dead_pid() -> int:
    """The id of a process that has ended (and, for a while, belongs to no other)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture(scope="session")
def stale_staging(tmp_path_factory) -> Path:
    """A fine-tune's staging directory, left by a killed process in ``app_server``'s runs
    directory before the server started (which removes it)."""
    stale = tmp_path_factory.mktemp("app-server") / "runs" / f".partial-killed-{dead_pid()}"
    stale.mkdir(parents=True)
    return stale


@pytest.fixture(scope="session")
def app_server(stale_staging, tiny_bert):
    """``python app.py`` as one person runs it on their own machine: the ``Served`` of live_app.

    It serves the run ``tiny`` (a tiny BERT that scores every word I-ORG first: each sentence is one ORG
    entity scored 1.0), keeps datasets in a directory of its own, has ``SERVER_TOKEN`` as
    ``HF_TOKEN`` in its environment, and found ``stale_staging`` in its runs directory.
    """
    from live_app import serve_tiny

    with serve_tiny(stale_staging.parent.parent, tiny_bert, HF_TOKEN=SERVER_TOKEN) as served:
        yield served


@pytest.fixture(autouse=True)
def no_fine_tune_left_behind(request):
    """A test that fails mid-fine-tune on ``app_server`` stops it, so the next start is not
    refused as "already running"."""
    failed_before = request.session.testsfailed
    yield
    if "app_server" in request.fixturenames and request.session.testsfailed > failed_before:
        from live_app import visitor

        visitor(request.getfixturevalue("app_server").url).predict(api_name="/stop_fine_tune")


@pytest.fixture(scope="session")
def space_server(tmp_path_factory, tiny_bert):
    """``python app.py`` as a Space serves it (``SPACE_ID`` set), with the Space's defaults: only
    signed-in visitors fine-tune, and nobody is signed in through the API."""
    from live_app import serve_tiny

    with serve_tiny(tmp_path_factory.mktemp("space-server"), tiny_bert,
                    SPACE_ID="owner/name") as served:
        yield served


@pytest.fixture(scope="session")
def zerogpu_server(tmp_path_factory, tiny_bert):
    """``python app.py`` on a ZeroGPU Space: the ``spaces`` double stands in for ``spaces``.

    Fine-tunes are open to anyone here (``NER_FINETUNE_ACCESS=anyone``), so this Space also serves
    the tests of a Space's limits that only a visitor allowed to start reaches: an API client
    cannot sign in (a Space's sign-in goes through the Hub), so ``space_server`` refuses it first.
    """
    from live_app import serve_tiny

    with serve_tiny(tmp_path_factory.mktemp("zerogpu-server"), tiny_bert, SPACE_ID="owner/name",
                    SPACES_ZERO_GPU="true", NER_FINETUNE_ACCESS="anyone",
                    PYTHONPATH=str(SPACES_DOUBLE)) as served:
        yield served


@pytest.fixture(scope="session")
def browser():
    """The session's headless Chromium; each test's page gets a context of its own (``opened``)."""
    from live_app import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: the browser tests need it")
    pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")
    from chromium import launched

    with launched() as browser:
        yield browser


@pytest.fixture
def online(monkeypatch):
    """The Hub counts as reachable and a token is set, as on a Space with HF_TOKEN."""
    from ner_core import hub

    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
