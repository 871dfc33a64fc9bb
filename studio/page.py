"""What the tabs of the page share, declared: the one-second timer, the model pickers to keep
current, and the Fine-tune form that other tabs may fill.

Each tab module has a ``build(page)`` that lays out its components inside its ``gr.Tab`` and wires
their events. A tab that wires events into another tab's components does it in a function it
hands to ``when_built``: those run once every tab exists, so the order of the tabs never matters.

Each visitor's pickers offer what that visitor may use (``models.model_choices(who)``); the choices
built into the page, which every visitor receives, are the host's alone until the page loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gradio as gr

from . import access
from .models import STATE_SECONDS, model_choices
from .training import base_choices, managed_runs


@dataclass
class FineTuneForm:
    """The Fine-tune tab's inputs that another tab may set (its button "Fine-tune on this
    dataset", say): the data, the base model, the preset and the hyperparameters in ``FORM``
    order."""

    source: gr.Radio
    dataset: gr.Dropdown
    base: gr.Dropdown
    replay: gr.Checkbox
    preset: gr.Radio
    hyperparameters: list[gr.components.Component]

    @property
    def settings(self) -> list[gr.components.Component]:
        """Everything ``training.fill_for`` returns values for, in its order."""
        return [self.source, self.dataset, self.base, self.replay, self.preset,
                *self.hyperparameters]


@dataclass
class Page:
    demo: gr.Blocks
    # At page level, not inside a tab: a tab's components start only once the tab is shown.
    timer: gr.Timer
    model_pickers: list[gr.Dropdown] = field(default_factory=list)  # models to apply or score
    base_pickers: list[gr.Dropdown] = field(default_factory=list)  # bases to fine-tune
    run_pickers: list[gr.Dropdown] = field(default_factory=list)  # runs to delete or push
    fine_tune: FineTuneForm | None = None  # set by the Fine-tune tab
    _when_built: list[Callable[[], None]] = field(default_factory=list)

    def when_built(self, wire: Callable[[], None]) -> None:
        """Call ``wire`` once every tab is built (for events that reach into another tab)."""
        self._when_built.append(wire)

    def finish(self) -> None:
        """Wire what waited for every tab, and the pickers (call after the tabs, in the Blocks)."""
        for wire in self._when_built:
            wire()
        self._wire_pickers()

    def _wire_pickers(self) -> None:
        """Refresh every registered picker, for its visitor, when the list of runs changes."""
        pickers = self.model_pickers + self.base_pickers + self.run_pickers
        # The models the page last offered; None until it loads, so the first load refreshes.
        seen = gr.State(None, time_to_live=STATE_SECONDS)

        def refresh(profile: gr.OAuthProfile | None, request: gr.Request, offered, *picked):
            return self._refresh(offered, *picked, who=access.visitor(profile, request))

        self.demo.load(refresh, [seen, *pickers], [*pickers, seen], api_visibility="private")
        self.timer.tick(refresh, [seen, *pickers], [*pickers, seen], api_visibility="private",
                        show_progress="hidden", concurrency_limit=None)

    def _refresh(self, seen: list[str] | None, *picked: str, who: access.Visitor | None = None):
        """Updates of the pickers (in ``model_pickers``, ``base_pickers``, ``run_pickers``
        order) and of ``seen`` for the visitor ``who``; skips when the models are as ``seen``."""
        choices = model_choices(who)
        if choices == seen:
            return [gr.skip()] * (len(picked) + 1)
        bases = base_choices(who)[0]
        lists = [choices] * len(self.model_pickers) + [bases] * len(self.base_pickers) \
            + [managed_runs(who)] * len(self.run_pickers)
        # Name the value too: an update of the choices alone resets the picker to the first one.
        return [*(gr.Dropdown(choices=c, value=v if v in c else (c[0] if c else None))
                  for c, v in zip(lists, picked)), choices]
