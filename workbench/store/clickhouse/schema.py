"""The workbench's schema version inside a ClickHouse database, and its migrations.

Every node of a team opens the same database, at its own release. So the version lives
in the database (``wb_schema``), migrations run in order once, each made of statements
that can run twice without harm (two nodes may open a new database at the same moment),
and a node older than the database refuses it rather than putting its own older views
back under the newer nodes.
"""

from __future__ import annotations

from collections.abc import Callable

from . import agent_columns, otel_ddl, records_ddl, results_ddl, rollup, views

#: How many inserted blocks each Collector table remembers, so that a request sent again
#: (an exporter retrying after a lost reply) is stored once: ClickHouse drops a block
#: whose deduplication token it has seen (non-replicated tables need this setting).
DEDUP_WINDOW = 10_000

TABLE = """
CREATE TABLE IF NOT EXISTS wb_schema (version UInt32, at DateTime DEFAULT now())
ENGINE = MergeTree ORDER BY version
"""


def _v1(client) -> None:
    """The Collector's tables, the agent columns, the views, the rollup, dedup."""
    for sql in (*otel_ddl.STATEMENTS, *agent_columns.statements(), *views.STATEMENTS):
        client.command(sql)
    rollup.create(client)
    for table in ("otel_traces", "otel_logs", *otel_ddl.METRIC_TABLES.values()):
        client.command(f"ALTER TABLE {table} MODIFY SETTING "
                       f"non_replicated_deduplication_window = {DEDUP_WINDOW}")


def _v2(client) -> None:
    """Test results: runs, results, signatures (:mod:`.results_ddl`); coverage, agents'
    events and samples, the audit log (:mod:`.records_ddl`)."""
    for sql in (*results_ddl.STATEMENTS, *records_ddl.STATEMENTS):
        client.command(sql)


def _v3(client) -> None:
    """The timeline's rollup: records per hour, agent and kind (:mod:`.rollup`)."""
    rollup.create_activity(client)


def _v4(client) -> None:
    """The spans view shows the attributes' map too (``_attributes``: text search)."""
    client.command(views.SPANS)


#: ``(version, what it does)``, in order. Change one only in a new one.
MIGRATIONS: list[tuple[int, Callable]] = [(1, _v1), (2, _v2), (3, _v3), (4, _v4)]
LATEST = MIGRATIONS[-1][0]


class NewerSchemaError(RuntimeError):
    """The database was migrated by a newer workbench than this one."""


def migrate(client, shown: str) -> int:
    """Bring the database to :data:`LATEST`; return the version it was at."""
    client.command(TABLE)
    current = int(client.query("SELECT max(version) FROM wb_schema").result_rows[0][0] or 0)
    if current > LATEST:
        raise NewerSchemaError(
            f"{shown} holds the schema of a newer workbench (version {current}; this one "
            f"knows up to {LATEST}): upgrade this node")
    for version, run in MIGRATIONS:
        if version > current:
            run(client)
            client.command(f"INSERT INTO wb_schema (version) VALUES ({int(version)})")
    return current
