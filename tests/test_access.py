"""The studio as a hosted Space: who may fine-tune, stop, delete and push, and the limits that keep
one visitor from starving the rest; and a stop aimed at one job never reaching the next.

Handlers are called in-process with Gradio's ``OAuthProfile`` and a request's session, as Gradio
injects them. Fine-tunes are a stand-in (``Trainer``) that writes the files of a complete run, so
no model trains here; the Hub is mocked at huggingface_hub's boundary.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import tempfile
import threading
from pathlib import Path
from unittest import mock

import gradio as gr
import pytest
from huggingface_hub.hf_api import ModelInfo

from conftest import make_sentences, write_conll
from visitors import anonymous, signed_in
from ner_core import TrainConfig, hub, models, runs
from ner_core.jobs import FineTuneJobs, LoadedData, StopRequest
from ner_core.training import TrainProgress, TrainResult
from studio import access, zerogpu
from studio import data as studio_data
from studio import finetune as ft
from studio import highlight as hl
from studio import training as tr
from studio.models import model_choices, pick

SPACE = "owner/space"
MB = 1_000_000
SETTINGS = ("SPACE_ID", "SPACE_AUTHOR_NAME", "NER_FINETUNE_ACCESS", *access.SPACE_DEFAULTS)


def form(**changes) -> dict:
    """The Fine-tune form's values as the page sends them (gr.Number gives floats)."""
    values = {"learning_rate": 3e-4, "train_batch_size": 16.0, "epochs": 1.0, "seed": 42.0,
              "weight_decay": 0.01, "warmup_ratio": 0.1, "max_length": 64.0,
              "max_train_sentences": 0.0, "document_context": False, "label_all_tokens": False}
    return {**values, **changes}


def save_run(directory: Path) -> Path:
    """The files that make ``directory`` a complete run (their contents are never read here)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in runs.RUN_FILES:
        (directory / name).write_text("{}")
    return directory


def written(runs_dir: Path) -> list[str]:
    """Everything in the runs directory, hidden entries too."""
    return sorted(p.name for p in runs_dir.iterdir()) if runs_dir.exists() else []


class Trainer:
    """Stands in for ``fine_tune``: reports a step, trains until asked to stop (or released), then
    saves a complete run."""

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()
        self.stops: list[StopRequest] = []  # the should_stop of each job, in order

    def __call__(self, config, data, output_dir, on_event, should_stop, **options):
        self.stops.append(should_stop)
        on_event(TrainProgress(1, 10, 0.1, 0.5, 1e-4, 1.0, 1.5, kind="log"))
        self.started.set()
        for _ in range(1500):  # at most ~30 s, so a broken stop fails the test instead of hanging
            if should_stop() or self.release.wait(0.02):
                break
        stopped = should_stop()
        save_run(output_dir)
        return TrainResult(output_dir, {}, stopped, 1 if stopped else 10, 10, 0.1)


@pytest.fixture(autouse=True)
def off_a_space(monkeypatch, tmp_path):
    """No Space settings unless a test sets them; a CPU host; stop files, datasets and the Hub
    cache (what the disk budget measures) under the test's directory."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(zerogpu, "on_zero_gpu", lambda: False)
    monkeypatch.setattr(ft, "_trains_on_gpu", lambda: False)
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    monkeypatch.setenv("NER_DATA_HOME", str(tmp_path / "datasets"))
    monkeypatch.setattr(hub, "cache_dir", lambda: tmp_path / "hub")


@pytest.fixture
def space(monkeypatch):
    monkeypatch.setenv("SPACE_ID", SPACE)


@pytest.fixture
def trainer(monkeypatch):
    """The app's job, running ``Trainer``; every job it started has ended after the test."""
    fake = Trainer()
    jobs = FineTuneJobs(fake)
    monkeypatch.setattr(ft, "JOBS", jobs)
    yield fake
    fake.release.set()
    jobs.wait(10)


