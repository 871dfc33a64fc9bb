"""Label Studio JSON: exports read with the latest annotation, files written to import again."""

import json

import pytest

from ner_core import formats
from ner_core.errors import UserError
from ner_core.formats import Example, Report, Span, align, label_studio


def entities(examples):
    return [[(e.text[s.start:s.end], s.start, s.end, s.label) for s in e.spans] for e in examples]


def region(start, end, text, *labels, kind="labels", **extra):
    return {"id": f"r{start}", "from_name": "label", "to_name": "text", "type": kind,
            "value": {"start": start, "end": end, "text": text, "labels": list(labels)}, **extra}


def task(text, *annotations, **fields):
    return {"data": {"text": text}, "annotations": list(annotations), **fields}


def annotation(*results, **fields):
    return {"result": list(results), "was_cancelled": False, **fields}


def save(path, value, indent=2):
    path.write_text(json.dumps(value, ensure_ascii=False, indent=indent), encoding="utf-8")
    return path


@pytest.fixture
def aligned():
    report = Report("t", "doccano")
    return align([
        Example("Anna Smith met Bob in New York.", [Span(0, 10, "PER"), Span(15, 18, "PER"),
                                                   Span(22, 30, "LOC")]),
        Example("Nothing here.", []),
        Example("Zürich 🙂 and Genève.", [Span(0, 6, "LOC"), Span(13, 19, "LOC")]),
    ], report)


def test_written_tasks_read_back_with_the_same_entities(tmp_path, aligned):
    path = tmp_path / "tasks.json"
    assert formats.write(aligned, path, "label-studio") == "label-studio"
    assert formats.detect(path) == "label-studio"
    back = formats.read(path)
    assert entities(back.examples) == entities(aligned)
    assert [e.text for e in back.examples] == [e.text for e in aligned]
    assert back.report.changed == 0


def test_the_written_file_is_what_label_studio_imports(tmp_path, aligned):
    path = tmp_path / "tasks.json"
    label_studio.write(aligned, path)
    tasks = json.loads(path.read_text(encoding="utf-8"))
    assert [t["data"] for t in tasks] == [{"text": e.text} for e in aligned]
    [first] = tasks[0]["annotations"]
    assert [r["value"] for r in first["result"]] == [
        {"start": 0, "end": 10, "text": "Anna Smith", "labels": ["PER"]},
        {"start": 15, "end": 18, "text": "Bob", "labels": ["PER"]},
        {"start": 22, "end": 30, "text": "New York", "labels": ["LOC"]}]
    assert {(r["from_name"], r["to_name"], r["type"]) for r in first["result"]} == {
        ("label", "text", "labels")}
    ids = [r["id"] for t in tasks for a in t["annotations"] for r in a["result"]]
    assert len(ids) == len(set(ids)) == 5


def test_predictions_carry_each_span_score_and_read_back_as_a_queue(tmp_path):
    [example] = align([Example("Anna met Bob.", [Span(0, 4, "PER", 0.9), Span(9, 12, "PER", 0.5)])],
                      Report("t", "studio"))
    path = tmp_path / "predicted.json"
    assert formats.write([example], path, "label-studio-predictions") == "label-studio-predictions"
    [written] = json.loads(path.read_text(encoding="utf-8"))
    assert "annotations" not in written
    [prediction] = written["predictions"]
    assert prediction["score"] == pytest.approx(0.7)
    assert [r["score"] for r in prediction["result"]] == [0.9, 0.5]
    with pytest.raises(UserError, match="expected labelled records"):
        formats.read(path)  # predictions are not annotations: every task is unannotated
    queue = formats.read(path, unannotated="keep", need_entities=False)
    assert entities(queue.examples) == [[("Anna", 0, 4, "PER"), ("Bob", 9, 12, "PER")]]
    assert [s.score for s in queue.examples[0].spans] == [0.9, 0.5]
    assert queue.examples[0].meta["label-studio"]["from_predictions"] is True


def test_the_latest_annotation_is_read_and_the_others_counted(tmp_path):
    older = annotation(region(0, 4, "Anna", "ORG"), id=1, updated_at="2024-03-01T10:00:00Z")
    latest = annotation(region(0, 4, "Anna", "PER"), id=2, updated_at="2024-03-02T09:00:00Z")
    cancelled = annotation(region(0, 4, "Anna", "LOC"), id=3, updated_at="2024-04-01T00:00:00Z",
                           was_cancelled=True)
    path = save(tmp_path / "export.json", [task("Anna met Bob.", older, cancelled, latest)])
    converted = formats.read(path)
    assert entities(converted.examples) == [[("Anna", 0, 4, "PER")]]
    assert converted.report.counts == {"older annotation": 1, "cancelled": 1}
    assert converted.report.cases["older annotation"][0]["where"] == "export.json:2"


