"""Coverage and the control plane's records on ClickHouse (chDB) answer every named query
of theirs as the DuckDB file does.

Both stores take the same writes through the same paths: the demo (its runs and its
coverage per commit, with per-test contexts), coverage.py's own JSON, Cobertura XML and
LCOV written by pytest-cov over a small project, the same report sent twice, and agents'
events, resource samples and audit lines through the control plane's writers. Then every
coverage, event, sample and audit query is asked of both and the answers compared.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from workbench.demo import load_demo
from workbench.intake import LocalIntake
from workbench.store import Store, control_writes, coverage_queries, coverage_writes, writes
from workbench.store.clickhouse import ch_record_queries
from workbench.store.clickhouse.ch_store import ClickHouseStore
from workbench.store.queries import QUERIES

from .chdb_folder import chdb_url
from .test_clickhouse_parity import differences
from .test_clickhouse_results import _Clock
from .test_coverage_ingest import CART, TESTS

# real processes (pytest-cov, coverage.py) and chDB: not in the quick part
pytestmark = pytest.mark.slow

T0 = dt.datetime(2026, 11, 30, 9, 0)


def _coverage_files(tmp) -> list[tuple[str, bytes]]:
    (tmp / "shop").mkdir()
    (tmp / "shop" / "__init__.py").write_text("")
    (tmp / "shop" / "cart.py").write_text(CART)
    (tmp / "tests").mkdir()
    (tmp / "tests" / "__init__.py").write_text("")
    (tmp / "tests" / "test_cart.py").write_text(TESTS)
    py = sys.executable
    for cmd in ([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:observatory",
                 "--cov=shop", "--cov-context=test", "--cov-branch", "--cov-report=", "tests"],
                [py, "-m", "coverage", "json", "--show-contexts", "-o", "cov.json"],
                [py, "-m", "coverage", "xml", "-o", "cov.xml"],
                [py, "-m", "coverage", "lcov", "-o", "cov.lcov"]):
        out = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
    return [(name, (tmp / name).read_bytes()) for name in ("cov.json", "cov.xml", "cov.lcov")]


def _feed(store: Store, files) -> None:
    load_demo(store, end=dt.datetime(2026, 12, 1))
    intake = LocalIntake(store, ci_env={})
    for i, (name, data) in enumerate(files):
        said = intake.coverage(data, name, {"project": "shop", "commit": f"c{i}",
                                            "branch": "main"})
        assert said["ok"], said
    name, data = files[0]
    assert intake.coverage(data, name, {"project": "shop", "commit": "c0",
                                        "branch": "main"})["ok"]  # (again: one report)
    for n in range(40):
        at = T0 + dt.timedelta(seconds=7 * n)
        agent = f"agent-{n % 3}"
        kind = ("state", "log", "tool_use", "tool_result", "result")[n % 5]
        control_writes.agent_event(store, [
            agent, at, kind, "running" if n % 11 else "waiting-for-approval",
            f"line {n} of {agent}",
            json.dumps({"tool": "Edit", "input": {"file_path": f"src/m{n % 4}.py"},
                        "usage": {"input_tokens": n}})])
        control_writes.agent_samples(store, [[agent, at, 10.0 + n, 1_048_576 * (50 + n), 4]])
        control_writes.audit(store, [at, f"user{n % 2}", "operator", "agent.stop",
                                     agent, json.dumps({"reason": n}), "ok", "127.0.0.1"])
    store.settle()


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ch-records")
    (folder / "shop").mkdir()
    files = _coverage_files(folder / "shop")
    duck = Store(folder / "duck" / "duck.duckdb")
    ch = ClickHouseStore(chdb_url("records"), folder / "ch" / "control.duckdb")
    with pytest.MonkeyPatch.context() as patch:
        for store in (duck, ch):
            clock = _Clock()
            patch.setattr(writes, "utcnow", clock)
            patch.setattr(coverage_writes, "utcnow", clock)
            _feed(store, files)
    yield duck, ch
    ch.close()
    duck.close()


def _dialects() -> set[str]:
    return {name for name, fn in ch_record_queries.QUERIES.items()
            if fn.__module__ == ch_record_queries.__name__}


def test_every_coverage_and_record_query_has_a_clickhouse_dialect():
    """Every coverage query, and every query of agents' events and samples and the audit
    log, is answered by ClickHouse (the control plane's state keeps its DuckDB ones)."""
    coverage = {name for name, fn in QUERIES.items()
                if fn.__module__ == coverage_queries.__name__ and name.startswith("coverage")}
    records = {"agent_events", "agent_samples", "audit_log", "agent_events_between",
               "alert_preview_events", "alert_preview_samples", "alert_preview_quiet"}
    assert coverage | records == _dialects()


def _cases(duck: Store) -> list[tuple[str, dict]]:
    reports = duck.query("coverage_reports", limit=1000)
    projects = sorted(set(reports.project))
    agents = ["agent-0", "agent-1", "agent-2", "nobody"]
    files = duck.query("coverage_files", project="shop")
    paths = files.path.tolist()
    cases: list[tuple[str, dict]] = [("coverage_reports", {}), ("coverage_reports",
                                                              {"limit": 2})]
    for p in projects:
        cases += [("coverage_reports", {"project": p}), ("coverage_files", {"project": p}),
                  ("coverage_tests", {"project": p}),
                  ("coverage_tests_in", {"project": p, "paths": paths[:1]})]
        cases += [("coverage_file_tests", {"project": p, "path": x}) for x in
                  [*paths[:2], "cart.py", "nowhere.py"]]
    for rid in [*reports.report_id, "cov-none"]:
        cases += [("coverage_report", {"report_id": rid}), ("coverage_files", {"report_id": rid}),
                  ("coverage_file_totals", {"report_id": rid}),
                  ("coverage_tests", {"report_id": rid})]
    cases += [("coverage_files", {"project": "shop", "commit": "c1"})]
    for a in agents:
        cases += [("agent_events", {"agent_id": a}), ("agent_events", {"agent_id": a,
                                                                       "limit": 3}),
                  ("agent_samples", {"agent_id": a})]
    since, until = T0 + dt.timedelta(seconds=30), T0 + dt.timedelta(seconds=200)
    cases += [("audit_log", {}), ("audit_log", {"limit": 5}),
              ("agent_events_between", {"agent_ids": agents}),
              ("agent_events_between", {"agent_ids": agents[:1], "kinds": ["log"],
                                        "since": since, "until": until, "newest": 2}),
              ("agent_events_between", {"agent_ids": agents, "after": since,
                                        "kinds": ["tool_use", "init"]}),
              ("alert_preview_events", {"since": T0, "kinds": ["log", "state"],
                                        "agent_ids": agents}),
              ("alert_preview_samples", {"since": T0, "agent_ids": agents, "bucket_s": 60}),
              ("alert_preview_quiet", {"since": T0, "agent_ids": agents,
                                       "end": (T0 + dt.timedelta(hours=1)).replace(
                                           tzinfo=dt.UTC).timestamp(), "seconds": 10})]
    return cases


def test_coverage_and_record_queries_answer_alike(both):
    duck, ch = both
    cases = _cases(duck)
    assert {name for name, _ in cases} == _dialects()
    # The demo's repository names its own store in a file, so its commits, and the ids of
    # their reports, differ between the two: a report is asked of each by its own id.
    ids = [s.query("coverage_reports", limit=1000).sort_values(["project", "created_at"])
           .report_id.tolist() for s in (duck, ch)]
    same = dict(zip(*ids, strict=True))
    different, empty = differences(
        duck, ch, cases, drop=("report_id", "commit_sha"),
        theirs=lambda p: {k: same.get(v, v) if k == "report_id" else v for k, v in p.items()})
    assert not different, f"{len(different)} differ:\n" + "\n".join(
        d[:300] for d in different[:30])
    assert empty < len(cases) / 4


def test_the_file_keeps_no_records(both):
    """The node's file is an outbox: coverage, events, samples and audit lines are in
    ClickHouse alone once written."""
    _, ch = both
    for table in ("coverage_reports", "coverage_files", "coverage_tests", "agent_events",
                  "agent_samples", "audit"):
        assert ch.sql(f"SELECT count(*) AS n FROM {table}").n[0] == 0, table
    assert len(ch.query("audit_log", limit=1000)) == 40


def test_comparing_two_reports_answers_alike(both):
    """The comparison reads each report's range lists as Arrow: ClickHouse's arrays come
    back as other list types than DuckDB's, and the answer must not change with them."""
    from workbench.coverage.diff import diff_reports

    duck, ch = both
    ids = [s.query("coverage_reports", limit=1000).sort_values(["project", "created_at"])
           [["project", "report_id"]].values.tolist() for s in (duck, ch)]
    pairs = [((a, b), (x, y)) for (p, a), (q, b), (_, x), (_, y) in zip(
        ids[0], ids[0][1:], ids[1], ids[1][1:], strict=False) if p == q]
    assert len(pairs) >= 3
    compared = 0
    for (a, b), (x, y) in pairs:
        mine, theirs = diff_reports(duck, a, b), diff_reports(ch, x, y)
        for side in ("base", "head"):
            for answer in (mine, theirs):
                answer[side].pop("report_id")
                answer[side].pop("commit")
                answer[side].pop("created_at")
        assert mine == theirs
        compared += len(mine["files"])
    assert compared  # (the demo's commits cover different lines)
