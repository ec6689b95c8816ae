"""The workflows the workbench ships: starting points a person saves, then edits (the
agents' definitions — model, environment, permission policy — are theirs to set)."""

from __future__ import annotations

from typing import Any

#: Tools a fixing agent may use without asking (its Bash commands included; the built-in
#: deny rules still come first: no recursive forced delete, whatever this says).
_EDITS = {"rules": [{"tool": "Read|Grep|Glob|LS|Edit|MultiEdit|Write|Bash|TodoWrite",
                     "action": "allow"}]}


def _n(node_id: str, kind: str, x: float, y: float, label: str | None = None,
       **settings: Any) -> dict[str, Any]:
    return {"id": node_id, "kind": kind, "label": label or node_id,
            "settings": settings, "position": {"x": x, "y": y}}


def _e(source: str, target: str, when: str | None = None) -> dict[str, Any]:
    return {"source": source, "target": target, "when": when}


FIX_FAILING_TEST: dict[str, Any] = {
    "name": "fix the failing test",
    "description": "Run the tests the change touches; while they fail, an agent fixes the "
                   "code and they run again — until green or three tries.",
    "inputs": {"project": ""},
    "agents": {"fixer": {"backend": "claude-code", "policy": _EDITS}},
    "start": "run",
    "nodes": [
        _n("run", "tests", 0, 120, "run the tests", select=True),
        _n("green", "condition", 260, 120, "green?", step="run", check="tests_passed",
           max_iterations=3),
        _n("fix", "agent", 260, 300, "agent fixes", agent="fixer",
           prompt="The tests of {project} fail: {run.output}. Find the cause and fix the "
                  "code so that they pass. Do not weaken or delete the tests."),
        _n("fixed", "end", 540, 40, "fixed", message="the tests pass"),
        _n("gave-up", "end", 540, 220, "gave up", status="failed",
           message="still failing after three fixes"),
    ],
    "edges": [_e("run", "green", "always"), _e("green", "fixed", "yes"),
              _e("green", "fix", "no"), _e("green", "gave-up", "exhausted"),
              _e("fix", "run", "always")],
}

IMPLEMENT_REVIEW_APPROVE: dict[str, Any] = {
    "name": "implement, review, approve",
    "description": "Agent A implements, agent B reviews (up to two rounds), a person "
                   "approves, and the tests gate the end.",
    "inputs": {"project": "", "task": "describe the change"},
    "agents": {"writer": {"backend": "claude-code", "policy": _EDITS},
               "reviewer": {"backend": "claude-code", "policy": {"rules": [
                   {"tool": "Read|Grep|Glob|LS|Bash", "action": "allow"}]}}},
    "start": "implement",
    "nodes": [
        _n("implement", "agent", 0, 120, "A implements", agent="writer", prompt="{task}"),
        _n("review", "agent", 240, 120, "B reviews", agent="reviewer",
           prompt="Review the uncommitted change in this folder, made for: {task}. Answer "
                  "APPROVE if it is right, else list what must change."),
        _n("approved", "condition", 480, 120, "B approves?", step="review",
           check="output_matches", value="APPROVE", max_iterations=2),
        _n("person", "approval", 720, 40, "a person approves",
           message="Agent B approved the change for: {task}. Keep it?"),
        _n("tests", "tests", 960, 40, "tests gate"),
        _n("done", "end", 1200, 0, "done", message="approved and green"),
        _n("red", "end", 1200, 120, "tests fail", status="failed",
           message="approved, but the tests fail"),
        _n("rejected", "end", 960, 220, "rejected", status="failed"),
    ],
    "edges": [_e("implement", "review"), _e("review", "approved"),
              _e("approved", "person", "yes"), _e("approved", "implement", "no"),
              _e("approved", "rejected", "exhausted"), _e("person", "tests", "allowed"),
              _e("person", "rejected", "denied"), _e("tests", "done", "passed"),
              _e("tests", "red", "failed"), _e("tests", "red", "error")],
}

TRIAGE_FLAKY_TEST: dict[str, Any] = {
    "name": "triage a flaky test",
    "description": "Run one test three times at once; if it is not stable, an agent looks "
                   "for the cause and a person decides on its fix.",
    "inputs": {"project": "", "test": "tests/test_x.py::test_y"},
    "agents": {"detective": {"backend": "claude-code", "policy": {"rules": [
        {"tool": "Read|Grep|Glob|LS|Bash", "action": "allow"}]}}},
    "start": "repeat",
    "nodes": [
        _n("repeat", "parallel", 0, 160, "three runs at once"),
        _n("run-1", "tests", 220, 40, "run 1", tests=["{test}"]),
        _n("run-2", "tests", 220, 160, "run 2", tests=["{test}"]),
        _n("run-3", "tests", 220, 280, "run 3", tests=["{test}"]),
        _n("all", "join", 440, 160, "all three"),
        _n("stable", "condition", 640, 160, "all passed?", step="all", check="outcome",
           value="ok", max_iterations=1),
        _n("steady", "end", 860, 60, "stable here", message="passed 3 of 3"),
        _n("diagnose", "agent", 860, 260, "agent diagnoses", agent="detective",
           prompt="The test {test} of {project} failed in some of three runs: "
                  "{run-1.output} / {run-2.output} / {run-3.output}. Find why it is flaky "
                  "(order, time, shared state, network) and propose a fix."),
        _n("decide", "approval", 1080, 260, "a person decides",
           message="Flaky test {test}: the agent's diagnosis is in its session. Accept?"),
        _n("triaged", "end", 1300, 200, "triaged"),
        _n("open", "end", 1300, 320, "left open", status="failed"),
    ],
    "edges": [_e("repeat", "run-1"), _e("repeat", "run-2"), _e("repeat", "run-3"),
              _e("run-1", "all"), _e("run-2", "all"), _e("run-3", "all"),
              _e("all", "stable", "always"), _e("stable", "steady", "yes"),
              _e("stable", "diagnose", "no"),
              _e("diagnose", "decide", "always"), _e("decide", "triaged", "allowed"),
              _e("decide", "open", "denied")],
}

TEMPLATES: list[dict[str, Any]] = [FIX_FAILING_TEST, IMPLEMENT_REVIEW_APPROVE,
                                   TRIAGE_FLAKY_TEST]
