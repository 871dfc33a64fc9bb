"""What a visitor is told when a handler fails; nothing shows a traceback on the page."""

from __future__ import annotations

import functools
import html
import inspect
import logging

import gradio as gr

from ner_core.errors import UserError

logger = logging.getLogger("studio")

FAULT = ("something went wrong in the studio itself, not in what you gave it: the error is in "
         "the server's log, and the app keeps running")


def shown_to_user(handler):
    """Turn ``UserError`` (bad input) into its message on the page; log anything else with its
    traceback and say in one sentence that it is a fault of the studio."""

    def translate(error: Exception) -> gr.Error:
        if isinstance(error, UserError):
            # Messages quote user input; the page renders them as HTML.
            return gr.Error(html.escape(str(error), quote=False), print_exception=False)
        logger.exception("handler %s failed", handler.__name__)
        return gr.Error(f"{FAULT} ({type(error).__name__})", print_exception=False)

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def generator(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as error:
                raise translate(error) from None
        return generator

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            raise translate(error) from None
    return wrapped
