"""The control plane's HTTP and WebSocket API (the Happy-DevKit shape): agents, approvals,
the audit log. Each route's role, body and audit are declared in routes.py and checked
before a handler runs; each action checks its role again and writes its own audit entry
(refusals too), so the websocket and the dashboards are held to the same rules."""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado.concurrent import Future
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError

from ..control.access import Forbidden
from ..control.approvals import approval_json
from ..control.local import LocalControl
from .bodies import BodyError, parse_json, validated
from .plugin_base import APIHandler, DeclaredSocket
from .state import get_supervisor

log = logging.getLogger("workbench.server")

ACTIONS = ("start", "stop", "pause", "resume", "restart", "interrupt")


class ControlHandler(APIHandler):
    def control(self) -> LocalControl:
        return LocalControl(get_supervisor(), self.principal)

    async def run(self, fn, *args: Any) -> Any:
        try:
            return await super().run(fn, *args)
        except Forbidden as err:
            self.fail(403, str(err))
        return None


class AgentsHandler(ControlHandler):
    """``GET /api/agents``; ``POST /api/agents`` with a definition (201)."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "agents": self.control().agents()})

    async def post(self) -> None:
        def work() -> dict:
            agent = self.control().add(self.payload())
            self.set_status(201)
            return {"ok": True, "agent": agent}

        await self.answer(work)


class AgentHandler(ControlHandler):
    """``GET /api/agents/{id}``: the agent, its newest events and samples, and its pending
    approvals."""

    async def get(self, agent_id: str) -> None:
        await self.answer(lambda: {"ok": True, **self.control().agent(agent_id,
                                                                      self.q["limit"])})


class AgentActionHandler(ControlHandler):
    """``POST /api/agents/{id}/start|stop|pause|resume|restart|interrupt|message``."""

    async def post(self, agent_id: str, action: str) -> None:
        def work() -> dict:
            control = self.control()
            if action == "message":
                return {"ok": True, "agent": control.message(agent_id,
                                                             self.payload()["text"])}
            self.payload()  # (empty)
            return {"ok": True, "agent": control.act(agent_id, action)}

        await self.answer(work)


class AgentConfigHandler(ControlHandler):
    """``GET|PUT /api/agents/{id}/config``: the backend's configuration, validated against
    its parameter schema (400 names the field)."""

    async def get(self, agent_id: str) -> None:
        await self.answer(lambda: {"ok": True, **self.control().config(agent_id)})

    async def put(self, agent_id: str) -> None:
        await self.answer(lambda: {"ok": True, **self.control().config(agent_id,
                                                                       self.payload())})


class AgentPartHandler(ControlHandler):
    """``PUT /api/agents/{id}/policy`` (admins) or ``.../limits`` (operators)."""

    async def put(self, agent_id: str, part: str) -> None:
        await self.answer(lambda: {"ok": True, **self.control().set_part(
            agent_id, part, self.payload())})


class ApprovalsHandler(ControlHandler):
    """``GET /api/approvals?state=pending`` (the inbox; other states from the store)."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "approvals": self.control().approvals(
            self.q["state"], self.q["limit"])})


class ApprovalHandler(ControlHandler):
    """``POST /api/approvals/{id}`` with ``{"decision": "allow"|"allow_session"|"deny",
    "message": …}``."""

    async def post(self, approval_id: str) -> None:
        def work() -> dict:
            body = self.payload()
            return {"ok": True, "approval": self.control().decide(
                approval_id, body["decision"], body.get("message") or "")}

        await self.answer(work)


