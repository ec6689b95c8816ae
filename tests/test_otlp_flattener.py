"""The OTLP inbox's flattening process: in a burst, the rows of the requests waiting are made
in a child process (a core of its own), which gives back the very tables the inbox makes
itself; when it fails, the inbox makes them; it never sees the server's secrets; it stops
when idle."""

from __future__ import annotations

import io
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link

from workbench.ingest import otlp
from workbench.ingest import otlp_flattener as wire
from workbench.intake import flattener as flattener_module
from workbench.intake.flattener import Flattener
from workbench.store.otlp_inbox import GROUP

from .test_otlp_inbox import held, sdk_request, spans

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2,
                                reason="the flattening process is used on 2 cores or more")


def linked_request(service: str) -> bytes:
    """An SDK export request whose spans link to its first span, with attributes of every
    kind (string, int, float, bool, list)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("flattener-test")
    with tracer.start_as_current_span("first") as first:
        pass
    for i in range(3):
        with tracer.start_as_current_span(
                f"linked {i}", links=[Link(first.get_span_context(), {"why": "retry"})],
                attributes={"gen_ai.usage.input_tokens": 10 + i, "gen_ai.request.model": "m",
                            "temperature": 0.5, "stream": True, "tags": ["a", "b"]}):
            pass
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def test_the_process_makes_the_tables_the_inbox_would_make():
    body = linked_request("svc")
    # a request sent again within the group (its links kept once), and one that no
    # longer decodes (reported, the rest kept)
    requests = [("traces", sdk_request("other", 5)), ("traces", body), ("traces", body),
                ("traces", b"\xff\xff not protobuf")]
    here, problems_here = wire.flatten_tables(requests)
    flattener = Flattener()
    try:
        made = flattener.tables(requests)
        assert made is not None and flattener.running()
        tables, problems = made
    finally:
        flattener.close()
    assert not flattener.running()
    assert sorted(tables) == sorted(here) == ["span_links", "spans"]
    for name, table in tables.items():
        assert table.schema == here[name].schema, name  # (the types pyarrow infers)
        assert table.to_pylist() == here[name].to_pylist(), name
    assert tables["spans"].num_rows == 5 + 4 + 4
    assert tables["span_links"].num_rows == 3  # (not 6)
    assert problems == problems_here and len(problems) == 1
    assert "no longer decodes" in problems[0]


def burst(intake, bodies: list[bytes]) -> None:
    """Send ``bodies`` while the store's writer is held busy: all but the first wait in the
    inbox, as in a burst."""
    gate, busy = threading.Event(), threading.Event()
    intake.store.submit(lambda cur: (busy.set(), gate.wait(10)))
    busy.wait(5)
    written = [intake.submit_telemetry("traces", b, otlp.PROTOBUF)[1] for b in bodies]
    gate.set()
    for w in written:
        w.result(10)


def started(process: Flattener) -> None:
    """Start it, as the inbox does when it writes a burst, and wait until its imports are
    done (until then the inbox's thread makes every group)."""
    process.start()
    deadline = time.monotonic() + 30
    while not process.ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.ready()


def test_a_burst_is_flattened_by_a_process_without_the_servers_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATORY_TOKENS", "admin-secret:admin")
    intake = held(monkeypatch, tmp_path / "burst.duckdb")
    bodies = [sdk_request(f"svc{i}", 4) for i in range(2 * GROUP + 2)]
    burst(intake, [*bodies, bodies[3]])  # (one sent again: stored once)
    process = intake._flattener
    assert not process.running()  # (not while the burst is answered)
    started(process)
    made = {"process": 0, "here": 0}
    result, here = process.result, intake._rows_here

    def counted(who, fn):
        return lambda *a: (made.__setitem__(who, made[who] + 1), fn(*a))[1]

    monkeypatch.setattr(process, "result", counted("process", result))
    monkeypatch.setattr(intake, "_rows_here", counted("here", here))
    assert intake.inbox.settle(30)
    assert [spans(intake.store, f"svc{i}") for i in range(len(bodies))] == [4] * len(bodies)
    # 18 requests waiting: three groups, shared between the process and the inbox's thread
    assert made["process"] >= 1 and made["process"] + made["here"] == 3
    assert process.state()["failures"] == 0
    assert process.running()  # (until it has been idle a while)
    assert intake.inbox_state()["process"] == {"running": True, "failures": 0}
    environ = Path(f"/proc/{process.pid}/environ").read_bytes()
    assert b"OBSERVATORY_TOKENS" not in environ and b"admin-secret" not in environ
    intake.close()
    assert not process.running()


def test_when_the_process_dies_the_inbox_writes_the_rows_itself(tmp_path, monkeypatch, caplog):
    intake = held(monkeypatch, tmp_path / "dies.duckdb")
    bodies = [sdk_request(f"svc{i}", 3) for i in range(2 * GROUP + 2)]
    burst(intake, bodies)
    started(intake._flattener)
    send = flattener_module._Child.send

    def send_and_die(child, frame):  # (killed with requests in hand)
        fut = send(child, frame)
        os.kill(child.popen.pid, signal.SIGKILL)
        return fut

    monkeypatch.setattr(flattener_module._Child, "send", send_and_die)
    with caplog.at_level(logging.WARNING, logger="workbench.intake"):
        assert intake.inbox.settle(30)
    assert [spans(intake.store, f"svc{i}") for i in range(len(bodies))] == [3] * len(bodies)
    assert "OTLP flattening process failed" in caplog.text
    assert intake._flattener.state()["failures"] >= 1
    intake.close()


def test_an_idle_process_is_stopped(monkeypatch):
    monkeypatch.setattr(flattener_module, "IDLE_S", 0.3)
    flattener = Flattener()
    assert flattener.tables([("traces", sdk_request("svc", 2))]) is not None
    pid = flattener.pid

    def gone() -> bool:  # (ended and reaped)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    deadline = time.monotonic() + 10
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone() and not flattener.running()
    # the next burst starts it again
    assert flattener.tables([("traces", sdk_request("svc", 2))]) is not None
    flattener.close()


def test_a_garbled_request_frame_is_answered_with_an_error_and_the_next_served():
    good = wire.pack_requests([("traces", sdk_request("svc", 2))])
    inp = io.BytesIO(wire.frame(b"\x07\x00\x00\x00\x05abc") + wire.frame(good))
    out = io.BytesIO()
    wire.serve(inp, out)
    out.seek(0)
    assert wire.REPLY_HEAD.unpack(out.read(wire.REPLY_HEAD.size)) == (wire.READY_MAGIC, 0)
    replies = []
    while (head := wire.read_exact(out, wire.REPLY_HEAD.size)) is not None:
        magic, size = wire.REPLY_HEAD.unpack(head)
        assert magic == wire.REPLY_MAGIC
        replies.append(wire.unpack_reply(wire.read_exact(out, size)))
    assert len(replies) == 2
    assert replies[0][0] == {} and "cut short" in replies[0][2]
    assert replies[1][0]["spans"].num_rows == 2 and replies[1][2] is None


def child_running(monkeypatch, code: str) -> Flattener:
    """A flattener whose process runs ``code`` instead of the real one (argv[1] is the
    folder the bootstrap would put on the path)."""
    monkeypatch.setattr(flattener_module, "_BOOT", code)
    return Flattener()


def test_output_that_is_no_reply_fails_the_process_not_the_inbox(monkeypatch, caplog):
    monkeypatch.setattr(flattener_module, "REPLY_S", 5)
    flattener = child_running(monkeypatch, "import sys, time; print('hello, a plugin here', "
                                           "flush=True); time.sleep(60)")
    with caplog.at_level(logging.WARNING, logger="workbench.intake"):
        assert flattener.tables([("traces", sdk_request("svc", 2))]) is None
    assert "not a reply" in caplog.text
    assert flattener.state()["failures"] == 1 and not flattener.running()
    flattener.close()


def test_a_reply_cut_short_is_stopped_after_its_time(monkeypatch, caplog):
    monkeypatch.setattr(flattener_module, "REPLY_S", 0.5)
    flattener = child_running(
        monkeypatch, "import sys, time, struct; sys.stdin.buffer.read(4); "
                     "sys.stdout.buffer.write(b'OTF1' + struct.pack('>I', 100) + b'x' * 10); "
                     "sys.stdout.flush(); time.sleep(60)")
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="workbench.intake"):
        assert flattener.tables([("traces", sdk_request("svc", 2))]) is None
    assert time.monotonic() - start < 10
    assert "no reply in" in caplog.text and flattener.state()["failures"] == 1
    flattener.close()


