"""The visitor of a request, and what they may start.

The rules live in the engine (``ner_core.tenancy``): on a public host (a Space, a shared link, a
server on a non-loopback address, ``NER_PUBLIC=1``) every limit has a safe default and everything a
visitor makes is theirs; elsewhere (one person on their own machine) no limit applies. Sign-in
exists on a Space only, and a local user is never asked to sign in. Every check runs before any
job or directory exists, and every refusal names the value and the limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ner_core import tenancy
from ner_core.errors import UserError

ACCESS_CHOICES = ("anyone", "signed-in", "owner")
# The limits and their public-host defaults live in the engine (``ner_core.tenancy``).
SPACE_DEFAULTS = tenancy.PUBLIC_DEFAULTS
int_setting = tenancy.int_setting
limit = tenancy.limit
space_owner = tenancy.space_owner
is_public = tenancy.is_public


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def finetune_access() -> str:
    """``NER_FINETUNE_ACCESS``: ``signed-in`` by default on a Space, ``anyone`` elsewhere."""
    value = os.environ.get("NER_FINETUNE_ACCESS", "").strip() or ("signed-in" if on_space() else "anyone")
    if value not in ACCESS_CHOICES:
        raise UserError(f"the setting NER_FINETUNE_ACCESS must be one of {', '.join(ACCESS_CHOICES)}, "
                        f"found {value!r}")
    return value


@dataclass(frozen=True)
class Visitor:
    """Who sent a request: a Hugging Face account when signed in, else the browser session."""

    username: str | None
    session: str | None = None

    @property
    def identity(self) -> str | None:
        """What a job or run records as its owner."""
        if self.username:
            return self.username
        return f"session:{self.session}" if self.session else None

    @property
    def is_space_owner(self) -> bool:
        return self.username is not None and self.username == space_owner()

    @property
    def is_admin(self) -> bool:
        """The Space's owner or an account in ``NER_ADMINS``: manages everything."""
        return tenancy.is_admin(self.username)


def visitor(profile, request=None) -> Visitor:
    """The visitor of a request, from Gradio's ``OAuthProfile`` (or None) and ``Request``."""
    username = getattr(profile, "username", None) if profile is not None else None
    return Visitor(username, getattr(request, "session_hash", None))


def check_may_start(who: Visitor, what: str = "fine-tune") -> None:
    """``UserError`` saying why and what to do when ``who`` may not start a fine-tune here (or do
    ``what`` else that writes what others train on, such as adding to a dataset)."""
    access = finetune_access()
    if access == "signed-in" and who.username is None:
        raise UserError(f"sign in with Hugging Face (the button at the top of the page) to "
                        f"{what} on this Space")
    if access == "owner" and not who.is_admin:
        raise UserError(f"only the owner of this Space ({space_owner()}) may {what} here; "
                        f"duplicate the Space to {what} yourself")
    if who.identity is None and tenancy.is_public():
        # What it made would belong to nobody, so to the host, and be offered to every visitor.
        raise UserError(f"expected a browser session or a signed-in account to {what} on this "
                        "server, found neither; open the page in a browser or send a session_hash")


def may_manage(who: Visitor, owner: str | None) -> bool:
    """Whether ``who`` may read, stop, export or delete what ``owner`` made
    (``tenancy.may_manage``: off a public host, always)."""
    return tenancy.may_manage(who.identity, owner)


def owner_label(owner: str | None) -> str:
    """An owner as shown on the page: the account name, never a session id."""
    if owner is None:
        return "unknown"
    return "an anonymous visitor" if owner.startswith("session:") else owner


def check_epochs(epochs: float) -> None:
    most = limit("NER_MAX_EPOCHS")
    if most is not None and epochs > most:
        raise UserError(f"epochs must be at most {most} on this server (NER_MAX_EPOCHS), "
                        f"found {epochs:g}")


def check_cpu_sentences(sentences: int) -> None:
    """Training sentences of a fine-tune on the CPU, against ``NER_MAX_CPU_TRAIN_SENTENCES``."""
    most = limit("NER_MAX_CPU_TRAIN_SENTENCES")
    if most is not None and sentences > most:
        raise UserError(f"a fine-tune on this server's CPU may train on at most {most:,} "
                        f"sentences (NER_MAX_CPU_TRAIN_SENTENCES), found {sentences:,}; set "
                        f"max training sentences to {most:,} or fewer")
