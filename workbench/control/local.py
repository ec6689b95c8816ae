"""The control operations, role-checked and audited, as the API, the dashboards and
notebooks in the serve process call them: :class:`LocalControl` (the supervisor of this
process) has the same methods as :class:`~workbench.control.devkit.DevKit` (another
process's, over HTTP), so a model takes either."""

from __future__ import annotations

import json
from typing import Any

from ..analysis.culprits import agent_impact, culprits
from . import access
from .access import Principal
from .alerts import STORE
from .approvals import approval_json
from .tasks import RESERVED, reserved


def records(df) -> list[dict[str, Any]]:
    """Rows of a control query as JSON-ready dicts (JSON columns decoded)."""
    out = json.loads(df.to_json(orient="records", date_format="iso"))
    for row in out:
        for key in ("data", "input", "params", "evidence", "actions"):
            if isinstance(row.get(key), str):
                try:
                    row[key] = json.loads(row[key])
                except ValueError:
                    pass
    return out


class LocalControl:
    """One principal's view of this process's supervisor."""

    def __init__(self, supervisor, principal: Principal) -> None:
        self.sup = supervisor
        self.store = supervisor.store
        self.principal = principal

    def _allow(self, action: str, target: str = "") -> None:
        access.authorize(self.store, self.principal, action, target)

    def agents(self) -> list[dict]:
        self._allow("read")
        return self.sup.list()

    def agent(self, agent_id: str, limit: int = 200) -> dict:
        self._allow("read")
        agent = self.sup.get(agent_id)
        self.store.settle()  # the events the agent's state already reflects
        return {"agent": agent.as_dict(),
                **self._context(agent),
                "events": records(self.store.query("agent_events", agent_id=agent_id,
                                                   limit=limit)),
                "samples": records(self.store.query("agent_samples", agent_id=agent_id,
                                                    limit=300)),
                "approvals": [approval_json(r) for r in self.sup.inbox.pending(agent_id)]}

    def _context(self, agent) -> dict[str, Any]:
        """What the workbench knows around the agent: the test runs on its project since it
        was defined, and its own telemetry (sessions, tokens, cost, under its name)."""
        since = agent.created_at
        project = agent.spec.get("project")
        runs = (self.store.query("runs", project=project, since=since, limit=20)
                if project else None)
        telemetry = self.store.query("agent_totals", agent=agent.spec["name"])
        return {"runs": records(runs) if runs is not None else [],
                "telemetry": records(telemetry)}

    def add(self, spec: Any) -> dict:
        name = str(spec.get("name", ""))[:120] if isinstance(spec, dict) else ""
        self._allow("add", name)
        if isinstance(spec, dict) and spec.get("policy"):
            # A policy decides what the agent may do unasked: the same role as changing it
            # later (PUT .../policy), or an operator could define an agent that allows all.
            self._allow("policy", name)
        try:
            if isinstance(spec, dict) and reserved(spec.get("labels")):
                raise ValueError(f"labels: {reserved(spec['labels'])}: labels starting "
                                 f"{RESERVED} are a workflow run's own")
            agent = self.sup.define(spec)
        except ValueError as err:
            access.record(self.store, self.principal, "add", name, {"spec": spec},
                          f"failed: {err}")
            raise
        access.record(self.store, self.principal, "add", agent.id, {"spec": agent.spec})
        return agent.as_dict()

    def act(self, agent_id: str, action: str) -> dict:
        return self.sup.act(self.principal, agent_id, action)

    def message(self, agent_id: str, text: str) -> dict:
        return self.sup.act(self.principal, agent_id, "message", {"text": text})

    def config(self, agent_id: str, config: dict[str, Any] | None = None) -> dict:
        if config is None:
            self._allow("read")
            from .backends import BACKENDS

            agent = self.sup.get(agent_id)
            if agent.external:
                return {"config": {}, "schema": {}}
            schema = BACKENDS[agent.spec["backend"]].Config.param.schema()
            schema.pop("name", None)
            return {"config": agent.spec["config"], "schema": schema}
        result = self.sup.act(self.principal, agent_id, "config", {"config": config})
        return {"config": result["config"], "applied_live": result["applied_live"]}

    def set_part(self, agent_id: str, part: str, value: Any) -> dict:
        """A new ``policy`` (admins) or ``limits`` (operators) for an agent."""
        result = self.sup.act(self.principal, agent_id, part, {part: value})
        return {part: result[part]}

    def approvals(self, state: str = "pending", limit: int = 200) -> list[dict]:
        self._allow("read")
        if state == "pending":
            return [approval_json(r) for r in self.sup.inbox.pending()]
        self.store.settle()
        df = self.store.query("approvals", state=None if state == "all" else state,
                              limit=limit)
        return [{**r, "id": r["approval_id"]} for r in records(df)]

    def hook_request(self, body: dict[str, Any], answer) -> str | None:
        """A Claude Code hook's request (``PreToolUse`` / ``PermissionRequest``): filed in
        the inbox under the session's agent; ``answer(decision, message)`` when decided.
        Other hook events are recorded on the agent; None then."""
        self._allow("hook")
        session, event = body.get("session_id"), body.get("hook_event_name")
        if not (isinstance(session, str) and session and isinstance(event, str) and event):
            raise ValueError("a Claude Code hook's body needs session_id and hook_event_name")
        cwd = body.get("cwd") if isinstance(body.get("cwd"), str) else None
        tool = str(body.get("tool_name") or "")
        if event in ("PreToolUse", "PermissionRequest") and not tool:
            raise ValueError(f"a {event} hook's body needs tool_name")
        agent = self.sup.external_agent(session, cwd)
        if event not in ("PreToolUse", "PermissionRequest"):
            agent.emit("hook", f"{event}{': ' + tool if tool else ''}",
                       {k: body.get(k) for k in ("hook_event_name", "tool_name")})
            return None
        return agent.ask(tool, body.get("tool_input") or {}, answer,
                         reason=f"{event} hook" + (f" ({body.get('permission_mode')} mode)"
                                                   if body.get("permission_mode") else ""))

    def decide(self, approval_id: str, decision: str, message: str = "") -> dict:
        return self.sup.decide(self.principal, approval_id, decision, message)

    def audit(self, limit: int = 200) -> list[dict]:
        self._allow("audit")
        self.store.settle()
        return records(self.store.query("audit_log", limit=limit))

    # -- the work queue -----------------------------------------------------------------
    def _audited(self, action: str, target: str, params: dict[str, Any], fn):
        """Role-check ``action``, run ``fn``, and audit it (a failure too)."""
        self._allow(action, target)
        try:
            result = fn()
        except (ValueError, KeyError) as err:
            access.record(self.store, self.principal, action, target, params,
                          f"failed: {err.args[0] if err.args else err}")
            raise
        access.record(self.store, self.principal, action, target, params)
        return result

    def tasks(self, state: str | None = None, limit: int = 500) -> list[dict]:
        self._allow("read")
        return self.sup.tasks.list(state, limit)

    def task(self, task_id: str) -> dict:
        self._allow("read")
        return self.sup.tasks.detail(task_id)

    def add_task(self, body: Any) -> dict:
        return self._audited("task", "new", {"task": body},
                             lambda: self.sup.tasks.add(body, self.principal.who))

    def task_action(self, task_id: str, action: str, body: dict[str, Any] | None = None):
        queue = self.sup.tasks
        fns = {"cancel": lambda: queue.cancel(task_id), "retry": lambda: queue.retry(task_id),
               "priority": lambda: queue.set_priority(task_id, (body or {}).get("priority"))}
        if action not in fns:
            raise ValueError(f"unknown task action {action!r}")
        return self._audited("task", task_id, {"action": action, **(body or {})}, fns[action])

    def pools(self) -> list[dict]:
        self._allow("read")
        return list(self.sup.tasks.pools.values())

    def add_pool(self, body: Any) -> dict:
        return self._audited("pool", str((body or {}).get("pool", ""))[:40]
                             if isinstance(body, dict) else "", {"pool": body},
                             lambda: self.sup.tasks.add_pool(body))

    # -- alerts -------------------------------------------------------------------------
    def alert_rules(self) -> list[dict]:
        self._allow("read")
        return list(self.sup.alerts.rules.values())

    def put_rule(self, body: Any) -> dict:
        return self._audited("rules", str((body or {}).get("rule_id", "new"))
                             if isinstance(body, dict) else "new", {"rule": body},
                             lambda: self.sup.alerts.put_rule(body))

    def delete_rule(self, rule_id: str) -> None:
        self._audited("rules", rule_id, {"delete": True},
                      lambda: self.sup.alerts.delete_rule(rule_id))

    def preview_rule(self, body: Any) -> dict:
        """What a rule would have fired on in the last day (a read: viewers may)."""
        self._allow("read")
        return self.sup.alerts.preview(body)

    def alerts(self, state: str | None = None, limit: int = 200) -> list[dict]:
        self._allow("read")
        self.store.settle()
        out = records(self.store.query("alerts", state=state, limit=limit))
        agents = dict(self.sup.agents)
        return [{**{k: v for k, v in r.items() if k != "alert_id"}, "id": r["alert_id"],
                 "agent_name": a.spec["name"] if (a := agents.get(r["agent_id"])) else
                 "database" if r["agent_id"] == STORE else None,
                 "agent_state": a.state if a else None} for r in out]

    def alert_action(self, alert_id: str, action: str) -> dict:
        """``ack``, ``resolve``, or act on the alert's agent from it: ``resume`` (and
        acknowledge) or ``stop`` (and resolve)."""
        engine, who = self.sup.alerts, self.principal.who
        if action in ("ack", "resolve"):
            fn = engine.ack if action == "ack" else engine.resolve
            return self._audited("alert", alert_id, {"action": action},
                                 lambda: fn(alert_id, who))
        if action not in ("resume", "stop"):
            raise ValueError(f"unknown alert action {action!r}")
        alert = engine.get(alert_id)
        agent = self.sup.act(self.principal, alert["agent_id"], action, {"alert_id": alert_id})
        done = (engine.ack if action == "resume" else engine.resolve)(alert_id, who)
        return {**done, "agent": agent}

    # -- webhooks -----------------------------------------------------------------------
    def webhooks(self) -> list[dict]:
        self._allow("webhooks")
        return self.sup.webhooks.list()

    def add_webhook(self, body: Any) -> dict:
        url = str(body.get("url", ""))[:200] if isinstance(body, dict) else ""
        return self._audited("webhooks", url, {"url": url},
                             lambda: self.sup.webhooks.add(body, self.principal.who))

    def delete_webhook(self, webhook_id: str) -> None:
        self._audited("webhooks", webhook_id, {"delete": True},
                      lambda: self.sup.webhooks.delete(webhook_id))

    def deliveries(self, webhook_id: str, limit: int = 200) -> list[dict]:
        self._allow("webhooks")
        if webhook_id not in self.sup.webhooks.hooks:
            raise KeyError(f"no webhook {webhook_id!r}")
        self.store.settle()
        return records(self.store.query("webhook_deliveries", webhook_id=webhook_id,
                                        limit=limit))

    # -- from failing tests to sessions -------------------------------------------------
    def culprits(self, run_id: str) -> dict:
        self._allow("read")
        self.store.settle()
        return culprits(self.store, run_id)

    def impact(self, agent_id: str) -> dict:
        """Kept per agent until a test run arrives: a run is what decides broke or fixed
        (an open detail view asks on each of the agent's changes)."""
        self._allow("read")
        self.sup.get(agent_id)
        key = (agent_id, self.store.versions.get("tests"))
        cache = self.sup.impact_cache
        if key not in cache:
            self.store.settle()
            if len(cache) > 256:
                cache.clear()
            cache[key] = agent_impact(self.store, agent_id)
        return cache[key]
