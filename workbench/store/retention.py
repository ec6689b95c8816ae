"""How long data is kept: policies per kind and project, applied in bounded chunks.

A policy keeps a kind's rows for ``days`` (cut at a whole hour, so that the agents' hourly
figures can be rolled up again exactly) and, for test runs and coverage reports, only the
newest ``keep_runs`` per project. The policy of project ``''`` is the default: it applies to
every project that has none of its own (new projects included). ``archive`` writes the rows
to Parquet beside the database before they are deleted.

Each chunk (at most :data:`CHUNK` rows of the kind's main table, with the rows that belong
to them) is one queued write: ingest's writes take turns with the deletion instead of
waiting for it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import rollup
from .kinds import TABLES, Table
from .sql import literal

if TYPE_CHECKING:
    from .store import Store

#: Rows of a kind's main table deleted per transaction.
CHUNK = 20_000


@dataclass(frozen=True)
class Target:
    """What one kind's retention deletes: a main table (dated), the tables whose rows
    belong to its rows (deleted with them, by key), and whether ``keep_runs`` applies."""

    table: str
    key: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    counted: bool = False  # keep_runs: the newest N rows per project are kept


#: Per kind, what retention deletes. An agent's definition, its tasks and approvals are
#: the control plane's state, not history: its events and resource samples are.
TARGETS: dict[str, tuple[Target, ...]] = {
    "tests": (Target("runs", ("run_id",), ("results", "live_running"), counted=True),
              Target("test_runs", ("id",))),
    "spans": (Target("spans", ("trace_id", "span_id"), ("span_events", "span_links")),),
    "logs": (Target("logs"),),
    "metrics": (Target("metric_points"),),
    "coverage": (Target("coverage_reports", ("report_id",),
                        ("coverage_files", "coverage_tests"), counted=True),),
    "agents": (Target("agent_events"), Target("agent_samples")),
    "audit": (Target("audit"),),
}
#: Tables whose rows have no project at all (a policy for one project cannot apply).
NO_PROJECT = ("audit",)


@dataclass
class Policy:
    kind: str
    project: str = ""
    days: float | None = None
    keep_runs: int | None = None
    archive: bool = False
    updated_by: str | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "project": self.project, "days": self.days,
                "keep_runs": self.keep_runs, "archive": self.archive,
                "updated_by": self.updated_by,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None}


def check_policy(value: Any) -> Policy:
    """A policy from a client's JSON (ValueError naming the field)."""
    if not isinstance(value, dict):
        raise ValueError("a retention policy must be a JSON object")
    unknown = set(value) - {"kind", "project", "days", "keep_runs", "archive"}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: not a field of a retention policy")
    kind = value.get("kind")
    if kind not in TARGETS:
        raise ValueError(f"kind: one of {', '.join(TARGETS)}")
    project = value.get("project") or ""
    if not isinstance(project, str) or len(project) > 200:
        raise ValueError("project: a name of at most 200 characters ('' is the default)")
    if project and kind in NO_PROJECT:
        raise ValueError(f"project: {kind} has no project; set the default ('') only")
    days = value.get("days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int | float)
                             or not 1 / 24 <= days <= 36500):
        raise ValueError("days: a number from 1/24 (an hour) to 36500, or null")
    keep = value.get("keep_runs")
    if keep is not None:
        if kind not in ("tests", "coverage"):
            raise ValueError("keep_runs: only tests and coverage count runs")
        if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= 10**7:
            raise ValueError("keep_runs: a whole number from 1, or null")
    archive = value.get("archive", False)
    if not isinstance(archive, bool):
        raise ValueError("archive: true or false")
    if days is None and keep is None:
        raise ValueError("a policy needs days, keep_runs or both (delete it to keep all)")
    return Policy(kind, project, float(days) if days is not None else None, keep, archive)


def policies(store: Store) -> list[Policy]:
    df = store.sql("SELECT * FROM retention_policies ORDER BY kind, project")
    out = []
    for r in df.to_dict(orient="records"):
        out.append(Policy(r["kind"], r["project"], _num(r["days"]), _int(r["keep_runs"]),
                          bool(r["archive"]), r["updated_by"],
                          None if r["updated_at"] is None or r["updated_at"] != r["updated_at"]
                          else r["updated_at"].to_pydatetime()))
    return out


def _num(v: Any) -> float | None:
    return None if v is None or v != v else float(v)


