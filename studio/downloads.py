"""Files the page offers for download, each set kept once in a folder named by its content.

Every download belongs to the visitor it was made for: its folder lies under that visitor's own
temporary folder (``tenancy.tenant_temp``), below the one temporary root that the server sweeps
and that the disk budget counts. The root follows ``NER_TEMP_DIR``, else the temporary directory
of the moment (when a file is asked for, not when the app started), so a server's or a test's
temporary directory is honoured.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ner_core import tenancy


def saved_by_content(kind: str | Path, write: Callable[[Path], object], *,
                     owner: str | None = None) -> Path:
    """The folder holding what ``write(folder)`` puts into a fresh folder, named by the hash of
    its files' names and contents, under ``tenancy.tenant_temp(owner, kind)``; ``kind`` may also
    be the folder itself (a ``Path``, such as another tenant folder).

    The same content always comes back as the same folder, so a repeated request neither leaves
    another copy nor changes a path the page already shows. Files appear complete or not at all:
    they are written beside the folder, then renamed into place.
    """
    root = kind if isinstance(kind, Path) else tenancy.tenant_temp(owner, kind)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        write(staging)
        final = root / _digest(staging)
        try:
            staging.rename(final)
        except OSError:  # the same content is there already (a concurrent twin may have won)
            shutil.rmtree(staging, ignore_errors=True)
            for path in final.iterdir():  # served again: the temporary-file sweep goes by age
                os.utime(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        content = path.read_bytes()
        digest.update(f"{path.name}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()[:32]
