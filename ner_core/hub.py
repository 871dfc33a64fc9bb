"""The Hugging Face Hub: whether it can be reached (a short probe, asked again a minute after a
no), pushing a saved run to it, checking a Hub model from its description before it downloads,
fetching the checked revision into the local cache, and keeping that cache within the disk budget.

Offline, ``from_pretrained("distilbert-base-uncased")`` takes most of a minute to fail while the Hub
client retries; nothing here may wait on that, so every Hub path asks ``hub_reachable()`` first.

Hub models are never loaded by id while the Hub can be reached: ``fetch_model`` downloads the
revision it checked (one download at a time on a server) and the model loads from that folder.
On a public host only signed-in visitors, or anyone for the models of ``NER_HUB_MODELS``, may name
one (``check_hub_use``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import tenancy
from .errors import UserError

logger = logging.getLogger(__name__)

HUB_HOST = "huggingface.co"
PROBE_SECONDS = 3.0
RETRY_SECONDS = 60.0  # how long "unreachable" is believed before the Hub is probed again
# owner/name or a bare name: ASCII letters, digits, '-', '_' and '.', no '..', no leading '.' or
# '-'. Matched whole (fullmatch): '$' alone would let a trailing newline through.
_HUB_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}", re.ASCII)


def is_hub_id(name: str) -> bool:
    """True for names shaped like Hub repository ids; paths and URLs are not.

    >>> [is_hub_id(n) for n in ["bert-base-cased", "dslim/bert-base-NER", "../etc", "/abs", "a/b/c"]]
    [True, True, False, False, False]
    """
    return isinstance(name, str) and bool(_HUB_ID.fullmatch(name)) and ".." not in name


def _probe() -> bool:
    """Whether the Hub answers a TCP connection within ``PROBE_SECONDS``."""
    result = []

    def connect() -> None:
        try:
            socket.create_connection((HUB_HOST, 443), timeout=PROBE_SECONDS).close()
            result.append(True)
        except OSError as error:
            logger.info("the Hub is unreachable: %s", error)

    # Name resolution ignores socket timeouts, so the probe runs in a thread we stop waiting for.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(PROBE_SECONDS + 0.5)
    return bool(result)


class HubProbe:
    """``hub_reachable()``: True when the Hub can be reached; ``HF_HUB_OFFLINE`` says no.

    A yes is kept for the life of the process; a no only for ``RETRY_SECONDS``, so a server that
    started before its network was up comes online without a restart. One probe runs at a time:
    callers meanwhile wait for its answer rather than probe again. ``cache_clear()`` forgets it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: bool | None = None
        self._probed_at = 0.0

    def __call__(self) -> bool:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
            return False
        with self._lock:
            stale = time.monotonic() - self._probed_at >= RETRY_SECONDS
            if self._answer is None or (self._answer is False and stale):
                self._answer = _probe()
                self._probed_at = time.monotonic()
            return self._answer

    def cache_clear(self) -> None:
        with self._lock:
            self._answer = None


hub_reachable = HubProbe()


def cache_dir() -> Path:
    """Where Hub downloads are kept (``HF_HUB_CACHE``, else under ``HF_HOME``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def is_cached(repo_id: str) -> bool:
    """True when a Hub model's files are in the local Hugging Face cache (usable offline)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(cache_dir()))
    return isinstance(found, str)


def require_hub(what: str, instead: str) -> None:
    """Raise ``UserError`` in one sentence when ``what`` needs the Hub and it is unreachable."""
    if not hub_reachable():
        raise UserError(f"{what} must come from the Hugging Face Hub, which cannot be reached "
                        f"from here (no network or HF_HUB_OFFLINE=1); {instead}")


def download_config(repo_id: str) -> Path:
    """A Hub model's ``config.json`` (a few kilobytes) into the local cache; where it is there."""
    return _download_small(repo_id, "config.json", "the configuration")


def _download_small(repo_id: str, filename: str, what: str, revision: str | None = None) -> Path:
    """One small file of a Hub model (a configuration, an index) into the local cache."""
    from huggingface_hub import hf_hub_download

    status_error, network_errors = _hub_errors()
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision,
                                    cache_dir=str(cache_dir())))
    except status_error as error:
        raise UserError(f"the Hub did not give {what} of {repo_id}: {_one_line(error)}") from error
    except network_errors as error:
        raise UserError(f"the Hub could not be asked for {what} of {repo_id}: "
                        f"{_one_line(error)}") from error


