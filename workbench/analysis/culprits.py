"""From a failing test to the agent session that most likely broke it — and back.

For each new failure of a run (against its base run), the candidates are the agent
sessions on the run's project that changed files between the base run and this one, read
from their tool calls (see :mod:`.edits`; a call that was denied or failed changed
nothing). A candidate's evidence, strongest first: it edited a file in the failure's stack
frames (3), it edited the failing test's own file (2), it edited something in the project
in that window (0.1); then the later edit first. Coverage of the failing test — which
lines it ran — will add a fourth kind of evidence once per-test coverage is stored.
"""

from __future__ import annotations

import ast
import json
import os
import re
from datetime import timedelta
from functools import lru_cache
from typing import Any

import pandas as pd

from .compare import compare_runs
from .edits import diff_of, edited_paths, same_file

_EXT = ("py|pyx|js|mjs|cjs|ts|tsx|jsx|go|rs|java|kt|kts|rb|cs|cpp|cc|c|h|hpp|php|swift|"
        "scala|ex|exs|erl|clj|dart|lua|sh")
_FRAME = re.compile(rf"([\w.@/\\-]*[\w-]\.(?:{_EXT}))\b")
#: How far back edits are looked for when a run has no base run.
NO_BASE_WINDOW = timedelta(days=1)


def frame_paths(*texts: Any) -> list[str]:
    """The source files a failure's message and stack trace name, in order."""
    out: list[str] = []
    for text in texts:
        if isinstance(text, str):
            for path in _FRAME.findall(text):
                if path not in out:
                    out.append(path)
    return out


def project_edits(store, project: str, since, until) -> list[dict[str, Any]]:
    """Every file-changing tool call of an agent on ``project`` in ``(since, until]``, with
    the session it was made in, oldest first."""
    # (the agents are this node's; their events may be in a shared store)
    agents = store.sql("SELECT agent_id, name, spec FROM agents WHERE project = ?", [project])
    if agents.empty:
        return []
    events = store.query("agent_events_between", agent_ids=agents["agent_id"].tolist(),
                         after=since, until=until, kinds=["tool_use", "tool_result", "init"])
    df = events.merge(agents, on="agent_id")[["agent_id", "name", "spec", "ts", "kind",
                                              "text", "data"]].sort_values("ts", kind="stable")
    sessions: dict[str, str | None] = {}
    failed: set[str] = set()
    calls: list[dict[str, Any]] = []
    for row in df.itertuples(index=False):
        data = json.loads(row.data) if isinstance(row.data, str) else {}
        data = data or {}
        if row.kind == "init":
            sessions[row.agent_id] = data.get("session_id")
        elif row.kind == "tool_result":
            if data.get("is_error") or data.get("exit_code") not in (None, 0):
                failed.add(str(data.get("id")))
        else:
            cwd = (json.loads(row.spec) or {}).get("cwd") if isinstance(row.spec, str) else None
            paths = edited_paths(data.get("tool"), data.get("input"), cwd)
            if paths:
                calls.append({"agent_id": row.agent_id, "agent_name": row.name, "cwd": cwd,
                              "session_id": sessions.get(row.agent_id), "ts": row.ts,
                              "tool": data.get("tool"), "tool_use_id": data.get("id"),
                              "paths": paths, "input_text": row.text,
                              "diff": diff_of(data.get("tool"), data.get("input"))})
    return [c for c in calls if str(c["tool_use_id"]) not in failed]


@lru_cache(maxsize=512)
def imported_files(cwd: str, test_file: str, mtime: float) -> tuple[str, ...]:
    """The project files a Python test file imports (``mtime`` keys the cache)."""
    try:
        tree = ast.parse(open(os.path.join(cwd, test_file), "rb").read(2_000_000))
    except (OSError, SyntaxError, ValueError):
        return ()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
            modules.update(f"{node.module}.{a.name}" for a in node.names)
    out = []
    for module in modules:
        base = module.replace(".", "/")
        out += [f"{base}.py", f"{base}/__init__.py", f"src/{base}.py",
                f"src/{base}/__init__.py"]
    return tuple(sorted(out))


def _imports(call: dict[str, Any], test_file: str | None) -> tuple[str, ...]:
    cwd = call.get("cwd")
    if not (cwd and test_file and test_file.endswith(".py")):
        return ()
    try:
        mtime = os.stat(os.path.join(cwd, test_file)).st_mtime
    except OSError:
        return ()
    return imported_files(cwd, test_file, mtime)


