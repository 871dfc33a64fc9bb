"""Saved runs on disk: where they live, which are complete, and what each one is.

A run is a directory in ``save_pretrained`` layout plus ``train_config.json``, ``metrics.json`` and
a ``README.md`` model card. It is written under a hidden name and renamed into place when complete,
so a directory listed here is never half-written; what a killed process left under a hidden name
is removed when the app starts again. Beside the runs, in hidden folders that are never runs, each
run's owner (``.owners``) and its zip for download (``.zips``): counted on the disk with the runs,
and removed with them.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

from . import tenancy
from .errors import UserError

RUN_FILES = ("config.json", "model.safetensors", "train_config.json", "metrics.json")
# Matched whole (fullmatch): '$' alone would let a trailing newline through. ASCII only, as Hub
# repository names are: a run's name is the name it is pushed under.
_RUN_NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,99}", re.ASCII)
PARTIAL_PREFIX = ".partial-"
_RETIRED = re.compile(r"^\.partial-(?P<name>.+)-old-\d+$")

logger = logging.getLogger(__name__)


def runs_dir() -> Path:
    """``$NER_RUNS_DIR``; else ``/data/runs`` on a Space with persistent storage; else ``runs/``."""
    if os.environ.get("NER_RUNS_DIR"):
        return Path(os.environ["NER_RUNS_DIR"])
    if os.path.isdir("/data") and os.access("/data", os.W_OK):
        return Path("/data/runs")
    return Path("runs")


def is_run_name(name: str) -> bool:
    """True for names a run may have: letters, digits, '-', '_', '.', no path separators.

    >>> [is_run_name(n) for n in ["smoke", "run-2.1", "../x", ".hidden", "a/b", "smoke\\n"]]
    [True, True, False, False, False, False]
    """
    return isinstance(name, str) and bool(_RUN_NAME.fullmatch(name)) and ".." not in name


def is_complete(path: Path) -> bool:
    return path.is_dir() and all((path / f).is_file() for f in RUN_FILES)


def list_runs(directory: Path | None = None) -> list[str]:
    """Names of the complete runs, newest first."""
    directory = runs_dir() if directory is None else directory
    if not directory.is_dir():
        return []
    runs = [p for p in directory.iterdir() if is_run_name(p.name) and is_complete(p)]
    return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


def run_path(name: str, directory: Path | None = None) -> Path | None:
    """The directory of the complete run ``name``, or ``None``."""
    if not is_run_name(name):
        return None
    path = (runs_dir() if directory is None else directory) / name
    return path if is_complete(path) else None


def read_json(path: Path) -> dict | None:
    """A run's JSON file as a dict; ``None`` when it is absent."""
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def check_writable(directory: Path | None = None) -> None:
    """``UserError`` naming ``directory`` (default: the runs directory) unless a run can be
    written into it; the directory is created when missing.
    """
    directory = runs_dir() if directory is None else directory
    probe = directory / f"{PARTIAL_PREFIX}write-check-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, b"\0" * 4096)  # a full disk may still create empty files
        finally:
            os.close(descriptor)
            probe.unlink(missing_ok=True)
    except OSError as error:
        raise UserError(not_writable(directory, error)) from None


def not_writable(directory: Path, error: OSError) -> str:
    """What to tell a user whose run could not be written into ``directory``; on a public host
    the directory is not named (visitors see names, never server paths)."""
    where = "the runs directory" if tenancy.is_public() else f"the runs directory {directory}"
    return (f"{where} cannot be written ({error.strerror or error}); expected a writable "
            "directory with free space: free some space, or set NER_RUNS_DIR to another directory")


def remove_stale_staging(directory: Path | None = None) -> list[str]:
    """Remove what killed processes left half-written in ``directory``; the names removed.

    Call it when a process starts, before it writes any run. Staging entries end in the writer's
    process id: those of processes still alive are kept (another process may be saving a run),
    those of dead processes and of this process id (an earlier life under the same id, as in a
    container) are removed. An older run moved aside by ``publish`` and never moved back is put
    back under its name instead. Half-written zips, and zips whose run is gone, are removed too.
    """
    directory = runs_dir() if directory is None else directory
    if not directory.is_dir():
        return []
    removed = _remove_orphan_zips(directory)
    zips = directory / ZIPS_DIR
    for path in [*directory.glob(f"{PARTIAL_PREFIX}*"), *zips.glob(f"{PARTIAL_PREFIX}*")]:
        pid = path.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
            continue
        retired = _RETIRED.match(path.name)
        try:
            if retired and is_complete(path) and not (directory / retired["name"]).exists():
                path.rename(directory / retired["name"])
                logger.warning("put back run %s, moved aside by a process that was killed",
                               retired["name"])
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as error:  # a read-only disk: leave it, it is never listed anyway
            logger.warning("cannot remove %s: %s", path, error.strerror or error)
            continue
        removed.append(path.name)
    if removed:
        logger.warning("removed what killed fine-tunes left in %s: %s", directory, ", ".join(removed))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and another user's
    return True


