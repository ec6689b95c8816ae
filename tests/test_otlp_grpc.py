"""The OTLP/gRPC receiver in a real served workbench (``serve --otlp-grpc-port``), driven by
the OpenTelemetry SDK's own gRPC exporters, and by ``grpc`` itself for the refusals."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import uuid

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource

from workbench.client import RemoteStore
from workbench.store import Store

from .conftest import ROLE_ENV, TOKENS, Served, free_port

# real processes (a served workbench): not in the quick part
pytestmark = pytest.mark.slow

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LIMIT = 1_000_000


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory):
    """A workbench with role tokens, a 1 MB OTLP limit and OTLP/gRPC on its own port."""
    port = free_port()
    db = tmp_path_factory.mktemp("otlp-grpc") / "grpc.duckdb"
    s = Served(db, env={**ROLE_ENV, "OBSERVATORY_NO_DEMO": "1",
                        "OBSERVATORY_OTLP_MAX_BYTES": str(LIMIT)},
               extra_args=("--otlp-grpc-port", str(port)))
    s.grpc_target = f"127.0.0.1:{port}"
    yield s
    s.stop()


def bearer(role: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKENS[role]}"),)


def counts(server, service: str) -> dict:
    with RemoteStore(server.url, token=TOKENS["admin"]) as remote:
        return remote.query("telemetry_counts", service=service).iloc[0].to_dict()


def exporter_kwargs(server, **extra) -> dict:
    return {"endpoint": f"http://{server.grpc_target}", "insecure": True,
            "headers": {"authorization": f"Bearer {TOKENS['ingest']}"},
            "compression": grpc.Compression.Gzip, **extra}


def request(service: str, trace_ids: list[bytes]) -> bytes:
    """A serialized ExportTraceServiceRequest: one span per trace id."""
    spans = [trace_pb2.Span(trace_id=t, span_id=bytes([i + 1]) * 8, name=f"s{i}",
                            start_time_unix_nano=1_700_000_000_000_000_000,
                            end_time_unix_nano=1_700_000_001_000_000_000)
             for i, t in enumerate(trace_ids)]
    resource = resource_pb2.Resource(attributes=[common_pb2.KeyValue(
        key="service.name", value=common_pb2.AnyValue(string_value=service))])
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)])]).SerializeToString()


def call(server, body: bytes, metadata=(), compression=None) -> bytes:
    """One raw Export call; the serialized response (raises grpc.RpcError)."""
    with grpc.insecure_channel(server.grpc_target, options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        export = channel.unary_unary(TRACES)
        return export(body, metadata=metadata, timeout=30, compression=compression)


def refused(server, body: bytes, metadata=(), compression=None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(server, body, metadata, compression)
    return info.value


def still_serving(server) -> None:
    service = f"alive-{uuid.uuid4().hex[:6]}"
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(
        call(server, request(service, [uuid.uuid4().bytes]), bearer("ingest")))
    assert not resp.HasField("partial_success")
    assert counts(server, service)["spans"] == 1


def test_sdk_signals_are_stored_exactly_once(grpc_server):
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
    from opentelemetry.trace import Link, Status, StatusCode

    service = f"grpc-{uuid.uuid4().hex[:6]}"
    resource = Resource.create({"service.name": service})

    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(**exporter_kwargs(
        grpc_server))))
    tracer = provider.get_tracer("tests", "1.0")
    with tracer.start_as_current_span(
            "root", attributes={"s": "x", "i": 7, "f": 1.5, "b": True, "l": ["a", "b"]}) as root:
        root.add_event("checkpoint", {"step": 1})
        for i in range(99):
            with tracer.start_as_current_span(
                    f"child-{i}", links=[Link(root.get_span_context())]) as child:
                if i == 0:
                    child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(**exporter_kwargs(
        grpc_server))))
    logger = logs.get_logger("tests")
    for i in range(50):
        logger.emit(body=f"message {i}", attributes={"i": i})
    logs.shutdown()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(**exporter_kwargs(grpc_server)), export_interval_millis=60_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meters.get_meter("tests")
    counter, hist = meter.create_counter("requests"), meter.create_histogram("latency")
    for i in range(10):
        counter.add(1, {"route": "/a" if i % 2 else "/b"})
        hist.record(i * 10, {"route": "/a"})
    meters.shutdown()

    expected = {"spans": 100, "span_events": 1, "logs": 50, "metric_points": 3}
    assert counts(grpc_server, service) == expected
    with RemoteStore(grpc_server.url, token=TOKENS["admin"]) as remote:
        spans = remote.query("spans_search", service=service, limit=500)
        root_row = spans[spans.name == "root"].iloc[0]
        assert json.loads(root_row.attributes) == {"s": "x", "i": 7, "f": 1.5, "b": True,
                                                   "l": ["a", "b"]}
        tree = remote.query("trace_spans", trace_id=root_row.trace_id)
    assert len(tree) == 100 and (tree.parent_span_id == root_row.span_id).sum() == 99
    assert tree[tree.name == "child-0"].status_code.item() == 2

    # An exporter sending the same spans again (a retry after a lost reply): stored once.
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    again = TracerProvider(resource=resource)
    again.add_span_processor(BatchSpanProcessor(memory))
    with again.get_tracer("tests").start_as_current_span("sent-twice") as span:
        span.add_event("once")
    again.shutdown()
    exporter = OTLPSpanExporter(**exporter_kwargs(grpc_server))
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert counts(grpc_server, service) == {**expected, "spans": 101, "span_events": 2}


@pytest.mark.parametrize("metadata,code", [
    ((), grpc.StatusCode.UNAUTHENTICATED),
    ((("authorization", "Bearer wrong"),), grpc.StatusCode.UNAUTHENTICATED),
    ((("authorization", "tok-ingest"),), grpc.StatusCode.UNAUTHENTICATED),  # not "Bearer"
    (bearer("viewer"), grpc.StatusCode.PERMISSION_DENIED),
])
def test_refused_callers_store_nothing(grpc_server, metadata, code):
    service = f"refused-{uuid.uuid4().hex[:6]}"
    err = refused(grpc_server, request(service, [uuid.uuid4().bytes]), metadata)
    assert err.code() == code
    if code is grpc.StatusCode.PERMISSION_DENIED:
        assert "needs the ingest role" in err.details()
    assert counts(grpc_server, service)["spans"] == 0
    still_serving(grpc_server)
    # The refusal is in the audit log, as the HTTP API's are.
    audit = httpx.get(grpc_server.url + "/api/audit", params={"limit": 500}, timeout=30,
                      headers={"Authorization": f"Bearer {TOKENS['admin']}"}).json()["audit"]
    assert any(a["action"] == f"gRPC {TRACES}" and a["outcome"].startswith("refused")
               and a["role"] == ("viewer" if metadata == bearer("viewer") else "-")
               for a in audit)


@pytest.mark.parametrize("role", ["ingest", "operator", "admin"])
def test_roles_that_grant_ingest_may_export(grpc_server, role):
    service = f"role-{role}-{uuid.uuid4().hex[:6]}"
    call(grpc_server, request(service, [uuid.uuid4().bytes]), bearer(role))
    assert counts(grpc_server, service)["spans"] == 1


def test_invalid_items_are_a_partial_success_or_invalid_argument(grpc_server):
    service = f"invalid-{uuid.uuid4().hex[:6]}"
    # One good span and one with an 8-byte trace id: the good one stored, one rejected.
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(call(
        grpc_server, request(service, [uuid.uuid4().bytes, b"12345678"]), bearer("ingest")))
    assert resp.partial_success.rejected_spans == 1
    assert "trace" in resp.partial_success.error_message
    assert counts(grpc_server, service)["spans"] == 1
    # Nothing valid: INVALID_ARGUMENT (not retried), as the HTTP receiver's 400.
    err = refused(grpc_server, request(service, [b"12345678"]), bearer("ingest"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "no valid items" in err.details()
    # Bytes that are no ExportTraceServiceRequest at all.
    err = refused(grpc_server, b"\x0a\xff\xff\xff\xff\x0f", bearer("ingest"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "undecodable" in err.details()
    assert counts(grpc_server, service)["spans"] == 1
    still_serving(grpc_server)


def test_over_limit_messages_are_resource_exhausted(grpc_server):
    service = f"big-{uuid.uuid4().hex[:6]}"
    big = request(service, [uuid.uuid4().bytes]) + b"\x00" * LIMIT  # (zeros: padding fields)
    err = refused(grpc_server, big, bearer("ingest"))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Small on the wire, over the limit once inflated: the limit is after gzip.
    assert len(gzip.compress(big)) < LIMIT
    err = refused(grpc_server, big, bearer("ingest"), compression=grpc.Compression.Gzip)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert counts(grpc_server, service)["spans"] == 0
    still_serving(grpc_server)


def test_http_api_and_grpc_serve_side_by_side(grpc_server):
    assert httpx.get(grpc_server.url + "/api/health",
                     headers={"Authorization": f"Bearer {TOKENS['viewer']}"}).json()["ok"]
    still_serving(grpc_server)


# -- TLS -------------------------------------------------------------------------------------

def self_signed(tmp_path):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert path, key path, PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return tmp_path / "cert.pem", tmp_path / "key.pem", pem


def test_tls(tmp_path):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from workbench import config

    if "OBSERVATORY_TLS_CERTFILE" not in config.SETTINGS:
        pytest.skip("no TLS settings")
    cert, key, pem = self_signed(tmp_path)
    port = free_port()
    s = Served(tmp_path / "tls.duckdb", env={**ROLE_ENV, "OBSERVATORY_NO_DEMO": "1"},
               extra_args=("--otlp-grpc-port", str(port), "--certfile", str(cert),
                           "--keyfile", str(key)), ca=cert)
    try:
        service = f"tls-{uuid.uuid4().hex[:6]}"
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=f"https://localhost:{port}", insecure=False,
            credentials=grpc.ssl_channel_credentials(root_certificates=pem),
            headers={"authorization": f"Bearer {TOKENS['ingest']}"},
            compression=grpc.Compression.Gzip)))
        with provider.get_tracer("tests").start_as_current_span("over-tls"):
            pass
        provider.shutdown()
        health = httpx.get(s.url + "/api/health", verify=s.verify,
                           headers={"Authorization": f"Bearer {TOKENS['viewer']}"})
        assert health.json()["ok"]
        # Plain text to the TLS port gets nowhere.
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, \
                pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(TRACES)(request(service, [uuid.uuid4().bytes]),
                                        metadata=bearer("ingest"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        s.stop()
    with Store(s.db) as store:  # (the file, once the server let it go)
        assert store.query("telemetry_counts", service=service).iloc[0]["spans"] == 1


# -- the one auth rule, in process -----------------------------------------------------------

@pytest.mark.parametrize("peer,ip", [
    ("ipv4:127.0.0.1:5000", "127.0.0.1"),
    ("ipv6:[::1]:5000", "::1"),
    ("ipv6:%5B::1%5D:5000", "::1"),
    ("unix:/tmp/sock", ""),
])
def test_peer_addresses(peer, ip):
    from workbench.server.otlp_grpc import peer_ip

    assert peer_ip(peer) == ip


@pytest.mark.parametrize("env,client,code", [
    ({}, "127.0.0.1", None),  # nothing configured: loopback trusted
    ({}, "::1", None),
    ({}, "10.0.0.7", grpc.StatusCode.PERMISSION_DENIED),
    ({"OBSERVATORY_TOKENS": "t:ingest"}, "127.0.0.1", grpc.StatusCode.UNAUTHENTICATED),
    ({"OBSERVATORY_BASIC_AUTH": "pw"}, "127.0.0.1", grpc.StatusCode.UNAUTHENTICATED),
    ({"PANEL_COOKIE_SECRET": "s"}, "127.0.0.1", grpc.StatusCode.UNAUTHENTICATED),  # OAuth
])
def test_no_token_is_trusted_only_on_loopback_with_nothing_configured(
        monkeypatch, env, client, code):
    from workbench import config
    from workbench.server import otlp_grpc

    names = ["OBSERVATORY_TOKENS", "OBSERVATORY_BASIC_AUTH", "PANEL_COOKIE_SECRET",
             "BOKEH_COOKIE_SECRET", *(n for n in config.SETTINGS if "JWT" in n)]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    refusals = []
    monkeypatch.setattr(otlp_grpc.audit, "refused", lambda call, denied: refusals.append(denied))
    call = otlp_grpc.Call(TRACES, "", client)
    if code is None:
        assert otlp_grpc.admit(call).role == "admin" and refusals == []
    else:
        with pytest.raises(otlp_grpc.Refused) as info:
            otlp_grpc.admit(call)
        assert info.value.code == code and len(refusals) == 1


def test_a_full_write_queue_is_unavailable_with_retry_info(monkeypatch):
    """In process: an intake whose queue is full; exporters retry UNAVAILABLE after 1 s."""
    from google.rpc import error_details_pb2, status_pb2

    from workbench.server import otlp_grpc
    from workbench.store import StoreBusyError

    for name in ("OBSERVATORY_TOKENS", "OBSERVATORY_BASIC_AUTH", "PANEL_COOKIE_SECRET",
                 "BOKEH_COOKIE_SECRET", "OBSERVATORY_TLS_CERTFILE"):
        monkeypatch.delenv(name, raising=False)

    class Full:
        def submit_telemetry(self, signal, body, content_type):
            raise StoreBusyError("full")

    monkeypatch.setattr(otlp_grpc, "get_intake", Full)
    server = otlp_grpc.start(0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, \
                pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(TRACES)(request("full", [uuid.uuid4().bytes]), timeout=10)
    finally:
        server.stop(None)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    raw = dict(info.value.trailing_metadata())["grpc-status-details-bin"]
    retry = error_details_pb2.RetryInfo()
    assert status_pb2.Status.FromString(raw).details[0].Unpack(retry)
    assert retry.retry_delay.seconds == 1
