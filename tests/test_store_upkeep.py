"""The file kept for months: export and import, OTLP out, retention, compaction, backup and
restore — on real files, and through a real served workbench while OTLP load runs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest

from workbench.store import Store, otlp_out, retention, rollup, upkeep
from workbench.store.export import ExportError, export, import_export
from workbench.store.kinds import Filter

from .conftest import ROLE_ENV, ROOT, TOKENS, Served, role_client, wait_for

ADMIN = {"Authorization": f"Bearer {TOKENS['admin']}"}


def differing(a: Path, b: Path, table: str) -> tuple[int, int]:
    """Rows of ``table`` in one file and not the other, each way (as multisets; the
    telemetry stamps ``seq`` start again in a new file)."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        cols = "* EXCLUDE (seq)" if table in rollup.TIME_COLUMN else "*"
        one = f"SELECT {cols} FROM a.{table}"
        two = f"SELECT {cols} FROM b.{table}"
        return (con.execute(f"SELECT count(*) FROM ({one} EXCEPT ALL {two})").fetchone()[0],
                con.execute(f"SELECT count(*) FROM ({two} EXCEPT ALL {one})").fetchone()[0])
    finally:
        con.close()


@pytest.mark.parametrize("fmt,partition", [("parquet", False), ("csv", False),
                                           ("parquet", True), ("jsonl", False)])
def test_export_then_import_is_equal_row_for_row(demo_store, tmp_path, fmt, partition):
    """The demo dataset (with the real producers' reports in it) out and into a new file:
    every table equal, and the agents' hourly figures rolled up again to the same sums."""
    demo_store.write(lambda cur: rollup.fold(cur), topic=None)  # as a served file has them
    manifest = export(demo_store, tmp_path / "out", fmt=fmt, partition=partition)
    assert manifest["tables"]["results"]["rows"] > 10_000
    assert manifest["tables"]["spans"]["rows"] > 100 and "agent_rollup" not in manifest["tables"]
    if partition:
        assert any("day=" in f for f in manifest["tables"]["runs"]["files"])
    src = Path(demo_store.path)
    demo_store.close()
    with Store(tmp_path / "new.duckdb") as new:
        counts = import_export(new, tmp_path / "out")
        sums = new.sql("SELECT sum(records) r, sum(tool_calls) t FROM agent_rollup")
    assert counts == {t: v["rows"] for t, v in manifest["tables"].items()}
    for table in manifest["tables"]:
        if fmt == "jsonl" and table in ("projects", "workflows"):
            continue  # (JSON columns keep their values, not their whitespace: below)
        assert differing(src, tmp_path / "new.duckdb", table) == (0, 0), table
    with Store(src, read_only=True) as old:
        assert old.sql("SELECT sum(records) r, sum(tool_calls) t FROM agent_rollup"
                       ).equals(sums)


def test_jsonl_keeps_json_values(demo_store, tmp_path):
    export(demo_store, tmp_path / "out", ["all"], "jsonl")
    with Store(tmp_path / "new.duckdb") as new:
        import_export(new, tmp_path / "out")
        got = new.sql("SELECT path, mcp_servers FROM projects ORDER BY path")
    want = demo_store.sql("SELECT path, mcp_servers FROM projects ORDER BY path")
    assert [json.loads(x) for x in got["mcp_servers"]] == \
        [json.loads(x) for x in want["mcp_servers"]]


def test_filtered_export_and_refusals(demo_store, tmp_path):
    project = demo_store.sql("SELECT project FROM runs GROUP BY 1 ORDER BY count(*) DESC "
                             "LIMIT 1")["project"][0]
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=7)
    m = export(demo_store, tmp_path / "p", ["tests"], flt=Filter(project, since))
    runs = pq.read_table(tmp_path / "p" / "runs.parquet").to_pandas()
    results = pq.read_table(tmp_path / "p" / "results.parquet").to_pandas()
    assert set(runs["project"]) == {project} and (runs["started_at"] >= since).all()
    want = demo_store.sql("SELECT count(*) n FROM results WHERE run_id IN (SELECT run_id "
                          "FROM runs WHERE project = ? AND started_at >= ?)", [project, since])
    assert len(results) == want["n"][0] == m["tables"]["results"]["rows"] > 0
    with pytest.raises(ExportError, match="not an empty folder"):
        export(demo_store, tmp_path / "p")
    with pytest.raises(ValueError, match="unknown kind 'nope'"):
        export(demo_store, tmp_path / "q", ["nope"])
    # An import into a file that holds data, or of a damaged export, stores nothing.
    with pytest.raises(ExportError, match="already holds runs rows"):
        import_export(demo_store, tmp_path / "p")
    (tmp_path / "p" / "results.parquet").write_bytes(b"not parquet")
    with Store(tmp_path / "fresh.duckdb") as fresh:
        with pytest.raises(ExportError, match="p"):
            import_export(fresh, tmp_path / "p")
        assert fresh.sql("SELECT count(*) n FROM runs")["n"][0] == 0
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    manifest["tables"]["runs"]["files"] = ["../../../../etc/passwd"]
    (tmp_path / "p" / "manifest.json").write_text(json.dumps(manifest))
    with Store(tmp_path / "fresh2.duckdb") as fresh, \
            pytest.raises(ExportError, match="outside the export"):
        import_export(fresh, tmp_path / "p")
    with pytest.raises(ExportError, match="no manifest.json"):
        import_export(demo_store, tmp_path)