class AuditHandler(ControlHandler):
    """``GET /api/audit?limit=``: admins only."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "audit": self.control().audit(
            self.q["limit"])})


class ClaudeHookHandler(ControlHandler):
    """``POST /api/hooks/claude-code``: Claude Code's HTTP hooks for sessions the workbench
    did not start. A ``PreToolUse`` or ``PermissionRequest`` lands in the approvals inbox and
    the answer is held until it is decided (by a rule at once, or by a person); other
    events are recorded on the session's agent. Point the hooks' ``timeout`` above the time
    a person needs to answer."""

    async def post(self) -> None:
        loop = IOLoop.current()
        decided: Future = Future()
        self._decided = decided

        def answer(decision: str, message: str) -> None:
            loop.add_callback(lambda: decided.done() or decided.set_result((decision,
                                                                            message)))

        def work() -> dict:
            body = self.payload()
            self._hook = (body.get("hook_event_name"), self.control().hook_request(body, answer))
            return {}

        if await self.run(work) is None:
            return
        event, self._approval = self._hook
        if self._approval is None:
            self.finish({})
            return
        decision, message = await decided
        if self.request.connection.stream is None or self.request.connection.stream.closed():
            return  # the session hung up while it waited
        if event == "PermissionRequest":
            verdict: dict[str, Any] = {"behavior": "deny" if decision == "deny" else "allow"}
            if decision == "deny":
                verdict["message"] = message or "denied in the workbench"
            out = {"hookEventName": event, "decision": verdict}
        else:
            out = {"hookEventName": event,
                   "permissionDecision": "deny" if decision == "deny" else "allow",
                   "permissionDecisionReason": message or f"{decision} in the workbench"}
        self.finish({"hookSpecificOutput": out})

    def on_connection_close(self) -> None:
        approval = getattr(self, "_approval", None)
        if approval:  # the session gave up waiting: nobody can be answered any more
            get_supervisor().inbox.cancel(approval, "the hook's request closed unanswered")
        decided = getattr(self, "_decided", None)
        if decided is not None and not decided.done():
            decided.set_result(("deny", "closed"))


class TasksHandler(ControlHandler):
    """``GET /api/tasks?state=`` (the queue: running and queued first); ``POST /api/tasks``
    with ``{"prompt"|"command", "priority", "labels", "project", "deadline", "budget"}``."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "tasks": self.control().tasks(
            self.q["state"], self.q["limit"])})

    async def post(self) -> None:
        def work() -> dict:
            task = self.control().add_task(self.payload())
            self.set_status(201)
            return {"ok": True, "task": task}

        await self.answer(work)


class TaskHandler(ControlHandler):
    """``GET /api/tasks/{id}``: the task with its session, cost, tokens, tool calls and
    the test runs on its project while it ran."""

    async def get(self, task_id: str) -> None:
        await self.answer(lambda: {"ok": True, "task": self.control().task(task_id)})


class TaskActionHandler(ControlHandler):
    """``POST /api/tasks/{id}/cancel|retry``; ``.../priority`` with ``{"priority": n}``."""

    async def post(self, task_id: str, action: str) -> None:
        def work() -> dict:
            body = self.payload()
            return {"ok": True, "task": self.control().task_action(task_id, action,
                                                                   body or None)}

        await self.answer(work)


class PoolsHandler(ControlHandler):
    """``GET|POST /api/pools``: ``{"pool", "template": agent definition, "max_agents"}`` —
    a queued task no idle agent can take starts a new agent from a fitting pool."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "pools": self.control().pools()})

    async def post(self) -> None:
        def work() -> dict:
            pool = self.control().add_pool(self.payload())
            self.set_status(201)
            return {"ok": True, "pool": pool}

        await self.answer(work)


class AlertRulesHandler(ControlHandler):
    """``GET /api/alert-rules``; ``POST`` a rule (admins; an existing ``rule_id`` is
    replaced)."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "rules": self.control().alert_rules()})

    async def post(self) -> None:
        def work() -> dict:
            rule = self.control().put_rule(self.payload())
            self.set_status(201)
            return {"ok": True, "rule": rule}

        await self.answer(work)


class AlertRuleHandler(ControlHandler):
    """``PUT|DELETE /api/alert-rules/{id}``."""

    async def put(self, rule_id: str) -> None:
        await self.answer(lambda: {"ok": True, "rule": self.control().put_rule(
            {**self.payload(), "rule_id": rule_id})})

    async def delete(self, rule_id: str) -> None:
        await self.answer(lambda: self.control().delete_rule(rule_id) or {"ok": True})


class AlertPreviewHandler(ControlHandler):
    """``POST /api/alert-preview`` with a rule: what it would have fired on in the last
    day. Computes; changes nothing."""

    async def post(self) -> None:
        await self.answer(lambda: {"ok": True,
                                   "preview": self.control().preview_rule(self.payload())})


