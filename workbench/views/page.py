"""Serving a dashboard: open its data, or show a page that says why it cannot."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import panel as pn

from ..store import StoreWriteError
from .escape import escape

log = logging.getLogger("workbench.server")


def open_data() -> tuple[Any, str | None]:
    """``(store, note)``: the server's own store, or — when another workbench holds the
    file — that workbench's API (``note`` says so). Raises what the store raised when
    neither can be had."""
    from ..discovery import find_server
    from ..server.state import get_store
    from ..store import StoreLockedError

    try:
        return get_store(), None
    except StoreLockedError:
        from .. import config
        from ..client import RemoteStore

        url = find_server(config.db_path(), config.get("OBSERVATORY_TOKEN"))
        if url is None:
            raise
        return RemoteStore(url), f"Read-only view of the workbench at {url}, which holds the file."


_OPEN_HINT = ("Start one server per database (<code>observatory serve</code>), or point this "
              "one at another file with <code>--db</code> / <code>OBSERVATORY_DB</code>.")
_READ_HINT = ("The workbench serves on and reads again as soon as the store answers: "
              "reload this page then. <code>/api/health</code> says how it stands.")


def error_page(title: str, message: str, hint: str = _OPEN_HINT) -> pn.template.BaseTemplate:
    """A plain page with the reason, instead of a blank one."""
    body = pn.pane.HTML(
        f"<h2>The workbench cannot open its data</h2><p>{escape(message)}</p>"
        f"<p>{hint}</p>",
        styles={"max-width": "900px"},
    )
    return pn.template.BootstrapTemplate(title=title, main=[body], header_background="#a61e4d")


def _local_resources() -> None:
    """Make every stylesheet of this session load from this server, never a CDN.

    Panel points a component's stylesheets at its CDN when the session's document does
    not yet name a local ``dist_url`` — which it does only once the page has been rendered,
    after this script built the components. Components created before that and updated
    later (the loading indicator's ``loading.css`` after a click) then reached for
    cdn.holoviz.org. Naming the local path before anything is built closes that gap.
    """
    from panel.io.resources import LOCAL_DIST

    doc = pn.state.curdoc
    if doc is not None:
        rel = pn.state.rel_path
        doc._template_variables["dist_url"] = f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST


def serve(title: str, build: Callable[[Any], pn.template.BaseTemplate]) -> None:
    """Make the page for this session: ``build(store)``, or an error page saying why not."""
    pn.extension("tabulator", notifications=True)
    _local_resources()
    try:
        store, note = open_data()
    except Exception as err:  # noqa: BLE001  (any failure to open must still give a page)
        log.error("dashboard %s: %s", title, err)
        error_page(title, str(err)).servable()
        return
    try:
        page = build(store)
    except StoreWriteError as err:  # (a store not readable now: ClickHouse away, a lost disk)
        log.error("dashboard %s: %s", title, err)
        error_page(title, str(err), _READ_HINT).servable()
        return
    if note:
        page.main.insert(0, pn.pane.Alert(escape(note), alert_type="info"))  # (Markdown)
    _servable(page)


def _servable(page: pn.template.BaseTemplate) -> None:
    """Put the page in this session's document, its model graph indexed once. Panel adds a
    template's parts as ten roots, and Bokeh walks every model of the document again after
    each (``recompute``): over a third of the tests page's build, in a profile. Models
    added while frozen are indexed, and given the document's theme, when the freeze ends."""
    doc = pn.state.curdoc
    if doc is None:
        page.servable()
        return
    with doc.models.freeze():
        page.servable()
