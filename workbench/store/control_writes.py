"""The control plane's writes (agents, their events and samples, approvals, the audit log):
queued on the store's writer under the ``control`` topic, never waited for — a control
action must not stall on a busy store, and the writer keeps their order."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .writes import _insert_arrow

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .store import Store

log = logging.getLogger("workbench.store")

AGENT_COLUMNS = ("agent_id", "name", "backend", "project", "spec", "state", "pid", "pid_started",
                 "session_id", "last_error", "exit_code", "cost_usd", "restarts", "created_at",
                 "updated_at")
APPROVAL_COLUMNS = ("approval_id", "agent_id", "session_id", "project", "tool", "input",
                    "state", "message", "decided_by", "created_at", "decided_at")


def submit(store: Store, sql: str, values: list[Any]) -> Future:
    """Queue one control-plane statement; a failure is logged. Returns its future, for the
    few callers that must not answer before it is stored (a new agent, a new task)."""
    fut = store.submit(lambda cur: cur.execute(sql, values), topic="control")
    fut.add_done_callback(_log_failure)
    return fut


def _log_failure(fut) -> None:
    if fut.exception() is not None:
        log.error("control write failed: %s", fut.exception())


def save_agent(store: Store, row: dict[str, Any]) -> Future:
    return submit(store, f"INSERT OR REPLACE INTO agents VALUES ({', '.join('?' * 15)})",
            [row[c] for c in AGENT_COLUMNS])


def agent_event(store: Store, values: list[Any]) -> None:
    """``[agent_id, at, kind, state, text, data_json]``."""
    submit(store, "INSERT INTO agent_events VALUES (?, ?, ?, ?, ?, ?)", values)


def console_commands(store: Store, rows: list[list[Any]]) -> None:
    """``[at, who, project, command, console]`` per command typed in a project shell."""
    for values in rows:
        submit(store, "INSERT INTO console_history VALUES (?, ?, ?, ?, ?)", values)


def save_approval(store: Store, row: dict[str, Any]) -> None:
    submit(store, f"INSERT OR REPLACE INTO approvals VALUES ({', '.join('?' * 11)})",
            [row[c] for c in APPROVAL_COLUMNS])


def agent_samples(store: Store, rows: list[list[Any]]) -> None:
    """``[agent_id, at, cpu_percent, rss_bytes, threads]`` per live agent, in one insert."""
    table = pa.table(list(zip(*rows, strict=True)),
                     names=["agent_id", "ts", "cpu_percent", "rss_bytes", "threads"])
    fut = store.submit(lambda cur: _insert_arrow(cur, "agent_samples", table), topic="control")
    fut.add_done_callback(_log_failure)


def audit(store: Store, values: list[Any]) -> None:
    """One audit line: ``[at, who, role, action, target, params_json, outcome, client]``.
    Appended only: no interface updates or deletes it."""
    submit(store, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
