"""The workbench as an MCP server (the official ``mcp`` SDK, v2): ``observatory mcp`` speaks
it over stdio, so that a coding agent can ask, before "fixing" a failure, whether the test
is known flaky, which tests run the line it is changing, and how the project is doing.

The tools read the database beside the command, or the running workbench that holds it
(:func:`workbench.connect`); they only read. See README, "The workbench over MCP"."""

from __future__ import annotations

from typing import Any

from . import agent_tools


def build(target: str | None = None, store=None):
    """An ``MCPServer`` whose tools read ``store``, else ``target`` (a database path or a
    workbench URL; default: the one every command finds)."""
    from mcp.server.mcpserver import MCPServer

    from .client import RemoteStore
    from .intake import resolve
    from .store import Store

    if store is not None:
        pass  # the served workbench's own store (POST /mcp)
    elif isinstance(target, str) and target.startswith(("http://", "https://")):
        store = RemoteStore(target)
    else:  # the server holding the file, else the file, read-only (it only reads)
        path, url = resolve(target)
        if not url and not path.exists():
            raise FileNotFoundError(f"{path}: no such database")
        store = RemoteStore(url) if url else Store(path, read_only=True)
    server = MCPServer(
        "happy-observatory",
        instructions="Test results, flaky tests, per-test coverage and agent sessions of "
        "the projects this workbench watches. Ask flaky_status before fixing a failing "
        "test; covering_tests for the tests to run after changing a line.")

    @server.tool()
    def flaky_status(test: str, project: str | None = None) -> dict[str, Any]:
        """Whether a test is flaky (passed and failed on one commit or in one run),
        statistically flaky, broken (its last runs all failed), failing, or stable — with
        the evidence. `test` is the id as the runner reports it (e.g. tests.test_x::test_y
        or tests/test_x.py::test_y)."""
        return agent_tools.flaky_status(store, test, project)

    @server.tool()
    def failures(project: str, run_id: str | None = None,
                 commit: str | None = None) -> dict[str, Any]:
        """The failing tests of a run (default: the project's latest, or its latest at
        `commit`): new or still failing against the run before, with message and flaky
        label."""
        return agent_tools.failures(store, project, run_id, commit)

    @server.tool()
    def covering_tests(project: str, file: str, line: int) -> dict[str, Any]:
        """The tests that ran file:line in the project's latest coverage report with
        per-test contexts (pytest node ids)."""
        return agent_tools.covering_tests(store, project, file, line)

    @server.tool()
    def project_health(project: str) -> dict[str, Any]:
        """The project's last run, flaky and broken test counts, latest coverage, and the
        agents working on it."""
        return agent_tools.project_health(store, project)

    @server.tool()
    def recent_sessions(project: str) -> dict[str, Any]:
        """The agents (with their session, state and cost) that worked on the project
        lately, newest first."""
        return agent_tools.recent_sessions(store, project)

    @server.tool()
    def select_tests(project: str, base: str | None = None, head: str | None = None,
                     top: int | None = 50) -> dict[str, Any]:
        """The project's tests to run for a change, best first, each with its reasons: new
        or changed tests and last run's failures first, then by estimated probability of
        failing per second (coverage of the changed lines, failure history, co-change,
        flakiness). The change is base..head in the project's scanned folder (no head: the
        working tree; no base: history alone)."""
        return agent_tools.select_tests(store, project, base, head, top)

    return server


def serve_stdio(target: str | None = None) -> None:
    build(target).run("stdio")