@pytest.fixture
def train_file(tmp_path) -> Path:
    return write_conll(tmp_path / "train.txt", make_sentences(20, seed=1))


def start(name: str, train_file: Path | None, who: dict, source: str = "upload", base_hub: str = "",
          **changes) -> str:
    """Press Start; the command line it shows (the job runs in the background)."""
    return next(ft.start_fine_tune(name, "minilm", base_hub, source,
                                   str(train_file) if train_file else None, None, **who,
                                   **form(**changes)))


def start_and_wait(trainer: Trainer, name: str, train_file: Path, who: dict, **changes) -> None:
    trainer.started.clear()
    start(name, train_file, who, **changes)
    assert trainer.started.wait(10), "the fine-tune never started"


def finish(trainer: Trainer) -> None:
    """Let the running fake fine-tune end and save its run."""
    trainer.release.set()
    assert not ft.JOBS.wait(10).active
    trainer.release.clear()


def assert_refused_before_anything(runs_dir: Path, call, message: str) -> None:
    with pytest.raises(gr.Error, match=message):
        call()
    assert ft.JOBS.snapshot().state == "idle"
    assert written(runs_dir) == []


# 1. Who may start a fine-tune --------------------------------------------------------------------

def test_a_space_asks_anonymous_visitors_to_sign_in(space, trainer, train_file, runs_dir):
    assert_refused_before_anything(
        runs_dir, lambda: start("r1", train_file, anonymous("s1")),
        r"sign in with Hugging Face \(the button at the top of the page\) to fine-tune on this Space")

    start_and_wait(trainer, "r1", train_file, signed_in("alice"))
    snapshot = ft.JOBS.snapshot()
    assert (snapshot.state, snapshot.run_name, snapshot.owner) == ("running", "r1", "alice")
    assert runs.owner_of("r1") == "alice"


@pytest.mark.parametrize("author, owner, visitor", [
    (None, "owner", "alice"),       # the owner part of SPACE_ID
    ("carol", "carol", "owner"),    # SPACE_AUTHOR_NAME wins over SPACE_ID
])
def test_owner_only_access(space, monkeypatch, trainer, train_file, runs_dir, author, owner, visitor):
    monkeypatch.setenv("NER_FINETUNE_ACCESS", "owner")
    if author:
        monkeypatch.setenv("SPACE_AUTHOR_NAME", author)
    for who in (signed_in(visitor), anonymous("s1")):
        assert_refused_before_anything(
            runs_dir, lambda: start("r1", train_file, who),
            rf"only the owner of this Space \({owner}\) may fine-tune here; duplicate the Space")

    start_and_wait(trainer, "r1", train_file, signed_in(owner))
    assert ft.JOBS.snapshot().owner == owner


def test_off_a_space_nobody_is_asked_to_sign_in(trainer, train_file):
    start_and_wait(trainer, "r1", train_file, {})
    snapshot = ft.JOBS.snapshot()
    assert (snapshot.state, snapshot.owner) == ("running", None)
    ft.stop_fine_tune()  # the one local user may stop it
    assert ft.JOBS.wait(10).state == "stopped"


def test_a_bad_access_setting_is_named(space, monkeypatch, trainer, train_file, runs_dir):
    monkeypatch.setenv("NER_FINETUNE_ACCESS", "everyone")
    assert_refused_before_anything(
        runs_dir, lambda: start("r1", train_file, signed_in("alice")),
        r"the setting NER_FINETUNE_ACCESS must be one of anyone, signed-in, owner, found 'everyone'")


# 2. Who may stop the running fine-tune -----------------------------------------------------------