PUSHED_NAMES = frozenset({"README.md", "vocab.txt", "merges.txt"})
# Weights, configs and tokenizer files; sentencepiece ``.model`` files are protobuf, not pickles.
PUSHED_SUFFIXES = frozenset({".safetensors", ".json", ".model"})
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][\w.-]*", re.ASCII)  # also a glob pattern matching only itself
INFO_SECONDS = 10.0
PURPOSES = ("inference", "training")
# Pipeline tags of models that can be fine-tuned for NER: token classifiers and plain encoders.
ENCODER_PIPELINE_TAGS = frozenset({"token-classification", "fill-mask", "feature-extraction",
                                   "sentence-similarity"})
# Text encoders that transformers gives a token-classification head (no decoders, no layout models).
ENCODER_MODEL_TYPES = frozenset({
    "albert", "bert", "big_bird", "camembert", "convbert", "data2vec-text", "deberta",
    "deberta-v2", "distilbert", "electra", "ernie", "eurobert", "flaubert", "funnel", "ibert",
    "longformer", "megatron-bert", "mobilebert", "modernbert", "mpnet", "rembert", "roberta",
    "roberta-prelayernorm", "roc_bert", "roformer", "squeezebert", "xlm", "xlm-roberta",
    "xlm-roberta-xl", "xmod"})


def _hub_errors():
    """The Hub client's HTTP status error, and what a failed connection raises.

    ``HfHubHTTPError`` derives from the HTTP library's base error (httpx2's in huggingface_hub 2),
    which a refused or timed-out connection also raises; ``requests``, used by older clients,
    raises ``OSError`` subclasses.
    """
    from huggingface_hub.errors import HfHubHTTPError

    return HfHubHTTPError, (OSError, HfHubHTTPError.__mro__[1])


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _saved_run(run: str) -> Path:
    """The directory of the complete run named ``run`` (a run's name or its directory)."""
    from . import runs

    named = runs.runs_dir() / run if isinstance(run, str) and runs.is_run_name(run) else None
    path = named if named is not None and named.is_dir() else None
    if path is None and isinstance(run, str) and run.strip():
        candidate = Path(run).expanduser()
        if candidate.is_dir() and not candidate.resolve().name.startswith("."):
            path = candidate
    if path is None:
        raise UserError(f"expected the name or directory of a saved run, found {run!r}, which "
                        "is neither")
    missing = [f for f in runs.RUN_FILES if not (path / f).is_file()]
    if missing:
        raise UserError(f"{run}: expected a complete saved run with {', '.join(runs.RUN_FILES)}, "
                        f"found one without {', '.join(missing)}")
    return path


def pushed_files(directory: Path) -> list[str]:
    """The names of a run's files that a push uploads: weights, configs, tokenizer, card.

    Hidden files, subdirectories, links and pickles (``*.bin``, ``*.pt``, ...) stay local.
    """
    return sorted(p.name for p in directory.iterdir()
                  if p.is_file() and not p.is_symlink() and _PLAIN_NAME.fullmatch(p.name)
                  and (p.name in PUSHED_NAMES or p.suffix in PUSHED_SUFFIXES))


