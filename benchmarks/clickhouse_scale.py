"""DuckDB against ClickHouse (chDB, ClickHouse's engine in-process) at 100M spans, in one run.

For each store: build N spans of the same shape (500 traces of 20 spans per 10,000, six
agents, GenAI attributes, 2 % errors, 30 days), generated inside the engine itself
(DuckDB: the workbench's ``spans`` table; ClickHouse: the Collector exporter's
``otel_traces``, whose agent columns ClickHouse materialises at insert). Then print the
store's size on disk and the median of 5 warm runs of each model call the Agents page
makes, and trace search.

With ``--ingest``, also the workbench's own OTLP/HTTP receiver writing to each store
(``benchmarks/otlp_ingest.py``'s load tool and harness): stored spans/s and peak RSS.

    python benchmarks/clickhouse_scale.py [--spans 100000000] [--ingest]
"""

from __future__ import annotations

import argparse
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

from _timing import machine, timed  # noqa: E402
from telemetry_queries import build as build_duckdb  # noqa: E402

from workbench.models import AgentTelemetry
from workbench.store import Store
from workbench.store.clickhouse.ch_store import ClickHouseStore

OUT = Path(__file__).parent / "out"


def build_chdb(store: ClickHouseStore, spans: int) -> None:
    start = datetime.now() - timedelta(days=30)
    step = 10_000_000  # (one INSERT per 10M: ClickHouse's memory stays flat)
    for first in range(0, spans, step):
        store._ch.command(f"""
        INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind,
                                 ServiceName, ResourceAttributes, SpanAttributes, Duration,
                                 StatusCode)
        SELECT toDateTime64('{start:%Y-%m-%d %H:%M:%S}', 9)
                   + toIntervalMillisecond(intDiv(number, 20) * 5184 + (number % 20) * 40),
               leftPad(lower(hex(intDiv(number, 20))), 32, '0'),
               leftPad(lower(hex(number + 1)), 16, '0'),
               if(number % 20 = 0, '', leftPad(lower(hex(number - number % 20 + 1)), 16, '0')),
               multiIf(number % 20 = 0, 'invoke_agent', number % 3 = 0,
                       concat('execute_tool ', ['Bash', 'Read', 'Edit'][1 + number % 3]),
                       'chat') AS op_name,
               'SPAN_KIND_INTERNAL', concat('agent-', toString(intDiv(number, 20) % 6)) AS svc,
               map('service.name', svc),
               mapFilter((k, v) -> v != '', map(
                   'gen_ai.operation.name', multiIf(number % 20 = 0, 'invoke_agent',
                                                    number % 3 = 0, 'execute_tool', 'chat'),
                   'gen_ai.agent.name', svc,
                   'gen_ai.conversation.id', concat('session-', toString(intDiv(number, 1000))),
                   'gen_ai.request.model', concat('m-', toString(number % 4)),
                   'k', toString(number % 1000),
                   'gen_ai.usage.input_tokens', if(number % 3 != 0, toString(1000 + number % 500), ''),
                   'gen_ai.usage.output_tokens', if(number % 3 != 0, toString(100 + number % 50), ''),
                   'gen_ai.usage.cost', if(number % 3 != 0, '0.001', ''))),
               35000000,
               if(cityHash64(number) % 50 = 0, 'STATUS_CODE_ERROR', 'STATUS_CODE_UNSET')
        FROM numbers({first}, {min(step, spans - first)})
        """)


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def calls(store) -> dict:
    """The queries the Agents page's model asks (its 30-day window), asked of the store
    directly: the model keeps one answer per data version, which would time nothing."""
    model = AgentTelemetry(store=store, window="30 days", now=datetime.now())
    f = model.filters()
    slot = model.timeline_bucket_s()  # (the page's: 400 slots of whole hours, 2 h here)
    some_trace = store.query("trace_list", **f, limit=1).trace_id.iloc[0]

    def ask(name: str, **extra):
        return lambda: store.query(name, **{**f, **extra})

    return {
        "agent totals (the cards)": ask("agent_totals"),
        "agent sessions": ask("agent_sessions", limit=500),
        "token usage / model mix": ask("token_usage"),
        "timeline sessions": ask("timeline_sessions"),
        f"timeline buckets ({slot // 3600} h slots)": ask("timeline_buckets", bucket_s=slot),
        "agents and services (filters)": lambda: (store.query("telemetry_agents"),
                                                  store.query("telemetry_services")),
        "trace list (newest 200)": ask("trace_list", limit=200),
        "trace search: name/attribute text": ask("trace_list", text="Edit", limit=200),
        "trace search: errors only": ask("trace_list", errors_only=True, limit=200),
        "trace search: one agent, >= 30 ms": ask("trace_list", agent="agent-3", min_ms=30,
                                                 limit=200),
        "waterfall of one trace": lambda: store.query("trace_spans", trace_id=some_trace),
        "span search (newest 200)": ask("spans_search", limit=200),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000_000)
    parser.add_argument("--ingest", action="store_true", help="also the OTLP receiver's rate")
    parser.add_argument("--stores", nargs="+", default=["DuckDB", "chDB"],
                        choices=["DuckDB", "chDB"], help="whose model calls to time")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    print(machine())
    duck_path = OUT / f"telemetry-{args.spans}.duckdb"
    ch_path = OUT / f"chdb-{args.spans}"
    if not duck_path.exists():
        t = time.perf_counter()
        build_duckdb(duck_path, args.spans)
        print(f"DuckDB: built {args.spans:,} spans in {time.perf_counter() - t:.0f} s")
    with ClickHouseStore(f"chdb://{ch_path}?database=bench", OUT / "chdb-control.duckdb") as ch:
        if ch.query("telemetry_counts").spans[0] < args.spans:
            ch._ch.command("TRUNCATE TABLE otel_traces")
            t = time.perf_counter()
            build_chdb(ch, args.spans)
            print(f"chDB: built {args.spans:,} spans in {time.perf_counter() - t:.0f} s")
            ch._ch.command("OPTIMIZE TABLE otel_traces FINAL")
    print(f"on disk: DuckDB {size(duck_path) / 2**30:.2f} GiB, "
          f"chDB {size(ch_path) / 2**30:.2f} GiB")
    results: dict[str, dict[str, float]] = {}
    for label, opener in (("DuckDB", lambda: Store(duck_path)),
                          ("chDB", lambda: ClickHouseStore(
                              f"chdb://{ch_path}?database=bench",
                              OUT / "chdb-control.duckdb"))):
        if label not in args.stores:
            continue
        with opener() as store:
            results[label] = {name: timed(fn) for name, fn in calls(store).items()}
    print(f"\n{'model call (median of 5, warm)':<40}" + "".join(f"{s:>11}" for s in results))
    for name in next(iter(results.values())):
        print(f"{name:<40}" + "".join(f"{r[name] * 1000:8.0f} ms" for r in results.values()))
    if args.ingest:
        subprocess.run(["python3", str(Path(__file__).parent / "otlp_ingest.py"),
                        "--stores", "duckdb", "chdb"], check=True)


if __name__ == "__main__":
    main()
