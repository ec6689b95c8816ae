"""Consoles over HTTP: ``WS /ws/console/{name}`` attaches a browser (or the TUI) to a
terminal; the REST routes open and close project shells, list consoles and recordings,
and search the shell history.

The websocket is the console's only way in, and the usual hole of browser terminals is
cross-site WebSocket hijacking (any page the user visits opens a shell on a loopback
port). So, besides the route table's check (Host, ``Origin`` against the served host,
token or login cookie, role): a browser's upgrade that rides on the login cookie must
carry an ``Origin`` and the anti-forgery token (``?xsrf=``, from ``GET /api/session``),
which no other site can read. Then the console itself is checked: a shell needs an admin,
an agent's terminal a viewer to watch and an operator to type.

Frames: output is binary (the terminal's bytes); the client sends keys as binary frames and
JSON text frames for ``{"type": "resize", "cols", "rows"}`` and ``{"type": "ack",
"bytes"}`` (what its terminal has drawn: the flow control, console/terminal.py). Control
messages to the client are JSON text frames: ``attached``, ``size``, ``exit``, ``closing``,
``refused``.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError

from ..config import allows
from ..console.terminal import Client, Terminal
from ..control import access
from ..control.consoles import CONSOLES, ConsoleError
from . import audit, auth
from .plugin_base import APIHandler, DeclaredSocket
from .state import get_store


class ConsoleHandler(APIHandler):
    async def run(self, fn, *args: Any) -> Any:
        try:
            return await super().run(fn, *args)
        except ConsoleError as err:
            self.fail(err.status, str(err))
        return None


class ConsolesHandler(ConsoleHandler):
    """``GET /api/console``: the consoles the caller may see (and, for admins, the
    recordings)."""

    async def get(self) -> None:
        def work() -> dict:
            found = {"ok": True, "consoles": CONSOLES.list(self.principal)}
            if self.principal.may("console-replay"):
                found["recordings"] = CONSOLES.recordings(get_store())
            return found

        await self.answer(work)


class ShellsHandler(ConsoleHandler):
    """``POST /api/console/shells`` with ``{"project", "cols", "rows"}``: a new shell in
    the project's folder (201)."""

    async def post(self) -> None:
        def work() -> dict:
            body = self.payload()
            terminal = CONSOLES.open_shell(get_store(), self.principal, body["project"],
                                           size=(body.get("rows") or 24,
                                                 body.get("cols") or 80))
            self.set_status(201)
            return {"ok": True, "console": terminal.info()}

        await self.answer(work)


class ConsoleHandlerByName(ConsoleHandler):
    """``DELETE /api/console/{name}``: end a shell (its whole session)."""

    async def delete(self, name: str) -> None:
        def work() -> dict:
            CONSOLES.close(get_store(), self.principal, name)
            return {"ok": True, "console": name}

        await self.answer(work)


class HistoryHandler(ConsoleHandler):
    """``GET /api/console/history?q=&project=&limit=``: the caller's own commands."""

    async def get(self) -> None:
        def work() -> dict:
            frame = get_store().query("console_history", who=self.principal.who,
                                      project=self.q.get("project"), q=self.q.get("q"),
                                      limit=self.q.get("limit"))
            return {"ok": True, "history": [
                {"command": r.command, "project": r.project, "uses": int(r.uses),
                 "last": r.ts.isoformat() if r.ts is not None else None}
                for r in frame.itertuples()]}

        await self.answer(work)


class CompleteHandler(ConsoleHandler):
    """``GET /api/console/complete?project=&prefix=``: completions for a shell's line."""

    async def get(self) -> None:
        def work() -> dict:
            return {"ok": True, "completions": CONSOLES.suggestions(
                get_store(), self.principal, self.q.get("project") or "",
                self.q.get("prefix") or "")}

        await self.answer(work)


class RecordingHandler(ConsoleHandler):
    """``GET /api/console/recordings/{name}``: a shell's recording (asciicast v2)."""

    async def get(self, name: str) -> None:
        def work() -> bytes:
            path = CONSOLES.recording(get_store(), name)
            access.record(get_store(), self.principal, "console-replay", name)
            return path.read_bytes()

        data = await self.run(work)
        if data is not None:
            self.set_header("Content-Type", "application/x-asciicast")
            self.finish(data)


class ConsoleSocket(DeclaredSocket):
    """``WS /ws/console/{name}?mode=read|write&cols=&rows=&xsrf=``."""

    def refusal(self, name: str) -> tuple[int, str] | None:
        req = self.request
        cookie = auth.login_user(self) and not req.headers.get("Authorization")
        if cookie:
            # (a browser always sends Origin on a websocket; a cookie without one is not
            # a page of this workbench)
            if not req.headers.get("Origin"):
                return self._refused(403, "a console opened with the login cookie needs an "
                                          "Origin header")
            given = (self.q.get("xsrf") or "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, auth.xsrf_token(self).encode()):
                return self._refused(403, "a console opened with the login cookie needs "
                                          "?xsrf= (GET /api/session gives it)")
        try:
            self.terminal: Terminal = CONSOLES.get(name)
        except ConsoleError as err:
            return err.status, str(err)
        self.writable = self.q["mode"] == "write"
        asked = [(False, "watching it")] + ([(True, "typing")] if self.writable else [])
        for typing, what in asked:
            need = CONSOLES.role_to(self.terminal, typing)
            if not allows(self.principal.role, need):
                return self._refused(403, f"console {name}: {what} needs the {need} role; "
                                          f"{self.principal.who} is {self.principal.role}")
        return None

    def _refused(self, status: int, reason: str) -> tuple[int, str]:
        audit.refused(self, (status, reason))
        return status, reason

    def open(self, name: str) -> None:
        loop = IOLoop.current()
        size = (self.q["cols"], self.q["rows"])
        self.client = Client(
            self.principal.who, self.writable,
            deliver=lambda data: loop.add_callback(self._send, data, True),
            control=lambda msg: loop.add_callback(self._send, json.dumps(msg), False),
            cols=size[0], rows=size[1])
        CONSOLES.attach(self.terminal, self.client)
        access.record(get_store(), self.principal, "console-watch", self.terminal.name,
                      {"mode": "write" if self.writable else "read",
                       "kind": self.terminal.kind, "target": self.terminal.target})

    def _send(self, data: bytes | str, binary: bool) -> None:
        try:
            self.write_message(data, binary=binary)
        except WebSocketClosedError:
            pass

    def on_message(self, raw: str | bytes) -> None:
        from ..console import io

        if isinstance(raw, bytes):
            if not self.writable:
                self._send(json.dumps({"type": "refused", "why": "this console is attached "
                                       "read-only"}), False)
                return
            if self.terminal.first_keys_of(self.principal.who):
                access.record(get_store(), self.principal, "console-type", self.terminal.name,
                              {"kind": self.terminal.kind, "target": self.terminal.target})
            io.call(self.terminal.write, self.client, raw)
            return
        try:
            msg = json.loads(raw)
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "ack":
                io.call(self.terminal.ack, self.client, int(msg.get("bytes", 0)))
            elif kind == "resize":
                io.call(self.terminal.resize, self.client, int(msg["cols"]), int(msg["rows"]))
            else:
                raise ValueError(f"unknown message type {kind!r}")
        except (ValueError, KeyError, TypeError) as err:
            self._send(json.dumps({"type": "error", "error": f"/ws/console message: {err}"}),
                       False)

    def on_close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            CONSOLES.detach(self.terminal, client)
