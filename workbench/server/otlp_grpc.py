"""The OTLP/gRPC receiver: the ``Export`` methods of the official OTLP collector services
(``opentelemetry.proto.collector.{trace,metrics,logs}.v1``), on their own port (4317 by
convention).

The same receiver as OTLP/HTTP (otlp.py) behind another transport: a request's serialized
bytes go to the same intake unparsed by gRPC (no second decode), the call is answered only
once its rows are committed, items rejected show in ``partial_success``, a full write queue
is ``UNAVAILABLE`` (exporters retry it), a request with nothing valid is
``INVALID_ARGUMENT``. The one authentication rule of the HTTP API applies to the
``authorization`` metadata (a bearer token; loopback trusted only while no authentication
is configured), and the ``ingest`` role (or one that grants it) is needed. The message size
limit is ``OBSERVATORY_OTLP_MAX_BYTES`` after gzip inflation (``RESOURCE_EXHAUSTED``
beyond); with ``OBSERVATORY_TLS_CERTFILE``/``_KEYFILE`` the port speaks TLS.

gRPC's own thread-pool server runs the calls on its threads, never on Tornado's loop. A
``grpc.aio`` server on a loop of its own measured the same (benchmarks/otlp_grpc.py: the
server's CPU per span is decoding and writing, the same for both transports) with one more
thread hop per call, so the simpler one it is.
"""

from __future__ import annotations

import logging
from concurrent import futures
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from .. import config
from ..control.access import Principal
from ..ingest import otlp
from ..store import StoreBusyError, StoreWriteError
from . import audit, auth
from .state import get_intake

log = logging.getLogger("workbench.server")

#: signal -> the full name of its collector service (from the official descriptors).
SERVICES = {
    "traces": trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name,
    "metrics": metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name,
    "logs": logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name,
}
#: The role a caller needs (as the ``/v1/*`` routes of the route table).
ROLE = "ingest"
#: Calls decoded and waiting for their commit at once; more wait in gRPC's queue.
WORKERS = 8

_server: grpc.Server | None = None


class Refused(Exception):
    """A call that is not served: its gRPC status and a one-line reason."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def peer_ip(peer: str) -> str:
    """The address of a gRPC peer string (``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``,
    percent-encoded by recent gRPC); ``""`` for other transports."""
    kind, _, rest = unquote(peer).partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return ""


class Call:
    """A gRPC call as the HTTP API's one auth rule (auth.check, auth.principal) and its
    audit of refusals (audit.refused) read a request: its ``authorization`` metadata, its
    peer's address, and the server's login settings. A call carries no login cookie."""

    def __init__(self, method: str, header: str, client: str):
        self.request = SimpleNamespace(
            method="POST", path=method, remote_ip=client,
            headers={"Authorization": header} if header else {})
        # The dashboards' login (basic auth, OAuth) as the main port's handlers see it: when
        # one is configured, loopback is trusted no more.
        from panel.config import config as panel_config

        self.settings = {"cookie_secret": panel_config.cookie_secret}
        self.path_args = ()
        self.route = SimpleNamespace(name=f"gRPC {method}")
        self.principal: Principal | None = None

    def get_secure_cookie(self, name: str) -> None:
        return None


def admit(call: Call) -> Principal:
    """The principal of ``call`` if it may export, else raise :class:`Refused` (401 as
    ``UNAUTHENTICATED``, 403 as ``PERMISSION_DENIED``), audited as the HTTP API's."""
    denied = auth.check(call)
    if denied is None:
        call.principal = auth.principal(call)
        if not config.allows(call.principal.role, ROLE):
            denied = 403, (f"OTLP export needs the {ROLE} role; {call.principal.who} is "
                           f"{call.principal.role}")
    if denied is None:
        return call.principal
    audit.refused(call, denied)
    code = (grpc.StatusCode.UNAUTHENTICATED if denied[0] == 401
            else grpc.StatusCode.PERMISSION_DENIED)
    raise Refused(code, denied[1])


