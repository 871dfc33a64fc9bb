"""Hub models on a server many people share: every file loading needs is counted, the revision
checked is the revision loaded, one download runs at a time, the cache gives up its least recently
used models to the disk budget, and on a public host only signed-in visitors (or the models of
NER_HUB_MODELS) name one. The Hub is faked at huggingface_hub's boundary (``HfApi.model_info``,
``snapshot_download``, ``hf_hub_download``), writing the cache's own layout; nothing touches the
network."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import HfApi
from huggingface_hub.hf_api import ModelInfo
from huggingface_hub.utils import filter_repo_objects

from ner_core import hub, hub_cache, models, tenancy
from ner_core.errors import UserError
from ner_core.inference import Recognizer

SETTINGS = ("SPACE_ID", "SPACE_AUTHOR_NAME", "NER_PUBLIC", "GRADIO_SHARE", "GRADIO_SERVER_NAME",
            "NER_ADMINS", "NER_HUB_MODELS", *tenancy.PUBLIC_DEFAULTS)


def snapshot(cache: Path, repo_id: str, sha: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--")) / "snapshots" / sha


def write_cached(cache: Path, repo_id: str, sha: str, name: str, content: bytes,
                 used_at: float | None = None) -> Path:
    """One file of a revision as huggingface_hub caches it: a blob, and a link in the snapshot."""
    blob = cache / ("models--" + repo_id.replace("/", "--")) / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    if used_at is not None:
        os.utime(blob, (used_at, used_at))
    link = snapshot(cache, repo_id, sha) / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    return link


def commit(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


class FakeHub:
    """The Hub: ``publish`` a model's files at a revision; ``model_info`` describes the current
    one, the downloads write the cache's layout. Each download is recorded (``downloads``,
    ``small``), and so is the most that ran at once."""

    def __init__(self) -> None:
        self.repos: dict[str, tuple[str, dict[str, bytes], dict]] = {}
        self.described: list[str] = []
        self.downloads: list[tuple[str, str, list[str]]] = []
        self.small: list[tuple[str, str, str | None]] = []
        self.running = 0
        self.most_at_once = 0
        self.seconds = 0.0  # how long each download takes
        self.during = None  # called in a download, once its first file is in the cache
        self._lock = threading.Lock()

    def publish(self, repo_id: str, files: dict[str, bytes], sha: str | None = None,
                **fields) -> str:
        sha = sha or commit(repo_id + str(sorted(files)))
        self.repos[repo_id] = (sha, files, fields)
        return sha

    def model_info(self, api, repo_id, files_metadata=False, timeout=None):
        assert files_metadata
        self.described.append(repo_id)
        sha, files, fields = self.repos[repo_id]
        return ModelInfo(id=repo_id, sha=sha, private=False, gated=False,
                         pipeline_tag=fields.get("pipeline_tag", "token-classification"),
                         config=fields.get("config", {"model_type": "bert"}),
                         siblings=[{"rfilename": n, "size": len(c)} for n, c in files.items()])

    def snapshot_download(self, repo_id, *, revision, allow_patterns, cache_dir, **kwargs):
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.downloads.append((repo_id, revision, list(allow_patterns)))
        try:
            sha, files, _ = self.repos[repo_id]
            assert revision == sha, "only the current revision is published"
            for i, name in enumerate(filter_repo_objects(list(files), allow_patterns=allow_patterns)):
                write_cached(Path(cache_dir), repo_id, revision, name, files[name])
                if i == 0 and self.during is not None:
                    self.during()
            time.sleep(self.seconds)
        finally:
            with self._lock:
                self.running -= 1
        return str(snapshot(Path(cache_dir), repo_id, revision))

    def hf_hub_download(self, repo_id, filename, *, revision=None, cache_dir=None, **kwargs):
        self.small.append((repo_id, filename, revision))
        sha, files, _ = self.repos[repo_id]
        return str(write_cached(Path(cache_dir), repo_id, revision or sha, filename, files[filename]))


@pytest.fixture(autouse=True)
def private_host(monkeypatch, tmp_path):
    """A server on 127.0.0.1 with its files under ``tmp_path``; tests make it public."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NER_DATA_HOME", str(tmp_path / "datasets"))
    monkeypatch.setenv("NER_TEMP_DIR", str(tmp_path / "tmp"))


@pytest.fixture
def cache(monkeypatch, tmp_path) -> Path:
    """The Hub cache of this test (not there until something is written to it)."""
    folder = tmp_path / "hub-cache"
    monkeypatch.setattr(hub, "cache_dir", lambda: folder)
    return folder


