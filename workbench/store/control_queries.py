"""Named read queries over the control tables (agents' events and samples, approvals,
the audit log)."""

from __future__ import annotations

from typing import Any

from .queries import Rendered, clamped, query


def _limit(p: dict[str, Any], default: int = 200) -> int:
    return clamped(p, "limit", default, 10_000)


@query
def agent_events(p: dict[str, Any]) -> Rendered:
    """One agent's newest events (state changes, transcript, output), oldest first."""
    return (
        """
        SELECT * FROM (SELECT ts, kind, state, text, data FROM agent_events
                       WHERE agent_id = ? ORDER BY ts DESC LIMIT ?) ORDER BY ts
        """,
        [p["agent_id"], _limit(p)],
    )


@query
def agent_samples(p: dict[str, Any]) -> Rendered:
    """One agent's CPU, memory and threads over time."""
    return (
        """
        SELECT * FROM (SELECT ts, cpu_percent, rss_bytes / 1048576.0 AS rss_mb, threads
                       FROM agent_samples WHERE agent_id = ? ORDER BY ts DESC LIMIT ?)
        ORDER BY ts
        """,
        [p["agent_id"], _limit(p, 600)],
    )


@query
def approvals(p: dict[str, Any]) -> Rendered:
    """Permission requests, newest first; ``state`` and ``agent_id`` narrow them."""
    where, args = ["TRUE"], []
    for key in ("state", "agent_id"):
        if p.get(key):
            where.append(f"{key} = ?")
            args.append(p[key])
    return (f"SELECT * FROM approvals WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC LIMIT ?", [*args, _limit(p)])


@query
def audit_log(p: dict[str, Any]) -> Rendered:
    """The audit log, newest first."""
    return "SELECT * FROM audit ORDER BY ts DESC LIMIT ?", [_limit(p)]


@query
def alerts(p: dict[str, Any]) -> Rendered:
    """Fired alerts, newest first; ``state`` (firing, acknowledged, resolved, or ``open``
    for the first two) and ``agent_id`` narrow them."""
    where, args = ["TRUE"], []
    if p.get("state") == "open":
        where.append("state <> 'resolved'")
    elif p.get("state"):
        where.append("state = ?")
        args.append(p["state"])
    if p.get("agent_id"):
        where.append("agent_id = ?")
        args.append(p["agent_id"])
    return (f"SELECT * FROM alerts WHERE {' AND '.join(where)} ORDER BY fired_at DESC "
            "LIMIT ?", [*args, _limit(p)])


@query
def webhook_deliveries(p: dict[str, Any]) -> Rendered:
    """One webhook's deliveries, newest first."""
    return ("SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY created_at DESC "
            "LIMIT ?", [p["webhook_id"], _limit(p)])


@query
def project_agents(p: dict[str, Any]) -> Rendered:
    """The agents working on a project, most recently active first."""
    return ("SELECT agent_id, name, backend, state, session_id, cost_usd, last_error, "
            "created_at, updated_at FROM agents WHERE project = ? ORDER BY updated_at DESC "
            "LIMIT ?", [p["project"], _limit(p, 50)])


@query
def console_history(p: dict[str, Any]) -> Rendered:
    """Commands typed in project shells, newest first: one user's (``who``), optionally of
    one project, containing ``q`` (case-insensitive) or starting with ``prefix``; each
    command once, at its latest use."""
    where, args = ["who = ?"], [p["who"]]
    if p.get("project"):
        where.append("project = ?")
        args.append(p["project"])
    if p.get("q"):
        where.append("contains(lower(command), lower(?))")
        args.append(p["q"])
    if p.get("prefix"):
        where.append("starts_with(command, ?)")
        args.append(p["prefix"])
    return (
        f"""
        SELECT command, max(ts) AS ts, count(*) AS uses, any_value(project) AS project
        FROM console_history WHERE {' AND '.join(where)}
        GROUP BY command ORDER BY max(ts) DESC LIMIT ?
        """,
        [*args, _limit(p, 50)],
    )


@query
def agent_specs(p: dict[str, Any]) -> Rendered:
    """The agents' definitions (JSON), most recently changed first."""
    return "SELECT agent_id, spec FROM agents ORDER BY updated_at DESC LIMIT ?", [_limit(p)]
