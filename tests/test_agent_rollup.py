"""The agents' figures read from the writer's hourly rollup equal the figures added up from
the raw records, for any records, resends and time window (property-based)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.store import Store, rollup, writes
from workbench.store.schema import LATEST

T0 = datetime(2026, 11, 20, 9, 0)
AGENTS = {"s1": "claude-code", "s2": "claude-code", "s3": "codex", "s4": None}
OPS = ["chat", "execute_tool", "api_error", "invoke_agent", None]

record = st.fixed_dictionaries({
    "minute": st.integers(0, 200),  # about 3 hours: whole and partial hours
    "session": st.sampled_from([*AGENTS, None]),
    "model": st.sampled_from(["m-a", "m-b", None]),
    "operation": st.sampled_from(OPS),
    "is_error": st.sampled_from([True, False, None]),
    "tokens": st.one_of(st.none(), st.integers(0, 5000)),
    "cost": st.one_of(st.none(), st.floats(0, 2, allow_nan=False)),
    "log": st.booleans(),
})
#: A bound of the window: none, on an hour, or within one.
bound = st.one_of(st.none(), st.integers(0, 200).map(lambda m: T0 + timedelta(minutes=m)))


def _tables(batch: list[dict], first_id: int) -> dict[str, list[dict]]:
    spans, logs = [], []
    for i, r in enumerate(batch, first_id):
        when = T0 + timedelta(minutes=r["minute"], seconds=i % 60)
        ns = int(when.timestamp() * 1e9) + i
        # A session without an agent stands for the records that name only one of the two.
        agent = AGENTS.get(r["session"], "solo-agent")
        row = {"service_name": agent or "svc", "agent_name": agent, "session_id": r["session"],
               "model": r["model"], "operation": r["operation"], "is_error": r["is_error"],
               "input_tokens": r["tokens"], "output_tokens": r["tokens"] and r["tokens"] // 3,
               "cache_read_tokens": r["tokens"], "cache_creation_tokens": None,
               "reasoning_tokens": r["tokens"] and 7, "cost_usd": r["cost"]}
        if r["log"]:
            logs.append({**row, "time": when, "time_ns": ns, "observed_ns": ns,
                         "body": f"event {i}", "attributes": "{}", "resource": "{}"})
        else:
            spans.append({**row, "trace_id": f"{i:032x}", "span_id": f"{i:016x}",
                          "start_time": when, "start_ns": ns, "end_ns": ns + 1000,
                          "name": "op", "attributes": "{}", "resource": "{}"})
    return {"spans": spans, "logs": logs}


def _raw(store: Store) -> pd.DataFrame:
    """Every record with the time it counts at: the figures' reference."""
    return store.sql(f"SELECT * FROM ({rollup.records()}) ORDER BY t", [])


def _expected(raw: pd.DataFrame, since, until) -> tuple[pd.DataFrame, pd.DataFrame]:
    r = raw
    if since is not None:
        r = r[r.t >= since]
    if until is not None:
        r = r[r.t < until]
    r = r.assign(
        model_calls=r.operation.eq("chat"), tool_calls=r.operation.eq("execute_tool"),
        tool_failures=r.operation.eq("execute_tool") & r.is_error.eq(True),
        api_errors=r.operation.eq("api_error") | (r.operation.eq("chat") & r.is_error.eq(True)))
    s = r[r.session_id.notna()].groupby("session_id").agg(
        started=("t", "min"), last_seen=("t", "max"), input_tokens=("input_tokens", "sum"),
        cost_usd=("cost_usd", "sum"), model_calls=("model_calls", "sum"),
        tool_calls=("tool_calls", "sum"), tool_failures=("tool_failures", "sum"),
        api_errors=("api_errors", "sum"),
        models=("model", lambda m: ", ".join(sorted(set(m.dropna()))) or None))
    a = r[r.agent_name.notna()].assign(model=lambda d: d.model.fillna("(unknown)"))
    u = a.groupby(["agent_name", "model"]).agg(
        input=("input_tokens", "sum"), reasoning=("reasoning_tokens", "sum"),
        cost_usd=("cost_usd", "sum"), records=("t", "size"))
    return s, u


