"""Latency of trace search, trace waterfall, agent sessions and timeline over 10M spans.

Builds (or reuses) benchmarks/out/telemetry-10M.duckdb with 10,000,000 spans generated in
DuckDB itself: 500,000 traces of 20 spans over 30 days, 6 agents, GenAI attributes, 2%
errors. Then times each model call the agents dashboard makes (median of 5, warm).

    python benchmarks/telemetry_queries.py [--spans 10000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from _timing import timed  # noqa: E402

from workbench.models import AgentTelemetry
from workbench.store import Store, rollup

OUT = Path(__file__).parent / "out"


def build(path: Path, spans: int) -> None:
    with Store(path) as store:
        store.write(
            lambda cur: cur.execute(f"""
            INSERT INTO spans BY NAME
            SELECT printf('%032x', i // 20) AS trace_id, printf('%016x', i + 1) AS span_id,
                   CASE WHEN i % 20 = 0 THEN NULL ELSE printf('%016x', i - i % 20 + 1) END
                       AS parent_span_id,
                   CASE WHEN i % 20 = 0 THEN 'invoke_agent'
                        WHEN i % 3 = 0 THEN 'execute_tool ' || ['Bash', 'Read', 'Edit'][1 + i % 3]
                        ELSE 'chat' END AS name,
                   1 AS kind,
                   TIMESTAMP '{datetime.now() - timedelta(days=30):%Y-%m-%d %H:%M:%S}'
                       + to_milliseconds((i // 20) * 5184 + (i % 20) * 40) AS start_time,
                   (i // 20) * 5184000000 + (i % 20) * 40000000 AS start_ns,
                   (i // 20) * 5184000000 + (i % 20) * 40000000 + 35000000 AS end_ns,
                   35.0 AS duration_ms,
                   CASE WHEN hash(i) % 50 = 0 THEN 2 ELSE 0 END AS status_code,
                   'agent-' || ((i // 20) % 6) AS service_name,
                   ('{{"gen_ai.operation.name":"chat","gen_ai.request.model":"m-' || (i % 4)
                    || '","k":' || (i % 1000) || '}}')::JSON AS attributes,
                   'agent-' || ((i // 20) % 6) AS agent_name,
                   'session-' || ((i // 20) // 50) AS session_id,
                   CASE WHEN i % 20 = 0 THEN 'invoke_agent' WHEN i % 3 = 0 THEN 'execute_tool'
                        ELSE 'chat' END AS operation,
                   'm-' || (i % 4) AS model,
                   CASE WHEN i % 3 <> 0 THEN 1000 + i % 500 END AS input_tokens,
                   CASE WHEN i % 3 <> 0 THEN 100 + i % 50 END AS output_tokens,
                   CASE WHEN i % 3 <> 0 THEN 0.001 END AS cost_usd,
                   hash(i) % 50 = 0 AS is_error
            FROM range({spans}) t(i)
        """)
        )
        store.write(rollup.rebuild)  # the rows went around the writer, which rolls up




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    args = parser.parse_args()
    path = OUT / f"telemetry-{args.spans}.duckdb"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        start = time.perf_counter()
        build(path, args.spans)
        print(f"built {path.name} in {time.perf_counter() - start:.0f} s")
    with duckdb.connect(str(path), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, duckdb {duckdb.__version__}; "
        f"{n:,} stored spans"
    )
    with Store(path) as store:
        m = AgentTelemetry(store=store, window="30 days")
        some_trace = m.traces(limit=1).trace_id.iloc[0]
        calls = {
            "trace list (newest 200)": lambda: m.traces(),
            "trace search: name/attribute text": lambda: (setattr(m, "text", "Edit"), m.traces())[
                1
            ],
            "trace search: errors only": lambda: (
                setattr(m, "text", ""),
                setattr(m, "errors_only", True),
                m.traces(),
            )[2],
            "trace search: one agent, >= 30 ms": lambda: (
                setattr(m, "errors_only", False),
                setattr(m, "agent", "agent-3"),
                setattr(m, "min_ms", 30),
                m.traces(),
            )[3],
            "waterfall of one trace": lambda: m.waterfall(some_trace),
            "timeline (30 days, 400 buckets)": lambda: (
                setattr(m, "agent", "(all)"),
                setattr(m, "min_ms", None),
                m.timeline(),
            )[2],
            "agent sessions": lambda: m.sessions(),
            "token usage / model mix": lambda: m.token_usage(),
        }
        for name, fn in calls.items():
            print(f"{name:<40} {timed(fn) * 1000:8.0f} ms")
    print(f"{'layout of one 50k-span trace':<40} {timed(_big_trace_layout()) * 1000:8.0f} ms")


def _big_trace_layout():
    """The waterfall's layout of one 50,000-span trace, ten children a span: what a person
    opening the largest trace waits for (the test checks its shape, this its time)."""
    import pandas as pd

    from workbench.analysis.waterfall import layout

    n = 50_000
    spans = pd.DataFrame({
        "span_id": [f"{i:016x}" for i in range(n)],
        "parent_span_id": [None] + [f"{(i - 1) // 10:016x}" for i in range(1, n)],
        "start_ns": range(0, n * 1000, 1000), "end_ns": range(500, n * 1000 + 500, 1000),
        "name": [f"span {i}" for i in range(n)], "service_name": "big",
        "duration_ms": 0.0005, "status_code": 0,
    })
    return lambda: layout(spans)


if __name__ == "__main__":
    main()