def test_only_the_starter_or_the_space_owner_stops_a_job(space, trainer, train_file):
    start_and_wait(trainer, "r1", train_file, signed_in("alice"))
    with pytest.raises(gr.Error, match=r"the running fine-tune is another visitor's: only they "
                                       r"or an admin of this server can stop it"):
        ft.stop_fine_tune(**signed_in("bob"))
    with pytest.raises(gr.Error, match=r"the running fine-tune is another visitor's"):
        ft.stop_fine_tune(**anonymous("s1"))
    assert ft.JOBS.snapshot().state == "running" and not trainer.stops[0]()

    # Alice's page shows her job, and who started it by account name; any other page only that
    # another visitor's fine-tune runs.
    shown = ft.poll(None, **signed_in("alice"))[0]
    assert shown == tr.progress_html(ft.JOBS.snapshot())
    assert "<b>running</b> · r1 · " in shown and "started by alice" in shown
    for other in (signed_in("bob"), anonymous("s1")):
        shown = ft.poll(None, **other)[0]
        assert "<b>running</b> · a fine-tune of another visitor · " in shown
        assert "r1" not in shown and "alice" not in shown

    ft.stop_fine_tune(**signed_in("alice"))
    assert ft.JOBS.snapshot().state == "stopping"
    assert ft.JOBS.wait(10).state == "stopped"

    start_and_wait(trainer, "r2", train_file, signed_in("alice"))
    ft.stop_fine_tune(**signed_in("owner"))  # the Space's owner
    assert ft.JOBS.wait(10).state == "stopped"


def test_an_anonymous_job_belongs_to_its_session(space, monkeypatch, trainer, train_file):
    monkeypatch.setenv("NER_FINETUNE_ACCESS", "anyone")
    start_and_wait(trainer, "r1", train_file, anonymous("s1"))
    assert ft.JOBS.snapshot().owner == "session:s1"
    shown = ft.poll(None, **anonymous("s1"))[0]
    assert "started by an anonymous visitor" in shown and "s1" not in shown

    with pytest.raises(gr.Error, match=r"the running fine-tune is another visitor's: only they "
                                       r"or an admin of this server can stop it"):
        ft.stop_fine_tune(**anonymous("s2"))
    assert ft.JOBS.snapshot().state == "running"

    ft.stop_fine_tune(**anonymous("s1"))
    assert ft.JOBS.wait(10).state == "stopped"


# 3. Limits ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("setting, epochs, message", [
    (None, 100.0, r"epochs must be at most 10 on this server \(NER_MAX_EPOCHS\), found 100"),
    ("3", 5.0, r"epochs must be at most 3 on this server \(NER_MAX_EPOCHS\), found 5"),
])
def test_epochs_over_the_limit_are_refused(space, monkeypatch, trainer, train_file, runs_dir,
                                           setting, epochs, message):
    if setting:
        monkeypatch.setenv("NER_MAX_EPOCHS", setting)
    assert_refused_before_anything(
        runs_dir, lambda: start("r1", train_file, signed_in("alice"), epochs=epochs), message)


@pytest.mark.parametrize("on_space", [True, False])
def test_epochs_within_the_limit_start(monkeypatch, trainer, train_file, on_space):
    if on_space:
        monkeypatch.setenv("SPACE_ID", SPACE)
        monkeypatch.setenv("NER_MAX_EPOCHS", "100")
    start_and_wait(trainer, "r1", train_file, signed_in("alice"), epochs=100.0)
    assert ft.JOBS.snapshot().config.epochs == 100.0


@pytest.fixture
def conll_in_memory(monkeypatch):
    """CoNLL-2003 as the job would load it, without the corpus: only its size matters here."""
    monkeypatch.setattr(studio_data, "conll2003", lambda: {"train": ["s1", "s2", "s3"]})


def test_cpu_training_sentences_over_the_limit_are_refused(space, monkeypatch, trainer, train_file,
                                                          runs_dir, conll_in_memory):
    assert_refused_before_anything(
        runs_dir, lambda: start("r1", None, signed_in("alice"), source="conll2003"),
        r"a fine-tune on this server's CPU may train on at most 5,000 sentences "
        r"\(NER_MAX_CPU_TRAIN_SENTENCES\), found 14,041; set max training sentences to 5,000 or fewer")

    monkeypatch.setenv("NER_MAX_CPU_TRAIN_SENTENCES", "10")
    assert_refused_before_anything(
        runs_dir, lambda: start("r1", train_file, signed_in("alice")),
        r"at most 10 sentences \(NER_MAX_CPU_TRAIN_SENTENCES\), found 20; set max training "
        r"sentences to 10 or fewer")


