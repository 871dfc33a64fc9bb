"""CoNLL columns: every tag scheme read as IOB2, every bad line refused with its file and line,
and what is written reads back the same."""

import re

import pytest

from ner_core.errors import UserError
from ner_core.formats import Example, Report, Span, align, conll


def write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def read(path, **options):
    report = Report(path.name, "conll")
    return conll.read(path, report, **options), report


def entities(examples):
    return [(e.text[s.start:s.end], s.label) for e in examples for s in e.spans]


# One sentence in each scheme: "Anna Weber" PER, "Lagos" LOC, "Omar" PER then "Li" PER apart.
SCHEMES = {
    "IOB2": "B-PER I-PER O B-LOC O B-PER B-PER",
    "IOB1": "I-PER I-PER O I-LOC O I-PER B-PER",
    "BIOES": "B-PER E-PER O S-LOC O S-PER S-PER",
    "BILOU": "B-PER L-PER O U-LOC O U-PER U-PER",
}
WORDS = "Anna Weber left Lagos with Omar Li".split()
EXPECTED = [("Anna Weber", "PER"), ("Lagos", "LOC"), ("Omar", "PER"), ("Li", "PER")]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_each_scheme_is_read_as_iob2_and_named_in_the_report(tmp_path, scheme):
    lines = [f"{w} NN {t}" for w, t in zip(WORDS, SCHEMES[scheme].split())]
    [example], report = read(write(tmp_path / "a.conll", "\n".join(lines) + "\n"))
    assert entities([example]) == EXPECTED
    assert example.text == " ".join(WORDS) and example.sentence and example.line == 1
    assert report.format == f"conll ({scheme})" and report.records == 1


def test_the_tag_column_can_be_chosen(tmp_path):
    path = write(tmp_path / "a.tsv", "Anna\tB-PER\tNNP\nleft\tO\tVBD\n\nLagos\tB-LOC\tNNP\n")
    examples, report = read(path, tag_column=1)
    assert entities(examples) == [("Anna", "PER"), ("Lagos", "LOC")]
    assert [e.line for e in examples] == [1, 4] and report.records == 2


@pytest.mark.parametrize("tag_column, message", [
    (5, r":1: expected the tag in column 5 \(0 is the token's, -1 the last\), found 3 columns, "
        r"so that column is not there: 'Anna NNP B-PER'"),
    (-3, r":1: expected the tag in column -3 .* so that column is the token's"),
    (0, r":1: expected the tag in column 0 .* so that column is the token's"),
])
def test_a_tag_column_out_of_range_names_the_line(tmp_path, tag_column, message):
    path = write(tmp_path / "a.conll", "Anna NNP B-PER\n")
    with pytest.raises(UserError, match=re.escape(str(path)) + message):
        read(path, tag_column=tag_column)


def test_a_tag_column_that_is_no_number_is_refused(tmp_path):
    path = write(tmp_path / "a.conll", "Anna B-PER\n")
    with pytest.raises(UserError, match="expected the tag column as a whole number.*found '2'"):
        read(path, tag_column="2")