def push_run(run: str, repo_id: str, token: str | None = None, private: bool = True) -> str:
    """Upload a saved run to the Hub model repository ``repo_id`` (owner/name); its URL.

    The repository is created when missing, private unless ``private=False``; an existing one
    keeps its visibility. Only ``pushed_files`` go up, and the run itself is only read. Without
    ``token``, huggingface_hub's own is used (``HF_TOKEN``, or a saved login).
    """
    directory = _saved_run(run)
    if not (is_hub_id(repo_id) and repo_id.count("/") == 1):
        raise UserError(f"expected a Hub repository id owner/name to push to, found {repo_id!r}")
    if not hub_reachable():
        raise UserError(f"cannot push to {repo_id}: the Hugging Face Hub cannot be reached from "
                        "here (no network or HF_HUB_OFFLINE=1); the local run is untouched")
    from huggingface_hub import HfApi, get_token

    token = token or None
    if token is None and get_token() is None:
        raise UserError(f"pushing to {repo_id} needs a Hugging Face token with write access: "
                        "sign in, or set HF_TOKEN")
    status_error, network_errors = _hub_errors()
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(folder_path=str(directory), repo_id=repo_id, repo_type="model",
                          allow_patterns=pushed_files(directory),
                          commit_message=f"Upload the ner_core run {directory.name}")
    except status_error as error:
        status = getattr(error.response, "status_code", None)
        if status in (401, 403):
            raise UserError(f"the token may not write to {repo_id}: {_one_line(error)}") from error
        raise UserError(f"the push to {repo_id} failed: {_one_line(error)}; the local run is "
                        "untouched") from error
    except network_errors as error:
        raise UserError(f"the push to {repo_id} failed: {_one_line(error)}; the local run is "
                        "untouched") from error
    logger.info("pushed %s to %s", directory, url)
    return str(url)


@dataclass(frozen=True)
class HubModel:
    """A checked Hub model: the revision the Hub described (``sha``), and the size of each file
    loading it needs (``None`` where the Hub gave none)."""

    repo_id: str
    sha: str | None
    sizes: dict[str, int | None]

    @property
    def total(self) -> int:
        return sum(size or 0 for size in self.sizes.values())


def check_hub_model(repo_id: str, max_bytes: int | None, purpose: str) -> HubModel:
    """Refuse, from the Hub's description, a model not to be loaded; else what loading it takes.

    ``purpose`` is ``"inference"`` (it must be a token-classification model) or ``"training"`` (a
    token-classification model or a text encoder). The model must be public and ungated and hold
    safetensors weights, and every file loading it needs (``files_to_load``: weights,
    configuration, tokenizer) may not exceed ``max_bytes`` together when it is given. Nothing
    downloads but, for sharded weights, the index that names the shards (a few kilobytes).
    """
    if purpose not in PURPOSES:
        raise UserError(f"expected purpose 'inference' or 'training', found {purpose!r}")
    if not (isinstance(repo_id, str) and is_hub_id(repo_id)):
        raise UserError(f"expected a Hub model id (owner/name), found {repo_id!r}")
    require_hub(f"the model {repo_id!r}", "name 'default' or a saved run instead")
    info = _model_info(repo_id)
    if info.private:
        raise UserError(f"{repo_id} is a private model; only public models can be loaded here")
    if info.gated:
        raise UserError(f"{repo_id} is gated (its owner grants access on request); only ungated "
                        "public models can be loaded here")
    _check_kind(repo_id, info, purpose)
    model = HubModel(repo_id, info.sha, files_to_load(repo_id, info))
    if max_bytes is not None:
        unknown = [name for name, size in model.sizes.items() if size is None]
        if unknown:
            raise UserError(f"{repo_id}: the Hub did not give the size of {', '.join(unknown)}, "
                            f"so it cannot be checked against the limit of {_mb(max_bytes)}")
        if model.total > max_bytes:
            most, found = _mb(max_bytes), _mb(model.total)
            if most == found:  # a few bytes over: megabytes would read as equal
                most, found = f"{max_bytes:,} bytes", f"{model.total:,} bytes"
            raise UserError(f"{repo_id}: expected at most {most} of model files here, found "
                            f"{found} in the {len(model.sizes)} files that loading it needs "
                            "(weights, configuration and tokenizer)")
    return model


# What loading reads besides the weights: the configuration and the tokenizer's files.
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_SUFFIX = ".safetensors.index.json"
TOKENIZER_NAMES = frozenset({"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt"})
TOKENIZER_SUFFIX = ".model"  # sentencepiece: protobuf, not a pickle


