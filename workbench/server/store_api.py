"""The database file through the API: its figures, retention policies, backups,
compaction, and table exports (streamed from a file DuckDB writes, so memory stays
bounded whatever the table's size)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from ..config import allows
from ..store import otlp_out, retention, upkeep
from ..store.export import FORMATS, export
from ..store.kinds import TABLES, Filter, parse_time
from .plugin_base import APIHandler
from .state import get_housekeeping, get_store

#: Bytes sent per write of a streamed export.
CHUNK = 1 << 20
#: Exports running at once: each may take DuckDB's memory for its sort and buffers (the
#: limit ingest shares), so one at a time; another waits for a 503 + Retry-After.
_exporting = threading.BoundedSemaphore(1)


class StoreStateHandler(APIHandler):
    """``GET /api/store``: the file against its live data, the policies, the backups, and
    what the last retention, compaction and backup did."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, **get_housekeeping().state()})


class RetentionHandler(APIHandler):
    """``PUT /api/store/retention`` (a policy), ``DELETE
    /api/store/retention/{kind}?project=`` (keep that kind for ever again)."""

    async def put(self) -> None:
        def work() -> dict:
            policy = retention.check_policy(self.payload())
            saved = retention.put_policy(get_store(), policy, self.principal.who)
            return {"ok": True, "policy": saved.as_dict()}

        await self.answer(work)

    async def delete(self, kind: str) -> None:
        def work() -> dict:
            if not retention.delete_policy(get_store(), kind, self.q["project"]):
                raise KeyError(f"no retention policy for {kind} of project "
                               f"{self.q['project'] or '(default)'!r}")
            return {"ok": True}

        await self.answer(work)


class StoreJobHandler(APIHandler):
    """``POST /api/store/retention/run``, ``/api/store/backup``, ``/api/store/compact``:
    run the job now and answer what it did (503 with the reason when the disk or the copy
    failed: nothing was changed)."""

    async def run(self, fn, *args):
        try:
            return await super().run(fn, *args)
        except upkeep.UpkeepError as err:
            self.fail(503, str(err), **{"Retry-After": "60"})
        return None

    async def post(self, job: str) -> None:
        def work() -> dict:
            body = self.payload()  # (checked even where empty: a bad body is a 400)
            keeper = get_housekeeping()
            if job == "backup":
                return {"ok": True, **keeper.backup(body.get("keep"))}
            if job == "compact":
                return {"ok": True, **keeper.compact()}
            return {"ok": True, **keeper.retention()}

        await self.answer(work)


class ExportHandler(APIHandler):
    """``GET /api/export/{table}?format=&project=&since=&until=``: one table as a file
    (Parquet by default; ``otlp``: spans as OTLP/JSON lines); ``audit`` needs admin."""

    async def get(self, table: str) -> None:
        q = self.q
        if not _exporting.acquire(blocking=False):
            self.fail(503, "another export is running; retry when it is done",
                      **{"Retry-After": "10"})
            return
        tmp = Path(tempfile.mkdtemp(prefix="observatory-export-"))

        def work() -> tuple[Path, str]:
            if table == "audit" and not allows(self.principal.role, "admin"):
                raise PermissionError("exporting the audit log needs the admin role")
            flt = Filter(q["project"], parse_time(q["since"], "since"),
                         parse_time(q["until"], "until"))
            if q["format"] == "otlp":
                if table != "spans":
                    raise ValueError("format otlp: spans only")
                out = tmp / "spans.otlp.jsonl"
                otlp_out.write(get_store(), out, flt)
                return out, "application/x-ndjson"
            if table not in TABLES:  # (before DuckDB is asked)
                raise KeyError(f"no table {table!r} to export (one of {', '.join(TABLES)})")
            export(get_store(), tmp / "export", fmt=q["format"], flt=flt, only=[table])
            return tmp / "export" / f"{table}.{FORMATS[q['format']][0]}", _TYPES[q["format"]]

        try:
            found = await self.run(work)
            if found is None:
                return
            path, ctype = found
            self.set_header("Content-Type", ctype)
            self.set_header("Content-Length", str(path.stat().st_size))
            self.set_header("Content-Disposition", f'attachment; filename="{path.name}"')
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    self.write(chunk)
                    await self.flush()  # (one chunk in memory at a time)
            self.finish()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            _exporting.release()


_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv",
          "jsonl": "application/x-ndjson"}