BAD = {
    "wrong number of columns": ("Anna NNP B-PER\nleft VBD\n",
                                ":2: expected 3 columns like the lines above, found 2: 'left VBD'"),
    "one column": ("Anna\n", ":1: expected at least 2 columns"),
    "tag outside every scheme": ("Anna O\nWeber X-PER\n",
                                 ":2: expected a tag 'O', 'B-TYPE' or 'I-TYPE', found 'X-PER'; "
                                 "BIOES tags"),
    "type without prefix": ("Anna PER\n", ":1: expected a tag .* found 'PER'"),
    "digit zero": ("Anna B-PER\nleft 0\n", ":2: .*found '0' \\(the digit zero"),
    "BIOES B- without its end": ("Anna B-PER\nleft O\nLagos S-LOC\n",
                                 ":2: expected I-PER or E-PER after B-PER \\(BIOES\\), found 'O'"),
    "BIOES I- after O": ("Anna S-PER\nleft O\nLagos I-LOC\nnow E-LOC\n",
                         ":3: expected B-LOC to begin the entity \\(BIOES\\), found 'I-LOC' "
                         "after O"),
    "BIOES E- without B-": ("Anna E-PER\n", ":1: expected B-PER to begin the entity \\(BIOES\\), "
                                            "found 'E-PER' at the start of the sentence"),
    "BIOES type change": ("Anna B-PER\nWeber E-LOC\n",
                          ":2: expected I-PER or E-PER after B-PER \\(BIOES\\), found 'E-LOC'"),
    "BIOES open at the end": ("Omar S-PER\n\nAnna B-PER\nWeber I-PER\n\n",
                              ":4: expected E-PER to end the entity \\(BIOES\\), found the end "
                              "of the sentence after I-PER"),
    "BILOU wording": ("Anna B-PER\nleft O\nLagos U-LOC\n",
                      ":2: expected I-PER or L-PER after B-PER \\(BILOU\\)"),
    "empty file": (b"", ": expected CoNLL text, found an empty file"),
    "only -DOCSTART-": ("-DOCSTART- -X- O\n\n", ": expected sentences of 'token ... tag' lines"),
    "latin-1": (b"Anna B-PER\ncaf\xe9 O\n", ":2: expected UTF-8 text, found the byte 0xe9"),
    "missing file": (None, ": expected a CoNLL file, found no such file"),
}


@pytest.mark.parametrize("content, message", BAD.values(), ids=BAD.keys())
def test_bad_files_are_refused_with_file_and_line(tmp_path, content, message):
    path = tmp_path / "train.txt"
    if content is not None:
        write(path, content)
    with pytest.raises(UserError, match=re.escape(str(path)) + message):
        read(path)


def test_documents_come_from_docstart_lines_or_each_sentence_alone(tmp_path):
    marked = write(tmp_path / "a.conll", "-DOCSTART- O\n\nAnna B-PER\n\nLi B-PER\n\n"
                                         "-DOCSTART- O\n\nOmar B-PER\n")
    alone = write(tmp_path / "b.conll", "Anna B-PER\n\nLi B-PER\n\nOmar B-PER\n")
    assert [e.doc_id for e in read(marked)[0]] == [0, 0, 1]
    assert [e.doc_id for e in read(alone)[0]] == [0, 1, 2]


def test_a_folder_is_read_by_split_with_documents_kept_apart(tmp_path):
    write(tmp_path / "train.txt", "Anna B-PER\n\nLi B-PER\n")
    write(tmp_path / "dev.txt", "Lagos S-LOC\n")
    report = Report(tmp_path.name, "conll")
    splits = conll.read_splits(tmp_path, report)
    assert {s: entities(e) for s, e in splits.items()} == {
        "train": [("Anna", "PER"), ("Li", "PER")], "validation": [("Lagos", "LOC")]}
    assert [e.source for e in splits["validation"]] == ["dev.txt"]
    assert [e.doc_id for es in splits.values() for e in es] == [0, 1, 2]
    assert report.format == "conll (IOB2, BIOES)" and report.records == 3
    [example] = conll.read_splits(tmp_path / "dev.txt", Report("dev.txt", "conll"))["train"]
    assert entities([example]) == [("Lagos", "LOC")]
    everything, _ = read(tmp_path)
    assert len(everything) == 3


def test_a_folder_without_split_files_is_refused(tmp_path):
    with pytest.raises(UserError, match=re.escape(f"{tmp_path}: expected CoNLL files named")):
        conll.read_splits(tmp_path, Report("x", "conll"))


@pytest.mark.parametrize("head, expected", [
    ("-DOCSTART- -X- -X- O\n\nAnna NNP B-NP B-PER\nleft VBD B-VP O\n", True),
    ("Anna\tS-PER\nleft\tO\n", True),
    ("Anna met Omar in Lagos.\nThey left.\n", False),
    ('{"text": "Anna", "label": []}\n', False),
    ("Anna B-PER\nsome prose line here\n", False),
    ("", False),
])
def test_looks_like(tmp_path, head, expected):
    assert conll.looks_like(tmp_path / "x.txt", head) is expected


