"""The base of every API handler: one auth check, JSON errors, blocking work on a thread."""

from __future__ import annotations

from typing import Any

from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from .. import ingest
from ..store import RunStateError, StoreBusyError
from . import auth, guard
from .bodies import BodyError, decode


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

    def body(self) -> bytes:
        return decode(self.request.body, self.request.headers.get("Content-Encoding"))

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
