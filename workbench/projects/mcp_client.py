"""Connecting to the MCP servers a project declares, with the official ``mcp`` SDK's client.

A project's MCP server is code from that project (a stdio server is a command run on this
machine): the first connection needs an operator's approval, recorded per project, server
and *fingerprint* of its declaration — change the command, its arguments, environment or
URL, and it must be approved again. Every approval, tool listing and call is audited.

Each listing or call opens its own session (connect, initialise, ask, close): the page and
the notebook ask rarely, and no server process is left running between calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..config import utcnow
from ..control import access
from .scan import mcp_servers

#: Seconds a listing or a call may take, connection included.
TIMEOUT_S = 60.0


class NotApproved(PermissionError):
    """The server (as declared now) has not been approved by an operator."""


def declared(folder: str | Path) -> dict[str, dict[str, Any]]:
    """The project's servers by name, read from its files now (not from the last scan:
    what is approved and run is what the project declares at this moment)."""
    out = {}
    for spec in mcp_servers(Path(folder), full=True):
        if "name" in spec:
            out.setdefault(spec["name"], spec)
    return out


def fingerprint(folder: str | Path, spec: dict[str, Any]) -> str:
    """What an approval is for: the project folder and everything that decides what runs."""
    keys = ("file", "name", "transport", "command", "args", "env", "url", "headers")
    doc = json.dumps([str(Path(folder).resolve()), {k: spec.get(k) for k in keys}],
                     sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:24]


def server(store, folder: str | Path, name: str) -> tuple[dict[str, Any], str, bool]:
    """``(spec, fingerprint, approved)`` for server ``name`` of the project at ``folder``."""
    spec = declared(folder).get(name)
    if spec is None:
        raise KeyError(f"{folder}: declares no MCP server {name!r}")
    fp = fingerprint(folder, spec)
    rows = store.query("mcp_approval", project=str(Path(folder).resolve()), server=name,
                       fingerprint=fp)
    return spec, fp, not rows.empty


def listing(store, folder: str | Path) -> list[dict[str, Any]]:
    """Every declared server with whether it is approved as declared now; no secrets (an
    environment's or headers' values are never shown)."""
    out = []
    for name, spec in declared(folder).items():
        _, fp, ok = server(store, folder, name)
        out.append({"name": name, "file": spec["file"], "transport": spec["transport"],
                    "command": spec.get("command"), "args": spec.get("args") or [],
                    "url": spec.get("url"), "env": sorted(spec.get("env") or {}),
                    "fingerprint": fp, "approved": ok})
    return out


def approve(store, folder: str | Path, name: str, principal: access.Principal) -> str:
    """Record an operator's approval of server ``name`` as declared now; audited."""
    target = f"{Path(folder).name}/{name}"
    access.authorize(store, principal, "mcp", target)
    _, fp, _ = server(store, folder, name)
    values = [str(Path(folder).resolve()), name, fp, principal.who, utcnow()]
    # Written before this returns: the next call must find it.
    store.write(lambda cur: cur.execute(
        "INSERT OR REPLACE INTO mcp_approvals VALUES (?, ?, ?, ?, ?)", values), topic="control")
    access.record(store, principal, "mcp-approve", target, {"fingerprint": fp})
    return fp


def tools(store, folder: str | Path, name: str, principal: access.Principal
          ) -> list[dict[str, Any]]:
    """The server's tools (name, description, input schema); needs an approval."""
    spec = _approved(store, folder, name, principal, "list tools")

    async def ask(client):
        return (await client.list_tools()).tools

    found = _run(spec, folder, ask)
    access.record(store, principal, "mcp-tools", f"{Path(folder).name}/{name}",
                  {"tools": len(found)})
    return [{"name": t.name, "description": t.description or "",
             "input_schema": t.input_schema} for t in found]


def call(store, folder: str | Path, name: str, tool: str, arguments: dict[str, Any],
         principal: access.Principal) -> dict[str, Any]:
    """Call ``tool`` with ``arguments``; the answer's text, structured content and whether
    the tool reported an error. Audited with its arguments and outcome."""
    if not isinstance(arguments, dict):
        raise ValueError("arguments: a JSON object")
    spec = _approved(store, folder, name, principal, f"call {tool}")
    target = f"{Path(folder).name}/{name}"

    async def ask(client):
        return await client.call_tool(tool, arguments)

    try:
        result = _run(spec, folder, ask)
    except Exception as err:
        access.record(store, principal, "mcp-call", target,
                      {"tool": tool, "arguments": arguments}, f"failed: {err}"[:300])
        raise
    texts = [getattr(c, "text", "") for c in result.content if getattr(c, "text", None)]
    access.record(store, principal, "mcp-call", target, {"tool": tool, "arguments": arguments},
                  "tool error" if result.is_error else "ok")
    return {"tool": tool, "is_error": bool(result.is_error), "text": "\n".join(texts),
            "structured": result.structured_content}


def _approved(store, folder, name, principal, what: str) -> dict[str, Any]:
    access.authorize(store, principal, "mcp", f"{Path(folder).name}/{name}")
    spec, fp, ok = server(store, folder, name)
    if not ok:
        raise NotApproved(f"MCP server {name!r} of {Path(folder).name} is not approved as "
                          f"declared now (fingerprint {fp}): an operator approves it first")
    return spec


def _run(spec: dict[str, Any], folder, ask):
    """Open a session to the server, ``await ask(client)``, close; within TIMEOUT_S."""
    from mcp import Client

    async def session():
        if spec["transport"] != "http":
            from mcp.client.stdio import stdio_client

            # The server's stderr to a file of its own: the caller's may have no file
            # descriptor (a notebook kernel's), and its last line explains a failure.
            with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
                try:
                    async with Client(stdio_client(_stdio(spec, folder), errlog=err)) as client:
                        return await ask(client)
                except Exception as exc:
                    err.seek(0)
                    last = [line for line in err.read().splitlines() if line.strip()][-1:]
                    if last:
                        raise ConnectionError(f"{exc}; the server said: {last[0][:300]}"
                                              ) from exc
                    raise
        from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

        headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
        async with create_mcp_http_client(headers=headers) as http:  # closed even on failure
            async with Client(streamable_http_client(spec["url"], http_client=http)) as client:
                return await ask(client)

    def in_new_loop():
        return asyncio.run(asyncio.wait_for(session(), TIMEOUT_S))

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return in_new_loop()
        # Called from code on a running loop (a notebook's kernel): run beside it.
        with ThreadPoolExecutor(1, thread_name_prefix="mcp-client") as pool:
            return pool.submit(in_new_loop).result()
    except TimeoutError:
        raise TimeoutError(f"MCP server {spec['name']!r}: no answer in {TIMEOUT_S:.0f} s"
                           ) from None
    except BaseExceptionGroup as group:  # anyio task groups wrap the first real error
        first = group.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise ConnectionError(f"MCP server {spec['name']!r}: {first}") from None


def _stdio(spec: dict[str, Any], folder):
    from mcp.client.stdio import StdioServerParameters

    env = {**os.environ, **{str(k): str(v) for k, v in (spec.get("env") or {}).items()}}
    return StdioServerParameters(command=spec["command"], args=[str(a) for a in
                                                               spec.get("args") or []],
                                 env=env, cwd=str(folder))
