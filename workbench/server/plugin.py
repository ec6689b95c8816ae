"""HTTP API routes served inside ``panel serve --plugins workbench.server.plugin``.

Every handler checks authentication itself (Panel's login does not cover extra routes)
and does its parsing and writing off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from datetime import datetime

import pyarrow as pa
from tornado.web import Application

from .. import config
from ..control import access
from ..ingest.live import json_object
from ..intake import RUN_META_KEYS
from ..intake.base import RUN_SECRET_HEADER
from ..store import writes
from . import auth, limits, pages
from .control_api import CONTROL_ROUTES
from .coverage_api import COVERAGE_ROUTES
from .mcp_http import MCP_ROUTES
from .otlp import OTLP_ROUTES
from .plugin_base import APIHandler, UploadHandler, bounded_int
from .projects_api import PROJECT_ROUTES
from .select_api import SELECT_ROUTES
from .signal import live_stats
from .state import get_intake, get_store, get_supervisor

log = logging.getLogger("workbench.server")


class ReportHandler(UploadHandler):
    """``POST /api/tests/reports?project=…&branch=…`` with a report file as the body."""

    async def post(self) -> None:
        name = self.get_query_argument("filename", "request body")
        fmt = self.get_query_argument("format", None)
        flags = {k: self.get_query_argument(k, None) for k in RUN_META_KEYS}
        flags.pop("source")  # the server names the source: the uploaded file

        def work() -> dict:
            tz = config.report_tz(self.get_query_argument("report_tz", None))
            return get_intake().report(self.decoded(), name, {**flags, "report_tz": tz}, fmt)

        await self.answer(work)


class LiveStartHandler(APIHandler):
    """``POST /api/tests/live`` → ``{"run_id"}``: a run the pytest plugin fills as it goes."""

    async def post(self) -> None:
        def work() -> dict:
            meta = json_object(self.body(), "live run")
            # Only the client that started a run may write it: it alone gets the secret.
            secret = secrets.token_urlsafe(24)
            run_id = get_intake().live_start(meta, secret_sha256=_sha256(secret))
            return {"ok": True, "run_id": run_id, "secret": secret}

        await self.answer(work)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class LiveWriteHandler(APIHandler):
    """A write to a live run: only with the secret its start returned."""

    def check_writer(self, run_id: str) -> None:
        expected = writes.live_writer_hash(get_store(), run_id)
        given = self.request.headers.get(RUN_SECRET_HEADER, "")
        if expected is None:
            if get_store().query("run", run_id=run_id).empty:
                raise KeyError(f"no run {run_id!r}")
            raise PermissionError(f"run {run_id!r} takes no results through the API")
        if not hmac.compare_digest(_sha256(given), expected):
            raise PermissionError(f"run {run_id!r}: missing or wrong {RUN_SECRET_HEADER} "
                                  "(only the client that started a run may write it)")


class LiveResultsHandler(LiveWriteHandler):
    """``POST /api/tests/live/{run_id}/results`` with a batch of finished tests."""

    async def post(self, run_id: str) -> None:
        def work() -> dict:
            self.check_writer(run_id)
            return {"ok": True, "stored": get_intake().live_append(run_id, self.body())}

        await self.answer(work)


class LiveFinishHandler(LiveWriteHandler):
    """``POST /api/tests/live/{run_id}/finish`` with ``{"duration_s"}``."""

    async def post(self, run_id: str) -> None:
        def work() -> dict:
            self.check_writer(run_id)
            body = json_object(self.body(), f"live run {run_id}")
            get_intake().live_finish(run_id, body.get("duration_s"))
            return {"ok": True}

        await self.answer(work)


class RunsHandler(APIHandler):
    """``GET /api/runs?project=&limit=`` lists runs, newest first (JSON)."""

    async def get(self) -> None:
        def work() -> dict:
            limit = bounded_int(self.get_query_argument("limit", "50"), "limit", 1, 5000)
            project = self.get_query_argument("project", None)
            df = get_store().query("runs", project=project, limit=limit, offset=0)
            return {"ok": True, "runs": json.loads(df.to_json(orient="records",
                                                               date_format="iso"))}

        await self.answer(work)


class RunHandler(APIHandler):
    """``DELETE /api/runs/{run_id}``: remove a run stored by mistake."""

    async def delete(self, run_id: str) -> None:
        def work() -> dict:
            if not get_intake().delete_run(run_id):
                raise KeyError(f"no run {run_id!r}")
            return {"ok": True, "deleted": run_id}

        await self.answer(work)


ADMIN_QUERIES = frozenset({"audit_log", "webhook_deliveries"})


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
            if name in ADMIN_QUERIES:  # the audit log and webhook deliveries: admins only
                access.authorize(get_store(), auth.principal(self), "audit", name)
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


class SessionHandler(APIHandler):
    """``GET /api/session``: who this request is, and — for a browser logged in with the
    cookie — the token its scripts send with writes (``X-XSRF-Token``)."""

    def get(self) -> None:
        user = auth.login_user(self)
        if not user:
            self.finish({"ok": True, "user": None})
            return
        self.finish({"ok": True, "user": user, "xsrf": auth.xsrf_token(self)})


class HealthHandler(APIHandler):
    def get(self) -> None:
        store = get_store()
        self.finish({"ok": True, "db": str(store.path), "schema": store.schema_version})


class LiveHandler(APIHandler):
    def get(self) -> None:
        # Read on the loop, where the signal changes: no lock needed for a consistent copy.
        self.finish(live_stats(get_store()))


ROUTES = [
    (r"/api/health", HealthHandler, {}),
    (r"/api/live", LiveHandler, {}),
    (r"/api/session", SessionHandler, {}),
    (r"/api/tests/reports", ReportHandler, {}),
    (r"/api/tests/live", LiveStartHandler, {}),
    (r"/api/tests/live/([\w-]+)/results", LiveResultsHandler, {}),
    (r"/api/tests/live/([\w-]+)/finish", LiveFinishHandler, {}),
    (r"/api/runs", RunsHandler, {}),
    (r"/api/runs/([\w.-]+)", RunHandler, {}),
    (r"/api/query/(\w+)", QueryHandler, {}),
    *CONTROL_ROUTES,
    *COVERAGE_ROUTES,
    *PROJECT_ROUTES,
    *MCP_ROUTES,
    *SELECT_ROUTES,
    *OTLP_ROUTES,
]

pages.install()
limits.install()  # before Bokeh creates its HTTP server, and before the OTLP listener

# Open (and on first start fill) the database when the server starts, not on the first
# page view, so a locked or unreadable file stops the server with a clear message.
get_store()
get_supervisor()  # agents still running from before a restart are adopted (or marked lost)

# Agents configured with the default OTLP endpoint send to port 4318: listen there too.
_otlp_port = config.get("OBSERVATORY_OTLP_PORT")
if _otlp_port:
    Application(OTLP_ROUTES).listen(_otlp_port, address=config.get("OBSERVATORY_OTLP_ADDRESS"))
    log.warning("OTLP/HTTP receiver also on port %d", _otlp_port)
if not config.api_tokens():
    log.warning(
        "API open to loopback clients without a token (set OBSERVATORY_TOKENS to require one)"
    )