@pytest.fixture
def fake_hub(monkeypatch, cache) -> FakeHub:
    """The Hub, reachable and faked (HF_HUB_OFFLINE=1 stays set: nothing real is asked)."""
    fake = FakeHub()
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(HfApi, "model_info", lambda api, *args, **kwargs: fake.model_info(api, *args, **kwargs))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.hf_hub_download)
    return fake


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# Every file loading needs is counted, and only those download ------------------------------------

EVERYTHING = {
    "config.json": b'{"model_type": "bert"}', "model.safetensors": b"w" * 500,
    "tokenizer.json": b"{}", "tokenizer_config.json": b"{}", "special_tokens_map.json": b"{}",
    "vocab.txt": b"[PAD]\n", "sentencepiece.bpe.model": b"spm", "README.md": b"# card",
    "pytorch_model.bin": b"pickle", "training_args.bin": b"pickle", "optimizer.pt": b"pickle",
    "onnx/model.safetensors": b"o" * 500, "flax_model.msgpack": b"flax",
}
LOADED = ["config.json", "model.safetensors", "sentencepiece.bpe.model", "special_tokens_map.json",
          "tokenizer.json", "tokenizer_config.json", "vocab.txt"]


def test_the_checked_revision_downloads_with_only_the_files_loading_needs(fake_hub, cache):
    sha = fake_hub.publish("owner/model", EVERYTHING)
    folder = hub_cache.fetch_model("owner/model", "inference", 10_000)
    assert folder == snapshot(cache, "owner/model", sha)
    assert fake_hub.described == ["owner/model"]  # asked once
    assert fake_hub.downloads == [("owner/model", sha, LOADED)]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == LOADED
    # Offline, the model now loads by its id from the cache: its current revision is recorded.
    assert hub.is_cached("owner/model")
    # Already in the cache whole: asked again, not downloaded again.
    assert hub_cache.fetch_model("owner/model", "inference", 10_000) == folder
    assert len(fake_hub.downloads) == 1 and fake_hub.described == ["owner/model"] * 2


def index_of(*shards) -> bytes:
    """A ``model.safetensors.index.json`` whose weights are in ``shards``."""
    return json.dumps({"metadata": {}, "weight_map": {f"w{i}": n for i, n in enumerate(shards)}}).encode()


@pytest.mark.parametrize("files, loaded", [
    ({"config.json": b"c" * 100, "model.safetensors": b"w" * 500, "tokenizer.json": b"t" * 900,
      "pytorch_model.bin": b"p" * 10_000}, 3),
    ({"config.json": b"c" * 100, "model.safetensors": b"w" * 500, "vocab.txt": b"v" * 300,
      "merges.txt": b"m" * 200, "onnx/model.onnx": b"o" * 10_000}, 4),
    ({"config.json": b"c" * 100,
      "model.safetensors.index.json": index_of("weights/model-1.safetensors",
                                               "weights/model-2.safetensors"),
      "weights/model-1.safetensors": b"a" * 500, "weights/model-2.safetensors": b"b" * 500}, 4),
])
def test_tokenizer_files_and_shards_in_subfolders_count_against_the_limit(fake_hub, files, loaded):
    total = sum(len(c) for name, c in files.items() if not name.endswith((".bin", ".onnx")))
    fake_hub.publish("owner/model", files)
    with pytest.raises(UserError, match=f"^owner/model: expected at most 1,000 bytes of model files "
                                        f"here, found {total:,} bytes in the {loaded} files that "
                                        "loading it needs \\(weights, configuration and "
                                        "tokenizer\\)$"):
        hub_cache.fetch_model("owner/model", "inference", 1_000)
    assert fake_hub.downloads == []
    assert hub_cache.fetch_model("owner/model", "inference", total) is not None  # exactly the limit
    assert len(fake_hub.downloads[0][2]) == loaded


def sharded(shards: dict[str, bytes], named: list) -> dict[str, bytes]:
    return {"config.json": b"{}", "model.safetensors.index.json": index_of(*named), **shards,
            "onnx/model.safetensors": b"o" * 5_000}


