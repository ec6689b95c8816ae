"""The API describing itself: the OpenAPI document, the reference page, and the live
application's routes beside their declarations (what the route-table test walks)."""

from __future__ import annotations

import json
from typing import Any

from .openapi import document, page
from .pages import PAGES
from .plugin_base import APIHandler, Declared

#: The reference page is static HTML with its own inline style and nothing else.
DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


class OpenAPIHandler(APIHandler):
    """``GET /api/openapi.json``."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document(declared(self.application))))


class DocsHandler(APIHandler):
    """``GET /api/docs``: the reference as a page."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", DOCS_CSP)
        self.finish(page(declared(self.application)))


def live_rules(application) -> list[dict[str, Any]]:
    """Every rule of ``application`` (a Tornado application: Bokeh's, with this plugin's
    routes), with what declares it: its routes (from routes.py, passed to the handler) or
    its entry in pages.PAGES — or nothing."""
    out, seen = [], set()
    routers = [application.wildcard_router, application.default_router]
    while routers:
        for rule in routers.pop(0).rules:
            if id(rule) in seen:
                continue
            seen.add(id(rule))
            target = rule.target
            if hasattr(target, "rules"):  # a nested router
                routers.append(target)
                continue
            regex = getattr(rule.matcher, "regex", None)
            pattern = regex.pattern.removesuffix("$") if regex is not None else \
                repr(rule.matcher)
            declared = (rule.target_kwargs or {}).get("routes") \
                if isinstance(target, type) and issubclass(target, Declared) else None
            page = PAGES.get(pattern)
            out.append({
                "pattern": pattern,
                "handler": getattr(target, "__qualname__", repr(target)),
                "declared": bool(declared) or page is not None,
                "routes": [{"method": r.method, "path": r.template, "role": r.role,
                            "audit": r.audit} for r in (declared or {}).values()],
                "page": {"role": page[0], "what": page[1]} if page else None})
    return out


def declared(application) -> list[Any]:
    """Every route the application serves as declared (routes.Route), in its table's
    order: what the reference is made of."""
    seen: dict[int, Any] = {}
    routers = [application.wildcard_router, application.default_router]
    while routers:
        for rule in routers.pop(0).rules:
            if hasattr(rule.target, "rules"):
                routers.append(rule.target)
            for route in (rule.target_kwargs or {}).get("routes", {}).values():
                seen.setdefault(id(route), route)
    return list(seen.values())


class RoutesHandler(APIHandler):
    """``GET /api/routes`` (admins): the live routes; ``undeclared`` lists any route that
    neither the route table nor its list of pages declares (it should be empty)."""

    def get(self) -> None:
        rules = live_rules(self.application)
        self.finish({"ok": True, "rules": rules,
                     "undeclared": [r["pattern"] for r in rules if not r["declared"]]})


class PluginsHandler(APIHandler):
    """``GET /api/plugins``: every plugin found (workbench/plugins.py), loaded or not, with
    why not."""

    def get(self) -> None:
        from .. import plugins

        self.finish({"ok": True, "plugins": plugins.report()})
