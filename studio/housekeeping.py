"""Keeping the server's disk within its budget while it serves.

Two kinds of temporary files pile up: what Gradio keeps in its cache (every upload, every file an
event returns) and what the tabs write for a visitor under ``tenancy.temp_root()`` (downloads,
exports, evaluation results, annotate queues). Both are emptied on one schedule: files older than
``NER_CACHE_SECONDS`` go every ``min(NER_CACHE_SECONDS, SWEEP_EVERY)`` seconds. What an earlier
server left is removed at start-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from gradio.utils import get_upload_folder

from ner_core import runs, tenancy
from ner_core.errors import UserError

from . import access

logger = logging.getLogger(__name__)

CACHE_SECONDS = 3_600  # how long a temporary file is kept after it was written
SWEEP_EVERY = 300  # at most this long between two sweeps


def cache_seconds() -> int:
    """``NER_CACHE_SECONDS``: the age at which temporary files are removed."""
    return access.int_setting("NER_CACHE_SECONDS", CACHE_SECONDS)


def delete_cache() -> tuple[int, int]:
    """Gradio's ``delete_cache``: (how often, from what age) its cached files are removed."""
    age = cache_seconds()
    return min(age, SWEEP_EVERY), age


def uploads_folder() -> Path:
    """Where Gradio keeps uploads and the files events return (``GRADIO_TEMP_DIR``)."""
    return Path(get_upload_folder())


def start_up() -> None:
    """Before serving: remove what killed fine-tunes and an earlier server left, and count
    Gradio's cache against the disk budget."""
    runs.remove_stale_staging()
    tenancy.clear_temp()
    tenancy.count_on_disk("uploads", uploads_folder)


@asynccontextmanager
async def lifespan(app):
    """The app's lifespan (``launch(app_kwargs={"lifespan": lifespan})``): sweeps the tabs'
    temporary files and Gradio's cache on Gradio's schedule for its cache, while the server
    runs."""
    every, age = delete_cache()

    async def sweep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(tenancy.sweep_temp, age)
                # Gradio's own schedule was seen to stop removing files under load (its task
                # ends at its first error), leaving its cache to grow; this sweep goes on.
                await asyncio.to_thread(tenancy.sweep_temp, age, uploads_folder())
            except OSError as error:  # a file system that refuses: said, and tried again later
                logger.warning("could not sweep the temporary files: %s", error)

    task = asyncio.create_task(sweep())
    try:
        yield
    finally:
        task.cancel()


class UploadBudget:
    """ASGI middleware that refuses an upload which would take the disk past ``NER_MAX_DISK_MB``
    before Gradio writes a byte of it (HTTP 413, the refusal's sentence as ``detail``).

    Gradio stores every upload in its cache as it arrives, before any handler sees it, so the
    budget is checked here, from the request's declared length.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" \
                and scope["path"].endswith("/gradio_api/upload"):
            declared = dict(scope["headers"]).get(b"content-length", b"")
            size = int(declared) if declared.isdigit() else 0
            try:
                await asyncio.to_thread(tenancy.check_room, size, "this upload")
            except UserError as error:
                body = json.dumps({"detail": str(error)}).encode("utf-8")
                await send({"type": "http.response.start", "status": 413,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
