"""The control plane as a param model, shared by the control dashboard and notebooks.

``control`` is a :class:`~workbench.control.local.LocalControl` (inside the serve process)
or a :class:`~workbench.control.devkit.DevKit` (a running workbench over HTTP): both have
the same methods and both check the role on the server. No layout here.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import param

from ..control.alerts import COMMON_FIELDS, KIND_FIELDS, AlertRule

AGENT_COLUMNS = ["id", "name", "backend", "project", "state", "pending_approvals", "cost_usd",
                 "restarts", "last_error", "updated_at"]


class ControlModel(param.Parameterized):
    control = param.Parameter(doc="LocalControl or DevKit")
    selected = param.String(default="", doc="The agent the detail view shows (its id).")
    version = param.Integer(default=0, doc="Moves with every change pushed by the agents.")

    @property
    def role(self) -> str:
        principal = getattr(self.control, "principal", None)
        return principal.role if principal is not None else "unknown"

    def may(self, action: str) -> bool:
        """Whether the role allows ``action`` — for showing buttons only: the server checks
        again whatever is shown."""
        principal = getattr(self.control, "principal", None)
        return principal is None or principal.may(action)

    # -- reading ------------------------------------------------------------------------
    def agents(self) -> list[dict[str, Any]]:
        return self.control.agents()

    def agents_frame(self) -> pd.DataFrame:
        rows = self.agents()
        df = pd.DataFrame(rows, columns=AGENT_COLUMNS) if rows else pd.DataFrame(
            columns=AGENT_COLUMNS)
        return df[AGENT_COLUMNS]

    def detail(self) -> dict[str, Any] | None:
        if not self.selected:
            return None
        try:
            return self.control.agent(self.selected)
        except KeyError:
            return None

    def events(self, detail: dict[str, Any] | None = None) -> pd.DataFrame:
        detail = detail if detail is not None else self.detail()
        cols = ["ts", "kind", "state", "text"]
        if not detail or not detail["events"]:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(detail["events"])[cols]
        df["ts"] = pd.to_datetime(df["ts"])
        return df.iloc[::-1].reset_index(drop=True)  # newest first: page 1 is what happens now

    def state_spans(self, detail: dict[str, Any] | None = None) -> pd.DataFrame:
        """The agent's states over time, ``state``, ``start``, ``end`` (the last one runs to
        now), from its state-change events: the state timeline."""
        cols = ["state", "start", "end"]
        detail = detail if detail is not None else self.detail()
        changes = [(e["ts"], e["data"]["to"]) for e in (detail or {}).get("events") or []
                   if e["kind"] == "state" and isinstance(e.get("data"), dict)]
        if not changes:
            return pd.DataFrame(columns=cols)
        changes.sort()
        starts = pd.to_datetime([ts for ts, _ in changes])
        ends = [*starts[1:], pd.Timestamp.utcnow().tz_localize(None)]
        return pd.DataFrame({"state": [st for _, st in changes], "start": starts,
                             "end": ends})[cols]

    def samples(self, detail: dict[str, Any] | None = None) -> pd.DataFrame:
        detail = detail if detail is not None else self.detail()
        cols = ["ts", "cpu_percent", "rss_mb", "threads"]
        if not detail or not detail.get("samples"):
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(detail["samples"])[cols]
        df["ts"] = pd.to_datetime(df["ts"])
        return df

    def runs(self, detail: dict[str, Any] | None = None) -> pd.DataFrame:
        """The test runs on the agent's project since it was defined."""
        cols = ["started_at", "branch", "status", "tests", "passed", "failed", "errors",
                "run_id"]
        rows = (detail or {}).get("runs") or []
        return pd.DataFrame(rows)[cols] if rows else pd.DataFrame(columns=cols)

    def telemetry(self, detail: dict[str, Any] | None = None) -> pd.DataFrame:
        """The agent's own telemetry: its sessions, tokens and cost."""
        rows = (detail or {}).get("telemetry") or []
        return pd.DataFrame(rows) if rows else pd.DataFrame(
            columns=["agent", "sessions", "input_tokens", "output_tokens", "cost_usd"])

    def approvals(self) -> list[dict[str, Any]]:
        return self.control.approvals("pending")

    AUDIT_COLUMNS = ["ts", "who", "role", "action", "about", "target", "outcome", "client",
                     "params"]

    def audit(self) -> pd.DataFrame:
        """The audit log, newest first; ``about`` names each entry's ``target`` (an id, a
        name or a path) as :meth:`describe_targets` does."""
        cols = self.AUDIT_COLUMNS
        rows = self.control.audit(500)
        if not rows:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(rows)
        df["ts"] = pd.to_datetime(df["ts"])
        df["about"] = self.describe_targets(list(zip(df["action"], df["target"], df["params"],
                                                     strict=True)))
        df["params"] = df["params"].map(lambda p: "" if not p else json.dumps(p)[:300])
        return df[cols]

    # -- names: what a table shows instead of an id (the id stays in its tooltip) ----------
    def agent_names(self) -> dict[str, str]:
        """Each agent's name by its id."""
        return {a["id"]: a["name"] for a in self.agents()}

    def describe_targets(self, entries: list[tuple]) -> list[str]:
        """What each audit entry ``(action, target, params)`` acted on, as a person reads
        it: ``agent checkout-bot (ag-1b2c…)``, ``task “fix the failing test…” (tk-…)``,
        ``approval Bash for checkout-bot (ap-…)``, ``alert “cost per hour over $5” on
        checkout-bot (al-…)``, ``rule “cost per hour over $5”``, ``project web``, ``a new
        task “fix the…”`` (its params say what). Names come from what the workbench holds
        now (only the kinds these entries need are read); an object since deleted keeps
        its kind and id; a path stays as it was."""
        names: dict[str, dict[str, str]] = {}

        def known(kind: str) -> dict[str, str]:
            if kind not in names:
                try:
                    names[kind] = _NAMERS[kind](self)
                except Exception:  # noqa: BLE001  (a name is a courtesy: the id stands)
                    names[kind] = {}
            return names[kind]

        out = []
        for action, target, *extra in entries:
            target = "" if target is None else str(target)
            asked = extra[0] if extra and isinstance(extra[0], dict) else {}
            head, sep, rest = target.partition("/")
            kind = _ID_KINDS.get(head[:3]) if len(head) > 3 else None
            if kind is not None:
                name = known(kind).get(head)
                text = (f"{kind} {name} ({_short(head)})" if name else f"{kind} {head}")
                out.append(text + (f" /{rest}" if sep else ""))
            elif action == "rules" and target and target != "new":
                name = known("rule").get(target)
                out.append(f"rule “{name}”" if name else f"rule {target}")
            elif target == "new" and action in ("task", "rules"):
                body = asked.get("task" if action == "task" else "rule")
                body = body if isinstance(body, dict) else {}
                what = (task_text(body) if action == "task" else body.get("name")) or ""
                out.append("a new " + ("task" if action == "task" else "rule")
                           + (f" “{_clip(str(what))}”" if what else ""))
            elif action == "webhooks" and target:
                out.append(f"webhook {target}")  # (one added: its URL)
            elif action == "add" and target and not target.startswith("/"):
                out.append(f"agent {target}")  # (a definition refused: its name)
            elif action == "pool" and target:
                out.append(f"pool {target}")
            elif action.startswith(("project-", "test-run")) and target:
                out.append(f"project {target}")
            else:
                out.append(target)
        return out

    def config(self, agent_id: str) -> dict[str, Any]:
        return self.control.config(agent_id)

    # -- acting (the server checks the role and audits) -----------------------------------
    def act(self, agent_id: str, action: str) -> dict[str, Any]:
        return self.control.act(agent_id, action)

    def message(self, agent_id: str, text: str) -> dict[str, Any]:
        return self.control.message(agent_id, text)

    def add(self, spec: dict[str, Any], start: bool = False) -> dict[str, Any]:
        agent = self.control.add(spec)
        if start:
            agent = self.control.act(agent["id"], "start")
        self.selected = agent["id"]
        return agent

    def set_config(self, agent_id: str, config: dict[str, Any]) -> dict[str, Any]:
        return self.control.config(agent_id, config)

    def decide(self, approval_id: str, decision: str, message: str = "") -> dict[str, Any]:
        return self.control.decide(approval_id, decision, message)

    # -- the work queue and alerts -------------------------------------------------------
    TASK_COLUMNS = ["id", "what", "state", "priority", "agent", "agent_id", "labels",
                    "project", "attempt", "cost_usd", "failure", "created_at"]
    ALERT_COLUMNS = ["id", "state", "severity", "title", "agent_name", "agent_id",
                     "rule_name", "rule_id", "fired_at", "acked_by", "resolved_by"]

    def tasks(self, agent_id: str | None = None) -> pd.DataFrame:
        """The queue (running and queued first), or one agent's tasks: ``what`` (its
        prompt or command) and ``agent`` (the name of the agent that took it) beside
        their ids."""
        rows = [t for t in self.control.tasks("all", 500)
                if agent_id is None or t["agent_id"] == agent_id]
        if not rows:
            return pd.DataFrame(columns=self.TASK_COLUMNS)
        df = pd.DataFrame(rows)
        df["what"] = [task_text(t) for t in rows]
        names = self.agent_names() if any(t["agent_id"] for t in rows) else {}
        df["agent"] = [names.get(t["agent_id"], t["agent_id"]) if t["agent_id"] else None
                       for t in rows]
        df["labels"] = df["labels"].map(lambda x: ", ".join(x or []))
        df["cost_usd"] = pd.to_numeric(df["cost_usd"], errors="coerce")
        df["created_at"] = pd.to_datetime(df["created_at"])
        return df[self.TASK_COLUMNS]

    def task_spans(self, agent_id: str) -> pd.DataFrame:
        """An agent's tasks over time (``task``, ``state``, ``start``, ``end``, ``what``):
        the second row of its timeline; a running task runs to now."""
        cols = ["task", "state", "start", "end", "what"]
        rows = [t for t in self.control.tasks("all", 500)
                if t["agent_id"] == agent_id and t["started_at"]]
        if not rows:
            return pd.DataFrame(columns=cols)
        now = pd.Timestamp.utcnow().tz_localize(None)
        return pd.DataFrame({
            "task": [t["id"] for t in rows], "state": [t["state"] for t in rows],
            "start": pd.to_datetime([t["started_at"] for t in rows]),
            "end": [pd.Timestamp(t["ended_at"]) if t["ended_at"] else now for t in rows],
            "what": [(t["prompt"] or str(t["command"]))[:80] for t in rows]})[cols]

    def add_task(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.control.add_task(body)

    def task_action(self, task_id: str, action: str, body: dict | None = None) -> dict:
        return self.control.task_action(task_id, action, body)

    def alerts(self, state: str = "open") -> list[dict[str, Any]]:
        return self.control.alerts(None if state == "all" else state, 200)

    def alerts_frame(self, alerts: list[dict[str, Any]]) -> pd.DataFrame:
        if not alerts:
            return pd.DataFrame(columns=self.ALERT_COLUMNS)
        df = pd.DataFrame(alerts).reindex(columns=self.ALERT_COLUMNS)
        df["fired_at"] = pd.to_datetime(df["fired_at"])
        return df

    def alert_action(self, alert_id: str, action: str) -> dict[str, Any]:
        return self.control.alert_action(alert_id, action)

    RULE_COLUMNS = ["rule_id", "name", "kind", "enabled", "agents", "actions", "severity"]
    PREVIEW_COLUMNS = ["at", "agent", "agent_id", "title"]

    def rules(self, rows: list[dict[str, Any]] | None = None) -> pd.DataFrame:
        """The alert rules as a table (``rows``: those :meth:`rule_list` returned)."""
        cols = self.RULE_COLUMNS
        rows = self.control.alert_rules() if rows is None else rows
        if not rows:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(rows)[cols]
        df["actions"] = df["actions"].map(lambda x: ", ".join(x))
        return df

    def rule_list(self) -> list[dict[str, Any]]:
        return self.control.alert_rules()

    def rule(self, rule_id: str) -> dict[str, Any] | None:
        return next((r for r in self.control.alert_rules() if r["rule_id"] == rule_id), None)

    @staticmethod
    def rule_class() -> type[param.Parameterized]:
        """The param class a rule's fields come from (a form is built from it)."""
        return AlertRule

    @staticmethod
    def rule_fields(kind: str) -> tuple[str, ...]:
        """The fields a rule of ``kind`` reads, those of every rule first."""
        return COMMON_FIELDS + KIND_FIELDS.get(kind, ())

    @staticmethod
    def new_rule() -> dict[str, Any]:
        """A rule's fields at their defaults (no name or id yet)."""
        rule = AlertRule()
        return {k: getattr(rule, k) for k in AlertRule.param if k != "name"}

    def save_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Create or replace (same ``rule_id``) a rule: admins; the server checks."""
        return self.control.put_rule(rule)

    def delete_rule(self, rule_id: str) -> str:
        self.control.delete_rule(rule_id)
        return rule_id

    def enable_rule(self, rule_id: str, enabled: bool) -> dict[str, Any]:
        rule = self.rule(rule_id)
        if rule is None:
            raise KeyError(f"no alert rule {rule_id!r}")
        return self.control.put_rule({**rule, "enabled": enabled})

    def preview_rule(self, rule: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
        """What ``rule`` would have fired on in the last day: the firings (``at``,
        ``agent``, ``agent_id``, ``title``, newest first) and the preview's summary (``count``,
        ``agents``, ``since``, ``note``)."""
        result = self.control.preview_rule(rule)
        rows = result.get("fired") or []
        frame = (pd.DataFrame(rows).reindex(columns=self.PREVIEW_COLUMNS) if rows
                 else pd.DataFrame(columns=self.PREVIEW_COLUMNS))
        if len(frame):
            frame["at"] = pd.to_datetime(frame["at"])
        return frame, {k: v for k, v in result.items() if k != "fired"}

    def impact(self, agent_id: str) -> pd.DataFrame:
        """The tests an agent's sessions broke and fixed."""
        cols = ["effect", "test_id", "run_id", "tool", "at", "why"]
        found = self.control.impact(agent_id)
        rows = [{"effect": effect, "test_id": x["test_id"], "run_id": x["run_id"],
                 "tool": x["tool_call"]["tool"], "at": x["tool_call"]["ts"][:19],
                 "why": "; ".join(x["reasons"])}
                for effect, key in (("broke", "broke"), ("fixed", "fixed"))
                for x in found[key]]
        return pd.DataFrame(rows, columns=cols)

    def changed(self) -> None:
        """Something changed (a pushed update): views that depend on ``version`` redraw."""
        self.version += 1


