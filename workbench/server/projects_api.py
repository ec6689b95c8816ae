"""Projects through the API: ``POST /api/projects/scan`` (the server scans folders of its
machine: operators), ``GET /api/projects``."""

from __future__ import annotations

import json
from pathlib import Path

from ..control import access
from ..projects.scan import default_roots, scan, store_projects
from . import auth
from .plugin_base import APIHandler
from .state import get_store


class ProjectsHandler(APIHandler):
    """``GET /api/projects``: what scans found."""

    async def get(self) -> None:
        def work() -> dict:
            rows = json.loads(get_store().query("scanned_projects").to_json(
                orient="records", date_format="iso"))
            for row in rows:
                for key in ("kinds", "manifests", "mcp_servers"):
                    row[key] = json.loads(row[key]) if isinstance(row[key], str) else row[key]
            return {"ok": True, "projects": rows}

        await self.answer(work)


class ProjectScanHandler(APIHandler):
    """``POST /api/projects/scan`` with ``{"roots": [absolute folders]}`` (default: the
    server's current folder and ~/src, ~/code, ~/projects, ~/work) → what was found."""

    async def post(self) -> None:
        def work() -> dict:
            principal = auth.principal(self)
            access.authorize(get_store(), principal, "scan", "projects")
            raw = self.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError as err:
                raise ValueError(f"/api/projects/scan: body is not valid JSON: {err}") from None
            roots = body.get("roots") if isinstance(body, dict) else None
            if roots is None:
                roots = [str(r) for r in default_roots()]
            if not isinstance(roots, list) or not all(
                    isinstance(r, str) and Path(r).is_absolute() for r in roots):
                raise ValueError("roots: a list of absolute folder paths")
            found, seen = scan(roots)
            store_projects(get_store(), found)
            access.record(get_store(), principal, "scan", "projects", {"roots": roots})
            return {"ok": True, "folders": seen, "projects": found}

        await self.answer(work)


PROJECT_ROUTES = [
    (r"/api/projects", ProjectsHandler, {}),
    (r"/api/projects/scan", ProjectScanHandler, {}),
]
