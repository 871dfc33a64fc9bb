"""User mistakes become ``gr.Error`` messages; nothing shows a traceback on the page."""

from __future__ import annotations

import functools
import html
import inspect
import logging

import gradio as gr

logger = logging.getLogger("studio")


def shown_to_user(handler):
    """Turn ``ValueError`` (bad input) into its message on the page; log anything else and say so."""

    def translate(error: Exception) -> gr.Error:
        if isinstance(error, ValueError):
            # Messages quote user input; the page renders them as HTML.
            return gr.Error(html.escape(str(error), quote=False), print_exception=False)
        logger.exception("handler %s failed", handler.__name__)
        return gr.Error(f"the server hit an unexpected {type(error).__name__}; it is logged, and "
                        "the app keeps running", print_exception=False)

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
