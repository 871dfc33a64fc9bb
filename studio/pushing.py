"""Where the page pushes to the Hugging Face Hub, and with whose token: the same rules for a run
(Fine-tune tab) and a dataset (Annotate tab).

On a Space a push goes to the signed-in visitor's own namespace with their sign-in's token, never
the Space's; elsewhere to the ``owner/name`` typed, with ``HF_TOKEN`` (``huggingface_hub`` reads
it itself).
"""

from __future__ import annotations

import gradio as gr

from ner_core.errors import UserError

from . import access


def destination(repo: str | None, default_name: str, what: str,
                profile: gr.OAuthProfile | None, token: gr.OAuthToken | None) -> tuple[str, str | None]:
    """The repository id to push ``what`` (``a run``, ``a dataset``) to, and the token to push
    with (``None``: ``HF_TOKEN``). On a Space only the name typed counts (``default_name``
    without one)."""
    repo = (repo or "").strip()
    if access.on_space():
        if profile is None or token is None:
            raise UserError("sign in with Hugging Face (the button at the top of the page) to push "
                            f"{what} to your account")
        name = repo.split("/")[-1] or default_name
        return f"{profile.username}/{name}", token.token
    if "/" not in repo:
        raise UserError(f"expected a Hub repository as owner/name, found {repo!r}")
    return repo, None


def pushed(what: str, repo_id: str, url: str, private: bool) -> str:
    """What the page says after a push."""
    return f"Pushed `{what}` to [{repo_id}]({url}) ({'private' if private else 'public'})."
