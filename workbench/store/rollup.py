"""The agents' figures per hour, kept up to date by the writer (table ``agent_rollup``).

Every agent figure on the dashboards (sessions, tokens by type, cost, model and tool calls,
failures, API errors) adds up log records and spans. Added up from the raw rows, each live
refresh scanned every record in the time window: with OTLP ingest running flat out that
was most of a refresh round, and a round's cost is what spaces the rounds
(``server/signal.py``). So the figures are kept per hour, service, agent, session and
model, and the queries (``telemetry_queries._pieces``) add three parts, which together
are exactly the records in the window:

- the rolled-up rows of the whole hours inside the window;
- the raw records of the partial hours at the window's ends;
- the raw records of the whole hours not rolled up yet.

Each telemetry write stamps its records with a number (``seq``, from a sequence); every
:data:`FOLD_WRITES` writes (or after :data:`FOLD_ROWS` records) the writer folds the
records stamped since the last fold into the rollup and moves the mark
(``rollup_state.folded``), in the same transaction. Folding each write as it came cost
more than the write itself (DuckDB's fixed cost per statement); a fold of 32 writes costs
about what a fold of one does (~25 ms). The queries read at most that many writes raw.

One aggregation, :func:`aggregate`, defines a row: the migration fills the table with it,
the fold adds with it, and the queries roll up the raw parts with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

#: A record's columns the figures come from (the time column comes first, as ``t``).
RECORD = ("service_name, agent_name, session_id, model, operation, is_error, input_tokens, "
          "output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, cost_usd")

#: What identifies a row: the hour and who did the work with which model.
KEYS = ("bucket", "service_name", "agent_name", "session_id", "model")

#: The figures, summed when rows add up (the first and last record's time aside).
SUMS = ("records", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_creation_tokens", "reasoning_tokens", "cost_usd", "model_calls", "tool_calls",
        "tool_failures", "api_errors")

#: The tables whose records are rolled up, with their time column.
TIME_COLUMN = {"logs": "time", "spans": "start_time"}

#: Fold after this many telemetry writes (or after one that stored :data:`FOLD_ROWS`).
FOLD_WRITES = 32
FOLD_ROWS = 20_000

# Migration 11's statements: change them only in a new migration.
CREATE = ["ALTER TABLE spans ADD COLUMN seq BIGINT", "ALTER TABLE logs ADD COLUMN seq BIGINT",
          "CREATE SEQUENCE telemetry_seq", """
    CREATE TABLE agent_rollup (
        bucket TIMESTAMP, service_name VARCHAR, agent_name VARCHAR, session_id VARCHAR,
        model VARCHAR, first_t TIMESTAMP, last_t TIMESTAMP, records BIGINT,
        input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT,
        cache_creation_tokens BIGINT, reasoning_tokens BIGINT, cost_usd DOUBLE,
        model_calls BIGINT, tool_calls BIGINT, tool_failures BIGINT, api_errors BIGINT
    )
    """, "CREATE TABLE rollup_state (folded BIGINT)", "INSERT INTO rollup_state VALUES (0)"]


def aggregate(source: str) -> str:
    """A ``SELECT`` of ``source``'s records (``t`` and :data:`RECORD`) rolled up to rows
    of ``agent_rollup``. Only records of an agent or a session count: no figure uses the
    others."""
    return f"""
        SELECT date_trunc('hour', t) AS bucket, service_name, agent_name, session_id, model,
               min(t) AS first_t, max(t) AS last_t, count(*) AS records,
               coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
               coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
               coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
               coalesce(sum(cache_creation_tokens), 0)::BIGINT AS cache_creation_tokens,
               coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
               coalesce(sum(cost_usd), 0) AS cost_usd,
               count(*) FILTER (WHERE operation = 'chat') AS model_calls,
               count(*) FILTER (WHERE operation = 'execute_tool') AS tool_calls,
               count(*) FILTER (WHERE operation = 'execute_tool' AND is_error) AS tool_failures,
               count(*) FILTER (WHERE operation = 'api_error'
                                OR (operation = 'chat' AND is_error)) AS api_errors
        FROM ({source}) WHERE agent_name IS NOT NULL OR session_id IS NOT NULL
        GROUP BY ALL
    """


def records(where_logs: str = "TRUE", where_spans: str = "TRUE",
            columns: str = f"seq, {RECORD}") -> str:
    """Log records and spans as one set of records: ``t`` (the record's time) and
    ``columns`` (by default ``seq`` and :data:`RECORD`)."""
    return f"""
        SELECT time AS t, {columns} FROM logs WHERE {where_logs}
        UNION ALL
        SELECT start_time AS t, {columns} FROM spans WHERE {where_spans}
    """


#: Roll up what the file already holds (records from before ``seq`` have none).
FILL = f"INSERT INTO agent_rollup {aggregate(records())}"

#: The mark: records stamped after it are not rolled up yet.
FOLDED = "(SELECT folded FROM rollup_state)"

_MATCH = " AND ".join(f"r.{k} IS NOT DISTINCT FROM d.{k}" for k in KEYS)


def stamp(cur: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """The number for one write's records, and the mark (one statement: a write's fixed
    cost is what limits ingest)."""
    return cur.execute(f"SELECT nextval('telemetry_seq'), {FOLDED}").fetchall()[0]


def fold_if_due(cur: duckdb.DuckDBPyConnection, seq: int, folded: int, stored: int) -> None:
    """Fold after the write stamped ``seq`` (which stored ``stored`` records) when enough
    writes or records wait since the mark ``folded``."""
    if seq - folded >= FOLD_WRITES or stored >= FOLD_ROWS:
        fold(cur, seq)


def fold(cur: duckdb.DuckDBPyConnection, upto: int | None = None) -> None:
    """Add the records stamped after the mark (up to ``upto``, default every one) to
    ``agent_rollup`` and move the mark."""
    folded = cur.execute(f"SELECT {FOLDED}").fetchall()[0][0]
    if upto is None:
        upto = _latest(cur, folded)
    if upto <= folded:
        return
    stamped = f"seq > {int(folded)} AND seq <= {int(upto)}"
    rows = cur.execute("CREATE OR REPLACE TEMP TABLE rollup_delta AS "
                       + aggregate(records(stamped, stamped))).fetchall()[0][0]
    sums = ", ".join(f"{c} = r.{c} + d.{c}" for c in SUMS)
    updated = cur.execute(f"""
        UPDATE agent_rollup r SET first_t = least(r.first_t, d.first_t),
               last_t = greatest(r.last_t, d.last_t), {sums}
        FROM rollup_delta d WHERE {_MATCH}
    """).fetchall()[0][0]
    if updated < rows:  # new hours, sessions or models (else every row was there)
        cur.execute(f"""
            INSERT INTO agent_rollup BY NAME
            SELECT * FROM rollup_delta d
            WHERE NOT EXISTS (SELECT 1 FROM agent_rollup r WHERE {_MATCH})
        """)
    cur.execute("DROP TABLE rollup_delta")
    cur.execute("UPDATE rollup_state SET folded = ?", [upto])


def rebuild(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll up every stored record again (after rows were written around the writer, as
    the query benchmark does to build a large file quickly)."""
    cur.execute("DELETE FROM agent_rollup")
    cur.execute(FILL)
    cur.execute("UPDATE rollup_state SET folded = ?", [_latest(cur, 0)])


def _latest(cur: duckdb.DuckDBPyConnection, after: int) -> int:
    """The last stamp on any record, or ``after`` when none is later."""
    return cur.execute(
        "SELECT greatest((SELECT max(seq) FROM spans WHERE seq > $1), "
        "(SELECT max(seq) FROM logs WHERE seq > $1), $1)", [after]).fetchall()[0][0]
