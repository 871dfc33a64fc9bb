"""Datasets of accepted annotations on a public host: each visitor's are their own (listed, read,
exported, added to and undone only by them), admins see and manage every tenant's, and quotas and
the disk budget bound them. Through the engine with owner strings, and through the Annotate tab's
handlers called in-process with Gradio's ``OAuthProfile`` and a request's session, as Gradio
injects them. Off a public host nothing changes.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest
from visitors import anonymous, signed_in

from ner_core import annotations, dataset_export, dataset_paths, hub, tenancy
from ner_core.errors import UserError
from studio import annotate, annotate_queue
from studio import data as studio_data

SETTINGS = ("SPACE_ID", "SPACE_AUTHOR_NAME", "NER_PUBLIC", "GRADIO_SHARE", "GRADIO_SERVER_NAME",
            "NER_ADMINS", "NER_FINETUNE_ACCESS", "NER_DATA_DIR", *tenancy.PUBLIC_DEFAULTS)
ALICE, BOB = "alice", "session:bob-tab"  # a signed-in visitor; an anonymous one
TEXT = "Anna Weber visited Berlin."
ENTITIES = [{"start": 0, "end": 10, "label": "PER"}, {"start": 19, "end": 25, "label": "LOC"}]
OTHERS = ("expected the name of a dataset of yours, of letters, digits, '-', '_' and '.', found "
          "'u-alice/corrections': only an admin of this server names another visitor's dataset")


@pytest.fixture(autouse=True)
def public(monkeypatch, tmp_path) -> Path:
    """A public host (``NER_PUBLIC=1``, no Space: anyone may add to a dataset) with its datasets
    and temporary files under ``tmp_path``; the data home."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NER_PUBLIC", "1")
    monkeypatch.setenv("NER_DATA_HOME", str(tmp_path / "datasets"))
    monkeypatch.setenv("NER_TEMP_DIR", str(tmp_path / "temporary"))
    monkeypatch.setattr(hub, "cache_dir", lambda: tmp_path / "hub")
    monkeypatch.setattr(tenancy, "DISK", tenancy.DiskBudget())  # measured afresh in each test
    return tmp_path / "datasets"


@contextmanager
def refused(message: str):
    """A handler's ``gr.Error`` saying exactly ``message``."""
    with pytest.raises(gr.Error) as error:
        yield
    assert error.value.message == message


def texts_of(path: str | Path) -> list[str]:
    return [json.loads(line)["text"] for line in Path(path).read_text().splitlines()]


# The engine -----------------------------------------------------------------------------------


def test_two_visitors_datasets_of_one_name_are_apart(public):
    assert annotations.append("corrections", TEXT, ENTITIES, owner=ALICE) == {"LOC": 1, "PER": 1}
    assert annotations.append("corrections", "Oslo.", [{"start": 0, "end": 4, "label": "LOC"}],
                              owner=BOB) == {"LOC": 1}

    assert (public / "u-alice" / "corrections.jsonl").is_file()
    assert (public / tenancy.tenant_key(BOB) / "corrections.jsonl").is_file()
    assert not (public / "corrections.jsonl").exists()
    assert dataset_paths.dataset_names(owner=ALICE) == dataset_paths.dataset_names(owner=BOB) \
        == ["corrections"]
    assert dataset_paths.dataset_names() == []  # the host's own: none yet
    assert [e["text"] for e in annotations.examples("corrections", owner=BOB)] == ["Oslo."]
    assert annotations.tally("corrections", owner=ALICE) == (1, {"LOC": 1, "PER": 1})


def test_a_visitor_cannot_reach_another_visitors_dataset(public, tmp_path):
    annotations.append("corrections", TEXT, ENTITIES, owner=ALICE)
    for call in (lambda: annotations.examples("u-alice/corrections", owner=BOB),
                 lambda: annotations.counts("u-alice/corrections", owner=BOB),
                 lambda: annotations.append("u-alice/corrections", "Hi.", [], owner=BOB),
                 lambda: annotations.remove_last("u-alice/corrections", TEXT, owner=BOB),
                 lambda: dataset_export.to_sentences("u-alice/corrections", owner=BOB),
                 lambda: dataset_export.export_conll("u-alice/corrections", tmp_path / "x.conll",
                                                     owner=BOB),
                 lambda: dataset_export.export_jsonl("u-alice/corrections", tmp_path / "x.jsonl",
                                                     owner=BOB)):
        with pytest.raises(UserError, match=f"^{re.escape(OTHERS)}$"):
            call()
    # Under its own name, bob's dataset of that name is another one.
    assert annotations.remove_last("corrections", TEXT, owner=BOB) is False
    with pytest.raises(UserError, match="^expected accepted examples in the dataset "
                                        "'corrections', found none$"):
        dataset_export.export_jsonl("corrections", tmp_path / "x.jsonl", owner=BOB)
    assert texts_of(public / "u-alice" / "corrections.jsonl") == [TEXT]
    assert not (tmp_path / "x.jsonl").exists()


