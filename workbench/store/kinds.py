"""What the stored data is made of, by kind: which tables hold test results, spans, logs,
metrics, coverage, agents' events and the audit log, which column dates a row and which
names its project — and, for a table that has neither, the table it belongs to.

Export, import and retention all select rows through :func:`where`, so that "the spans of
project X before June" means the same rows to each of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Table:
    """One table of a kind.

    ``time``: the column that dates a row; ``project``: the column naming its project (for
    telemetry, the OpenTelemetry ``service.name``: an OTLP record has no project of its
    own). ``parent``: ``(key columns, table)`` — a row belongs to the parent row with the
    same key, and takes the parent's project (and its date when it has none)."""

    name: str
    time: str | None = None
    project: str | None = None
    parent: tuple[tuple[str, ...], str] | None = None


#: The kinds a person exports or keeps for so long, each with its tables (parents first).
KINDS: dict[str, tuple[Table, ...]] = {
    "tests": (
        Table("runs", "started_at", "project"),
        Table("results", parent=(("run_id",), "runs")),
        # (the failures' signatures: without them the clusters of an import are empty)
        Table("signatures", parent=(("signature",), "results")),
        Table("test_runs", "created_at", "project"),
    ),
    "spans": (
        Table("spans", "start_time", "service_name"),
        Table("span_events", "time", parent=(("trace_id", "span_id"), "spans")),
        Table("span_links", parent=(("trace_id", "span_id"), "spans")),
    ),
    "logs": (Table("logs", "time", "service_name"),),
    "metrics": (Table("metric_points", "time", "service_name"),),
    "coverage": (
        Table("coverage_reports", "created_at", "project"),
        Table("coverage_files", parent=(("report_id",), "coverage_reports")),
        Table("coverage_tests", parent=(("report_id",), "coverage_reports")),
    ),
    "agents": (
        Table("agents", "created_at", "project"),
        Table("agent_events", "ts", parent=(("agent_id",), "agents")),
        Table("agent_samples", "ts", parent=(("agent_id",), "agents")),
        Table("approvals", "created_at", "project"),
        Table("tasks", "created_at", "project"),
    ),
    "audit": (Table("audit", "ts"),),
}
#: Every table of every kind, by name.
TABLES: dict[str, Table] = {t.name: t for tables in KINDS.values() for t in tables}
#: Tables never exported: the server's own bookkeeping, and the agents' hourly figures,
#: which an import rolls up again from the records (store/rollup.py).
INTERNAL = ("schema_version", "live_writers", "agent_rollup", "rollup_state")


def kinds_of(names: list[str] | tuple[str, ...] | None) -> list[str]:
    """The kinds ``names`` asks for (None or ``all``: every one); ValueError naming an
    unknown one."""
    if not names or "all" in names:
        return list(KINDS)
    bad = [n for n in names if n not in KINDS]
    if bad:
        raise ValueError(f"unknown kind {bad[0]!r} (one of {', '.join(KINDS)}, all)")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Filter:
    """Which rows: of one project (None: all), dated in ``[since, until)``."""

    project: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def empty(self) -> bool:
        return self.project is None and self.since is None and self.until is None


def parse_time(text: str | None, name: str) -> datetime | None:
    """An ISO time from a client (``since``, ``until``) as the naive UTC the store keeps;
    ValueError naming the parameter."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is not None:
            from datetime import UTC

            when = when.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise ValueError(f"{name}: not an ISO time (UTC, within years 1-9999): "
                         f"{text[:40]!r}") from None
    return when


def where(table: Table, f: Filter, alias: str = "", names: dict[str, str] | None = None,
          bind: Callable[[Any], str] | None = None) -> tuple[str, list[Any]]:
    """``(SQL condition, arguments)`` selecting ``table``'s rows that ``f`` keeps.

    A table without a date column is dated by its parent's; one without a project column
    takes its parent's project. A table that has neither and no parent (a metric point of
    a service, or the audit log filtered by project) keeps every row for the part it
    cannot answer: the audit log has no project.

    ``names`` and ``bind``: another dialect's (a ClickHouse store's views, its bound
    placeholders): a parent table is named ``names[table]``, a value becomes ``bind(v)``.
    """
    col = (alias + ".") if alias else ""
    clauses, args = [], []
    names = names or {}
    mark = bind or (lambda value: "?")
    if f.since is not None and table.time:
        clauses.append(f"{col}{table.time} >= {mark(f.since)}")
        args.append(f.since)
    if f.until is not None and table.time:
        clauses.append(f"{col}{table.time} < {mark(f.until)}")
        args.append(f.until)
    if f.project is not None and table.project:
        clauses.append(f"{col}{table.project} = {mark(f.project)}")
        args.append(f.project)
    if table.parent is not None:
        keys, parent_name = table.parent
        inherit = Filter(f.project if not table.project else None,
                         None if table.time else f.since, None if table.time else f.until)
        if not inherit.empty:
            sub, sub_args = where(TABLES[parent_name], inherit, names=names, bind=bind)
            cols = ", ".join(f"{col}{k}" for k in keys)
            lhs = f"({cols})" if len(keys) > 1 else cols
            clauses.append(f"{lhs} IN (SELECT {', '.join(keys)} FROM "
                           f"{names.get(parent_name, parent_name)} WHERE {sub})")
            args += sub_args
    return (" AND ".join(clauses) or "TRUE"), args
