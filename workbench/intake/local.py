"""Writes into the DuckDB file, through the store's single write queue."""

from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .. import config
from ..ingest import IngestError, as_bytes, parse_bytes, streams
from ..ingest.ci_env import run_metadata
from ..ingest.live import json_body, parse_batch, parse_running
from ..store import writes
from ..store.otlp_inbox import GROUP
from .base import RUN_META_KEYS, Intake, done, failed
from .flattener import MAX_IN_FLIGHT

log = logging.getLogger("workbench.intake")

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..ingest import ParsedRun
    from ..store import Store


def _usable_cores() -> int:
    """The cores this process may run on (its affinity; the machine's where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # (macOS)
        return os.cpu_count() or 1


def _summary(run: ParsedRun, path: str) -> dict[str, Any]:
    """The ``ingest --json`` object of a stored report, before its run id is known."""
    return {"path": path, "ok": True, **run.counts(), "warnings": run.warnings}


class LocalIntake(Intake):
    """The file's intake. Reports are parsed at once and written in chunks (one
    transaction per chunk), so the next file parses while earlier ones commit.

    Parameters
    ----------
    store
        The open store.
    ci_env
        Environment whose CI variables fill run metadata missing from the flags
        (``os.environ`` for a command run in CI; ``{}`` in the server, whose own
        environment says nothing about a client's run).
    block
        Wait for room in a full write queue (True) or raise ``StoreBusyError`` (the server,
        which answers 503).
    owns_store
        Close the store with the intake.
    """

    CHUNK_RUNS = 128
    CHUNK_ROWS = 200_000

    def __init__(self, store: Store, ci_env: Mapping[str, str] | None = None,
                 block: bool = True, owns_store: bool = False, created: bool = False):
        self.store = store
        self.where = str(store.path)
        self.created = created
        self._env = os.environ if ci_env is None else ci_env
        self._block = block
        self._owns = owns_store
        self._chunk: list[tuple] = []  # (run, meta, summary, future)
        self._rows = 0
        self.inbox = None  # (see use_inbox)
        self._flattener = None

    def submit_report(self, data: bytes, name: str, flags: dict[str, Any],
                      fmt: str | None = None) -> Future:
        if streams(data, name, fmt):
            try:
                return done(self._stream(data, name, flags, fmt))
            except (IngestError, ValueError) as err:
                return done(failed(name, str(err)))
        try:
            run = parse_bytes(data, name, fmt)
            meta = run_metadata(run.meta, flags, env=self._env)
        except (IngestError, ValueError) as err:
            return done(failed(name, str(err)))
        return self.submit_parsed(run, meta, name)

    def submit_parsed(self, run: ParsedRun, meta: dict[str, Any], name: str = "") -> Future:
        """Queue a run that is already parsed, with its final metadata (the demo's path)."""
        summary = _summary(run, name or run.source)
        out: Future = Future()
        self._chunk.append((run, meta, summary, out))
        self._rows += run.attempt_count
        if len(self._chunk) >= self.CHUNK_RUNS or self._rows >= self.CHUNK_ROWS:
            self.flush()
        return out

    def flush(self) -> None:
        if not self._chunk:
            return
        chunk, self._chunk, self._rows = self._chunk, [], 0
        ids, written = writes.submit_runs(
            self.store, [(run, meta) for run, meta, _, _ in chunk], block=self._block)

        def settle(f: Future) -> None:
            err = f.exception()
            for i, (_, _, summary, out) in enumerate(chunk):
                out.set_result(
                    {**summary, "run_id": ids[i], "duplicate": not f.result()[i]}
                    if err is None
                    else failed(summary["path"], f"{summary['path']}: not stored: {err}")
                )

        written.add_done_callback(settle)

    def report(self, data: bytes, name: str, flags: dict[str, Any],
               fmt: str | None = None) -> dict[str, Any]:
        """Store one report; a bad report raises :class:`IngestError` (nothing stored).

        A big one is stored as it is read (:func:`~workbench.store.writes.stream_report`),
        so that memory does not grow with its size."""
        if streams(data, name, fmt):
            return self._stream(data, name, flags, fmt)
        run = parse_bytes(data, name, fmt)
        meta = run_metadata(run.meta, flags, env=self._env)
        run_id, created = writes.insert_run(self.store, run, meta, block=self._block)
        return {**_summary(run, name), "run_id": run_id, "duplicate": not created}

    def coverage(self, data: bytes, name: str, flags: dict[str, Any],
                 roots: list[str] | None = None, fmt: str | None = None) -> dict[str, Any]:
        from ..coverage import CoverageError, agreement, read_coverage
        from ..store.coverage_writes import report_id, store_report

        if not flags.get("project"):
            return failed(name, f"{name}: a project is required (--project)")
        try:
            report = read_coverage(as_bytes(data), name, roots, fmt)
        except CoverageError as err:
            return failed(name, str(err))
        meta = {k: flags.get(k) for k in ("project", "commit", "branch")}
        rid = report_id(as_bytes(data), meta)
        totals = store_report(self.store, report, rid, meta, name)
        warnings = list(report.warnings)
        warnings += agreement(report, totals)
        return {"path": name, "ok": True, "report_id": rid, "format": report.format,
                **totals, "warnings": warnings}

    def _stream(self, data: bytes, name: str, flags: dict[str, Any],
                fmt: str | None) -> dict[str, Any]:
        run_id, created, summary = writes.stream_report(
            self.store, data, name, fmt,
            lambda run: run_metadata(run.meta, flags, env=self._env), block=self._block)
        return {"path": name, "ok": True, **summary, "run_id": run_id, "duplicate": not created}

    def live_start(self, meta: dict[str, Any], secret_sha256: str | None = None) -> str:
        run_id = "live-" + uuid.uuid4().hex[:12]
        return writes.start_live_run(self.store, run_id, {k: meta.get(k) for k in RUN_META_KEYS},
                                     block=self._block, secret_sha256=secret_sha256)

    def live_append(self, run_id: str, tests: list[dict[str, Any]] | bytes,
                    running: list[str] | None = None) -> int:
        source = f"live run {run_id}"
        if isinstance(tests, bytes | bytearray):  # the server's route: one JSON body
            body = json_body(tests, source)
        else:
            body = {"tests": tests, "running": running}
        batch = parse_batch(body, source)
        return writes.append_results(self.store, run_id, batch, block=self._block,
                                     running=parse_running(body, source))

    def live_finish(self, run_id: str, duration_s: float | None) -> None:
        if duration_s is not None and (not isinstance(duration_s, int | float)
                                       or isinstance(duration_s, bool) or duration_s < 0):
            raise IngestError(f"live run {run_id}: duration_s must be a number ≥ 0")
        writes.finish_live_run(self.store, run_id, duration_s, block=self._block)

    def submit_telemetry(self, signal: str, data: bytes, content_type: str | None):
        """Decode one OTLP request and queue its rows; ``(batch, future of row count)``.

        Never waits for a full queue (``StoreBusyError``: the receiver answers 503).
        """
        from ..ingest import otlp

        msg = otlp.decode(signal, data, content_type)
        to_clickhouse = getattr(self.store, "submit_otlp", None)
        if to_clickhouse is not None:  # (the Collector's own tables: see store/clickhouse)
            return to_clickhouse(signal, msg)
        inbox = self.inbox
        if inbox is None:
            batch = otlp.flatten(signal, msg)
            return batch, writes.submit_telemetry(self.store, batch.tables)
        try:
            if inbox.arriving():  # others are in flight: answer once the bytes are stored
                body = bytes(data) if otlp.is_protobuf(content_type) else msg.SerializeToString()
                batch, written = otlp.check(signal, msg), inbox.put(signal, body)
            else:
                batch = otlp.flatten(signal, msg)
                written = writes.submit_telemetry(self.store, batch.tables)
        except BaseException:
            inbox.left()
            raise
        written.add_done_callback(inbox.left)
        return batch, written

    def _write_later(self, groups: list[list[tuple[str, bytes]]]) -> list[Future]:
        """The inbox's worker: each group of acknowledged requests' rows, written as one
        transaction. In a burst the flattening process takes most of the groups (each
        queued for the writer as its reply comes in), and this thread makes the rest
        meanwhile: a core each, neither waiting for the other."""
        process = self._flattener
        if process is not None and (process.running() or self.inbox.backlog() > GROUP):
            process.start()  # (a burst; until its imports are done, this thread makes all)
            if not process.ready():
                process = None
        else:
            process = None
        futures: list[Future] = []
        # Its share is three groups in four: this thread shares the GIL with the writer
        # and the event loop (half each left the process idle two fifths of the time, and
        # this thread the bottleneck). Behind (a slow process), it gets none this time.
        if process is not None and process.in_flight() < MAX_IN_FLIGHT:
            for group in groups[:len(groups) - len(groups) // 4]:
                fut = process.send(group)
                if fut is None:
                    break
                futures.append(self._when_made(fut, group))
        for group in groups[len(futures):]:
            futures.append(self._write_made(self._rows_here(group)))
        return futures

    def _when_made(self, sent: Future, group: list[tuple[str, bytes]]) -> Future:
        """The write of a group the process is making: queued once its reply is in (or,
        if the process fails, once they are made here)."""
        out: Future = Future()

        def made(_: Future) -> None:
            try:
                written = self._write_made(self._flattener.result(sent)
                                           or self._rows_here(group))
            except BaseException as err:  # noqa: BLE001  (the inbox sees it on ``out``)
                out.set_exception(err)
                return
            written.add_done_callback(lambda f: out.set_exception(f.exception())
                                      if f.exception() else out.set_result(f.result()))

        sent.add_done_callback(made)
        return out

    def _write_made(self, made: tuple[dict, list[str]]) -> Future:
        tables, problems = made
        for problem in problems:
            log.error("OTLP inbox: %s; dropped", problem)
        return writes.submit_arrow(self.store, tables, block=True)

    @staticmethod
    def _rows_here(requests: list[tuple[str, bytes]]) -> tuple[dict, list[str]]:
        from ..ingest.otlp_flattener import flatten_tables

        return flatten_tables(requests)

    def use_inbox(self) -> None:
        """Answer overlapping OTLP requests once their bytes are stored, and write their rows
        behind (:mod:`workbench.store.otlp_inbox`); the server's receivers do."""
        from ..store.otlp_inbox import Inbox

        if self.inbox is None and getattr(self.store, "submit_otlp", None) is None:
            self.inbox = Inbox(self.store, self._write_later)
            # (one core, or a container given one: a second process only takes turns)
            if config.get("OBSERVATORY_OTLP_FLATTEN_PROCESS") and _usable_cores() > 1:
                from .flattener import Flattener

                self._flattener = Flattener()

    def inbox_state(self) -> dict[str, Any] | None:
        """For ``/api/health``: the OTLP inbox's waiting requests, and whether its
        flattening process runs and how often it failed (None: no inbox)."""
        if self.inbox is None:
            return None
        process = self._flattener
        return {**self.inbox.state(), "process": None if process is None else
                {"running": process.running(), "failures": process.state()["failures"]}}

    def telemetry(self, signal: str, data: bytes, content_type: str | None) -> int:
        """Store one request; return the items the receiver accepted (spans, records,
        points), as an exporter's response counts them."""
        batch, written = self.submit_telemetry(signal, data, content_type)
        written.result()
        return batch.accepted

    def delete_run(self, run_id: str) -> bool:
        return writes.delete_run(self.store, run_id, block=self._block)

    def close(self) -> None:
        self.flush()
        if self.inbox is not None:
            self.inbox.close()
        if self._flattener is not None:
            self._flattener.close()
        if self._owns:
            self.store.close()