def test_an_admin_lists_every_tenants_datasets_and_manages_them(public, monkeypatch, tmp_path):
    monkeypatch.setenv("NER_ADMINS", "carol")
    annotations.append("corrections", TEXT, ENTITIES, owner=ALICE)
    annotations.append("mine", "Oslo.", [], owner="carol")
    annotations.append("cli", "Lima.", [])  # the host's own, as the command line writes them
    annotations.append("corrections", "Kyoto.", [], owner=BOB)

    bob_key = tenancy.tenant_key(BOB)
    assert dataset_paths.dataset_names(owner="carol") \
        == ["mine", "local/cli", f"{bob_key}/corrections", "u-alice/corrections"]
    path = dataset_export.export_jsonl("u-alice/corrections", tmp_path / "alice.jsonl",
                                       owner="carol")
    assert texts_of(path) == [TEXT]
    assert annotations.append("u-alice/corrections", "Li Wei.", [], owner="carol") \
        == {"LOC": 1, "PER": 1}
    assert annotations.remove_last("u-alice/corrections", "Li Wei.", owner="carol") is True
    assert annotations.examples("local/cli", owner="carol")[0]["text"] == "Lima."
    # Nobody else sees them; a name that is not a tenant's folder is refused, even for an admin.
    assert dataset_paths.dataset_names(owner=ALICE) == ["corrections"]
    for bad in ("../corrections", "u-alice/../x", "u-alice/x\n", "tmp/x"):
        with pytest.raises(UserError, match="^expected "):
            dataset_paths.dataset_path(bad, owner="carol")


def test_names_are_checked_whole(public):
    with pytest.raises(UserError, match=r"^expected a dataset name of letters, digits, '-', '_' "
                                        r"and '\.', found 'corrections\\n'$"):
        annotations.append("corrections\n", TEXT, [], owner=ALICE)
    assert not list(public.rglob("*.jsonl"))


# Quotas and the disk budget -------------------------------------------------------------------


def test_past_the_number_of_datasets_a_new_one_is_refused(public, monkeypatch):
    monkeypatch.setenv("NER_MAX_DATASETS", "2")
    annotations.append("one", TEXT, [], owner=ALICE)
    annotations.append("two", TEXT, [], owner=ALICE)
    with pytest.raises(UserError, match=r"^expected at most 2 datasets of yours on this server "
                                        r"\(NER_MAX_DATASETS\), found 3$"):
        annotations.append("three", TEXT, [], owner=ALICE)
    assert dataset_paths.dataset_names(owner=ALICE) == ["one", "two"]
    annotations.append("two", TEXT, [], owner=ALICE)  # an existing one takes more
    annotations.append("three", TEXT, [], owner=BOB)  # per owner


@pytest.mark.parametrize("setting, text, entities, message", [
    ("NER_MAX_ACCEPT_CHARS=10", TEXT, [],
     r"^expected at most 10 characters in one accepted text on this server "
     r"\(NER_MAX_ACCEPT_CHARS\), found 26$"),
    ("NER_MAX_ACCEPT_ENTITIES=1", TEXT, ENTITIES,
     r"^expected at most 1 entities in one accepted text on this server "
     r"\(NER_MAX_ACCEPT_ENTITIES\), found 2$"),
])
def test_an_example_past_its_limits_is_refused(public, monkeypatch, setting, text, entities,
                                               message):
    monkeypatch.setenv(*setting.split("="))
    with pytest.raises(UserError, match=message):
        annotations.append("corrections", text, entities, owner=ALICE)
    assert dataset_paths.dataset_names(owner=ALICE) == []


def test_past_the_number_of_examples_the_dataset_takes_no_more(public, monkeypatch):
    monkeypatch.setenv("NER_MAX_DATASET_RECORDS", "2")
    annotations.append("corrections", "One.", [], owner=ALICE)
    annotations.append("corrections", "Two.", [], owner=ALICE)
    with pytest.raises(UserError, match=r"^expected at most 2 accepted examples in the dataset "
                                        r"'corrections' on this server "
                                        r"\(NER_MAX_DATASET_RECORDS\), found 3$"):
        annotations.append("corrections", "Three.", [], owner=ALICE)
    assert annotations.remove_last("corrections", "Two.", owner=ALICE)
    annotations.append("corrections", "Three.", [], owner=ALICE)  # room again after an undo
    assert texts_of(public / "u-alice" / "corrections.jsonl") == ["One.", "Three."]