@pytest.mark.parametrize("annotations, kept", [
    ([annotation(region(0, 4, "Anna", "ORG"), created_at="2024-01-02"),
      annotation(region(0, 4, "Anna", "PER"), created_at="2024-01-03")], "PER"),
    ([annotation(region(0, 4, "Anna", "ORG")), annotation(region(0, 4, "Anna", "PER"))], "PER"),
    ([annotation(region(0, 4, "Anna", "PER"), updated_at="2024-05-01"),
      annotation(region(0, 4, "Anna", "ORG"), created_at="2024-06-01")], "PER"),
])
def test_latest_is_by_update_then_creation_then_order(tmp_path, annotations, kept):
    path = save(tmp_path / "export.json", [task("Anna met Bob.", *annotations)])
    assert entities(formats.read(path).examples) == [[("Anna", 0, 4, kept)]]


def test_what_is_not_an_entity_or_not_annotated_is_counted(tmp_path):
    path = save(tmp_path / "export.json", [
        task("Anna met Bob.", annotation(
            region(0, 4, "Anna", "PER", "ORG"),
            {"type": "choices", "value": {"choices": ["news"]}},
            {"type": "relation", "from_id": "a", "to_id": "b"})),
        task("Only cancelled.", annotation(was_cancelled=True)),
        task("Never opened."),
        task("   ", annotation()),
    ])
    converted = formats.read(path)
    assert entities(converted.examples) == [[("Anna", 0, 4, "PER")]]
    counts = converted.report.counts
    assert counts == {"overlap": 1, "not an entity": 2, "cancelled": 1, "unannotated": 2,
                      "empty text": 1}
    assert converted.report.records == 4
    assert "'Anna' labelled PER, ORG: PER kept" in converted.report.cases["overlap"][0]["detail"]


def test_unannotated_tasks_are_kept_on_request_with_their_predictions(tmp_path):
    prediction = {"model_version": "m1", "result": [region(0, 4, "Anna", "PER", score=0.8)]}
    path = save(tmp_path / "queue.json", [task("Anna met Bob.", predictions=[prediction]),
                                          task("Plain text.")])
    queue = formats.read(path, unannotated="keep", need_entities=False)
    assert entities(queue.examples) == [[("Anna", 0, 4, "PER")], []]
    assert queue.examples[0].spans[0].score == 0.8
    assert queue.report.counts["unannotated"] == 0


def test_offsets_counted_in_utf16_by_older_versions_are_put_on_characters(tmp_path):
    text = "I 😀 love Zürich and 🇩🇪 Berlin"
    # JavaScript counts each character above U+FFFF as two units (the flag is two of them)
    path = save(tmp_path / "export.json", [task(text, annotation(
        region(10, 16, "Zürich", "LOC"), region(26, 32, "Berlin", "LOC")))])
    assert entities(formats.read(path).examples) == [[("Zürich", 9, 15, "LOC"),
                                                      ("Berlin", 23, 29, "LOC")]]


def test_a_text_field_of_another_name_is_found_and_written_back(tmp_path):
    exported = {"id": 41, "data": {"content": "Anna met Bob.", "source": 3},
                "annotations": [annotation({**region(0, 4, "Anna", "PER"), "from_name": "ner",
                                            "to_name": "doc"})]}
    path = save(tmp_path / "export.json", exported)  # a single task, not a list
    converted = formats.read(path)
    assert entities(converted.examples) == [[("Anna", 0, 4, "PER")]]
    out = tmp_path / "again.json"
    formats.write(converted.examples, out, "label-studio")
    [written] = json.loads(out.read_text(encoding="utf-8"))
    assert written["id"] == 41
    assert written["data"] == {"content": "Anna met Bob.", "source": 3}
    [result] = written["annotations"][0]["result"]
    assert (result["from_name"], result["to_name"]) == ("ner", "doc")


def test_several_text_fields_need_text_field(tmp_path):
    two_texts = {"title": "Anna", "body": "Anna met Bob."}
    path = save(tmp_path / "export.json", [{"data": two_texts, "annotations": [
        annotation(region(0, 4, "Anna", "PER"))]}])
    with pytest.raises(UserError, match=r"export.json:2: expected one text field in data, found "
                                        r"several \(title, body\); name one with text_field"):
        formats.read(path)
    converted = formats.read(path, text_field="body")
    assert entities(converted.examples) == [[("Anna", 0, 4, "PER")]]
    with pytest.raises(UserError, match=r"export.json:2: expected the text in the field 'bdy', "
                                        r"found no such field \(string fields: title, body\)"):
        formats.read(path, text_field="bdy")


