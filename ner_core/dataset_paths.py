"""Where the dataset an owner names is kept, and which datasets an owner sees.

Every function takes the ``owner`` of the request (an owner string of ``tenancy``). Off a public
host every dataset is ``data_home()/<name>.jsonl``, whoever asks. On a public host an owner's
datasets are ``data_home()/<tenant_key(owner)>/<name>.jsonl`` (``owner=None``, the CLI say, keeps
the host's own at the top); an admin also sees every other tenant's as ``<tenant_key>/<name>``
(the host's own as ``local/<name>``) and may name them so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import runs, tenancy
from .errors import UserError

DATA_HOME_ENV = "NER_DATA_HOME"
HOST_TENANT = "local"  # how an admin names the host's own datasets: ``local/<name>``
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}", re.ASCII)
# The folders ``tenancy.tenant_key`` makes: an account's, a session's, the host's.
_TENANT = re.compile(r"u-[A-Za-z0-9][A-Za-z0-9._-]{0,95}|s-[0-9a-f]{24}|local", re.ASCII)


def data_home() -> Path:
    """``$NER_DATA_HOME``; else ``datasets/`` beside the runs directory (``/data/datasets`` on a
    Space with persistent storage)."""
    if os.environ.get(DATA_HOME_ENV):
        return Path(os.environ[DATA_HOME_ENV])
    return runs.runs_dir().parent / "datasets"


def check_name(name: str) -> str:
    """``name`` when it can name a dataset file; a ``UserError`` for anything path-like.

    >>> check_name("corrections-2.1")
    'corrections-2.1'
    >>> check_name("../x")
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: expected a dataset name of letters, digits, '-', '_' and '.', found '../x'
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError("expected a dataset name of letters, digits, '-', '_' and '.', "
                        f"found {name!r}")
    return name


def _own_folder(owner: str | None) -> Path:
    """Where the datasets of ``owner`` are."""
    if owner is None or not tenancy.is_public():
        return data_home()
    return data_home() / tenancy.tenant_key(owner)


def _is_tenant(folder: str) -> bool:
    return bool(_TENANT.fullmatch(folder)) and ".." not in folder


def _located(name: str, owner: str | None) -> tuple[Path, str]:
    """The folder and the file stem of the dataset ``owner`` calls ``name``."""
    if not (isinstance(name, str) and "/" in name and tenancy.is_public()):
        return _own_folder(owner), check_name(name)
    if not tenancy.is_admin(owner):
        raise UserError(f"expected the name of a dataset of yours, of letters, digits, '-', '_' "
                        f"and '.', found {name!r}: only an admin of this server names another "
                        "visitor's dataset")
    tenant, _, stem = name.partition("/")
    if not _is_tenant(tenant):
        raise UserError(f"expected a visitor's dataset named like 'u-alice/corrections', found "
                        f"{name!r}")
    return (data_home() if tenant == HOST_TENANT else data_home() / tenant), check_name(stem)


def dataset_path(name: str, *, owner: str | None = None) -> Path:
    """The file of the dataset ``owner`` calls ``name`` (it may not exist yet); a ``UserError``
    for a name ``owner`` may not use."""
    folder, stem = _located(name, owner)
    return folder / f"{stem}.jsonl"


def whose(path: Path, owner: str | None) -> str:
    """Whose datasets the folder of ``path`` holds, as a refusal to ``owner`` names them."""
    if path.parent == _own_folder(owner):
        return "yours"
    return HOST_TENANT if path.parent == data_home() else path.parent.name


def names_in(folder: Path) -> list[str]:
    """The datasets in ``folder``, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.jsonl") if _NAME.fullmatch(p.stem) and p.is_file())


def dataset_names(*, owner: str | None = None) -> list[str]:
    """The datasets of ``owner``, sorted by name; for an admin on a public host, then every other
    tenant's as ``<tenant>/<name>``."""
    own = names_in(_own_folder(owner))
    if not (tenancy.is_public() and tenancy.is_admin(owner)):
        return own
    home, mine = data_home(), _own_folder(owner)
    others = [f"{HOST_TENANT}/{name}" for name in names_in(home)]
    tenants = sorted(p for p in home.iterdir() if p.is_dir()) if home.is_dir() else []
    for folder in tenants:
        if folder != mine and _is_tenant(folder.name) and folder.name != HOST_TENANT:
            others += [f"{folder.name}/{name}" for name in names_in(folder)]
    return own + others


def shown(path: Path) -> str:
    """A dataset file as a message names it: on a public host its name, never a server path."""
    return path.name if tenancy.is_public() else str(path)