def test_an_example_that_would_pass_the_disk_budget_is_refused(public, monkeypatch):
    monkeypatch.setenv("NER_MAX_DISK_MB", "1")
    public.mkdir(parents=True)
    (public / "big.bin").write_bytes(b"x" * 1_100_000)
    with pytest.raises(UserError, match=r"^this example needs about 0\.1 kB, and this server's "
                                        r"disk budget of 1\.0 MB \(NER_MAX_DISK_MB\) has 0\.0 kB "
                                        r"left \(datasets 1\.1 MB in use\)"):
        annotations.append("corrections", TEXT, [], owner=ALICE)
    assert not (public / "u-alice").exists()


# Off a public host ----------------------------------------------------------------------------


def test_off_a_public_host_every_dataset_is_the_local_users(public, monkeypatch):
    monkeypatch.delenv("NER_PUBLIC")
    annotations.append("corrections", TEXT, ENTITIES, owner=ALICE)
    annotations.append("corrections", "Oslo.", [], owner=BOB)
    assert texts_of(public / "corrections.jsonl") == [TEXT, "Oslo."]
    assert dataset_paths.dataset_names(owner=BOB) == dataset_paths.dataset_names() \
        == ["corrections"]
    with pytest.raises(UserError, match=r"^expected a dataset name of letters, digits, '-', '_' "
                                        r"and '\.', found 'u-alice/corrections'$"):
        annotations.examples("u-alice/corrections", owner="carol")
    for name in tenancy.PUBLIC_DEFAULTS:  # and no limit applies
        assert tenancy.limit(name) is None


# The Annotate tab -----------------------------------------------------------------------------


def test_the_tab_keeps_each_visitors_datasets_to_them(public):
    alice, bob = signed_in("alice"), anonymous("bob-tab")
    assert annotate.accept("corrections", TEXT, ENTITIES, **alice) == {"LOC": 1, "PER": 1}
    picker, counts, summary = annotate.show_dataset("corrections", **bob)
    assert picker.choices == [("corrections", "corrections")]
    assert counts.values.tolist() == [] and summary == "`corrections`: 0 accepted texts, 0 entities"
    picker, counts, summary = annotate.show_dataset("corrections", **alice)
    assert summary == "`corrections`: 1 accepted texts, 2 entities"
    assert str(public) not in summary

    with refused("expected accepted examples in the dataset 'corrections', found none"):
        annotate.export_dataset("corrections", **bob)
    with refused("expected accepted examples in the dataset 'corrections', found none"):
        annotate.export_jsonl("corrections", **bob)
    for handler in (annotate.export_dataset, annotate.export_jsonl, annotate.show_dataset):
        with refused(OTHERS):
            handler("u-alice/corrections", **bob)
    with refused(OTHERS):
        annotate.accept("u-alice/corrections", "Hi.", [], **bob)
    with refused(OTHERS):
        annotate.fine_tune_on("u-alice/corrections", dict(annotate.EMPTY), "tiny", **bob)

    # Bob's undo of what alice accepted reaches only bob's dataset of that name.
    last = {**annotate.suggested({"text": TEXT, "entities": ENTITIES, "model": "tiny"}),
            "dataset": "corrections"}
    with refused("nothing to undo: the dataset's last example is not your last accept"):
        annotate.undo(last, dict(annotate.EMPTY), None, **bob)
    assert texts_of(public / "u-alice" / "corrections.jsonl") == [TEXT]

    exported = Path(annotate.export_jsonl("corrections", **alice))
    assert texts_of(exported) == [TEXT]
    assert exported.parent.parent == tenancy.temp_root() / "u-alice" / annotate.EXPORTS


def test_the_tab_accepts_and_undoes_in_the_visitors_own_dataset(public):
    bob = anonymous("bob-tab")
    current = annotate.suggested({"text": TEXT, "entities": ENTITIES, "model": "tiny"})
    last, *_, picker, counts, summary = annotate.accept_current("corrections", TEXT, current,
                                                                None, **bob)
    path = public / tenancy.tenant_key(BOB) / "corrections.jsonl"
    assert texts_of(path) == [TEXT] and summary == "`corrections`: 1 accepted texts, 2 entities"
    with refused("nothing to undo: the dataset's last example is not your last accept"):
        annotate.undo(last, dict(annotate.EMPTY), None, **anonymous("eve-tab"))
    assert texts_of(path) == [TEXT]
    undone = annotate.undo(last, dict(annotate.EMPTY), None, **bob)
    assert undone[3] == TEXT and path.read_text() == ""
    # The undone text waits in a queue kept in bob's temporary folder.
    assert undone[2] is None  # nothing else was queued
    queues = tenancy.temp_root() / tenancy.tenant_key(BOB) / annotate_queue.QUEUES
    assert not list(queues.iterdir())


