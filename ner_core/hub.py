"""Whether the Hugging Face Hub can be reached, decided once per process with a short probe.

Offline, ``from_pretrained("distilbert-base-uncased")`` takes most of a minute to fail while the Hub
client retries; nothing here may wait on that, so every Hub path asks ``hub_reachable()`` first.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import threading

logger = logging.getLogger(__name__)

HUB_HOST = "huggingface.co"
PROBE_SECONDS = 3.0
# owner/name or a bare name: ASCII letters, digits, '-', '_' and '.', no '..', no leading '.' or
# '-'. Matched whole (fullmatch): '$' alone would let a trailing newline through.
_HUB_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}", re.ASCII)


def is_hub_id(name: str) -> bool:
    """True for names shaped like Hub repository ids; paths and URLs are not.

    >>> [is_hub_id(n) for n in ["bert-base-cased", "dslim/bert-base-NER", "../etc", "/abs", "a/b/c"]]
    [True, True, False, False, False]
    """
    return isinstance(name, str) and bool(_HUB_ID.fullmatch(name)) and ".." not in name


@functools.cache
def hub_reachable() -> bool:
    """True when the Hub answers a TCP connection within a few seconds; ``HF_HUB_OFFLINE`` says no."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    result = []

    def probe() -> None:
        try:
            socket.create_connection((HUB_HOST, 443), timeout=PROBE_SECONDS).close()
            result.append(True)
        except OSError as error:
            logger.info("the Hub is unreachable: %s", error)

    # Name resolution ignores socket timeouts, so the probe runs in a thread we stop waiting for.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_SECONDS + 0.5)
    return bool(result)


def is_cached(repo_id: str) -> bool:
    """True when a Hub model's files are in the local Hugging Face cache (usable offline)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def require_hub(what: str, instead: str) -> None:
    """Raise ``ValueError`` in one sentence when ``what`` needs the Hub and it is unreachable."""
    if not hub_reachable():
        raise ValueError(f"{what} must come from the Hugging Face Hub, which cannot be reached "
                         f"from here (no network or HF_HUB_OFFLINE=1); {instead}")
