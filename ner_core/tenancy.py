"""Who owns what on a public host, and the budgets that no one visitor can drain.

A server is *public* on a Hugging Face Space (``SPACE_ID``), wherever it is reachable from other
machines (``GRADIO_SHARE``, a ``GRADIO_SERVER_NAME`` other than a loopback address) and when
``NER_PUBLIC=1``. There, everything a visitor makes (a run, a dataset, an upload, a download, an
export, a zip) has an owner: the signed-in account, or ``session:<id>`` for an anonymous browser
session. A visitor lists, reads and changes only what they own; the Space's owner and the accounts
in ``NER_ADMINS`` manage everything. Elsewhere (one person on their own machine) everything belongs
to that person and no limit applies.

Owners are plain strings, so the CLI and tests use this module without a server. Every limit is an
environment variable with a default on a public host (``PUBLIC_DEFAULTS``), and every refusal
names the value, the limit and the variable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

logger = logging.getLogger(__name__)

SESSION_PREFIX = "session:"
LOOPBACK = frozenset({"", "127.0.0.1", "localhost", "::1"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", re.ASCII)

# Defaults on a public host; elsewhere there is no limit unless the variable is set.
PUBLIC_DEFAULTS = {
    "NER_MAX_EPOCHS": 10,
    "NER_MAX_CPU_TRAIN_SENTENCES": 5_000,
    "NER_FINETUNE_BUDGET_SECONDS": 1_800,
    "NER_MAX_RUNS": 5,  # per owner
    "NER_MAX_HUB_MODEL_MB": 1_000,  # every file of one Hub model
    "NER_MAX_DATASETS": 10,  # per owner
    "NER_MAX_DATASET_RECORDS": 5_000,  # accepted examples per dataset
    "NER_MAX_ACCEPT_CHARS": 20_000,  # one accepted example's text
    "NER_MAX_ACCEPT_ENTITIES": 1_000,  # one accepted example's entities
    "NER_MAX_EVAL_SENTENCES": 5_000,  # one evaluation's labelled sentences
    "NER_MAX_DISK_MB": 20_000,  # runs + datasets + temporary files + uploads + the Hub cache
}


def is_public() -> bool:
    """Whether other people can reach this server (see the module's docstring)."""
    if os.environ.get("SPACE_ID") or _flag("NER_PUBLIC") or _flag("GRADIO_SHARE"):
        return True
    return os.environ.get("GRADIO_SERVER_NAME", "").strip().lower() not in LOOPBACK


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def space_owner() -> str | None:
    """The account that owns this Space (``SPACE_AUTHOR_NAME``, else the owner part of
    ``SPACE_ID``); ``None`` off a Space."""
    if not os.environ.get("SPACE_ID"):
        return None
    return os.environ.get("SPACE_AUTHOR_NAME") or os.environ["SPACE_ID"].split("/")[0]


def admins() -> frozenset[str]:
    """The accounts that manage everything: the Space's owner and those in ``NER_ADMINS``
    (comma-separated). An organisation's Space names its members' accounts in ``NER_ADMINS``:
    nobody signs in as the organisation."""
    names = {n.strip() for n in os.environ.get("NER_ADMINS", "").split(",") if n.strip()}
    bad = sorted(n for n in names if not _ACCOUNT.fullmatch(n))
    if bad:
        raise UserError(f"the setting NER_ADMINS must list Hugging Face account names separated "
                        f"by commas, found {', '.join(map(repr, bad))}")
    owner = space_owner()
    return frozenset(names | ({owner} if owner else set()))


def is_admin(who: str | None) -> bool:
    """Whether the owner string ``who`` is an account that manages everything (never a session)."""
    return who is not None and not who.startswith(SESSION_PREFIX) and who in admins()


def may_manage(who: str | None, owner: str | None) -> bool:
    """Whether ``who`` may read, change or delete what ``owner`` made.

    Off a public host everything belongs to the one local user. On one: its owner, or an admin;
    what has no known owner, only an admin.
    """
    if not is_public():
        return True
    return is_admin(who) or (who is not None and who == owner)


def is_shared(owner: str | None) -> bool:
    """Whether what ``owner`` made belongs to the host and is offered to every visitor: made
    without an owner (by the CLI, say) or by an admin. Runs are listed for everyone when shared."""
    return owner is None or is_admin(owner)


def tenant_key(owner: str | None) -> str:
    """A file-system name for ``owner``: ``u-<account>``, ``s-<hash of the session>``, or
    ``local`` for no owner. A session id never appears on disk.

    >>> tenant_key("alice"), tenant_key(None), tenant_key("session:abc")[:2]
    ('u-alice', 'local', 's-')
    """
    if owner is None:
        return "local"
    if owner.startswith(SESSION_PREFIX):
        return "s-" + hashlib.sha256(owner.encode("utf-8")).hexdigest()[:24]
    if not _ACCOUNT.fullmatch(owner) or ".." in owner:
        raise UserError(f"expected an account name of letters, digits, '-', '_' and '.', "
                        f"found {owner!r}")
    return f"u-{owner}"


# Limits ---------------------------------------------------------------------------------------


def int_setting(name: str, default: int | None) -> int | None:
    """The whole number (at least 1) that the environment variable ``name`` holds; ``default``
    when it is unset or blank.

    >>> int_setting("NER_NOT_SET_ANYWHERE", 300)
    300
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    # ASCII digits only: int() would also take '1_000' and digits of other scripts.
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise UserError(f"the setting {name} must be a whole number, found {raw!r}")
    value = int(raw)
    if value < 1:
        raise UserError(f"the setting {name} must be at least 1, found {value}")
    return value


def limit(name: str) -> int | None:
    """The limit ``name`` (one of ``PUBLIC_DEFAULTS``): its variable, else the public-host
    default on a public host, else none."""
    return int_setting(name, PUBLIC_DEFAULTS[name] if is_public() else None)


def check_count(name: str, found: int, what: str) -> None:
    """``UserError`` when ``found`` (the count after the change) passes the limit ``name``.

    ``what`` says what is counted, as in ``"runs of yours"``.
    """
    most = limit(name)
    if most is not None and found > most:
        raise UserError(f"expected at most {most:,} {what} on this server ({name}), found "
                        f"{found:,}")


# The disk budget ------------------------------------------------------------------------------


def temp_root() -> Path:
    """The one folder under which every temporary file the app writes for a visitor lives:
    ``$NER_TEMP_DIR``, else ``ner-studio`` in the temporary directory of the moment."""
    configured = os.environ.get("NER_TEMP_DIR", "").strip()
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "ner-studio"


def tenant_temp(owner: str | None, kind: str) -> Path:
    """``temp_root()/<tenant>/<kind>``, created: where ``owner``'s files of ``kind`` go."""
    folder = temp_root() / tenant_key(owner) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_counted: dict[str, Callable[[], Path | None]] = {}


def count_on_disk(label: str, where: Callable[[], Path | None]) -> None:
    """Count the folder ``where()`` (asked at each measure) against the disk budget as
    ``label``. The engine counts runs, datasets, temporary files and the Hub cache; the app adds
    what its web framework keeps (uploads)."""
    _counted[label] = where


def disk_use() -> dict[str, int]:
    """Bytes on disk under each counted folder; a file under two of them is counted once."""
    seen: set[tuple[int, int]] = set()
    return {label: _tree_bytes(path, seen) for label, path in _roots().items()}


def _roots() -> dict[str, Path]:
    from . import dataset_paths, hub, runs

    roots = {"runs": runs.runs_dir(), "datasets": dataset_paths.data_home(),
             "temporary files": temp_root(), "Hub cache": hub.cache_dir()}
    for label, where in _counted.items():
        path = where()
        if path is not None:
            roots[label] = path
    return roots


def _tree_bytes(path: Path, seen: set[tuple[int, int]]) -> int:
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while measured
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512 if hasattr(info, "st_blocks") else info.st_size
    return total


def disk_budget_bytes() -> int | None:
    most = limit("NER_MAX_DISK_MB")
    return None if most is None else most * 1_000_000  # decimal MB, as refusals print them


class DiskBudget:
    """``check_room``: the disk in use, measured at most every ``FRESH_SECONDS`` (a walk of every
    counted folder), and what was allowed since added to it, so that writes in quick succession
    are counted without a walk each."""

    FRESH_SECONDS = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._use: dict[str, int] = {}
        self._allowed = 0  # bytes allowed since the last measure
        self._measured_at = float("-inf")

    def _measure(self) -> None:
        self._use, self._allowed, self._measured_at = disk_use(), 0, time.monotonic()

    def check(self, adding: int, what: str) -> None:
        budget = disk_budget_bytes()
        if budget is None:
            return
        with self._lock:
            if time.monotonic() - self._measured_at >= self.FRESH_SECONDS:
                self._measure()
            over = sum(self._use.values()) + self._allowed + adding - budget
            if over > 0:  # measure afresh: files may have gone since; then make room
                from . import hub_cache

                self._measure()
                over = sum(self._use.values()) + adding - budget
                if over > 0 and hub_cache.evict_cache(over):
                    self._measure()
            used = sum(self._use.values()) + self._allowed
            if used + adding <= budget:
                self._allowed += adding
                return
            parts = ", ".join(f"{label} {_mb(size)}" for label, size in self._use.items() if size)
        needs = f" needs about {_mb(adding)}, and" if adding else " is refused:"
        raise UserError(f"{what}{needs} this server's disk budget of "
                        f"{_mb(budget)} (NER_MAX_DISK_MB) has {_mb(max(0, budget - used))} left "
                        f"({parts or 'nothing'} in use); delete runs or datasets of yours that "
                        "you no longer need, or try again later")

    def forget(self) -> None:
        """Measure afresh at the next check (after files were removed)."""
        with self._lock:
            self._measured_at = float("-inf")


DISK = DiskBudget()


def check_room(adding: int, what: str) -> None:
    """Refuse ``what`` (about ``adding`` bytes) when it would take the disk in use past
    ``NER_MAX_DISK_MB``; the Hub cache gives up its least recently used models first.

    The refusal names both figures and what takes the space.
    """
    DISK.check(adding, what)


def _mb(size: int) -> str:
    """A size as refusals print it: decimal megabytes, kilobytes below 0.05 MB (which would
    read "0.0 MB").

    >>> _mb(2_500_000), _mb(120)
    ('2.5 MB', '0.1 kB')
    """
    return f"{size / 1e6:,.1f} MB" if size >= 50_000 else f"{size / 1e3:,.1f} kB"


def sweep_temp(older_than: float, root: Path | None = None) -> int:
    """Remove the files under ``root`` (default: ``temp_root()``) not changed for ``older_than``
    seconds, and folders left empty; the bytes removed."""
    cutoff = time.time() - older_than
    removed = 0
    root = temp_root() if root is None else root
    if not root.is_dir():
        return 0
    for folder, subfolders, names in os.walk(root, topdown=False):
        for name in names:
            path = Path(folder) / name
            try:
                info = path.lstat()
                if info.st_mtime < cutoff:
                    path.unlink()
                    removed += info.st_size
            except FileNotFoundError:
                continue
        if Path(folder) != root:
            try:
                os.rmdir(folder)  # only when empty
            except OSError:
                pass
    if removed:
        logger.info("removed %s of temporary files older than %d s", _mb(removed), older_than)
        DISK.forget()
    return removed


def clear_temp() -> None:
    """Remove every temporary file of an earlier server (call at start-up, before serving)."""
    shutil.rmtree(temp_root(), ignore_errors=True)


# Heavy calls ----------------------------------------------------------------------------------


class HeavyCalls:
    """At most one heavy call (model work, a file job, an evaluation) per visitor at a time, on a
    public host: a second one is refused, saying what is still running."""

    def __init__(self) -> None:
        self._running: dict[str, str] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, who: str | None, what: str) -> Iterator[None]:
        if who is None or not is_public():
            yield
            return
        with self._lock:
            running = self._running.get(who)
            if running is not None:
                raise UserError(f"wait for your {running} to finish before starting {what}: "
                                "one heavy call per visitor at a time on this server")
            self._running[who] = what
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(who, None)


HEAVY = HeavyCalls()