def test_what_a_module_prints_does_not_get_into_the_replies(monkeypatch):
    """The bootstrap takes the replies' descriptor before anything is imported: a parser
    plugin that prints when imported writes to stderr."""
    boot = flattener_module._BOOT.replace("sys.path.insert(", "print('a plugin says hi'); "
                                          "sys.path.insert(")
    assert boot != flattener_module._BOOT
    flattener = child_running(monkeypatch, boot)
    made = flattener.tables([("traces", sdk_request("svc", 3))])
    assert made is not None and made[0]["spans"].num_rows == 3
    assert flattener.state()["failures"] == 0
    flattener.close()


def test_a_metric_mixing_whole_and_fractional_values_is_stored(tmp_path):
    """``as_int`` past 2^53 beside ``as_double`` in one request: pyarrow refused the column
    (the whole request failed, and in the inbox it was retried for ever); now both sides
    store it as the DOUBLE column holds it."""
    import pandas  # noqa: F401  (loaded, as in the server: pyarrow's conversion is used)
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    from workbench.intake.local import LocalIntake
    from workbench.store import Store

    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "queue.depth"
    big = 2**60 + 1
    for i, value in enumerate((1.5, big)):
        point = metric.gauge.data_points.add()
        point.time_unix_nano = 1_700_000_000_000_000_000 + i
        if isinstance(value, float):
            point.as_double = value
        else:
            point.as_int = value
    body = req.SerializeToString()
    here, _ = wire.flatten_tables([("metrics", body)])
    flattener = Flattener()
    try:
        there, _ = flattener.tables([("metrics", body)])
    finally:
        flattener.close()
    assert here["metric_points"].to_pylist() == there["metric_points"].to_pylist()
    with Store(tmp_path / "m.duckdb") as store:
        intake = LocalIntake(store, ci_env={}, block=False)
        assert intake.telemetry("metrics", body, otlp.PROTOBUF) == 2
        values = store.sql("SELECT value FROM metric_points ORDER BY value")["value"].tolist()
    assert values == [1.5, float(big)]