def test_key(test_id: str) -> str:
    """A test id as runners and coverage contexts both spell it: ``tests/test_x.py::t``,
    ``tests.test_x::t`` and ``tests/test_x::t`` are one test, and so are
    ``tests/test_x.py::Class::t`` (a pytest node id) and ``tests.test_x.Class::t`` (the
    JUnit class name and test name)."""
    name, bracket, params = test_id.partition("[")  # parameters may hold anything
    name = re.sub(r"\.py(?=::|$)", "", name).replace("/", ".")
    head, sep, last = name.rpartition("::")
    return (head.replace("::", ".") + sep + last if sep else name) + bracket + params


def tests_files(store, project: str, test_ids: list[str]) -> dict[str, set[str]]:
    """The files each of ``test_ids`` ran lines of, in the project's latest coverage report
    with per-test contexts (empty when there is none)."""
    known = store.sql(
        """SELECT DISTINCT test_id FROM coverage_tests WHERE report_id = (
             SELECT report_id FROM coverage_reports WHERE project = ? AND contexts > 0
             ORDER BY created_at DESC LIMIT 1)""", [project])
    if known.empty:
        return {}
    by_key = {test_key(t): t for t in known["test_id"]}
    wanted = {t: by_key[test_key(t)] for t in test_ids if test_key(t) in by_key}
    if not wanted:
        return {}
    rows = store.sql(
        """SELECT test_id, path FROM coverage_tests WHERE report_id = (
             SELECT report_id FROM coverage_reports WHERE project = ? AND contexts > 0
             ORDER BY created_at DESC LIMIT 1) AND test_id IN (SELECT unnest(?::VARCHAR[]))""",
        [project, sorted(set(wanted.values()))])
    files: dict[str, set[str]] = {}
    for test_id, path in zip(rows["test_id"], rows["path"], strict=True):
        files.setdefault(test_id, set()).add(path)
    return {t: files.get(c, set()) for t, c in wanted.items()}


def score(call: dict[str, Any], frames: list[str], test_file: str | None,
          ran: set[str] | None = None):
    """``(score, reasons)`` of one tool call as the cause of one failure; ``ran``: the
    files the failing test ran lines of (from per-test coverage)."""
    best, reasons = 0.1, []
    imports = _imports(call, test_file)
    # (the test's own file is in every one of its stacks: it is evidence of its own kind)
    frames = [f for f in frames if not (test_file and same_file(f, test_file))]
    for path in call["paths"]:
        if any(same_file(path, f) for f in frames):
            best = max(best, 3.0)
            reasons.append(f"edited {path}, which is in the failure's stack trace")
        elif test_file and same_file(path, test_file):
            best = max(best, 2.5)
            reasons.append(f"edited {path}, the failing test's own file")
        elif any(same_file(path, f) for f in ran or ()):
            best = max(best, 2.2)
            reasons.append(f"edited {path}, whose lines the failing test ran (coverage)")
        elif path in imports:
            best = max(best, 2.0)
            reasons.append(f"edited {path}, which the failing test imports")
    if not reasons:
        reasons.append(f"edited {', '.join(call['paths'][:3])} in the project before the run")
    return best, reasons


def rank(calls: list[dict[str, Any]], failure: dict[str, Any], limit: int = 3) -> list[dict]:
    """The sessions most likely to have caused ``failure``, best first, each with the
    tool call that is its strongest evidence."""
    frames = frame_paths(failure.get("details"), failure.get("message"))
    test_file = failure.get("file") or str(failure["test_id"]).split("::")[0]
    best: dict[tuple[str, str | None], dict[str, Any]] = {}
    for call in calls:
        value, reasons = score(call, frames, test_file, failure.get("ran"))
        key = (call["agent_id"], call["session_id"])
        held = best.get(key)
        if held is None or (value, call["ts"]) >= (held["score"], held["tool_call"]["ts"]):
            best[key] = {"agent_id": call["agent_id"], "agent_name": call["agent_name"],
                         "session_id": call["session_id"], "score": value,
                         "reasons": reasons, "tool_call": {**call, "ts": str(call["ts"])}}
    ranked = sorted(best.values(), key=lambda c: (c["score"], c["tool_call"]["ts"]),
                    reverse=True)
    return ranked[:limit]