def _int(v: Any) -> int | None:
    return None if v is None or v != v else int(v)


def put_policy(store: Store, policy: Policy, who: str) -> Policy:
    policy.updated_by, policy.updated_at = who, datetime.now(UTC).replace(tzinfo=None)
    store.write(lambda cur: cur.execute(
        "INSERT OR REPLACE INTO retention_policies VALUES (?, ?, ?, ?, ?, ?, ?)",
        [policy.kind, policy.project, policy.days, policy.keep_runs, policy.archive,
         policy.updated_by, policy.updated_at]), topic="control")
    store.policies_changed()
    return policy


def delete_policy(store: Store, kind: str, project: str = "") -> bool:
    gone = bool(store.write(lambda cur: cur.execute(
        "DELETE FROM retention_policies WHERE kind = ? AND project = ?",
        [kind, project]).fetchone()[0], topic="control"))
    store.policies_changed()
    return gone


# -- which rows ------------------------------------------------------------------------

def _project_expr(table: Table, alias: str) -> str | None:
    """SQL giving a row's project (its own column, or its parent's), or None."""
    if table.project:
        return f"{alias}.{table.project}"
    if table.parent:
        keys, parent = table.parent
        ptable = TABLES[parent]
        if not ptable.project:
            return None
        match = " AND ".join(f"p.{k} = {alias}.{k}" for k in keys)
        return f"(SELECT any_value(p.{ptable.project}) FROM {parent} p WHERE {match})"
    return None


def _project_cond(table: Table, alias: str, policy: Policy,
                  own: list[str]) -> tuple[str, list[Any]]:
    """The rows of the policy's project; for the default, of every project without a
    policy of its own (``own``), and those with none."""
    expr = _project_expr(table, alias)
    if expr is None:
        return "TRUE", []
    if policy.project:
        return f"{expr} = ?", [policy.project]
    if not own:
        return "TRUE", []
    return f"coalesce({expr}, '') NOT IN (SELECT unnest(?::VARCHAR[]))", [own]


def cutoff(policy: Policy, now: datetime | None = None) -> datetime | None:
    """Rows older than this go: ``days`` ago, cut back to a whole hour."""
    if policy.days is None:
        return None
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return (now - timedelta(days=policy.days)).replace(minute=0, second=0, microsecond=0)


def condition(target: Target, policy: Policy, own: list[str],
              now: datetime | None = None) -> tuple[str, list[Any]]:
    """``(SQL over alias t, args)``: the rows of ``target``'s table the policy deletes."""
    table = TABLES[target.table]
    proj, args = _project_cond(table, "t", policy, own)
    parts, out = [], []
    limit = cutoff(policy, now)
    if limit is not None and table.time:
        parts.append(f"t.{table.time} < ?")
        out.append(limit)
    if policy.keep_runs is not None and target.counted:
        key = target.key[0]
        inner, inner_args = _project_cond(table, "r", policy, own)
        parts.append(f"t.{key} IN (SELECT {key} FROM (SELECT r.{key}, row_number() OVER "
                     f"(PARTITION BY r.{table.project} ORDER BY r.{table.time} DESC) AS n "
                     f"FROM {target.table} r WHERE {inner}) WHERE n > ?)")
        out += [*inner_args, policy.keep_runs]
    if not parts:
        return "FALSE", []
    # Either limit deletes (older than N days, or beyond the newest N runs).
    return f"({proj}) AND ({' OR '.join(parts)})", [*args, *out]


# -- applying ---------------------------------------------------------------------------

@dataclass
class Outcome:
    deleted: dict[str, int] = field(default_factory=dict)
    archived: list[str] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "archived": self.archived, "chunks": self.chunks,
                "seconds": round(self.seconds, 3)}


