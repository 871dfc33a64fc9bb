"""The Hugging Face Hub: whether it can be reached (a short probe, asked again a minute after a
no), pushing a saved run to it, and checking a Hub model from its description before it downloads.

Offline, ``from_pretrained("distilbert-base-uncased")`` takes most of a minute to fail while the Hub
client retries; nothing here may wait on that, so every Hub path asks ``hub_reachable()`` first.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

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

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def require_hub(what: str, instead: str) -> None:
    """Raise ``UserError`` in one sentence when ``what`` needs the Hub and it is unreachable."""
    if not hub_reachable():
        raise UserError(f"{what} must come from the Hugging Face Hub, which cannot be reached "
                        f"from here (no network or HF_HUB_OFFLINE=1); {instead}")


def download_config(repo_id: str) -> Path:
    """A Hub model's ``config.json`` (a few kilobytes) into the local cache; where it is there."""
    from huggingface_hub import hf_hub_download

    status_error, network_errors = _hub_errors()
    try:
        return Path(hf_hub_download(repo_id, "config.json"))
    except status_error as error:
        raise UserError(f"the Hub did not give the configuration of {repo_id}: "
                        f"{_one_line(error)}") from error
    except network_errors as error:
        raise UserError(f"the Hub could not be asked for the configuration of {repo_id}: "
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


def check_hub_model(repo_id: str, max_bytes: int | None, purpose: str) -> None:
    """Refuse, from the Hub's description alone (nothing downloads), a model not to be loaded.

    ``purpose`` is ``"inference"`` (it must be a token-classification model) or ``"training"`` (a
    token-classification model or a text encoder). The model must be public and ungated, hold
    safetensors weights, and those weights (the top-level ``*.safetensors`` files that
    ``from_pretrained`` reads) may not exceed ``max_bytes`` when it is given.
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
    weights = [s for s in info.siblings or []
               if s.rfilename.endswith(".safetensors") and "/" not in s.rfilename]
    if not weights:
        raise UserError(f"{repo_id}: expected safetensors weights (model.safetensors), found "
                        "none; pickled weights are never loaded")
    if max_bytes is not None:
        unknown = [s.rfilename for s in weights if s.size is None]
        if unknown:
            raise UserError(f"{repo_id}: the Hub did not give the size of {', '.join(unknown)}, "
                            f"so it cannot be checked against the limit of {_mb(max_bytes)}")
        total = sum(s.size for s in weights)
        if total > max_bytes:
            raise UserError(f"{repo_id}: expected at most {_mb(max_bytes)} of weights here, found "
                            f"{_mb(total)} of safetensors files")


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
