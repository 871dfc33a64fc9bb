"""How a dataset's file of lines is read and changed safely, and its counts kept between reads.

A caller holds an ``flock`` on the file while it reads (shared) or changes it (exclusive), writes a
line whole and syncs it before it returns, and cuts what a crash left after the last complete line
before it appends. The counts of a dataset are kept per process as of a stamp of its file's
content, so they are read again from the file only when another process changed it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections import Counter, OrderedDict
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

_TAIL_CHUNK = 64 * 1024


@contextmanager
def locked(path: Path, operation: int, create: bool = False):
    """A descriptor of ``path`` holding an ``flock``: shared to read, exclusive to change."""
    if operation == fcntl.LOCK_SH:
        flags = os.O_RDONLY
    else:
        flags = os.O_RDWR | (os.O_APPEND | os.O_CREAT if create else 0)
    descriptor = os.open(path, flags, 0o644)
    try:
        fcntl.flock(descriptor, operation)
        yield descriptor
    finally:
        os.close(descriptor)  # closing releases the lock


def write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]


def read_all(descriptor: int) -> bytes:
    size = os.fstat(descriptor).st_size
    return os.pread(descriptor, size, 0) if size else b""


def drop_partial_tail(path: Path, descriptor: int) -> int:
    """Cut what a crash left after the last complete line (the caller holds the lock); the size
    of the complete lines."""
    size = os.fstat(descriptor).st_size
    complete = complete_length(descriptor, size)
    if complete < size:
        logger.warning("%s: dropped %d bytes of an example cut short by a crash", path,
                       size - complete)
        os.ftruncate(descriptor, complete)
    return complete


def complete_length(descriptor: int, size: int) -> int:
    """The length of the file up to and including its last newline."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        chunk = os.pread(descriptor, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


# Each dataset's count of examples and of entities per type, as of a stamp of its file: kept as
# this process appends and undoes, counted again from the file when another changed it.
_TALLIES_KEPT = 1_024
_tallies: OrderedDict[str, tuple[tuple, tuple[int, Counter]]] = OrderedDict()
_tallies_lock = threading.Lock()


def stamp_of(descriptor: int, size: int, last: bytes | None = None) -> tuple:
    """What tells one content of the file from another: its inode, size and times, and a digest
    of its last complete line (``last`` when the caller has it), which changes with a line
    removed and another of the same length added within one tick of the clock."""
    info = os.fstat(descriptor)
    if last is None:
        start = complete_length(descriptor, size - 1) if size else 0
        last = os.pread(descriptor, size - start, start)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
            hashlib.blake2b(last, digest_size=16).digest())


def cached_tally(path: Path, stamp: tuple) -> tuple[int, Counter] | None:
    """The examples and entities per type kept for ``path`` as of ``stamp``, if any."""
    with _tallies_lock:
        kept = _tallies.get(str(path))
        if kept is None or kept[0] != stamp:
            return None
        _tallies.move_to_end(str(path))
        return kept[1][0], Counter(kept[1][1])


def remember_tally(path: Path, stamp: tuple, tally: tuple[int, Counter]) -> None:
    with _tallies_lock:
        _tallies[str(path)] = (stamp, tally)
        _tallies.move_to_end(str(path))
        while len(_tallies) > _TALLIES_KEPT:
            _tallies.popitem(last=False)


def forget_tally(path: Path) -> None:
    with _tallies_lock:
        _tallies.pop(str(path), None)
