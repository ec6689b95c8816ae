"""Retention on ClickHouse: a policy becomes the shared tables' TTL (per project, the
default for the rest), "apply now" deletes what the file's retention deletes, archiving
first when asked, and a removed policy gives the TTL back."""

from __future__ import annotations

import datetime as dt
import time

import pyarrow.parquet as pq
import pytest

from workbench.demo import load_demo
from workbench.store import Store, retention
from workbench.store.clickhouse.ch_store import ClickHouseStore

from .chdb_folder import chdb_url

pytestmark = pytest.mark.slow



def _ttl(ch: ClickHouseStore, table: str) -> str:
    create = ch.ch_sql(f"SHOW CREATE TABLE {table}").iloc[0, 0]
    return create.split("TTL", 1)[1].split("SETTINGS")[0].strip() if "TTL" in create else ""


def test_policies_are_ttl_and_apply_as_on_the_file(tmp_path):
    # ClickHouse applies a TTL at its own "now": the stores are compared at this hour's
    # (and not in its last minute, which a cut to the whole hour would split)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if now.minute == 59:
        time.sleep(61 - now.second)
    duck = Store(tmp_path / "duck.duckdb")
    ch = ClickHouseStore(chdb_url("retention"), tmp_path / "ch" / "control.duckdb")
    try:
        for store in (duck, ch):
            total = load_demo(store)
            retention.put_policy(store, retention.check_policy(
                {"kind": "tests", "project": "ledger-jvm", "days": 10, "archive": True}), "t")
            retention.put_policy(store, retention.check_policy(
                {"kind": "tests", "days": 20}), "t")
            retention.put_policy(store, retention.check_policy(
                {"kind": "coverage", "keep_runs": 2}), "t")
            retention.put_policy(store, retention.check_policy(
                {"kind": "audit", "days": 30}), "t")
        rules = _ttl(ch, "wb_runs")
        # (ledger-jvm's policy archives first: the workbench applies it, no TTL does)
        assert "867600" not in rules and "ledger-jvm" not in rules.split("NOT IN")[0]
        assert "toIntervalSecond(1731600)" in rules and "NOT IN ('ledger-jvm')" in rules
        assert _ttl(ch, "wb_results") and _ttl(ch, "wb_audit")
        assert not _ttl(ch, "wb_coverage_reports")  # (keep_runs is counted, never a TTL)

        ledger = len(ch.query("runs", project="ledger-jvm", limit=10_000))
        outcomes = [retention.apply(s, archive_dir=tmp_path / f"archive-{i}")
                    for i, s in enumerate((duck, ch))]
        # (the demo's coverage is of commits that name each store: compared by time)
        for name, key in (("runs", ["run_id"]), ("coverage_reports", ["project", "created_at"])):
            a, b = (sorted(map(tuple, s.query(name, limit=10_000)[key].values.tolist()))
                    for s in (duck, ch))
            assert a == b, name
        after = ch.query("runs", limit=100_000)
        assert 0 < len(after) < total
        hour = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        for row in after.itertuples():
            days = 10 if row.project == "ledger-jvm" else 20
            assert row.started_at >= hour - dt.timedelta(days=days)
        assert (ch.query("coverage_reports", limit=100).groupby("project").size() <= 2).all()
        # The runs deleted from ledger-jvm were archived first, as on the file (the
        # others, by the TTL or by this apply if its background mutation was not done
        # yet, were not: their policy does not archive).
        files = [f for f in outcomes[1].archived if "wb_runs" in f]
        kept = len(ch.query("runs", project="ledger-jvm", limit=10_000))
        assert files and sum(pq.read_metadata(f).num_rows for f in files) == \
            ledger - kept > 0
        assert all(p == "ledger-jvm" for f in files
                   for p in pq.read_table(f, columns=["project"]).column(0).to_pylist())
        retention.delete_policy(ch, "tests", "ledger-jvm")
        assert "ledger-jvm" not in _ttl(ch, "wb_runs") and _ttl(ch, "wb_runs")
        retention.put_policy(ch, retention.check_policy(
            {"kind": "tests", "project": "web-frontend", "days": 5}), "t")
        assert "toIntervalSecond(435600) WHERE project = 'web-frontend'" in _ttl(ch, "wb_runs")
        retention.delete_policy(ch, "tests", "")
        assert "NOT IN" not in _ttl(ch, "wb_runs") and _ttl(ch, "wb_audit")
        retention.delete_policy(ch, "tests", "web-frontend")
        assert _ttl(ch, "wb_runs") == "" and _ttl(ch, "wb_results") == ""
    finally:
        ch.close()
        duck.close()
