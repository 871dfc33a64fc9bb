"""Hub models in the local cache: fetching the revision ``hub_check`` checked, one download at a
time on a server, and keeping the cache within the disk budget by evicting its least recently used
revisions.

Hub models are never loaded by id while the Hub can be reached: ``fetch_model`` downloads the
revision it checked and the model loads from that folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import hub, hub_check, tenancy
from .errors import UserError

logger = logging.getLogger(__name__)


# Fetching a checked revision -------------------------------------------------------------------

DOWNLOAD_WAIT_SECONDS = 60.0  # how long a fetch waits for another download before it is refused
_COMMIT = re.compile(r"[0-9a-f]{40}", re.ASCII)


def fetch_model(repo_id: str, purpose: str, max_bytes: int | None) -> Path:
    """The local folder of a Hub model's files, checked and then downloaded: load it from there.

    The Hub is asked once (``hub_check.check_hub_model``); the revision it describes (its
    ``sha``) is the one downloaded, with only ``hub_check.files_to_load``, so the revision
    checked is the revision loaded.
    The download must fit the disk budget (``tenancy.check_room``, which evicts the cache's least
    recently used models first). A revision already in the cache whole returns at once, without
    downloading or waiting. Downloads run one at a time (``one_download``).
    """
    model = hub_check.check_hub_model(repo_id, max_bytes, purpose)
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
    return hub.cache_dir() / ("models--" + repo_id.replace("/", "--"))  # huggingface_hub's layout


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


def _holds(folder: Path, model: hub_check.HubModel) -> bool:
    return all((folder / name).is_file() for name in model.sizes)


def _download(model: hub_check.HubModel, folder: Path) -> Path:
    from huggingface_hub import snapshot_download

    missing = sum(size or 0 for name, size in model.sizes.items() if not (folder / name).is_file())
    tenancy.check_room(missing, f"the model {model.repo_id}")
    status_error, network_errors = hub._hub_errors()
    try:
        where = snapshot_download(model.repo_id, revision=model.sha,
                                  allow_patterns=sorted(model.sizes),
                                  cache_dir=str(hub.cache_dir()))
    except (status_error, *network_errors) as error:
        raise UserError(f"the download of {model.repo_id} from the Hub failed: "
                        f"{hub._one_line(error)}") from error
    logger.info("downloaded %s at %s: %d files, %s", model.repo_id, model.sha[:12],
                len(model.sizes), hub._mb(model.total))
    return Path(where)


def _mark_used(folder: Path, model: hub_check.HubModel) -> None:
    """Record in the files' access times that the model is used now: the cache evicts by them,
    and a file system mounted ``relatime`` would record a read at most once a day."""
    now = time.time_ns()
    for name in model.sizes:
        try:
            os.utime(folder / name, ns=(now, (folder / name).stat().st_mtime_ns))
        except OSError:
            pass  # a read-only cache: eviction then goes by the times the system recorded


def _lock_folder() -> Path:
    return hub.cache_dir() / ".locks"  # beside huggingface_hub's own locks; a cache scan skips it


@contextmanager
def one_download(model: hub_check.HubModel) -> Iterator[None]:
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

    if need_bytes <= 0 or not hub.cache_dir().is_dir():
        return 0
    cache = scan_cache_dir(hub.cache_dir())
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
                    revision.commit_hash[:12], hub._mb(revision.size_on_disk),
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(used)))
    logger.info("the Hub cache gave up %s of the %s asked for",
                hub._mb(strategy.expected_freed_size), hub._mb(need_bytes))
    return strategy.expected_freed_size


def _last_used(revision) -> float:
    return max((f.blob_last_accessed for f in revision.files), default=revision.last_modified)
