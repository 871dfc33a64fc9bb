"""A soak of a public server: many visitors, anonymous and signed-in, each doing what a visitor
does (upload, highlight, a file job, an evaluation, accept, export) for a bounded time, while the
server's disk and memory are sampled.

Signed-in visitors carry the session cookie that Gradio's sign-in leaves after the Hub's OAuth
callback (``oauth_info`` in Starlette's signed session), signed with the server's
``OAUTH_CLIENT_SECRET``: everything after the callback is the real code path, the callback
itself (the Hub) is not tried. Traffic goes to 127.0.0.1 only.

Used by tests/test_soak.py: ``NER_SOAK_SECONDS=300 python -m pytest -s tests/test_soak.py`` soaks
for five minutes and prints the figures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from live_app import resident_memory

OAUTH_SECRET = "soak-secret"
# What a Space sets for "Sign in with Hugging Face" (hf_oauth: true); the provider is never asked.
OAUTH_SETTINGS = {"SYSTEM": "spaces", "OAUTH_CLIENT_ID": "soak", "OAUTH_CLIENT_SECRET": OAUTH_SECRET,
                  "OAUTH_SCOPES": "openid profile", "OPENID_PROVIDER_URL": "http://127.0.0.1:9"}
DATASET = "notes"  # every signed-in visitor uses the same name: each must get their own
UPLOAD_BYTES = 120_000  # each text file a visitor uploads, different every time
FAULT = "something went wrong in the studio itself"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def session_cookie(username: str) -> str:
    """The ``Cookie`` header of a browser signed in as ``username`` (see the module docstring)."""
    from itsdangerous import TimestampSigner

    session = {"oauth_info": {
        "access_token": f"hf_soak_{username}", "scope": "openid profile",
        "expires_at": int(time.time()) + 24 * 3600,
        "userinfo": {"preferred_username": username, "name": username.title(), "sub": username,
                     "picture": "", "profile": f"https://huggingface.co/{username}"}}}
    key = hashlib.sha256(f"{OAUTH_SECRET}-v4".encode()).hexdigest()
    signed = TimestampSigner(key).sign(base64.b64encode(json.dumps(session).encode()))
    return f"session={signed.decode()}"


def tree_bytes(*roots: Path) -> int:
    """Bytes on disk under ``roots`` (whole blocks, each file once)."""
    seen, total = set(), 0
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                try:
                    info = os.lstat(os.path.join(folder, name))
                except FileNotFoundError:
                    continue
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_blocks * 512
    return total


@dataclass
class Report:
    """What a soak saw: every request's outcome, the peaks, and what broke the rules."""

    requests: int = 0
    answered: int = 0
    refused: Counter = field(default_factory=Counter)  # refusal messages, cut to their start
    messages: set[str] = field(default_factory=set)  # every refusal, whole
    violations: list[str] = field(default_factory=list)  # what must never happen
    peak_disk: int = 0
    peak_rss: int = 0
    disk_after_sweep: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, refusal: str | None = None) -> None:
        with self.lock:
            self.requests += 1
            if refusal is None:
                self.answered += 1
            else:
                self.refused[refusal[:70]] += 1
                self.messages.add(refusal)

    def violation(self, what: str) -> None:
        with self.lock:
            self.violations.append(what)

    def figures(self) -> dict:
        return {"requests": self.requests, "answered": self.answered,
                "refused": sum(self.refused.values()), "refusals": dict(self.refused),
                "peak_disk_mb": round(self.peak_disk / 1e6, 2),
                "disk_after_sweep_mb": None if self.disk_after_sweep is None
                else round(self.disk_after_sweep / 1e6, 2),
                "peak_rss_mb": round(self.peak_rss / 1e6, 1), "violations": self.violations}


