"""The control plane's HTTP and WebSocket API (the Happy-DevKit shape): agents, approvals,
the audit log. Every route passes the one auth check, then the role check of its action;
every action, decision and refusal is in the audit log."""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..control import access
from ..control.access import Forbidden
from ..control.approvals import approval_json
from . import auth, guard
from .plugin_base import APIHandler
from .state import get_store, get_supervisor

log = logging.getLogger("workbench.server")

ACTIONS = ("start", "stop", "pause", "resume", "restart", "interrupt")


def _records(df) -> list[dict[str, Any]]:
    out = json.loads(df.to_json(orient="records", date_format="iso"))
    for row in out:
        for key in ("data", "input", "params"):
            if isinstance(row.get(key), str):
                try:
                    row[key] = json.loads(row[key])
                except ValueError:
                    pass
    return out


class ControlHandler(APIHandler):
    def json_body(self) -> Any:
        raw = self.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as err:
            raise ValueError(f"{self.request.path}: body is not valid JSON: {err}") from None

    def principal(self) -> access.Principal:
        return auth.principal(self)

    def allow(self, action: str, target: str = "") -> access.Principal:
        who = self.principal()
        access.authorize(get_store(), who, action, target)
        return who

    async def run(self, fn, *args: Any) -> Any:
        try:
            return await super().run(fn, *args)
        except Forbidden as err:  # before PermissionError's generic 403, same status
            self.fail(403, str(err))
        return None


class AgentsHandler(ControlHandler):
    """``GET /api/agents``; ``POST /api/agents`` with a definition (201)."""

    async def get(self) -> None:
        def work() -> dict:
            self.allow("read")
            return {"ok": True, "agents": get_supervisor().list()}

        await self.answer(work)

    async def post(self) -> None:
        def work() -> dict:
            spec = self.json_body()
            who = self.allow("add", str(spec.get("name", ""))[:120] if isinstance(
                spec, dict) else "")
            try:
                agent = get_supervisor().define(spec)
            except ValueError as err:
                access.record(get_store(), who, "add", "", {"spec": spec}, f"failed: {err}")
                raise
            access.record(get_store(), who, "add", agent.id, {"spec": agent.spec})
            self.set_status(201)
            return {"ok": True, "agent": agent.as_dict()}

        await self.answer(work)


class AgentHandler(ControlHandler):
    """``GET /api/agents/{id}``: the agent, its newest events and pending approvals."""

    async def get(self, agent_id: str) -> None:
        def work() -> dict:
            self.allow("read")
            sup = get_supervisor()
            agent = sup.get(agent_id)
            get_store().settle()  # the events the agent's state already reflects
            events = get_store().query("agent_events", agent_id=agent_id, limit=_limit(self))
            return {"ok": True, "agent": agent.as_dict(), "events": _records(events),
                    "approvals": [approval_json(r) for r in sup.inbox.pending(agent_id)]}

        await self.answer(work)


class AgentActionHandler(ControlHandler):
    """``POST /api/agents/{id}/start|stop|pause|resume|restart|interrupt|message``."""

    async def post(self, agent_id: str, action: str) -> None:
        def work() -> dict:
            params = self.json_body() if action == "message" else {}
            if not isinstance(params, dict):
                raise ValueError("body must be a JSON object")
            agent = get_supervisor().act(self.principal(), agent_id, action, params)
            return {"ok": True, "agent": agent}

        await self.answer(work)


class AgentConfigHandler(ControlHandler):
    """``GET|PUT /api/agents/{id}/config``: the backend's configuration, validated against
    its parameter schema (400 names the field)."""

    async def get(self, agent_id: str) -> None:
        def work() -> dict:
            self.allow("read")
            agent = get_supervisor().get(agent_id)
            from ..control.supervisor import BACKENDS
            schema = BACKENDS[agent.spec["backend"]].Config.param.schema()
            schema.pop("name", None)
            return {"ok": True, "config": agent.spec["config"], "schema": schema}

        await self.answer(work)

    async def put(self, agent_id: str) -> None:
        def work() -> dict:
            result = get_supervisor().act(self.principal(), agent_id, "config",
                                          {"config": self.json_body()})
            return {"ok": True, "config": result["config"],
                    "applied_live": result["applied_live"]}

        await self.answer(work)


