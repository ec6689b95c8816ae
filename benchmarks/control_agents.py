"""The supervisor under a fleet: N process agents (default 100) supervised by one real
server, each writing a line a second.

Prints: the server's CPU while idle and while supervising the fleet (its overhead);
start-to-running and state-change latency (POST pause/resume → the websocket's
``agent_update``, p50/p95); the latency from an agent killed from outside to its ``error``
update; and the approval round trip through the Claude Code hook route (a hook's request
filed → seen on the websocket → answered by a client → the hook's answer received).

    python benchmarks/control_agents.py [--agents 100] [--approvals 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from otlp_ingest import ROOT, free_port, wait_http  # noqa: E402

TICK = ["sh", "-c", "while :; do echo tick; sleep 1; done"]


class Updates:
    """The websocket's agent updates, each stamped on arrival."""

    def __init__(self, url: str) -> None:
        self.seen: list[tuple[float, dict]] = []
        self._ready, self._stop = threading.Event(), threading.Event()
        threading.Thread(target=self._run, args=(url,), daemon=True).start()
        self._ready.wait(10)

    def _run(self, url: str) -> None:
        with connect(url.replace("http", "ws", 1) + "/ws/agents") as ws:
            ws.recv()  # the snapshot
            self._ready.set()
            while not self._stop.is_set():
                try:
                    msg = json.loads(ws.recv(0.5))
                except TimeoutError:
                    continue
                if msg.get("type") == "agent_update":
                    self.seen.append((time.perf_counter(), msg["agent"]))

    def wait(self, since: float, test, timeout: float = 30) -> float:
        """Seconds from ``since`` to the first update after it that passes ``test``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for at, agent in list(self.seen):
                if at >= since and test(agent):
                    return at - since
            time.sleep(0.001)
        raise SystemExit("no such update arrived")

    def close(self) -> None:
        self._stop.set()


def cpu_percent(proc: psutil.Process, seconds: float) -> float:
    before = proc.cpu_times()
    time.sleep(seconds)
    after = proc.cpu_times()
    return 100 * ((after.user - before.user) + (after.system - before.system)) / seconds


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def ms(values: list[float]) -> str:
    return (f"p50 {pct(values, 50) * 1000:6.1f} ms   p95 {pct(values, 95) * 1000:6.1f} ms   "
            f"max {max(values) * 1000:6.1f} ms   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--approvals", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "--address", "127.0.0.1", "--port",
             str(port), "--db", str(Path(tmp) / "fleet.duckdb"), "--no-demo"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + "/api/health")
            run(url, psutil.Process(server.pid), args)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


def run(url: str, proc: psutil.Process, args: argparse.Namespace) -> None:
    c = httpx.Client(base_url=url, timeout=60)
    updates = Updates(url)
    print(f"server CPU, idle:                      {cpu_percent(proc, 5):5.1f} % of one core")

    ids = [c.post("/api/agents", json={"name": f"fleet-{i}", "backend": "process",
                                       "command": TICK}).json()["agent"]["id"]
           for i in range(args.agents)]
    starts = []
    for agent_id in ids:
        sent = time.perf_counter()
        c.post(f"/api/agents/{agent_id}/start")
        starts.append(updates.wait(sent, lambda a, i=agent_id: a["id"] == i
                                   and a["state"] == "running"))
    print(f"start → running ({args.agents} agents):     {ms(starts)}")
    time.sleep(3)
    busy = cpu_percent(proc, 10)
    print(f"server CPU, {args.agents} agents running:      {busy:5.1f} % of one core "
          f"({args.agents} log lines/s stored, psutil samples each second)")

    pauses, resumes = [], []
    for agent_id in ids:
        sent = time.perf_counter()
        c.post(f"/api/agents/{agent_id}/pause")
        pauses.append(updates.wait(sent, lambda a, i=agent_id: a["id"] == i
                                   and a["state"] == "paused"))
        sent = time.perf_counter()
        c.post(f"/api/agents/{agent_id}/resume")
        resumes.append(updates.wait(sent, lambda a, i=agent_id: a["id"] == i
                                    and a["state"] == "running"))
    print(f"pause  → update:                       {ms(pauses)}")
    print(f"resume → update:                       {ms(resumes)}")

    kills = []
    for agent_id in ids[: max(10, args.agents // 5)]:
        pid = c.get(f"/api/agents/{agent_id}").json()["agent"]["pid"]
        sent = time.perf_counter()
        os.killpg(pid, signal.SIGKILL)
        kills.append(updates.wait(sent, lambda a, i=agent_id: a["id"] == i
                                  and a["state"] == "error"))
    print(f"killed outside → error update:         {ms(kills)}")

    trips = []
    hook = {"hook_event_name": "PreToolUse", "session_id": "bench-session", "cwd": "/tmp/b",
            "tool_name": "Bash"}
    for n in range(args.approvals):
        answer: dict = {}
        body = {**hook, "tool_input": {"command": f"echo {n} > out.txt"}}
        sent = time.perf_counter()
        t = threading.Thread(target=lambda b=body, out=answer: out.update(
            c.post("/api/hooks/claude-code", json=b).json()))
        t.start()
        updates.wait(sent, lambda a: a["id"] == "ext-bench-session"
                     and a["pending_approvals"] > 0)
        pending = c.get("/api/approvals").json()["approvals"]
        c.post(f"/api/approvals/{pending[0]['id']}", json={"decision": "allow"})
        t.join()
        trips.append(time.perf_counter() - sent)
        assert answer["hookSpecificOutput"]["permissionDecision"] == "allow", answer
    print(f"approval round trip (hook → inbox → answer → hook): {ms(trips)}")

    for agent_id in ids:
        c.post(f"/api/agents/{agent_id}/stop")
    updates.close()


if __name__ == "__main__":
    main()