def apply(store: Store, chunk: int = CHUNK, now: datetime | None = None,
          archive_dir: Path | None = None, only: list[Policy] | None = None) -> Outcome:
    """Apply every policy (or ``only`` these): delete, chunk by chunk, what they say."""
    start = time.monotonic()
    now = now or datetime.now(UTC).replace(tzinfo=None)
    every = policies(store)
    todo = only if only is not None else every
    out = Outcome()
    if archive_dir is None and isinstance(store.path, Path):
        archive_dir = store.path.parent / "archive"
    for policy in todo:
        own = sorted({p.project for p in every if p.kind == policy.kind and p.project})
        for target in TARGETS[policy.kind]:
            cond, args = condition(target, policy, own, now)
            if cond == "FALSE":
                continue
            while True:
                keep = archive_dir if policy.archive else None
                n = store.write(lambda cur, t=target, c=cond, a=args, k=keep: _chunk(
                    cur, t, c, a, chunk, k, now, out), topic=_topic(policy.kind))
                out.chunks += 1
                if n < chunk:
                    break
        if policy.kind in ("spans", "logs") and policy.days is not None:
            limit = cutoff(policy, now)
            store.write(lambda cur, p=policy, lim=limit, o=own: _refold(cur, p, lim, o),
                        topic="telemetry")
    shared = store.apply_shared_retention(todo, every, now, archive_dir)
    for table, n in shared.get("deleted", {}).items():
        out.deleted[table] = out.deleted.get(table, 0) + n
    out.archived += shared.get("archived", [])
    out.seconds = time.monotonic() - start
    return out


def _topic(kind: str) -> str:
    return {"tests": "tests", "coverage": "tests"}.get(
        kind, "control" if kind in ("agents", "audit") else "telemetry")


def _chunk(cur, target: Target, cond: str, args: list, chunk: int, archive: Path | None,
           now: datetime, out: Outcome) -> int:
    """Delete one chunk of ``target``'s rows that ``cond`` selects (and the rows that
    belong to them); the number of main rows deleted."""
    table = target.table
    if target.children:
        keys = ", ".join(target.key)
        cur.execute(f"CREATE OR REPLACE TEMP TABLE doomed AS SELECT {keys} FROM {table} t "
                    f"WHERE {cond} LIMIT {int(chunk)}", args)
        match = f"({keys}) IN (SELECT {keys} FROM doomed)" if len(target.key) > 1 else \
            f"{keys} IN (SELECT {keys} FROM doomed)"
        for name in (*target.children, table):
            if archive:
                _archive(cur, archive, name, f"SELECT * FROM {name} WHERE {match}", [],
                         now, out)
            n = cur.execute(f"DELETE FROM {name} WHERE {match}").fetchone()[0]
            out.deleted[name] = out.deleted.get(name, 0) + int(n)
        cur.execute("DROP TABLE doomed")
        return int(n)
    pick = f"SELECT rowid FROM {table} t WHERE {cond} LIMIT {int(chunk)}"
    if archive:
        _archive(cur, archive, table, f"SELECT * FROM {table} WHERE rowid IN ({pick})", args,
                 now, out)
    n = int(cur.execute(f"DELETE FROM {table} WHERE rowid IN ({pick})", args).fetchone()[0])
    out.deleted[table] = out.deleted.get(table, 0) + n
    return n


def _archive(cur, folder: Path, table: str, select: str, args: list, now: datetime,
             out: Outcome) -> None:
    """The rows about to be deleted, as one Parquet file (zstd) under ``archive/``."""
    (folder / table).mkdir(parents=True, exist_ok=True)
    path = folder / table / (f"{now:%Y%m%dT%H%M%S}-{len(out.archived):05d}-"
                             f"{uuid.uuid4().hex[:8]}.parquet")  # (never one that exists)
    n = cur.execute(f"COPY ({select}) TO {literal(path)} (FORMAT parquet, COMPRESSION zstd)",
                    args).fetchone()[0]
    if n:
        out.archived.append(str(path))
    else:
        path.unlink(missing_ok=True)


def _refold(cur, policy: Policy, limit: datetime, own: list[str]) -> None:
    """Roll the hours before ``limit`` up again from what is left of them (the deleted
    records were in them), for the services the policy covered."""
    params: dict[str, Any] = {"lim": limit}
    if policy.project:
        svc, params["svc"] = "service_name = $svc", policy.project
    elif own:
        svc, params["svc"] = ("coalesce(service_name, '') NOT IN "
                              "(SELECT unnest($svc::VARCHAR[]))"), own
    else:
        svc = "TRUE"
    cur.execute(f"DELETE FROM agent_rollup WHERE bucket < $lim AND {svc}", params)
    left = f"(seq IS NULL OR seq <= {rollup.FOLDED}) AND {svc}"
    cur.execute("INSERT INTO agent_rollup " + rollup.aggregate(rollup.records(
        f"time < $lim AND {left}", f"start_time < $lim AND {left}")), params)
