"""Test results on ClickHouse (chDB) answer every named test query as the DuckDB file does.

Both stores take the same writes through the same paths: the demo's runs, reports written
by real runners here (pytest's JUnit, twice, with a flaky test, and Node's ``node --test``
JUnit), a live run in three batches, the same report sent twice, a run deleted, and the
JUnit samples of ``../shared/fixtures`` when present. Then every query of the test pages,
the API and the MCP tools (the selection's and the projects overview's too) is asked of
both, with each filter, and the answers compared value for value and type for type.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.demo import load_demo
from workbench.ingest import IngestError, parse_bytes
from workbench.intake import LocalIntake
from workbench.store import Store, queries, writes
from workbench.store.clickhouse import ch_test_queries
from workbench.store.clickhouse.ch_store import ClickHouseStore

from .chdb_folder import chdb_url
from .test_clickhouse_parity import differences

# real processes (pytest, node) and chDB: not in the quick part
pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"

SHOP_TESTS = """
import os, pytest

def test_ok():
    assert 1 + 1 == 2

def test_fails():
    assert {"a": 1} == {"a": 2}

def test_flaky():
    # passes on the second of two runs (the file the first run leaves says so)
    mark = os.path.join(os.path.dirname(__file__), ".ran")
    if not os.path.exists(mark):
        open(mark, "w").close()
        raise ConnectionError("upstream 10.0.0.7 refused")

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n < 3
"""

NODE_TESTS = """
import { test, describe } from 'node:test';
import assert from 'node:assert';
test('adds', () => assert.strictEqual(1 + 1, 2));
test('breaks', () => assert.strictEqual(1, 2));
describe('suite', () => { test('nested', () => { throw new TypeError('x is undefined'); }); });
"""


def _reports(tmp: Path) -> list[tuple[str, bytes, dict]]:
    """JUnit from the real runners: pytest twice (the flaky test fails, then passes) and
    node's built-in runner when node is here."""
    (tmp / "test_shop.py").write_text(textwrap.dedent(SHOP_TESTS))
    out = []
    for i, commit in enumerate(("a1b2c3d", "a1b2c3d")):
        xml = tmp / f"junit{i}.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                        f"--junitxml={xml}", "test_shop.py"], cwd=tmp, capture_output=True,
                       timeout=120)
        out.append((xml.name, xml.read_bytes(),
                    {"project": "shop", "branch": "main", "commit": commit,
                     "started_at": dt.datetime(2026, 11, 20 + i, 10, tzinfo=dt.UTC)}))
    node = shutil.which("node")
    if node:
        (tmp / "a.test.mjs").write_text(NODE_TESTS)
        subprocess.run([node, "--test", "--test-reporter=junit",
                        "--test-reporter-destination=node.xml", "a.test.mjs"], cwd=tmp,
                       capture_output=True, timeout=120)
        out.append(("node.xml", (tmp / "node.xml").read_bytes(),
                    {"project": "web", "branch": "main", "variant": "node20"}))
    if (FIXTURES / "junit").is_dir():  # (CI has ../shared; a user's checkout may not)
        for path in sorted((FIXTURES / "junit").rglob("*.xml"))[:40]:
            out.append((path.name, path.read_bytes(), {"project": "samples",
                                                       "branch": path.parent.name}))
    return out


