"""Runs on a public host, each its starter's: a start removes only its starter's oldest runs, and
only once it has won the job slot; a run takes no base model's name; its zip is made once, when
its job ends, and goes with it; only the starter sees a job's log, scores and zip; each visitor is
offered the host's runs and their own.

Handlers are called in-process with Gradio's ``OAuthProfile`` and a request's session, as Gradio
injects them (see test_access.py, whose stand-in fine-tune writes the files of a complete run);
the Hub is mocked at huggingface_hub's boundary.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import threading
import zipfile
from pathlib import Path
from unittest import mock

import gradio as gr
import pytest
from huggingface_hub.errors import RepositoryNotFoundError

from conftest import dead_pid, make_sentences, write_conll
from live_app import make_run
from ner_core import TrainConfig, hub, models, runs, tenancy
from ner_core.errors import UserError
from ner_core.jobs import FineTuneJobs, failure_reason
from studio import data as studio_data
from studio import finetune as ft
from studio import training as tr
from studio import access, zerogpu
from studio.models import STATE_SECONDS
from studio.page import Page
from test_access import (SETTINGS, SPACE, Trainer, finish, form, save_run, start,
                         start_and_wait, written)
from visitors import anonymous, signed_in

SKIP = {"__type__": "update"}


@pytest.fixture(autouse=True)
def public_host(monkeypatch, tmp_path):
    """A Space (``SPACE_ID``, so its owner is the account ``owner``) on a CPU host, whose
    datasets, temporary files and Hub cache (what the disk budget measures) are the test's."""
    for name in (*SETTINGS, "NER_ADMINS", "NER_PUBLIC", "GRADIO_SHARE", "GRADIO_SERVER_NAME",
                 "NER_TEMP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPACE_ID", SPACE)
    monkeypatch.setattr(zerogpu, "on_zero_gpu", lambda: False)
    monkeypatch.setattr(ft, "_trains_on_gpu", lambda: False)
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    monkeypatch.setenv("NER_DATA_HOME", str(tmp_path / "datasets"))
    monkeypatch.setattr(hub, "cache_dir", lambda: tmp_path / "hub")


class OwnerSeeingTrainer(Trainer):
    """``Trainer``, noting who the ledger says owns the run when training begins."""

    def __init__(self):
        super().__init__()
        self.owners: list[str | None] = []

    def __call__(self, config, data, output_dir, on_event, should_stop, **options):
        self.owners.append(runs.owner_of(output_dir.name, output_dir.parent))
        return super().__call__(config, data, output_dir, on_event, should_stop, **options)


@pytest.fixture
def trainer(monkeypatch):
    fake = OwnerSeeingTrainer()
    jobs = FineTuneJobs(fake)
    monkeypatch.setattr(ft, "JOBS", jobs)
    yield fake
    fake.release.set()
    jobs.wait(10)


@pytest.fixture
def train_file(tmp_path) -> Path:
    return write_conll(tmp_path / "train.txt", make_sentences(20, seed=1))


def owned_runs(runs_dir: Path, owners: dict[str, str | None]) -> None:
    """Complete runs, oldest first and a day apart, each with its owner and its zip."""
    for day, (name, owner) in enumerate(owners.items(), start=1):
        path = save_run(runs_dir / name)
        runs.set_owner(name, owner)
        runs.zip_run(name)
        os.utime(path, (day * 86_400, day * 86_400))


def assert_gone(runs_dir: Path, names) -> None:
    for name in names:
        assert not (runs_dir / name).exists(), name
        assert runs.owner_of(name) is None and not runs.zip_path(name).exists(), name


# 1. A start makes room among its starter's runs only, once it has won the job slot ---------------
# Before: each start deleted the oldest runs of anyone down to NER_MAX_RUNS, before it knew it had
# won the slot, so the first test lost the host's, the Space owner's and bob's runs, and in the
# second both starts deleted (every run went).

