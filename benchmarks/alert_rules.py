"""What do alert rules cost? 100 rules over a store of 10M agent events: the start (rules,
open alerts), the evaluation of each new event, the once-a-second round (staleness,
thresholds, stalls, and the rules over test results, which query the store) — and their
effect on OTLP ingest in a real server, in one run.

In process: a DuckDB file with 10M agent events (100 agents; a quarter of them tool calls,
every one different, so that no loop rule fires and each agent's record of calls is full)
and the demo's test runs; a supervisor with 100 rules of every kind; 1M stored events
replayed through the rules (decoded beforehand: the figure is the rules' own cost); the
round timed with all 100 agents live and the test rules querying each time.

In a server (``observatory serve`` on 127.0.0.1): OTLP spans stored per second by the shared
generator (../shared/tools/otlp_load.py), with 20 chatty process agents supervised, first
under the 3 shipped rules, then under 100 rules, then the 3 again.

    python benchmarks/alert_rules.py [--events 10000000] [--spans 60000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402
from otlp_ingest import ROOT, TOOL, free_port, run_load, wait_http  # noqa: E402

sys.path.insert(0, str(ROOT))

KINDS = (["state"] * 25 + ["loop"] * 25 + ["threshold"] * 25 + ["stale"] * 10 +
         ["test_health"] * 5 + ["test_loop"] * 5 + ["stall"] * 5)
METRICS = ("cost_per_hour", "tokens_per_minute", "cpu_percent", "rss_mb", "tool_failure_rate")


def rules() -> list[dict]:
    """100 rules of every kind, none of which fires on this data (only ``notify``)."""
    out = []
    for i, kind in enumerate(KINDS):
        rule = {"rule_id": f"bench-{i}", "name": f"bench {kind} {i}", "kind": kind,
                "actions": ["notify"], "window_s": 600, "minutes": 600}
        if kind == "state":
            rule["states"] = ["lost"]
        elif kind == "loop":
            rule["count"] = 1000
        elif kind == "threshold":
            rule.update(metric=METRICS[i % len(METRICS)], threshold=1e12, count=1)
        elif kind == "test_loop":
            rule["count"] = 1000
        out.append(rule)
    return out


def in_process(events: int) -> dict:
    from workbench.control.supervisor import Supervisor
    from workbench.demo import load_demo
    from workbench.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "rules.duckdb")
        load_demo(store)
        start = time.perf_counter()
        store.write(lambda cur: cur.execute(f"""
            INSERT INTO agent_events SELECT 'ag-' || (i % 100),
              TIMESTAMP '2026-01-01' + to_milliseconds(i),
              CASE WHEN i % 4 = 0 THEN 'tool_use' WHEN i % 4 = 1 THEN 'tool_result'
                   WHEN i % 4 = 2 THEN 'assistant' ELSE 'log' END,
              'running', 'Bash: echo ' || i,
              CASE WHEN i % 4 = 0 THEN '{{"tool": "Bash", "id": "t' || i ||
                   '", "input": {{"command": "echo ' || i || '"}}}}'
                   WHEN i % 4 = 1 THEN '{{"id": "t' || i || '", "is_error": false}}'
                   ELSE NULL END
            FROM range({events}) t(i)"""))
        store.write(lambda cur: cur.execute("""
            INSERT INTO agents SELECT 'ag-' || i, 'agent-' || i, 'process', 'checkout',
              '{"name": "agent-' || i || '", "backend": "process", "command": "true",
                "labels": [], "limits": {}, "restart": {"policy": "never"},
                "policy": {"rules": []}, "config": {}, "env": {}, "project": "checkout"}',
              'idle', NULL, NULL, NULL, NULL, NULL, 0, 0, now(), now() FROM range(100) t(i)"""))
        filled = time.perf_counter() - start
        start = time.perf_counter()
        sup = Supervisor(store, sample_s=3600)
        startup = time.perf_counter() - start
        for rule in rules():
            sup.alerts.put_rule(rule)
        engine = sup.alerts
        engine.close()  # the round is timed by hand below
        agents = list(sup.agents.values())
        by_id = {a.id: a for a in agents}
        rows = store.sql("SELECT agent_id, kind, text, data FROM agent_events LIMIT 1000000")
        replay = [(by_id[r.agent_id], r.kind, r.text,
                   json.loads(r.data) if isinstance(r.data, str) else None)
                  for r in rows.itertuples(index=False)]
        start = time.perf_counter()
        for agent, kind, text, data in replay:
            engine.on_event(agent, kind, text, data)
        per_event = (time.perf_counter() - start) / len(replay)

        class Live:  # a backend stand-in: the round only asks whether there is one
            protocol = False

        for agent in agents:
            agent.backend, agent.state = Live(), "running"
            agent.sample = {"cpu_percent": 3.0, "rss_bytes": 50 * 2**20, "threads": 4}
        rounds, with_queries = [], []
        for i in range(12):
            if i % 2:
                engine._tests_version, engine._tests_checked = -1, 0.0
            start = time.perf_counter()
            engine.tick()
            (with_queries if i % 2 else rounds).append(time.perf_counter() - start)
        fired = sorted({engine.rules[rule_id]["kind"] for rule_id, _ in engine.open})
        for agent in agents:
            agent.backend = None
        sup.close()
        store.close()
    return {"events_stored": events, "fill_s": filled, "startup_s": startup,
            "per_event_us": per_event * 1e6, "round_ms": statistics.median(rounds) * 1e3,
            "round_with_test_queries_ms": statistics.median(with_queries) * 1e3,
            "fired": fired}


CHATTY = [sys.executable, "-u", "-c",
          "import time\nwhile True:\n    print('step', time.time()); time.sleep(0.1)"]


def in_server(spans: int) -> list[tuple[str, dict]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "--address", "127.0.0.1", "--port",
             str(port), "--db", str(Path(tmp) / "rules.duckdb"), "--no-demo"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/api/health")
        api = httpx.Client(base_url=url, timeout=30)

        def count(marker: str) -> int:
            from workbench.client import RemoteStore

            with RemoteStore(url) as remote:
                return int(remote.query("span_count_like", text=marker)["n"].iloc[0])

        results = []
        try:
            for i in range(20):
                agent = api.post("/api/agents", json={
                    "name": f"chatty-{i}", "backend": "process", "command": CHATTY,
                    "project": "checkout"}).json()["agent"]
                api.post(f"/api/agents/{agent['id']}/start")
            run_load(TOOL, url + "/v1/traces", spans // 4, 4, False, "warm", count)
            for phase in ("3 rules", "100 rules", "3 rules again"):
                if phase == "100 rules":
                    for rule in rules():
                        api.post("/api/alert-rules", json=rule).raise_for_status()
                elif phase == "3 rules again":
                    for rule in rules():
                        api.delete(f"/api/alert-rules/{rule['rule_id']}").raise_for_status()
                marker = "ph" + phase.replace(" ", "")
                results.append((phase, run_load(TOOL, url + "/v1/traces", spans, 4, False,
                                                marker, count)))
        finally:
            for agent in api.get("/api/agents").json()["agents"]:
                api.post(f"/api/agents/{agent['id']}/stop")
            api.close()
            server.terminate()
            server.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--spans", type=int, default=60_000)
    args = parser.parse_args()
    print(machine())
    r = in_process(args.events)
    print(f"store of {r['events_stored']:,} agent events filled in {r['fill_s']:.1f} s; "
          f"supervisor with its rules started in {r['startup_s'] * 1e3:.0f} ms")
    print(f"100 rules: {r['per_event_us']:.1f} µs per agent event "
          f"({1e6 / r['per_event_us']:,.0f} events/s on one core); round over 100 live "
          f"agents {r['round_ms']:.1f} ms, {r['round_with_test_queries_ms']:.1f} ms when "
          f"the test rules query the store; rules that fired: {r['fired'] or 'none'}")
    results = in_server(args.spans)
    base = statistics.mean(x["rate"] for name, x in results if name.startswith("3 rules"))
    for name, x in results:
        print(f"OTLP with 20 agents, {name:<14} {x['rate']:8,.0f} spans/s stored "
              f"({x['rate'] / base:.0%} of the 3-rule mean)")


if __name__ == "__main__":
    main()