@pytest.mark.parametrize("on_space, gpu, max_train_sentences", [
    (True, False, 2000.0),  # within the Space's 5,000
    (True, True, 0.0),      # the limit is for CPU hosts only
    (False, False, 0.0),    # no limit off a Space
])
def test_cpu_training_sentences_within_the_limit_start(monkeypatch, trainer, conll_in_memory,
                                                       on_space, gpu, max_train_sentences):
    if on_space:
        monkeypatch.setenv("SPACE_ID", SPACE)
    monkeypatch.setattr(ft, "_trains_on_gpu", lambda: gpu)
    trainer.started.clear()
    start("r1", None, signed_in("alice"), source="conll2003",
          max_train_sentences=max_train_sentences)
    assert trainer.started.wait(10)
    assert ft.JOBS.snapshot().run_name == "r1"


@pytest.mark.parametrize("on_space, expected", [(True, 1800), (False, None)])
def test_the_budget_is_given_to_the_job(monkeypatch, trainer, train_file, on_space, expected):
    if on_space:
        monkeypatch.setenv("SPACE_ID", SPACE)
    start_and_wait(trainer, "r1", train_file, signed_in("alice"))
    assert ft.JOBS.snapshot().budget_seconds == expected
    deadline = trainer.stops[0].deadline
    assert deadline is None if expected is None else deadline > 0


def test_a_job_past_its_budget_stops_and_saves(space, monkeypatch, trainer, train_file):
    monkeypatch.setenv("NER_FINETUNE_BUDGET_SECONDS", "1")
    start_and_wait(trainer, "r1", train_file, signed_in("alice"))
    snapshot = ft.JOBS.wait(30)  # the fake trains until its should_stop turns true
    assert snapshot.state == "stopped" and snapshot.result.stopped_early
    assert any(line.endswith("the time budget of 1 s was reached: training stopped")
               for line in snapshot.log)
    assert snapshot.log[-1].endswith("stopped at step 1 of 10; the weights so far are saved as r1")
    assert runs.list_runs() == ["r1"]


def saved_runs(runs_dir: Path, names: list[str]) -> None:
    """Complete runs, oldest first, a day apart."""
    for day, name in enumerate(names, start=1):
        path = save_run(runs_dir / name)
        runs.set_owner(name, "alice")
        os.utime(path, (day * 86_400, day * 86_400))


@pytest.mark.parametrize("setting, left", [
    ("2", ["r1", "new"]),                           # room for the new run: only the newest stays
    (None, ["r1", "new", "middle", "old"]),         # the Space's default of 5
])
def test_the_oldest_runs_make_room(space, monkeypatch, trainer, train_file, runs_dir, setting, left):
    if setting:
        monkeypatch.setenv("NER_MAX_RUNS", setting)
    saved_runs(runs_dir, ["old", "middle", "new"])
    bundled = sorted(os.listdir(models.BUNDLED_DIR))
    start_and_wait(trainer, "r1", train_file, signed_in("alice"))
    finish(trainer)
    assert runs.list_runs() == left
    assert sorted(os.listdir(models.BUNDLED_DIR)) == bundled and "model.safetensors" in bundled
    assert model_choices()[0] == "default"
    gone = {"old", "middle", "new"} - set(left)
    assert [runs.owner_of(name) for name in sorted(gone)] == [None] * len(gone)
    assert not any((runs_dir / name).exists() for name in gone)


def test_off_a_space_no_run_is_pruned(trainer, train_file, runs_dir):
    saved_runs(runs_dir, [f"run{i}" for i in range(25)])
    start_and_wait(trainer, "r1", train_file, {})
    finish(trainer)
    assert len(runs.list_runs()) == 26


