"""The workflows' writes (definitions, runs, steps): queued on the store's writer under the
``control`` topic like every control-plane write, in the order they were made."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .control_writes import submit

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .store import Store

RUN_COLUMNS = ("run_id", "workflow_id", "version", "name", "state", "inputs", "project",
               "started_by", "created_at", "ended_at", "message", "cost_usd", "tokens")
STEP_COLUMNS = ("run_id", "node", "visit", "kind", "state", "outcome", "started_at",
                "ended_at", "task_id", "test_run_id", "approval_id", "agent_id", "session_id",
                "cost_usd", "tokens", "output")


def save_workflow(store: Store, row: dict[str, Any]) -> Future:
    """A new version (never replaced: a run names the version it ran)."""
    return submit(store, "INSERT INTO workflows VALUES (?, ?, ?, ?, ?, ?, ?)", [
        row["workflow_id"], row["version"], row["name"], row["description"],
        json.dumps(row["spec"]), row["created_by"], row["created_at"]])


def save_run(store: Store, row: dict[str, Any]) -> Future:
    values = [json.dumps(row[c]) if c == "inputs" else row[c] for c in RUN_COLUMNS]
    return submit(store, f"INSERT OR REPLACE INTO workflow_runs VALUES "
                         f"({', '.join('?' * len(RUN_COLUMNS))})", values)


def save_step(store: Store, row: dict[str, Any]) -> Future:
    return submit(store, f"INSERT OR REPLACE INTO workflow_steps VALUES "
                         f"({', '.join('?' * len(STEP_COLUMNS))})",
                  [row.get(c) for c in STEP_COLUMNS])
