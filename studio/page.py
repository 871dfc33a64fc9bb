"""What the tabs of the page share, declared: the one-second timer, the model pickers to keep
current, and the Fine-tune form that other tabs may fill.

Each tab module has a ``build(page)`` that lays out its components inside its ``gr.Tab`` and wires
their events. A tab that wires events into another tab's components does it in a function it
hands to ``when_built``: those run once every tab exists, so the order of the tabs never matters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gradio as gr

from .models import model_choices
from .training import base_choices


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
        """Refresh every registered picker when the list of runs changes."""
        pickers = self.model_pickers + self.base_pickers
        seen = gr.State(model_choices())
        self.demo.load(self._refresh, [seen, *pickers], [*pickers, seen], api_visibility="private")
        self.timer.tick(self._refresh, [seen, *pickers], [*pickers, seen], api_visibility="private",
                        show_progress="hidden", concurrency_limit=None)

    def _refresh(self, seen: list[str], *picked: str):
        choices = model_choices()
        if choices == seen:
            return [gr.skip()] * (len(picked) + 1)
        bases = base_choices()[0]
        lists = [choices] * len(self.model_pickers) + [bases] * len(self.base_pickers)
        # Name the value too: an update of the choices alone resets the picker to the first one.
        return [*(gr.Dropdown(choices=c, value=v if v in c else (c[0] if c else None))
                  for c, v in zip(lists, picked)), choices]
