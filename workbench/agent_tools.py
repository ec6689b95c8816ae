"""What a coding agent may ask the workbench (the MCP server's tools, see
:mod:`workbench.mcp_server`): is this test flaky, what failed, which tests run this line,
how healthy is the project, who else works on it. Each is a plain function over a store
(the file, or a running workbench through :func:`workbench.connect`) returning JSON-ready
data, so that the answers are the same through MCP, the API and a notebook."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from .analysis.compare import compare_runs
from .analysis.culprits import test_key
from .analysis.flaky import label_tests
from .coverage.lookup import covering_tests as _covering


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records", date_format="iso"))


def flaky_status(store, test: str, project: str | None = None) -> dict[str, Any]:
    """Whether ``test`` is flaky (proof: it passed and failed on one commit or in one run),
    statistically flaky, broken (its last runs all failed), failing, or stable; with the
    evidence. Before "fixing" a failure, an agent asks this."""
    stats = label_tests(store.query("test_run_stats", project=project))
    match = stats[stats["test_id"].map(test_key) == test_key(test)] if not stats.empty else stats
    if match.empty:
        history = store.query("test_history", test_id=test, project=project, limit=20)
        if history.empty:
            return {"test": test, "label": "unknown",
                    "why": "no stored run has this test (check the id: runner::name)"}
        return {"test": test, "label": "stable", "runs": int(history["run_id"].nunique()),
                "why": "it passed in every stored run"}
    row = match.iloc[0]
    return {"test": row["test_id"], "label": row["label"], "runs": int(row["runs"]),
            "fails": int(row["fails"]), "flip_rate": round(float(row["flip_rate"]), 3),
            "evidence": str(row["evidence"]), "last_run": str(row["last_run"]),
            "recent_outcomes": list(row["strip"])[-10:]}


def failures(store, project: str, run_id: str | None = None,
             commit: str | None = None) -> dict[str, Any]:
    """The failing tests of a run (``run_id``; else the project's latest run, or its latest
    at ``commit``), each marked new or still failing against the run before, with its
    message and whether it is known flaky."""
    runs = store.query("runs", project=project, limit=500, offset=0)
    if run_id is None:
        pick = runs[runs["commit_sha"] == commit] if commit else runs
        if pick.empty:
            return {"project": project, "run_id": None, "failures": [],
                    "why": "no run stored" + (f" at commit {commit}" if commit else "")}
        run_id = pick["run_id"].iloc[0]
    base = store.query("base_run", run_id=run_id)
    base_id = base["run_id"].iloc[0] if not base.empty else None
    changes = compare_runs(store.query("final_outcomes", run_id=run_id),
                           store.query("final_outcomes", run_id=base_id) if base_id else None)
    bad = changes[changes["status"].isin(["new failure", "still failing"])]
    labels = label_tests(store.query("test_run_stats", project=project))
    label = dict(zip(labels["test_id"], labels["label"], strict=True)) if not labels.empty \
        else {}
    return {"project": project, "run_id": run_id, "base_run_id": base_id, "failures": [
        {"test": r.test_id, "status": r.status, "message": (r.message or "")[:500]
         if isinstance(r.message, str) else None, "label": label.get(r.test_id)}
        for r in bad.itertuples(index=False)]}


def covering_tests(store, project: str, file: str, line: int,
                   commit: str | None = None) -> dict[str, Any]:
    """The tests that ran ``file:line`` in the project's latest coverage report with
    per-test contexts: the tests to run after changing that line."""
    return {"project": project, "file": file, "line": line,
            "tests": _covering(store, project, file, line, commit)}


def project_health(store, project: str) -> dict[str, Any]:
    """The project at a glance: its last run, its flaky and broken tests, its latest
    coverage, and the agents working on it."""
    runs = store.query("runs", project=project, limit=1, offset=0)
    labels = label_tests(store.query("test_run_stats", project=project))
    counts = labels["label"].value_counts().to_dict() if not labels.empty else {}
    cov = store.query("coverage_reports", project=project, limit=1)
    agents = store.query("project_agents", project=project)
    return {
        "project": project,
        "last_run": _records(runs[["run_id", "started_at", "status", "tests", "passed",
                                    "failed", "errors", "skipped", "commit_sha"]])[0]
        if not runs.empty else None,
        "flaky": int(counts.get("flaky", 0) + counts.get("statistically flaky", 0)),
        "broken": int(counts.get("broken", 0)),
        "coverage": _records(cov[["report_id", "commit_sha", "percent", "statements",
                                  "covered", "created_at"]])[0] if not cov.empty else None,
        "agents": {state: int(n) for state, n in agents["state"].value_counts().items()},
    }


def recent_sessions(store, project: str) -> dict[str, Any]:
    """The agents (and their sessions) that worked on the project lately, newest first."""
    return {"project": project, "agents": _records(store.query("project_agents",
                                                               project=project))}


def select_tests(store, project: str, base: str | None = None, head: str | None = None,
                 top: int | None = 50) -> dict[str, Any]:
    """The tests to run for a change, best first, with reasons (see
    :func:`workbench.selection.select.select_tests`); the repository is the folder a scan
    found for the project."""
    from .coverage.lines import project_repo
    from .selection.select import select_tests as _select

    repo = project_repo(store, project)
    if base and repo is None:
        return {"project": project, "error": "no scanned folder for this project: run "
                "`observatory projects scan` where it lives"}
    return _select(store, project, repo, base, head, None, top)
