"""Notebooks are tests: each runs top to bottom against a real database file."""

from __future__ import annotations

import os
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


def test_test_failure_investigation_notebook(demo_path, tmp_path, monkeypatch):
    db = tmp_path / "nb.duckdb"
    shutil.copy(demo_path, db)
    monkeypatch.setenv("OBSERVATORY_DB", str(db))
    monkeypatch.delenv("OBSERVATORY_URL", raising=False)
    nb = nbformat.read(ROOT / "notebooks" / "test-failure-investigation.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )
    assert "runs of checkout-service" in text
    assert "ConnectionResetError" in text
    assert "statistically flaky" in text or "broken" in text
    assert any(
        "application/vnd.holoviews_load.v0+json" in o.get("data", {})
        or "application/vnd.holoviews_exec.v0+json" in o.get("data", {})
        for o in nb.cells[-1].outputs
    ), "the inline view did not render"
    assert os.environ["OBSERVATORY_DB"] == str(db)


def _run(name, env, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    return "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )


def test_agent_telemetry_notebook_on_the_file(demo_path, tmp_path, monkeypatch):
    db = tmp_path / "nb.duckdb"
    shutil.copy(demo_path, db)
    monkeypatch.delenv("OBSERVATORY_URL", raising=False)
    text = _run("agent-telemetry.ipynb", {"OBSERVATORY_DB": str(db)}, monkeypatch)
    assert "Store" in text and "claude-code" in text and "failed tool results" in text
    assert "invoke_agent triage" in text


def test_agent_telemetry_notebook_through_a_running_server(server, monkeypatch):
    text = _run("agent-telemetry.ipynb", {"OBSERVATORY_URL": server.url}, monkeypatch)
    assert "RemoteStore" in text and "claude-code" in text and "invoke_agent triage" in text


def test_agent_control_notebook_through_a_server(tmp_path, monkeypatch):
    from .conftest import Served

    served = Served(tmp_path / "control.duckdb", extra_args=("--no-demo",),
                    ready_path="/api/health")
    try:
        text = _run("agent-control.ipynb", {"OBSERVATORY_URL": served.url}, monkeypatch)
    finally:
        served.stop()
    assert "notebook-ticker running pid" in text
    assert "pause  -> paused" in text and "resume -> running" in text
    assert "now stopped" in text
    assert "stopping → stopped" in text
    assert "0 permission request(s) waiting" in text
    assert "loopback" in text and "pause" in text
    assert "tasks done: done, done" in text
    assert "tool-loop" in text and "0 open alert(s)" in text
    assert "workflow run succeeded - 4 steps" in text
    assert "[('both', 'done'), ('fan', 'done'), ('left', 'done'), ('right', 'done')]" in text


def _projects_notebook_text(text: str) -> None:
    assert "checkout-service" in text and "source from git show" in text
    assert "lines newly uncovered" in text
    assert "are run only by flaky or broken tests" in text
    assert "MCP server 'observatory': tools" in text and "covering_tests" in text
    assert "project_health says coverage" in text


def test_projects_notebook_on_the_file(demo_path, tmp_path, monkeypatch):
    db = tmp_path / "nb.duckdb"
    shutil.copy(demo_path, db)
    monkeypatch.delenv("OBSERVATORY_URL", raising=False)
    text = _run("projects-and-coverage.ipynb", {"OBSERVATORY_DB": str(db)}, monkeypatch)
    _projects_notebook_text(text)
    assert "Store" in text


def test_projects_notebook_through_a_running_server(server, monkeypatch):
    text = _run("projects-and-coverage.ipynb", {"OBSERVATORY_URL": server.url}, monkeypatch)
    _projects_notebook_text(text)
    assert "RemoteStore" in text