def export(signal: str, body: bytes) -> bytes:
    """Store one serialized Export*ServiceRequest; the serialized response once committed.
    Raise :class:`Refused` for what the HTTP receiver answers with an error status."""
    try:
        batch, written = get_intake().submit_telemetry(signal, body, otlp.PROTOBUF)
        written.result()
    except otlp.OTLPError as err:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from None
    except StoreBusyError:
        raise Refused(grpc.StatusCode.UNAVAILABLE, "write queue is full, retry later") from None
    except StoreWriteError as err:
        raise Refused(grpc.StatusCode.UNAVAILABLE, str(err)) from None
    if batch.rejected and not batch.accepted:
        # Nothing valid: not retryable, as the HTTP receiver's 400.
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                      f"no valid items ({batch.rejected} rejected): " + "; ".join(batch.errors))
    return otlp.encode_response(signal, batch, otlp.PROTOBUF)[0]


def _abort(context: grpc.ServicerContext, err: Refused) -> None:
    if err.code is grpc.StatusCode.UNAVAILABLE:  # as the HTTP receiver's Retry-After: 1
        detail = status_pb2.Status(code=err.code.value[0], message=str(err))
        detail.details.add().Pack(
            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))
        context.set_trailing_metadata((("grpc-status-details-bin",
                                        detail.SerializeToString()),))
    context.abort(err.code, str(err))


def _method(signal: str):
    method = f"/{SERVICES[signal]}/Export"

    def call(body: bytes, context: grpc.ServicerContext) -> bytes:
        header = ""
        for key, value in context.invocation_metadata():
            if key == "authorization":
                header = value
        try:
            admit(Call(method, header, peer_ip(context.peer())))
            return export(signal, body)
        except Refused as err:
            _abort(context, err)
            raise  # (not reached: abort raises)

    # No deserializer and no serializer: the request's bytes as they came, to the intake.
    return grpc.unary_unary_rpc_method_handler(call)


def handlers() -> list[grpc.GenericRpcHandler]:
    """The three collector services, each with its one ``Export`` method."""
    return [grpc.method_handlers_generic_handler(SERVICES[s], {"Export": _method(s)})
            for s in SERVICES]


def options() -> list[tuple[str, Any]]:
    """The server's channel options: the size limit, idle connections closed, and a port in
    use is an error (gRPC's default SO_REUSEPORT would share it silently)."""
    return [
        ("grpc.max_receive_message_length", config.get("OBSERVATORY_OTLP_MAX_BYTES")),
        ("grpc.max_connection_idle_ms", int(config.get("OBSERVATORY_IDLE_TIMEOUT") * 1000)),
        ("grpc.so_reuseport", 0),
    ]


def credentials() -> grpc.ServerCredentials | None:
    """TLS credentials from ``OBSERVATORY_TLS_CERTFILE``/``_KEYFILE`` when both are set."""
    cert, key = config.get("OBSERVATORY_TLS_CERTFILE"), config.get("OBSERVATORY_TLS_KEYFILE")
    if not (cert and key):
        return None
    return grpc.ssl_server_credentials([(Path(key).read_bytes(), Path(cert).read_bytes())])


def start(port: int, address: str = "127.0.0.1") -> grpc.Server:
    """Serve OTLP/gRPC on ``address:port`` (0: a free port, see ``server.port``) until the
    process ends; returns the running server."""
    global _server
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="otlp-grpc"),
        handlers=handlers(), options=options())
    host = f"[{address}]" if ":" in address else address
    creds = credentials()
    try:
        if creds is None:
            bound = server.add_insecure_port(f"{host}:{port}")
        else:
            bound = server.add_secure_port(f"{host}:{port}", creds)
    except RuntimeError as err:
        raise OSError(f"OTLP/gRPC: cannot listen on {host}:{port}: {err}") from None
    if not bound:
        raise OSError(f"OTLP/gRPC: cannot listen on {host}:{port}")
    server.start()
    server.port = bound  # type: ignore[attr-defined]
    _server = server  # (a grpc.Server that is garbage-collected stops)
    return server
