"""Reading CoNLL files and directories, refusing bad files by file and line, and the DatasetDict."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from datasets import ClassLabel

from conftest import make_sentences, write_conll
from ner_core import hub
from ner_core.data import find_split_files, load_data, read_conll
from ner_core.labels import CONLL2003_LABELS

TOKENS = [["Anna", "Weber", "visited", "Berlin", "."], ["Globex", "left", "."]]
TAGS = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "O"]]

FOUR_COLUMNS = (
    "Anna NNP B-NP B-PER\nWeber NNP I-NP I-PER\nvisited VBD B-VP O\nBerlin NNP B-NP B-LOC\n. . O O\n"
    "\n"
    "Globex NNP B-NP B-ORG\nleft VBD B-VP O\n. . O O\n"
)


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize("content", [
    pytest.param(FOUR_COLUMNS, id="4 columns, spaces"),
    pytest.param(FOUR_COLUMNS.replace(" ", "\t"), id="4 columns, tabs"),
    pytest.param(FOUR_COLUMNS.replace(" ", " \t  "), id="runs of spaces and tabs"),
    pytest.param("".join(f"{line.split()[0]} {line.split()[-1]}\n" if line else "\n"
                         for line in FOUR_COLUMNS.splitlines()), id="2 columns"),
    pytest.param(FOUR_COLUMNS.replace("\n", "\r\n"), id="CRLF"),
    pytest.param(FOUR_COLUMNS.rstrip("\n"), id="no final newline"),
    pytest.param(FOUR_COLUMNS + "\n\n\n", id="several blank lines at the end"),
    pytest.param(FOUR_COLUMNS.replace("\n\n", "\n  \n\t\n"), id="blank lines with spaces"),
    pytest.param("\ufeff" + FOUR_COLUMNS, id="UTF-8 BOM"),
    pytest.param("\ufeff" + FOUR_COLUMNS.replace("\n", "\r\n").replace(" ", "\t"), id="BOM, CRLF, tabs"),
])
def test_read_conll_layouts(tmp_path, content):
    conll = read_conll(write(tmp_path / "train.txt", content))
    assert [s.tokens for s in conll.sentences] == TOKENS
    assert [s.tags for s in conll.sentences] == TAGS
    assert conll.scheme == "IOB2"
    assert conll.path == tmp_path / "train.txt"


def test_read_conll_records_first_line_of_each_sentence(tmp_path):
    conll = read_conll(write(tmp_path / "train.txt", "-DOCSTART- -X- -X- O\n\n" + FOUR_COLUMNS))
    assert [s.line for s in conll.sentences] == [3, 9]


@pytest.mark.parametrize("columns", [2, 4])
def test_read_conll_round_trips_write_conll(tmp_path, columns):
    sentences = make_sentences(12, seed=5)
    conll = read_conll(write_conll(tmp_path / "train.txt", sentences, docs=3, columns=columns))
    assert [list(zip(s.tokens, s.tags)) for s in conll.sentences] == sentences
    assert [s.doc_id for s in conll.sentences] == [0] * 4 + [1] * 4 + [2] * 4


DOC = "-DOCSTART- -X- -X- O\n\n"
A, B, C = "a NN O\n\n", "b NN B-PER\n\n", "c NN O\n"


@pytest.mark.parametrize("content, doc_ids", [
    pytest.param(DOC + A + B + DOC + C, [0, 0, 1], id="two documents"),
    pytest.param(DOC + A + DOC + B + DOC + C, [0, 1, 2], id="three documents"),
    pytest.param(DOC.rstrip("\n") + "\n" + "a NN O\n" + DOC + C, [0, 1], id="no blank after DOCSTART"),
    pytest.param(A + DOC + B + C, [0, 1, 1], id="sentence before the first DOCSTART"),
    pytest.param(A + B + C, [0, 1, 2], id="no DOCSTART: each sentence alone"),
])
def test_read_conll_document_ids(tmp_path, content, doc_ids):
    conll = read_conll(write(tmp_path / "train.txt", content))
    assert [s.doc_id for s in conll.sentences] == doc_ids


def test_read_conll_detects_and_converts_iob1(tmp_path):
    content = ("Anna NNP I-NP I-PER\nWeber NNP I-NP I-PER\nmet VBD I-VP O\nJan NNP I-NP I-PER\n"
               "\n"
               "Lima NNP I-NP I-LOC\nLagos NNP I-NP B-LOC\nand CC O O\nOslo NNP I-NP I-LOC\n")
    conll = read_conll(write(tmp_path / "eng.train", content))
    assert conll.scheme == "IOB1"
    assert [s.tags for s in conll.sentences] == [
        ["B-PER", "I-PER", "O", "B-PER"],
        ["B-LOC", "B-LOC", "O", "B-LOC"],
    ]


def test_read_conll_iob2_with_adjacent_entities_stays_iob2(tmp_path):
    content = "Lima B-LOC\nLagos B-LOC\nOslo I-LOC\n"
    conll = read_conll(write(tmp_path / "train.txt", content))
    assert conll.scheme == "IOB2"
    assert conll.sentences[0].tags == ["B-LOC", "B-LOC", "I-LOC"]


# (file content, or None for no file; what the message says after the path)
BAD_FILES = {
    "wrong number of columns": (
        "Anna NNP B-NP B-PER\nvisited VBD B-VP O\nBerlin NNP B-LOC\n",
        ":3: expected 4 columns like the lines above, found 3: 'Berlin NNP B-LOC'"),
    "one column on the first line": ("Anna\nBerlin B-LOC\n", ":1: expected at least 2 columns"),
    "one column later": ("Anna B-PER\n\nBerlin\n", ":3: expected 2 columns like the lines above, found 1"),
    "type without prefix": ("Anna NNP B-NP O\nBerlin NNP B-NP PER\n",
                            ":2: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found 'PER'"),
    "prefix without type": ("Anna B-\n", ":1: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found 'B-'"),
    "lowercase o": ("Anna B-PER\n\nsaid o\n", ":3: expected a tag .* found 'o'"),
    "unknown prefix": ("Anna X-PER\n", ":1: expected a tag .* found 'X-PER'"),
    # BIOES is read as IOB2 (test_formats); a sequence that breaks it is refused at its line.
    "broken BIOES": ("Anna B-PER\nsaid S-LOC\n",
                     ":2: expected I-PER or E-PER after B-PER \\(BIOES\\), found 'S-LOC'"),
    "empty file": (b"", ": expected CoNLL text, found an empty file"),
    "whitespace only": (" \n\t\n\r\n  ", ": expected CoNLL text, found an empty file"),
    "only -DOCSTART- lines": ("-DOCSTART- -X- -X- O\n\n-DOCSTART- -X- -X- O\n\n",
                              ": expected sentences of 'token ... tag' lines, found none"),
    "latin-1": (b"Anna B-PER\n\ncaf\xe9 O\n",
                ":3: expected UTF-8 text, found the byte 0xe9 \\(byte 4 of the line\\) that UTF-8 "
                "does not allow there"),
    "NUL bytes": (b"Anna B-PER\nvis\x00ited O\n\x00\x00",
                  ":2: expected UTF-8 text, found binary data \\(a NUL byte\\)"),
    "missing file": (None, ": expected a CoNLL file, found no such file"),
}


@pytest.mark.parametrize("content, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_read_conll_refuses_bad_files(tmp_path, content, message):
    path = tmp_path / "train.txt"
    if content is not None:
        write(path, content)
    with pytest.raises(ValueError, match=re.escape(str(path)) + message):
        read_conll(path)


def test_digit_zero_for_tag_o_names_its_line(tmp_path):
    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in make_sentences(20, seed=6):
        lines += [f"{word} NN B-NP {tag}" for word, tag in sentence] + [""]
    lines = lines[:56] + ["oslo NNP B-NP 0"] + lines[56:]
    path = write(tmp_path / "train.txt", "\n".join(lines) + "\n")
    assert path.read_text().splitlines()[56] == "oslo NNP B-NP 0"
    with pytest.raises(ValueError, match=re.escape(f"{path}:57: ")) as error:
        read_conll(path)
    assert "found '0'" in str(error.value)
    assert "the digit zero" in str(error.value)


@pytest.mark.parametrize("names, expected", [
    (["train.txt", "valid.txt", "test.txt"], {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}),
    (["train.txt", "dev.txt", "test.txt"], {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}),
    (["train.txt", "validation.txt"], {"train": "train.txt", "validation": "validation.txt"}),
    (["eng.train", "eng.testa", "eng.testb"], {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"}),
    (["test.txt", "README.md"], {"test": "test.txt"}),
    # When several names are there, the earlier name in the usual order wins.
    (["train.txt", "eng.train", "dev.txt", "valid.txt"], {"train": "train.txt", "validation": "valid.txt"}),
])
def test_find_split_files(tmp_path, names, expected):
    for name in names:
        (tmp_path / name).touch()
    assert find_split_files(tmp_path) == {split: tmp_path / name for split, name in expected.items()}


@pytest.mark.parametrize("names", [[], ["README.md", "train.csv"]])
def test_find_split_files_without_any(tmp_path, names):
    for name in names:
        (tmp_path / name).touch()
    (tmp_path / "train.txt").mkdir()  # a directory of that name is not a file
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path}: expected CoNLL files named one of "
                                                   "train.txt, eng.train, valid.txt") + ".*; found none"):
        find_split_files(tmp_path)


def test_load_data_directory(conll_dir):
    data = load_data(conll_dir)
    assert {split: data[split].num_rows for split in data} == {"train": 120, "validation": 30, "test": 30}
    for split in data.values():
        assert split.column_names == ["tokens", "ner_tags", "doc_id"]
        assert isinstance(split.features["ner_tags"].feature, ClassLabel)
        assert split.features["ner_tags"].feature.names == CONLL2003_LABELS
    first = make_sentences(120, seed=1)[0]
    names = data["train"].features["ner_tags"].feature.names
    assert data["train"][0]["tokens"] == [word for word, _ in first]
    assert [names[i] for i in data["train"][0]["ner_tags"]] == [tag for _, tag in first]
    assert data["train"]["doc_id"] == [i // 20 for i in range(120)]
    assert sorted(set(data["validation"]["doc_id"])) == [0, 1, 2]


def test_load_data_single_file_is_train(conll_dir):
    data = load_data(conll_dir / "valid.txt")
    assert list(data) == ["train"]
    assert data["train"].num_rows == 30


def test_load_data_labels_come_from_every_split(tmp_path):
    write(tmp_path / "train.txt", "aspirin B-DRUG\nhelps O\n")
    write(tmp_path / "test.txt", "BRCA1 B-GENE\nmutates O\n")
    data = load_data(str(tmp_path))
    for split in data.values():
        assert split.features["ner_tags"].feature.names == ["O", "B-DRUG", "I-DRUG", "B-GENE", "I-GENE"]
    assert data["test"][0]["ner_tags"] == [3, 0]


def test_load_data_converts_iob1_files(tmp_path):
    write(tmp_path / "eng.train", "Anna I-PER\nWeber I-PER\nmet O\nOslo I-LOC\n")
    data = load_data(tmp_path)
    names = data["train"].features["ner_tags"].feature.names
    assert [names[i] for i in data["train"][0]["ner_tags"]] == ["B-PER", "I-PER", "O", "B-LOC"]


def test_load_data_names_the_bad_file_in_a_directory(conll_dir):
    write(conll_dir / "test.txt", "Anna B-PER\nBerlin LOC\n")
    with pytest.raises(ValueError, match=re.escape(f"{conll_dir / 'test.txt'}:2: ")):
        load_data(conll_dir)


def test_load_data_nonexistent_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ValueError, match="expected a labelled file or folder, a Hub dataset id "
                                         "\\(owner/name\\) or 'conll2003', found "
                                         f"'{re.escape(str(missing))}', which does not exist"):
        load_data(missing)


def test_load_data_directory_without_conll_files(tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path}: expected CoNLL columns or ")
                       + ".*, found content that is none of them; name the format with --format"):
        load_data(tmp_path)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No Hub, and no local folder that happens to be called conll2003."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("NER_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    hub.hub_reachable.cache_clear()
    yield
    hub.hub_reachable.cache_clear()


@pytest.mark.parametrize("source", ["conll2003", None])
def test_load_data_hub_offline_says_how_to_use_local_files(offline, source):
    with pytest.raises(ValueError, match=r"the dataset conll2003 must come from the Hugging Face Hub"
                                         r".*point --data or NER_DATA_DIR at a directory of CoNLL files"):
        load_data(source)


def test_load_data_none_reads_ner_data_dir(offline, monkeypatch, conll_dir):
    monkeypatch.setenv("NER_DATA_DIR", str(conll_dir))
    assert load_data()["validation"].num_rows == 30


REAL_DATA = os.environ.get("NER_DATA_DIR", "")


@pytest.mark.skipif(not REAL_DATA or not Path(REAL_DATA).is_dir(),
                    reason="set NER_DATA_DIR to a directory of the CoNLL-2003 files to run")
def test_real_conll2003_sizes():
    data = load_data(REAL_DATA)
    assert {split: data[split].num_rows for split in data} == {"train": 14041, "validation": 3250,
                                                               "test": 3453}
    assert data["train"].features["ner_tags"].feature.names == CONLL2003_LABELS
