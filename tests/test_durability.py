"""Durability: under sustained ingest the server is killed (kill -9) and stopped (SIGTERM)
at random points and restarted; the client retries what got no answer, as exporters do.
Every acknowledged span is then stored exactly once, and a SIGTERM exits within 10 s."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from .conftest import ROOT, free_port

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

BATCHES, PER_BATCH = 600, 200


def _batch(i: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

    req = ts.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "durability"
    ss = rs.scope_spans.add()
    for j in range(PER_BATCH):
        ss.spans.add(name=f"dur-{i}-{j}", trace_id=(i + 1).to_bytes(16, "big"),
                     span_id=(j + 1).to_bytes(8, "big"),
                     start_time_unix_nano=1_790_000_000_000_000_000 + i * 1_000_000,
                     end_time_unix_nano=1_790_000_000_000_000_000 + i * 1_000_000 + 5_000)
    return req.SerializeToString()


class Server:
    def __init__(self, db: Path, port: int, log: Path):
        self.db, self.port, self.log = db, port, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workbench.cli", "serve", "--address", "127.0.0.1",
                 "--port", str(self.port), "--db", str(self.db), "--no-demo"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/api/health",
                             timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not come back:\n{self.log.read_text()[-3000:]}")


def test_every_acknowledged_span_is_stored_exactly_once_across_kills_and_sigterms(tmp_path):
    rng = random.Random(7)
    server = Server(tmp_path / "durable.duckdb", free_port(), tmp_path / "server.log")
    server.start()
    url = f"http://127.0.0.1:{server.port}/v1/traces"
    bodies = [_batch(i) for i in range(BATCHES)]
    acked: set[int] = set()
    resent = 0
    clients = 6

    def send(k: int) -> None:
        nonlocal resent
        with httpx.Client(timeout=10) as client:
            for i in range(k, BATCHES, clients):
                body = bodies[i]
                while True:  # an exporter retries until it gets an answer
                    try:
                        r = client.post(url, content=body,
                                        headers={"Content-Type": "application/x-protobuf"})
                        if r.status_code == 200:
                            acked.add(i)
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.05)
                if rng.random() < 0.05:  # a reply lost on the way: the same batch again
                    try:
                        client.post(url, content=body,
                                    headers={"Content-Type": "application/x-protobuf"})
                        resent += 1
                    except httpx.HTTPError:
                        pass
            # Its batches sent, it goes on sending them again until every stop is done:
            # the load lasts through all of them however fast the server answers (stored
            # once all the same).
            mine = list(range(k, BATCHES, clients))
            while not stopped_all.is_set():
                try:
                    client.post(url, content=bodies[rng.choice(mine)],
                                headers={"Content-Type": "application/x-protobuf"})
                    resent += 1
                except httpx.HTTPError:
                    time.sleep(0.05)

    stopped_all = threading.Event()
    senders = [threading.Thread(target=send, args=(k,), daemon=True) for k in range(clients)]
    for t in senders:
        t.start()
    stops = []
    for how in ("kill", "term", "kill", "term", "term"):
        time.sleep(rng.uniform(0.5, 1.5))
        if how == "kill":
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(10)
        else:
            t0 = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                raise AssertionError("a SIGTERM under load did not stop the server in 15 s") \
                    from None
            stops.append(time.monotonic() - t0)
        server.start()
    stopped_all.set()
    for t in senders:
        t.join(240)
    assert not any(t.is_alive() for t in senders), "the senders did not finish"
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(15)
    # What was acknowledged and not yet written as rows (the OTLP inbox) is written at the
    # next start: start once more and wait for it.
    server.start()
    health = f"http://127.0.0.1:{server.port}/api/health"
    deadline = time.monotonic() + 60
    while (httpx.get(health, timeout=10).json()["otlp_inbox"] or {}).get("requests") \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(15)

    assert len(acked) == BATCHES and len(stops) >= 2
    assert max(stops) < 10, f"SIGTERM took {max(stops):.1f} s"
    with duckdb.connect(str(server.db), read_only=True) as con:
        rows = con.execute(
            "SELECT name, count(*) FROM spans WHERE name LIKE 'dur-%' GROUP BY name"
        ).fetchall()
    counts = dict(rows)
    missing = [f"dur-{i}-{j}" for i in acked for j in range(PER_BATCH)
               if f"dur-{i}-{j}" not in counts]
    twice = {name: n for name, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} acknowledged spans lost, e.g. {missing[:3]}"
    assert not twice, f"{len(twice)} spans stored more than once, e.g. {list(twice)[:3]}"
    assert resent > 0  # the lost-reply resends happened, and were absorbed
