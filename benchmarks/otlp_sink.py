"""OTLP from the SDK's own exporters: the workbench against a bare sink, in one run.

The ceiling for a receiver on this machine is what the exporters push into a server that
only reads each request and acknowledges it. Both receivers here are served on 127.0.0.1
and fed by ``--processes`` processes that each send prebuilt batches of 512 spans with the
SDK's protobuf HTTP ``OTLPSpanExporter`` (``exporter.export(batch)``: each waits for the
answer before the next batch, as the SDK's ``BatchSpanProcessor`` does):

- **bare sink**: a Tornado server (the workbench's own HTTP stack) that reads the body and
  answers an empty ``ExportTraceServiceResponse``; it stores nothing;
- **workbench**: ``observatory serve`` on a fresh file, which answers only once a request
  is committed (its rows, or while requests overlap its bytes in the OTLP inbox); once the
  inbox is empty the spans are counted in the store (each exactly once).

The rate is spans acknowledged per second, from the first send to the last answer.

Turns alternate (``--rounds``), the figure is the median, and the ratio is the issue's
measure (target ≥ 90 %). Server CPU per span and peak RSS are the server process tree's::

    python benchmarks/otlp_sink.py [--spans 51200] [--processes 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _timing import machine  # noqa: E402
from otlp_grpc import BATCH, cpu_seconds, run, send  # noqa: E402
from otlp_ingest import ROOT, PeakRSS, free_port, wait_http  # noqa: E402

#: The bare sink: Tornado, one POST route that reads and acknowledges, a health route.
SINK = """
import sys
from tornado import ioloop, web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

EMPTY = ExportTraceServiceResponse().SerializeToString()

class Traces(web.RequestHandler):
    def post(self):
        _ = self.request.body
        self.set_header("Content-Type", "application/x-protobuf")
        self.finish(EMPTY)

class Health(web.RequestHandler):
    def get(self):
        self.finish("ok")

web.Application([("/v1/traces", Traces), ("/api/health", Health)]).listen(
    int(sys.argv[1]), "127.0.0.1")
ioloop.IOLoop.current().start()
"""


def sink(spans: int, processes: int) -> dict:
    """Send ``spans`` into the bare sink; the figures."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SINK, str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/api/health")
        rss = PeakRSS(server.pid)
        batches, done, began, cpu_before = send("http", url + "/v1/traces", False, "sink",
                                                spans, processes, server.pid)
        elapsed = max(d[2] for d in done) - began
        cpu = cpu_seconds(server.pid) - cpu_before
        peak = rss.stop()
    finally:
        server.terminate()
        server.wait(30)
    acked = sum(d[0] for d in done)
    return {"sent": batches * BATCH * processes, "acked": acked, "failed": sum(d[1] for d in done),
            "stored": acked, "seconds": elapsed, "rate": acked / elapsed, "peak_mb": peak,
            "cpu_us": cpu / max(acked, 1) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=51_200, help="spans per run")
    parser.add_argument("--processes", type=int, default=4, help="sending processes")
    parser.add_argument("--rounds", type=int, default=3, help="runs per receiver")
    args = parser.parse_args()
    print(machine())
    print(f"# {args.processes} SDK HTTP exporter processes, batches of {BATCH} spans, "
          "no compression, senders on the same machine")
    rounds: dict[str, list[dict]] = {"bare sink": [], "workbench": []}
    for _ in range(args.rounds):  # alternately, so a busy moment of the machine hits both
        for name, results in rounds.items():
            r = (sink(args.spans, args.processes) if name == "bare sink"
                 else run("http", args.spans, args.processes, False))
            results.append(r)
            rows = (f"; all rows written {r['written_s']:.2f} s after the first send, "
                    f"{r['stored']:,} stored" if "written_s" in r else "")
            print(f"{name:<10} {r['acked']:>8,} of {r['sent']:,} spans acknowledged in "
                  f"{r['seconds']:6.2f} s = {r['rate']:>8,.0f} spans/s  "
                  f"(server CPU {r['cpu_us']:.0f} µs/span, peak RSS {r['peak_mb']:,.0f} MB; "
                  f"{r['failed']:,} failed{rows})", flush=True)
    median = {n: statistics.median(r["rate"] for r in rs) for n, rs in rounds.items()}
    share = median["workbench"] / median["bare sink"]
    print(f"median of {args.rounds}: bare sink {median['bare sink']:,.0f} spans/s, workbench "
          f"{median['workbench']:,.0f} spans/s = {share:.0%} of the sink (target ≥ 90 %)")


if __name__ == "__main__":
    main()