def test_a_start_removes_only_its_starter_s_oldest_runs(monkeypatch, trainer, train_file,
                                                        runs_dir):
    monkeypatch.setenv("NER_MAX_RUNS", "2")
    others = ["host-run", "owners-run", "bobs-old", "bobs-new"]
    owned_runs(runs_dir, {"host-run": None, "owners-run": "owner", "bobs-old": "bob",
                          "alices-old": "alice", "bobs-new": "bob", "alices-mid": "alice",
                          "alices-new": "alice"})
    for name in ("r1", "r2", "r3"):  # fine-tune after fine-tune, as many as alice likes
        start_and_wait(trainer, name, train_file, signed_in("alice"))
        finish(trainer)
    assert runs.runs_of("alice") == ["r3", "r2"]
    assert sorted(runs.list_runs()) == sorted([*others, "r2", "r3"])
    assert_gone(runs_dir, ["alices-old", "alices-mid", "alices-new", "r1"])
    assert all(runs.zip_path(name).is_file() for name in others)
    assert trainer.owners == ["alice"] * 3  # recorded before the run could appear


def test_of_two_starts_at_once_only_the_winner_makes_room(monkeypatch, trainer, train_file,
                                                          runs_dir):
    monkeypatch.setenv("NER_MAX_RUNS", "1")
    owned_runs(runs_dir, {"host-run": None, "alice-run": "alice", "carol-run": "carol"})
    # Each start passes every check of its own, and only then do both race for the one slot.
    both_checked = threading.Barrier(2, timeout=10)
    check_writable = runs.check_writable

    def check_then_wait(directory=None):
        check_writable(directory)
        both_checked.wait()

    monkeypatch.setattr(runs, "check_writable", check_then_wait)
    pruning = []
    prune_runs = runs.prune_runs
    monkeypatch.setattr(runs, "prune_runs",
                        lambda *args, **kwargs: pruning.append(args) or prune_runs(*args, **kwargs))
    outcomes = {}

    def press(who: str) -> None:
        try:
            outcomes[who] = start(f"{who}-new", train_file, signed_in(who))
        except gr.Error as error:
            outcomes[who] = error

    presses = [threading.Thread(target=press, args=(who,)) for who in ("alice", "carol")]
    for thread in presses:
        thread.start()
    for thread in presses:
        thread.join(20)
    (loser,) = [who for who, outcome in outcomes.items() if isinstance(outcome, gr.Error)]
    (winner,) = {"alice", "carol"} - {loser}
    assert "a fine-tune of another visitor is already running" in str(outcomes[loser])
    assert trainer.started.wait(10)
    finish(trainer)
    assert len(pruning) == 1
    assert sorted(runs.list_runs()) == sorted(["host-run", f"{loser}-run", f"{winner}-new"])
    assert_gone(runs_dir, [f"{winner}-run", f"{loser}-new"])


def test_the_run_trained_further_is_not_removed_to_make_room(monkeypatch, trainer, train_file,
                                                             runs_dir, tiny_bert):
    monkeypatch.setenv("NER_MAX_RUNS", "2")
    for day, name in enumerate(["alices-base", "alices-other"], start=1):
        path = make_run(runs_dir, name, tiny_bert)
        runs.set_owner(name, "alice")
        os.utime(path, (day * 86_400, day * 86_400))
    trainer.started.clear()
    next(ft.start_fine_tune("r1", "alices-base", "", "upload", str(train_file), None,
                            **signed_in("alice"), **form()))
    assert trainer.started.wait(10)
    finish(trainer)
    assert sorted(runs.runs_of("alice")) == ["alices-base", "r1"]  # the oldest, yet the base


def test_a_refusal_once_the_slot_is_won_gives_the_slot_back(tmp_path):
    jobs = FineTuneJobs(Trainer())

    def refuse() -> None:
        raise UserError("no room")

    with pytest.raises(UserError, match="no room"):
        jobs.begin(TrainConfig(), tmp_path / "a", owner="alice", prepare=refuse)
    assert jobs.snapshot().state == "idle" and runs.owner_of("a", tmp_path) is None

    jobs.begin(TrainConfig(), tmp_path / "b", owner="alice")
    assert runs.owner_of("b", tmp_path) == "alice"  # as soon as the slot is won
    jobs.end(None, None, tmp_path / "b")
    assert runs.owner_of("b", tmp_path) is None  # nothing was saved: no owner is left behind


def test_a_start_past_the_disk_budget_is_refused_before_anything(monkeypatch, trainer, train_file,
                                                                 runs_dir):
    monkeypatch.setenv("NER_MAX_DISK_MB", "1")
    monkeypatch.setenv("NER_MAX_RUNS", "1")
    owned_runs(runs_dir, {"alices-run": "alice"})
    (runs_dir / "alices-run" / "model.safetensors").write_bytes(b"\1" * 900_000)
    before = written(runs_dir)
    # Room for the uploaded file, not for the run (a MiniLM: tens of megabytes).
    with pytest.raises(gr.Error, match=r"this fine-tune's run needs about [\d,.]+ MB, and this "
                                       r"server's disk budget of 1\.0 MB \(NER_MAX_DISK_MB\) has "
                                       r"0\.\d MB left \(runs 0\.9 MB"):
        start("r1", train_file, signed_in("alice"))
    assert ft.JOBS.snapshot().state == "idle"
    assert written(runs_dir) == before and runs.list_runs() == ["alices-run"]  # nothing pruned
    assert runs.owner_of("r1") is None