def test_an_admin_lists_and_exports_another_visitors_dataset_in_the_tab(public, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "owner/space")  # the Space's owner is an admin
    annotate.accept("corrections", TEXT, ENTITIES, **signed_in("alice"))
    picker, *_ = annotate.show_dataset("corrections", **signed_in("owner"))
    assert ("u-alice/corrections", "u-alice/corrections") in picker.choices
    *_, summary = annotate.show_dataset("u-alice/corrections", **signed_in("owner"))
    assert summary == "`u-alice/corrections`: 1 accepted texts, 2 entities"
    exported = Path(annotate.export_jsonl("u-alice/corrections", **signed_in("owner")))
    assert exported.name == "corrections.jsonl" and texts_of(exported) == [TEXT]
    assert exported.parent.parent == tenancy.temp_root() / "u-owner" / annotate.EXPORTS
    conll = Path(annotate.export_dataset("u-alice/corrections", **signed_in("owner")))
    assert conll.name == "corrections.conll"
    with refused(OTHERS):  # alice is no admin
        annotate.show_dataset("u-alice/corrections", **signed_in("bob"))


def test_a_request_without_a_session_is_refused_on_a_public_host(public):
    with refused("expected a browser session or a signed-in account to add examples to a "
                 "dataset on this server, found neither; open the page in a browser or send a "
                 "session_hash"):
        annotate.accept("corrections", TEXT, [])
    with refused("expected a browser session or a signed-in account to keep your datasets apart "
                 "from others' on this server, found neither"):
        annotate.export_jsonl("corrections")
    assert not public.exists() or not list(public.rglob("*.jsonl"))


def test_a_visitors_second_heavy_call_waits_for_the_first(public):
    with tenancy.HEAVY.hold(BOB, "file queue"):
        with refused("wait for your file queue to finish before starting suggestion: one heavy "
                     "call per visitor at a time on this server"):
            annotate.suggest(TEXT, "tiny", **anonymous("bob-tab"))
        with refused("wait for your file queue to finish before starting file queue: one heavy "
                     "call per visitor at a time on this server"):
            annotate.queue_file("texts.txt", "text", "tiny", None, **anonymous("bob-tab"))


# Fine-tuning on a dataset ---------------------------------------------------------------------


def test_fine_tune_on_this_dataset_offers_the_visitors_own_datasets(public, biased):
    annotate.accept("corrections", TEXT, ENTITIES, **signed_in("alice"))
    annotate.accept("bobs-own", TEXT, [], **anonymous("bob-tab"))
    source, dataset, base, *_, note = annotate.fine_tune_on(
        "corrections", dict(annotate.EMPTY), biased, **signed_in("alice"))
    assert (source, dataset.value, base) == ("dataset", "corrections", "biased")
    assert dataset.choices == [("corrections", "corrections")]
    assert note == "The Fine-tune tab is set to train `biased` on `corrections`: open it to start."


def test_training_data_reads_the_owners_dataset_and_names_no_server_path(public):
    annotations.append("corrections", TEXT, ENTITIES, owner=ALICE)
    data = studio_data.TrainingData("dataset", None, None, "corrections", owner=ALICE)
    assert data.train_sentences == 1 and data.name == "corrections.conll"
    with pytest.raises(UserError, match="^the dataset 'corrections' holds no accepted examples "
                                        "yet; accept some in the Annotate tab first$"):
        studio_data.TrainingData("dataset", None, None, "corrections", owner=BOB)
    with pytest.raises(UserError, match=f"^{re.escape(OTHERS)}$"):
        studio_data.TrainingData("dataset", None, None, "u-alice/corrections", owner=BOB)

    path = public / "u-alice" / "corrections.jsonl"
    path.write_text(path.read_text() + "not json\n")
    with pytest.raises(UserError) as error:
        studio_data.TrainingData("dataset", None, None, "corrections", owner=ALICE)
    assert str(error.value).startswith("corrections.jsonl:2: expected an accepted example as a "
                                       "JSON object, found invalid JSON")
    assert str(public) not in str(error.value)


def test_conll2003_from_a_directory_is_named_without_it_on_a_public_host(public, monkeypatch,
                                                                         tmp_path):
    missing = tmp_path / "server-only" / "conll"
    monkeypatch.setenv("NER_DATA_DIR", str(missing))
    studio_data.conll2003.cache_clear()
    assert studio_data.conll2003_name() == "conll2003"
    with pytest.raises(UserError) as error:
        studio_data.conll2003()
    assert "server-only" not in str(error.value) and "$NER_DATA_DIR" in str(error.value)
    monkeypatch.delenv("NER_PUBLIC")
    assert studio_data.conll2003_name() == str(missing.resolve())