def _failures(store, run_id: str, base_id: str | None) -> pd.DataFrame:
    current = store.query("final_outcomes", run_id=run_id)
    base = store.query("final_outcomes", run_id=base_id) if base_id else None
    changes = compare_runs(current, base)
    return changes


def culprits(store, run_id: str, limit: int = 3, base_id: str | None = None) -> dict[str, Any]:
    """Each new failure of ``run_id`` (against ``base_id``, by default the previous run of
    its project and branch) with its ranked candidate sessions."""
    run = store.query("run", run_id=run_id)
    if run.empty:
        raise KeyError(f"no run {run_id!r}")
    run = run.iloc[0]
    if base_id is None:
        base = store.query("base_run", run_id=run_id)
        base_id = base["run_id"].iloc[0] if not base.empty else None
    until = run["started_at"] if pd.notna(run["started_at"]) else run["ingested_at"]
    since = (store.query("run", run_id=base_id)["started_at"].iloc[0] if base_id
             else until - NO_BASE_WINDOW)
    changes = _failures(store, run_id, base_id)
    new = changes[changes["status"] == "new failure"]
    details = store.query("run_results", run_id=run_id, final_only=True).set_index("test_id")
    calls = project_edits(store, run["project"], since, until)
    ran = tests_files(store, run["project"], list(new["test_id"])) if calls else {}
    failures = []
    for test_id in new["test_id"]:
        row = details.loc[test_id] if test_id in details.index else None
        failure = {"test_id": test_id,
                   "file": row["file"] if row is not None and isinstance(row["file"], str)
                   else None,
                   "message": row["message"] if row is not None else None,
                   "details": row["details"] if row is not None else None,
                   "ran": ran.get(test_id)}
        failures.append({"test_id": test_id, "message": failure["message"],
                         "candidates": rank(calls, failure, limit)})
    return {"run_id": run_id, "base_run_id": base_id, "project": run["project"],
            "since": str(since), "until": str(until), "edits": len(calls),
            "failures": failures}


def agent_impact(store, agent_id: str, runs: int = 50) -> dict[str, list[dict[str, Any]]]:
    """The tests an agent's sessions broke (it is the first candidate of a new failure)
    and fixed (a failing test passed after it edited a file in that failure's stack or the
    test's own file), over the project's last ``runs`` runs."""
    agent = store.sql("SELECT project, created_at FROM agents WHERE agent_id = ?", [agent_id])
    if agent.empty or not isinstance(agent["project"].iloc[0], str):
        return {"broke": [], "fixed": []}
    project, created = agent["project"].iloc[0], agent["created_at"].iloc[0]
    history = store.query("runs", project=project, since=created - NO_BASE_WINDOW,
                          limit=runs)[["run_id", "started_at"]].iloc[::-1]
    broke, fixed = [], []
    rows = list(history.itertuples(index=False))
    for base, run in zip(rows, rows[1:], strict=False):
        calls = project_edits(store, project, base.started_at, run.started_at)
        mine = [c for c in calls if c["agent_id"] == agent_id]
        if not mine:
            continue
        changes = _failures(store, run.run_id, base.run_id)
        now = store.query("run_results", run_id=run.run_id, final_only=True).set_index(
            "test_id")
        before = store.query("run_results", run_id=base.run_id, final_only=True).set_index(
            "test_id")
        for change in changes.itertuples(index=False):
            if change.status == "new failure" and change.test_id in now.index:
                r = now.loc[change.test_id]
                top = rank(calls, {"test_id": change.test_id, "file": r["file"],
                                   "message": r["message"], "details": r["details"]}, 1)
                if top and top[0]["agent_id"] == agent_id:
                    broke.append({"test_id": change.test_id, "run_id": run.run_id,
                                  "tool_call": top[0]["tool_call"],
                                  "reasons": top[0]["reasons"]})
            elif change.status == "fixed" and change.test_id in before.index:
                r = before.loc[change.test_id]
                top = rank(mine, {"test_id": change.test_id, "file": r["file"],
                                  "message": r["message"], "details": r["details"]}, 1)
                if top and top[0]["score"] >= 2:  # (an edit the failure points at)
                    fixed.append({"test_id": change.test_id, "run_id": run.run_id,
                                  "tool_call": top[0]["tool_call"],
                                  "reasons": top[0]["reasons"]})
    return {"broke": broke, "fixed": fixed}