def task_text(task: dict[str, Any]) -> str:
    """A task as people name it: its prompt, or its command."""
    prompt, command = task.get("prompt"), task.get("command")
    if isinstance(prompt, str) and prompt:
        return prompt
    if isinstance(command, list):
        return " ".join(str(part) for part in command)
    return "" if command is None else str(command)


def _short(object_id: str) -> str:
    """An id cut to its kind and four characters (``ag-1b2c…``): the whole one is in the
    tooltip."""
    return object_id if len(object_id) <= 8 else object_id[:7] + "…"


def _clip(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[:size - 1] + "…"


#: The workbench's own ids say what they are by their prefix.
_ID_KINDS = {"ag-": "agent", "tk-": "task", "ap-": "approval", "al-": "alert",
             "wh-": "webhook"}


def _approvals(model: ControlModel) -> dict[str, str]:
    agents = model.agent_names()
    return {a["id"]: f"{a['tool']} for {agents.get(a['agent_id'], a['agent_id'])}"
            for a in model.control.approvals("all")}


#: How :meth:`ControlModel.describe_targets` names each kind of object, by its id.
_NAMERS = {
    "agent": lambda m: m.agent_names(),
    "task": lambda m: {t["id"]: f"“{_clip(task_text(t))}”"
                       for t in m.control.tasks("all", 500)},
    "approval": _approvals,
    "alert": lambda m: {a["id"]: f"“{a['rule_name']}” on {a.get('agent_name') or '?'}"
                        for a in m.control.alerts(None, 500)},
    "webhook": lambda m: {w["id"]: w["url"] for w in m.control.webhooks()},
    "rule": lambda m: {r["rule_id"]: r["name"] for r in m.control.alert_rules()},
}
