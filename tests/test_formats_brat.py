"""BRAT standoff: folders and zips of .txt/.ann documents, read with every line accounted for."""

import stat
import zipfile

import pytest

from ner_core import formats
from ner_core.data import Sentence
from ner_core.errors import UserError
from ner_core.formats import Example, Report, Span, align, brat

TEXT = "Anna Smith met Bob in New York.\nThen they left."
ANN = ("T1\tPER 0 10\tAnna Smith\n"
       "T2\tPER 15 18\tBob\n"
       "T3\tLOC 22 30\tNew York\n"
       "T4\tLOC 22 25;26 30\tNew York\n"
       "R1\tMet Arg1:T1 Arg2:T2\n"
       "E1\tMeeting:T1 Agent:T2\n"
       "A1\tNegated E1\n"
       "M1\tUncertain E1\n"
       "N1\tReference T3 Wikipedia:645042\tNew York City\n"
       "#1\tAnnotatorNotes T1\tthe author\n"
       "*\tAlias T1 T2\n")


def entities(examples):
    return [[(e.text[s.start:s.end], s.start, s.end, s.label) for s in e.spans] for e in examples]


def corpus(folder, documents):
    folder.mkdir()
    for name, (text, ann) in documents.items():
        if text is not None:
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        if ann is not None:
            (folder / f"{name}.ann").write_text(ann, encoding="utf-8")
    return folder