def old_spans(service: str, n: int, days_ago: float) -> bytes:
    """An OTLP/JSON request of ``n`` spans that ended ``days_ago`` days ago."""
    t = int((time.time() - days_ago * 86400) * 1e9)
    spans = [{"traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16],
              "name": f"old-{i}", "kind": 1, "startTimeUnixNano": str(t + i),
              "endTimeUnixNano": str(t + i + 1000),
              "attributes": [{"key": "gen_ai.agent.name", "value": {"stringValue": "a"}}],
              "events": [{"timeUnixNano": str(t + i), "name": "e"}]} for i in range(n)]
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]}]}).encode()


class Load:
    """The OpenTelemetry SDK's own OTLP/HTTP exporter sending batches of spans of one
    service until stopped; ``acked`` counts the spans it was told were stored."""

    def __init__(self, url: str, service: str, batch: int = 200):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

        self.spans: list = []

        class Keep(SpanExporter):
            def export(inner, spans):  # noqa: N805
                self.spans.extend(spans)

        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(Keep()))
        self.exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", headers=ADMIN,
                                         timeout=60)
        self.tracer = self.provider.get_tracer("load")
        self.batch, self.acked, self.failed = batch, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        while not self.stop.is_set():
            self.spans.clear()
            for i in range(self.batch):
                with self.tracer.start_as_current_span(f"load-{i}"):
                    pass
            if self.exporter.export(list(self.spans)) == SpanExportResult.SUCCESS:
                self.acked += len(self.spans)
            else:
                self.failed += 1

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(60)
        self.exporter.shutdown()
        self.provider.shutdown()
        return self.acked


@pytest.fixture
def admin(served):
    with role_client(served, "admin") as c:
        yield c


@pytest.fixture
def viewer(served):
    with role_client(served, "viewer") as c:
        yield c


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("upkeep") / "up.duckdb", env={
        **ROLE_ENV, "OBSERVATORY_RETENTION_EVERY_S": "0"})
    yield s
    s.stop()


def count(c: httpx.Client, sql_service: str) -> int:
    from workbench.client import RemoteStore

    with RemoteStore(str(c.base_url), token=TOKENS["admin"]) as r:
        return int(r.query("telemetry_counts", service=sql_service)["spans"][0])