def _feed(store: Store, reports) -> None:
    load_demo(store)
    intake = LocalIntake(store, ci_env={})
    for name, data, flags in reports:
        try:
            intake.report(data, name, dict(flags))
        except IngestError:  # (a hostile sample is refused alike by both)
            pass
    name, data, flags = reports[0]
    intake.report(data, name, dict(flags))  # (sent again: stored once)
    live = writes.start_live_run(store, "live-run-0001", {"project": "shop",
                                                          "branch": "live"})
    for batch in range(3):
        run = parse_bytes(
            f'<testsuite><testcase classname="live" name="t{batch}a"/>'
            f'<testcase classname="live" name="t{batch}b"><failure message="boom {batch}">'
            f'AssertionError: boom</failure></testcase></testsuite>'.encode(), "live.xml")
        writes.append_results(store, live, run)
    writes.finish_live_run(store, live, 4.5)
    writes.start_live_run(store, "live-run-0002", {"project": "shop", "branch": "live"})
    writes.append_results(store, "live-run-0002", parse_bytes(
        b'<testsuite><testcase classname="live" name="still"/></testsuite>', "l.xml"))
    gone = store.query("runs", project="samples", limit=1)
    if len(gone):
        assert writes.delete_run(store, gone.run_id[0])
    store.settle()


class _Clock:
    """The writers' clock during a feed: a second per reading from one start, so that
    runs stamped "now" (a live run, a report without a time) get the same times in both
    stores."""

    def __init__(self) -> None:
        self.t = dt.datetime(2026, 11, 30, 9, 0)

    def __call__(self) -> dt.datetime:
        self.t += dt.timedelta(seconds=1)
        return self.t


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ch-results")
    reports = _reports(folder)
    duck = Store(folder / "duck.duckdb")
    ch = ClickHouseStore(chdb_url("results"), folder / "control.duckdb")
    with pytest.MonkeyPatch.context() as patch:
        for store in (duck, ch):
            patch.setattr(writes, "utcnow", _Clock())
            _feed(store, reports)
    yield duck, ch
    ch.close()
    duck.close()


