"""Plugins: other packages add to the workbench's registries through entry points, without
touching its code. One loader for every group; a plugin that fails to load is reported
(``observatory plugins``, ``GET /api/plugins``, a warning in the log) and skipped — it
never stops the server or a command.

=====================================  ===================================================
group                                  what the entry point names
=====================================  ===================================================
``happy_observatory.parsers``          a module defining a ``workbench.ingest.Parser``
                                       subclass (a report format; it registers itself)
``happy_observatory.backends``         a ``workbench.control.backends.Backend`` subclass
                                       (an agent backend, by its ``name``)
``happy_observatory.alert_actions``    ``fn(alert: dict) -> None``: an alert rule's action
                                       (the entry point's name is the action's)
``happy_observatory.webhook_formats``  ``fn(event: dict) -> dict``: a webhook's body
``happy_observatory.export_targets``   ``fn(store, filter, destination: str) -> str``:
                                       ``observatory export --target NAME=DEST``
``happy_observatory.dashboard_tabs``   a view class (``pn.viewable.Viewer`` taking
                                       ``model`` and ``shown``) with ``page`` (``tests`` or
                                       ``agents``) and ``title``: a tab on that page
=====================================  ===================================================
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("workbench.plugins")

GROUPS = {
    "happy_observatory.parsers": "report formats",
    "happy_observatory.backends": "agent backends",
    "happy_observatory.alert_actions": "alert actions",
    "happy_observatory.webhook_formats": "webhook formats",
    "happy_observatory.export_targets": "export targets",
    "happy_observatory.dashboard_tabs": "dashboard tabs",
}
#: What a plugin's name may be (it becomes an action, a format, a backend's name).
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@dataclass
class Loaded:
    group: str
    name: str
    value: str  # what the entry point names (module:attribute)
    dist: str | None
    obj: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "kind": GROUPS[self.group], "name": self.name,
                "value": self.value, "package": self.dist, "loaded": self.error is None,
                "error": self.error}


_lock = threading.Lock()
_loaded: dict[str, list[Loaded]] = {}


def load(group: str) -> list[Loaded]:
    """Every entry point of ``group``, loaded once per process (failures kept, not raised)."""
    if group not in GROUPS:
        raise KeyError(f"no plugin group {group!r}")
    with _lock:
        if group in _loaded:
            return _loaded[group]
        from importlib.metadata import entry_points

        found = []
        for ep in entry_points(group=group):
            dist = getattr(getattr(ep, "dist", None), "name", None)
            item = Loaded(group, ep.name, ep.value, dist)
            if not NAME.match(ep.name):
                item.error = ("its name must be lower-case letters, digits, - and _ "
                              "(at most 40)")
            else:
                try:
                    item.obj = ep.load()
                except KeyboardInterrupt:
                    raise
                except BaseException as err:  # noqa: BLE001  (even sys.exit: reported)
                    item.error = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
            if item.error:
                log.warning("plugin %s (%s, from %s) skipped: %s", ep.name, GROUPS[group],
                            dist or "?", item.error)
            found.append(item)
        _loaded[group] = found
        return found


#: The groups whose entry points name a function (the others name a class or a module).
CALLABLE = ("happy_observatory.alert_actions", "happy_observatory.webhook_formats",
            "happy_observatory.export_targets")


def working(group: str) -> dict[str, Any]:
    """The loaded objects of ``group`` by name (those that failed are left out; in a
    group of functions, one that is not callable is reported and left out too)."""
    for p in load(group):
        if p.error is None and group in CALLABLE and not callable(p.obj):
            fail(group, p.name, f"not a function ({type(p.obj).__name__})")
    return {p.name: p.obj for p in load(group) if p.error is None}


def fail(group: str, name: str, error: str) -> None:
    """Mark a loaded plugin as unusable after a check of what it gave (wrong type)."""
    for p in load(group):
        if p.name == name and p.error is None:
            p.error = error
            log.warning("plugin %s (%s) skipped: %s", name, GROUPS[group], error)


def report() -> list[dict[str, Any]]:
    """Every plugin of every group, loaded or not, with why not."""
    for g in CALLABLE:
        working(g)  # (the type checks)
    return [p.as_dict() for g in GROUPS for p in load(g)]