@pytest.mark.slow
def test_retention_while_otlp_load_runs(served, admin):
    """Old spans go, exactly those, while an SDK exporter keeps sending: none of the spans
    it was told were stored is lost; the hourly figures follow."""
    old = f"old-{uuid.uuid4().hex[:6]}"
    for days in (10, 5):
        r = admin.post("/v1/traces", content=old_spans(old, 500, days),
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
    r = admin.post("/v1/traces", content=old_spans(old, 300, 1),
                   headers={"Content-Type": "application/json"})
    assert count(admin, old) == 1300
    load = Load(served.url, f"load-{uuid.uuid4().hex[:6]}")
    wait_for(lambda: load.acked >= 1000, what="load under way")
    # Spans of every service older than 3 days go (1,000 of them); a chunk is 20k rows.
    r = admin.put("/api/store/retention", json={"kind": "spans", "days": 3})
    assert r.status_code == 200, r.text
    with role_client(served, "operator") as operator:
        assert operator.put("/api/store/retention",
                            json={"kind": "spans", "days": 3}).status_code == 403
    done = admin.post("/api/store/retention/run", json={})
    assert done.status_code == 200, done.text
    assert done.json()["deleted"]["spans"] >= 1000
    assert done.json()["deleted"]["span_events"] >= 1000
    time.sleep(1)
    acked = load.finish()
    assert load.failed == 0 and acked > 1000
    assert count(admin, old) == 300
    assert count(admin, load.provider.resource.attributes["service.name"]) == acked
    state = admin.get("/api/store").json()
    assert state["policies"][0]["kind"] == "spans" and state["last"]["retention"]["chunks"]
    assert admin.delete("/api/store/retention/spans").status_code == 200
    assert admin.delete("/api/store/retention/spans").status_code == 404


@pytest.mark.slow
def test_backup_under_load_restores(served, admin, tmp_path):
    """A backup taken while the exporter sends holds every span acknowledged before it
    began (and no more than were sent by its end), opens, and restores; a served file is
    not restored over."""
    load = Load(served.url, f"bk-{uuid.uuid4().hex[:6]}")
    wait_for(lambda: load.acked >= 600, what="load under way")
    before = load.acked
    r = admin.post("/api/store/backup", json={"keep": 2})
    after = load.acked
    assert r.status_code == 200, r.text
    info = r.json()
    load.finish()
    service = load.provider.resource.attributes["service.name"]
    target = tmp_path / "restored.duckdb"
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "restore", "--db",
                           str(target), info["path"]], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    with Store(target) as s:
        n = s.sql("SELECT count(*) n FROM spans WHERE service_name = ?", [service])["n"][0]
    assert before <= n <= after + load.batch
    refused = subprocess.run([sys.executable, "-m", "workbench.cli", "restore", "--db",
                              str(served.db), info["path"]], capture_output=True, text=True,
                             cwd=ROOT)
    assert refused.returncode == 2 and "stop it first" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    # keep=2: a third backup removes the first.
    for _ in range(2):
        last = admin.post("/api/store/backup", json={"keep": 2}).json()
    assert Path(info["path"]).name in last["removed"]
    assert not Path(info["path"]).exists()