class AlertsHandler(ControlHandler):
    """``GET /api/alerts?state=open|firing|acknowledged|resolved``, with their evidence."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "alerts": self.control().alerts(
            self.q["state"], self.q["limit"])})


class AlertActionHandler(ControlHandler):
    """``POST /api/alerts/{id}/ack|resolve``, or ``resume|stop`` its agent from it."""

    async def post(self, alert_id: str, action: str) -> None:
        def work() -> dict:
            self.payload()  # (empty)
            return {"ok": True, "alert": self.control().alert_action(alert_id, action)}

        await self.answer(work)


class WebhooksHandler(ControlHandler):
    """``GET|POST /api/webhooks`` (admins): ``{"url", "secret", "events", "format"}``."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "webhooks": self.control().webhooks()})

    async def post(self) -> None:
        def work() -> dict:
            hook = self.control().add_webhook(self.payload())
            self.set_status(201)
            return {"ok": True, "webhook": hook}

        await self.answer(work)


class WebhookHandler(ControlHandler):
    """``DELETE /api/webhooks/{id}``."""

    async def delete(self, webhook_id: str) -> None:
        await self.answer(lambda: self.control().delete_webhook(webhook_id) or {"ok": True})


class DeliveriesHandler(ControlHandler):
    """``GET /api/webhooks/{id}/deliveries``: every delivery, its attempts and last
    answer, newest first."""

    async def get(self, webhook_id: str) -> None:
        await self.answer(lambda: {"ok": True, "deliveries": self.control().deliveries(
            webhook_id, self.q["limit"])})


class CulpritsHandler(ControlHandler):
    """``GET /api/runs/{id}/culprits``: each new failure with the agent sessions most likely
    to have caused it, best first, and the tool call and diff that are the evidence."""

    async def get(self, run_id: str) -> None:
        await self.answer(lambda: {"ok": True, **self.control().culprits(run_id)})


class AgentImpactHandler(ControlHandler):
    """``GET /api/agents/{id}/impact``: the tests its sessions broke and fixed."""

    async def get(self, agent_id: str) -> None:
        await self.answer(lambda: {"ok": True, **self.control().impact(agent_id)})


class AgentsSocket(DeclaredSocket):
    """``WS /ws/agents``: a snapshot, then an ``agent_update`` for every change of an agent
    (and a ``task_update`` / ``alert_update`` for every task and alert); actions may
    be sent as ``{"action", "agent_id", ...}`` (role-checked like the routes)."""

    def open(self) -> None:
        self.who = self.principal
        loop = IOLoop.current()
        self._unsubscribe = get_supervisor().on_change(
            lambda update: loop.add_callback(self._send, {"type": "agent_update",
                                                          "agent": update}))
        self._unsubscribe_work = get_supervisor().on_work(
            lambda kind, item: loop.add_callback(self._send, {"type": f"{kind}_update",
                                                              kind: item}))
        self._send({"type": "snapshot", "agents": get_supervisor().list(),
                    "approvals": [approval_json(r) for r in get_supervisor().inbox.pending()]})

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.write_message(json.dumps(message, default=str))
        except WebSocketClosedError:
            pass

    async def on_message(self, raw: str | bytes) -> None:
        try:
            where = "/ws/agents message"
            data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
            msg = validated(self.route.body, parse_json(data, where), where)
            action = msg["action"]
            control = LocalControl(get_supervisor(), self.who)

            def work() -> Any:
                if action == "approve":
                    return control.decide(str(msg.get("approval_id")),
                                          str(msg.get("decision")), msg.get("message") or "")
                if action == "message":
                    return control.message(str(msg.get("agent_id")), msg.get("text"))
                return control.act(str(msg.get("agent_id")), action)

            result = await IOLoop.current().run_in_executor(None, work)
            self._send({"type": "result", "ok": True, "result": result})
        except (BodyError, ValueError, KeyError, PermissionError) as err:
            self._send({"type": "result", "ok": False, "error": str(err.args[0] if err.args
                                                                      else err)})

    def on_close(self) -> None:
        for name in ("_unsubscribe", "_unsubscribe_work"):
            unsubscribe = getattr(self, name, None)
            if unsubscribe:
                unsubscribe()


