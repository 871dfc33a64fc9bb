"""The engine's tenancy rules: when a server is public, who manages what, the per-owner limits,
the disk budget and its sweep, one heavy call per visitor. No server: owners are strings."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ner_core import hub, hub_cache, tenancy
from ner_core.errors import UserError

SETTINGS = ("SPACE_ID", "SPACE_AUTHOR_NAME", "NER_PUBLIC", "GRADIO_SHARE", "GRADIO_SERVER_NAME",
            "NER_ADMINS", *tenancy.PUBLIC_DEFAULTS)


@pytest.fixture(autouse=True)
def private_host(monkeypatch, tmp_path):
    """A server on 127.0.0.1 with its files under ``tmp_path``; each test makes it public."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("NER_DATA_HOME", str(tmp_path / "datasets"))
    monkeypatch.setenv("NER_TEMP_DIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "cache_dir", lambda: tmp_path / "hub")
    monkeypatch.setattr(tenancy, "DISK", tenancy.DiskBudget())  # nothing measured yet


@pytest.mark.parametrize("settings, public", [
    ({}, False),
    ({"GRADIO_SERVER_NAME": "127.0.0.1"}, False),
    ({"GRADIO_SERVER_NAME": "localhost"}, False),
    ({"GRADIO_SERVER_NAME": "::1"}, False),
    ({"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
    ({"GRADIO_SERVER_NAME": "192.168.1.20"}, True),
    ({"GRADIO_SHARE": "True"}, True),
    ({"GRADIO_SHARE": "false"}, False),
    ({"NER_PUBLIC": "1"}, True),
    ({"NER_PUBLIC": "0"}, False),
    ({"SPACE_ID": "owner/name"}, True),
])
def test_public_means_reachable_by_others(monkeypatch, settings, public):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert tenancy.is_public() is public


def test_off_a_public_host_everything_is_the_local_users(monkeypatch):
    assert tenancy.may_manage(None, "alice") and tenancy.may_manage("bob", "alice")
    assert {name: tenancy.limit(name) for name in tenancy.PUBLIC_DEFAULTS} == \
        dict.fromkeys(tenancy.PUBLIC_DEFAULTS)


def test_on_a_public_host_owners_and_admins_manage(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "team/studio")
    monkeypatch.setenv("NER_ADMINS", "carol, dave")
    assert tenancy.admins() == {"team", "carol", "dave"}
    cases = {("alice", "alice"): True, ("bob", "alice"): False, ("alice", None): False,
             ("carol", "alice"): True, ("team", "session:x"): True, (None, "alice"): False,
             ("session:x", "session:x"): True, ("session:y", "session:x"): False}
    assert {pair: tenancy.may_manage(*pair) for pair in cases} == cases
    # A session can never be an admin, whatever its id says.
    monkeypatch.setenv("NER_ADMINS", "session")
    assert not tenancy.is_admin("session:abc")
    assert tenancy.is_shared(None) and tenancy.is_shared("team") and not tenancy.is_shared("bob")
    assert {name: tenancy.limit(name) for name in tenancy.PUBLIC_DEFAULTS} == \
        tenancy.PUBLIC_DEFAULTS


def test_admins_setting_is_checked(monkeypatch):
    monkeypatch.setenv("NER_ADMINS", "carol,../x, a b")
    with pytest.raises(UserError, match=r"NER_ADMINS must list Hugging Face account names "
                                        r"separated by commas, found '../x', 'a b'"):
        tenancy.admins()


def test_tenant_keys_are_folder_names_that_hide_sessions():
    session = tenancy.tenant_key("session:secret-id")
    assert session.startswith("s-") and "secret" not in session and len(session) == 26
    assert tenancy.tenant_key("session:secret-id") == session  # stable
    assert tenancy.tenant_key("session:other") != session
    assert tenancy.tenant_key("alice") == "u-alice"
    with pytest.raises(UserError, match=r"expected an account name .*, found '\.\./etc'"):
        tenancy.tenant_key("../etc")
    with pytest.raises(UserError, match="found 'alice\\\\n'"):
        tenancy.tenant_key("alice\n")


def test_counts_are_refused_past_their_limit(monkeypatch):
    monkeypatch.setenv("NER_PUBLIC", "1")
    tenancy.check_count("NER_MAX_DATASETS", 10, "datasets of yours")
    with pytest.raises(UserError, match=r"expected at most 10 datasets of yours on this server "
                                        r"\(NER_MAX_DATASETS\), found 11"):
        tenancy.check_count("NER_MAX_DATASETS", 11, "datasets of yours")
    monkeypatch.setenv("NER_MAX_DATASETS", "2_0")
    with pytest.raises(UserError, match=r"NER_MAX_DATASETS must be a whole number, found '2_0'"):
        tenancy.check_count("NER_MAX_DATASETS", 1, "datasets")


def _fill(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def test_disk_use_counts_every_root_once(tmp_path):
    _fill(tmp_path / "runs" / "r1" / "model.safetensors", 300_000)
    _fill(tmp_path / "datasets" / "d.jsonl", 100_000)
    _fill(tmp_path / "tmp" / "u-alice" / "exports" / "d.conll", 50_000)
    _fill(tmp_path / "hub" / "models--a--b" / "blobs" / "x", 200_000)
    uploads = _fill(tmp_path / "gradio" / "abc" / "upload.txt", 20_000)
    os.link(uploads, tmp_path / "tmp" / "u-alice" / "exports" / "same.txt")  # one file, two names
    tenancy.count_on_disk("uploads", lambda: tmp_path / "gradio")
    try:
        use = tenancy.disk_use()
    finally:
        tenancy._counted.pop("uploads")
    # Sizes on disk, in whole blocks: at least each file's size, at most a block more.
    expected = {"runs": 300_000, "datasets": 100_000, "temporary files": 70_000,
                "Hub cache": 200_000, "uploads": 0}
    assert set(use) == set(expected)
    for label, size in expected.items():
        assert size <= use[label] <= size + 2 * 4096, (label, use[label])


def test_a_write_past_the_budget_is_refused_with_both_figures(monkeypatch, tmp_path):
    monkeypatch.setenv("NER_PUBLIC", "1")
    monkeypatch.setenv("NER_MAX_DISK_MB", "1")
    _fill(tmp_path / "runs" / "r1" / "model.safetensors", 600_000)
    monkeypatch.setattr(hub_cache, "evict_cache", lambda need: 0)
    tenancy.check_room(300_000, "this example")  # 0.9 MB of 1 MB
    with pytest.raises(UserError, match=r"^this example needs about 0\.5 MB, and this server's "
                                        r"disk budget of 1\.0 MB \(NER_MAX_DISK_MB\) has 0\.4 MB "
                                        r"left \(runs 0\.6 MB in use\); delete runs or datasets"):
        tenancy.check_room(500_000, "this example")


def test_the_hub_cache_gives_way_before_a_refusal(monkeypatch, tmp_path):
    monkeypatch.setenv("NER_PUBLIC", "1")
    monkeypatch.setenv("NER_MAX_DISK_MB", "1")
    cached = _fill(tmp_path / "hub" / "models--a--b" / "blobs" / "x", 800_000)
    asked = []

    def evict(need: int) -> int:
        asked.append(need)
        cached.unlink()
        return 800_000

    monkeypatch.setattr(hub_cache, "evict_cache", evict)
    tenancy.check_room(500_000, "the model owner/name")
    assert len(asked) == 1 and 300_000 <= asked[0] <= 310_000  # what was over, no more
    assert not cached.exists()


def test_off_a_public_host_there_is_no_budget(tmp_path):
    _fill(tmp_path / "runs" / "r1" / "model.safetensors", 100_000)
    tenancy.check_room(10**15, "anything")


def test_the_sweep_removes_old_temporary_files_only(tmp_path):
    old = _fill(tenancy.tenant_temp("alice", "exports") / "old.conll", 1000)
    new = _fill(tenancy.tenant_temp("session:x", "downloads") / "new.json", 10)
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert tenancy.sweep_temp(older_than=600) == 1000
    assert not old.exists() and not old.parent.exists() and new.exists()
    tenancy.clear_temp()
    assert not tenancy.temp_root().exists()
    assert tenancy.sweep_temp(older_than=600) == 0  # nothing there: nothing to do


def test_one_heavy_call_per_visitor_on_a_public_host(monkeypatch):
    monkeypatch.setenv("NER_PUBLIC", "1")
    calls = tenancy.HeavyCalls()
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with calls.hold("alice", "evaluation"):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(10)
    try:
        with pytest.raises(UserError, match=r"^wait for your evaluation to finish before "
                                            r"starting a file job"):
            with calls.hold("alice", "a file job"):
                pass
        with calls.hold("bob", "a file job"):  # another visitor is not held up
            pass
    finally:
        release.set()
        thread.join()
    with calls.hold("alice", "a file job"):  # free again once the first ended
        pass


def test_heavy_calls_are_not_counted_off_a_public_host():
    calls = tenancy.HeavyCalls()
    with calls.hold("alice", "evaluation"), calls.hold("alice", "a file job"):
        pass


def test_writes_in_quick_succession_are_counted_without_a_walk_each(monkeypatch, tmp_path):
    monkeypatch.setenv("NER_PUBLIC", "1")
    monkeypatch.setenv("NER_MAX_DISK_MB", "1")
    on_disk, walks = [500_000], []
    monkeypatch.setattr(tenancy, "disk_use", lambda: walks.append(1) or {"runs": sum(on_disk)})
    monkeypatch.setattr(hub_cache, "evict_cache", lambda need: 0)
    for _ in range(5):
        tenancy.check_room(100_000, "an example")  # allowed, then written
        on_disk.append(100_000)
    assert len(walks) == 1  # 0.5 MB measured once, 0.5 MB allowed since
    with pytest.raises(UserError, match=r"has 0\.0 kB left \(runs 1\.0 MB in use\)"):
        tenancy.check_room(100_000, "an example")
    assert len(walks) == 2  # over: measured afresh before refusing


def test_the_sweep_also_empties_another_folder_by_age(tmp_path):
    """The app sweeps Gradio's cache with it too, on the same schedule."""
    cache = tmp_path / "gradio"
    old = _fill(cache / "abc" / "entities.csv", 2000)
    new = _fill(cache / "def" / "upload.txt", 20)
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert tenancy.sweep_temp(600, cache) == 2000
    assert not old.parent.exists() and new.exists() and cache.is_dir()
