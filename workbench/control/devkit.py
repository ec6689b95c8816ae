"""A client for a workbench's control API (the Happy-DevKit shape) over httpx and
websockets: what the CLI's ``observatory agents`` and notebooks use to drive the agents of
a running workbench, this one or another."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from ..http import http_client


class ControlError(RuntimeError):
    """The server refused: its one-line reason, with the status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class DevKit:
    """``DevKit(url, token)``: agents, approvals and the audit log of one workbench."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._http = http_client(self.url, token, timeout)

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> dict:
        try:
            r = self._http.request(method, path, json=body, params=params or None)
        except httpx.HTTPError as err:
            raise ControlError(0, f"{self.url}{path}: {err}") from None
        try:
            data = r.json()
        except ValueError:
            data = {"error": r.text[:200]}
        if r.status_code >= 400:
            raise ControlError(r.status_code, data.get("error") or r.reason_phrase)
        return data

    # -- agents -------------------------------------------------------------------------
    def agents(self) -> list[dict]:
        return self._call("GET", "/api/agents")["agents"]

    def agent(self, agent_id: str, limit: int = 200) -> dict:
        return self._call("GET", f"/api/agents/{agent_id}", limit=limit)

    def add(self, spec: dict[str, Any]) -> dict:
        return self._call("POST", "/api/agents", spec)["agent"]

    def act(self, agent_id: str, action: str) -> dict:
        """start, stop, pause, resume, restart or interrupt."""
        return self._call("POST", f"/api/agents/{agent_id}/{action}")["agent"]

    def message(self, agent_id: str, text: str) -> dict:
        return self._call("POST", f"/api/agents/{agent_id}/message", {"text": text})["agent"]

    def config(self, agent_id: str, config: dict[str, Any] | None = None) -> dict:
        if config is None:
            return self._call("GET", f"/api/agents/{agent_id}/config")
        return self._call("PUT", f"/api/agents/{agent_id}/config", config)

    def set_part(self, agent_id: str, part: str, value: dict[str, Any]) -> dict:
        """A new ``policy`` or ``limits``."""
        return self._call("PUT", f"/api/agents/{agent_id}/{part}", value)

    # -- approvals and audit --------------------------------------------------------------
    def approvals(self, state: str = "pending") -> list[dict]:
        return self._call("GET", "/api/approvals", state=state)["approvals"]

    def decide(self, approval_id: str, decision: str, message: str = "") -> dict:
        return self._call("POST", f"/api/approvals/{approval_id}",
                          {"decision": decision, "message": message})["approval"]

    def audit(self, limit: int = 200) -> list[dict]:
        return self._call("GET", "/api/audit", limit=limit)["audit"]

    # -- workflows ----------------------------------------------------------------------
    def workflows(self) -> list[dict]:
        return self._call("GET", "/api/workflows")["workflows"]

    def workflow(self, ref: str, version: int | None = None) -> dict:
        params = {"version": version} if version else {}
        return self._call("GET", f"/api/workflows/{ref}", **params)["workflow"]

    def save_workflow(self, spec: dict[str, Any], ref: str | None = None) -> dict:
        if ref is None:
            return self._call("POST", "/api/workflows", spec)["workflow"]
        return self._call("PUT", f"/api/workflows/{ref}", spec)["workflow"]

    def workflow_versions(self, ref: str) -> list[dict]:
        return self._call("GET", f"/api/workflows/{ref}/versions")["versions"]

    def workflow_diff(self, ref: str, a: int, b: int) -> dict:
        return self._call("GET", f"/api/workflows/{ref}/diff", a=a, b=b)["diff"]

    def import_langgraph(self, target: str, project: str) -> dict:
        return self._call("POST", "/api/workflows/import-langgraph",
                          {"target": target, "project": project})["workflow"]

    def workflow_templates(self) -> list[dict]:
        return self._call("GET", "/api/workflows/templates")["templates"]

    def run_workflow(self, ref: str, inputs: dict[str, Any] | None = None,
                     version: int | None = None) -> dict:
        body = {"inputs": inputs or {}, **({"version": version} if version else {})}
        return self._call("POST", f"/api/workflows/{ref}/runs", body)["run"]

    def workflow_runs(self, ref: str | None = None, limit: int = 100) -> list[dict]:
        params = {"limit": limit, **({"workflow": ref} if ref else {})}
        return self._call("GET", "/api/workflow-runs", **params)["runs"]

    def workflow_run(self, run_id: str) -> dict:
        return self._call("GET", f"/api/workflow-runs/{run_id}")["run"]

    def workflow_run_action(self, run_id: str, action: str) -> dict:
        """cancel or resume."""
        return self._call("POST", f"/api/workflow-runs/{run_id}/{action}")["run"]

    # -- work queue, alerts, webhooks, culprits -----------------------------------------
    def tasks(self, state: str | None = None, limit: int = 500) -> list[dict]:
        params = {"limit": limit, **({"state": state} if state else {})}
        return self._call("GET", "/api/tasks", **params)["tasks"]

    def task(self, task_id: str) -> dict:
        return self._call("GET", f"/api/tasks/{task_id}")["task"]

    def add_task(self, body: dict[str, Any]) -> dict:
        return self._call("POST", "/api/tasks", body)["task"]

    def task_action(self, task_id: str, action: str, body: dict[str, Any] | None = None):
        """cancel, retry, or priority (``{"priority": n}``)."""
        return self._call("POST", f"/api/tasks/{task_id}/{action}", body)["task"]

    def pools(self) -> list[dict]:
        return self._call("GET", "/api/pools")["pools"]

    def add_pool(self, body: dict[str, Any]) -> dict:
        return self._call("POST", "/api/pools", body)["pool"]

    def alert_rules(self) -> list[dict]:
        return self._call("GET", "/api/alert-rules")["rules"]

    def put_rule(self, body: dict[str, Any]) -> dict:
        return self._call("POST", "/api/alert-rules", body)["rule"]

    def delete_rule(self, rule_id: str) -> None:
        self._call("DELETE", f"/api/alert-rules/{rule_id}")

    def preview_rule(self, body: dict[str, Any]) -> dict:
        """What a rule would have fired on in the last day (changes nothing)."""
        return self._call("POST", "/api/alert-preview", body)["preview"]

    def alerts(self, state: str | None = None, limit: int = 200) -> list[dict]:
        params = {"limit": limit, **({"state": state} if state else {})}
        return self._call("GET", "/api/alerts", **params)["alerts"]

    def alert_action(self, alert_id: str, action: str) -> dict:
        """ack, resolve, resume (its agent) or stop (its agent)."""
        return self._call("POST", f"/api/alerts/{alert_id}/{action}")["alert"]

    def webhooks(self) -> list[dict]:
        return self._call("GET", "/api/webhooks")["webhooks"]

    def add_webhook(self, body: dict[str, Any]) -> dict:
        return self._call("POST", "/api/webhooks", body)["webhook"]

    def delete_webhook(self, webhook_id: str) -> None:
        self._call("DELETE", f"/api/webhooks/{webhook_id}")

    def deliveries(self, webhook_id: str, limit: int = 200) -> list[dict]:
        return self._call("GET", f"/api/webhooks/{webhook_id}/deliveries",
                          limit=limit)["deliveries"]

    def culprits(self, run_id: str) -> dict:
        return self._call("GET", f"/api/runs/{run_id}/culprits")

    def impact(self, agent_id: str) -> dict:
        return self._call("GET", f"/api/agents/{agent_id}/impact")

    def consoles(self) -> list[dict]:
        """The open consoles the caller may see (agents' terminals; shells for admins)."""
        return self._call("GET", "/api/console")["consoles"]

    def socket(self, path: str, timeout: float | None = None):
        """A websocket to ``path`` of this workbench (``/ws/agents``, ``/ws/console/…``)
        with this client's token: a ``websockets`` sync connection."""
        from websockets.sync.client import connect

        token = self._http.headers.get("Authorization")
        return connect(self.url.replace("http", "ws", 1) + path, open_timeout=timeout,
                       additional_headers={"Authorization": token} if token else None)

    def watch(self, timeout: float | None = None) -> Iterator[dict]:
        """The websocket's messages: a snapshot, then every ``agent_update``."""
        with self.socket("/ws/agents", timeout) as ws:
            while True:
                yield json.loads(ws.recv(timeout))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DevKit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