def model_of(size: int) -> ModelInfo:
    """A Hub NER model's description with ``size`` bytes of safetensors weights."""
    return ModelInfo(id="someone/big", pipeline_tag="token-classification",
                     config={"model_type": "bert"}, private=False, gated=False,
                     siblings=[{"rfilename": "config.json", "size": 700},
                               {"rfilename": "model.safetensors", "size": size}])


@pytest.fixture
def hub_api(monkeypatch):
    """The Hub reachable, describing a 2 GB model; every download function fails the test."""
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    download = AssertionError("nothing may download")
    with mock.patch("huggingface_hub.HfApi", autospec=True) as api_class, \
            mock.patch("huggingface_hub.hf_hub_download", side_effect=download) as one, \
            mock.patch("huggingface_hub.snapshot_download", side_effect=download) as every:
        api_class.return_value.model_info.return_value = model_of(2_000 * MB)
        yield api_class.return_value
        one.assert_not_called()
        every.assert_not_called()


@pytest.mark.parametrize("setting, most", [(None, "1,000.0 MB"), ("500", "500.0 MB")])
def test_a_big_hub_model_is_refused_in_both_boxes(space, monkeypatch, hub_api, trainer, train_file,
                                                  runs_dir, setting, most):
    if setting:
        monkeypatch.setenv("NER_MAX_HUB_MODEL_MB", setting)
    message = (rf"someone/big: expected at most {re.escape(most)} of model files here, found "
               r"2,000.0 MB in the 2 files that loading it needs")
    with pytest.raises(gr.Error, match=message):  # signed in: only they may name Hub models here
        hl.highlight("Anna Weber visited Berlin.", None, "someone/big", 0.0, **signed_in("alice"))
    assert_refused_before_anything(
        runs_dir, lambda: start("r1", train_file, signed_in("alice"), base_hub="someone/big"), message)
    assert hub_api.model_info.call_args_list == [
        mock.call("someone/big", files_metadata=True, timeout=hub.INFO_SECONDS)] * 2


def test_a_hub_model_within_the_limit_passes_the_check(space, monkeypatch, hub_api):
    monkeypatch.setenv("NER_MAX_HUB_MODEL_MB", "3000")
    assert pick(None, "someone/big", who=access.Visitor("alice")) == "someone/big"
    hub_api.model_info.assert_called_once()


def test_off_a_space_no_limit_applies(hub_api):
    assert {access.limit(name) for name in access.SPACE_DEFAULTS} == {None}
    assert pick(None, "someone/big") == "someone/big"
    hub_api.model_info.assert_not_called()  # no size limit, so the Hub is not asked here


# 4. Delete from the page -------------------------------------------------------------------------

@pytest.fixture
def alices_run(space, trainer, train_file, runs_dir) -> Path:
    """``run``, fine-tuned (by the fake) and saved by alice on the Space."""
    start_and_wait(trainer, "run", train_file, signed_in("alice"))
    finish(trainer)
    assert runs.list_runs() == ["run"] and runs.owner_of("run") == "alice"
    return runs_dir / "run"


@pytest.mark.parametrize("who", ["alice", "owner"])
def test_the_owner_or_the_space_owner_deletes_a_run(alices_run, runs_dir, who):
    assert ft.delete_run("run", **signed_in(who)) == "Deleted `run`."
    assert runs.list_runs() == [] and not alices_run.exists()
    assert runs.owner_of("run") is None
    assert [name for name in written(runs_dir) if name.startswith(runs.PARTIAL_PREFIX)] == []


@pytest.mark.parametrize("run, who, message", [
    ("run", signed_in("bob"), r"expected the name of a saved run of yours, found 'run'"),
    ("run", anonymous("s1"), r"expected the name of a saved run of yours, found 'run'"),
    ("default", signed_in("owner"),
     r"the bundled model 'default' is not a run; choose one of your runs"),
    ("missing", signed_in("alice"), r"expected the name of a saved run of yours, found 'missing'"),
    ("../run", signed_in("alice"), r"expected the name of a saved run of yours, found '\.\./run'"),
])
def test_delete_refusals(alices_run, run, who, message):
    with pytest.raises(gr.Error, match=message):
        ft.delete_run(run, **who)
    assert runs.list_runs() == ["run"] and (alices_run / "model.safetensors").is_file()


