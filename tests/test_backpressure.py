"""A full write queue answers 503 with Retry-After (OTLP and report uploads alike) and
stores nothing from that request.

Runs the real receiver routes in a real Tornado server on 127.0.0.1 (in this process, so
the test can hold the store's writer busy) with a write queue of one.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from tornado.web import Application

from workbench.server import state
from workbench.store import Store

from .conftest import free_port


def one_span(name: str) -> bytes:
    req = ExportTraceServiceRequest()
    s = req.resource_spans.add().scope_spans.add().spans.add()
    s.trace_id, s.span_id, s.name = bytes(range(1, 17)), bytes(range(1, 9)), name
    return req.SerializeToString()


def test_full_write_queue_gets_503_with_retry_after(tmp_path):
    store = Store(tmp_path / "bp.duckdb", max_pending=1)
    state._store = store
    from workbench.server.routes import ROUTES, tornado_rules

    served = tornado_rules([r for r in ROUTES
                            if r.template.startswith(("/v1/", "/api/tests/reports"))])

    state.get_supervisor()  # (its first writes — the shipped alert rules — go in now)
    store.settle()
    gate, started = threading.Event(), threading.Event()
    store.submit(lambda cur: (started.set(), gate.wait(10)))  # the writer is now busy
    started.wait(5)
    store.submit(lambda cur: None)  # and the one queue slot is taken

    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        Application(served).listen(
            port, address="127.0.0.1"
        )
        loop.call_soon(ready.set)
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    assert ready.wait(60), "the server did not start"  # (a cold import of the plugin is slow)
    url = f"http://127.0.0.1:{port}/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}
    try:
        busy = httpx.post(url, content=one_span("refused"), headers=headers, timeout=10)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        report = httpx.post(f"http://127.0.0.1:{port}/api/tests/reports", timeout=10,
                            content=b'<testsuite><testcase name="t"/></testsuite>')
        assert report.status_code == 503 and report.headers["Retry-After"] == "1"
        gate.set()
        ok = httpx.post(url, content=one_span("accepted"), headers=headers, timeout=10)
        assert ok.status_code == 200
        names = store.sql("SELECT name FROM spans")["name"].tolist()
        assert names == ["accepted"]
        assert store.sql("SELECT count(*) AS n FROM runs")["n"].item() == 0
    finally:
        gate.set()
        loop.call_soon_threadsafe(loop.stop)