def test_the_shards_an_index_names_download_with_it_at_the_checked_revision(fake_hub, cache):
    shards = {"weights/part-1.safetensors": b"a" * 600, "weights/part-2.safetensors": b"b" * 600}
    sha = fake_hub.publish("owner/sharded", sharded(shards, [*shards, *shards]))
    folder = hub_cache.fetch_model("owner/sharded", "training", 3_000)
    assert fake_hub.small == [("owner/sharded", "model.safetensors.index.json", sha)]
    assert fake_hub.downloads == [("owner/sharded", sha, [
        "config.json", "model.safetensors.index.json", *sorted(shards)])]
    assert (folder / "weights" / "part-2.safetensors").read_bytes() == b"b" * 600


@pytest.mark.parametrize("named, message", [
    (["weights/part-1.safetensors", "weights/part-3.safetensors"],
     "^owner/sharded: expected the shards that model.safetensors.index.json names in the "
     "repository, found no weights/part-3.safetensors$"),
    (["../outside.safetensors"], "^owner/sharded: expected model.safetensors.index.json to name "
                                 "shard files by relative paths, found '../outside.safetensors'$"),
    ([["a list"]], "^owner/sharded: expected model.safetensors.index.json to map each weight to a "
                   "shard file \\(weight_map\\), found no such map$"),
])
def test_an_index_naming_what_the_repository_lacks_is_refused(fake_hub, named, message):
    fake_hub.publish("owner/sharded", sharded({"weights/part-1.safetensors": b"a"}, named))
    with pytest.raises(UserError, match=message):
        hub_cache.fetch_model("owner/sharded", "training", None)
    assert fake_hub.downloads == []


def test_a_hub_model_loads_from_the_revision_that_was_checked(fake_hub, cache, tiny_bert,
                                                              biased_model, monkeypatch):
    # The cache holds an older revision as main (the biased model); the Hub's current one is
    # the tiny BERT, and that is the one loaded, weights and tokenizer alike.
    older = commit("older")
    for name, content in files_of(biased_model).items():
        write_cached(cache, "owner/tiny-ner", older, name, content)
    (cache / "models--owner--tiny-ner" / "refs").mkdir()
    (cache / "models--owner--tiny-ner" / "refs" / "main").write_text(older)
    current = fake_hub.publish("owner/tiny-ner", {**files_of(tiny_bert), "pytorch_model.bin": b"x"})

    recognizer = Recognizer("owner/tiny-ner", local_paths=False)
    loaded = str(snapshot(cache, "owner/tiny-ner", current))
    assert recognizer.model.name_or_path == loaded
    assert recognizer.tokenizer.name_or_path == loaded
    assert fake_hub.downloads == [("owner/tiny-ner", current, sorted(files_of(tiny_bert)))]
    assert recognizer.labels == models.trained_labels(recognizer.source)

    # Offline, the model in the cache still loads by its id: the revision fetched last.
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    offline = Recognizer("owner/tiny-ner", local_paths=False)
    assert offline.model.classifier.weight.equal(recognizer.model.classifier.weight)
    assert len(fake_hub.downloads) == 1 and fake_hub.described == ["owner/tiny-ner"]
    with pytest.raises(ValueError, match="^the model 'owner/absent' is not a saved run or a "
                                         "directory, so it must come from the Hugging Face Hub, "
                                         "which cannot be reached from here"):
        Recognizer("owner/absent", local_paths=False)


# One download at a time -------------------------------------------------------------------------