def files_to_load(repo_id: str, info) -> dict[str, int | None]:
    """The files of the model ``info`` describes that ``from_pretrained`` reads, and their sizes.

    Weights: ``model.safetensors`` where there is one (transformers reads it first); else every
    top-level ``*.safetensors`` file, every ``*.safetensors.index.json`` and each shard an index
    names, wherever it is. Then ``config.json`` and the tokenizer's files, at the top level.
    Pickles never: they are neither weights here nor tokenizer files.
    """
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    top = [name for name in sizes if "/" not in name and _PLAIN_NAME.fullmatch(name)]
    if WEIGHTS_NAME in top:
        weights = [WEIGHTS_NAME]
    else:
        weights = [name for name in top if name.endswith(".safetensors")]
        for index in (name for name in top if name.endswith(INDEX_SUFFIX)):
            weights += [index, *_shards(repo_id, info.sha, index, sizes)]
    if not any(name.endswith(".safetensors") for name in weights):
        raise UserError(f"{repo_id}: expected safetensors weights (model.safetensors), found "
                        "none; pickled weights are never loaded")
    others = [name for name in top if name == CONFIG_NAME or name in TOKENIZER_NAMES
              or name.endswith(TOKENIZER_SUFFIX)]
    return {name: sizes[name] for name in sorted({*weights, *others})}


def _shards(repo_id: str, sha: str | None, index: str, sizes: dict) -> list[str]:
    """The shard files the index ``index`` of sharded weights names (``weight_map``)."""
    path = _download_small(repo_id, index, f"the index {index}", revision=sha)
    try:
        named = set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"{repo_id}: expected {index} to map each weight to a shard file "
                        "(weight_map), found no such map") from None
    odd = sorted(repr(name) for name in named if not (isinstance(name, str) and _plain_path(name)))
    if odd:
        raise UserError(f"{repo_id}: expected {index} to name shard files by relative paths, "
                        f"found {', '.join(odd)}")
    missing = sorted(named - set(sizes))
    if missing:
        raise UserError(f"{repo_id}: expected the shards that {index} names in the repository, "
                        f"found no {', '.join(missing)}")
    return sorted(named)


