"""Who may do what: one role check for every control action, and the append-only audit log
that records each action, decision and refusal.

Roles (config.GRANTS): ``ingest`` only writes data; a viewer only reads; an operator also
writes data and starts, stops, steers and answers agents; an admin also reads the audit log
and changes policies, rules and webhooks. The HTTP layer checks each route's declared level
(server/routes.py) before a handler runs; this check runs again inside every action, so a
websocket message or widget callback is held to the same rule — hiding a button is not it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import allows, utcnow
from ..store import control_writes

if TYPE_CHECKING:
    from ..store import Store

#: The level (config.GRANTS) each action needs; an action not listed needs admin.
ACTION_ROLE: dict[str, str] = {
    "read": "viewer",
    **dict.fromkeys(("ingest", "hook"), "ingest"),
    **dict.fromkeys(("add", "start", "stop", "pause", "resume", "restart", "interrupt",
                     "message", "config", "limits", "approve", "delete", "task", "alert",
                     "scan", "mcp", "test-run", "workflow-run", "workflow-cancel",
                     "workflow-resume", "console-type"),
                    "operator"),
    **dict.fromkeys(("console-watch", "storage"), "viewer"),
    **dict.fromkeys(("audit", "policy", "rules", "webhooks", "pool", "console-shell",
                     "console-close", "console-replay", "retention", "backup", "compact"),
                    "admin"),
}


class Forbidden(PermissionError):
    """The principal's role is below what the action needs (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    """Who acts: a user, a token's fingerprint, ``loopback``, or a rule; with a role."""

    who: str
    role: str
    client: str = ""

    def may(self, action: str) -> bool:
        return allows(self.role, ACTION_ROLE.get(action, "admin"))


#: What the workbench does by itself (policy rules, limits, restart policy).
SYSTEM = Principal("workbench", "admin", "")


def authorize(store: Store, principal: Principal, action: str, target: str = "",
              params: dict[str, Any] | None = None) -> None:
    """Raise :class:`Forbidden` — and record the refusal — unless ``principal`` may act."""
    if principal.may(action):
        return
    need = ACTION_ROLE.get(action, "admin")
    record(store, principal, action, target, params, f"refused: needs {need}")
    raise Forbidden(f"{action} needs the {need} role; {principal.who} is {principal.role}")


def record(store: Store, principal: Principal, action: str, target: str = "",
           params: dict[str, Any] | None = None, outcome: str = "ok") -> None:
    """Append one line to the audit log (queued on the store's writer; never edited)."""
    control_writes.audit(store, [utcnow(), principal.who, principal.role, action, target,
                                 json.dumps(params or {}, default=str), outcome,
                                 principal.client])
