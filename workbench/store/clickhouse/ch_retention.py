"""Retention on ClickHouse: the policies as the tables' TTL, and applied now on demand.

The policies themselves are the node's (its file's ``retention_policies``, set on the
Storage page or ``observatory retention``). On ClickHouse a policy's ``days`` become the
shared tables' TTL rules, so that ClickHouse drops old rows as it merges, on every node's
data and on what Collectors write: one rule per project with its own policy
(``WHERE project = …``), and the default's for the others (``WHERE project NOT IN …``).
Telemetry's project is its service, as on the file. Agents' events and samples and the
audit log have no project column there: only the default policy applies to them. A
policy that archives first is no TTL (ClickHouse would drop the rows unarchived): the
workbench applies it, as on the file.

"Apply the policies now" deletes at once what the TTL would drop later, and what only a
count can say (``keep_runs``: the newest N runs or coverage reports of each project),
with lightweight ``DELETE``s; ``archive`` writes the rows to Parquet first.

The TTL the workbench set is remembered (``wb_retention_ttl``), so that a table whose
TTL a Collector's ``ttl`` setting made is changed only when a policy of its kind exists,
and given back without one only when the workbench had set it.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .otel_ddl import METRIC_TABLES

#: Per kind: (table, the column that dates a row, the column naming its project or None).
TARGETS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "tests": (("wb_runs", "started_at", "project"), ("wb_results", "started_at", "project")),
    "coverage": (("wb_coverage_reports", "created_at", "project"),
                 ("wb_coverage_files", "created_at", "project"),
                 ("wb_coverage_tests", "created_at", "project")),
    "spans": (("otel_traces", "Timestamp", "ServiceName"),
              # (the agents' hourly figures go with the spans they were made of)
              ("wb_agent_hourly", "bucket", "service_name")),
    "logs": (("otel_logs", "Timestamp", "ServiceName"),),
    "metrics": tuple((t, "TimeUnix", "ServiceName") for t in METRIC_TABLES.values()),
    "agents": (("wb_agent_events", "ts", None), ("wb_agent_samples", "ts", None)),
    "audit": (("wb_audit", "ts", None),),
}

#: The counted kinds' main table, key and the tables whose rows go with a row's key.
COUNTED = {"tests": ("runs_v", "run_id", "started_at", ("wb_results", "wb_runs")),
           "coverage": ("coverage_reports_v", "report_id", "created_at",
                        ("wb_coverage_tests", "wb_coverage_files", "wb_coverage_reports"))}

REMEMBERED = """
CREATE TABLE IF NOT EXISTS wb_retention_ttl (table String, clause String, at DateTime64(3))
ENGINE = ReplacingMergeTree(at) ORDER BY table
"""


def _text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _own(policies, kind: str) -> list[str]:
    return sorted({p.project for p in policies if p.kind == kind and p.project})


def _scope(policy, own: list[str], project: str | None) -> str | None:
    """The rows ``policy`` is for, by the ``project`` column: its project's, or the
    default's (every project without a policy of its own, ``own``); ``1`` when that is
    all rows, None when the table has no project column for a project's policy."""
    if policy.project:
        return None if project is None else f"{project} = {_text(policy.project)}"
    if own and project is not None:
        return f"{project} NOT IN ({', '.join(map(_text, own))})"
    return "1"


def ttl(policies, kind: str, time_col: str, project: str | None) -> str:
    """The TTL rules of one table of ``kind`` ('' when no policy gives days)."""
    rules = []
    own = _own(policies, kind)
    for p in policies:
        scope = _scope(p, own, project)
        if p.kind != kind or p.days is None or p.archive or scope is None:
            continue  # (a TTL would drop an archived policy's rows unarchived)
        # (as the file's retention, which cuts back to a whole hour: a row goes when the
        # end of its hour is ``days`` old)
        at = (f"toStartOfHour(toDateTime({time_col})) + "
              f"toIntervalSecond({3600 + int(p.days * 86400)})")
        rules.append(at if scope == "1" else f"{at} WHERE {scope}")
    return ", ".join(rules)


