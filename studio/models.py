"""Which models the pickers offer, and the loaded recognizers, shared by every visitor."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ner_core import Recognizer, hub, list_runs, models
from ner_core.models import resolve

from . import access, zerogpu

MAX_LOADED = 3
_loaded: OrderedDict[str, Recognizer] = OrderedDict()
_lock = threading.Lock()


def model_choices() -> list[str]:
    """``default`` when it is bundled, then every finished run, newest first."""
    bundled = [models.DEFAULT] if (models.BUNDLED_DIR / "model.safetensors").is_file() else []
    return bundled + list_runs()


def pick(choice: str | None, hub_id: str | None) -> str:
    """The model to use: a typed Hub id wins over the picker."""
    hub_id = (hub_id or "").strip()
    if hub_id:
        if not hub.is_hub_id(hub_id):
            raise ValueError(f"expected a Hub id like 'owner/name', found {hub_id!r}")
        limit = access.hub_model_limit_bytes()
        if limit is not None and hub.hub_reachable():
            hub.check_hub_model(hub_id, limit, "inference")  # before anything is downloaded
        return hub_id
    if not choice:
        raise ValueError("choose a model first (no model is bundled or trained yet: run a fine-tune)")
    # Names from the page are only ever looked up among the offered models, never used as paths.
    if choice not in model_choices():
        raise ValueError(f"expected one of the listed models, found {choice!r}")
    return choice


def version(name: str) -> str:
    """Which saved weights ``name`` has now: their modification time ('' for Hub models)."""
    source = resolve(name, local_paths=False)
    weights = source.path / "model.safetensors" if source.path else None
    return str(weights.stat().st_mtime_ns) if weights and weights.exists() else ""


def recognizer(name: str, int8: bool = False) -> Recognizer:
    """The loaded recognizer for ``name`` (int8-quantized with ``int8``); the least recently used
    one is dropped past three.

    A run replaced on disk (``train --overwrite``) is loaded again: the key has its weights' time.
    """
    key = f"{name}@{version(name)}@{'int8' if int8 else 'float32'}"
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    # Outside the lock: loading takes seconds. On ZeroGPU the server's process has no GPU (and must
    # not touch CUDA): recognizing runs on its CPU.
    loaded = Recognizer(name, local_paths=False, precision="int8" if int8 else "float32",
                        device="cpu" if zerogpu.ON_ZERO_GPU else None)
    with _lock:
        _loaded[key] = loaded
        while len(_loaded) > MAX_LOADED:
            _loaded.popitem(last=False)
    return loaded
