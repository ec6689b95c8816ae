"""Projects through the API: ``POST /api/projects/scan`` (the server scans folders of its
machine: operators), ``GET /api/projects``, and a project's identity (identity.py):
``POST /api/projects/link``, ``PUT /api/projects/{name}`` (rename, its interpreter),
``DELETE /api/projects/{name}`` — operators, audited by the action."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..control import access
from ..projects import identity, mcp_client
from ..projects.scan import default_roots, scan, store_projects, stored_list
from .plugin_base import APIHandler
from .state import get_store


def listed(store) -> list[dict[str, Any]]:
    """The scanned projects as JSON objects, each under its one name (``named_by``)."""
    rows = json.loads(store.query("scanned_projects").to_json(orient="records",
                                                               date_format="iso"))
    for row in rows:
        for key in ("kinds", "manifests", "mcp_servers"):
            row[key] = stored_list(row[key])
    return rows


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    row = json.loads(json.dumps(row, default=str))
    for key in ("kinds", "manifests", "mcp_servers"):
        if key in row:
            row[key] = stored_list(row[key])
    return row


class ProjectsHandler(APIHandler):
    """``GET /api/projects``: what scans found, each under its one name."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "projects": listed(get_store())})


class ProjectScanHandler(APIHandler):
    """``POST /api/projects/scan`` with ``{"roots": [absolute folders], "name"?}``
    (default: the server's current folder and ~/src, ~/code, ~/projects, ~/work; ``name``
    names the one project found) → what was found, each under its one name."""

    async def post(self) -> None:
        def work() -> dict:
            principal = self.principal
            access.authorize(get_store(), principal, "scan", "projects")
            body = self.payload()
            roots, name = body.get("roots"), body.get("name")
            if roots is None:
                roots = [str(r) for r in default_roots()]
            if not isinstance(roots, list) or not all(
                    isinstance(r, str) and Path(r).is_absolute() for r in roots):
                raise ValueError("roots: a list of absolute folder paths")
            found, seen = scan(roots)
            store_projects(get_store(), found,
                           None if name is None else identity.checked_name(name))
            access.record(get_store(), principal, "scan", "projects",
                          {"roots": roots, **({"name": name} if name else {})})
            names = {p["path"]: p for p in listed(get_store())}
            found = [{**p, **{k: names.get(p["path"], {}).get(k, p.get(k))
                              for k in ("name", "named_by")}} for p in found]
            return {"ok": True, "folders": seen, "projects": found}

        await self.answer(work)


class ProjectLinkHandler(APIHandler):
    """``POST /api/projects/link`` with ``{"name", "path"}``: the project's folder is that
    git repository of the server's machine (operators; audited)."""

    async def post(self) -> None:
        def work() -> dict:
            body = self.payload()
            return {"ok": True, "project": _plain(identity.link(
                get_store(), self.principal, body["name"], body["path"]))}

        await self.answer(work)


class ProjectHandler(APIHandler):
    """``PUT /api/projects/{name}`` with ``{"name"?, "python"?}``: rename the folder that
    goes by the name, and/or set the interpreter its test runs use ("" or null: found
    again); ``DELETE``: forget the folder (its runs stay). Operators; audited."""

    async def put(self, name: str) -> None:
        def work() -> dict:
            body, store, principal = self.payload(), get_store(), self.principal
            if "name" not in body and "python" not in body:
                raise ValueError("give name (a new name) or python (an interpreter)")
            now = name
            if "python" in body:
                identity.set_python(store, principal, now, body["python"])
            if body.get("name") is not None and body["name"] != now:
                now = identity.rename(store, principal, now, body["name"])["name"]
            return {"ok": True, "project": _plain(identity.known(store, now))}

        await self.answer(work)

    async def delete(self, name: str) -> None:
        def work() -> dict:
            return {"ok": True, "project": _plain(identity.remove(get_store(), self.principal,
                                                                  name))}

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


