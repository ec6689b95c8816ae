"""OTLP ingest beside chatty agents: spans stored per second with no agents, with 20 process
agents each printing 100 lines a second, and with none again.

One real ``observatory serve`` (an empty file, loopback, no tokens) is driven with the
shared load generator (../shared/tools/otlp_load.py, 8 connections, batches of 512) in
``--rounds`` loaded phases, each between two idle ones (idle, agents, idle, agents, ...):
before a loaded phase, ``--agents`` process agents are defined and started through the API
(each a small Python loop printing ``--lines`` numbered lines a second, 10 at a time), and
they are stopped after it. A round's cost is its loaded rate against the mean of the idle
phases either side; the median over the rounds is printed. Each phase starts once the
server is quiet again (under 10 % of a core for two seconds), so none pays for the rows or
housekeeping of the one before. Before each loaded phase, the server's own CPU with the
agents and no load is measured for 10 s (psutil): the cost in a figure that the machine's
other work moves less. The agents' lines are counted back from the store (every line of
each loaded phase, in order per agent, none missing)::

    flock /tmp/bench.lock python3 benchmarks/agent_output.py [--agents 20] [--lines 100] \
        [--rounds 3]
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
from otlp_ingest import ROOT, TOOL, free_port, wait_http  # noqa: E402

sys.path.insert(0, str(ROOT))

#: An agent that prints ``rate`` numbered lines a second, ten at a time, until stopped.
PRINTER = """
import sys, time
rate, n, t = {rate}, 0, time.monotonic()
while True:
    for _ in range(max(1, rate // 10)):
        n += 1
        print(f"line {{n}}: reading src/module_{{n % 50}}.py (120 lines), nothing to change")
    sys.stdout.flush()
    t += 0.1
    time.sleep(max(0.0, t - time.monotonic()))
"""


def utcnow():
    from workbench.config import utcnow as now

    return now()


def count_spans(url: str, marker: str) -> int:
    from workbench.client import RemoteStore

    with RemoteStore(url) as remote:
        return int(remote.query("span_count_like", text=marker)["n"].iloc[0])


def load(url: str, marker: str, args: argparse.Namespace, build_s: float = 0.0) -> dict:
    """Send ``args.spans`` spans (the shared load tool), then poll the store until every
    one is there; the rate is from the first request. A load still sending after
    ``args.cap`` seconds is cut off, and its rate is what was stored by then (the time
    the tool took to build its bodies taken as ``build_s``, an earlier phase's)."""
    cmd = [sys.executable, str(args.tool), "--url", url + "/v1/traces", "--spans",
           str(args.spans), "--batch", "512", "--concurrency", str(args.concurrency),
           "--marker", marker]
    start = time.monotonic()
    tool = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        out = json.loads(tool.communicate(timeout=args.cap)[0])
    except subprocess.TimeoutExpired:
        stored, elapsed = count_spans(url, marker), time.monotonic() - start - build_s
        tool.kill()
        tool.communicate()
        r = {"stored": stored, "seconds": elapsed, "rate": stored / elapsed, "build_s": build_s,
             "statuses": f"cut off after {args.cap:.0f} s"}
    else:
        while (stored := count_spans(url, marker)) < args.spans:
            time.sleep(0.5)
        elapsed = time.monotonic() - start - out["build_seconds"]
        r = {"stored": stored, "seconds": elapsed, "rate": stored / elapsed,
             "build_s": out["build_seconds"], "statuses": out["status_codes"]}
    print(f"  {marker:<10} {r['stored']:>8,} spans stored in {r['seconds']:6.2f} s"
          f" = {r['rate']:>8,.0f} spans/s {r['statuses']}", flush=True)
    return r


def settled(c: httpx.Client, seconds: float = 600) -> float:
    """Wait until the store's write queue is empty (what the agents printed is stored);
    return how long that took."""
    start = time.monotonic()
    while c.get("/api/health").json().get("pending") and time.monotonic() - start < seconds:
        time.sleep(0.5)
    return time.monotonic() - start


def server_cpu(pid: int, seconds: float) -> float:
    """The percent of one core process ``pid`` used over the next ``seconds``: what the
    agents cost the server by themselves, steadier than a rate under load on a shared
    machine."""
    import psutil

    proc = psutil.Process(pid)
    proc.cpu_percent(None)
    time.sleep(seconds)
    return proc.cpu_percent(None)


def quiet(pid: int, below: float = 10.0, seconds: float = 60) -> float:
    """Wait until the server's CPU stays under ``below`` % of a core for two seconds (the
    rows of the load before written, its housekeeping done), so that no phase pays for the
    one before it; return how long that took."""
    start = time.monotonic()
    calm = 0
    while calm < 2 and time.monotonic() - start < seconds:
        calm = calm + 1 if server_cpu(pid, 1.0) < below else 0
    return time.monotonic() - start


def start_agents(c: httpx.Client, n: int, rate: int) -> list[str]:
    """Define and start ``n`` printing agents; return their ids once all run."""
    ids = [c.post("/api/agents", json={
        "name": f"printer-{i}", "backend": "process",
        "command": [sys.executable, "-c", PRINTER.format(rate=rate)]}).json()["agent"]["id"]
        for i in range(n)]
    for agent_id in ids:
        c.post(f"/api/agents/{agent_id}/start").raise_for_status()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = {a["id"]: a["state"] for a in c.get("/api/agents").json()["agents"]}
        if all(states.get(i) == "running" for i in ids):
            return ids
        time.sleep(0.2)
    raise SystemExit("the agents did not all start")


def stop_agents(c: httpx.Client, ids: list[str]) -> None:
    for agent_id in ids:
        c.post(f"/api/agents/{agent_id}/stop")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = {a["id"]: a["state"] for a in c.get("/api/agents").json()["agents"]}
        if all(states.get(i) not in ("running", "starting", "stopping") for i in ids):
            return
        time.sleep(0.2)
    raise SystemExit("the agents did not all stop")


def lines_stored(url: str, ids: list[str], since, until) -> tuple[int, int]:
    """The agents' output lines stored with a time in [since, until], and how many of
    the agents' runs of numbers there have a gap or go backwards (0 expected)."""
    from workbench.client import RemoteStore

    with RemoteStore(url) as remote:
        df = remote.query("agent_events_between", agent_ids=ids, kinds=["log"],
                          since=since, until=until)
    df = df[df["text"].str.startswith("line ")]
    broken = 0
    for _, rows in df.groupby("agent_id", sort=False):
        numbers = rows["text"].str.extract(r"^line (\d+):")[0].astype(int).tolist()
        broken += numbers != list(range(numbers[0], numbers[0] + len(numbers)))
    return len(df), broken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20, help="printing agents (20)")
    parser.add_argument("--lines", type=int, default=100, help="lines a second each (100)")
    parser.add_argument("--spans", type=int, default=100_000, help="spans a phase (100,000)")
    parser.add_argument("--concurrency", type=int, default=8, help="load connections (8)")
    parser.add_argument("--cap", type=float, default=120,
                        help="cut a load off after so many seconds (120)")
    parser.add_argument("--tool", type=Path, default=TOOL, help="path to otlp_load.py")
    parser.add_argument("--rounds", type=int, default=3,
                        help="loaded phases, each between two idle ones (3)")
    args = parser.parse_args()
    print(machine())
    print(f"{args.spans:,} spans a phase, {args.concurrency} connections, batches of 512; "
          f"{args.agents} agents × {args.lines} lines/s in each loaded phase, "
          f"{args.rounds} round(s)")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "--address", "127.0.0.1", "--port",
             str(port), "--db", str(Path(tmp) / "agents.duckdb"), "--no-demo"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        c, ids = httpx.Client(base_url=url, timeout=60), []
        idle, costs, checks = [], [], []
        try:
            wait_http(url + "/api/health")
            idle.append(load(url, "idle-1", args))
            for n in range(1, args.rounds + 1):
                quiet(server.pid)
                ids = agents = start_agents(c, args.agents, args.lines)
                time.sleep(2)  # their output flowing
                busy = server_cpu(server.pid, 10)
                print(f"  the server's CPU with the agents and no load: {busy:.1f} % of a "
                      "core (10 s)", flush=True)
                since = utcnow()
                loaded = load(url, f"agents-{n}", args, idle[0]["build_s"])
                until = utcnow()
                stop_agents(c, ids)
                ids = []
                drained = settled(c)
                print(f"  (the store's queue emptied {drained:.1f} s after the agents "
                      "stopped)")
                quiet(server.pid)
                idle.append(load(url, f"idle-{n + 1}", args))
                # Each loaded phase against the mean of the idle phases either side of it:
                # the machine's own drift over minutes moves both alike.
                mean = (idle[-2]["rate"] + idle[-1]["rate"]) / 2
                costs.append(100 * (1 - loaded["rate"] / mean))
                print(f"  round {n}: cost {costs[-1]:.1f} % ({loaded['rate']:,.0f} against "
                      f"{mean:,.0f} spans/s)", flush=True)
                checks.append((*lines_stored(url, agents, since, until),
                               (until - since).total_seconds()))
        finally:
            if ids:  # (an agent runs in its own process group: it would outlive the server)
                stop_agents(c, ids)
            server.terminate()
            server.wait(30)
    print(f"cost of {args.agents} agents × {args.lines} lines/s: median "
          f"{statistics.median(costs):.1f} % over {len(costs)} round(s) "
          f"({', '.join(f'{x:.1f}' for x in costs)}; target < 10 %)")
    for lines, broken, seconds in checks:
        print(f"agents' lines stored while loaded: {lines:,} in {seconds:.1f} s = "
              f"{lines / seconds:,.0f}/s (printed: {args.agents * args.lines:,}/s); "
              f"agents whose lines have a gap or are out of order: {broken}")


if __name__ == "__main__":
    main()
