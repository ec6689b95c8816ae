"""Views that do no work while hidden: a tab that is not open runs no queries."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import panel as pn
import param


def hidden() -> pn.pane.Markdown:
    """What a render method returns while its view is hidden (nothing is on screen)."""
    return pn.pane.Markdown("", height=0, margin=0)


def drawn(method: Callable[..., Any]) -> Callable[..., Any]:
    """For a ``param.depends`` method whose result Panel shows: while the view is hidden,
    the first call returns an empty pane and later calls change nothing at all.

    Returning a new empty pane on every data change would still make Panel swap panes and
    the document re-index its models, for each open session — work for a tab no one sees.
    """

    @functools.wraps(method)
    def run(self: LazyView, *args: Any, **kw: Any) -> Any:
        if self.shown:
            return method(self, *args, **kw)
        if method.__name__ in self._blank:
            raise param.Skip  # keep what is there: the next showing redraws it
        self._blank.add(method.__name__)
        return hidden()

    return run


def deferred(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` now if the view is shown, else once when it is next shown.

    Put it under ``@param.depends(..., watch=True)``: a filter change then costs a hidden
    view nothing but a note that it is stale.
    """

    @functools.wraps(method)
    def run(self: LazyView, *args: Any, **kw: Any) -> Any:
        if self.shown:
            return method(self, *args, **kw)
        self._stale.append(method.__name__)
        return None

    return run


class LazyView(pn.viewable.Viewer):
    """A view whose loading methods are :func:`deferred` while ``shown`` is False."""

    shown = param.Boolean(default=True, doc="Whether the view is on screen; a hidden view "
                          "defers its queries until it is shown.")

    def __init__(self, **params: Any):
        self._stale: list[str] = []
        self._blank: set[str] = set()  # @drawn methods that have drawn their empty pane
        super().__init__(**params)

    @param.depends("shown", watch=True)
    def _catch_up(self) -> None:
        if not self.shown:
            return
        pending, self._stale = list(dict.fromkeys(self._stale)), []
        for name in pending:
            getattr(self, name)()
