"""Projects through the API: ``POST /api/projects/scan`` (the server scans folders of its
machine: operators), ``GET /api/projects``."""

from __future__ import annotations

import json
from pathlib import Path

from ..control import access
from ..projects import mcp_client
from ..projects.scan import default_roots, scan, store_projects, stored_list
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
                    row[key] = stored_list(row[key])
            return {"ok": True, "projects": rows}

        await self.answer(work)


class ProjectScanHandler(APIHandler):
    """``POST /api/projects/scan`` with ``{"roots": [absolute folders]}`` (default: the
    server's current folder and ~/src, ~/code, ~/projects, ~/work) → what was found."""

    async def post(self) -> None:
        def work() -> dict:
            principal = self.principal
            access.authorize(get_store(), principal, "scan", "projects")
            roots = self.payload().get("roots")
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


def _folder(name: str) -> Path:
    from ..coverage.lines import project_repo

    folder = project_repo(get_store(), name)
    if folder is None:
        raise KeyError(f"no scanned folder for project {name!r} (POST /api/projects/scan)")
    return folder


class McpServersHandler(APIHandler):
    """``GET /api/projects/{name}/mcp``: the MCP servers the project declares, each with
    whether it is approved as declared now (no environment or header values)."""

    async def get(self, name: str) -> None:
        await self.answer(lambda: {"ok": True, "servers": mcp_client.listing(
            get_store(), _folder(name))})


class McpActionHandler(APIHandler):
    """``POST /api/projects/{name}/mcp/{server}/approve`` (operators; audited),
    ``POST …/tools`` (runs the server: a POST), ``POST …/call`` with ``{"tool": NAME,
    "arguments": {...}}``: through the SDK's client, after an approval; every call audited.
    502 when the server fails."""

    async def post(self, name: str, server: str, action: str) -> None:
        store, principal = get_store(), self.principal

        def act() -> dict:
            body = self.payload()  # (empty but for a call)
            folder = _folder(name)
            if action == "approve":
                return {"ok": True, "fingerprint": mcp_client.approve(store, folder, server,
                                                                      principal)}
            if action == "tools":
                return {"ok": True, "tools": mcp_client.tools(store, folder, server,
                                                              principal)}
            return {"ok": True, **mcp_client.call(store, folder, server, body["tool"],
                                                   body.get("arguments") or {}, principal)}

        def work():
            try:
                return act()
            except (ConnectionError, TimeoutError, OSError) as err:
                if isinstance(err, PermissionError):
                    raise
                return {"ok": False, "error": str(err).splitlines()[0][:300], "status": 502}

        result = await self.run(work)
        if result is not None:
            if result.get("status") == 502:
                self.set_status(502)
                result.pop("status")
            self.finish(result)


