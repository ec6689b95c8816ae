"""OTLP over gRPC against OTLP/HTTP: spans stored per second, both sent by the SDK's own exporters.

For each protocol a fresh workbench is served (`observatory serve --otlp-grpc-port`, an
empty database, loopback, no tokens), and 4 processes each send prebuilt batches of 512
spans with ``exporter.export(batch)`` — the gRPC exporter
(``opentelemetry-exporter-otlp-proto-grpc``) or the protobuf HTTP one, no compression
unless ``--gzip``. Spans are traces of 16 spans with 8 attributes, built with the SDK before
the clock starts. Both receivers acknowledge a batch only once it is committed; the rate is
the spans counted in the store divided by the time from the first export until the last
acknowledgement; the median of ``--rounds`` runs, the protocols taking turns. Server CPU time per span and peak RSS are the server's process tree's
(psutil). The senders
run on the same machine, so they share its cores with the server::

    python benchmarks/otlp_grpc.py --spans 51200
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402
from otlp_ingest import ROOT, PeakRSS, free_port, wait_http  # noqa: E402

sys.path.insert(0, str(ROOT))

BATCH = 512
TRACE = 16
ATTRIBUTES = {
    "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4",
    "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 310,
    "tool.name": "Bash", "http.status_code": 200, "retry": False, "cost_usd": 0.0123,
}


def build(service: str, batches: int) -> list:
    """``batches`` lists of :data:`BATCH` finished SDK spans (ReadableSpan)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench", "1.0")
    for _ in range(batches * BATCH // TRACE):
        with tracer.start_as_current_span("agent.turn", attributes=ATTRIBUTES):
            for i in range(TRACE - 1):
                with tracer.start_as_current_span(f"tool.{i % 5}", attributes=ATTRIBUTES):
                    pass
    spans = memory.get_finished_spans()
    return [spans[i:i + BATCH] for i in range(0, len(spans), BATCH)]


def exporter(protocol: str, target: str, gz: bool):
    if protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=target, insecure=True,
                                compression=grpc.Compression.Gzip if gz else None)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=target,
                            compression=Compression.Gzip if gz else Compression.NoCompression)


def sender(protocol: str, target: str, gz: bool, service: str, batches: int,
           start: mp.Barrier, out: mp.Queue) -> None:
    """One sending process: build, wait for the others, export every batch."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    prebuilt = build(service, batches)
    exp = exporter(protocol, target, gz)
    start.wait()
    ok = failed = 0
    for batch in prebuilt:
        if exp.export(batch) is SpanExportResult.SUCCESS:
            ok += len(batch)
        else:
            failed += len(batch)
    exp.shutdown()
    out.put((ok, failed, time.monotonic()))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    import psutil

    proc = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])


def send(protocol: str, target: str, gz: bool, service: str, spans: int, processes: int,
         server_pid: int) -> tuple[int, list, float, float]:
    """``processes`` senders export ``spans`` to ``target``; ``(batches each, what each
    reported, when they all began, the server's CPU seconds then)``."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(processes + 1), ctx.Queue()
    batches = spans // (BATCH * processes)
    procs = [ctx.Process(target=sender, args=(protocol, target, gz, service, batches, start,
                                              out)) for _ in range(processes)]
    for p in procs:
        p.start()
    start.wait(timeout=600)
    began, cpu_before = time.monotonic(), cpu_seconds(server_pid)
    done = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    return batches, done, began, cpu_before


def run(protocol: str, spans: int, processes: int, gz: bool) -> dict:
    """Serve a fresh workbench, send ``spans`` with ``processes`` senders; the figures."""
    port, grpc_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "--address", "127.0.0.1",
             "--port", str(port), "--db", str(Path(tmp) / "otlp.duckdb"), "--no-demo",
             "--otlp-grpc-port", str(grpc_port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + "/api/health")
            rss = PeakRSS(server.pid)
            target = (f"http://127.0.0.1:{grpc_port}" if protocol == "grpc"
                      else url + "/v1/traces")
            service = f"bench-{protocol}"
            batches, done, began, cpu_before = send(protocol, target, gz, service, spans,
                                                    processes, server.pid)
            elapsed = max(d[2] for d in done) - began
            written = rows_written(url) - began  # (acknowledged requests' rows written later)
            cpu = cpu_seconds(server.pid) - cpu_before
            peak = rss.stop()
            from workbench.client import RemoteStore

            with RemoteStore(url) as remote:
                stored = int(remote.query("telemetry_counts", service=service)["spans"].iloc[0])
        finally:
            server.terminate()
            server.wait(30)
    acked = sum(d[0] for d in done)
    return {"sent": batches * BATCH * processes, "acked": acked,
            "failed": sum(d[1] for d in done), "stored": stored, "seconds": elapsed,
            "rate": stored / elapsed, "peak_mb": peak, "cpu_us": cpu / stored * 1e6,
            "written_s": written}


def rows_written(url: str) -> float:
    """When every acknowledged request's rows were written (the server's OTLP inbox empty,
    as ``/api/health`` says), on this process's monotonic clock."""
    import httpx

    while True:
        inbox = httpx.get(url + "/api/health", timeout=30).json().get("otlp_inbox")
        if not inbox or not inbox["requests"]:
            return time.monotonic()
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=51_200, help="spans per protocol")
    parser.add_argument("--processes", type=int, default=4, help="sending processes")
    parser.add_argument("--gzip", action="store_true", help="compress requests")
    parser.add_argument("--rounds", type=int, default=3, help="runs per protocol")
    args = parser.parse_args()
    print(machine())
    print(f"# {args.processes} SDK exporter processes per protocol, batches of {BATCH} spans, "
          f"{'gzip' if args.gzip else 'no compression'}, senders on the same machine")
    rounds: dict[str, list[dict]] = {"grpc": [], "http": []}
    for _ in range(args.rounds):  # alternately, so a busy moment of the machine hits both
        for protocol, results in rounds.items():
            r = run(protocol, args.spans, args.processes, args.gzip)
            results.append(r)
            print(f"{protocol:<5} {r['stored']:>8,} of {r['sent']:,} spans stored in "
                  f"{r['seconds']:6.2f} s = {r['rate']:>8,.0f} spans/s  "
                  f"(server CPU {r['cpu_us']:.0f} µs/span, peak RSS {r['peak_mb']:,.0f} MB; "
                  f"{r['failed']:,} failed)", flush=True)
    median = {p: statistics.median(r["rate"] for r in rs) for p, rs in rounds.items()}
    print(f"median of {args.rounds}: gRPC {median['grpc']:,.0f} spans/s, HTTP "
          f"{median['http']:,.0f} spans/s, gRPC/HTTP {median['grpc'] / median['http']:.2f}x")


if __name__ == "__main__":
    main()
