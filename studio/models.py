"""Which models the pickers offer, the loaded recognizers shared by every visitor, and
recognizing a pasted text within the page's limits."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

from ner_core import Recognizer, hub, hub_check, list_runs, models, runs, tenancy
from ner_core.errors import UserError
from ner_core.models import resolve
from ner_core.utf8 import check_text

from . import access, zerogpu

MAX_LOADED = 3
MAX_CHARS = 100_000  # a pasted text; longer ones go through a file
CHOICES_NAMED = 5  # models a refusal lists
STATE_SECONDS = 3_600  # how long a page's results are kept after its last use (gr.State)


def model_work() -> dict:
    """The event settings of every handler that runs a model (highlight, suggest, files, the
    annotate queue, evaluate, compare): one concurrency group for them all, as wide as the
    server's cores (``NER_MODEL_WORKERS``), so that a dozen events cannot each take a slot."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"concurrency_id": "model",
            "concurrency_limit": access.int_setting("NER_MODEL_WORKERS", max(1, cores or 1))}


def model_choices(who: access.Visitor | None = None) -> list[str]:
    """``default`` when it is bundled, then the finished runs ``who`` may use, newest first.

    On a public host those are the runs of the host (``tenancy.is_shared``: no owner, or an
    admin's) and ``who``'s own; ``who=None`` (the page as first built) gets the host's only.
    """
    bundled = [models.DEFAULT] if models.bundled_present() else []
    if not tenancy.is_public():
        return bundled + list_runs()
    me = who.identity if who is not None else None
    return bundled + [name for name in list_runs()
                      if tenancy.is_shared(owner := runs.owner_of(name))
                      or (me is not None and tenancy.may_manage(me, owner))]


def pick(choice: str | None, hub_id: str | None, *, who: access.Visitor | None = None,
         default_when_omitted: bool = False) -> str:
    """The model to use: a typed Hub id wins over the picker.

    No choice is refused, saying what there is to choose; with ``default_when_omitted`` (an API
    call that leaves the model out) it means ``default`` where that is bundled.
    """
    hub_id = (hub_id or "").strip()
    if hub_id:
        if not hub.is_hub_id(hub_id):
            raise UserError(f"expected a Hub id like 'owner/name', found {hub_id!r}")
        # On a public host: signed-in visitors, or the models of NER_HUB_MODELS.
        hub.check_hub_use(hub_id, who.username if who is not None else None)
        limit = hub.max_model_bytes()
        if limit is not None and hub.hub_reachable():
            hub_check.check_hub_model(hub_id, limit, "inference")  # before anything is downloaded
        return hub_id
    choices = model_choices(who)
    if not choice:
        if default_when_omitted and models.DEFAULT in choices:
            return models.DEFAULT
        raise UserError(_nothing_chosen(choices))
    # Names from the page are only ever looked up among the offered models, never used as paths.
    if choice not in choices:
        raise UserError(f"expected one of the listed models, found {choice!r}")
    return choice


def _nothing_chosen(choices: list[str]) -> str:
    if not choices:
        return "no model is bundled or trained yet: run a fine-tune first"
    listed = ", ".join(choices[:CHOICES_NAMED]) + (", ..." if len(choices) > CHOICES_NAMED else "")
    return f"choose a model first (one of {listed})"


def version(name: str) -> str:
    """Which saved weights ``name`` has now: their modification time ('' for Hub models)."""
    source = resolve(name, local_paths=False)
    weights = source.path / "model.safetensors" if source.path else None
    return str(weights.stat().st_mtime_ns) if weights and weights.exists() else ""


class LoadedModels:
    """Recognizers loaded once and shared by every visitor; past ``size`` of them, the least
    recently used is dropped.

    A run replaced on disk (``train --overwrite``) is loaded again: the key has its weights' time.
    """

    def __init__(self, size: int = MAX_LOADED) -> None:
        self.size = size
        self._loaded: OrderedDict[str, Recognizer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, int8: bool = False) -> Recognizer:
        """The recognizer for ``name``, int8-quantized with ``int8``, else in the precision
        ``auto`` picks for this machine."""
        key = f"{name}@{version(name)}@{'int8' if int8 else 'auto'}"
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        # Outside the lock: loading takes seconds. On ZeroGPU the server's process has no GPU
        # (and must not touch CUDA): recognizing runs on its CPU.
        loaded = Recognizer(name, local_paths=False, precision="int8" if int8 else "auto",
                            device="cpu" if zerogpu.on_zero_gpu() else None)
        with self._lock:
            self._loaded[key] = loaded
            while len(self._loaded) > self.size:
                self._loaded.popitem(last=False)
        return loaded


LOADED = LoadedModels()


def recognizer(name: str, int8: bool = False) -> Recognizer:
    """The shared loaded recognizer for ``name`` (see ``LoadedModels``)."""
    return LOADED.get(name, int8)


def recognize(text: str, choice: str | None, hub_id: str | None, int8: bool = False, *,
              who: access.Visitor | None = None,
              default_when_omitted: bool = False) -> tuple[list[dict], str]:
    """All entities of a pasted ``text`` (no threshold) and a line saying what it took.

    The text is checked before any model is loaded: at most ``MAX_CHARS`` characters, and only
    what UTF-8 can hold.
    """
    if len(text) > MAX_CHARS:
        raise UserError(f"expected at most {MAX_CHARS:,} characters, found {len(text):,}; "
                        "paste a shorter text or use `python -m ner_core predict --input FILE`")
    check_text(text)
    name = pick(choice, hub_id, who=who, default_when_omitted=default_when_omitted)
    loaded = recognizer(name, int8)
    started = time.perf_counter()
    entities = loaded.recognize(text)
    milliseconds = (time.perf_counter() - started) * 1000
    return entities, (f"{len(entities)} entities in {milliseconds:,.0f} ms with `{name}` "
                      f"({loaded.precision_said})")
