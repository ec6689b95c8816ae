"""The OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs``.

Per the OTLP specification: protobuf or JSON bodies, optionally gzip; the response is the
Export*ServiceResponse in the request's content type, with ``partial_success`` when some
items were rejected; errors carry a ``google.rpc.Status``. Decoding and writing happen off
the event loop, and a request is acknowledged only once its rows are committed.
"""

from __future__ import annotations

import asyncio
import json

from google.rpc import status_pb2
from tornado.ioloop import IOLoop

from .. import config
from ..ingest import otlp
from ..store import StoreBusyError, StoreWriteError
from .bodies import BodyError
from .plugin_base import UploadHandler
from .state import get_intake

_GRPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}


class OTLPHandler(UploadHandler):
    """One handler class per signal (``signal`` is set by the route's options)."""

    signal: str

    def body_limit(self) -> int:
        return config.get("OBSERVATORY_OTLP_MAX_BYTES")

    def fail(self, status: int, message: str, **headers: str) -> None:
        for k, v in self.closing(headers).items():
            self.set_header(k, v)
        self.set_status(status)
        st = status_pb2.Status(code=_GRPC_CODES.get(status, 2), message=message)
        if self._content_type() == otlp.JSON:
            self.set_header("Content-Type", otlp.JSON)
            self.finish(json.dumps({"code": st.code, "message": message}))
        else:
            self.set_header("Content-Type", otlp.PROTOBUF)
            self.finish(st.SerializeToString())

    def _content_type(self) -> str:
        return (self.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    async def post(self) -> None:
        content_type = self.request.headers.get("Content-Type")

        def work():
            return get_intake().submit_telemetry(self.signal, self.body(), content_type)

        try:
            batch, written = await IOLoop.current().run_in_executor(None, work)
            if not written.done():  # (the inbox's is: its bytes were synced in work())
                # Awaited on the loop, not by a pool thread blocked on it.
                await asyncio.wrap_future(written)
            written.result()
        except (BodyError, otlp.OTLPError) as err:
            return self.fail(err.status, str(err))
        except StoreBusyError:
            return self.fail(503, "write queue is full, retry later", **{"Retry-After": "1"})
        except StoreWriteError as err:  # (the disk refused it: retry later, never a 500)
            return self.fail(503, str(err), **{"Retry-After": "5"})
        if batch.rejected and not batch.accepted:
            # Nothing valid: per the OTLP spec a 400, so the exporter does not retry it.
            return self.fail(400, f"no valid items ({batch.rejected} rejected): "
                             + "; ".join(batch.errors))
        payload, ctype = otlp.encode_response(self.signal, batch, content_type)
        self.set_header("Content-Type", ctype)
        self.finish(payload)


