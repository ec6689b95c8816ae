"""The API's core routes: test reports and live runs in, runs and named queries out, and
what the server says of itself (health, live refreshes, the caller's session).

Who may call each, what it takes and whether it is audited is declared in routes.py; a
handler here sees only requests that passed that (see plugin_base.APIHandler)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from .. import config
from ..control import access
from ..intake import RUN_META_KEYS
from ..intake.base import RUN_SECRET_HEADER
from ..store import writes
from . import auth
from .bodies import parse_json
from .plugin_base import APIHandler, UploadHandler
from .signal import live_stats
from .state import get_intake, get_store

#: Named queries only admins may run (the audit log and what webhooks sent).
ADMIN_QUERIES = frozenset({"audit_log", "webhook_deliveries", "console_history"})


class ReportHandler(UploadHandler):
    """``POST /api/tests/reports?project=…&branch=…`` with a report file as the body."""

    async def post(self) -> None:
        q = self.q
        flags = {k: q.get(k) for k in RUN_META_KEYS if k != "source"}  # the server names it

        def work() -> dict:
            tz = config.report_tz(q.get("report_tz"))
            return get_intake().report(self.decoded(), q.get("filename") or "request body",
                                       {**flags, "report_tz": tz}, q.get("format"))

        await self.answer(work)


class LiveStartHandler(APIHandler):
    """``POST /api/tests/live`` → ``{"run_id", "secret"}``: a run the pytest plugin fills as
    it goes."""

    async def post(self) -> None:
        def work() -> dict:
            meta = self.payload()
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
            body = self.payload()
            return {"ok": True, "stored": get_intake().live_append(
                run_id, body["tests"], body.get("running"))}

        await self.answer(work)


class LiveFinishHandler(LiveWriteHandler):
    """``POST /api/tests/live/{run_id}/finish`` with ``{"duration_s"}``."""

    async def post(self, run_id: str) -> None:
        def work() -> dict:
            self.check_writer(run_id)
            get_intake().live_finish(run_id, self.payload().get("duration_s"))
            return {"ok": True}

        await self.answer(work)


class RunsHandler(APIHandler):
    """``GET /api/runs?project=&limit=`` lists runs, newest first (JSON)."""

    async def get(self) -> None:
        def work() -> dict:
            df = get_store().query("runs", project=self.q.get("project"),
                                   limit=self.q["limit"], offset=0)
            return {"ok": True, "runs": json.loads(df.to_json(orient="records",
                                                               date_format="iso"))}

        await self.answer(work)


class RunHandler(APIHandler):
    """``DELETE /api/runs/{run_id}``: remove a run stored by mistake (operators; audited)."""

    async def delete(self, run_id: str) -> None:
        def work() -> dict:
            if not get_intake().delete_run(run_id):
                raise KeyError(f"no run {run_id!r}")
            return {"ok": True, "deleted": run_id}

        await self.answer(work)


def _query_params(raw: str, name: str) -> dict[str, Any]:
    """A named query's parameters: a JSON object of plain values (times as ISO strings)."""
    params = parse_json(raw.encode("utf-8", "surrogatepass"), f"/api/query/{name}: params")
    if not isinstance(params, dict):
        raise ValueError(f"/api/query/{name}: params must be a JSON object")
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, str | int | float | bool) for v in values):
            raise ValueError(f"/api/query/{name}: params.{key}: a plain value or a list of them")
        if key in ("since", "until") and value is not None:
            if not isinstance(value, str):
                raise ValueError(f"/api/query/{name}: params.{key}: an ISO 8601 time")
            try:
                params[key] = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"/api/query/{name}: params.{key}: an ISO 8601 time, not "
                                 f"{value[:40]!r}") from None
    return params


class QueryHandler(APIHandler):
    """``GET /api/query/{name}?params={json}`` → Arrow IPC stream (for notebooks)."""

    async def get(self, name: str) -> None:
        def work() -> bytes:
            if name in ADMIN_QUERIES:  # the audit log, webhook deliveries, shells' history
                access.authorize(get_store(), auth.principal(self), "audit", name)
            params = _query_params(self.q["params"], name)
            try:
                table = get_store().query_arrow(name, **params)
            except KeyError as err:
                if "no query" in str(err):
                    raise KeyError(f"unknown query {name!r}") from None
                raise
            except (duckdb.ConversionException, duckdb.BinderException,
                    duckdb.InvalidInputException, duckdb.TypeMismatchException) as err:
                raise ValueError(f"/api/query/{name}: bad parameters: "
                                 f"{str(err).splitlines()[0][:200]}") from None
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            return sink.getvalue().to_pybytes()

        data = await self.run(work)
        if data is not None:
            self.set_header("Content-Type", "application/vnd.apache.arrow.stream")
            self.finish(data)


class SessionHandler(APIHandler):
    """``GET /api/session``: who this request is (``who``: the name its actions are audited
    under; ``user``: the logged-in user), with its role, and — for a browser logged
    in with the cookie — the token its scripts send with writes (``X-XSRF-Token``)."""

    def get(self) -> None:
        user = auth.login_user(self)
        out: dict[str, Any] = {"ok": True, "user": user, "who": self.principal.who,
                               "role": self.principal.role}
        if user:
            out["xsrf"] = auth.xsrf_token(self)
        self.finish(out)


class HealthHandler(APIHandler):
    """``GET /api/health``: 200 while the store takes writes; 503 with the reason while it
    cannot (a full or read-only disk), until a write succeeds again."""

    def get(self) -> None:
        store = get_store()
        health = store.health()
        if health.get("store") != "ok":
            self.set_status(503)
        inbox = get_intake().inbox_state()
        self.finish({"ok": health.get("store") == "ok", "db": str(store.path),
                     "schema": store.schema_version, **health, "otlp_inbox": inbox})


class LiveHandler(APIHandler):
    """``GET /api/live``: the data-change signal's rounds (what live refreshes cost)."""

    def get(self) -> None:
        # Read on the loop, where the signal changes: no lock needed for a consistent copy.
        self.finish(live_stats(get_store()))
