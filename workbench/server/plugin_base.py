"""The base of every API handler: one auth check, JSON errors, blocking work on a thread."""

from __future__ import annotations

import json
from typing import Any

from tornado.ioloop import IOLoop
from tornado.web import RequestHandler, stream_request_body

from .. import config, ingest
from ..ingest import as_bytes
from ..store import RunStateError, StoreBusyError
from . import auth, guard
from .bodies import BodyError, Spool, decode


def bounded_int(raw: str, name: str, low: int, high: int) -> int:
    """A whole-number query argument within ``[low, high]`` (ValueError: a 400 naming it)."""
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


class APIHandler(RequestHandler):
    """JSON errors, one auth check, blocking work on a thread."""

    def set_default_headers(self) -> None:
        for k, v in guard.SECURITY_HEADERS.items():
            self.set_header(k, v)

    def prepare(self) -> None:
        denied = guard.check(self) or auth.check(self)
        if denied:
            self.fail(*denied)

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
        """The largest body this route takes, after gzip inflation."""
        return config.get("OBSERVATORY_MAX_BODY_BYTES")

    def body(self) -> bytes:
        """The decoded body, in memory."""
        return as_bytes(self.decoded())

    def json_body(self) -> Any:
        """The body as JSON (an empty body: ``{}``); a 400 naming the route otherwise."""
        raw = self.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as err:
            raise ValueError(f"{self.request.path}: body is not valid JSON: {err}") from None

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