# 2. A run takes no base model's name -------------------------------------------------------------
# Before: names were only checked for their letters, and with re.match(...$), which lets a
# trailing newline through; every name below was accepted.

WELL_KNOWN = "the name of a well-known model on the Hugging Face Hub"


@pytest.mark.parametrize("name, why", [
    ("default", "the bundled model's name"),
    ("Default", "the bundled model's name"),
    ("MiniLM", "the offline encoder's name"),
    ("distilbert-base-uncased", "the name of the recipe's base model"),
    ("DistilBERT-Base-Uncased", "the name of the recipe's base model"),
    ("bert-base-cased", WELL_KNOWN),
    ("bert-base-uncased", WELL_KNOWN),
    ("bert-large-cased-whole-word-masking", WELL_KNOWN),
    ("distilbert-base-multilingual-cased", WELL_KNOWN),
    ("roberta-base", WELL_KNOWN),
    ("XLM-RoBERTa-large", WELL_KNOWN),
    ("albert-base-v2", WELL_KNOWN),
    ("deberta-v3-base", WELL_KNOWN),
    ("electra-small-discriminator", WELL_KNOWN),
    ("gpt2", WELL_KNOWN),
])
def test_a_run_may_not_take_a_base_model_s_name(name, why):
    with pytest.raises(UserError, match=re.escape(f"expected a run name that no base model has, "
                                                  f"found {name!r}, {why}; choose another name")):
        tr.run_name(name)


def test_a_name_with_a_trailing_newline_is_refused():
    assert not runs.is_run_name("smoke\n") and runs.run_path("smoke\n") is None
    with pytest.raises(UserError, match=r"expected a run name of letters, digits, '-', '_' and "
                                        r"'\.', found 'smoke\\n'"):
        models.check_run_name("smoke\n")


def test_a_run_may_not_take_the_name_of_a_model_in_the_hub_cache(tmp_path):
    for folder in ("models--my-encoder", "models--someone--thing", "datasets--corpus"):
        (tmp_path / "hub" / folder).mkdir(parents=True)
    with pytest.raises(UserError, match="found 'My-Encoder', the name of a model in this server's "
                                        "Hub cache; choose another name"):
        models.check_run_name("My-Encoder")
    models.check_run_name("thing")  # the cache holds someone/thing, not a model named thing
    models.check_run_name("corpus")  # a data set


@pytest.fixture
def hub_models(monkeypatch):
    """The Hub reachable, knowing one model without a namespace: known-model."""
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)

    def model_info(name, **kwargs):
        if name.lower() == "known-model":
            return mock.Mock(id="known-model")
        raise RepositoryNotFoundError(f"404: {name}", response=mock.MagicMock(status_code=404))

    with mock.patch("huggingface_hub.HfApi", autospec=True) as api_class:
        api_class.return_value.model_info.side_effect = model_info
        yield api_class.return_value


def test_a_run_may_not_take_the_name_of_a_model_the_hub_knows(hub_models):
    with pytest.raises(UserError, match="found 'known-model', the name of a model on the Hugging "
                                        "Face Hub; choose another name"):
        models.check_run_name("known-model")
    models.check_run_name("my-run")
    assert [call.args[0] for call in hub_models.model_info.call_args_list] == ["known-model",
                                                                               "my-run"]


def test_a_hub_that_cannot_say_leaves_the_name_refused(hub_models):
    hub_models.model_info.side_effect = ConnectionError("connection reset")
    with pytest.raises(UserError, match=r"the Hugging Face Hub could not be asked whether a model "
                                        r"is named 'my-run' \(connection reset\)"):
        models.check_run_name("my-run")


def test_start_refuses_a_base_model_s_name_before_anything(trainer, train_file, runs_dir):
    with pytest.raises(gr.Error, match="found 'bert-base-cased', the name of a well-known model"):
        start("bert-base-cased", train_file, signed_in("alice"))
    assert ft.JOBS.snapshot().state == "idle" and written(runs_dir) == []