# 5. Push from the page ---------------------------------------------------------------------------

@pytest.fixture
def pushed(monkeypatch) -> list:
    """``ner_core.hub.push_run`` as the page calls it, recorded instead of run."""
    calls = []

    def push(run, repo_id, token=None, private=True):
        calls.append(((run, repo_id), {"token": token, "private": private}))
        return f"https://huggingface.co/{repo_id}"

    monkeypatch.setattr(ft.hub, "push_run", push)
    return calls


def token(value: str = "tok") -> gr.OAuthToken:
    return gr.OAuthToken(token=value, scope="openid profile manage-repos write-repos", expires_at=0)


@pytest.mark.parametrize("repo", ["name", "bob/name", " name "])
def test_a_push_goes_to_the_signed_in_visitor_s_account(alices_run, pushed, repo):
    note = ft.push_run("run", repo, True, **signed_in("alice"), token=token())
    assert pushed == [(("run", "alice/name"), {"token": "tok", "private": True})]
    assert note == "Pushed `run` to [alice/name](https://huggingface.co/alice/name) (private)."


def test_a_push_without_a_name_takes_the_run_s(alices_run, pushed):
    ft.push_run("run", "", False, **signed_in("alice"), token=token())
    assert pushed == [(("run", "alice/run"), {"token": "tok", "private": False})]


def test_a_push_on_a_space_needs_sign_in(space, monkeypatch, trainer, train_file, pushed):
    monkeypatch.setenv("NER_FINETUNE_ACCESS", "anyone")
    start_and_wait(trainer, "mine", train_file, anonymous("s1"))
    finish(trainer)
    sign_in = (r"sign in with Hugging Face \(the button at the top of the page\) to push a run to "
               r"your account")
    with pytest.raises(gr.Error, match=sign_in):
        ft.push_run("mine", "name", True, **anonymous("s1"))
    with pytest.raises(gr.Error, match=r"expected the name of a saved run of yours, found 'mine'"):
        ft.push_run("mine", "name", True, **signed_in("bob"), token=token())
    assert pushed == []


def test_a_signed_in_push_without_a_token_is_refused(alices_run, pushed):
    with pytest.raises(gr.Error, match=r"sign in with Hugging Face .* to push a run to your account"):
        ft.push_run("run", "name", True, **signed_in("alice"), token=None)
    assert pushed == []


def test_off_a_space_a_push_names_owner_and_repository(trainer, train_file, pushed):
    start_and_wait(trainer, "run", train_file, {})
    finish(trainer)
    with pytest.raises(gr.Error, match=r"expected a Hub repository as owner/name, found 'name'"):
        ft.push_run("run", "name", True)
    assert pushed == []
    ft.push_run("run", "me/name", False)
    assert pushed == [(("run", "me/name"), {"token": None, "private": False})]


# 6. A stop aimed at one job never stops the next ------------------------------------------------

def load_three() -> LoadedData:
    return LoadedData({"train": ["s1", "s2", "s3"]})


def test_a_stop_checked_against_an_ended_job_leaves_the_next_running(tmp_path):
    trainer = Trainer()
    jobs = FineTuneJobs(trainer)
    jobs.start(TrainConfig(), load_three, tmp_path / "a")
    assert trainer.started.wait(10)
    seen = jobs.snapshot()  # what a Stop press checked: job a, running
    trainer.release.set()
    assert jobs.wait(10).state == "finished"
    trainer.release.clear()
    trainer.started.clear()
    jobs.start(TrainConfig(), load_three, tmp_path / "b")
    assert trainer.started.wait(10)
    try:
        assert (seen.state, seen.run_name) == ("running", "a")
        assert jobs.stop(run_name=seen.run_name) is False
        assert jobs.snapshot().state == "running" and not trainer.stops[1]()
        trainer.stops[0].request()  # job a's own request, made late, is not job b's
        assert not trainer.stops[1]()
        trainer.stops[0].discard()

        assert jobs.stop(run_name="b") is True
        snapshot = jobs.wait(10)
        assert (snapshot.state, snapshot.run_name) == ("stopped", "b")
    finally:
        trainer.release.set()
        jobs.wait(10)