@pytest.mark.slow
def test_export_api_streams_tables(served, admin, viewer, tmp_path):
    r = viewer.get("/api/export/runs", params={"format": "parquet"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    (tmp_path / "runs.parquet").write_bytes(r.content)
    assert pq.read_table(tmp_path / "runs.parquet").num_rows > 100
    r = viewer.get("/api/export/results", params={"format": "csv", "project": "ledger-jvm"})
    assert r.status_code == 200 and r.text.startswith("run_id,test_id")
    assert viewer.get("/api/export/audit").status_code == 403
    assert admin.get("/api/export/audit?format=jsonl").status_code == 200
    for bad, status, why in [("/api/export/secrets", 404, "no table 'secrets'"),
                             ("/api/export/runs?since=yesterday", 400, "since: not an ISO"),
                             ("/api/export/runs?format=xml", 400, "format"),
                             ("/api/export/runs?format=otlp", 400, "spans only")]:
        r = viewer.get(bad)
        assert r.status_code == status and why in r.json()["error"], (bad, r.text)
    r = viewer.get("/api/export/spans", params={"format": "otlp"})
    docs = [json.loads(line) for line in r.text.splitlines()]
    assert sum(len(s["spans"]) for d in docs for rs in d["resourceSpans"]
               for s in rs["scopeSpans"]) > 100


@pytest.mark.slow
def test_spans_move_to_another_receiver_as_otlp(demo_store, tmp_path):
    """The demo's spans, sent as OTLP/JSON to a second workbench's receiver, arrive the
    same: ids, names, times, attributes, events, links."""
    other = Served(tmp_path / "other.duckdb", extra_args=("--no-demo",))
    try:
        sent = otlp_out.send(demo_store, other.url)
        assert sent == demo_store.sql("SELECT count(*) n FROM spans")["n"][0]
    finally:
        other.stop()
    cols = ("trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status_code, "
            "status_message, service_name, scope_name, scope_version, attributes::JSON, "
            "resource::JSON, events, links, agent_name, session_id, cost_usd, tool_name")
    src = demo_store.sql(f"SELECT {cols} FROM spans ORDER BY trace_id, span_id")
    with Store(tmp_path / "other.duckdb", read_only=True) as b:
        dst = b.sql(f"SELECT {cols} FROM spans ORDER BY trace_id, span_id")
        ev = b.sql("SELECT count(*) n FROM span_events")["n"][0]
    assert src.astype(str).equals(dst.astype(str))
    assert ev == demo_store.sql("SELECT count(*) n FROM span_events")["n"][0]


def test_compaction_gives_back_a_million_deleted_rows(tmp_path):
    """A file that held 1M rows deleted by retention keeps its size until compacted; the
    compacted file holds the same live rows and takes writes."""
    with Store(tmp_path / "big.duckdb") as s:
        old = datetime(2020, 1, 1)
        s.write(lambda cur: cur.execute(
            "INSERT INTO logs (time, time_ns, body, service_name) SELECT ? + "
            "to_seconds(i), i, md5(i::VARCHAR) || md5((i * 7)::VARCHAR), 'svc' "
            "FROM range(1000000) r(i)", [old]))
        s.write(lambda cur: cur.execute(
            "INSERT INTO logs (time, body, service_name) SELECT now()::TIMESTAMP, "
            "'kept ' || i, 'svc' FROM range(1000) r(i)"))
        s.write(lambda cur: cur.execute("CHECKPOINT"), topic=None)
        full = upkeep.file_stats(s)
        retention.put_policy(s, retention.check_policy({"kind": "logs", "days": 30}), "t")
        out = retention.apply(s)
        assert out.deleted["logs"] == 1_000_000 and out.chunks == 51
        s.write(lambda cur: cur.execute("CHECKPOINT"), topic=None)
        deleted = upkeep.file_stats(s)
        result = upkeep.compact(s)
        after = upkeep.file_stats(s)
        print(f"\n1M rows: {full['file_bytes'] / 2**20:.1f} MiB; deleted: "
              f"{deleted['file_bytes'] / 2**20:.1f} MiB (bloat {deleted['bloat']}); "
              f"compacted: {after['file_bytes'] / 2**20:.1f} MiB in {result['seconds']} s")
        assert deleted["file_bytes"] >= 0.9 * full["file_bytes"]
        assert after["file_bytes"] < deleted["file_bytes"] / 5
        assert s.sql("SELECT count(*) n FROM logs")["n"][0] == 1000
        s.write(lambda cur: cur.execute("INSERT INTO logs (body) VALUES ('after')"))
        assert s.sql("SELECT count(*) n FROM logs")["n"][0] == 1001
        assert s.health()["store"] == "ok"
    with Store(tmp_path / "big.duckdb") as again:  # and the swapped file opens again
        assert again.sql("SELECT count(*) n FROM logs")["n"][0] == 1001


def test_retention_policies_are_checked_and_keep_runs(demo_store):
    for bad, why in [({"kind": "nope", "days": 1}, "kind"), ({"kind": "tests"}, "needs days"),
                     ({"kind": "spans", "keep_runs": 3}, "only tests and coverage"),
                     ({"kind": "audit", "project": "x", "days": 3}, "has no project"),
                     ({"kind": "tests", "days": -1}, "days"),
                     ({"kind": "tests", "days": 1, "extra": 1}, "extra")]:
        with pytest.raises(ValueError, match=why):
            retention.check_policy(bad)
    counts = demo_store.sql("SELECT project, count(*) n FROM runs GROUP BY 1")
    keep = dict(zip(counts["project"], counts["n"], strict=True))
    retention.put_policy(demo_store, retention.check_policy(
        {"kind": "tests", "keep_runs": 5}), "t")
    first = sorted(keep)[0]
    retention.put_policy(demo_store, retention.check_policy(
        {"kind": "tests", "project": first, "keep_runs": 2}), "t")
    newest = demo_store.sql("SELECT run_id FROM runs WHERE project = ? ORDER BY started_at "
                            "DESC LIMIT 2", [first])["run_id"].tolist()
    retention.apply(demo_store)
    after = demo_store.sql("SELECT project, count(*) n FROM runs GROUP BY 1")
    got = dict(zip(after["project"], after["n"], strict=True))
    assert got == {p: min(n, 2 if p == first else 5) for p, n in keep.items()}
    assert sorted(demo_store.sql("SELECT run_id FROM runs WHERE project = ?", [first])
                  ["run_id"]) == sorted(newest)
    assert demo_store.sql("SELECT count(*) n FROM results WHERE run_id NOT IN "
                          "(SELECT run_id FROM runs)")["n"][0] == 0


@pytest.mark.slow
def test_storage_rules_fire_and_resolve(served, admin):
    """A storage rule (the alert rules' own kind) fires on the database's figures and is
    resolved by the workbench once they are back within it; it can only notify."""
    rule = {"rule_id": "disk-test", "name": "disk test", "kind": "storage",
            "metric": "disk_free_percent", "threshold": 100.5, "severity": "critical",
            "actions": ["notify"]}
    r = admin.put("/api/alert-rules/disk-test", json=rule)
    assert r.status_code == 200, r.text
    bad = admin.put("/api/alert-rules/disk-test", json={**rule, "actions": ["pause"]})
    assert bad.status_code == 400 and "cannot pause or stop" in bad.text
    bad = admin.put("/api/alert-rules/disk-test", json={**rule, "metric": "cpu_percent"})
    assert bad.status_code == 400 and "wal_mb" in bad.text
    assert admin.post("/api/store/retention/run", json={}).status_code == 200

    def mine():
        alerts = admin.get("/api/alerts", params={"state": "open"}).json()
        return [a for a in alerts["alerts"] if a["rule_id"] == "disk-test"]

    fired = wait_for(mine, what="the storage alert")
    assert fired[0]["agent_id"] == "store" and "disk_free_percent" in fired[0]["title"]
    assert fired[0]["agent_name"] == "database"
    assert admin.put("/api/alert-rules/disk-test", json={**rule, "threshold": 0}
                     ).status_code == 200
    assert admin.post("/api/store/retention/run", json={}).status_code == 200
    wait_for(lambda: not mine(), what="resolved")
    assert admin.delete("/api/alert-rules/disk-test").status_code == 200


@pytest.mark.slow
def test_storage_page(served, admin, chromium, output_dir):
    """An admin sets a policy, backs up and applies the policies from the page; a viewer
    sees the figures and the policies but cannot change them; the export link downloads."""
    from playwright.sync_api import sync_playwright

    from .conftest import page_log_in

    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page_log_in(page, served.url, "admin")
        page.goto(served.url + "/storage")
        page.get_by_text("The database file").wait_for(timeout=60_000)
        project = page.locator(".bk-input-group:has-text('Project (empty') input")
        project.fill("ledger-jvm")
        project.press("Tab")
        days = page.locator(".bk-input-group:has-text('Days') input").first
        days.fill("3")
        days.press("Enter")
        page.get_by_text("Save policy", exact=True).click()
        page.get_by_text("ledger-jvm", exact=True).wait_for(timeout=20_000)
        page.get_by_text("Back up now", exact=True).click()
        page.get_by_text("newest up-", exact=False).wait_for(timeout=30_000)
        page.get_by_text("Apply the policies now", exact=True).click()
        page.get_by_text("Last retention run").wait_for(timeout=30_000)
        page.screenshot(path=output_dir / "storage-admin.png", full_page=True)
        with page.expect_download() as download:
            page.get_by_text("Download runs (parquet)").click()
        path = download.value.path()
        assert pq.read_table(path).num_rows > 0
        viewer = browser.new_page(viewport={"width": 1440, "height": 900})
        page_log_in(viewer, served.url, "viewer")
        viewer.goto(served.url + "/storage")
        viewer.get_by_text("need the admin role").wait_for(timeout=60_000)
        assert viewer.get_by_role("button", name="Back up now").is_disabled()
        viewer.get_by_text("ledger-jvm", exact=True).wait_for()
        viewer.screenshot(path=output_dir / "storage-viewer.png", full_page=True)
        browser.close()
    assert errors == []
    policies = admin.get("/api/store").json()["policies"]
    assert {"kind": "tests", "project": "ledger-jvm", "days": 3.0} == {
        k: policies[0][k] for k in ("kind", "project", "days")}
    assert admin.delete("/api/store/retention/tests", params={"project": "ledger-jvm"}
                        ).status_code == 200
    audit = admin.get("/api/audit", params={"limit": 200}).json()["audit"]
    assert {"retention", "backup"} <= {a["action"] for a in audit if a["who"] == "admin"
                                        or a["who"].startswith("token:")}


def test_compaction_keeps_what_is_written_while_it_copies(tmp_path):
    """Writes go on during the copy: appended rows, an updated row of a small table, a
    deleted one, the telemetry sequence moving — the compacted file has all of it, and
    writes waited only for the last step."""
    with Store(tmp_path / "live.duckdb") as s:
        s.write(lambda cur: cur.execute(
            "INSERT INTO logs (time, body, service_name) SELECT now()::TIMESTAMP, "
            "md5(i::VARCHAR) || md5((i + 1)::VARCHAR), 'svc' FROM range(600000) r(i)"))
        s.write(lambda cur: cur.execute(
            "INSERT INTO agents (agent_id, backend, state) SELECT 'a' || i, 'process', "
            "'stopped' FROM range(50) r(i)"))
        stop, written, stamps = threading.Event(), [0], []

        def writer():
            i = 0
            while not stop.is_set():
                def one(cur, i=i):
                    cur.execute("INSERT INTO logs (body, service_name) VALUES (?, 'new')",
                                [f"during-{i}"])
                    cur.execute("UPDATE agents SET restarts = ? WHERE agent_id = 'a1'", [i])
                    if i == 3:
                        cur.execute("DELETE FROM agents WHERE agent_id = 'a2'")
                    return cur.execute("SELECT nextval('telemetry_seq')").fetchone()[0]
                stamps.append(s.write(one, topic="telemetry"))
                written[0] = i = i + 1

        t = threading.Thread(target=writer)
        t.start()
        wait_for(lambda: written[0] >= 5, what="writes under way")
        result = upkeep.compact(s)
        swapped = written[0]
        wait_for(lambda: written[0] >= swapped + 5, what="writes to the compacted file")
        stop.set()
        t.join()
        n = written[0]
        assert s.sql("SELECT count(*) n FROM logs WHERE service_name = 'new'")["n"][0] == n
        assert s.sql("SELECT restarts FROM agents WHERE agent_id = 'a1'")["restarts"][0] == n - 1
        assert s.sql("SELECT count(*) n FROM agents")["n"][0] == 49
        nxt = s.write(lambda cur: cur.execute("SELECT nextval('telemetry_seq')").fetchone()[0])
        assert nxt == max(stamps) + 1
        assert result["writes_held_s"] < result["copy_s"]
        print(f"\ncompaction of 600k rows under writes: copy {result['copy_s']} s, writes "
              f"held {result['writes_held_s']} s, {n} writes meanwhile")


def test_backups_of_files_with_a_common_prefix_stay_apart(tmp_path):
    """``team`` and ``team-ci`` back up into one folder: keeping two of one never deletes
    the other's (the names' prefix is shared; the glob once matched both)."""
    folder = tmp_path / "shared"
    with Store(tmp_path / "team-ci.duckdb") as ci, Store(tmp_path / "team.duckdb") as team:
        for _ in range(3):
            upkeep.backup(ci, folder, keep=5)
        (folder / "team-ci-20261206T000000.000000Z.duckdb.partial").write_bytes(b"x")
        for _ in range(3):
            done = upkeep.backup(team, folder, keep=2)
        assert done.path.exists()
    assert len(upkeep.backups_in(folder, "team")) == 2
    assert len(upkeep.backups_in(folder, "team-ci")) == 3
    assert (folder / "team-ci-20261206T000000.000000Z.duckdb.partial").exists()


def test_restore_takes_the_backups_log_and_never_a_stale_one(tmp_path):
    """A source with a write-ahead log not yet checkpointed is restored with it; a target
    whose damaged file was deleted but whose log was left is not replayed onto the backup."""
    src = tmp_path / "src.duckdb"
    con = duckdb.connect(str(src))
    con.execute("CREATE TABLE schema_version (version INT); INSERT INTO schema_version "
                "VALUES (1); CREATE TABLE t (i INT); INSERT INTO t SELECT range FROM range(15)")
    con.close()
    con = duckdb.connect(str(src))
    con.execute("SET checkpoint_threshold = '1GB'; PRAGMA disable_checkpoint_on_shutdown")
    con.execute("INSERT INTO t VALUES (99)")
    con.close()
    assert Path(f"{src}.wal").exists()
    target = tmp_path / "live.duckdb"
    stale = duckdb.connect(str(tmp_path / "other.duckdb"))
    stale.execute("SET checkpoint_threshold = '1GB'; PRAGMA disable_checkpoint_on_shutdown")
    stale.execute("CREATE TABLE junk (x INT)")
    stale.close()
    Path(f"{tmp_path / 'other.duckdb'}.wal").rename(f"{target}.wal")
    done = upkeep.restore(src, target)
    assert done["rows"] == 17
    con = duckdb.connect(str(target), read_only=True)
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 16
    assert sorted(r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()")
                  .fetchall()) == ["schema_version", "t"]
    con.close()