# 3. A zip, made once when the job ends, goes with its run ----------------------------------------
# Before: the first poll after a run zipped it into a temporary folder never removed.

def test_the_zip_is_made_when_the_job_ends_and_goes_with_its_run(monkeypatch, trainer, train_file,
                                                                 runs_dir):
    zipped = []
    zip_run = runs.zip_run
    monkeypatch.setattr(runs, "zip_run", lambda *args: zipped.append(args[0]) or zip_run(*args))
    start_and_wait(trainer, "r1", train_file, signed_in("alice"))
    assert not runs.zip_path("r1").exists()
    finish(trainer)
    archive = runs.zip_path("r1")
    assert archive == runs_dir / ".zips" / "r1.zip" and zipped == ["r1"]
    with zipfile.ZipFile(archive) as opened:
        assert set(runs.RUN_FILES) <= set(opened.namelist())
    assert ".zips" not in runs.list_runs()

    download = ft.poll(None, **signed_in("alice"))[5]
    # The runs directory is outside the temporary directory here (as /data is on a Space): the
    # page offers a link to the zip among alice's temporary files.
    assert os.path.samefile(download, archive)
    assert Path(download).is_relative_to(tenancy.temp_root())
    ft.poll(None, **signed_in("alice"))
    assert zipped == ["r1"]  # polls make no zip

    ft.delete_run("r1", **signed_in("alice"))
    assert not archive.exists() and os.listdir(runs_dir / ".zips") == []


def test_a_run_replaced_loses_its_old_zip(tmp_path):
    directory = tmp_path / "runs"
    save_run(directory / "r")
    old = runs.zip_run("r", directory)
    staging = runs.staging_dir(directory / "r")
    save_run(staging)
    runs.publish(staging, directory / "r")
    assert runs.list_runs(directory) == ["r"] and not old.exists()
    assert runs.zip_of("r", directory) is None


def test_start_up_removes_half_written_and_orphaned_zips(tmp_path):
    directory = tmp_path / "runs"
    save_run(directory / "kept")
    runs.zip_run("kept", directory)
    (directory / ".zips" / "gone.zip").write_bytes(b"PK")
    (directory / ".zips" / f".partial-kept-{dead_pid()}").write_bytes(b"PK")
    runs.remove_stale_staging(directory)
    assert os.listdir(directory / ".zips") == ["kept.zip"]
    assert runs.list_runs(directory) == ["kept"]


# 4. Only the starter sees a job's log, curves, scores and zip ------------------------------------
# Before: every visitor's poll got them all, the zip of anyone's run included.

def test_only_the_starter_and_admins_see_what_a_job_made(trainer, train_file):
    start_and_wait(trainer, "r1", train_file, signed_in("alice"))
    finish(trainer)
    for who in (signed_in("bob"), anonymous("s1"), {}):
        progress, losses, scores, log, table, download, error, zipped = ft.poll(None, **who)
        assert "<b>finished</b> · a fine-tune of another visitor · " in progress
        assert "r1" not in progress and "alice" not in progress
        assert (log, error, zipped, table, download) == ("", "", None, SKIP, SKIP)
        assert losses.empty and scores.empty
    for who in (signed_in("alice"), signed_in("owner")):  # the starter, and the Space's owner
        progress, losses, _, log, table, download, _, zipped = ft.poll(None, **who)
        assert "<b>finished</b> · r1 · " in progress and "started by alice" in progress
        assert log.splitlines()[-1].endswith("finished; saved as r1") and not losses.empty
        assert zipfile.is_zipfile(download) and zipped == "r1" and table is not SKIP


def test_a_failure_is_told_to_its_starter_only(trainer, train_file, monkeypatch):
    monkeypatch.setattr(trainer, "stops", None)  # the fake fails as it starts
    start("r1", train_file, signed_in("alice"))
    assert ft.JOBS.wait(10).state == "failed"
    assert ft.poll(None, **signed_in("alice"))[6].startswith("**Failed:** the fine-tune hit a "
                                                             "fault of the studio")
    assert ft.poll(None, **signed_in("bob"))[6] == ""


# 5. Each visitor is offered the host's runs and their own ----------------------------------------

@pytest.fixture
def everyone_s_runs(runs_dir) -> None:
    owned_runs(runs_dir, {"host-run": None, "owners-run": "owner", "alices-run": "alice",
                          "bobs-run": "bob"})


