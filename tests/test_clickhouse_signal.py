"""Two serve processes' stores on one ClickHouse hear of each other's writes: at once
through Redis pub/sub (Debian's real redis-server), and within a second from the tables
themselves, which is also how a stock Collector's writes are seen."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from workbench.intake import LocalIntake
from workbench.store.clickhouse import connect
from workbench.store.clickhouse.ch_store import ClickHouseStore

from .chdb_folder import chdb_url
from .conftest import free_port, wait_for
from .test_clickhouse_store import TRACE_COLUMNS, _collector_rows, _request


class Heard:
    def __init__(self, store):
        self.news: list[frozenset[str]] = []
        store.on_commit(self.news.append)


def _nodes(tmp_path, url):
    a = ClickHouseStore(url, tmp_path / "a.duckdb")
    b = ClickHouseStore(url, tmp_path / "b.duckdb")
    return a, b


def _redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    wait_for(lambda: redis.Redis(port=port).ping(), 10, "redis-server")
    return proc


@pytest.mark.skipif(shutil.which("redis-server") is None,
                    reason="needs Debian's redis-server (apt-get install redis-server; "
                    ".ci/run installs it)")
def test_redis_carries_each_nodes_writes_to_the_other_at_once(tmp_path, monkeypatch):
    port = free_port()
    server = _redis(port)
    monkeypatch.setenv("OBSERVATORY_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("OBSERVATORY_SHARED_POLL_S", "0")  # (Redis alone)
    a, b = _nodes(tmp_path, chdb_url("redis"))
    try:
        heard_a, heard_b = Heard(a), Heard(b)
        time.sleep(0.5)  # (both subscribed)
        t0 = time.monotonic()
        LocalIntake(a, ci_env={}).telemetry("traces", _request("node-a"),
                                            "application/x-protobuf")
        wait_for(lambda: heard_b.news, 5, "node b hears node a")
        assert time.monotonic() - t0 < 2
        assert heard_b.news == [frozenset({"telemetry"})]
        time.sleep(0.5)
        assert heard_a.news == [frozenset({"telemetry"})]  # (its own, not again from Redis)
        assert b.query("telemetry_counts", service="node-a").spans[0] == 3
        assert b.health()["clickhouse"]["redis"] == "ok"

        server.terminate()
        server.wait(10)
        LocalIntake(a, ci_env={}).telemetry("traces", _request("node-a-2"),
                                            "application/x-protobuf")  # (stored all the same)
        assert "Connection" in a.health()["clickhouse"]["redis"]
        server = _redis(port)  # back: the nodes subscribe again by themselves
        wait_for(lambda: b.health()["clickhouse"]["redis"] == "ok", 15, "b resubscribes")
        before = len(heard_b.news)
        LocalIntake(a, ci_env={}).telemetry("traces", _request("node-a-3"),
                                            "application/x-protobuf")
        wait_for(lambda: len(heard_b.news) > before, 5, "news after Redis came back")
    finally:
        a.close()
        b.close()
        server.terminate()
        server.wait(10)


def test_writes_nobody_announced_are_seen_from_the_tables(tmp_path, monkeypatch):
    monkeypatch.delenv("OBSERVATORY_REDIS_URL", raising=False)
    monkeypatch.setenv("OBSERVATORY_SHARED_POLL_S", "0.2")
    url = chdb_url("poll")
    a, b = _nodes(tmp_path, url)
    collector = connect.client(connect.parse(url))
    try:
        heard_a, heard_b = Heard(a), Heard(b)
        time.sleep(0.5)  # (both have looked once)
        spans, _, _ = _collector_rows("s-poll", "c0" * 16)
        collector.insert("otel_traces", spans, column_names=TRACE_COLUMNS)  # (a Collector)
        wait_for(lambda: heard_a.news and heard_b.news, 5, "both see the Collector's rows")
        assert heard_a.news == heard_b.news == [frozenset({"telemetry"})]

        LocalIntake(a, ci_env={}).telemetry("traces", _request("node-a"),
                                            "application/x-protobuf")
        wait_for(lambda: len(heard_b.news) == 2, 5, "b sees a's rows")
        time.sleep(0.8)  # (several looks later)
        assert len(heard_a.news) == 2  # a heard its own write once, not again from the look
        assert len(heard_b.news) == 2
    finally:
        collector.close()
        a.close()
        b.close()
