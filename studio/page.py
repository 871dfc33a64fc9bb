"""What the tabs of the page share: the one-second timer and the model pickers to keep current.

Each tab module has a ``build(page)`` that lays out its components inside its ``gr.Tab`` and wires
their events; the pickers it registers here are refreshed on every open page when a run is saved
or deleted, so a new run can be used at once everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from .models import model_choices
from .training import base_choices


@dataclass
class Page:
    demo: gr.Blocks
    # At page level, not inside a tab: a tab's components start only once the tab is shown.
    timer: gr.Timer
    model_pickers: list[gr.Dropdown] = field(default_factory=list)  # models to apply or score
    base_pickers: list[gr.Dropdown] = field(default_factory=list)  # bases to fine-tune

    def wire_pickers(self) -> None:
        """Refresh every registered picker when the list of runs changes (call after the tabs)."""
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