def test_a_stop_press_that_saw_the_previous_job_does_not_stop_the_next(monkeypatch, trainer,
                                                                      train_file):
    start_and_wait(trainer, "a", train_file, {})
    seen = ft.JOBS.snapshot()
    finish(trainer)
    start_and_wait(trainer, "b", train_file, {})
    with monkeypatch.context() as patch:
        patch.setattr(ft.JOBS, "snapshot", lambda: seen)  # the press checked job a, then b began
        ft.stop_fine_tune()
    assert ft.JOBS.snapshot().state == "running" and not trainer.stops[1]()


def test_a_stop_request_pickles(tmp_path):
    for request in (StopRequest.new(), StopRequest.new(600), StopRequest(str(tmp_path / "x"), 1.0)):
        loaded = pickle.loads(pickle.dumps(request))
        assert loaded == request
        assert loaded() is request()
    assert StopRequest(str(tmp_path / "x"), 1.0)()  # a deadline long past


def _report_stop(blob: bytes, answers, asked) -> None:
    """A forked worker: whether its unpickled stop request holds, before and after ``asked``."""
    should_stop = pickle.loads(blob)
    answers.send(should_stop())
    asked.wait(10)
    answers.send(should_stop())


def test_a_stop_requested_here_is_seen_by_a_forked_worker():
    stop = StopRequest.new()
    context = multiprocessing.get_context("fork")
    answers, sent = context.Pipe(duplex=False)
    asked = context.Event()
    worker = context.Process(target=_report_stop, args=(pickle.dumps(stop), sent, asked))
    worker.start()
    try:
        assert answers.poll(10)
        before = answers.recv()
        stop.request()
        asked.set()
        assert answers.poll(10)
        assert (before, answers.recv()) == (False, True)
    finally:
        worker.join(10)
        stop.discard()
    assert worker.exitcode == 0


# 7. Settings that are not limits: refused, naming the variable -----------------------------

@pytest.mark.parametrize("name, value, message", [
    ("NER_MAX_EPOCHS", "ten", r"the setting NER_MAX_EPOCHS must be a whole number, found 'ten'"),
    ("NER_MAX_RUNS", "2.5", r"the setting NER_MAX_RUNS must be a whole number, found '2.5'"),
    ("NER_FINETUNE_BUDGET_SECONDS", "0",
     r"the setting NER_FINETUNE_BUDGET_SECONDS must be at least 1, found 0"),
    ("NER_MAX_HUB_MODEL_MB", "-5", r"the setting NER_MAX_HUB_MODEL_MB must be at least 1, found -5"),
])
def test_limit_refuses_what_is_not_a_limit(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        access.limit(name)


def test_a_bad_limit_refuses_a_start_before_anything(space, monkeypatch, trainer, train_file,
                                                     runs_dir):
    monkeypatch.setenv("NER_MAX_CPU_TRAIN_SENTENCES", "0")
    assert_refused_before_anything(
        runs_dir, lambda: start("r1", train_file, signed_in("alice")),
        r"the setting NER_MAX_CPU_TRAIN_SENTENCES must be at least 1, found 0")


def test_limits_on_a_space_default_and_follow_their_variables(space, monkeypatch):
    assert {name: access.limit(name) for name in access.SPACE_DEFAULTS} == access.SPACE_DEFAULTS
    monkeypatch.setenv("NER_MAX_RUNS", " 7 ")
    assert access.limit("NER_MAX_RUNS") == 7
    assert hub.max_model_bytes() == 1_000 * MB