def offered(page: Page, who) -> dict[str, list[str]]:
    model, base, run, seen = page._refresh(None, None, None, None, who=who)
    return {"models": [v for _, v in model.choices], "bases": [v for _, v in base.choices],
            "runs": [v for _, v in run.choices], "seen": seen}


@pytest.mark.parametrize("who, models, manages", [
    (None, ["owners-run", "host-run"], []),  # the page as built, before any visitor
    (anonymous("s1"), ["owners-run", "host-run"], []),
    (signed_in("alice"), ["alices-run", "owners-run", "host-run"], ["alices-run"]),
    (signed_in("bob"), ["bobs-run", "owners-run", "host-run"], ["bobs-run"]),
    (signed_in("owner"), ["bobs-run", "alices-run", "owners-run", "host-run"],
     ["bobs-run", "alices-run", "owners-run", "host-run"]),
], ids=["page", "anonymous", "alice", "bob", "space owner"])
def test_each_visitor_s_pickers_offer_the_host_s_runs_and_their_own(everyone_s_runs, who, models,
                                                                    manages):
    with gr.Blocks() as demo:
        page = Page(demo, gr.Timer(1.0))
        page.model_pickers.append(gr.Dropdown())
        page.base_pickers.append(gr.Dropdown())
        page.run_pickers.append(gr.Dropdown())
    visitor = None if who is None else access.visitor(**who)
    shown = offered(page, visitor)
    runs_offered = [name for name in shown["models"] if name != "default"]
    assert runs_offered == models and shown["seen"][-len(models):] == models
    assert [b for b in shown["bases"] if b in runs.list_runs()] == models
    assert shown["runs"] == manages  # delete and push: only what the visitor may manage


def test_the_page_as_built_names_no_visitor_s_run(everyone_s_runs):
    import app

    demo = app.build_demo()
    config = json.dumps(demo.get_config_file(), default=repr)
    assert "host-run" in config and "owners-run" in config
    assert "alices-run" not in config and "bobs-run" not in config
    states = [block for block in demo.blocks.values() if isinstance(block, gr.State)]
    assert states and {state.time_to_live for state in states} == {STATE_SECONDS}


def test_another_visitor_s_run_is_no_base(everyone_s_runs, trainer, train_file, runs_dir):
    with pytest.raises(gr.Error, match="expected a listed base model or a Hub id, found "
                                       "'alices-run'"):
        next(ft.start_fine_tune("r1", "alices-run", "", "upload", str(train_file), None,
                                **signed_in("bob"), **form()))
    assert ft.JOBS.snapshot().state == "idle"
    assert ft.fill_form("alices-run", "auto", **signed_in("bob")) == [SKIP] * len(tr.FORM)


def test_datasets_are_listed_and_trained_on_as_their_owner_s(monkeypatch, trainer, train_file):
    asked = []

    def dataset_names(*, owner=None):
        asked.append(owner)
        return ["mine"]

    monkeypatch.setattr(ft.dataset_paths, "dataset_names", dataset_names)
    assert ft.list_datasets("mine", **anonymous("s1")).value == "mine"
    assert asked == ["session:s1"]

    owners = []

    class Recorded(studio_data.TrainingData):
        def __init__(self, *args, owner=None, **kwargs):
            owners.append(owner)
            super().__init__(*args, owner=owner, **kwargs)

    monkeypatch.setattr(ft, "TrainingData", Recorded)
    start_and_wait(trainer, "r1", train_file, signed_in("alice"))
    assert owners == ["alice"]


# 6. Visitors see names, never server paths -------------------------------------------------------

@pytest.mark.parametrize("public", [True, False])
def test_a_runs_directory_that_cannot_be_written_is_not_shown_on_a_public_host(monkeypatch,
                                                                              public):
    if not public:
        monkeypatch.delenv("SPACE_ID")
    full = OSError(errno.ENOSPC, "No space left on device")
    told = runs.not_writable(Path("/srv/private/runs"), full)
    assert told.startswith("the runs directory /srv/private/runs cannot be written" if not public
                           else "the runs directory cannot be written (No space left on device)")
    elsewhere = OSError(errno.EROFS, "Read-only file system", "/srv/private/tmp/trainer")
    reason = failure_reason(elsewhere, TrainConfig(), Path("/srv/private/runs/r1"))
    assert ("/srv/private" in reason) is not public and "cannot be written" in reason