def fetch_in_threads(repos: list[str]) -> list:
    """``fetch_model`` of each of ``repos`` at once, each in a thread; their folders or errors."""
    results: list = [None] * len(repos)
    start = threading.Barrier(len(repos))

    def fetch(i: int) -> None:
        start.wait()
        try:
            results[i] = hub_cache.fetch_model(repos[i], "inference", None)
        except UserError as error:
            results[i] = error

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(repos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_fetches_at_once_download_one_at_a_time(fake_hub, cache):
    fake_hub.seconds = 0.3
    one = fake_hub.publish("owner/one", {"config.json": b"{}", "model.safetensors": b"1"})
    two = fake_hub.publish("owner/two", {"config.json": b"{}", "model.safetensors": b"2"})
    assert fetch_in_threads(["owner/one", "owner/two"]) == [snapshot(cache, "owner/one", one),
                                                            snapshot(cache, "owner/two", two)]
    assert len(fake_hub.downloads) == 2 and fake_hub.most_at_once == 1
    # The same model asked for twice at once downloads once: the second finds it cached.
    three = fake_hub.publish("owner/three", {"config.json": b"{}", "model.safetensors": b"3"})
    assert fetch_in_threads(["owner/three"] * 2) == [snapshot(cache, "owner/three", three)] * 2
    assert [d[0] for d in fake_hub.downloads] == ["owner/one", "owner/two", "owner/three"] \
        or [d[0] for d in fake_hub.downloads] == ["owner/two", "owner/one", "owner/three"]


def test_a_fetch_that_would_wait_too_long_is_refused_in_words(fake_hub, monkeypatch):
    monkeypatch.setattr(hub_cache, "DOWNLOAD_WAIT_SECONDS", 0.2)
    release = threading.Event()
    fake_hub.during = lambda: release.wait(10)
    fake_hub.publish("owner/slow", {"config.json": b"{}", "model.safetensors": b"s"})
    fake_hub.publish("owner/next", {"config.json": b"{}", "model.safetensors": b"n"})
    first = threading.Thread(target=hub_cache.fetch_model, args=("owner/slow", "inference", None))
    first.start()
    while fake_hub.running == 0 and first.is_alive():
        time.sleep(0.01)
    try:
        with pytest.raises(UserError, match="^owner/next cannot be downloaded now: another download "
                                            "from the Hub has taken over 0 s so far, and this "
                                            "server downloads one model at a time; try again in "
                                            "a few minutes$"):
            hub_cache.fetch_model("owner/next", "inference", None)
    finally:
        release.set()
        first.join(10)
    assert [d[0] for d in fake_hub.downloads] == ["owner/slow"]
    assert hub_cache.downloading() is None  # the slot is free again


# The cache gives up its least recently used revisions ------------------------------------------

def cached_revisions(cache: Path) -> set[tuple[str, str]]:
    if not cache.is_dir():
        return set()
    return {(repo.repo_id, revision.commit_hash) for repo in huggingface_hub.scan_cache_dir(cache).repos
            for revision in repo.revisions}


@pytest.fixture
def aged_cache(cache) -> dict[str, tuple[str, str]]:
    """Four revisions of 10,000 bytes each, last used 4, 3, 2 and 1 hours ago; two of them are
    revisions of one model."""
    now = time.time()
    revisions = {"oldest": ("owner/a", commit("a1")), "older": ("owner/b", commit("b1")),
                 "newer": ("owner/a", commit("a2")), "newest": ("owner/c", commit("c1"))}
    for hours, (label, (repo_id, sha)) in zip((4, 3, 2, 1), revisions.items()):
        write_cached(cache, repo_id, sha, "model.safetensors", label.encode().ljust(10_000, b"."),
                     used_at=now - hours * 3600)
    return revisions


@pytest.mark.parametrize("need, evicted", [
    (1, ["oldest"]),
    (10_000, ["oldest"]),
    (15_000, ["oldest", "older"]),
    (30_000, ["oldest", "older", "newer"]),
    (10**9, ["oldest", "older", "newer", "newest"]),
])
def test_eviction_removes_the_least_recently_used_revisions_first(aged_cache, cache, need, evicted,
                                                                  caplog):
    caplog.set_level(logging.INFO, logger="ner_core.hub_cache")
    assert hub_cache.evict_cache(need) == 10_000 * len(evicted)
    assert cached_revisions(cache) == {aged_cache[k] for k in aged_cache if k not in evicted}
    for label in evicted:
        repo_id, sha = aged_cache[label]
        assert f"evicted {repo_id} at {sha[:12]} from the Hub cache" in caplog.text


def test_a_fetch_counts_as_a_use(aged_cache, cache, fake_hub):
    repo_id, sha = aged_cache["oldest"]
    fake_hub.publish(repo_id, {"model.safetensors": b"oldest".ljust(10_000, b".")}, sha=sha)
    assert hub_cache.fetch_model(repo_id, "inference", None) == snapshot(cache, repo_id, sha)
    assert fake_hub.downloads == []  # it was in the cache whole
    hub_cache.evict_cache(1)
    assert aged_cache["oldest"] in cached_revisions(cache)
    assert aged_cache["older"] not in cached_revisions(cache)


def test_eviction_without_a_cache_frees_nothing(cache):
    assert not cache.exists()
    assert hub_cache.evict_cache(10**9) == 0
    assert hub_cache.evict_cache(0) == 0


def test_the_revision_downloading_is_never_evicted(aged_cache, cache, fake_hub):
    freed = []
    fake_hub.during = lambda: freed.append(hub_cache.evict_cache(10**9))
    sha = fake_hub.publish("owner/new", {"config.json": b"{}", "model.safetensors": b"n" * 100})
    folder = hub_cache.fetch_model("owner/new", "inference", None)
    assert freed == [40_000]
    assert cached_revisions(cache) == {("owner/new", sha)}
    assert files_of(folder) == {"config.json": b"{}", "model.safetensors": b"n" * 100}


def test_a_download_past_the_disk_budget_evicts_first_then_is_refused(fake_hub, cache, monkeypatch):
    monkeypatch.setattr(tenancy, "_counted", {})  # only the engine's folders: no web framework here
    monkeypatch.setenv("NER_MAX_DISK_MB", "1")
    old = commit("old")
    write_cached(cache, "owner/old", old, "model.safetensors", b"o" * 600_000, used_at=time.time() - 60)
    fake_hub.publish("owner/new", {"config.json": b"{}", "model.safetensors": b"n" * 500_000})
    hub_cache.fetch_model("owner/new", "inference", None)
    assert {repo_id for repo_id, _ in cached_revisions(cache)} == {"owner/new"}

    fake_hub.publish("owner/huge", {"config.json": b"{}", "model.safetensors": b"h" * 1_200_000})
    with pytest.raises(UserError, match="^the model owner/huge needs about 1.2 MB, and this "
                                        "server's disk budget of 1.0 MB \\(NER_MAX_DISK_MB\\) has"):
        hub_cache.fetch_model("owner/huge", "inference", None)
    assert [d[0] for d in fake_hub.downloads] == ["owner/new"]


# Who may name a Hub model -----------------------------------------------------------------------

@pytest.mark.parametrize("public, allowed, username, repo_id", [
    (False, "", None, "anyone/anything"),  # one person's own machine
    (True, "", "alice", "anyone/anything"),  # signed in
    (True, "dslim/bert-base-NER, owner/model", None, "owner/model"),  # on the allow-list
    (True, "bert-base-cased", None, "bert-base-cased"),
])
def test_who_may_name_a_hub_model(monkeypatch, public, allowed, username, repo_id):
    monkeypatch.setenv("NER_PUBLIC", "1" if public else "0")
    monkeypatch.setenv("NER_HUB_MODELS", allowed)
    hub.check_hub_use(repo_id, username)


@pytest.mark.parametrize("allowed, offered", [
    ("", ""),
    ("owner/model,dslim/bert-base-NER", " \\(anyone may use dslim/bert-base-NER, owner/model\\)"),
])
def test_an_anonymous_visitor_naming_another_model_is_told_what_to_do(monkeypatch, allowed, offered):
    monkeypatch.setenv("SPACE_ID", "owner/studio")
    monkeypatch.setenv("NER_HUB_MODELS", allowed)
    with pytest.raises(UserError, match=f"^on this server only signed-in visitors may name a Hub "
                                        f"model, found 'someone/big'{offered}: sign in with Hugging "
                                        f"Face, or ask the owner of this server to add it to "
                                        f"NER_HUB_MODELS$"):
        hub.check_hub_use("someone/big", None)


@pytest.mark.parametrize("username", [None, "alice"])
def test_a_mistyped_allow_list_is_refused_naming_its_bad_entries(monkeypatch, username):
    monkeypatch.setenv("NER_PUBLIC", "1")
    monkeypatch.setenv("NER_HUB_MODELS", "owner/model, ../etc ,a/b/c,")
    with pytest.raises(UserError, match="^the setting NER_HUB_MODELS must list Hub model ids "
                                        "\\(owner/name\\) separated by commas, found '../etc', "
                                        "'a/b/c'$"):
        hub.check_hub_use("owner/model", username)


def test_the_highlight_hub_box_asks_the_rule(monkeypatch):
    from studio import access
    from studio.models import pick

    monkeypatch.setenv("SPACE_ID", "owner/studio")
    monkeypatch.setenv("NER_HUB_MODELS", "owner/listed")
    anonymous = access.Visitor(None, "a-session")
    for who in (anonymous, None):
        with pytest.raises(UserError, match="^on this server only signed-in visitors may name a "
                                            "Hub model, found 'someone/big'"):
            pick(None, "someone/big", who=who)
    assert pick(None, "owner/listed", who=anonymous) == "owner/listed"
    assert pick(None, " someone/big ", who=access.Visitor("alice", "b-session")) == "someone/big"
    monkeypatch.delenv("SPACE_ID")
    assert pick(None, "someone/big", who=anonymous) == "someone/big"  # a private host
