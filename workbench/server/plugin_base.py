"""The base of every API handler: one admission check from the route table, JSON errors,
the declared body schema, blocking work on a thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tornado.ioloop import IOLoop
from tornado.web import RequestHandler, stream_request_body
from tornado.websocket import WebSocketHandler

from .. import config, ingest
from ..config import allows
from ..control import webhooks
from ..ingest import as_bytes
from ..store import RunStateError, StoreBusyError, StoreWriteError
from . import audit, auth, guard
from .bodies import BodyError, Spool, decode, parse_json, validated

if TYPE_CHECKING:
    from ..control.access import Principal


class Declared:
    """What every declared handler (HTTP and websocket) gets from the route table
    (routes.py): its routes per method, and one admission check that runs before anything
    of the handler — Host and origin (guard.py), authentication (auth.py), the route's
    role, then its query — and audits every refusal."""

    #: Its routes.Route per method, and the one of this request.
    routes: dict[str, Any]
    route: Any = None
    principal: Principal | None = None
    q: dict[str, Any]

    def initialize(self, routes: dict[str, Any], **options: Any) -> None:
        self.routes = routes
        for key, value in options.items():  # per-route settings (the OTLP signal)
            setattr(self, key, value)

    def admit(self) -> tuple[int, str] | None:
        """``None`` when the request may go on (``self.route``, ``self.principal`` and
        ``self.q`` set), else ``(status, reason)``, already audited."""
        req = self.request
        self.route = self.routes.get(req.method)
        if self.route is None:
            return 405, (f"{req.method} {req.path}: not a route (this path takes "
                         f"{', '.join(sorted(self.routes))})")
        denied = self._admit()
        if denied:
            audit.refused(self, denied)
        return denied

    def _admit(self) -> tuple[int, str] | None:
        route, req = self.route, self.request
        if req.headers.get(webhooks.DELIVERY_HEADER):
            return 403, ("a webhook delivery of this workbench may not call its API (a "
                         "webhook aimed at the workbench itself)")
        denied = guard.check(self) or auth.check(self)
        if denied:
            return denied
        self.principal = auth.principal(self)
        if not allows(self.principal.role, route.role):
            return 403, (f"{req.method} {req.path} needs the {route.role} role; "
                         f"{self.principal.who} is {self.principal.role}")
        try:
            self.q = route.parse_query(req.query_arguments, f"{req.method} {req.path}")
        except BodyError as err:
            return err.status, str(err)
        return None


class APIHandler(Declared, RequestHandler):
    """JSON errors, one admission check (see :class:`Declared`), blocking work on a
    thread, and the audit entry of a route declared ``audit="route"``."""

    def set_default_headers(self) -> None:
        for k, v in {**guard.SECURITY_HEADERS, **guard.transport_headers()}.items():
            self.set_header(k, v)

    def prepare(self) -> None:
        denied = self.admit()
        if denied:
            self.fail(*denied)

    def on_finish(self) -> None:
        route = self.route
        if route is not None and route.audit == "route" and self.principal is not None:
            audit.done(self, route)

    def fail(self, status: int, message: str, **headers: str) -> None:
        for k, v in headers.items():
            self.set_header(k, v)
        self.set_status(status)
        self.finish({"ok": False, "error": message})

    def check_xsrf_cookie(self) -> None:  # token/loopback-authenticated API, not a form
        pass

    def raw_body(self) -> bytes:
        """The request body as sent (streamed uploads gather their chunks)."""
        return self.request.body

    def body_limit(self) -> int:
        """The largest body this route takes, after gzip inflation (a JSON body; uploads
        have their own)."""
        return config.get("OBSERVATORY_MAX_JSON_BYTES")

    def body(self) -> bytes:
        """The decoded body, in memory."""
        return as_bytes(self.decoded())

    def payload(self) -> Any:
        """The JSON body checked against the route's declared schema (an empty body is
        ``{}``): the fields as sent, or a 400 naming the route and the first bad field."""
        raw = self.body()
        where = f"{self.request.method} {self.request.path}"
        if not raw.strip() and self.request.method == "PUT":
            # (a PUT replaces: an empty one would quietly reset the thing to its defaults)
            raise BodyError(400, f"{where}: a JSON object body is required")
        value = parse_json(raw, where) if raw.strip() else {}
        return validated(self.route.body, value, where) if self.route.body else value

    def decoded(self):
        """The decoded body; a big one as a map of a temporary file (report uploads, whose
        parser reads it as a stream)."""
        return decode(self.raw_body(), self.request.headers.get("Content-Encoding"),
                      self.body_limit())

    async def run(self, fn, *args: Any) -> Any:
        """Run ``fn`` off the loop, mapping failures to HTTP statuses."""
        try:
            return await IOLoop.current().run_in_executor(None, fn, *args)
        except BodyError as err:
            self.fail(err.status, str(err))
        except ingest.IngestError as err:
            self.fail(400, str(err))
        except StoreBusyError:
            self.fail(503, "write queue is full, retry later", **{"Retry-After": "1"})
        except StoreWriteError as err:
            self.fail(503, str(err), **{"Retry-After": "5"})
        except RunStateError as err:
            self.fail(409, str(err))
        except PermissionError as err:
            self.fail(403, str(err))
        except KeyError as err:
            self.fail(404, str(err.args[0]) if err.args else "not found")
        except ValueError as err:
            self.fail(400, str(err))
        return None

    async def answer(self, fn) -> None:
        """Run ``fn`` off the loop and send what it returns (failures are already sent)."""
        result = await self.run(fn)
        if result is not None:
            self.finish(result)


class DeclaredSocket(Declared, WebSocketHandler):
    """A websocket route: the route table's admission check on the upgrade (a refusal is an
    HTTP answer with its status, before any upgrade), the API's security headers, bounded
    messages. Tornado's own same-origin check stays on (``check_origin``)."""

    #: The largest message a client may send.
    MAX_MESSAGE = 1024 * 1024

    def set_default_headers(self) -> None:
        for k, v in {**guard.SECURITY_HEADERS, **guard.transport_headers()}.items():
            self.set_header(k, v)

    def get_compression_options(self) -> None:
        return None

    @property
    def max_message_size(self) -> int:  # (Tornado's default is 10 MiB)
        return self.MAX_MESSAGE

    async def get(self, *args: Any, **kwargs: Any) -> None:
        denied = self.admit() or self.refusal(*args)
        if denied:
            self.set_status(denied[0])
            self.finish({"ok": False, "error": denied[1]})
            return
        await super().get(*args, **kwargs)

    def refusal(self, *args: Any) -> tuple[int, str] | None:
        """A route's own reason to refuse the upgrade (after the admission check)."""
        return None