def staging_dir(final: Path) -> Path:
    """A fresh hidden directory beside ``final`` to write a run into before it is complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f"{PARTIAL_PREFIX}{final.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def publish(staging: Path, final: Path) -> None:
    """Move a complete run into place; an older run of that name is replaced.

    Replacing swaps the two directories in one ``renameat2(RENAME_EXCHANGE)`` where Linux offers
    it, so the name always holds a complete run; elsewhere the old run is moved aside and moved
    back if the new one cannot take its place.
    """
    zip_path(final.name, final.parent).unlink(missing_ok=True)  # the zip of a run replaced
    if not final.exists():
        staging.rename(final)
        return
    if not is_complete(final):
        shown = final.name if tenancy.is_public() else final
        raise UserError(f"{shown} exists and is not a saved run; refusing to replace it")
    if not _exchange(staging, final):
        retired = final.parent / f"{PARTIAL_PREFIX}{final.name}-old-{os.getpid()}"
        final.rename(retired)
        try:
            staging.rename(final)
        except BaseException:
            retired.rename(final)
            raise
        staging = retired
    shutil.rmtree(staging)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False  # the kernel or file system cannot exchange: fall back
    raise OSError(error, os.strerror(error), str(b))


# Who started each run, for a host where visitors may only delete their own runs. Kept beside the
# runs (a hidden directory is never a run), not inside them: a run's files are what gets pushed.
OWNERS_DIR = ".owners"


def set_owner(name: str, owner: str | None, directory: Path | None = None) -> None:
    """Record who starts the run ``name`` (before it exists); ``None`` forgets any earlier owner."""
    ledger = (runs_dir() if directory is None else directory) / OWNERS_DIR
    if owner is None:
        (ledger / name).unlink(missing_ok=True)
        return
    ledger.mkdir(parents=True, exist_ok=True)
    (ledger / name).write_text(owner, encoding="utf-8")


def owner_of(name: str, directory: Path | None = None) -> str | None:
    if not is_run_name(name):
        return None
    path = (runs_dir() if directory is None else directory) / OWNERS_DIR / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


def delete_run(name: str, directory: Path | None = None) -> None:
    """Remove the complete run ``name``, its zip and its owner: it leaves the listing at once (one
    rename), then its files go."""
    directory = runs_dir() if directory is None else directory
    path = run_path(name, directory)
    if path is None:
        raise UserError(f"expected the name of a saved run, found {name!r}")
    retired = directory / f"{PARTIAL_PREFIX}{name}-deleted-{os.getpid()}"
    path.rename(retired)
    zip_path(name, directory).unlink(missing_ok=True)
    shutil.rmtree(retired)
    set_owner(name, None, directory)


def runs_of(owner: str | None, directory: Path | None = None) -> list[str]:
    """The complete runs that count against ``owner``'s quota, newest first.

    On a public host: those recorded as started by ``owner`` (an admin's too: only their own);
    none for ``None``, whose runs cannot be told from the host's. Elsewhere every run, since all
    of them belong to the one local user.
    """
    names = list_runs(directory)
    if not tenancy.is_public():
        return names
    return [n for n in names if owner is not None and owner_of(n, directory) == owner]


def prune_runs(keep: int, owner: str | None, protect: set[str] = frozenset(),
               directory: Path | None = None) -> list[str]:
    """Delete ``owner``'s oldest runs (``runs_of``) until at most ``keep`` of theirs remain, never
    those in ``protect``; the names deleted, oldest first. No one else's run is ever touched.

    Call it only once the fine-tune that makes room has the job slot (``FineTuneJobs.begin``):
    two starts at once would otherwise both delete.
    """
    names = runs_of(owner, directory)  # newest first
    removable = [n for n in reversed(names) if n not in protect]
    deleted = []
    while len(names) - len(deleted) > keep and removable:
        name = removable.pop(0)
        delete_run(name, directory)
        deleted.append(name)
    if deleted:
        logger.info("removed the oldest runs of a starter to keep at most %d of theirs: %s", keep,
                    ", ".join(deleted))
    return deleted


# Each run's zip, made once when its fine-tune ends (``FineTuneJobs``), for the page to offer.
ZIPS_DIR = ".zips"


def zip_path(name: str, directory: Path | None = None) -> Path:
    """Where the zip of the run ``name`` is kept (whether or not it exists)."""
    return (runs_dir() if directory is None else directory) / ZIPS_DIR / f"{name}.zip"


def zip_run(name: str, directory: Path | None = None) -> Path:
    """Zip the complete run ``name`` (replacing an older zip of it); the zip's path.

    Written under a hidden name and renamed into place, so a zip that exists is whole.
    """
    directory = runs_dir() if directory is None else directory
    path = run_path(name, directory)
    if path is None:
        raise UserError(f"no finished run named {name!r}")
    target = zip_path(name, directory)
    target.parent.mkdir(exist_ok=True)
    partial = target.parent / f"{PARTIAL_PREFIX}{name}-{os.getpid()}"
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(path.rglob("*")):
                if file.is_file() and not file.is_symlink():
                    archive.write(file, file.relative_to(path))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def zip_of(name: str, directory: Path | None = None) -> Path | None:
    """The zip of the complete run ``name``, or ``None`` when none was made."""
    if run_path(name, directory) is None:
        return None
    path = zip_path(name, directory)
    return path if path.is_file() else None


def _remove_orphan_zips(directory: Path) -> list[str]:
    """Remove the zips whose run is gone (deleted by hand, say); the names of those zips."""
    removed = []
    for path in (directory / ZIPS_DIR).glob("*.zip"):
        if run_path(path.stem, directory) is not None:
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as error:  # a read-only disk: leave it, it is never offered anyway
            logger.warning("cannot remove %s: %s", path, error.strerror or error)
            continue
        removed.append(f"{ZIPS_DIR}/{path.name}")
    return removed
