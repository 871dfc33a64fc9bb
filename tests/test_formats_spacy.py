"""spaCy's DocBin (.spacy) and JSON training format, with spaCy itself as the referee."""

import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ner_core import formats
from ner_core.errors import UserError
from ner_core.formats import Example, Report, Span, align, spacy_docbin, spacy_docs, spacy_json

spacy = pytest.importorskip("spacy")  # the referee; the studio itself does not need it
DocBin = pytest.importorskip("spacy.tokens").DocBin
SpacySpan = pytest.importorskip("spacy.tokens").Span
docs_to_json = pytest.importorskip("spacy.training").docs_to_json
json_to_docs = pytest.importorskip("spacy.training.converters").json_to_docs


def entities(examples):
    return [[(e.text[s.start:s.end], s.start, s.end, s.label) for s in e.spans] for e in examples]


def doc_entities(docs):
    return [[(ent.text, ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
            for doc in docs]


@pytest.fixture
def aligned():
    report = Report("t", "doccano")
    return align([
        Example("  Anna Smith  met\nBob in New York.", [Span(2, 12, "PER"), Span(18, 21, "PER"),
                                                       Span(25, 33, "LOC")], doc_id=0),
        Example("Nothing here.", [], doc_id=0),
        Example("Zürich 🙂 and Genève!", [Span(0, 6, "LOC"), Span(13, 19, "LOC")], doc_id=1),
    ], report)


@pytest.fixture
def spacy_docs_made_by_spacy():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    first = nlp("Anna Smith met Bob in New York.\n\nThen  they left.")
    first.ents = [first.char_span(0, 10, "PER"), first.char_span(15, 18, "PER"),
                  first.char_span(22, 30, "LOC")]
    first.spans["sc"] = [SpacySpan(first, 0, 1, "NAME"), SpacySpan(first, 0, 2, "PERSON")]
    second = nlp("Paris is nice.")
    second.ents = [second.char_span(0, 5, "LOC")]
    return [first, second]


@pytest.mark.parametrize("name, suffix", [("spacy", ".spacy"), ("spacy-json", ".json")])
def test_written_files_read_back_with_the_same_entities_and_text(tmp_path, aligned, name, suffix):
    path = tmp_path / f"out{suffix}"
    assert formats.write(aligned, path, name) == name
    assert formats.detect(path) == name
    back = formats.read(path)
    assert entities(back.examples) == entities(aligned)
    assert [e.text for e in back.examples] == [e.text for e in aligned]
    # spaCy keeps runs of spaces and line breaks as tokens of their own; align leaves them out
    assert back.report.counts == {"whitespace word": 3}


def test_spacy_reads_the_docbin_written_here(tmp_path, aligned):
    path = tmp_path / "train.spacy"
    formats.write(aligned, path)
    docs = list(DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab))
    assert doc_entities(docs) == entities(aligned)
    assert [doc.text for doc in docs] == [e.text for e in aligned]
    words = [[(t.idx, t.idx + len(t)) for t in doc if not t.is_space] for doc in docs]
    assert words == [e.words for e in aligned]
    assert [[t.text for t in sent][:2] for sent in docs[0].sents] == [["  ", "Anna"]]


def test_spacy_reads_the_json_written_here(tmp_path, aligned):
    path = tmp_path / "train.json"
    formats.write(aligned, path, "spacy-json")
    documents = json.loads(path.read_text(encoding="utf-8"))
    assert [len(d["paragraphs"]) for d in documents] == [2, 1]  # by doc_id
    docs = list(json_to_docs(documents))
    assert doc_entities(docs) == entities(aligned)
    assert [doc.text for doc in docs] == [e.text for e in aligned]


def test_a_docbin_made_by_spacy_is_read_with_its_entities(tmp_path, spacy_docs_made_by_spacy):
    path = tmp_path / "made.spacy"
    DocBin(docs=spacy_docs_made_by_spacy).to_disk(path)
    converted = formats.read(path)
    assert entities(converted.examples) == doc_entities(spacy_docs_made_by_spacy)
    assert [e.text for e in converted.examples] == [d.text for d in spacy_docs_made_by_spacy]
    assert converted.examples[0].words[:3] == [(0, 4), (5, 10), (11, 14)]
    report = converted.report
    assert report.records == 2
    assert report.counts == {"not an entity": 2, "whitespace word": 2}  # doc.spans; "\n\n", " "
    assert report.cases["not an entity"][0]["detail"] == ("2 spans in doc.spans['sc'] (only "
                                                          "doc.ents are read)")


def test_a_json_file_made_by_spacy_is_read_with_its_entities(tmp_path, spacy_docs_made_by_spacy):
    path = tmp_path / "made.json"
    documents = [docs_to_json(spacy_docs_made_by_spacy[:1], doc_id=0),
                 docs_to_json(spacy_docs_made_by_spacy[1:], doc_id=1)]
    path.write_text(json.dumps(documents, indent=2), encoding="utf-8")
    converted = formats.read(path)
    assert entities(converted.examples) == doc_entities(spacy_docs_made_by_spacy)
    lines = path.read_text(encoding="utf-8").split("\n")
    starts = [number for number, line in enumerate(lines, 1) if line == "  {"]  # each document
    assert [(e.record, e.line, e.doc_id) for e in converted.examples] == [
        (0, starts[0], 0), (1, starts[1], 1)]


def test_a_spacy_v2_file_without_raw_text_is_read(tmp_path):
    path = tmp_path / "v2.json"
    tokens = [{"orth": "Anna", "ner": "B-PER"}, {"orth": "Smith", "ner": "L-PER"},
              {"orth": "visited", "ner": "O"}, {"orth": "Rome", "ner": "U-LOC"},
              {"orth": ".", "ner": "O"}]
    path.write_text(json.dumps([{"id": 0, "paragraphs": [{"sentences": [{"tokens": tokens}]}]}]),
                    encoding="utf-8")
    converted = formats.read(path)
    assert [(text, label) for text, _, _, label in entities(converted.examples)[0]] == [
        ("Anna Smith", "PER"), ("Rome", "LOC")]


@pytest.mark.parametrize("tags, message", [
    (["B-PER", "O"], r"bad.json:1: paragraph 1: expected BILUO entity tags \(B-, I-, L-, U-, O\), "
                     r"found 'O' at token 2 after 'B-PER'"),
    (["B-PER", "I-PER"], r"found the paragraph's end after 'I-PER'"),
    (["I-PER", "L-PER"], r"found 'I-PER' at token 1 after None"),
    (["B-PER", "L-LOC"], r"found 'L-LOC' at token 2 after 'B-PER'"),
    (["U-PER", "X-PER"], r"found 'X-PER' at token 2 after 'U-PER'"),
])
def test_tags_that_spacy_would_drop_silently_are_refused(tmp_path, tags, message):
    path = tmp_path / "bad.json"
    tokens = [{"orth": f"w{i}", "ner": tag} for i, tag in enumerate(tags)]
    path.write_text(json.dumps([{"id": 0, "paragraphs": [{"sentences": [{"tokens": tokens}]}]}]),
                    encoding="utf-8")
    with pytest.raises(UserError, match=message):
        formats.read(path, "spacy-json")


@pytest.mark.parametrize("content, message", [
    ('[\n{"id": 0, "paragraphs": [}\n]', r"bad.json:2: expected spaCy JSON documents as JSON"),
    ('[]', r"bad.json: expected spaCy JSON documents, found an empty list"),
    ('[\n{"id": 0, "text": "Anna"}]', r"bad.json:2: expected a document with a list of "
                                      r"paragraphs, found the fields id, text"),
    ('[{"paragraphs": [{"sentences": [{"tokens": [{"text": "Anna"}]}]}]}]',
     r"bad.json:1: expected sentence 1 of paragraph 1 as an object with a list of tokens, each "
     r"with its text in 'orth'"),
    ('[{"paragraphs": [{"raw": 5, "sentences": []}]}]',
     r"bad.json:1: expected paragraph 1 as an object with a list of sentences"),
])
def test_bad_json_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        formats.read(path, "spacy-json")


@pytest.mark.parametrize("data, message", [
    (b"plain text, not a DocBin", r"bad.spacy: expected a spaCy DocBin \(zlib-compressed\), "
                                  r"found data that is not"),
    (zlib.compress(b"\x93\x01\x02"), r"bad.spacy: expected a spaCy DocBin, found data spaCy "
                                     r"cannot read"),
    (zlib.compress(b"\x81\xa5attrs\x90")[:-3], r"bad.spacy: expected a spaCy DocBin"),
    (DocBin().to_bytes(), r"bad.spacy: expected Docs in the DocBin, found none"),
])
def test_bad_docbins_are_refused(tmp_path, data, message):
    path = tmp_path / "bad.spacy"
    path.write_bytes(data)
    with pytest.raises(UserError, match=message):
        formats.read(path, "spacy")


def test_a_docbin_that_unpacks_too_large_is_refused_before_spacy_unpacks_it(tmp_path, monkeypatch,
                                                                         aligned):
    path = tmp_path / "big.spacy"
    formats.write(aligned, path)
    monkeypatch.setattr(spacy_docbin, "MAX_INFLATED", 100)
    monkeypatch.setattr(spacy_docbin, "_BLOCK", 64)
    monkeypatch.setattr(DocBin, "from_bytes", lambda *_: pytest.fail("unpacked by spaCy"))
    with pytest.raises(UserError, match=r"big.spacy: expected a DocBin of at most 0 MB unpacked"):
        formats.read(path)


@pytest.mark.parametrize("name, suffix, doing", [
    ("spacy", ".spacy", "reading .spacy files"),
    ("spacy-json", ".json", "reading spaCy JSON files"),
])
def test_without_spacy_reading_says_how_to_install_it(tmp_path, monkeypatch, aligned, name,
                                                      suffix, doing):
    path = tmp_path / f"a{suffix}"
    formats.write(aligned, path, name)
    monkeypatch.setitem(sys.modules, "spacy", None)  # import spacy now raises ImportError
    assert formats.detect(path) == name  # recognizing the file needs no spaCy
    with pytest.raises(UserError, match=rf"^{doing} needs spaCy: pip install spacy$"):
        formats.read(path, name)
    with pytest.raises(UserError, match=r"^writing .* needs spaCy: pip install spacy$"):
        formats.write(aligned, tmp_path / f"b{suffix}", name)


@pytest.mark.parametrize("text, words", [
    ("Anna met Bob.", [(0, 4), (5, 8), (9, 12), (12, 13)]),
    ("  Anna\n\n  met   Bob  ", [(2, 6), (10, 13), (16, 19)]),
    ("Anna--Bob", [(0, 4), (6, 9)]),  # characters between words that are no word of the file's
    ("\tx", [(1, 2)]),
    ("", []),
])
def test_docs_built_here_keep_the_text_exactly(text, words):
    doc_words, spaces = spacy_docs.tokens(text, words)
    doc = spacy.tokens.Doc(spacy.vocab.Vocab(), words=doc_words, spaces=spaces)
    assert doc.text == text
    starts = {t.idx for t in doc}
    assert all(a in starts for a, _ in words)


@pytest.mark.parametrize("module, head, expected", [
    (spacy_json, '[{"id": 0, "paragraphs": [{"raw": "Anna", "sentences": []}]}]', True),
    (spacy_json, '[{"data": {"text": "a"}, "annotations": []}]', False),
    (spacy_json, '{"text": "a", "label": [[0, 1, "X"]]}', False),
])
def test_looks_like_tells_spacy_json_from_other_json(tmp_path, module, head, expected):
    assert module.looks_like(tmp_path / "x.json", head) is expected


def test_looks_like_tells_a_docbin_from_other_binary_files(tmp_path, aligned):
    docbin, other = tmp_path / "a.spacy", tmp_path / "b.spacy"
    formats.write(aligned, docbin)
    other.write_bytes(zlib.compress(b"not msgpack at all, just bytes"))
    assert spacy_docbin.looks_like(docbin, "") is True
    assert spacy_docbin.looks_like(other, "") is False
    assert spacy_docbin.looks_like(tmp_path, "") is False


def test_the_formats_import_and_recognize_files_without_spacy(tmp_path, aligned):
    """Every format module is imported by detect; none may need spaCy to load."""
    path = tmp_path / "a.spacy"
    formats.write(aligned, path)
    script = ("import sys; sys.modules['spacy'] = None\n"
              "from ner_core import formats\n"
              f"print(formats.detect({str(path)!r}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["spacy"]