class Visitor:
    """One visitor of the soak: a client (a session) of their own, signed in when named."""

    def __init__(self, url: str, number: int, username: str | None, work: Path, report: Report):
        from gradio_client import Client

        self.url, self.number, self.username, self.report = url, number, username, report
        self.work = work / f"visitor-{number}"
        self.work.mkdir(parents=True, exist_ok=True)
        headers = {"Cookie": session_cookie(username)} if username else None
        self.client = Client(url, verbose=False, download_files=False, headers=headers,
                             httpx_kwargs={"timeout": 120})
        self.marker = f"visitor{number}x"  # a word only this visitor's texts hold
        self.accepted = 0

    def call(self, *args, api_name: str):
        """The endpoint's answer, or None when refused; a refusal must be a sentence of the app's
        own, never a fault or a traceback."""
        import httpx
        from gradio_client.exceptions import AppError

        try:
            answer = self.client.predict(*args, api_name=api_name)
        except (AppError, httpx.HTTPStatusError) as error:
            # An upload the server refuses before it is stored answers HTTP 413 with a sentence.
            message = str(error) if isinstance(error, AppError) else _detail(error.response)
            if not message or FAULT in message or "Traceback" in message:
                self.report.violation(f"{api_name} by visitor {self.number}: {message!r}")
            self.report.count(message)
            return None
        self.report.count()
        return answer

    def text(self, round_: int) -> str:
        return f"Anna Weber met {self.marker} in Berlin on day {round_} ."

    def upload(self, round_: int) -> Path:
        """A text file different from every other visitor's and round's."""
        path = self.work / f"texts-{round_}.txt"
        line = f"{self.marker} round {round_} met Omar Haddad in Lagos .\n"
        path.write_text(line * (UPLOAD_BYTES // len(line)), encoding="utf-8")
        return path

    def round(self, round_: int, labelled: Path) -> None:
        from gradio_client import handle_file

        text = self.text(round_)
        self.call(text, "tiny", "", 0.0, False, api_name="/highlight")
        self.call(handle_file(str(self.upload(round_))), "tiny", "text", 0.0,
                  api_name="/recognize_file")
        self.call("tiny", "upload", handle_file(str(labelled)), "default", api_name="/evaluate")
        self.call(text, "tiny", api_name="/suggest")
        entities = [{"start": 0, "end": 10, "label": "PER"}]
        if self.call(DATASET, text, entities, api_name="/accept") is not None:
            self.accepted += 1
        self.check_export()

    def check_export(self) -> None:
        """The visitor's export holds their own accepted texts and nobody else's."""
        answer = self.call(DATASET, api_name="/export_jsonl")
        if answer is None:
            return
        lines = self.fetch(answer).decode("utf-8").splitlines()
        foreign = [line for line in lines if self.marker not in line]
        if foreign:
            self.report.violation(f"visitor {self.number} exported another visitor's text: "
                                  f"{foreign[0][:120]!r}")
        if len(lines) != self.accepted:
            self.report.violation(f"visitor {self.number} accepted {self.accepted} texts and "
                                  f"exported {len(lines)}")

    def fetch(self, file_data: dict) -> bytes:
        with _LOCAL.open(file_data["url"], timeout=60) as response:
            return response.read()


def _detail(response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


ROUND_CALLS = 6  # highlight, a file job, an evaluation, a suggestion, an accept, an export


def soak(url: str, pid: int, roots: list[Path], usernames: list[str | None], seconds: float,
         work: Path, labelled: Path, cache_seconds: float, min_rounds: int = 2) -> Report:
    """Run every visitor's rounds until ``seconds`` have passed and each visitor did at least
    ``min_rounds``, sampling the disk under ``roots`` and the server's memory; then wait for the
    sweep and measure the disk again."""
    report = Report()
    visitors = [Visitor(url, i, name, work, report) for i, name in enumerate(usernames)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            report.peak_disk = max(report.peak_disk, tree_bytes(*roots))
            report.peak_rss = max(report.peak_rss, resident_memory(pid))
            stop.wait(0.2)

    def keep_visiting(visitor: Visitor) -> None:
        round_ = 0
        while round_ < min_rounds or time.monotonic() < deadline:
            visitor.round(round_, labelled)
            round_ += 1

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    deadline = time.monotonic() + seconds
    try:
        with ThreadPoolExecutor(len(visitors)) as pool:
            list(pool.map(keep_visiting, visitors))
    finally:
        stop.set()
        sampler.join()
    time.sleep(2 * cache_seconds + 2)  # one full age and one schedule, with room to spare
    report.disk_after_sweep = tree_bytes(*roots)
    return report
