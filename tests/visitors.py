"""Visitors of in-process handler calls, as Gradio passes them: the signed-in account's
``OAuthProfile`` (or None) and a request with its browser session."""

from __future__ import annotations

import types

import gradio as gr


def profile(username: str) -> gr.OAuthProfile:
    """A signed-in visitor as Gradio builds one from the Hub's userinfo."""
    return gr.OAuthProfile({"name": username.title(), "preferred_username": username,
                            "profile": f"https://huggingface.co/{username}", "picture": ""})


def signed_in(username: str) -> dict:
    return {"profile": profile(username),
            "request": types.SimpleNamespace(session_hash=f"{username}-tab")}


def anonymous(session: str) -> dict:
    return {"profile": None, "request": types.SimpleNamespace(session_hash=session)}
