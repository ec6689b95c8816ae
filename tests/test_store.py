"""The store: migrations, the single write queue, dedup, concurrency, the file lock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from workbench import ingest
from workbench.store import Store, StoreLockedError
from workbench.store.schema import LATEST
from workbench.store.writes import insert_run

from .conftest import FIXTURES


def test_migrations_apply_once(tmp_path):
    path = tmp_path / "m.duckdb"
    with Store(path) as s:
        assert s.schema_version == LATEST
        assert {"runs", "results", "signatures", "schema_version"} <= set(s.tables())
    with Store(path) as s:
        assert s.sql("SELECT count(*) AS n FROM schema_version")["n"].item() == LATEST


def test_reingesting_the_same_file_does_not_duplicate(store):
    run = ingest.parse_file(FIXTURES / "passing.xml")
    first = insert_run(store, run, {"project": "p"})
    again = insert_run(store, ingest.parse_file(FIXTURES / "passing.xml"), {"project": "other"})
    assert first == (first[0], True) and again == (first[0], False)
    assert store.sql("SELECT count(*) AS n FROM runs")["n"].item() == 1
    assert store.sql("SELECT count(*) AS n FROM results")["n"].item() == 3


def test_a_telemetry_row_sharing_only_its_time_with_a_stored_one_is_new(store):
    """The resend check first looks for stored rows at the batch's times; a span or log
    record that only shares its timestamp with a stored one is new and is stored, while a
    resent one in the same batch is not."""
    from datetime import datetime

    from workbench.store.writes import submit_telemetry

    def span(i, ns):
        return {"trace_id": f"{i:032x}", "span_id": f"{i:016x}", "start_ns": ns,
                "start_time": datetime.fromtimestamp(ns / 1e9), "end_ns": ns + 9,
                "name": f"op {i}", "attributes": "{}", "resource": "{}"}

    def log(body, ns):
        return {"time_ns": ns, "observed_ns": ns, "time": datetime.fromtimestamp(ns / 1e9),
                "body": body, "attributes": "{}", "resource": "{}"}

    t = 1_790_000_000_000_000_000
    first = {"spans": [span(1, t), span(2, t + 1)], "logs": [log("a", t)]}
    assert submit_telemetry(store, first).result() == 3
    again = {"spans": [span(3, t), span(2, t + 1), span(4, t + 2)],
             "logs": [log("b", t), log("a", t)]}
    assert submit_telemetry(store, again).result() == 3  # spans 3 and 4, log "b"
    assert submit_telemetry(store, again).result() == 0
    spans = store.sql("SELECT span_id FROM spans ORDER BY span_id")["span_id"].tolist()
    assert spans == [f"{i:016x}" for i in (1, 2, 3, 4)]
    assert store.sql("SELECT body FROM logs ORDER BY body")["body"].tolist() == ["a", "b"]


def test_a_failing_write_in_a_batch_rolls_back_alone(store):
    def good(i):
        return lambda cur: cur.execute("INSERT INTO signatures (signature) VALUES (?)", [f"s{i}"])

    def bad(cur):
        cur.execute("INSERT INTO signatures (signature) VALUES ('half')")
        raise ValueError("second statement failed")

    # Queue them while the writer is busy so they land in one batch.
    gate = threading.Event()
    store.submit(lambda cur: gate.wait(5))
    futures = [store.submit(good(i)) for i in range(5)] + [store.submit(bad)]
    futures += [store.submit(good(i)) for i in range(5, 10)]
    gate.set()
    with pytest.raises(ValueError, match="second statement failed"):
        futures[5].result(10)
    for f in futures[:5] + futures[6:]:
        f.result(10)
    names = set(store.sql("SELECT signature FROM signatures")["signature"])
    assert names == {f"s{i}" for i in range(10)}  # nothing of the bad write, all of the rest


def test_reads_from_many_threads_while_writing(store):
    errors: list[Exception] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                store.query("runs", limit=5)
                store.query("failure_clusters")
            except Exception as err:  # noqa: BLE001
                errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        run = ingest.parse_file(FIXTURES / "passing.xml")
        run.content_hash = f"{i:016x}".ljust(64, "0")
        insert_run(store, run, {"project": "p"})
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert store.sql("SELECT count(*) AS n FROM runs")["n"].item() == 20


def test_second_process_gets_a_clear_message_not_a_raw_lock_error(tmp_path):
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from workbench.store import Store; s = Store({str(path)!r}); print('ready', flush=True); "
            "import time; time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError) as err:
            Store(path)
        msg = str(err.value)
        assert str(path) in msg and f"process {holder.pid}" in msg
        assert "localhost:5006" not in msg  # no server advertises itself for this file
        assert "go through that server's URL, or stop the other process" in msg
        assert "Could not set lock" not in msg
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    time.sleep(0.2)
    with Store(path):  # free again once the holder is gone
        pass


def test_times_are_stored_in_utc(store, tmp_path):
    report = tmp_path / "tz.xml"
    report.write_text('<testsuite timestamp="2026-03-01T12:00:00+02:00"><testcase name="t"/></testsuite>')
    run_id, _ = insert_run(store, ingest.parse_file(report), {"project": "p"})
    assert str(store.query("run", run_id=run_id).started_at.iloc[0]) == "2026-03-01 10:00:00"