class ApprovalsHandler(ControlHandler):
    """``GET /api/approvals?state=pending`` (the inbox; other states from the store)."""

    async def get(self) -> None:
        def work() -> dict:
            self.allow("read")
            state = self.get_query_argument("state", "pending")
            if state == "pending":
                rows = [approval_json(r) for r in get_supervisor().inbox.pending()]
            else:
                get_store().settle()
                df = get_store().query("approvals", state=None if state == "all" else state,
                                       limit=_limit(self))
                rows = [{**r, "id": r["approval_id"]} for r in _records(df)]
            return {"ok": True, "approvals": rows}

        await self.answer(work)


class ApprovalHandler(ControlHandler):
    """``POST /api/approvals/{id}`` with ``{"decision": "allow"|"allow_session"|"deny",
    "message": …}``."""

    async def post(self, approval_id: str) -> None:
        def work() -> dict:
            body = self.json_body()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            message = body.get("message") or ""
            if not isinstance(message, str):
                raise ValueError("message: must be a string")
            row = get_supervisor().decide(self.principal(), approval_id,
                                          str(body.get("decision")), message)
            return {"ok": True, "approval": row}

        await self.answer(work)


class AuditHandler(ControlHandler):
    """``GET /api/audit?limit=``: admins only."""

    async def get(self) -> None:
        def work() -> dict:
            self.allow("audit")
            get_store().settle()
            return {"ok": True, "audit": _records(get_store().query("audit_log",
                                                                   limit=_limit(self)))}

        await self.answer(work)


def _limit(handler: APIHandler) -> int:
    raw = handler.get_query_argument("limit", "200")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"limit must be a whole number, not {raw[:40]!r}") from None
    if not 1 <= value <= 10_000:
        raise ValueError("limit must be between 1 and 10000")
    return value


class AgentsSocket(WebSocketHandler):
    """``WS /ws/agents``: a snapshot, then an ``agent_update`` for every change; actions may
    be sent as ``{"action", "agent_id", ...}`` (role-checked like the routes)."""

    def set_default_headers(self) -> None:
        for k, v in guard.SECURITY_HEADERS.items():
            self.set_header(k, v)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        denied = auth.check(self)
        if denied:
            self.set_status(denied[0])
            self.finish({"ok": False, "error": denied[1]})
            return
        await super().get(*args, **kwargs)

    def open(self) -> None:
        self.who = auth.principal(self)
        loop = IOLoop.current()
        self._unsubscribe = get_supervisor().on_change(
            lambda update: loop.add_callback(self._send, {"type": "agent_update",
                                                          "agent": update}))
        self._send({"type": "snapshot", "agents": get_supervisor().list(),
                    "approvals": [approval_json(r) for r in get_supervisor().inbox.pending()]})

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.write_message(json.dumps(message, default=str))
        except WebSocketClosedError:
            pass

    async def on_message(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError("a message must be a JSON object")
            action = msg.get("action")
            sup = get_supervisor()

            def work() -> Any:
                if action == "approve":
                    return sup.decide(self.who, str(msg.get("approval_id")),
                                      str(msg.get("decision")), str(msg.get("message") or ""))
                return sup.act(self.who, str(msg.get("agent_id")), str(action),
                               {"text": msg.get("text")} if action == "message" else {})

            result = await IOLoop.current().run_in_executor(None, work)
            self._send({"type": "result", "ok": True, "result": result})
        except (ValueError, KeyError, PermissionError) as err:
            self._send({"type": "result", "ok": False, "error": str(err.args[0] if err.args
                                                                      else err)})

    def on_close(self) -> None:
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe:
            unsubscribe()


CONTROL_ROUTES = [
    (r"/api/agents", AgentsHandler, {}),
    (r"/api/agents/([\w-]+)", AgentHandler, {}),
    (r"/api/agents/([\w-]+)/(start|stop|pause|resume|restart|interrupt|message)",
     AgentActionHandler, {}),
    (r"/api/agents/([\w-]+)/config", AgentConfigHandler, {}),
    (r"/api/approvals", ApprovalsHandler, {}),
    (r"/api/approvals/([\w-]+)", ApprovalHandler, {}),
    (r"/api/audit", AuditHandler, {}),
    (r"/ws/agents", AgentsSocket, {}),
]
