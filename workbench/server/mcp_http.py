"""The workbench's MCP server on the served workbench: ``POST /mcp`` (streamable HTTP), with
the same tools as ``observatory mcp`` and the same rules as every API route — known Host
names, no cross-site browser writes, and the token or login whenever one is configured.

The ``mcp`` SDK serves streamable HTTP as an ASGI application; this process serves Tornado.
A handler here passes each request to the SDK's session manager as ASGI messages and sends
back what it answers — stateless, JSON answers (no session to keep between requests, no
stream left open on the server), which every streamable-HTTP client speaks. The session
manager runs once, on this process's event loop, from the first request on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .bodies import BodyError, parse_json
from .plugin_base import APIHandler
from .state import get_store

log = logging.getLogger("workbench.server")

_manager: Any = None
_running: asyncio.Future | None = None
_started: asyncio.Future | None = None


async def _session_manager():
    """The SDK's session manager, running (started on first use; a request that comes
    while it starts waits for it too)."""
    global _manager, _running, _started
    if _running is None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecuritySettings

        from ..mcp_server import build

        server = build(store=get_store())
        # Host and Origin are checked by this process's guard for every route, with the
        # configured names (serve --allow-host), before a request gets here.
        _manager = StreamableHTTPSessionManager(
            app=server._lowlevel_server, json_response=True, stateless=True,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        _started = asyncio.get_running_loop().create_future()
        _running = asyncio.ensure_future(_run(_manager, _started))
    await _started
    return _manager


async def _run(manager, started: asyncio.Future) -> None:
    async with manager.run():
        started.set_result(None)
        await asyncio.Event().wait()  # for the life of the process


class McpHandler(APIHandler):
    """``POST /mcp``: one JSON-RPC message (or batch) in, its answer out."""

    async def post(self) -> None:
        try:
            await self._asgi()
        except BodyError as err:
            self.fail(err.status, str(err))

    def get(self) -> None:
        # A stream of server messages: not offered (stateless), which the protocol answers
        # with 405 — the SDK would hold the request open instead.
        self.set_header("Allow", "POST")
        self.fail(405, "GET /mcp: this server offers no stream of its own (stateless); "
                  "POST a JSON-RPC message")

    def delete(self) -> None:
        self.set_header("Allow", "POST")
        self.fail(405, "DELETE /mcp: there is no session to end (stateless)")

    async def _asgi(self) -> None:
        manager = await _session_manager()
        req = self.request
        host, _, port = req.host.rpartition(":") if ":" in req.host else (req.host, "", "80")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": req.method, "scheme": req.protocol, "path": "/mcp",
            "raw_path": b"/mcp", "root_path": "", "query_string": req.query.encode(),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in req.headers.get_all()],
            "client": (req.remote_ip or "", 0), "server": (host, int(port or 80)),
        }
        body, sent = (self.body() if req.method == "POST" else b""), asyncio.Event()
        if body.strip():
            parse_json(body, "POST /mcp")  # depth, integers, Unicode: as for every route

        async def receive() -> dict[str, Any]:
            nonlocal body
            if body is not None:
                chunk, body = body, None
                return {"type": "http.request", "body": chunk, "more_body": False}
            await sent.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.set_status(message["status"])
                for name, value in message.get("headers", []):
                    self.set_header(name.decode("latin-1"), value.decode("latin-1"))
            elif message["type"] == "http.response.body":
                self.write(message.get("body", b""))
                if message.get("more_body"):
                    await self.flush()
                else:
                    sent.set()

        await manager.handle_request(scope, receive, send)
        if not self._finished:
            self.finish()