def test_a_folder_looks_like_conll_by_its_split_files(tmp_path):
    assert not conll.looks_like(tmp_path, "")
    write(tmp_path / "eng.train", "Anna B-PER\n")
    assert conll.looks_like(tmp_path, "")


def aligned(examples):
    return align(examples, Report("fixture", "test"))


def test_written_lines_are_word_tag_with_documents_and_blank_lines(tmp_path):
    examples = aligned([Example("Anna Weber met Omar.", [Span(0, 10, "PER"), Span(15, 19, "PER")],
                                doc_id=3),
                        Example("Lagos", [Span(0, 5, "LOC")], doc_id=4)])
    conll.write(examples, tmp_path / "iob2.conll")
    conll.write(examples, tmp_path / "bioes.conll", scheme="BIOES")
    assert (tmp_path / "iob2.conll").read_text() == (
        "-DOCSTART- O\n\nAnna B-PER\nWeber I-PER\nmet O\nOmar B-PER\n. O\n\n"
        "-DOCSTART- O\n\nLagos B-LOC\n\n")
    assert (tmp_path / "bioes.conll").read_text() == (
        "-DOCSTART- O\n\nAnna B-PER\nWeber E-PER\nmet O\nOmar S-PER\n. O\n\n"
        "-DOCSTART- O\n\nLagos S-LOC\n\n")


# Invented texts: a span that cuts a word, a nested span, a type outside the label set.
FIXTURE = [
    Example("Anna Weber met the Nordbank board in Lagos.",
            [Span(0, 10, "PER"), Span(19, 27, "ORG"), Span(37, 42, "LOC")], line=1),
    Example("Li Wei praised the Berliners today.", [Span(19, 25, "LOC")], line=2),
    Example("The University of Oslo hired Maria Lopez.",
            [Span(4, 22, "ORG"), Span(18, 22, "LOC"), Span(29, 40, "PER")], line=3),
    Example("Jan Novak bought a Fjord 3000.", [Span(0, 9, "PER"), Span(19, 29, "PRODUCT")],
            line=4, doc_id=1),
]


@pytest.mark.parametrize("scheme", ["IOB2", "BIOES", "IOB1"])
def test_round_trip_keeps_the_aligned_entities(tmp_path, scheme):
    report = Report("fixture", "test")
    examples = align(FIXTURE, report)
    assert report.counts == {"widened": 1, "overlap": 1}
    path = tmp_path / "out.conll"
    conll.write(examples, path, scheme=scheme)
    back, back_report = read(path)
    assert entities(align(back, Report("out.conll", "conll"))) == entities(examples)
    assert ("Berliners", "LOC") in entities(back) and ("Fjord 3000", "PRODUCT") in entities(back)
    assert [e.doc_id for e in back] == [0, 0, 0, 1]
    assert back_report.format == f"conll ({scheme})"


@pytest.mark.parametrize("word, message", [
    ("New York", r"t.jsonl:7: expected words that make one CoNLL column each, found 'New York', "
                 r"which would read back as several columns"),
    ("-DOCSTART-", r"t.jsonl:7: .*found '-DOCSTART-', which would read back as a document "
                   r"boundary"),
])
def test_words_that_cannot_be_a_column_are_refused(tmp_path, word, message):
    path = write(tmp_path / "out.conll", "kept\n")
    example = Example(word, [], words=[(0, len(word))], line=7, source="t.jsonl")
    with pytest.raises(UserError, match=message):
        conll.write([example], path)
    assert path.read_text() == "kept\n"


def test_an_unknown_scheme_to_write_is_refused(tmp_path):
    with pytest.raises(UserError, match="expected a tag scheme to write among IOB2, BIOES, IOB1, "
                                        "found 'BILOU'"):
        conll.write(aligned([Example("Anna", [])]), tmp_path / "out.conll", scheme="BILOU")
