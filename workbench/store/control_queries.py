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
def agent_events_between(p: dict[str, Any]) -> Rendered:
    """The events of ``agent_ids`` from ``since`` (or strictly after ``after``) to
    ``until``, of the ``kinds`` given (all when none), oldest first; ``newest``: only the
    newest so many."""
    where, args = ["agent_id IN (SELECT unnest(?::VARCHAR[]))"], [list(p["agent_ids"])]
    for key, op in (("since", ">="), ("after", ">"), ("until", "<=")):
        if p.get(key) is not None:
            where.append(f"ts {op} ?")
            args.append(p[key])
    if p.get("kinds"):
        where.append("kind IN (SELECT unnest(?::VARCHAR[]))")
        args.append(list(p["kinds"]))
    newest = clamped(p, "newest", 1_000_000, 1_000_000)
    return (f"""
        SELECT * FROM (SELECT agent_id, ts, kind, state, text, data FROM agent_events
                       WHERE {' AND '.join(where)} ORDER BY ts DESC, kind LIMIT {newest})
        ORDER BY ts, kind""", args)


@query
def alert_preview_events(p: dict[str, Any]) -> Rendered:
    """What a rule's preview reads of events: the newest 200,000 of ``kinds`` of
    ``agent_ids`` since ``since``, oldest first, their time in seconds (``t``)."""
    return ("SELECT * FROM (SELECT agent_id, epoch(ts) AS t, kind, state, text, data "
            "FROM agent_events WHERE ts >= ? AND kind IN (SELECT unnest(?::VARCHAR[])) "
            "AND agent_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY ts DESC LIMIT 200000"
            ") ORDER BY t, kind", [p["since"], list(p["kinds"]), list(p["agent_ids"])])


@query
def alert_preview_samples(p: dict[str, Any]) -> Rendered:
    """Samples of ``agent_ids`` since ``since`` in buckets of ``bucket_s`` seconds: their
    count and sums of CPU and memory."""
    b = float(p["bucket_s"])
    return ("SELECT agent_id, floor(epoch(ts) / ?) * ? AS t, count(*) AS n, "
            "sum(cpu_percent) AS cpu, sum(rss_bytes) / 1048576.0 AS rss_mb "
            "FROM agent_samples WHERE ts >= ? AND agent_id IN (SELECT unnest(?::VARCHAR[])) "
            "GROUP BY ALL ORDER BY agent_id, t", [b, b, p["since"], list(p["agent_ids"])])


@query
def alert_preview_quiet(p: dict[str, Any]) -> Rendered:
    """The silences of ``agent_ids`` while running, longer than ``seconds``, since
    ``since`` (``end``: when the last one ends if nothing followed)."""
    return ("SELECT agent_id, t, until FROM (SELECT agent_id, state, epoch(ts) AS t, "
            "lead(epoch(ts)) OVER (PARTITION BY agent_id ORDER BY ts) AS until "
            "FROM agent_events WHERE ts >= ? AND agent_id IN (SELECT unnest(?::VARCHAR[]))"
            ") WHERE state = 'running' AND coalesce(until, ?) - t > ? ORDER BY t, agent_id",
            [p["since"], list(p["agent_ids"]), float(p["end"]), float(p["seconds"])])


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