def _plain_path(name: str) -> bool:
    """A relative path of plain names (each also a glob pattern matching only itself)."""
    return all(_PLAIN_NAME.fullmatch(part) for part in PurePosixPath(name).parts)


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _model_info(repo_id: str):
    """``HfApi.model_info`` with file sizes; its errors become one sentence each."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    status_error, network_errors = _hub_errors()
    try:
        return HfApi().model_info(repo_id, files_metadata=True, timeout=INFO_SECONDS)
    except GatedRepoError as error:
        raise UserError(f"{repo_id} is gated (its owner grants access on request); only ungated "
                        "public models can be loaded here") from error
    except RepositoryNotFoundError as error:
        raise UserError(f"expected a public model on the Hugging Face Hub, found no model "
                        f"{repo_id!r} (it does not exist, or it is private)") from error
    except status_error as error:
        raise UserError(f"the Hub did not describe {repo_id}: {_one_line(error)}") from error
    except network_errors as error:
        raise UserError(f"the Hub could not be asked about {repo_id}: {_one_line(error)}") from error


def _check_kind(repo_id: str, info, purpose: str) -> None:
    tag = info.pipeline_tag
    config = info.config or {}
    model_type = config.get("model_type")
    if tag and model_type:
        found = f"pipeline tag {tag!r}, model type {model_type!r}"
    else:
        found = (f"pipeline tag {tag!r}" if tag else f"model type {model_type!r}" if model_type
                 else "neither a pipeline tag nor a model type")
    if purpose == "inference":
        heads = config.get("architectures") or []
        if tag == "token-classification" or any(str(h).endswith("ForTokenClassification")
                                                for h in heads):
            return
        raise UserError(f"expected a token-classification (NER) model to highlight with, found "
                        f"{repo_id} with {found}; a model without a NER head cannot highlight: "
                        "fine-tune it first")
    if tag in ENCODER_PIPELINE_TAGS or model_type in ENCODER_MODEL_TYPES:
        return
    raise UserError(f"expected a token-classification model or a text encoder (BERT, RoBERTa, "
                    f"DeBERTa, ...) to fine-tune, found {repo_id} with {found}")


# Fetching a checked revision -------------------------------------------------------------------

DOWNLOAD_WAIT_SECONDS = 60.0  # how long a fetch waits for another download before it is refused
_COMMIT = re.compile(r"[0-9a-f]{40}", re.ASCII)


def max_model_bytes() -> int | None:
    """``NER_MAX_HUB_MODEL_MB`` in bytes: decimal megabytes, as the Hub shows sizes and refusals
    print them; ``None`` where no limit applies."""
    most = tenancy.limit("NER_MAX_HUB_MODEL_MB")
    return None if most is None else most * 1_000_000


def fetch_model(repo_id: str, purpose: str, max_bytes: int | None) -> Path:
    """The local folder of a Hub model's files, checked and then downloaded: load it from there.

    The Hub is asked once (``check_hub_model``); the revision it describes (its ``sha``) is the
    one downloaded, with only ``files_to_load``, so the revision checked is the revision loaded.
    The download must fit the disk budget (``tenancy.check_room``, which evicts the cache's least
    recently used models first). A revision already in the cache whole returns at once, without
    downloading or waiting. Downloads run one at a time (``one_download``).
    """
    model = check_hub_model(repo_id, max_bytes, purpose)
    if not (isinstance(model.sha, str) and _COMMIT.fullmatch(model.sha)):
        raise UserError(f"the Hub did not say which revision of {repo_id} it described, found "
                        f"{model.sha!r}; nothing was downloaded")
    folder = snapshot_folder(repo_id, model.sha)
    if not _holds(folder, model):
        with one_download(model):
            if not _holds(folder, model):  # unless the download waited for was this one
                folder = _download(model, folder)
    _mark_used(folder, model)
    _record_main(repo_id, model.sha)
    return folder


def _repo_folder(repo_id: str) -> Path:
    return cache_dir() / ("models--" + repo_id.replace("/", "--"))  # huggingface_hub's layout


def snapshot_folder(repo_id: str, sha: str) -> Path:
    """Where the cache keeps revision ``sha`` of the model ``repo_id``."""
    return _repo_folder(repo_id) / "snapshots" / sha


def _record_main(repo_id: str, sha: str) -> None:
    """Note in the cache that ``sha`` is the Hub's current revision (what ``model_info``
    described), as a download of ``main`` would: offline, the model then loads by its id."""
    main = _repo_folder(repo_id) / "refs" / "main"
    try:
        if not main.is_file() or main.read_text() != sha:
            main.parent.mkdir(parents=True, exist_ok=True)
            main.write_text(sha)
    except OSError as error:
        logger.warning("could not record %s at %s as its current revision: %s", repo_id, sha[:12],
                       error)


def _holds(folder: Path, model: HubModel) -> bool:
    return all((folder / name).is_file() for name in model.sizes)


def _download(model: HubModel, folder: Path) -> Path:
    from huggingface_hub import snapshot_download

    missing = sum(size or 0 for name, size in model.sizes.items() if not (folder / name).is_file())
    tenancy.check_room(missing, f"the model {model.repo_id}")
    status_error, network_errors = _hub_errors()
    try:
        where = snapshot_download(model.repo_id, revision=model.sha,
                                  allow_patterns=sorted(model.sizes), cache_dir=str(cache_dir()))
    except (status_error, *network_errors) as error:
        raise UserError(f"the download of {model.repo_id} from the Hub failed: "
                        f"{_one_line(error)}") from error
    logger.info("downloaded %s at %s: %d files, %s", model.repo_id, model.sha[:12],
                len(model.sizes), _mb(model.total))
    return Path(where)


def _mark_used(folder: Path, model: HubModel) -> None:
    """Record in the files' access times that the model is used now: the cache evicts by them,
    and a file system mounted ``relatime`` would record a read at most once a day."""
    now = time.time_ns()
    for name in model.sizes:
        try:
            os.utime(folder / name, ns=(now, (folder / name).stat().st_mtime_ns))
        except OSError:
            pass  # a read-only cache: eviction then goes by the times the system recorded


def _lock_folder() -> Path:
    return cache_dir() / ".locks"  # beside huggingface_hub's own locks; a cache scan skips it


@contextmanager
def one_download(model: HubModel) -> Iterator[None]:
    """Hold this server's one download slot while downloading ``model``.

    The slot is a lock file in the cache, so the server's threads and the workers it forks all
    take turns. A second fetch waits for the first up to ``DOWNLOAD_WAIT_SECONDS``, then is
    refused in words. What downloads is written beside the lock, and ``evict_cache`` leaves it.
    """
    from filelock import FileLock, Timeout

    _lock_folder().mkdir(parents=True, exist_ok=True)
    lock = FileLock(_lock_folder() / "ner-download.lock", timeout=DOWNLOAD_WAIT_SECONDS)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"{model.repo_id} cannot be downloaded now: another download from the Hub "
                        f"has taken over {DOWNLOAD_WAIT_SECONDS:.0f} s so far, and this server "
                        "downloads one model at a time; try again in a few minutes") from None
    marker = _lock_folder() / "ner-downloading.json"
    try:
        marker.write_text(json.dumps({"repo_id": model.repo_id, "sha": model.sha}))
        yield
    finally:
        marker.unlink(missing_ok=True)
        lock.release()


def downloading() -> tuple[str, str] | None:
    """The model id and revision downloading now, if any. A server killed mid-download leaves
    its note, which keeps that one revision until the next download replaces the note."""
    try:
        found = json.loads((_lock_folder() / "ner-downloading.json").read_text())
        return str(found["repo_id"]), str(found["sha"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# Keeping the cache within the disk budget ------------------------------------------------------


def evict_cache(need_bytes: int) -> int:
    """Remove the Hub cache's least recently used revisions until ``need_bytes`` are freed or
    none is left but the one downloading now (``downloading``); the bytes freed.

    A revision was last used when any of its files was last read (``fetch_model`` records each
    use). ``tenancy.check_room`` calls this when the disk budget would be passed.
    """
    from huggingface_hub import scan_cache_dir

    if need_bytes <= 0 or not cache_dir().is_dir():
        return 0
    cache = scan_cache_dir(cache_dir())
    busy = downloading()
    unused_longest = sorted(
        ((_last_used(revision), repo.repo_id, revision) for repo in cache.repos
         for revision in repo.revisions
         if not (repo.repo_type == "model" and (repo.repo_id, revision.commit_hash) == busy)),
        key=lambda found: found[:2])
    chosen, strategy = [], None
    for used, repo_id, revision in unused_longest:
        chosen.append((used, repo_id, revision))
        strategy = cache.delete_revisions(*(r.commit_hash for _, _, r in chosen))
        if strategy.expected_freed_size >= need_bytes:
            break
    if strategy is None:
        return 0
    strategy.execute()
    for used, repo_id, revision in chosen:
        logger.info("evicted %s at %s from the Hub cache (%s, last used %s)", repo_id,
                    revision.commit_hash[:12], _mb(revision.size_on_disk),
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(used)))
    logger.info("the Hub cache gave up %s of the %s asked for", _mb(strategy.expected_freed_size),
                _mb(need_bytes))
    return strategy.expected_freed_size


def _last_used(revision) -> float:
    return max((f.blob_last_accessed for f in revision.files), default=revision.last_modified)


# Who may name a Hub model ----------------------------------------------------------------------


def allowed_hub_models() -> frozenset[str]:
    """The Hub models anyone may use on a public host: ``NER_HUB_MODELS``, ids separated by
    commas."""
    names = {n.strip() for n in os.environ.get("NER_HUB_MODELS", "").split(",") if n.strip()}
    bad = sorted(n for n in names if not is_hub_id(n))
    if bad:
        raise UserError(f"the setting NER_HUB_MODELS must list Hub model ids (owner/name) "
                        f"separated by commas, found {', '.join(map(repr, bad))}")
    return frozenset(names)


def check_hub_use(repo_id: str, username: str | None) -> None:
    """``UserError`` unless whoever is signed in as ``username`` (``None``: nobody) may name the
    Hub model ``repo_id`` here: anyone may off a public host; on one, a signed-in visitor may, and
    anyone may name the models of ``NER_HUB_MODELS``. Each model named is downloaded and kept:
    anonymous strangers may not fill the disk with models of their choosing.
    """
    if not tenancy.is_public():
        return
    allowed = allowed_hub_models()  # checked for everyone: a mistyped setting is said at once
    if username or repo_id in allowed:
        return
    offered = (f" (anyone may use {', '.join(sorted(allowed))})" if allowed else "")
    raise UserError(f"on this server only signed-in visitors may name a Hub model, found "
                    f"{repo_id!r}{offered}: sign in with Hugging Face, or ask the owner of this "
                    "server to add it to NER_HUB_MODELS")