def _cases(duck: Store) -> list[tuple[str, dict]]:
    runs = duck.query("runs", limit=100_000)
    projects = duck.query("projects").project.tolist()
    failing = duck.sql("SELECT test_id, signature FROM results WHERE signature IS NOT NULL "
                       "ORDER BY test_id")
    some_runs = runs.run_id.iloc[:: max(1, len(runs) // 12)].tolist() + ["live-run-0002",
                                                                         "no-such-run"]
    tests = failing.test_id.drop_duplicates().iloc[:6].tolist() + ["test_shop.py::test_ok"]
    first, last = runs.started_at.min(), runs.started_at.max()
    window = {"since": first + (last - first) / 3, "until": last - (last - first) / 4}
    filters = [{}, {"branch": "main"}, {"variant": "node20"}, window, {"limit": 3},
               {"limit": 4, "offset": 2}] + [{"project": p} for p in projects]
    cases: list[tuple[str, dict]] = []
    for name in sorted(ch_test_queries.QUERIES):
        fn = ch_test_queries.QUERIES[name]
        if fn.__module__ != ch_test_queries.__name__:
            continue
        if name in ("run", "base_run", "run_results", "final_outcomes"):
            cases += [(name, {"run_id": r}) for r in some_runs]
            cases += [("run_results", {"run_id": r, "final_only": True}) for r in some_runs]
        elif name in ("test_history", "duration_trend"):
            cases += [(name, {"test_id": t, **f}) for t in tests for f in filters[:4]]
        elif name == "cluster_failures":
            cases += [(name, {"signature": s}) for s in failing.signature.unique()[:8]]
        elif name == "search_tests":
            cases += [(name, {"text": t}) for t in ("test", "flaky", "nested", "zzz")]
        elif name in ("last_outcomes", "selection_stats", "selection_history"):
            cases += [(name, {"project": p}) for p in projects]
            cases += [("selection_stats", {"project": p, "window": 3}) for p in projects]
        elif name == "test_run_stats":
            cases += [(name, {**f, "window": w}) for f in filters for w in (30, 2)]
        elif name == "runs_ingested_since":
            cases += [(name, {"project": p, "since": dt.datetime(2026, 1, 1)})
                      for p in projects]
        elif name == "final_failures":
            cases.append((name, {"run_ids": some_runs}))
        elif name == "last_pass":
            cases += [(name, {"project": p}) for p in [*projects, "nothing"]]
        elif name == "data_version":
            continue  # (compared below: the live tests column is the node's own)
        else:
            cases += [(name, f) for f in filters]
    cases += [(name, {}) for name in ch_test_queries.FEDERATED if name != "project_folder"]
    cases += [("project_folder", {"name": p}) for p in projects]
    return cases


def test_every_test_query_of_the_pages_has_a_clickhouse_dialect():
    """Each named query of runs and results (queries.py's) is answered by ClickHouse."""
    of_tests = {name for name, fn in queries.QUERIES.items()
                if fn.__module__ == queries.__name__} - {"running_tests"}
    assert of_tests <= set(ch_test_queries.QUERIES)


def test_test_queries_answer_alike(both):
    duck, ch = both
    cases = _cases(duck)
    assert len(cases) > 150
    # (when each store stored a row or scanned a folder is its own moment, "at" too; the
    # demo project's MCP declaration names its own store, and so its commit)
    different, empty = differences(duck, ch, cases, drop=(
        "ingested_at", "at", "scanned_at", "mcp_servers", "head"))
    assert not different, f"{len(different)} differ:\n" + "\n".join(
        d[:300] for d in different[:30])
    assert empty < len(cases) / 4


def test_the_file_keeps_only_what_is_still_running(both):
    """The node's file is an outbox: finished runs are in ClickHouse alone; the running
    one is in both (its counts are made from its rows in the file)."""
    duck, ch = both
    assert ch.sql("SELECT run_id FROM runs").run_id.tolist() == ["live-run-0002"]
    assert ch.sql("SELECT count(*) AS n FROM results").n[0] == 1
    assert len(ch.query("runs", limit=100_000)) == len(duck.query("runs", limit=100_000))
    a, b = duck.query("data_version"), ch.query("data_version")
    assert a.runs[0] == b.runs[0] and a.attempts[0] == b.attempts[0]


def test_a_finished_run_refuses_results_and_a_resend_is_not_new(both):
    """What the file no longer holds is still known: a finished run says it is finished,
    a report stored before is not stored again, a deleted run is gone."""
    from workbench.store import RunStateError

    _, ch = both
    batch = parse_bytes(b'<testsuite><testcase name="late"/></testsuite>', "late.xml")
    with pytest.raises(RunStateError, match="is complete"):
        writes.append_results(ch, "live-run-0001", batch)
    report = ch.query("runs", project="shop", branch="main", limit=1)
    assert len(report) == 1
    run_id, created = writes.insert_run(ch, batch, {"project": "x"})
    assert created and not writes.insert_run(ch, batch, {"project": "x"})[1]
    assert writes.delete_run(ch, run_id)
    assert not writes.delete_run(ch, run_id)
    assert ch.query("run", run_id=run_id).empty


def test_an_export_from_clickhouse_is_the_files(both, tmp_path):
    """`observatory export` (and the Storage page's download) of a ClickHouse store streams
    the shared tables out with the file's columns and types: the same rows as the file's
    export, whatever the filter."""
    import datetime as dt

    import pyarrow.parquet as pq

    from workbench.store.export import export
    from workbench.store.kinds import Filter

    duck, ch = both
    for flt in (Filter(), Filter("shop"), Filter(None, dt.datetime(2026, 11, 21))):
        tables = []
        for name, store in (("duck", duck), ("ch", ch)):
            export(store, tmp_path / f"{name}-{id(flt)}", kinds=["tests"], flt=flt)
            tables.append({t: pq.read_table(tmp_path / f"{name}-{id(flt)}" / f"{t}.parquet")
                           for t in ("runs", "results", "signatures")})
        for t, a in tables[0].items():
            b = tables[1][t]
            assert a.column_names == b.column_names, t
            keep = [c for c in a.column_names if c != "ingested_at"]
            rows = [sorted(map(str, x.select(keep).to_pylist())) for x in (a, b)]
            assert rows[0] == rows[1] and (rows[0] or flt.project), (t, flt)
