"""Running it for months: export of 10M spans, and retention, compaction and backup under OTLP load.

1. ``--export``: a file of ``--spans`` spans (default 10,000,000; traces of 20 spans over 30
   days, 5 services, ~150-byte GenAI attributes, the agent columns, an event on every tenth
   span) is written inside DuckDB (``INSERT ... SELECT FROM range()``, then the hourly
   rollup rebuilt). Each export then runs in a fresh child process, which reports its own
   wall time and peak RSS (``getrusage``): ``export(store, dest, ["spans"], "parquet")``,
   ``"jsonl"``, partitioned Parquet, and ``otlp_out.write`` (OTLP/JSON lines). Last, the
   file is compacted (``upkeep.compact``, in a child too): with every row live, the time
   a served file of that size would hold writes.
2. ``--retention`` / ``--compact`` / ``--backup``: a served workbench (``python -m
   workbench.cli serve``, role tokens, ``OBSERVATORY_RETENTION_EVERY_S=0`` and
   ``OBSERVATORY_COMPACT_RATIO=0`` so that nothing runs unasked) over a file pre-filled with
   ``--old-spans`` spans 10 to 20 days old, while ``--processes`` OpenTelemetry SDK exporter
   processes (the protobuf HTTP ``OTLPSpanExporter``) send prebuilt batches of 512 spans
   (given fresh trace ids and the current time before each send, so none is a resend).
   The spans acknowledged per second are counted in a quiet window, then before, during and
   after ``POST /api/store/retention/run`` (a ``spans`` policy of 3 days: every old span
   goes), ``POST /api/store/compact`` and ``POST /api/store/backup``; at the end the
   acknowledged spans are counted in the store.

No flag: everything. Everything runs in a fresh temporary folder and listens on 127.0.0.1::

    python benchmarks/store_upkeep.py [--spans 10000000] [--old-spans 2000000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402
from otlp_grpc import BATCH, build  # noqa: E402  (the same SDK spans)
from otlp_ingest import ROOT, free_port, wait_http  # noqa: E402

TOKENS = {"admin": "bench-admin", "ingest": "bench-ingest"}
SERVICE = "upkeep-load"


# -- a big file, written inside DuckDB ---------------------------------------------------

def fill(path: Path, spans: int, first: datetime, days: float, prefix: str) -> None:
    """``spans`` spans from ``first`` over ``days`` days into the store file ``path``
    (traces of 20 spans; an event on every tenth span), then the hourly rollup."""
    from workbench.store import Store, rollup

    step_us = int(days * 86400e6 / spans)
    sql = f"""
        INSERT INTO spans BY NAME
        SELECT md5('{prefix}' || (i // 20)) AS trace_id,
               substr(md5('{prefix}s' || i), 1, 16) AS span_id,
               CASE WHEN i % 20 = 0 THEN NULL
                    ELSE substr(md5('{prefix}s' || (i - i % 20)), 1, 16) END AS parent_span_id,
               CASE WHEN i % 20 = 0 THEN 'invoke_agent'
                    WHEN i % 3 = 0 THEN 'execute_tool ' || ['Bash', 'Read', 'Edit', 'Grep'][1 + i % 4]
                    ELSE 'chat claude-sonnet-4' END AS name,
               CASE WHEN i % 20 = 0 THEN 2 ELSE 1 END AS kind,
               st AS start_time, epoch_ns(st) AS start_ns,
               epoch_ns(st) + (hash(i) % 30000) * 100000 AS end_ns,
               (hash(i) % 30000) / 10.0 AS duration_ms,
               CASE WHEN hash(i) % 50 = 0 THEN 2 ELSE 0 END AS status_code,
               CASE WHEN hash(i) % 50 = 0 THEN 'tool failed: exit status 1' END
                   AS status_message,
               '{prefix}-svc-' || ((i // 20) % 5) AS service_name,
               'opentelemetry.instrumentation.anthropic' AS scope_name,
               '0.44.1' AS scope_version,
               ('{{"service.name":"{prefix}-svc-' || ((i // 20) % 5) || '","host.name":"ci-'
                || ((i // 20) % 16) || '","telemetry.sdk.language":"python"}}')::JSON
                   AS resource,
               ('{{"gen_ai.system":"anthropic","gen_ai.request.model":"claude-sonnet-4-'
                || (i % 4) || '","gen_ai.usage.input_tokens":' || (1000 + i % 5000)
                || ',"gen_ai.usage.output_tokens":' || (50 + i % 700)
                || ',"session.id":"s-' || (i // 1000) || '"}}')::JSON AS attributes,
               CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END AS events, 0 AS links,
               'agent-' || ((i // 20) % 6) AS agent_name, 's-' || (i // 1000) AS session_id,
               'p-' || (i // 20) AS prompt_id,
               CASE WHEN i % 20 = 0 THEN 'invoke_agent' WHEN i % 3 = 0 THEN 'execute_tool'
                    ELSE 'chat' END AS operation,
               'anthropic' AS provider, 'claude-sonnet-4-' || (i % 4) AS model,
               CASE WHEN i % 3 <> 0 THEN 1000 + i % 5000 END AS input_tokens,
               CASE WHEN i % 3 <> 0 THEN 50 + i % 700 END AS output_tokens,
               CASE WHEN i % 3 <> 0 THEN i % 2000 END AS cache_read_tokens,
               CASE WHEN i % 3 <> 0 THEN 0 END AS cache_creation_tokens,
               CASE WHEN i % 3 <> 0 THEN 0 END AS reasoning_tokens,
               CASE WHEN i % 3 <> 0 THEN 0.0004 * (1 + i % 9) END AS cost_usd,
               CASE WHEN i % 20 <> 0 AND i % 3 = 0 THEN ['Bash', 'Read', 'Edit', 'Grep'][1 + i % 4]
                    END AS tool_name,
               hash(i) % 50 = 0 AS is_error
        FROM (SELECT i, TIMESTAMP '{first:%Y-%m-%d %H:%M:%S}' + to_microseconds(i * {step_us})
                  AS st FROM range({spans}) t(i))
    """
    events = """
        INSERT INTO span_events
        SELECT trace_id, span_id, start_time, start_ns, 'gen_ai.content.prompt',
               '{"gen_ai.prompt":"list the failing tests"}'
        FROM spans WHERE events = 1
    """
    with Store(path) as store:
        # (a build-only buffer pool; what is measured runs with the workbench's default)
        store.write(lambda cur: cur.execute("SET memory_limit = '6GB'"), topic=None)
        store.write(lambda cur: cur.execute(sql), topic=None)
        store.write(lambda cur: cur.execute(events), topic=None)
        store.write(rollup.rebuild)  # the rows went around the writer, which rolls up
        store.write(lambda cur: cur.execute("CHECKPOINT"), topic=None)


# -- 1. exports, each in a child process ---------------------------------------------------

#: The exports measured: name, (format, partitioned by day).
EXPORTS = {"parquet": ("parquet", False), "jsonl": ("jsonl", False),
           "parquet-by-day": ("parquet", True), "otlp-json": ("otlp", False)}


def child(db: Path, mode: str, out: Path) -> None:
    """One export of ``db``'s spans into ``out``; prints its figures as JSON."""
    import psutil

    from workbench.store import Store, otlp_out
    from workbench.store.export import export

    if mode == "compact":
        from workbench.store import upkeep

        with Store(db) as store:
            base = psutil.Process().memory_info().rss
            done = upkeep.compact(store)
        print(json.dumps({**done, "peak": _peak(), "base": base}))
        return
    fmt, partition = EXPORTS[mode]
    with Store(db, read_only=True) as store:
        base = psutil.Process().memory_info().rss
        start = time.perf_counter()
        if fmt == "otlp":
            out.mkdir()
            rows = {"spans": otlp_out.write(store, out / "spans.otlp.jsonl")}
        else:
            manifest = export(store, out, ["spans"], fmt, partition=partition)
            rows = {t: v["rows"] for t, v in manifest["tables"].items()}
        seconds = time.perf_counter() - start
    print(json.dumps({"rows": rows, "seconds": seconds, "peak": _peak(), "base": base}))


def _peak() -> int:
    """This process's peak RSS in bytes. (VmHWM, not getrusage: Linux carries ru_maxrss
    across exec, so a child of a big parent would report the parent's peak.)"""
    return next(int(ln.split()[1]) * 1024 for ln in Path("/proc/self/status").read_text()
                .splitlines() if ln.startswith("VmHWM:"))


def compact_file(db: Path) -> None:
    """Compact the export's file in a child process (no server, nothing deleted: the
    copy of every live row, which is how long a served file's writes would wait)."""
    before = db.stat().st_size
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                           "compact", "--db", str(db)], capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"compaction failed:\n{done.stderr[-2000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"compaction of that file (no server; every row live): {r['rows']:,} rows in "
          f"{r['seconds']:,.1f} s (copy {r['copy_s']:,.1f} s), {before / 2**20:,.0f} → "
          f"{r['after_bytes'] / 2**20:,.0f} MiB, peak RSS {r['peak'] / 2**20:,.0f} MB",
          flush=True)


def exports(db: Path, tmp: Path, modes: list[str]) -> list[dict]:
    from workbench.store.export import directory_size

    results = []
    for mode in modes:
        out = tmp / f"export-{EXPORTS[mode][0]}-{int(EXPORTS[mode][1])}"
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode, "--db", str(db),
                               "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            raise SystemExit(f"{mode}: the export failed:\n{done.stderr[-2000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        r.update(mode=mode, bytes=directory_size(out),
                 files=sum(1 for p in out.rglob("*") if p.is_file()))
        shutil.rmtree(out)
        results.append(r)
        print_export(r)
    return results


def print_export(r: dict) -> None:
    spans = r["rows"]["spans"]
    print(f"| {r['mode']} | {spans:,} (+{sum(r['rows'].values()) - spans:,} rows) | "
          f"{r['seconds']:,.1f} s | {spans / r['seconds']:,.0f} | {r['peak'] / 2**20:,.0f} MB "
          f"({r['base'] / 2**20:,.0f} before) | {r['bytes'] / 2**20:,.0f} MiB in "
          f"{r['files']} files |", flush=True)


# -- 2. and 3. jobs under OTLP load --------------------------------------------------------

def renew(batch: list, originals: list, mark: int) -> None:
    """Make a prebuilt batch new: each trace id XORed with ``mark`` (so the receiver, which
    stores a resent span once, stores them all) and the times moved to now. (The SDK's
    ReadableSpan has no public setters: a benchmark may touch its fields.)"""
    from opentelemetry.trace import SpanContext

    shift = time.time_ns() - max(o[2] for o in originals)
    for span, (ctx, start, end) in zip(batch, originals, strict=True):
        span._context = SpanContext(ctx.trace_id ^ (mark << 64), ctx.span_id, ctx.is_remote,
                                    ctx.trace_flags, ctx.trace_state)
        span._start_time, span._end_time = start + shift, end + shift


def sender(index: int, target: str, start: mp.Barrier, stop: mp.Event, out: mp.Queue) -> None:
    """One SDK exporter process: send batches until ``stop``; put the list of
    ``(sent, answered, spans acknowledged)`` per request."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    prebuilt = build(SERVICE, 8)
    originals = [[(s.context, s.start_time, s.end_time) for s in b] for b in prebuilt]
    exporter = OTLPSpanExporter(endpoint=target, compression=Compression.NoCompression,
                                headers={"Authorization": f"Bearer {TOKENS['ingest']}"},
                                timeout=600)  # (a compaction holds writes for its copy)
    start.wait()
    log, n = [], 0
    while not stop.is_set():
        i = n % len(prebuilt)
        n += 1
        renew(prebuilt[i], originals[i], (index + 1) << 24 | n)
        sent = time.monotonic()
        ok = exporter.export(prebuilt[i]) is SpanExportResult.SUCCESS
        log.append((sent, time.monotonic(), BATCH if ok else 0))
    exporter.shutdown()
    out.put(log)


def old_file(path: Path, spans: int) -> None:
    now = datetime.now().replace(microsecond=0)
    fill(path, spans, now - timedelta(days=20), 10, "old")


def file_figures(api: httpx.Client) -> dict:
    return api.get("/api/store").json()["file"]


def under_load(tmp: Path, old: int, processes: int, jobs: list[str], quiet: float,
               gap: float) -> dict:
    """Serve a file of ``old`` old spans, load it, run ``jobs`` one after another."""
    db = tmp / "served.duckdb"
    start = time.perf_counter()
    old_file(db, old)
    built = time.perf_counter() - start
    print(f"# built {old:,} spans 10-20 days old in {built:.0f} s: "
          f"{db.stat().st_size / 2**20:,.0f} MiB", flush=True)
    port = free_port()
    env = {**os.environ,
           "OBSERVATORY_TOKENS": ",".join(f"{t}:{r}" for r, t in TOKENS.items()),
           "OBSERVATORY_RETENTION_EVERY_S": "0", "OBSERVATORY_COMPACT_RATIO": "0",
           "OBSERVATORY_BACKUP_DIR": str(tmp / "backups")}
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--address", "127.0.0.1", "--port",
         str(port), "--db", str(db), "--no-demo"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=url, timeout=3600,
                       headers={"Authorization": f"Bearer {TOKENS['admin']}"})
    ctx = mp.get_context("spawn")
    barrier, stop, out = ctx.Barrier(processes + 1), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=sender, args=(i, url + "/v1/traces", barrier, stop, out))
             for i in range(processes)]
    marks: dict[str, float] = {}
    done: dict[str, dict] = {}
    files: dict[str, dict] = {}
    try:
        wait_http(url + "/api/health")
        files["start"] = file_figures(api)
        for p in procs:
            p.start()
        barrier.wait(timeout=600)
        marks["load"] = time.monotonic()
        time.sleep(5)  # (connections open, the first folds done)
        marks["quiet"] = time.monotonic()
        time.sleep(quiet)
        for job in jobs:
            if job == "retention":
                r = api.put("/api/store/retention", json={"kind": "spans", "days": 3})
                r.raise_for_status()
            path = {"retention": "/api/store/retention/run", "compact": "/api/store/compact",
                    "backup": "/api/store/backup"}[job]
            marks[f"{job}:start"] = time.monotonic()
            r = api.post(path, json={})
            marks[f"{job}:end"] = time.monotonic()
            if r.status_code != 200:
                raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
            done[job] = r.json()
            files[job] = file_figures(api)
            time.sleep(gap)
            marks[f"{job}:after"] = time.monotonic()
        stop.set()
        logs = [out.get(timeout=900) for _ in procs]
        marks["stop"] = time.monotonic()
        for p in procs:
            p.join(60)
        from workbench.client import RemoteStore

        with RemoteStore(url, token=TOKENS["admin"]) as remote:
            stored = int(remote.query("telemetry_counts", service=SERVICE)["spans"].iloc[0])
            left = int(remote.query("telemetry_counts", service="old-svc-0")["spans"].iloc[0])
    finally:
        stop.set()
        for p in procs:
            if p.is_alive():
                p.terminate()
        api.close()
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return {"marks": marks, "done": done, "files": files, "stored": stored,
            "old_left": left, "requests": sorted(r for lg in logs for r in lg),
            "built_s": built}


def rate(requests: list, a: float, b: float) -> float:
    """Spans acknowledged per second between ``a`` and ``b``."""
    return sum(n for _, t, n in requests if a <= t < b) / (b - a)


def longest_gap(requests: list, a: float, b: float) -> float:
    """The longest time between ``a`` and ``b`` in which no request was acknowledged."""
    times = [a, *sorted(t for _, t, n in requests if a <= t < b and n), b]
    return max(y - x for x, y in zip(times, times[1:], strict=False))


def report_load(r: dict, jobs: list[str], processes: int) -> None:
    m, reqs = r["marks"], r["requests"]
    acked = sum(n for *_, n in reqs)
    quiet_end = m["quiet"] + (m[f"{jobs[0]}:start"] - m["quiet"])
    lat = [t - s for s, t, n in reqs if m["quiet"] <= t < quiet_end]
    print(f"# {processes} SDK exporter processes (protobuf over HTTP, batches of {BATCH}), "
          f"{r['files']['start']['file_bytes'] / 2**20:,.0f} MiB file to start with")
    print(f"quiet: {rate(reqs, m['quiet'], quiet_end):,.0f} spans/s acknowledged; a request "
          f"took {statistics.median(lat) * 1000:.0f} ms (median), "
          f"{max(lat) * 1000:.0f} ms at most")
    print()
    print("| job | took | spans/s before | during | after | longest wait for an ack "
          "during it | file before → after |")
    print("|---|---:|---:|---:|---:|---:|---|")
    before_a, before_b = m["quiet"], quiet_end
    prev = r["files"]["start"]
    for job in jobs:
        a, b, c = m[f"{job}:start"], m[f"{job}:end"], m[f"{job}:after"]
        slow = max((t - s for s, t, n in reqs if t >= a and s < b), default=0.0)
        after = r["files"][job]
        print(f"| {job} | {b - a:,.1f} s | {rate(reqs, before_a, before_b):,.0f} | "
              f"{rate(reqs, a, b):,.0f} | {rate(reqs, b, c):,.0f} | "
              f"{max(slow, longest_gap(reqs, a, b)):,.1f} s | "
              f"{_size(prev)} → {_size(after)} |")
        before_a, before_b, prev = b, c, after
    print()
    for job in jobs:
        d = {k: v for k, v in r["done"][job].items() if k not in ("ok", "archived", "path")}
        print(f"{job}: {json.dumps(d)}")
    lost = acked - r["stored"]
    print(f"acknowledged {acked:,} spans of {len(reqs):,} requests "
          f"({sum(1 for *_, n in reqs if not n)} failed); stored {r['stored']:,} of the "
          f"service: {lost:,} lost; old spans left: {r['old_left']:,}")


def _size(f: dict) -> str:
    return (f"{f['file_bytes'] / 2**20:,.0f} MiB ({f['free_bytes'] / 2**20:,.0f} free, "
            f"WAL {f['wal_bytes'] / 2**20:,.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", action="store_true", help="measure the exports")
    parser.add_argument("--retention", action="store_true",
                        help="measure a retention run under load")
    parser.add_argument("--compact", action="store_true", help="measure a compaction under load")
    parser.add_argument("--backup", action="store_true", help="measure a backup under load")
    parser.add_argument("--spans", type=int, default=10_000_000, help="spans exported")
    parser.add_argument("--formats", default=",".join(EXPORTS),
                        help=f"exports measured, comma-separated (of: {', '.join(EXPORTS)})")
    parser.add_argument("--no-compact-file", action="store_true",
                        help="with --export: do not also time a compaction of its file")
    parser.add_argument("--db", type=Path,
                        help="the export's file: reused if there, built there if not "
                             "(default: built in the temporary folder)")
    parser.add_argument("--old-spans", type=int, default=2_000_000,
                        help="old spans in the served file, deleted by retention")
    parser.add_argument("--processes", type=int, default=3, help="OTLP sending processes")
    parser.add_argument("--quiet", type=float, default=15, help="seconds of the quiet window")
    parser.add_argument("--gap", type=float, default=10, help="seconds after each job")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.db, args.child, args.out)
    every = not (args.export or args.retention or args.compact or args.backup)
    jobs = [j for j in ("retention", "compact", "backup") if every or getattr(args, j)]
    import duckdb

    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                  .splitlines() if ln.startswith("model name")), "?")
    print(f"{machine()} ({model}), duckdb {duckdb.__version__}, "
          f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GB RAM")
    with tempfile.TemporaryDirectory(prefix="store-upkeep-") as name:
        tmp = Path(name)
        if every or args.export:
            db = args.db or tmp / "spans.duckdb"
            if not db.exists():
                start = time.perf_counter()
                now = datetime.now().replace(microsecond=0)
                fill(db, args.spans, now - timedelta(days=30), 30, "bench")
                print(f"# built {args.spans:,} spans in {time.perf_counter() - start:.0f} s: "
                      f"{db.stat().st_size / 2**20:,.0f} MiB", flush=True)
            print("\n| export of the spans (a child process each) | spans (+ events) | took | "
                  "spans/s | peak RSS | output |")
            print("|---|---:|---:|---:|---:|---|", flush=True)
            exports(db, tmp, [m.strip() for m in args.formats.split(",") if m.strip()])
            print()
            if not args.no_compact_file:
                compact_file(db)
                print()
        if jobs:
            r = under_load(tmp, args.old_spans, args.processes, jobs, args.quiet, args.gap)
            report_load(r, jobs, args.processes)


if __name__ == "__main__":
    main()