def sync(client, policies) -> dict[str, str]:
    """Give each shared table the TTL the policies say; ``{table: clause}`` changed."""
    client.command(REMEMBERED)
    present = {r[0] for r in client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows}
    before = dict(client.query("SELECT table, argMax(clause, at) FROM wb_retention_ttl "
                               "GROUP BY table").result_rows)
    changed = {}
    for kind, targets in TARGETS.items():
        for table, time_col, project in targets:
            if table not in present:
                continue
            clause = ttl(policies, kind, time_col, project)
            if clause == before.get(table, ""):
                continue
            if clause:
                # (the rows already there are dropped by a background mutation: saving a
                # policy does not wait for a rewrite of the table)
                client.command(f"ALTER TABLE {table} MODIFY TTL {clause}",
                               settings={"materialize_ttl_after_modify": 0})
                client.command(f"ALTER TABLE {table} MATERIALIZE TTL",
                               settings={"mutations_sync": 0})
            elif before.get(table):
                client.command(f"ALTER TABLE {table} REMOVE TTL")
            client.command("INSERT INTO wb_retention_ttl VALUES ({t:String}, {c:String}, "
                           "now64(3))", parameters={"t": table, "c": clause})
            changed[table] = clause
    return changed


def _where(time_col: str, project: str | None, policy, own: list[str],
           cutoff: datetime | None) -> str | None:
    scope = _scope(policy, own, project)
    if scope is None or cutoff is None:
        return None
    return (f"{scope} AND {time_col} < "
            f"toDateTime64({_text(cutoff.isoformat(sep=' '))}, 6, 'UTC')")


def apply(store, todo, policies, now: datetime | None = None,
          archive_dir: Path | None = None) -> dict[str, Any]:
    """Delete now what the policies ``todo`` (of all ``policies``) say, archiving where
    they ask: ``{"deleted": {table: rows}, "archived": [files], "seconds": …}``."""
    from ..retention import cutoff as cut

    start = time.monotonic()
    now = now or datetime.now(UTC).replace(tzinfo=None)
    deleted: dict[str, int] = {}
    archived: list[str] = []

    def drop(table: str, where: str, keep: bool) -> None:
        n = int(store.ch_sql(f"SELECT count() AS n FROM {table} WHERE {where}").n[0])
        if not n:
            return
        if keep and archive_dir is not None:
            archived.append(_archive(store, archive_dir, table, where, now))
        store.ch_command(f"DELETE FROM {table} WHERE {where}")
        deleted[table] = deleted.get(table, 0) + n

    for policy in todo:
        own = _own(policies, policy.kind)
        limit = cut(policy, now)
        for table, time_col, project in TARGETS[policy.kind]:
            where = _where(time_col, project, policy, own, limit)
            if where:
                drop(table, where, policy.archive)
        if policy.keep_runs is not None and policy.kind in COUNTED:
            view, key, when, tables = COUNTED[policy.kind]
            scope = _scope(policy, own, "project")
            doomed = (f"{key} IN (SELECT {key} FROM (SELECT {key}, row_number() OVER "
                      f"(PARTITION BY project ORDER BY {when} DESC) AS n FROM {view} "
                      f"WHERE {scope}) WHERE n > {int(policy.keep_runs)})")
            keys = store.ch_sql(f"SELECT {key} FROM {view} WHERE {doomed}")[key].tolist()
            if keys:
                listed = ", ".join(map(_text, keys))
                for table in tables:
                    drop(table, f"{key} IN ({listed})", policy.archive)
    return {"deleted": deleted, "archived": archived,
            "seconds": round(time.monotonic() - start, 3)}


def _archive(store, folder: Path, table: str, where: str, now: datetime) -> str:
    """The rows about to be deleted, as one Parquet file (zstd) under ``archive/``."""
    import pyarrow.parquet as pq

    (folder / table).mkdir(parents=True, exist_ok=True)
    path = folder / table / f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(store.ch_arrow(f"SELECT * FROM {table} WHERE {where}"), path,
                   compression="zstd")
    return str(path)
