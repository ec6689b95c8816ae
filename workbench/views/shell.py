"""What every served dashboard shares: sidebar filters, tabs, live updates, navigation."""

from __future__ import annotations

import functools
from typing import ClassVar

import panel as pn
import param

from .common import FollowBrowserTheme, ThemedDesign, nav
from .lazy_tabs import LazyTabs, Later


class DashboardShell(pn.viewable.Viewer):
    """Subclasses set the class constants, build ``self._tabs`` and list their filters.

    The model must have ``refresh(version, at)`` and a ``store``; ``topic`` names the data
    (a store topic) whose changes the page shows.
    """

    live = param.Boolean(default=True, doc="When served, refresh by itself as new data "
                         "arrives (the server's data-change signal).")

    page: ClassVar[str] = ""
    title: ClassVar[str] = ""
    color: ClassVar[str] = "#3b5bdb"
    topic: ClassVar[str] = "tests"
    live_note: ClassVar[str] = "New data appears by itself while this page is open."
    tabs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params):
        super().__init__(**params)
        # Views of one model share its frames until the data changes (refresh clears them).
        self.model._cache.enabled = True
        if self.live and self._served():
            self._subscribe(pn.state.curdoc)

    @staticmethod
    def _served() -> bool:
        """Whether this runs in a served session (not a notebook or a test's own call)."""
        doc = pn.state.curdoc
        return doc is not None and doc.session_context is not None

    @classmethod
    def _share(cls, cache, store) -> None:
        """Keep ``cache``'s frames with every other session's, keyed by the data version of
        the page's topic now."""
        from ..models.cache import SHARED
        from ..server.signal import signal_for

        version = signal_for(store).current[cls.topic]
        cache.share(SHARED, (cls.topic, version.number), version.at)

    @classmethod
    def frames(cls, store):
        """A frame cache for this page's model, shared from the start with every session
        on the same data version when served (None otherwise): a model that reads in its
        constructor then reads what another session already read."""
        if not (cls.live and cls._served()):
            return None
        from ..models.cache import FrameCache

        cache = FrameCache()
        cls._share(cache, store)
        return cache

    def _subscribe(self, doc) -> None:
        """A served session: frames shared with every other session on the same data
        version, and one refresh per change of the topic (coalesced by the signal)."""
        from ..server.signal import signal_for

        self._share(self.model._cache, self.model.store)
        sub = signal_for(self.model.store).subscribe(self.topic, self._on_data, doc)
        doc.on_session_destroyed(lambda ctx: sub.close())

    def _on_data(self, version) -> None:
        self.model.refresh((self.topic, version.number), version.at)

    def build_tabs(self, views: tuple[type, ...]) -> None:
        """One tab per view class over the model. A tab's view is made when the tab first
        opens (views/lazy_tabs.py): a page load makes, queries and sends one tab, not all
        (making the tests page's six views was ~0.4 s of its request, py-spy). A view reads
        the model as it is when made (each loads in its constructor), and once made, a
        hidden one defers its queries until it is shown again."""
        extra = plugin_tabs(self.page)
        self.tabs = (*self.tabs, *(cls.title for cls in extra))
        self._lazy = LazyTabs(self.tabs, [Later(functools.partial(self._make, view))
                                          for view in (*views, *extra)],
                              sizing_mode="stretch_width")
        self._tabs = self._lazy.tabs

    def _make(self, view: type, shown: bool):
        return view(model=self.model, shown=shown)

    @property
    def _views(self) -> list:
        """Every tab's view (made now, hidden, if its tab has not been opened)."""
        return [self._lazy.view(i) for i in range(len(self.tabs))]

    def goto(self, name: str) -> None:
        """Switch to the tab called ``name``."""
        self._tabs.active = self.tabs.index(name)

    def filter_widgets(self) -> list:
        raise NotImplementedError

    def filters(self) -> pn.Column:
        refresh = pn.widgets.Button(label="Refresh", button_type="primary")
        refresh.on_click(lambda e: self.model.refresh())
        note = pn.pane.Markdown(self.live_note, styles={"font-size": "12px", "color": "#667"})
        return pn.Column(*self.filter_widgets(), refresh, note, width=250)

    def template(self) -> pn.template.BaseTemplate:
        """A served page: filters in the sidebar, tabs in the main area."""
        # BootstrapTemplate: FastListTemplate would fetch Google Fonts, and pages here must
        # work with no network at all.
        return pn.template.BootstrapTemplate(
            title=self.title, sidebar=[self.filters()], main=[self._tabs],
            header=[nav(self.page), FollowBrowserTheme(width=0, height=0, margin=0)],
            header_background=self.color, sidebar_width=280,
            theme=pn.config.theme,  # ?theme=dark: charts and tables follow
            design=ThemedDesign,  # and buttons (Bootstrap's light ones stay white)
        )

    def __panel__(self):
        return pn.Row(self.filters(), self._tabs, sizing_mode="stretch_width")


def plugin_tabs(page: str) -> list[type]:
    """The tabs other packages add to ``page`` (``happy_observatory.dashboard_tabs``): view
    classes with ``page`` and ``title``; one that is not is reported and skipped."""
    from .. import plugins

    group = "happy_observatory.dashboard_tabs"
    found = []
    for name, cls in plugins.working(group).items():
        if not (isinstance(cls, type) and isinstance(getattr(cls, "title", None), str)
                and getattr(cls, "page", None) in ("tests", "agents")):
            plugins.fail(group, name, "not a view class with a title and a page (tests or "
                                      "agents)")
        elif cls.page == page:
            found.append(cls)
    return found
