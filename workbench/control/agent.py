"""One agent: its definition, where it is, and what its backend calls while it runs (state
changes, events, permission requests, session and cost). The supervisor owns the agents;
a backend sees only this."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psutil

from .. import config
from ..analysis import units
from ..config import utcnow

#: The backend name of agents the workbench did not start (Claude Code sessions that send
#: their permission requests through HTTP hooks).
EXTERNAL = "external"


class Agent:
    """One agent: its definition, where it is, and its backend while it runs."""

    def __init__(self, sup: Any, row: dict[str, Any]) -> None:
        # (``sup``: the supervisor.Supervisor that owns it; ``backend``: a backends.Backend
        # while it runs. Neither is imported here: the agent sits below both.)
        self.sup = sup
        self.id: str = row["agent_id"]
        self.spec: dict[str, Any] = row["spec"]
        self.state: str = row.get("state") or "idle"
        self.pid: int | None = row.get("pid")
        self.pid_started: float | None = row.get("pid_started")
        self.session_id: str | None = row.get("session_id")
        self.last_error: str | None = row.get("last_error")
        self.exit_code: int | None = row.get("exit_code")
        self.cost_usd: float = row.get("cost_usd") or 0.0
        self.restarts: int = row.get("restarts") or 0
        self.created_at = row.get("created_at") or utcnow()
        self.updated_at = row.get("updated_at") or self.created_at
        self.backend: Any = None
        self.paused = self.state == "paused"
        self.underlying = "running"
        self.prompted = False
        self.started_at: float | None = None
        self.stop_reason: str | None = None
        self.last_event: dict[str, Any] | None = None
        self.sample: dict[str, Any] | None = None
        #: The time of its last stored event (each next one is later: see Supervisor.stamps).
        self.last_at: datetime | None = None
        self._procs: dict[int, psutil.Process] = {}
        self.lock = threading.RLock()
        #: The task it works on (see tasks.py), and that task's command for a process agent.
        self.task_id: str | None = None
        self.run_command: str | list[str] | None = None
        #: Started elsewhere, known through its hooks: answered, never steered.
        self.external = self.spec["backend"] == EXTERNAL

    # -- what backends call -------------------------------------------------------------
    def set_state(self, state: str, error: str | None = None) -> None:
        with self.lock:
            if state in ("running", "idle", "waiting-for-approval") and self.backend is None \
                    and not self.external:
                return  # the process already ended: its exit decided the state
            if state in ("running", "idle"):
                self.underlying = state  # what a resume returns to (a turn may end paused)
            if state in ("running", "idle") and self.paused:
                state = "paused"
            if state in ("running", "idle") and self.sup.inbox.pending(self.id):
                state = "waiting-for-approval"
            if state == self.state and error is None:
                return
            before, self.state = self.state, state
            if error is not None:
                self.last_error = error
            self.updated_at = utcnow()
        self.sup.save(self)
        self.emit("state", f"{before} → {state}" + (f": {error}" if error else ""),
                  {"from": before, "to": state, "error": error})
        self.sup.webhooks.publish("agent.state", self.id, {
            "name": self.spec["name"], "from": before, "to": state, "error": error,
            "title": f"{self.spec['name']}: {before} → {state}" + (f" ({error})" if error
                                                                    else "")})

    def emit(self, kind: str, text: str, data: dict[str, Any] | None = None) -> None:
        self.last_event = {"kind": kind, "text": text[:300], "at": utcnow().isoformat()}
        self.sup.event(self, kind, text, data)

    def emit_logs(self, lines: list[str], data: dict[str, Any]) -> None:
        """Lines of output read together: ``log`` events, stored as one batch."""
        if lines:
            self.last_event = {"kind": "log", "text": lines[-1][:300],
                               "at": utcnow().isoformat()}
            self.sup.log_events(self, lines, data)

    def ask(self, tool: str, tool_input: Any, answer: Callable[[str, str], None],
            reason: str | None = None) -> str:
        """File a permission request; ``answer(decision, message)`` is called once it is
        decided (at once when a rule decides). Returns the approval id."""
        def answered(decision: str, message: str) -> None:
            answer(decision, message)
            self.emit("approval", f"{tool}: {decision}" + (f" ({message})" if message else ""),
                      {"tool": tool, "decision": decision, "message": message})
            if not self.sup.inbox.pending(self.id) and self.state == "waiting-for-approval":
                self.set_state("running")

        approval_id = self.sup.inbox.ask(self, tool, tool_input, answered, reason)
        if any(r["approval_id"] == approval_id for r in self.sup.inbox.pending(self.id)):
            self.sup.webhooks.publish("approval.requested", self.id, {
                "approval_id": approval_id, "tool": tool, "title": f"{self.spec['name']} "
                f"asks to use {tool}", "input": tool_input})
        if self.sup.inbox.pending(self.id) and self.state in ("running", "idle"):
            self.set_state("waiting-for-approval")
        return approval_id

    def set_session(self, session_id: str | None) -> None:
        if session_id and session_id != self.session_id:
            self.session_id = session_id
            self.sup.save(self)

    def set_cost(self, cost: float | None) -> None:
        if cost is not None:
            self.cost_usd = cost
            self.sup.save(self)
            cap = self.spec["limits"].get("max_cost_usd")
            if cap is not None and cost > cap:
                self.sup.stop(self, f"cost limit: {units.money(cost)} > {units.money(cap)}")

    def telemetry_env(self, service: str) -> dict[str, str]:
        """OpenTelemetry variables so that the agent's own telemetry lands in this
        workbench by itself, named after the agent."""
        url = self.sup.server_url
        if not url:
            return {}
        env = {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_METRIC_EXPORT_INTERVAL": "2000", "OTEL_LOGS_EXPORT_INTERVAL": "1000",
            "OTEL_SERVICE_NAME": service,
            "OTEL_RESOURCE_ATTRIBUTES": f"gen_ai.agent.name={_attr(self.spec['name'])},"
                                        f"observatory.agent.id={self.id}",
        }
        tls = config.tls()
        if tls and url.startswith("https:"):  # (a private CA: the exporters must trust it)
            env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = tls[0]
            env["NODE_EXTRA_CA_CERTS"] = tls[0]
        if self.sup.telemetry_token:
            env["OTEL_EXPORTER_OTLP_HEADERS"] = (
                f"Authorization=Bearer {self.sup.telemetry_token}")
        return env

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.spec["name"], "backend": self.spec["backend"],
            "project": self.spec.get("project"), "state": self.state,
            "pid": self.pid if self.backend is not None else None,
            "session_id": self.session_id, "last_error": self.last_error,
            "exit_code": self.exit_code, "cost_usd": round(self.cost_usd, 6),
            "restarts": self.restarts, "labels": self.spec["labels"],
            "task_id": self.task_id, "pool": self.spec.get("pool"),
            # (it runs on a PTY: the console can attach while it runs)
            "pty": bool((self.spec.get("config") or {}).get("pty")),
            "pending_approvals": len(self.sup.inbox.pending(self.id)),
            "last_event": self.last_event, "sample": self.sample,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
        }


def _attr(value: str) -> str:
    # OTEL_RESOURCE_ATTRIBUTES is comma/equals separated: percent-encode those.
    return value.replace("%", "%25").replace(",", "%2C").replace("=", "%3D")

