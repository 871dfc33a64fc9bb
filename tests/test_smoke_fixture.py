from ner_core import Recognizer, load_data


def test_fixtures_load(tiny_model, conll_dir):
    data = load_data(conll_dir)
    assert set(data) == {"train", "validation", "test"}
    entities = Recognizer(str(tiny_model)).recognize("anna weber visited berlin.")
    assert all(e["text"] == "anna weber visited berlin."[e["start"]:e["end"]] for e in entities)
