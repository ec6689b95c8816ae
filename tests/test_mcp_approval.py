"""An MCP server's approval covers the project's code it runs, not only its declaration
(issue 20, finding 8): a real stdio server written with the ``mcp`` SDK, declared in a
project's ``.mcp.json``, approved by an operator and called; then its script is edited,
swapped for a symlink out of the project, its in-project executable edited — each asks
again or is refused — while an unchanged project keeps its approval across calls, touches
and restarts (the fingerprint reads content, never mtimes)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from workbench.control.access import Principal
from workbench.projects import mcp_client
from workbench.projects.mcp_client import NotApproved, Refused
from workbench.store import Store

from .conftest import write_tree
from .test_projects_coverage import ECHO_SERVER

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

OPERATOR = Principal("ops", "operator")
RUN_SH = f"#!/bin/sh\nexec {sys.executable} server.py\n"


@pytest.fixture
def project(tmp_path) -> Path:
    """A project whose ``echo`` server is ``python server.py`` and whose ``wrapped`` server
    is the project's own executable ``./run.sh`` (which runs the same script)."""
    folder = write_tree(tmp_path / "proj", {
        "server.py": ECHO_SERVER, "run.sh": RUN_SH,
        ".mcp.json": json.dumps({"mcpServers": {
            "echo": {"command": sys.executable, "args": ["server.py"]},
            "wrapped": {"command": "./run.sh"}}})})
    (folder / "run.sh").chmod(0o755)
    return folder


def shout(store, folder: Path, server: str = "echo") -> str:
    return mcp_client.call(store, folder, server, "shout", {"text": "hi"}, OPERATOR)["text"]


def test_an_edited_script_asks_again(store, project):
    mcp_client.approve(store, project, "echo", OPERATOR)
    assert shout(store, project) == "HI"
    (project / "server.py").write_text(ECHO_SERVER.replace("text.upper()", "text * 2"))
    with pytest.raises(NotApproved, match="not approved"):
        shout(store, project)
    with pytest.raises(NotApproved):
        mcp_client.tools(store, project, "echo", OPERATOR)
    mcp_client.approve(store, project, "echo", OPERATOR)
    assert shout(store, project) == "hihi"


def test_a_script_swapped_for_a_link_out_of_the_project_is_refused(store, project, tmp_path):
    mcp_client.approve(store, project, "echo", OPERATOR)
    outside = write_tree(tmp_path / "elsewhere", {"server.py": ECHO_SERVER})
    (project / "server.py").unlink()
    (project / "server.py").symlink_to(outside / "server.py")  # the very same bytes
    with pytest.raises(Refused, match="outside the project") as refused:
        shout(store, project)
    assert isinstance(refused.value, NotApproved)
    assert str((outside / "server.py").resolve()) in str(refused.value)
    # No approval can cover it: approving is refused too, and the listing says why.
    with pytest.raises(Refused):
        mcp_client.approve(store, project, "echo", OPERATOR)
    echo = next(s for s in mcp_client.listing(store, project) if s["name"] == "echo")
    assert not echo["approved"] and "outside the project" in echo["refused"]
    # A folder link on the way out is the same thing.
    (project / "server.py").unlink()
    (project / "lib").symlink_to(outside, target_is_directory=True)
    _declare(project, "echo", {"command": sys.executable, "args": ["lib/server.py"]})
    with pytest.raises(Refused):
        shout(store, project)


def test_a_link_inside_the_project_runs_and_retargeting_it_asks_again(store, project):
    write_tree(project, {"src/a.py": ECHO_SERVER, "src/b.py": ECHO_SERVER})
    (project / "server.py").unlink()
    (project / "server.py").symlink_to(project / "src" / "a.py")
    mcp_client.approve(store, project, "echo", OPERATOR)
    assert shout(store, project) == "HI"
    (project / "server.py").unlink()
    (project / "server.py").symlink_to(project / "src" / "b.py")  # same bytes, other file
    with pytest.raises(NotApproved, match="not approved"):
        shout(store, project)


def test_an_edited_executable_in_the_project_asks_again(store, project):
    mcp_client.approve(store, project, "wrapped", OPERATOR)
    assert shout(store, project, "wrapped") == "HI"
    (project / "run.sh").write_text(RUN_SH + "# and something else\n")
    with pytest.raises(NotApproved, match="not approved"):
        shout(store, project, "wrapped")
    mcp_client.approve(store, project, "wrapped", OPERATOR)
    assert shout(store, project, "wrapped") == "HI"


def test_an_unchanged_project_keeps_its_approval_across_calls_and_restarts(tmp_path, project):
    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        fp = mcp_client.approve(store, project, "echo", OPERATOR)
        assert shout(store, project) == "HI"
        assert mcp_client.server(store, project, "echo")[1] == fp
    # Touched, rewritten with the same bytes, the store reopened: still approved.
    os.utime(project / "server.py", (1, 1))
    (project / "server.py").write_text(ECHO_SERVER)
    with Store(db) as store:
        assert mcp_client.server(store, project, "echo")[1:] == (fp, True)
        assert shout(store, project) == "HI"


def test_the_listing_shows_what_an_approval_covers(store, project):
    listed = {s["name"]: s for s in mcp_client.listing(store, project)}
    echo, wrapped = listed["echo"], listed["wrapped"]
    assert [(c["role"], c["path"]) for c in echo["covers"]] == [("arg", "server.py")]
    assert [(c["role"], c["path"]) for c in wrapped["covers"]] == [("command", "run.sh")]
    assert echo["covers"][0]["bytes"] == len(ECHO_SERVER.encode())
    assert "text.upper" not in json.dumps(listed)  # paths and digests, never content
    assert echo["refused"] is None and not echo["approved"]


def test_python_dash_m_covers_the_module_it_runs(project):
    write_tree(project, {"pkg/__init__.py": "", "pkg/__main__.py": "print(1)\n"})
    spec = {"name": "m", "transport": "stdio", "command": sys.executable, "args": ["-m", "pkg"]}
    covered = [c["path"] for c in mcp_client.covers(project, spec)]
    assert covered == ["pkg/__init__.py", "pkg/__main__.py"]
    before = mcp_client.fingerprint(project, spec)
    (project / "pkg" / "__main__.py").write_text("print(2)\n")
    assert mcp_client.fingerprint(project, spec) != before


def test_a_file_over_the_cap_is_refused(store, project, monkeypatch):
    monkeypatch.setattr(mcp_client, "MAX_BYTES", 100)
    with pytest.raises(Refused, match="larger than"):
        mcp_client.approve(store, project, "echo", OPERATOR)
    echo = next(s for s in mcp_client.listing(store, project) if s["name"] == "echo")
    assert "larger than" in echo["refused"]


def _declare(folder: Path, name: str, spec: dict) -> None:
    doc = json.loads((folder / ".mcp.json").read_text())
    doc["mcpServers"][name] = spec
    (folder / ".mcp.json").write_text(json.dumps(doc))
