"""The Hugging Face Hub: whether it can be reached (a short probe, asked again a minute after a
no), which names are Hub ids, where its local cache is and what it holds, pushing a saved run or
a dataset of accepted examples to it, and who may name a Hub model here and how large it may be.

Offline, ``from_pretrained("distilbert-base-uncased")`` takes most of a minute to fail while the Hub
client retries; nothing here may wait on that, so every Hub path asks ``hub_reachable()`` first.

On a public host only signed-in visitors, or anyone for the models of ``NER_HUB_MODELS``, may name
a Hub model (``check_hub_use``). Whether one may load, from its description, is ``hub_check``;
fetching the revision checked and keeping the cache within the disk budget is ``hub_cache``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

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


def is_dataset_id(name: str) -> bool:
    """True for ``owner/name``: how a Hub dataset is named as data (a bare name is a missing
    file, and ``conll2003`` has a path of its own).

    >>> [is_dataset_id(n) for n in ["owner/ner-data", "conll2003", "a/b/c", "../x"]]
    [True, False, False, False]
    """
    return name.count("/") == 1 and is_hub_id(name)


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
    token = _push_token(repo_id, token, "run")
    url = _upload(repo_id, token, private, "model", "run", folder_path=str(directory),
                  allow_patterns=pushed_files(directory),
                  commit_message=f"Upload the ner_core run {directory.name}")
    logger.info("pushed %s to %s", directory, url)
    return url


def push_dataset(name: str, repo_id: str, *, owner: str | None, token: str | None = None,
                 private: bool = True) -> str:
    """Upload the dataset ``name`` of accepted examples (``owner``'s, as ``annotations`` names
    them) to the Hub dataset repository ``repo_id``; its URL.

    It goes up as a Hugging Face dataset: one Parquet file of ``tokens``, ``ner_tags`` (ClassLabel,
    IOB2) and ``doc_id`` (one document per example), and a README.md with its entities per type.
    Token, visibility and errors are as for ``push_run``; the dataset itself is only read.
    """
    import tempfile

    from . import dataset_export

    found, _ = dataset_export.aligned_examples(name, owner=owner)
    if not found:
        raise UserError(f"expected accepted examples in the dataset {name!r} to push, found none")
    token = _push_token(repo_id, token, "dataset")
    with tempfile.TemporaryDirectory(prefix="ner-dataset-push-") as folder:
        dataset_export.write_hub_dataset(found, Path(folder), repo_id.split("/")[1])
        url = _upload(repo_id, token, private, "dataset", "dataset", folder_path=folder,
                      commit_message=f"Upload the ner_core dataset {name}")
    logger.info("pushed the dataset %s to %s", name, url)
    return url


def _push_token(repo_id: str, token: str | None, local: str) -> str | None:
    """The token to push to ``repo_id`` with (``None``: huggingface_hub's own), once the id, the
    Hub and a token are there; ``UserError`` saying which is missing. ``local`` is what is
    pushed ("run"), for messages."""
    if not (is_hub_id(repo_id) and repo_id.count("/") == 1):
        raise UserError(f"expected a Hub repository id owner/name to push to, found {repo_id!r}")
    if not hub_reachable():
        raise UserError(f"cannot push to {repo_id}: the Hugging Face Hub cannot be reached from "
                        f"here (no network or HF_HUB_OFFLINE=1); the local {local} is untouched")
    from huggingface_hub import get_token

    token = token or None
    if token is None and get_token() is None:
        raise UserError(f"pushing to {repo_id} needs a Hugging Face token with write access: "
                        "sign in, or set HF_TOKEN")
    return token


def _upload(repo_id: str, token: str | None, private: bool, repo_type: str, local: str,
            **upload) -> str:
    """Create the repository when missing and upload a folder to it (``upload``: the arguments
    of ``HfApi.upload_folder``); its URL. Hub errors become one sentence."""
    from huggingface_hub import HfApi

    status_error, network_errors = _hub_errors()
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
        api.upload_folder(repo_id=repo_id, repo_type=repo_type, **upload)
    except status_error as error:
        status = getattr(error.response, "status_code", None)
        if status in (401, 403):
            raise UserError(f"the token may not write to {repo_id}: {_one_line(error)}") from error
        raise UserError(f"the push to {repo_id} failed: {_one_line(error)}; the local {local} is "
                        "untouched") from error
    except network_errors as error:
        raise UserError(f"the push to {repo_id} failed: {_one_line(error)}; the local {local} is "
                        "untouched") from error
    return str(url)


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


# Who may name a Hub model, and how large it may be ---------------------------------------------


def max_model_bytes() -> int | None:
    """``NER_MAX_HUB_MODEL_MB`` in bytes: decimal megabytes, as the Hub shows sizes and refusals
    print them; ``None`` where no limit applies."""
    most = tenancy.limit("NER_MAX_HUB_MODEL_MB")
    return None if most is None else most * 1_000_000


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
