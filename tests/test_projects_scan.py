"""Finding a machine's projects: real git repositories (a worktree, a detached HEAD, nested
ones inside dependencies and virtual environments that must not count, a symlink loop),
their kinds and manifests, the MCP servers they declare — from the CLI into the file, and
through a served workbench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import ROLE_ENV, TOKENS, Served, role_client

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def repo(path: Path, files: dict[str, str], commit: bool = True) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q", "-b", "main")
    if commit:
        git(path, "add", ".")
        git(path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("machine")
    api = repo(root / "work" / "api", {"pyproject.toml": "[project]\nname='api'\n",
                                       "uv.lock": "", ".mcp.json": json.dumps({"mcpServers": {
                                           "db": {"command": "db-mcp", "args": ["--ro"]},
                                           "docs": {"url": "http://127.0.0.1:9/mcp"}}})})
    repo(root / "work" / "web", {"package.json": "{}", "package-lock.json": "{}",
                                 ".codex/config.toml": "[mcp_servers.search]\ncommand = 's'\n",
                                 ".gemini/settings.json": "{not json"})
    repo(root / "work" / "svc", {"go.mod": "module svc\n", "Makefile": "all:\n"})
    git(root / "work" / "svc", "checkout", "-q", "--detach")
    repo(root / "src" / "ledger", {"pom.xml": "<project/>", "build.gradle": ""})
    repo(root / "src" / "plain", {"README.md": "hi"})
    # not projects of this machine's owner: inside dependencies and environments
    repo(root / "work" / "tool" / "node_modules" / "dep", {"package.json": "{}"})
    repo(root / "work" / ".venv" / "lib" / "pkg", {"setup.py": ""})
    git(api, "worktree", "add", "-q", str(root / "src" / "api-feature"), "-b", "feature")
    os.symlink(root / "work", root / "work" / "loop")  # a link back up: never followed
    return root


EXPECTED = {
    "work/api": ("python", "main"), "work/web": ("node", "main"), "work/svc": ("go", None),
    "src/ledger": ("java-maven", "main"), "src/plain": ("other", "main"),
    "src/api-feature": ("python", "feature"),
}


def scan_cli(*args: str) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "workbench", "projects", "scan", *args, "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_scan_finds_the_repositories_and_nothing_else(tree, tmp_path):
    found = scan_cli(str(tree), "--db", str(tmp_path / "p.duckdb"))
    got = {str(Path(p["path"]).relative_to(tree)): (p["kind"], p["branch"]) for p in found}
    assert got == EXPECTED
    by = {Path(p["path"]).name: p for p in found}
    assert by["api"]["manifests"] == ["pyproject.toml", "uv.lock"]
    assert by["ledger"]["kinds"] == ["java-maven", "java-gradle"]
    assert by["svc"]["kinds"] == ["go", "make"]
    assert [(s["name"], s["transport"]) for s in by["api"]["mcp_servers"]] == [
        ("db", "stdio"), ("docs", "http")]
    web = by["web"]["mcp_servers"]
    assert web[0]["file"] == ".gemini/settings.json" and "error" in web[0]
    assert (web[1]["name"], web[1]["command"]) == ("search", "s")
    again = scan_cli(str(tree), "--db", str(tmp_path / "p.duckdb"))  # stored once, updated
    assert len(again) == len(found)
    from workbench.store import Store

    with Store(tmp_path / "p.duckdb", read_only=True) as s:
        assert s.sql("SELECT count(*) AS n FROM projects")["n"].item() == len(EXPECTED)


def test_scan_through_a_served_workbench(tree, tmp_path):
    served = Served(tmp_path / "s.duckdb", env=ROLE_ENV, extra_args=("--no-demo",))
    try:
        with role_client(served, "viewer") as c:
            assert c.post("/api/projects/scan", json={"roots": [str(tree)]}).status_code == 403
        with role_client(served, "operator") as c:
            bad = c.post("/api/projects/scan", json={"roots": ["relative/path"]})
            assert bad.status_code == 400 and "absolute" in bad.json()["error"]
            r = c.post("/api/projects/scan", json={"roots": [str(tree / "work")]})
            assert r.status_code == 200 and r.json()["folders"] >= 4
            assert sorted(Path(p["path"]).name for p in r.json()["projects"]) == [
                "api", "svc", "web"]
            listed = c.get("/api/projects").json()["projects"]
            assert {p["name"] for p in listed} == {"api", "svc", "web"}
            assert listed[0]["kinds"] and isinstance(listed[0]["mcp_servers"], list)
        assert httpx.get(f"{served.url}/api/projects").status_code == 401
        r = subprocess.run([sys.executable, "-m", "workbench", "projects", "scan",
                            str(tree / "src"), "--url", served.url, "--json"],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "OBSERVATORY_TOKEN": TOKENS["operator"]})
        assert sorted(Path(json.loads(x)["path"]).name for x in r.stdout.splitlines()) == [
            "api-feature", "ledger", "plain"], r.stderr
    finally:
        served.stop()


def test_git_of_a_project(tree):
    from workbench.git import GitError, branches, changed_lines, commits

    api = tree / "work" / "api"
    assert branches(api) == {"current": "main", "branches": ["feature", "main"]}
    assert branches(tree / "work" / "svc")["current"] is None  # detached
    log = commits(api)
    assert len(log) == 1 and log[0]["author"] == "t" and log[0]["subject"] == "x"
    (api / "pyproject.toml").write_text("[project]\nname='api'\nversion='2'\n")
    try:
        assert changed_lines(api, "HEAD") == {"pyproject.toml": {3}}
    finally:
        git(api, "checkout", "-q", "--", "pyproject.toml")
    with pytest.raises(GitError, match="nope"):
        commits(api, "nope")