@stream_request_body
class UploadHandler(APIHandler):
    """A handler for large bodies (reports, OTLP): its own size limit instead of Tornado's
    100 MB default, and a 413 that says so.

    A body over the limit is read on and thrown away (up to twice the limit) so that the
    client can read the 413: a connection reset mid-upload is what exporters retry forever.
    Nothing past the limit is kept in memory.
    """

    def prepare(self) -> None:
        limit = self.body_limit()
        self._spool = Spool(limit, "")
        self._size = 0
        self._refusing_unread = True  # an answer now comes before the body is read
        super().prepare()
        self._refusing_unread = False
        if not self._finished:
            self.request.connection.set_max_body_size(2 * limit)

    def body_limit(self) -> int:
        return config.get("OBSERVATORY_MAX_BODY_BYTES")

    def fail(self, status: int, message: str, **headers: str) -> None:
        super().fail(status, message, **self.closing(headers))

    def closing(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` for a failure answer, with ``Connection: close`` when the body is
        still unread: Tornado then closes the connection after the answer (it cannot skip
        the body otherwise), and a client told nothing reuses it for its next request and
        meets a reset."""
        if getattr(self, "_refusing_unread", False):
            return {**headers, "Connection": "close"}
        return headers

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.body_limit():
            self._spool.write(chunk)  # a big body goes to a temporary file
        else:
            self._spool = None  # over the limit: keep reading, keep nothing

    def raw_body(self):
        limit = self.body_limit()
        if self._size > limit or self._spool is None:
            raise BodyError(413, f"body of {self._size} bytes is over the {limit}-byte limit")
        return self._spool.value()
