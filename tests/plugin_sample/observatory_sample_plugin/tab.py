"""A tab on the Tests page: how many TAP runs are stored."""

from __future__ import annotations

import panel as pn
import param


class TapSummary(pn.viewable.Viewer):
    page = "tests"
    title = "TAP runs"

    model = param.Parameter()
    shown = param.Boolean(default=False)

    def __panel__(self):
        runs = self.model.store.query("runs", limit=100_000, offset=0)
        tap = runs[runs["format"] == "tap"] if "format" in runs else runs.iloc[0:0]
        return pn.pane.Markdown(f"**{len(tap)} TAP runs** stored (a plugin's tab).")
