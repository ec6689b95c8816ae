"""HTTP API routes served inside ``panel serve --plugins workbench.server.plugin``.

Every handler checks authentication itself (Panel's login does not cover extra routes)
and does its parsing and writing off the event loop.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import datetime

import pyarrow as pa
from tornado.web import Application

from .. import config, ingest
from ..ingest.ci_env import run_metadata
from ..ingest.live import parse_batch
from ..store import writes
from .otlp import OTLP_ROUTES
from .plugin_base import APIHandler
from .state import get_store

log = logging.getLogger("workbench.server")
_META_KEYS = ("project", "branch", "commit", "variant", "build", "build_url")


class ReportHandler(APIHandler):
    """``POST /api/tests/reports?project=…&branch=…`` with a report file as the body."""

    async def post(self) -> None:
        name = self.get_query_argument("filename", "request body")
        fmt = self.get_query_argument("format", None)
        flags = {k: self.get_query_argument(k, None) for k in _META_KEYS}
        tz = self.get_query_argument("report_tz", None)

        def work() -> dict:
            run = ingest.parse_bytes(self.body(), name, fmt)
            meta = run_metadata(run.meta, {**flags, "report_tz": config.report_tz(tz)}, env={})
            run_id, created = writes.insert_run(get_store(), run, meta, block=False)
            return {
                "ok": True,
                "path": name,
                "run_id": run_id,
                "duplicate": not created,
                **run.counts(),
                "warnings": run.warnings,
            }

        result = await self.run(work)
        if result is not None:
            self.finish(result)


class LiveStartHandler(APIHandler):
    """``POST /api/tests/live`` → ``{"run_id"}``: a run the pytest plugin fills as it goes."""

    async def post(self) -> None:
        def work() -> dict:
            try:
                meta = json.loads(self.body() or b"{}")
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise ingest.IngestError(f"live run: not valid JSON: {err}") from None
            if not isinstance(meta, dict):
                raise ingest.IngestError("live run: expected a JSON object")
            run_id = "live-" + uuid.uuid4().hex[:12]
            writes.start_live_run(
                get_store(), run_id, {k: meta.get(k) for k in (*_META_KEYS, "source")},
                block=False,
            )
            return {"ok": True, "run_id": run_id}

        result = await self.run(work)
        if result is not None:
            self.finish(result)


class LiveResultsHandler(APIHandler):
    """``POST /api/tests/live/{run_id}/results`` with a batch of finished tests."""

    async def post(self, run_id: str) -> None:
        def work() -> dict:
            batch = parse_batch(self.body(), f"live run {run_id}")
            n = writes.append_results(get_store(), run_id, batch, block=False)
            return {"ok": True, "stored": n}

        result = await self.run(work)
        if result is not None:
            self.finish(result)


class LiveFinishHandler(APIHandler):
    """``POST /api/tests/live/{run_id}/finish`` with ``{"duration_s"}``."""

    async def post(self, run_id: str) -> None:
        def work() -> dict:
            body = json.loads(self.body() or b"{}")
            store = get_store()
            if store.query("run", run_id=run_id).empty:
                raise KeyError(f"no run {run_id!r}")
            writes.finish_live_run(store, run_id, body.get("duration_s"), block=False)
            return {"ok": True}

        result = await self.run(work)
        if result is not None:
            self.finish(result)


class QueryHandler(APIHandler):
    """``GET /api/query/{name}?params={json}`` → Arrow IPC stream (for notebooks)."""

    async def get(self, name: str) -> None:
        try:
            params = json.loads(self.get_query_argument("params", "{}"))
        except json.JSONDecodeError as err:
            return self.fail(400, f"params is not valid JSON: {err}")
        if not isinstance(params, dict):
            return self.fail(400, "params must be a JSON object")
        for key in ("since", "until"):
            if isinstance(params.get(key), str):
                params[key] = datetime.fromisoformat(params[key])

        def work() -> bytes:
            try:
                table = get_store().query_arrow(name, **params)
            except KeyError as err:
                if "no query" in str(err):
                    raise KeyError(f"unknown query {name!r}") from None
                raise
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            return sink.getvalue().to_pybytes()

        data = await self.run(work)
        if data is not None:
            self.set_header("Content-Type", "application/vnd.apache.arrow.stream")
            self.finish(data)


class HealthHandler(APIHandler):
    def get(self) -> None:
        store = get_store()
        self.finish({"ok": True, "db": str(store.path), "schema": store.schema_version})


ROUTES = [
    (r"/api/health", HealthHandler, {}),
    (r"/api/tests/reports", ReportHandler, {}),
    (r"/api/tests/live", LiveStartHandler, {}),
    (r"/api/tests/live/([\w-]+)/results", LiveResultsHandler, {}),
    (r"/api/tests/live/([\w-]+)/finish", LiveFinishHandler, {}),
    (r"/api/query/(\w+)", QueryHandler, {}),
    *OTLP_ROUTES,
]

# Open (and on first start fill) the database when the server starts, not on the first
# page view, so a locked or unreadable file stops the server with a clear message.
get_store()

# Agents configured with the default OTLP endpoint send to port 4318: listen there too.
if os.environ.get("OBSERVATORY_OTLP_PORT"):
    _otlp_port = int(os.environ["OBSERVATORY_OTLP_PORT"])
    Application(OTLP_ROUTES).listen(
        _otlp_port, address=os.environ.get("OBSERVATORY_OTLP_ADDRESS", "127.0.0.1"))
    log.warning("OTLP/HTTP receiver also on port %d", _otlp_port)
if not config.api_tokens():
    log.warning(
        "API open to loopback clients without a token (set OBSERVATORY_TOKENS to require one)"
    )
