"""Tabs whose views are sent to the browser when they are first opened.

A page's session is built before the server answers the page's request: every widget,
then every Bokeh model of the document. Sending every tab made that 1–4 s on the pages
with seven tabs (a profile of ``DocHandler.get``: the hidden tabs' Bokeh models, their
Tabulators' data sources and the document's model graph were most of it), against 0.1 s
for a bare Panel page. A hidden tab now holds an empty column until it is first opened;
then its view, already told it is shown (so its queries have filled it), goes in, in one
change. Views made at once follow the model's changes while hidden (the projects page's
file opened from the address).

A page whose hidden views need not follow anything while hidden passes them as
:class:`Later`: such a view is not even made until its tab opens, and then reads the
model's state as it is (the control page's seven views and their Tabulators were ~0.3 s of
its request, the tests page's six ~0.4 s).

(Panel's ``dynamic`` tabs render on opening too, but send the tab before the view's data,
and the data patch raced the browser building the tab.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import panel as pn
from panel.io.document import hold


class Later:
    """A view made only when its tab first opens (or is asked for, :meth:`LazyTabs.view`):
    ``Later(lambda shown: View(model=m, shown=shown))``, ``shown`` saying whether its tab
    is the open one."""

    def __init__(self, make: Callable[[bool], Any]) -> None:
        self.make = make


class LazyTabs:
    """``pn.Tabs`` of ``titles`` over ``views``; a view goes into the page when its tab is
    first opened. A view with a ``shown`` parameter is told when its tab opens or closes;
    ``opening(i)`` is called when tab ``i`` opens, before its view is sent. The ``eager``
    tabs are sent at once. A :class:`Later` view is made by :meth:`view` (its tab opening
    does that).
    """

    def __init__(self, titles: Sequence[str], views: Sequence[Any],
                 opening: Callable[[int], None] | None = None, eager: Sequence[int] = (),
                 **tabs: Any) -> None:
        self.views = list(views)
        self._opening = opening  # (fills tab i's view before it goes into the page)
        self._holders = [pn.Column(sizing_mode="stretch_width", margin=0) for _ in views]
        self._sent = [False] * len(self.views)
        self.tabs = pn.Tabs(*zip(titles, self._holders, strict=True), **tabs)
        for i in (self.tabs.active, *eager):
            self._send(i)
        self.tabs.param.watch(self._on_tab, "active")

    def view(self, i: int) -> Any:
        """Tab ``i``'s view, made now if it is a :class:`Later` one not made yet."""
        if isinstance(self.views[i], Later):
            # Made as the page's own views are, before the template made its design the
            # default: Panel gives a widget made later the design at once, and a Tabulator
            # made so lost Bootstrap's compact header (its titles were cut); the
            # template's hooks style it when it is sent, as every other.
            with pn.config.set(design=None):
                self.views[i] = self.views[i].make(i == self.tabs.active)
        return self.views[i]

    def _send(self, i: int) -> None:
        if not self._sent[i]:
            self._sent[i] = True
            self._holders[i].objects = [self.view(i)]

    def _on_tab(self, event) -> None:
        # Held: the views' changes and the tab's models go to the browser together, in
        # order, the way Panel sends its own changes. (A plain Bokeh model changed later,
        # a chart's data, must go that way too: common.bokeh_changes.)
        with hold():
            self.view(event.new)
            for i, view in enumerate(self.views):  # (shown first: its queries fill it)
                if not isinstance(view, Later) and hasattr(view, "shown"):
                    view.shown = i == event.new
            if self._opening is not None:
                self._opening(event.new)
            self._send(event.new)
