"""The work queue: tasks wait here, highest priority first then oldest, until an idle agent
whose labels and project match takes one — or a pool may start a new agent for it.

A task is a prompt (for a coding agent: ``claude-code``, ``codex``, ``devkit``) or a command
(for a ``process`` agent, run as that agent). A coding agent started without a prompt
waits idle for matching tasks; a process agent defined with labels and no command is a
worker that runs each task's command. A task's end is its agent's: the turn's result
(coding) or the process's exit; its cost, tokens, tool calls and the test runs on its
project while it ran are linked from it. Budgets (cost, seconds) end a task that overruns
them; a deadline expires one still queued.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ..analysis import units
from ..config import utcnow
from ..store import control_writes
from ..store.rows import plain
from . import spec as specs

log = logging.getLogger("workbench.control")

STATES = ("queued", "running", "done", "failed", "cancelled", "expired")
OPEN = frozenset({"queued", "running"})
PROMPT_BACKENDS = frozenset({"claude-code", "codex", "devkit"})
COLUMNS = ("task_id", "prompt", "command", "project", "priority", "labels", "deadline",
           "budget_cost_usd", "budget_s", "state", "agent_id", "session_id", "attempt",
           "failure", "result", "cost_usd", "created_by", "created_at", "started_at",
           "ended_at")
_FIELDS = {"prompt", "command", "project", "priority", "labels", "deadline", "budget"}


#: Labels of this prefix are a workflow run's own (workflows/runs.py): its agents take only
#: tasks carrying them, and only the engine gives them out.
RESERVED = "wr-"


def reserved(labels: Any) -> str | None:
    """The first label a client may not give (a workflow run's own), or None."""
    return next((x for x in labels or [] if isinstance(x, str) and x.startswith(RESERVED)),
                None)


def check_task(body: Any, internal: bool = False) -> dict[str, Any]:
    """A task from a client (ValueError naming the field); ``internal``: from the
    workflow engine, which may give a run's own labels."""
    if not isinstance(body, dict):
        raise ValueError("a task must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(_FIELDS))})")
    prompt, command = body.get("prompt"), body.get("command")
    if (prompt is None) == (command is None):
        raise ValueError("prompt or command: exactly one is required")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise ValueError("prompt: a non-empty string")
    words = isinstance(command, list) and command and all(isinstance(c, str) for c in command)
    if command is not None and not (words or (isinstance(command, str) and command.strip())):
        raise ValueError("command: a string or a non-empty list of strings")
    priority = body.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > 10**6:
        raise ValueError("priority: a whole number from -1000000 to 1000000 (higher first)")
    labels = body.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError("labels: a list of strings")
    if not internal and reserved(labels):
        raise ValueError(f"labels: {reserved(labels)}: labels starting {RESERVED} are a "
                         "workflow run's own")
    project = body.get("project")
    if project is not None and not isinstance(project, str):
        raise ValueError("project: a string")
    deadline = body.get("deadline")
    if deadline is not None:
        try:
            deadline = datetime.fromisoformat(str(deadline).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("deadline: an ISO 8601 time") from None
        if deadline.tzinfo is not None:  # stored as naive UTC, like every time
            deadline = deadline.astimezone(UTC).replace(tzinfo=None)
    budget = body.get("budget") or {}
    if not isinstance(budget, dict) or set(budget) - {"cost_usd", "seconds"} or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0
            for v in budget.values()):
        raise ValueError("budget: an object with positive cost_usd and/or seconds")
    return {"prompt": prompt, "command": command, "project": project, "priority": priority,
            "labels": labels, "deadline": deadline, "budget_cost_usd": budget.get("cost_usd"),
            "budget_s": budget.get("seconds")}


class TaskQueue:
    """Tasks and pools; dispatches on every agent change and each second."""

    def __init__(self, supervisor, webhooks) -> None:
        self.sup = supervisor
        self.store = supervisor.store
        self.webhooks = webhooks
        self.tasks: dict[str, dict[str, Any]] = {}
        self.pools: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._kick = threading.Event()
        self._closed = threading.Event()
        #: Tasks whose agent told their end, for the queue's thread to finish.
        self._ends: queue.SimpleQueue = queue.SimpleQueue()
        for row in self.store.sql("SELECT * FROM tasks ORDER BY created_at").to_dict("records"):
            task = plain(row)
            task["labels"] = json.loads(task["labels"] or "[]")
            task["command"] = json.loads(task["command"]) if task["command"] else None
            self.tasks[task["task_id"]] = task
            if task["state"] == "running":
                self._readopt(task)
        for row in self.store.sql("SELECT * FROM pools").to_dict("records"):
            self.pools[row["pool"]] = {"pool": row["pool"], "template": json.loads(
                row["template"]), "max_agents": row["max_agents"]}
        supervisor.on_change(lambda update: self._kick.set())
        supervisor.on_event(self._on_event)
        threading.Thread(target=self._run, name="task-queue", daemon=True).start()

    def _readopt(self, task: dict[str, Any]) -> None:
        """A task running when the workbench stopped: still running when its agent's
        process was adopted again (its end is then told as usual); else it failed, and says
        why — a retry must not run a command that still runs."""
        agent = self.sup.agents.get(task["agent_id"] or "")
        if agent is not None and agent.backend is not None:
            agent.task_id = task["task_id"]
            agent.run_command = task["command"]
            task["_cost0"], task["_t0"], task["_result"] = agent.cost_usd, time.monotonic(), None
            agent.emit("task", f"task {task['task_id']} adopted after a workbench restart",
                       {"task_id": task["task_id"]})
            return
        why = f"agent {agent.id} was {agent.state}" if agent is not None else "no agent"
        self._end(task, "failed", f"the workbench restarted while it ran ({why})")

    # -- asking -------------------------------------------------------------------------
    def add(self, body: Any, who: str, internal: bool = False) -> dict[str, Any]:
        task = {**check_task(body, internal), "task_id": "tk-" + uuid.uuid4().hex[:10],
                "state": "queued", "agent_id": None, "session_id": None, "attempt": 1,
                "failure": None, "result": None, "cost_usd": None, "created_by": who,
                "created_at": utcnow(), "started_at": None, "ended_at": None}
        # Stored before it is queued or answered: a task the store could not take fails
        # its caller (503), instead of a 201 for work that is then lost.
        self._save(task).result()
        with self._lock:
            self.tasks[task["task_id"]] = task
        self._kick.set()
        return public(task)

    def get(self, task_id: str) -> dict[str, Any]:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise KeyError(f"no task {task_id!r}") from None

    def list(self, state: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        tasks = [t for t in self.tasks.values() if state in (None, "all", t["state"])]
        tasks.sort(key=lambda t: (t["state"] not in OPEN, t["state"] != "running",
                                  -t["priority"], t["created_at"]))
        return [public(t) for t in tasks[:limit]]

    def cancel(self, task_id: str) -> dict[str, Any]:
        with self._lock:
            task = self.get(task_id)
            if task["state"] not in OPEN:
                raise ValueError(f"cannot cancel task {task_id}: it is {task['state']}")
            agent = self.sup.agents.get(task["agent_id"] or "")
            self._end(task, "cancelled", "cancelled")
        if agent is not None and agent.backend is not None:
            self._halt(agent, "task cancelled")
        return public(task)

    def retry(self, task_id: str) -> dict[str, Any]:
        with self._lock:
            task = self.get(task_id)
            if task["state"] in OPEN or task["state"] == "done":
                raise ValueError(f"cannot retry task {task_id}: it is {task['state']}")
            task.update(state="queued", attempt=task["attempt"] + 1, agent_id=None,
                        session_id=None, result=None, started_at=None, ended_at=None,
                        cost_usd=None)  # (the failure stays: the next attempt is told it)
            self._save(task)
        self._kick.set()
        return public(task)

    def set_priority(self, task_id: str, priority: Any) -> dict[str, Any]:
        if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > 10**6:
            raise ValueError("priority: a whole number from -1000000 to 1000000")
        with self._lock:
            task = self.get(task_id)
            task["priority"] = priority
            self._save(task)
        self._kick.set()
        return public(task)

    def add_pool(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or set(body) - {"pool", "template", "max_agents"}:
            raise ValueError("a pool is {\"pool\", \"template\", \"max_agents\"}")
        name, cap = body.get("pool"), body.get("max_agents", 1)
        if not isinstance(name, str) or not name.replace("-", "").isalnum() or len(name) > 40:
            raise ValueError("pool: letters, digits and dashes, at most 40")
        if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= 100:
            raise ValueError("max_agents: a whole number from 0 to 100")
        template = body.get("template")
        if not isinstance(template, dict):
            raise ValueError("template: an agent definition (object) is required")
        from .backends import BACKENDS

        checked = specs.check({**template, "name": f"{name}-0"}, BACKENDS)
        if not checked["labels"]:
            raise ValueError("template.labels: a pool's agents need labels to take tasks")
        pool = {"pool": name, "template": {**template, "name": name}, "max_agents": cap}
        self.pools[name] = pool
        values = [name, json.dumps(pool["template"]), cap, utcnow()]
        control_writes.submit(self.store, "INSERT OR REPLACE INTO pools VALUES (?, ?, ?, ?)",
                              values)
        self._kick.set()
        return pool

    def detail(self, task_id: str) -> dict[str, Any]:
        """The task and what it did: its session, cost, tokens, tool calls, and the test
        runs on its project while it ran."""
        task = self.get(task_id)
        out = public(task)
        if not task["started_at"]:
            return {**out, "tokens": 0, "tool_calls": 0, "runs": []}
        self.store.settle()
        end = task["ended_at"] or utcnow()
        events = self.store.query("agent_events_between", agent_ids=[task["agent_id"]],
                                  kinds=["tool_use", "result"], since=task["started_at"],
                                  until=end)
        tokens = 0
        for raw in events.loc[events["kind"] == "result", "data"]:
            usage = (json.loads(raw) or {}).get("usage") if raw else None
            tokens += sum(v for k, v in (usage or {}).items()
                          if isinstance(v, int) and "tokens" in k)
        runs = []
        if task["project"] or self._agent_project(task):
            # (``until`` is exclusive: a microsecond past the end keeps a run started then)
            until = (pd.Timestamp(end) + pd.Timedelta(1, "us")).to_pydatetime()
            found = self.store.query(
                "runs", project=task["project"] or self._agent_project(task),
                since=task["started_at"], until=until, limit=100_000).iloc[::-1]
            runs = json.loads(found[["run_id", "started_at", "status", "tests", "passed",
                                     "failed", "errors"]].to_json(orient="records",
                                                                   date_format="iso"))
        return {**out, "tokens": tokens,
                "tool_calls": int((events["kind"] == "tool_use").sum()), "runs": runs}

    def _agent_project(self, task: dict[str, Any]) -> str | None:
        agent = self.sup.agents.get(task["agent_id"] or "")
        return agent.spec.get("project") if agent is not None else None

    # -- dispatching --------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed.is_set():
            self._kick.wait(1.0)
            self._kick.clear()
            try:
                while not self._ends.empty():
                    self._finish(*self._ends.get_nowait())
                self.dispatch()
                self._check_budgets()
            except Exception:  # the queue must outlive one bad dispatch
                log.exception("task queue")

    def dispatch(self) -> None:
        with self._lock:
            now = utcnow()
            queued = sorted((t for t in self.tasks.values() if t["state"] == "queued"),
                            key=lambda t: (-t["priority"], t["created_at"]))
            for task in queued:
                if task["deadline"] is not None and task["deadline"] < now:
                    self._end(task, "expired", "its deadline passed while it was queued")
                    continue
                agent = self._idle_agent(task)
                if agent is not None:
                    self._assign(task, agent)
                else:
                    self._grow_pool(task)

    def _fits(self, task: dict[str, Any], labels: list[str], project: str | None) -> bool:
        own = {x for x in labels if x.startswith(RESERVED)}
        if own and not own & set(task["labels"]):
            return False  # a workflow run's agent takes only its run's tasks
        return set(task["labels"]) <= set(labels) and (
            not task["project"] or task["project"] == project)

    def _idle_agent(self, task: dict[str, Any]):
        busy = {t["agent_id"] for t in self.tasks.values() if t["state"] == "running"}
        for agent in sorted(self.sup.agents.values(), key=lambda a: a.created_at):
            spec = agent.spec
            if agent.id in busy or not spec["labels"] or agent.paused or \
                    not self._fits(task, spec["labels"], spec.get("project")):
                continue
            if task["prompt"] is not None and spec["backend"] in PROMPT_BACKENDS and \
                    agent.backend is not None and agent.state == "idle":
                return agent
            if task["command"] is not None and spec["backend"] == "process" and \
                    agent.backend is None and agent.state in ("idle", "completed", "error"):
                return agent
        return None

    def _grow_pool(self, task: dict[str, Any]) -> None:
        """Start a new agent for ``task`` from a pool whose template fits, if it has room."""
        kind = "prompt" if task["prompt"] is not None else "command"
        for pool in self.pools.values():
            t = pool["template"]
            if (t.get("backend") == "process") != (kind == "command") or \
                    not self._fits(task, t.get("labels") or [], t.get("project")):
                continue
            members = [a for a in self.sup.agents.values() if a.spec.get("pool") == pool["pool"]]
            starting = [a for a in members if a.state in ("starting", "running")
                        and not any(x["agent_id"] == a.id for x in self.tasks.values()
                                    if x["state"] == "running")]
            if starting:
                return  # one is on its way up: it takes the task when idle
            if len(members) >= pool["max_agents"]:
                continue
            agent = self.sup.define({**t, "name": f"{pool['pool']}-{len(members) + 1}",
                                     "pool": pool["pool"]})
            agent.emit("pool", f"started by pool {pool['pool']} for task {task['task_id']}")
            if kind == "prompt":
                self.sup.start(agent)
            else:
                self._assign(task, agent)
            return

    def _assign(self, task: dict[str, Any], agent) -> None:
        task.update(state="running", agent_id=agent.id, started_at=utcnow(),
                    session_id=agent.session_id)
        task["_cost0"] = agent.cost_usd
        task["_t0"] = time.monotonic()
        task["_result"] = None
        agent.emit("task", f"task {task['task_id']} (priority {task['priority']}) started",
                   {"task_id": task["task_id"]})
        text = task["prompt"]
        if text is not None and task["attempt"] > 1 and task["failure"]:
            text += (f"\n\n(This is attempt {task['attempt']}; the previous one failed: "
                     f"{task['failure']})")
        self._save(task)
        agent.task_id = task["task_id"]  # before it starts: a quick command ends at once
        try:
            if text is not None:
                agent.backend.message(text)
            else:
                agent.run_command = task["command"]
                self.sup.start(agent)
        except (ValueError, OSError, AttributeError) as err:
            self._end(task, "failed", f"could not start on {agent.id}: {err}")
            agent.task_id = None

    # -- ending -------------------------------------------------------------------------
    def _on_event(self, agent, kind: str, text: str, data: dict[str, Any] | None) -> None:
        task_id = getattr(agent, "task_id", None)
        task = self.tasks.get(task_id or "")
        if task is None or task["state"] != "running":
            return
        if kind == "result":
            task["_result"] = (text, bool((data or {}).get("is_error")) or
                               (data or {}).get("status") in ("failed", "interrupted"))
        elif kind == "state":
            to = (data or {}).get("to")
            # The end is told to the queue's thread, not done here: this runs under the
            # agent's lock, and a dispatch holds the queue's lock while it takes an agent's
            # (a command that ended before its start was told deadlocked the two).
            if to == "idle" and task["prompt"] is not None and task["_result"] is not None:
                result, failed = task["_result"]
                self._ends.put((agent, task, "failed" if failed else "done", result))
            elif to == "completed":
                self._ends.put((agent, task, "done", "exit status 0"))
            elif to in ("error", "lost", "stopped"):
                self._ends.put((agent, task, "failed",
                                (data or {}).get("error") or f"the agent was {to}"))
            else:
                return
            self._kick.set()

    def _finish(self, agent, task: dict[str, Any], state: str, text: str) -> None:
        with self._lock:
            if task["state"] != "running":
                return
            task["cost_usd"] = round(agent.cost_usd - task.get("_cost0", 0.0), 6)
            task["session_id"] = agent.session_id
            if state == "done":
                task["result"] = text[:2000]
            self._end(task, state, None if state == "done" else text[:2000])
        agent.task_id = None
        agent.run_command = None
        agent.emit("task", f"task {task['task_id']} {state}", {"task_id": task["task_id"],
                                                                "state": state})
        self._kick.set()

    def _end(self, task: dict[str, Any], state: str, failure: str | None) -> None:
        task["state"] = state
        task["ended_at"] = utcnow()
        if failure is not None and state != "done":
            task["failure"] = failure
        self._save(task)
        if state != "expired":
            self.webhooks.publish(f"task.{state}", task["agent_id"], public(task))

    def _check_budgets(self) -> None:
        for task in [t for t in self.tasks.values() if t["state"] == "running"]:
            agent = self.sup.agents.get(task["agent_id"] or "")
            if agent is None:
                continue
            over = None
            if task["budget_s"] and time.monotonic() - task.get("_t0", 0) > task["budget_s"]:
                over = f"time budget: over {task['budget_s']:g} s"
            spent = agent.cost_usd - task.get("_cost0", 0.0)
            if task["budget_cost_usd"] and spent > task["budget_cost_usd"]:
                over = f"cost budget: {units.money(spent)} > {units.money(task['budget_cost_usd'])}"
            if over:
                self._finish(agent, task, "failed", over)
                self._halt(agent, over)

    def _halt(self, agent, reason: str) -> None:
        """End what the agent does for a task: the turn (coding agent) or the process."""
        try:
            if agent.spec["backend"] in PROMPT_BACKENDS:
                agent.backend.interrupt()
            else:
                self.sup.stop(agent, reason)
        except (ValueError, AttributeError):
            pass

    def _save(self, task: dict[str, Any]):
        values = [json.dumps(task[c]) if c in ("labels", "command") and task[c] is not None
                  else task[c] for c in COLUMNS]
        fut = control_writes.submit(
            self.store, f"INSERT OR REPLACE INTO tasks VALUES ({', '.join('?' * len(COLUMNS))})",
            values)
        self.sup.work_changed("task", public(task))
        return fut

    def close(self) -> None:
        self._closed.set()
        self._kick.set()


def public(task: dict[str, Any]) -> dict[str, Any]:
    out = {k: task[k] for k in COLUMNS}
    out["id"] = out.pop("task_id")
    for key in ("deadline", "created_at", "started_at", "ended_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    return out