def zipped(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def test_a_folder_is_read_with_every_line_counted(tmp_path):
    folder = corpus(tmp_path / "corpus", {"a": (TEXT, ANN), "b": ("No entities here.", None)})
    assert formats.detect(folder) == "brat"
    converted = formats.read(folder)
    assert entities(converted.examples) == [
        [("Anna Smith", 0, 10, "PER"), ("Bob", 15, 18, "PER"), ("New York", 22, 30, "LOC")], []]
    report = converted.report
    assert report.records == 2
    assert report.counts == {"discontinuous": 1, "not an entity": 7}
    assert report.cases["discontinuous"][0]["detail"] == "line 4: T4 LOC 22 25;26 30 'New York'"
    assert [c["detail"] for c in report.cases["not an entity"]][:3] == [
        "line 5: R1 Met", "line 6: E1 Meeting:T1", "line 7: A1 Negated"]
    assert report.cases["not an entity"][0]["where"] == "a.ann, record 1"
    assert converted.examples[0].meta == {"brat": {"name": "a"}}


def test_nested_spans_are_left_to_align(tmp_path):
    folder = corpus(tmp_path / "corpus", {"a": (TEXT, "T1\tLOC 22 30\tNew York\n"
                                                      "T2\tLOC 26 30\tYork\n"
                                                      "T3\tPER 0 3\tAnn\n")})
    converted = formats.read(folder)
    assert entities(converted.examples) == [[("Anna", 0, 4, "PER"), ("New York", 22, 30, "LOC")]]
    assert converted.report.counts == {"overlap": 1, "widened": 1}


@pytest.mark.parametrize("target", ["out", "out.zip"])
def test_written_documents_read_back_with_the_same_entities(tmp_path, target):
    folder = corpus(tmp_path / "corpus", {"b": ("Paris, again.", "T1\tLOC 0 5\tParis\n")})
    (folder / "news").mkdir()
    (folder / "news" / "a.txt").write_text(TEXT, encoding="utf-8")
    (folder / "news" / "a.ann").write_text(ANN, encoding="utf-8")
    read = formats.read(tmp_path / "corpus")
    out = tmp_path / target
    assert formats.write(read.examples, out, "brat") == "brat"
    again = formats.read(out)
    assert entities(again.examples) == entities(read.examples)
    assert [e.meta["brat"]["name"] for e in again.examples] == ["b", "news/a"]
    assert again.report.changed == 0


def test_the_written_folder_has_an_annotation_conf_and_one_line_text_columns(tmp_path):
    [example] = align([Example("New\nYork and Paris", [Span(0, 8, "LOC"), Span(13, 18, "CITY")])],
                      Report("t", "studio"))
    brat.write([example], tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["annotation.conf", "doc-0001.ann", "doc-0001.txt"]
    conf = (tmp_path / "out" / "annotation.conf").read_text(encoding="utf-8")
    assert conf.split("\n")[:3] == ["[entities]", "CITY", "LOC"]
    ann = (tmp_path / "out" / "doc-0001.ann").read_text(encoding="utf-8")
    assert ann == "T1\tLOC 0 8\tNew York\nT2\tCITY 13 18\tParis\n"
    assert entities(formats.read(tmp_path / "out").examples) == [
        [("New\nYork", 0, 8, "LOC"), ("Paris", 13, 18, "CITY")]]


def test_sentences_of_one_document_are_written_as_one_document(tmp_path):
    sentences = [Sentence(["Anna", "met", "Bob", "."], ["B-PER", "O", "B-PER", "O"], 0, 1),
                 Sentence(["In", "Paris", "."], ["O", "B-LOC", "O"], 0, 6),
                 Sentence(["Rome", "!"], ["B-LOC", "O"], 1, 10)]
    examples = formats.from_sentences(sentences, "a.conll")
    brat.write(examples, tmp_path / "out")
    texts = sorted(p.read_text(encoding="utf-8") for p in (tmp_path / "out").glob("*.txt"))
    assert texts == ["Anna met Bob .\nIn Paris .", "Rome !"]
    back = formats.read(tmp_path / "out")
    assert [[(text, label) for text, _, _, label in doc] for doc in entities(back.examples)] == [
        [("Anna", "PER"), ("Bob", "PER"), ("Paris", "LOC")], [("Rome", "LOC")]]


def test_a_zip_is_read_without_the_files_a_mac_adds(tmp_path):
    path = zipped(tmp_path / "corpus.zip", {"corpus/a.txt": TEXT, "corpus/a.ann": ANN,
                                            "__MACOSX/corpus/._a.ann": b"\x00\x05binary",
                                            "corpus/._a.ann": b"\x00binary",
                                            "corpus/annotation.conf": "[entities]\nPER\n"})
    assert formats.detect(path) == "brat"
    converted = formats.read(path)
    assert len(entities(converted.examples)[0]) == 3
    assert converted.examples[0].source == "corpus/a.ann"


def test_a_crlf_ann_file_is_read(tmp_path):
    folder = corpus(tmp_path / "corpus", {"a": (TEXT, "T1\tPER 0 10\tAnna Smith\r\n\r\n")})
    assert entities(formats.read(folder).examples) == [[("Anna Smith", 0, 10, "PER")]]


@pytest.mark.parametrize("ann, message", [
    ("T1 PER 0 10 Anna Smith\n", r"corpus/a.ann:1: expected 'T1<TAB>TYPE START END<TAB>text' "
                                 r"\(three fields separated by tabs\), found 'T1 PER 0 10 Anna"),
    ("T1\tPER 0 10\tAnna Smith\nT2\tPER 0 ten\tAnna\n",
     r"corpus/a.ann:2: expected 'TYPE START END' with integer offsets, found 'PER 0 ten'"),
    ("T1\tPER 0 10\tAnna Smith\n\nT2\tPER 15 18\tBen\n",
     r"corpus/a.ann:3: expected the text of T2 \(PER 15-18\) as in the .txt, 'Bob', found 'Ben'"),
    ("T1\tPER 40 90\tAnna\n", r"corpus/a.ann:1: expected offsets within the 47 characters of "
                              r"the .txt, found T1 at 40-90"),
    ("X1\tPER 0 10\tAnna Smith\n", r"corpus/a.ann:1: expected an annotation line starting with T, "
                                   r"R, E, A, M, N, # or \*, found 'X1"),
])
def test_bad_ann_lines_name_the_file_and_line(tmp_path, ann, message):
    folder = corpus(tmp_path / "corpus", {"a": (TEXT, ann)})
    with pytest.raises(UserError, match=message):
        formats.read(folder)


def test_an_ann_without_its_text_is_refused(tmp_path):
    folder = corpus(tmp_path / "corpus", {"a": (None, ANN)})
    with pytest.raises(UserError, match=r"corpus/a.ann: expected the document's text in a.txt "
                                        r"beside it, found none"):
        formats.read(folder, "brat")


def test_a_folder_without_documents_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("nothing", encoding="utf-8")
    with pytest.raises(UserError, match=r"empty: expected BRAT documents \(.txt and .ann files\), "
                                        r"found none"):
        formats.read(tmp_path / "empty", "brat")


def _link(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("member, message", [
    ("../x.ann", r"evil.zip: expected files inside the zip's own folder, found the path "
                 r"'../x.ann'"),
    ("corpus/../../x.txt", r"found the path 'corpus/../../x.txt'"),
    ("/etc/x.ann", r"found the path '/etc/x.ann'"),
    ("C:/x.ann", r"found the path 'C:/x.ann'"),
    (_link("corpus/a.ann"), r"evil.zip: expected plain files in the zip, found the link "
                            r"'corpus/a.ann'"),
])
def test_unsafe_zip_members_are_refused(tmp_path, member, message):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("corpus/b.txt", TEXT)
        archive.writestr("corpus/b.ann", "")
        archive.writestr(member, "/etc/passwd")
    with pytest.raises(UserError, match=message):
        formats.read(path, "brat")


def test_zips_too_large_or_with_too_many_files_are_refused(tmp_path, monkeypatch):
    path = zipped(tmp_path / "big.zip", {f"d{i}.txt": "Anna " * 100 for i in range(4)})
    monkeypatch.setattr(brat, "MAX_MEMBERS", 3)
    with pytest.raises(UserError, match=r"big.zip: expected at most 3 files in the zip, found 4"):
        formats.read(path, "brat")
    monkeypatch.setattr(brat, "MAX_MEMBERS", 10)
    monkeypatch.setattr(brat, "MAX_UNZIPPED", 1000)
    with pytest.raises(UserError, match=r"big.zip: expected at most 0 MB unzipped, found 0 MB"):
        formats.read(path, "brat")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "corpus.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(UserError, match=r"corpus.zip: expected a zip of BRAT files"):
        formats.read(path, "brat")


def test_a_txt_that_is_not_utf8_names_the_file_and_line(tmp_path):
    folder = corpus(tmp_path / "corpus", {"a": (None, "")})
    (folder / "a.txt").write_bytes(b"Anna\nZ\xfcrich")
    with pytest.raises(UserError, match=r"corpus/a.txt:2: expected UTF-8 text"):
        formats.read(folder, "brat", need_entities=False)


def test_looks_like_needs_an_ann_file(tmp_path):
    with_ann = corpus(tmp_path / "with", {"a": (TEXT, "")})
    without = corpus(tmp_path / "without", {"a": (TEXT, None)})
    plain_zip = zipped(tmp_path / "texts.zip", {"a.txt": TEXT})
    assert brat.looks_like(with_ann, "") is True
    assert brat.looks_like(without, "") is False
    assert brat.looks_like(plain_zip, "") is False
    assert brat.looks_like(zipped(tmp_path / "c.zip", {"x/a.ann": ""}), "") is True