def _check(store: Store, since, until) -> None:
    raw = _raw(store)
    assert store.query("telemetry_agents").agent.tolist() == sorted(raw.agent_name.dropna()
                                                                   .unique())
    s, u = _expected(raw, since, until)
    got = store.query("agent_sessions", since=since, until=until).set_index("session_id")
    assert sorted(got.index) == sorted(s.index)
    for col in ("started", "last_seen", "input_tokens", "model_calls", "tool_calls",
                "tool_failures", "api_errors"):
        assert got[col].tolist() == s.loc[got.index, col].tolist(), col
    assert got.cost_usd.tolist() == pytest.approx(s.loc[got.index, "cost_usd"].tolist())
    assert got.models.fillna("").tolist() == s.loc[got.index, "models"].fillna("").tolist()
    usage = store.query("token_usage", since=since, until=until).set_index(["agent", "model"])
    assert sorted(usage.index) == sorted(u.index)
    for col in ("input", "reasoning", "records"):
        assert usage[col].tolist() == u.loc[usage.index, col].tolist(), col
    totals = store.query("agent_totals", since=since, until=until)
    per_agent = got.fillna({"agent": "-"}).groupby("agent").size()
    assert totals.fillna({"agent": "-"}).set_index("agent")["sessions"].to_dict() == (
        per_agent.to_dict())


@settings(max_examples=int(os.environ.get("ROLLUP_EXAMPLES", 25)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(record, min_size=1, max_size=30), min_size=1, max_size=4),
       resend=st.booleans(), fold=st.sampled_from(["each", "auto", "end"]), since=bound,
       until=bound)
def test_rolled_up_figures_equal_the_raw_records(tmp_path_factory, monkeypatch, batches,
                                                 resend, fold, since, until):
    path = tmp_path_factory.mktemp("rollup") / "t.duckdb"
    # The writer folds every few writes; some examples also fold after every batch or at
    # the end, so that the three parts of a query (rolled up, partial hours, not rolled up
    # yet) all count.
    monkeypatch.setattr(rollup, "FOLD_WRITES", 3)
    with Store(path) as store:
        first = 0
        for batch in batches:
            tables = _tables(batch, first)
            writes.submit_telemetry(store, tables).result()
            if resend:  # an exporter retrying: nothing counts twice
                assert writes.submit_telemetry(store, tables).result() == 0
            if fold == "each":
                store.write(rollup.fold, topic=None)
            first += len(batch)
        if fold == "end":
            store.write(rollup.fold, topic=None)
        _check(store, since, until)
        # Folding everything, and the migration's fill (a file from before the rollup),
        # give the same rows.
        store.write(rollup.fold, topic=None)
        waiting = f"SELECT count(*) AS n FROM ({rollup.records()}) WHERE seq > {rollup.FOLDED}"
        assert store.sql(waiting, []).n[0] == 0
        before = store.sql("SELECT * FROM agent_rollup ORDER BY ALL", [])
        store.write(rollup.rebuild, topic=None)
        after = store.sql("SELECT * FROM agent_rollup ORDER BY ALL", [])
        pd.testing.assert_frame_equal(before.drop(columns="cost_usd"),
                                      after.drop(columns="cost_usd"))


def test_a_file_from_before_the_rollup_is_rolled_up_when_opened(tmp_path):
    """Migration 11 fills the rollup from the records a file of schema 10 holds."""
    import duckdb

    from workbench.store.schema import MIGRATIONS

    path = tmp_path / "old.duckdb"
    tables = _tables([{"minute": m, "session": s, "model": "m-a", "operation": "chat",
                       "is_error": False, "tokens": 10 * m, "cost": 0.5, "log": m % 2}
                      for m, s in zip(range(0, 180, 7), ["s1", "s2", "s3", "s4"] * 9,
                                      strict=False)], 0)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER)")
    for version, statements in MIGRATIONS:
        if version < 11:
            for sql in statements:
                con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?)", [version])
    for table, rows in tables.items():
        con.register("rows", pd.DataFrame(rows))
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows")
        con.unregister("rows")
    con.close()
    with Store(path) as store:
        assert store.schema_version == LATEST
        assert store.sql("SELECT count(*) AS n FROM agent_rollup", []).n[0] > 0
        for since, until in ((None, None), (T0 + timedelta(minutes=30), None),
                             (T0 + timedelta(minutes=61), T0 + timedelta(minutes=150))):
            _check(store, since, until)
