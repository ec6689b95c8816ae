"""The supervisor: every agent's state, its process, its limits and its restarts.

One per serve process. Each agent's state changes are stored as events (the timeline's
source) and pushed to listeners (the websocket, open dashboards) at once. A watchdog thread
samples CPU, memory and threads of every live agent's process tree with psutil each
second, stores them, and enforces the limits; it also answers approvals past their
time-out. On start the supervisor reads the agents the store holds: one whose process is
still alive (same pid, same start time) is adopted again; one whose process is gone is
marked ``lost`` — never forgotten.

Limits: the watchdog enforces memory (resident memory of the whole tree), runtime and cost,
with an address-space rlimit at 4x the memory limit as a backstop; the CPU share is the
group's nice value. cgroup v2 would be exact, but is not used yet: the machines this was
built and tested on have cgroup v1 only, so that path could not be exercised. Each start
records which applied (and whether a writable cgroup v2 hierarchy was there).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from .. import config, launcher
from ..config import utcnow
from ..store import control_writes
from . import access
from . import spec as specs
from .access import Principal
from .agent import Agent
from .alerts import AlertEngine
from .approvals import Inbox, approval_json
from .backends import BACKENDS, EXTERNAL, Backend
from .spec import LIVE, STARTABLE
from .tasks import TaskQueue
from .webhooks import Webhooks

log = logging.getLogger("workbench.control")
_MICROSECOND = timedelta(microseconds=1)

__all__ = ["BACKENDS", "EXTERNAL", "Agent", "Supervisor"]
#: Seconds between SIGTERM (or a closed stdin) and SIGKILL.
GRACE_S = 5.0


def cgroup_v2_writable() -> bool:
    root = Path("/sys/fs/cgroup")
    return (root / "cgroup.controllers").exists() and os.access(root, os.W_OK)


class Supervisor:
    """Every agent of this workbench. Thread-safe; actions return at once."""

    def __init__(self, store, server_url: str | None = None,
                 telemetry_token: str | None = None, sample_s: float = 1.0) -> None:
        self.store = store
        self.server_url = server_url
        self.telemetry_token = telemetry_token
        self.sample_s = sample_s
        #: Where process agents' output files live (beside the database).
        self.output_dir = (Path(store.path).parent / "agents" if isinstance(store.path, Path)
                           else Path(tempfile.mkdtemp(prefix="observatory-agents-")))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.limits_mode = "rlimit+watchdog" + (" (cgroup v2 writable, unused)"
                                                 if cgroup_v2_writable() else "")
        self.inbox = Inbox(self._save_approval, self._changed)
        self.agents: dict[str, Agent] = {}
        #: Each agent's tests broken and fixed, per test-data version (see LocalControl).
        self.impact_cache: dict[tuple[str, int | None], dict[str, Any]] = {}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._event_listeners: list[Callable[..., None]] = []
        self._output_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._work_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.webhooks = Webhooks(store, own_url=server_url)
        self._lock = threading.Lock()
        self._stamp_lock = threading.Lock()
        self._closed = threading.Event()
        self.alerts = AlertEngine(self, self.webhooks)  # (before the load: it may find lost)
        self._load()
        self.tasks = TaskQueue(self, self.webhooks)
        self._watchdog = threading.Thread(target=self._watch, name="agent-watchdog",
                                          daemon=True)
        self._watchdog.start()

    # -- reading ------------------------------------------------------------------------
    def get(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise KeyError(f"no agent {agent_id!r}") from None

    def list(self) -> list[dict[str, Any]]:
        return [a.as_dict() for a in sorted(self.agents.values(), key=lambda a: a.created_at)]

    def on_change(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(agent_dict)`` after every change; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def on_event(self, listener: Callable[..., None]) -> None:
        """Call ``listener(agent, kind, text, data)`` for every agent event, in the thread
        that made it (the alert rules and the task queue): it must be quick."""
        self._event_listeners.append(listener)

    def on_output(self, listener: Callable[[str, dict[str, Any]], None]
                  ) -> Callable[[], None]:
        """Call ``listener(agent_id, last_event)`` when an agent prints (its ``log`` events,
        which :meth:`on_change` leaves out: a chatty agent would redraw every open page per
        line): once per line, or per batch of lines read together (``last_event`` is the
        last). In the thread that read them: it must only take note. Returns the
        unsubscribe."""
        self._output_listeners.append(listener)
        return lambda: (self._output_listeners.remove(listener)
                        if listener in self._output_listeners else None)

    def on_work(self, listener: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(kind, item)`` when a task or an alert changes (``"task"`` or
        ``"alert"``, as the API shows it); returns the unsubscribe."""
        self._work_listeners.append(listener)
        return lambda: (self._work_listeners.remove(listener)
                        if listener in self._work_listeners else None)

    def work_changed(self, kind: str, item: dict[str, Any]) -> None:
        for listener in list(self._work_listeners):
            try:
                listener(kind, item)
            except Exception:  # a listener's failure must not stop the queue
                log.exception("work listener failed")

    def _changed(self, agent_id: str) -> None:
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        update = agent.as_dict()
        for listener in list(self._listeners):
            try:
                listener(update)
            except Exception:  # a listener's failure must not stop an agent
                log.exception("agent listener failed")

    # -- storing ------------------------------------------------------------------------
    def save(self, agent: Agent) -> Future:
        fut = control_writes.save_agent(self.store, {
            "agent_id": agent.id, "name": agent.spec["name"], "backend": agent.spec["backend"],
            "project": agent.spec.get("project"), "spec": json.dumps(agent.spec),
            "state": agent.state, "pid": agent.pid, "pid_started": agent.pid_started,
            "session_id": agent.session_id, "last_error": agent.last_error,
            "exit_code": agent.exit_code, "cost_usd": agent.cost_usd,
            "restarts": agent.restarts, "created_at": agent.created_at, "updated_at": utcnow()})
        self._changed(agent.id)
        return fut

    def stamps(self, agent: Agent, n: int = 1) -> list[datetime]:
        """The times of ``agent``'s next ``n`` events: now, a microsecond apart, and always
        after its last one (lines read together are stored together, and must still read
        back in the order printed, which the queries' ``ORDER BY ts`` decides)."""
        with self._stamp_lock:
            first = utcnow()
            if agent.last_at is not None and first <= agent.last_at:
                first = agent.last_at + _MICROSECOND
            agent.last_at = first + _MICROSECOND * (n - 1)
        return [first + _MICROSECOND * i for i in range(n)] if n > 1 else [first]

    def event(self, agent: Agent, kind: str, text: str, data: dict[str, Any] | None) -> None:
        control_writes.agent_event(self.store, [
            agent.id, self.stamps(agent)[0], kind, agent.state, text[:20000],
            json.dumps(data, default=str) if data is not None else None])
        self._heard(agent, kind, [text], data)

    def log_events(self, agent: Agent, lines: list[str], data: dict[str, Any]) -> None:
        """``lines`` of output read together, as ``log`` events: one append to the store's
        pending rows (see control_writes), each line heard by the event listeners, and the
        output listeners told once."""
        data_json, state = json.dumps(data, default=str), agent.state
        control_writes.agent_events(self.store, [
            [agent.id, at, "log", state, text[:20000], data_json]
            for at, text in zip(self.stamps(agent, len(lines)), lines, strict=True)])
        self._heard(agent, "log", lines, data)

    def _heard(self, agent: Agent, kind: str, texts: list[str],
               data: dict[str, Any] | None) -> None:
        for listener in list(self._event_listeners):
            for text in texts:
                try:
                    listener(agent, kind, text, data)
                except Exception:  # a rule's failure must not stop an agent
                    log.exception("agent event listener failed")
        if kind != "log":
            self._changed(agent.id)
            return
        for output in list(self._output_listeners):
            try:
                output(agent.id, agent.last_event)
            except Exception:  # a page's failure must not stop an agent
                log.exception("agent output listener failed")

    def _save_approval(self, row: dict[str, Any]) -> None:
        control_writes.save_approval(self.store, {
            **row, "input": json.dumps(row["input"], default=str)})

    # -- defining -----------------------------------------------------------------------
    def define(self, spec: Any) -> Agent:
        checked = specs.check(spec, BACKENDS)
        agent = Agent(self, {"agent_id": "ag-" + uuid.uuid4().hex[:10], "spec": checked,
                             "state": "idle"})
        with self._lock:
            self.agents[agent.id] = agent
        try:  # stored before anyone hears of it: an agent the store lost could run unknown
            self.save(agent).result()
        except Exception:
            with self._lock:
                self.agents.pop(agent.id, None)
            raise
        agent.emit("defined", f"{checked['backend']} agent {checked['name']!r}")
        return agent

    def external_agent(self, session_id: str, cwd: str | None) -> Agent:
        """The agent behind a hook's session (made on its first request): a Claude Code
        session the workbench did not start, named after its working directory."""
        if cwd is not None and len(cwd) > specs.MAX_CHARS["cwd"]:
            raise ValueError(f"cwd: at most {specs.MAX_CHARS['cwd']} characters")
        agent_id = "ext-" + (session_id or "unknown")[:24]
        with self._lock:
            agent = self.agents.get(agent_id)
            if agent is not None:
                return agent
            folder = Path(cwd).name if cwd else "unknown"
            spec = specs.external_spec(f"claude-code (hooks) · {folder}", folder, cwd,
                                       config.get("OBSERVATORY_HOOK_TIMEOUT_S"))
            agent = Agent(self, {"agent_id": agent_id, "spec": spec, "state": "running",
                                 "session_id": session_id})
            self.agents[agent_id] = agent
        self.save(agent)
        agent.emit("adopted", f"a Claude Code session reporting through its hooks ({cwd})")
        return agent

    def set_config(self, agent: Agent, config: Any) -> dict[str, Any]:
        """Validate and apply a backend configuration: live when the backend can, else it
        takes effect at the next start."""
        checked = specs._params(BACKENDS[agent.spec["backend"]].Config, config, "config")
        live = agent.backend is not None  # (an idle session is live too)
        applied = live and agent.backend.apply_config(checked)
        agent.spec = {**agent.spec, "config": checked}
        self.save(agent)
        agent.emit("config", "configuration changed" + (" (applied live)" if applied else ""),
                   checked)
        return {"config": checked, "applied_live": bool(applied)}

    # -- acting -------------------------------------------------------------------------
    def act(self, principal: Principal, agent_id: str, action: str,
            params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One control action, role-checked and audited (refusals too)."""
        params = params or {}
        access.authorize(self.store, principal, action, agent_id, params)
        try:
            result = self._do(self.get(agent_id), action, params)
        except (ValueError, KeyError) as err:
            access.record(self.store, principal, action, agent_id, params,
                          f"failed: {err.args[0] if err.args else err}")
            raise
        access.record(self.store, principal, action, agent_id, params,
                      f"ok: {result['note']}" if result.get("note") else "ok")
        return result

    def _do(self, agent: Agent, action: str, params: dict[str, Any]) -> dict[str, Any]:
        if agent.external and action != "policy":
            raise ValueError(f"agent {agent.id} was not started by the workbench: its "
                             "permission requests can be answered, it cannot be steered")
        if action == "start" and (agent.state in ("starting", "running",
                                                  "waiting-for-approval")
                                  or (agent.state == "idle" and agent.backend is not None)):
            # Started already (by the queue, a pool, another operator): nothing to do, and
            # the answer says so — not a failure.
            state = "running (idle between turns)" if agent.state == "idle" else agent.state
            return {**agent.as_dict(),
                    "note": f"agent {agent.id} is already {state}: not started again"}
        if action == "start":
            self.start(agent)
        elif action == "stop":
            self.stop(agent, None)
        elif action == "restart":
            self.restart(agent)
        elif action == "pause":
            self.pause(agent)
        elif action == "resume":
            self.resume(agent)
        elif action == "interrupt":
            self._live(agent, action).interrupt()
            agent.emit("interrupt", "interrupt sent")
        elif action == "message":
            text = params.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("text: a non-empty string is required")
            self._live(agent, action).message(text)
        elif action == "config":
            return {**agent.as_dict(), **self.set_config(agent, params.get("config"))}
        elif action in ("policy", "limits"):
            value = specs.check_part(action, params.get(action))
            agent.spec = {**agent.spec, action: value}
            self.save(agent)
            agent.emit(action, f"{action} changed (applies from now on)", value)
            return {**agent.as_dict(), action: value}
        else:
            raise ValueError(f"unknown action {action!r}")
        return agent.as_dict()

    def _live(self, agent: Agent, action: str) -> Backend:
        # (an idle claude-code agent has a live session waiting for its next prompt)
        if agent.backend is None or agent.state == "stopping":
            raise ValueError(f"cannot {action} agent {agent.id}: it is {agent.state}")
        return agent.backend

    def start(self, agent: Agent) -> None:
        with agent.lock:
            if agent.state not in STARTABLE or agent.backend is not None:
                raise ValueError(f"cannot start agent {agent.id}: it is {agent.state}")
            # An earlier run's error is not this run's (its state event keeps it).
            earlier, agent.last_error = agent.last_error, None
            if agent.spec["backend"] == "process" and not (
                    agent.spec.get("command") or agent.run_command):
                if agent.state == "idle" and earlier is not None:
                    self.save(agent)  # (no state change to store it with)
                agent.set_state("idle")  # a worker: each task brings its command
                agent.emit("waiting", "waiting for tasks labelled "
                           + ", ".join(agent.spec["labels"]))
                return
            agent.set_state("starting")
            agent.stop_reason = None
            agent.paused = False
            agent.prompted = False
            agent.exit_code = None
            backend = BACKENDS[agent.spec["backend"]](agent)
            try:
                pid = backend.launch()
            except (OSError, ValueError) as err:
                agent.set_state("error", f"could not start: {err}")
                return
            agent.backend, agent.pid = backend, pid
            try:  # (no pid: an agent of another workbench)
                agent.pid_started = launcher.identity(pid) if pid else None
            except psutil.Error:
                agent.pid_started = None
            agent.started_at = time.monotonic()
            agent._procs = {}
        agent.emit("started", f"pid {pid}; limits: {self.limits_mode}" if pid else
                   f"on {backend.argv()[0]}",
                   {"pid": pid, "argv": backend.argv(), "limits": agent.spec["limits"],
                    "limits_mode": self.limits_mode})
        threading.Thread(target=self._monitor, args=(agent, backend), daemon=True,
                         name=f"agent-{agent.id}-wait").start()
        try:
            backend.started()
        except ValueError as err:
            log.warning("agent %s: %s", agent.id, err)

    def _monitor(self, agent: Agent, backend: Backend) -> None:
        code = backend.wait()
        with agent.lock:
            if agent.backend is not backend:
                return
            agent.backend = None
            agent.exit_code = code
            self.inbox.drop(agent.id, "the agent's session ended")
            if agent.stop_reason is not None:
                reason = agent.stop_reason or None
                agent.set_state("stopped", reason)
                return
            outcome = getattr(backend, "outcome", None)
            if outcome is not None:  # it ran elsewhere: its end is told, not an exit status
                agent.set_state(outcome[0], outcome[1])
                failed = outcome[0] in ("error", "lost")
            elif code == 0:
                agent.set_state("completed")
                failed = False
            else:
                status = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
                tail = " | ".join(list(backend.tail)[-5:])
                agent.set_state("error", status + (f"; last output: {tail}" if tail else ""))
                failed = True
        self._maybe_restart(agent, failed)

    def _maybe_restart(self, agent: Agent, failed: bool) -> None:
        policy = agent.spec["restart"]
        if policy["policy"] == "never" or (policy["policy"] == "on-failure" and not failed):
            return
        if agent.restarts >= policy["max_restarts"]:
            agent.emit("restart", f"not restarted: {agent.restarts} restarts already")
            return
        delay = policy["backoff_s"] * 2 ** agent.restarts
        agent.restarts += 1
        agent.emit("restart", f"restart {agent.restarts} in {delay:g} s")

        def again() -> None:
            if agent.state in STARTABLE and not self._closed.is_set():
                self.start(agent)

        timer = threading.Timer(delay, again)
        timer.daemon = True
        timer.start()

    def stop(self, agent: Agent, reason: str | None) -> None:
        """Graceful first (the backend's own way, then SIGTERM), SIGKILL after GRACE_S."""
        with agent.lock:
            backend = agent.backend
            if backend is None:
                raise ValueError(f"cannot stop agent {agent.id}: it is {agent.state}")
            if agent.stop_reason is not None:
                return  # already stopping
            agent.stop_reason = reason or ""
            agent.set_state("stopping", reason)
        backend.terminate()

        def escalate() -> None:
            if agent.backend is backend:
                backend.signal_group(15)
                backend.signal_group(18)  # a paused group must wake to see SIGTERM
            time.sleep(GRACE_S)
            if agent.backend is backend:
                backend.kill()

        threading.Thread(target=escalate, daemon=True).start()

    def restart(self, agent: Agent) -> None:
        if agent.backend is not None:
            backend = agent.backend
            self.stop(agent, None)
            deadline = time.monotonic() + GRACE_S + 5
            while agent.backend is backend and backend is not None and \
                    time.monotonic() < deadline:
                time.sleep(0.02)
        self.start(agent)

    def pause(self, agent: Agent) -> None:
        backend = self._live(agent, "pause")
        if agent.state == "paused":
            return
        agent.paused = True
        self.inbox.hold(agent.id)
        backend.pause()
        agent.set_state("paused")

    def resume(self, agent: Agent) -> None:
        if agent.state != "paused":
            raise ValueError(f"cannot resume agent {agent.id}: it is {agent.state}")
        backend = self._live(agent, "resume")
        agent.paused = False
        backend.resume()
        agent.set_state(agent.underlying)
        self.inbox.release(agent.id)  # answers given while paused go to the agent now

    # -- approvals ----------------------------------------------------------------------
    def decide(self, principal: Principal, approval_id: str, decision: str,
               message: str = "") -> dict[str, Any]:
        params = {"decision": decision, "message": message}
        access.authorize(self.store, principal, "approve", approval_id, params)
        try:
            row = self.inbox.decide(approval_id, decision, message, principal.who)
        except (KeyError, ValueError) as err:
            access.record(self.store, principal, "approve", approval_id, params,
                          f"failed: {err.args[0]}")
            raise
        access.record(self.store, principal, "approve", approval_id, params)
        return approval_json(row)

    # -- watching -----------------------------------------------------------------------
    def _load(self) -> None:
        # A request still pending lost its asker with the old workbench (its answer
        # callback lived in memory): it can no longer be answered, and says why.
        self.store.write(lambda cur: cur.execute(
            "UPDATE approvals SET state = 'expired', decided_by = 'workbench', "
            "decided_at = ?, message = 'the workbench restarted before it was answered' "
            "WHERE state = 'pending'", [utcnow()]), topic="control")
        df = self.store.sql("SELECT * FROM agents ORDER BY created_at")
        for row in df.to_dict("records"):
            row = {k: (None if _isnull(v) else v) for k, v in row.items()}
            row["spec"] = json.loads(row["spec"])
            agent = Agent(self, row)
            self.agents[agent.id] = agent
            if agent.state in LIVE and not agent.external:
                self._adopt(agent)
            elif agent.external and agent.state == "waiting-for-approval":
                agent.set_state("running")  # its requests expired above

    def _adopt(self, agent: Agent) -> None:
        if launcher.alive(agent.pid, agent.pid_started):
            backend = BACKENDS[agent.spec["backend"]](agent)
            backend.pid = agent.pid
            agent.backend = backend
            agent.started_at = time.monotonic()
            if backend.protocol:
                note = "its protocol pipes closed with the old workbench: signals only"
            else:
                backend.follow(from_end=True)
                note = "its output is followed again"
            agent.emit("adopted", f"pid {agent.pid} still running after a workbench restart; "
                       + note)
        else:
            agent.set_state("lost", "its process was gone after a workbench restart")

    def _watch(self) -> None:
        while not self._closed.wait(self.sample_s):
            try:
                self.inbox.expire()
                live = [a for a in list(self.agents.values())
                        if a.backend is not None and a.pid]
                if not live:
                    continue
                children = _children_map()
                samples = []
                for agent in live:
                    sample = self._sample(agent, children)
                    if sample is not None:
                        samples.append([agent.id, utcnow(), sample["cpu_percent"],
                                        sample["rss_bytes"], sample["threads"]])
                if samples:
                    control_writes.agent_samples(self.store, samples)
            except Exception:  # the watchdog must outlive any one bad sample
                log.exception("agent watchdog")

    def _sample(self, agent: Agent, children: dict[int, list[int]]) -> dict[str, Any] | None:
        """CPU, memory and threads of the agent's process tree (from one scan of the process
        table per round: ``Process.children`` scans it once per call, which with 100 agents
        was a third of the supervisor's time)."""
        if not psutil.pid_exists(agent.pid):
            if agent.backend is not None and agent.backend.proc is None:
                self._adopted_gone(agent)
            return None
        tree, todo = [], [agent.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, ()))
        cpu = rss = threads = 0
        known = agent._procs
        for pid in tree:
            try:
                proc = known.get(pid) or known.setdefault(pid, psutil.Process(pid))
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
            except psutil.Error:
                known.pop(pid, None)
        agent.sample = {"cpu_percent": round(cpu, 1), "rss_bytes": rss, "threads": threads}
        self._check_limits(agent, rss)
        return agent.sample

    def _check_limits(self, agent: Agent, rss: int) -> None:
        limits = agent.spec["limits"]
        if limits.get("memory_mb") and rss > limits["memory_mb"] * 2**20:
            self.stop(agent, f"memory limit: {rss / 2**20:.0f} MB > {limits['memory_mb']:g} MB")
        elif limits.get("max_runtime_s") and agent.started_at and \
                time.monotonic() - agent.started_at > limits["max_runtime_s"]:
            self.stop(agent, f"runtime limit: over {limits['max_runtime_s']:g} s")

    def _adopted_gone(self, agent: Agent) -> None:
        """An adopted process ended: its exit status is not ours to read."""
        with agent.lock:
            agent.backend.ended.set()
            agent.backend = None
            reason = agent.stop_reason
            agent.set_state("stopped" if reason is not None else "completed",
                            reason or None)

    def close(self) -> None:
        self._closed.set()
        self.alerts.close()
        self.tasks.close()
        self.webhooks.close()


def _children_map() -> dict[int, list[int]]:
    """Every process's children, from one pass over the process table.

    psutil's own table of parents (what ``Process.children`` reads: one file per
    process, no ``Process`` objects) where it has one, 4x cheaper than ``process_iter``
    (7 ms a second with 71 processes; a workstation runs hundreds); ``process_iter``
    elsewhere.
    """
    children: dict[int, list[int]] = {}
    parents = getattr(psutil, "_ppid_map", None)
    if parents is not None:
        try:
            for pid, ppid in parents().items():
                children.setdefault(ppid, []).append(pid)
            return children
        except (OSError, psutil.Error):
            children.clear()
    for proc in psutil.process_iter(["ppid"]):
        children.setdefault(proc.info["ppid"], []).append(proc.pid)
    return children


def _isnull(value: Any) -> bool:
    try:
        return value != value or value is None  # NaN/NaT from pandas
    except (TypeError, ValueError):
        return False

