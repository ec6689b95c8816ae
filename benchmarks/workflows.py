"""A workflow's own cost per step: N command steps in a chain (default 50), run by the
engine (LangGraph + its SQLite checkpoints + the work queue + a process agent + the
stored step records and spans), against the same N commands run one after another by a
shell loop. The difference divided by N is the engine's overhead per step.

Runs in-process on a fresh file (the serve process's own objects, no HTTP).

    python benchmarks/workflows.py [--steps 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

COMMAND = "true"


def chain(n: int, folder: str) -> dict:
    return {"name": f"chain of {n}", "agents": {"sh": {"backend": "process", "cwd": folder}},
            "nodes": [{"id": f"s{i}", "kind": "agent",
                       "settings": {"agent": "sh", "command": COMMAND}} for i in range(n)],
            "edges": [{"source": f"s{i}", "target": f"s{i + 1}"} for i in range(n - 1)]}


def shell_loop(n: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", f"for i in $(seq {n}); do {COMMAND}; done"], check=True)
    return time.perf_counter() - t0


def spawn_loop(n: int) -> float:
    """The same commands, each a process of its own as the agent runs it (sh -c)."""
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run([COMMAND], check=True)
    return time.perf_counter() - t0


def engine_run(engine, workflow_id: str) -> tuple[float, dict]:
    from workbench.control.access import SYSTEM

    t0 = time.perf_counter()
    run = engine.start(SYSTEM, workflow_id)
    while engine.run(run["id"])["state"] in ("running", "waiting"):
        time.sleep(0.005)
    return time.perf_counter() - t0, engine.run(run["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from workbench.control.access import SYSTEM
    from workbench.control.supervisor import Supervisor
    from workbench.control.testruns import TestRuns
    from workbench.intake import LocalIntake
    from workbench.store import Store
    from workbench.workflows.runs import Workflows

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        supervisor = Supervisor(store)
        engine = Workflows(supervisor, TestRuns(store), LocalIntake(store, ci_env={},
                                                                     block=False))
        workflow = engine.save(SYSTEM, chain(args.steps, tmp))
        engine_run(engine, workflow["id"])  # warm-up: imports, the agent's first start
        runs, shells, spawns = [], [], []
        for _ in range(args.repeat):
            seconds, detail = engine_run(engine, workflow["id"])
            assert detail["state"] == "succeeded", detail["message"]
            runs.append(seconds)
            shells.append(shell_loop(args.steps))
            spawns.append(spawn_loop(args.steps))
        engine.close()
        supervisor.close()
        store.close()
    n = args.steps
    wf, sh, sp = (statistics.median(x) for x in (runs, shells, spawns))
    print(f"{n} command steps, median of {args.repeat} runs")
    print(f"  workflow (LangGraph + queue + agent + records): {wf:7.3f} s  "
          f"{1000 * wf / n:6.1f} ms/step")
    print(f"  shell loop (sh: {n} × {COMMAND}):                {sh:7.3f} s  "
          f"{1000 * sh / n:6.1f} ms/step")
    print(f"  a process per command (subprocess.run):        {sp:7.3f} s  "
          f"{1000 * sp / n:6.1f} ms/step")
    print(f"  overhead per step vs the shell loop:           {1000 * (wf - sh) / n:6.1f} ms"
          f"  (target < 100 ms)")
    print(f"  overhead per step vs a process per command:    {1000 * (wf - sp) / n:6.1f} ms")


if __name__ == "__main__":
    main()