def test_exports_of_label_studio_before_1_0_with_completions_are_read(tmp_path):
    path = save(tmp_path / "old.json", [{"id": 1, "data": {"text": "Anna met Bob."},
                                         "completions": [annotation(region(9, 12, "Bob", "PER"))]}])
    assert formats.detect(path) == "label-studio"
    assert entities(formats.read(path).examples) == [[("Bob", 9, 12, "PER")]]


def test_the_json_min_export_is_read(tmp_path):
    rows = [{"id": 1, "text": "Anna met Bob in Paris.", "annotation_id": 5, "annotator": 1,
             "label": [{"start": 0, "end": 4, "text": "Anna", "labels": ["PER"]},
                       {"start": 16, "end": 21, "text": "Paris", "labels": ["LOC"]}]},
            {"id": 2, "text": "No entities.", "annotation_id": 6, "annotator": 1},
            {"id": 3, "text": "Not annotated."}]
    path = save(tmp_path / "min.json", rows)
    assert formats.detect(path) == "label-studio"
    converted = formats.read(path)
    assert entities(converted.examples) == [[("Anna", 0, 4, "PER"), ("Paris", 16, 21, "LOC")], []]
    assert converted.report.counts == {"unannotated": 1}


@pytest.mark.parametrize("content, message", [
    ('[\n  {"data": {"text": "Anna"},\n   "annotations": [}\n]', r"bad.json:3: expected Label "
                                                              r"Studio tasks as JSON"),
    ('[{"data": {"text": "a"}} {"data": {}}]', r"bad.json:1: expected ',' or ']' after record 1"),
    ("", r"bad.json: expected Label Studio tasks as JSON, found an empty file"),
    ('[1, 2]', r"bad.json:1: expected a Label Studio task .*, found a number"),
    ('[\n{"data": {"id": 4}, "annotations": []}]', r"bad.json:2: expected a task with a text "
                                                    r"\(a string field 'text' in data\)"),
    ('[{"data": "Anna"}]', r"bad.json:1: expected the task's data as an object, found a string"),
    ('[{"data": {"text": "Anna"}, "annotations": {"result": []}}]',
     r"bad.json:1: expected annotations as a list of objects, found an object"),
    ('[{"data": {"text": "Anna"}, "annotations": [{"result": [{"type": "labels", "value": '
     '{"start": "0", "end": 4, "labels": ["PER"]}}]}]}]',
     r"bad.json:1: result 1: expected an integer start, found '0'"),
    ('[{"data": {"text": "Anna"}, "annotations": [{"result": [{"type": "labels", "value": '
     '{"start": 0, "end": 4.0, "labels": ["PER"]}}]}]}]',
     r"bad.json:1: result 1: expected an integer end, found 4.0"),
    ('[{"data": {"text": "Anna"}, "annotations": [{"result": [{"type": "labels", "value": '
     '{"start": 0, "end": 4, "labels": "PER"}}]}]}]',
     r"bad.json:1: result 1: expected labels as a list of names, found 'PER'"),
    ('[{"data": {"text": "Anna"}, "annotations": [{"result": [{"type": "labels", "value": '
     '{"start": 0, "end": 9, "labels": ["PER"]}}]}]}]',
     r"bad.json:1: expected a span with 0 <= start < end <= 4"),  # left to align
])
def test_bad_input_names_the_file_the_line_and_what_was_expected(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        formats.read(path, "label-studio")


def test_a_wrong_way_to_treat_unannotated_tasks_is_refused(tmp_path):
    path = save(tmp_path / "export.json", [task("Anna met Bob.")])
    with pytest.raises(UserError, match=r"expected unannotated= one of skip, keep, found 'all'"):
        label_studio.read(path, Report("export.json", "label-studio"), unannotated="all")


@pytest.mark.parametrize("head, expected", [
    ('[{"id": 1, "data": {"text": "a"}, "annotations": []}]', True),
    ('[{"data": {"text": "a"}, "predictions": []}]', True),
    ('[{"text": "a", "label": [{"start": 0, "end": 1, "labels": ["X"]}]}]', True),
    ('[{"id": 0, "paragraphs": [{"raw": "a", "sentences": []}]}]', False),
    ('{"text": "a", "label": [[0, 1, "X"]]}', False),
    ("Anna B-PER", False),
])
def test_looks_like_tells_tasks_from_other_json(tmp_path, head, expected):
    assert label_studio.looks_like(tmp_path / "x.json", head) is expected
