"""The OTLP inbox: overlapping requests are answered once their bytes are on disk (the
journal), their rows are written later, exactly once, and a restart writes what was left:
after a stop, a torn last record, or rows an older version left in its table."""

from __future__ import annotations

import threading
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from workbench.ingest import otlp
from workbench.intake.local import LocalIntake
from workbench.store import Store


def sdk_request(service: str, spans: int) -> bytes:
    """An export request as the SDK's own exporter encodes it."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("inbox-test")
    for i in range(spans):
        with tracer.start_as_current_span(f"step {i}", attributes={"gen_ai.system": "test"}):
            pass
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def with_bad_span(body: bytes) -> bytes:
    """The request with one more span whose trace id is all zero (to be rejected)."""
    msg = otlp.decode("traces", body, otlp.PROTOBUF)
    bad = msg.resource_spans[0].scope_spans[0].spans.add()
    bad.trace_id, bad.span_id, bad.name = bytes(16), bytes(range(1, 9)), "bad"
    return msg.SerializeToString()


def spans(store: Store, service: str) -> int:
    return store.sql("SELECT count(*) AS n FROM spans WHERE service_name = ?",
                     [service])["n"].item()


def held(monkeypatch, path) -> LocalIntake:
    """An intake on a new store whose inbox is written only when settle() asks (no quiet
    moment and no request old enough in a test's time)."""
    monkeypatch.setenv("OBSERVATORY_OTLP_DEFER_S", "60")
    intake = LocalIntake(Store(path), ci_env={}, block=False)
    intake.use_inbox()
    intake.inbox.quiet_s = 30
    return intake


def in_inbox(store: Store) -> int:
    """Requests in the journal on disk (whole records of its segment files)."""
    from workbench.store.otlp_journal import scan

    return sum(len(scan(seg.read_bytes())[0])
               for seg in Path(str(store.path) + ".otlp-inbox").glob("*.seg"))


def overlapping(intake: LocalIntake, first: bytes, second: bytes):
    """Send ``second`` while ``first`` is still in flight (the writer held busy)."""
    gate, busy = threading.Event(), threading.Event()
    intake.store.submit(lambda cur: (busy.set(), gate.wait(10)))
    busy.wait(5)
    one = intake.submit_telemetry("traces", first, otlp.PROTOBUF)
    two = intake.submit_telemetry("traces", second, otlp.PROTOBUF)
    gate.set()
    one[1].result(10)
    two[1].result(10)
    return one[0], two[0]


def test_an_overlapping_request_is_answered_before_its_rows_and_written_once(tmp_path,
                                                                             monkeypatch):
    intake = held(monkeypatch, tmp_path / "inbox.duckdb")
    store = intake.store
    try:
        first, second = sdk_request("alone", 5), with_bad_span(sdk_request("later", 7))
        one, two = overlapping(intake, first, second)
        # the first was written before its answer; the second is in the inbox only
        assert spans(store, "alone") == 5 and spans(store, "later") == 0
        assert in_inbox(store) == 1
        assert intake.inbox.state()["requests"] == 1
        # the answer is the one the rows would have given: 7 accepted, the bad one rejected
        flat = otlp.flatten("traces", otlp.decode("traces", second, otlp.PROTOBUF))
        assert (two.accepted, two.rejected, two.errors) == (7, 1, flat.errors)
        assert (one.accepted, one.rejected) == (5, 0)
        # sent again while the burst goes on (the inbox is not empty): answered, not written
        again = intake.submit_telemetry("traces", second, otlp.PROTOBUF)
        again[1].result(10)
        assert in_inbox(store) == 2
        assert intake.inbox.settle(30)
        assert spans(store, "later") == 7  # both copies written: the spans once
        assert in_inbox(store) == 0
        assert intake.inbox.state() == {"requests": 0, "bytes": 0, "oldest_s": None}
    finally:
        intake.close()
        store.close()


def test_what_a_stopped_server_acknowledged_is_written_at_the_next_start(tmp_path,
                                                                          monkeypatch):
    path = tmp_path / "restart.duckdb"
    intake = held(monkeypatch, path)
    store = intake.store
    overlapping(intake, sdk_request("before", 3), sdk_request("acknowledged", 4))
    intake.close()  # stops the inbox's worker before it wrote anything
    store.close()

    store = Store(path)
    assert spans(store, "acknowledged") == 0
    assert in_inbox(store) == 1
    intake = LocalIntake(store, ci_env={}, block=False)
    intake.use_inbox()  # (as the server does at start)
    try:
        assert intake.inbox.settle(30)
        assert spans(store, "acknowledged") == 4 and spans(store, "before") == 3
        assert in_inbox(store) == 0
    finally:
        intake.close()
        store.close()


def test_a_lone_request_is_written_before_its_answer(tmp_path):
    store = Store(tmp_path / "lone.duckdb")
    intake = LocalIntake(store, ci_env={}, block=False)
    intake.use_inbox()
    try:
        for i in range(3):  # one after another: each readable once answered
            batch, written = intake.submit_telemetry("traces", sdk_request(f"s{i}", 2),
                                                     otlp.PROTOBUF)
            written.result(10)
            assert spans(store, f"s{i}") == 2
        assert in_inbox(store) == 0
    finally:
        intake.close()
        store.close()


def linked_request(service: str, spans: int) -> bytes:
    """An SDK export request whose every span links to the first one."""
    from opentelemetry.trace import Link

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("inbox-test")
    with tracer.start_as_current_span("root") as root:
        first = root.get_span_context()
    for i in range(spans - 1):
        with tracer.start_as_current_span(f"linked {i}", links=[Link(first)]):
            pass
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def links(store: Store, service: str) -> int:
    return store.sql("SELECT count(*) AS n FROM span_links l JOIN spans s USING "
                     "(trace_id, span_id) WHERE s.service_name = ?", [service])["n"].item()


def test_a_burst_is_written_in_groups_each_span_and_link_once(tmp_path, monkeypatch):
    from workbench.store import otlp_inbox

    intake = held(monkeypatch, tmp_path / "groups.duckdb")
    store = intake.store
    writes: list[int] = []
    write = intake.inbox._write
    intake.inbox._write = lambda groups: (writes.extend(map(len, groups)), write(groups))[1]
    try:
        bodies = [linked_request(f"svc{i}", 4) for i in range(11)]
        bodies.insert(5, bodies[2])  # sent again (its answer was lost) within the burst
        overlapping(intake, bodies[0], bodies[1])
        for body in bodies[2:]:
            intake.submit_telemetry("traces", body, otlp.PROTOBUF)[1].result(10)
        assert in_inbox(store) == 11
        assert intake.inbox.settle(30)
        assert writes == [otlp_inbox.GROUP, 11 - otlp_inbox.GROUP]  # not one write each
        for i in range(11):
            assert (spans(store, f"svc{i}"), links(store, f"svc{i}")) == (4, 3), i
        assert in_inbox(store) == 0
    finally:
        intake.close()
        store.close()


def test_a_group_that_fails_is_written_request_by_request(tmp_path, monkeypatch):
    intake = held(monkeypatch, tmp_path / "fails.duckdb")
    store = intake.store
    write = intake.inbox._write
    failed = []

    def fail_groups(groups):
        if len(groups[0]) > 1:  # (a fault: the group's transaction fails)
            failed.append(len(groups[0]))
            return [store.submit(lambda cur: cur.execute("SELECT * FROM no_such_table"))]
        return write(groups)

    intake.inbox._write = fail_groups
    try:
        overlapping(intake, sdk_request("first", 2), sdk_request("a", 3))
        for name in "bcd":
            intake.submit_telemetry("traces", sdk_request(name, 3), otlp.PROTOBUF)[1].result(10)
        assert intake.inbox.settle(30)
        assert failed == [4]
        assert [spans(store, n) for n in "abcd"] == [3, 3, 3, 3]
        assert in_inbox(store) == 0
    finally:
        intake.close()
        store.close()


def test_a_torn_last_record_is_cut_and_the_rest_written(tmp_path, monkeypatch):
    """A crash while a request's bytes were being appended (its sync had not returned, so
    it was never answered) leaves a partial record: the next start cuts the segment there
    and writes every whole one."""
    path = tmp_path / "torn.duckdb"
    intake = held(monkeypatch, path)
    store = intake.store
    overlapping(intake, sdk_request("first", 2), sdk_request("whole", 3))
    intake.submit_telemetry("traces", sdk_request("whole-too", 4), otlp.PROTOBUF)[1].result(10)
    intake.close()
    store.close()
    [seg] = Path(str(path) + ".otlp-inbox").glob("*.seg")
    torn = sdk_request("torn", 5)
    with open(seg, "ab") as f:  # a header and half a body, as a crash leaves them
        from workbench.store.otlp_journal import HEADER, MAGIC

        f.write(HEADER.pack(MAGIC, 99, 0, len(torn), 0) + torn[: len(torn) // 2])

    store = Store(path)
    assert in_inbox(store) == 2
    intake = LocalIntake(store, ci_env={}, block=False)
    intake.use_inbox()
    try:
        assert intake.inbox.settle(30)
        assert [spans(store, s) for s in ("first", "whole", "whole-too", "torn")] == [2, 3, 4, 0]
        assert in_inbox(store) == 0 and not seg.exists()  # written: its segment given back
    finally:
        intake.close()
        store.close()


def test_requests_an_older_version_left_in_its_table_are_written(tmp_path, monkeypatch):
    """Schema 19 kept waiting requests in the otlp_inbox table: the journal adopts them
    at start (into more than one segment here), and each is written once."""
    from workbench.store import otlp_journal

    monkeypatch.setattr(otlp_journal, "SEGMENT_BYTES", 4096)
    path = tmp_path / "old.duckdb"
    store = Store(path)
    for i in range(3):
        body = sdk_request(f"from-the-table-{i}", 20)
        store.submit(lambda cur, body=body: cur.execute(
            "INSERT INTO otlp_inbox (received_at, signal, body) VALUES (now(), 'traces', ?)",
            [body]), block=True).result(10)
    intake = LocalIntake(store, ci_env={}, block=False)
    intake.use_inbox()
    try:
        assert store.sql("SELECT count(*) AS n FROM otlp_inbox")["n"].item() == 0
        assert intake.inbox.settle(30)
        assert [spans(store, f"from-the-table-{i}") for i in range(3)] == [20] * 3
        assert in_inbox(store) == 0
    finally:
        intake.close()
        store.close()


def test_a_long_burst_gives_back_each_segment_once_it_is_written(tmp_path, monkeypatch):
    """The journal rolls to a new segment past SEGMENT_BYTES, and a segment whose requests
    are all written is deleted while others still wait."""
    from workbench.store import otlp_journal

    monkeypatch.setattr(otlp_journal, "SEGMENT_BYTES", 4096)
    intake = held(monkeypatch, tmp_path / "roll.duckdb")
    store = intake.store
    folder = Path(str(store.path) + ".otlp-inbox")
    try:
        bodies = [sdk_request(f"roll{i}", 20) for i in range(6)]
        overlapping(intake, bodies[0], bodies[1])
        for body in bodies[2:]:
            intake.submit_telemetry("traces", body, otlp.PROTOBUF)[1].result(10)
        segments = sorted(folder.glob("*.seg"))
        assert len(segments) >= 2 and in_inbox(store) == 5
        assert intake.inbox.settle(30)
        assert [spans(store, f"roll{i}") for i in range(6)] == [20] * 6
        assert list(folder.glob("*.seg")) == []
    finally:
        intake.close()
        store.close()


def test_the_storage_figures_count_the_journal_and_a_restore_sets_it_aside(tmp_path,
                                                                          monkeypatch):
    """Requests waiting in the journal are on disk: the storage figures count them. A
    restore puts another file in place, and the journal of the file it replaces is kept
    beside it (as its write-ahead log is), never written into the backup."""
    from workbench.store import upkeep

    backup = tmp_path / "backup.duckdb"
    Store(backup).close()
    path = tmp_path / "live.duckdb"
    intake = held(monkeypatch, path)
    store = intake.store
    overlapping(intake, sdk_request("first", 2), sdk_request("waiting", 3))
    waiting = upkeep.file_stats(store)["inbox_bytes"]
    assert waiting > len(sdk_request("waiting", 3))
    intake.close()  # (stopped with the request still waiting)
    store.close()
    done = upkeep.restore(backup, path)
    kept = list(tmp_path.glob("live.duckdb.before-restore-*.otlp-inbox"))
    assert done["previous"] and len(kept) == 1 and not (tmp_path / "live.duckdb.otlp-inbox").exists()
    store = Store(path)
    intake = LocalIntake(store, ci_env={}, block=False)
    intake.use_inbox()
    try:
        assert intake.inbox.settle(30)
        assert spans(store, "waiting") == 0  # (the backup's data only)
        assert upkeep.file_stats(store)["inbox_bytes"] == 0
    finally:
        intake.close()
        store.close()
