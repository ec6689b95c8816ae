"""Test runs from the workbench run under the project's own Python (issue 21, item 5): a
real src-layout project with its own ``.venv`` — pytest in it, neither the workbench nor its
dependencies — run from a served workbench: the results stream in, the run names its
interpreter and a log in the workbench's data folder, and nothing is written into the
repository. The same venv without pytest is an ``error`` that says so; an interpreter set
for the project (``projects set --python``, ``PUT /api/projects/{name}``) wins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROLE_ENV, Served, role_client, wait_for, write_tree
from .test_cli import observatory
from .test_coverage_ingest import run

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

#: What pytest needs to import, and nothing else of this environment.
PYTEST_ONLY = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py.py")


def pytest_only(folder: Path) -> Path:
    """A folder holding pytest and what it imports (links into this environment)."""
    import pytest as this

    site = Path(this.__file__).resolve().parent.parent
    folder.mkdir()
    for name in PYTEST_ONLY:
        if (site / name).exists():
            (folder / name).symlink_to(site / name)
        # (and its metadata: pluggy 1.6 reads its version from it at import)
        for meta in site.glob(f"{name.strip('_').removesuffix('.py')}-*.dist-info"):
            if not (folder / meta.name).exists():  # (pytest and _pytest share one)
                (folder / meta.name).symlink_to(meta)
    return folder


def venv(where: Path, pytest_from: Path | None) -> Path:
    """A virtual environment of its own (no pip, no system site-packages), with pytest
    when ``pytest_from`` is given; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site = next(where.glob("lib/python*/site-packages"))
    if pytest_from is not None:
        (site / "pytest-only.pth").write_text(f"{pytest_from}\n")
    return where / "bin" / "python"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("py")
    repo = write_tree(root / "shop", {
        "pyproject.toml": '[project]\nname = "shop"\nversion = "0"\n\n'
                          '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
        "src/shop/__init__.py": "def total(prices):\n    return sum(prices)\n",
        "tests/test_total.py": "import sys\n\nfrom shop import total\n\n\n"
                               "def test_total():\n    assert total([1, 2]) == 3\n\n\n"
                               "def test_empty():\n    assert total([]) == 1\n\n\n"
                               "def test_no_workbench_here():\n"
                               "    import importlib.util\n"
                               "    assert importlib.util.find_spec('duckdb') is None\n"
                               "    assert importlib.util.find_spec('workbench') is None\n",
        ".gitignore": ".venv/\n__pycache__/\n"})
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    python = venv(repo / ".venv", pytest_only(root / "pytest-only"))
    db = root / "data" / "w.duckdb"
    db.parent.mkdir()
    assert observatory("projects", "scan", str(repo), "--db", str(db)).returncode == 0
    served = Served(db, env=ROLE_ENV, extra_args=("--no-demo",))
    yield {"repo": repo, "python": python, "db": db, "served": served, "root": root}
    served.stop()


def finished(client, run_id: str) -> dict:
    return wait_for(lambda: (r := client.get(f"/api/test-runs/{run_id}").json()["test_run"])[
        "state"] not in ("queued", "running") and r, 90, "the test run")


def test_the_projects_venv_runs_its_tests_and_logs_stay_out(shop):
    with role_client(shop["served"], "operator") as op:
        started = op.post("/api/test-runs", json={"project": "shop"}).json()["test_run"]
        done = finished(op, started["id"])
    assert done["state"] == "failed", done  # test_empty fails, as written
    assert (done["results"], done["failures"]) == (3, 1)
    assert done["run_status"] == "complete"
    log = shop["db"].parent / "test-runs" / f"{done['id']}.log"
    assert f"python: {shop['python']} (the project's .venv)" in done["message"]
    assert f"log: {log}" in done["message"]
    assert "1 failed, 2 passed" in log.read_text()
    # nothing of the run in the repository (Python's own __pycache__ aside: ignored)
    status = run(shop["repo"], "git", "status", "--porcelain", "--ignored")
    assert [x for x in status.splitlines() if "__pycache__" not in x] == ["!! .venv/"]
    # its stored run is the project's, on the commit and branch checked out
    head = run(shop["repo"], "git", "rev-parse", "HEAD").strip()
    with role_client(shop["served"], "viewer") as viewer:
        runs = viewer.get("/api/runs", params={"project": "shop"}).json()["runs"]
    mine = [r for r in runs if r["run_id"] == done["run_id"]]
    assert [(r["commit_sha"], r["branch"], r["build"]) for r in mine] == [
        (head, "main", done["id"])]


def test_a_venv_without_pytest_is_an_error_that_says_why(shop, tmp_path):
    site = next((shop["repo"] / ".venv").glob("lib/python*/site-packages"))
    pth = site / "pytest-only.pth"
    pth.rename(tmp_path / "off.pth")
    try:
        with role_client(shop["served"], "operator") as op:
            started = op.post("/api/test-runs", json={"project": "shop"}).json()["test_run"]
            done = finished(op, started["id"])
    finally:
        (tmp_path / "off.pth").rename(pth)
    assert done["state"] == "error", done
    assert done["message"].startswith(f"pytest is not installed in {shop['python']}")
    assert done["results"] in (0, None) and done["run_id"] is None


def test_an_interpreter_set_for_the_project_wins(shop):
    """``projects set --python`` through the running workbench (operators; audited): the
    workbench's own Python runs the tests — and the test that checks for its absence fails,
    which shows it ran there."""
    with role_client(shop["served"], "viewer") as viewer:
        assert viewer.put("/api/projects/shop", json={"python": sys.executable}
                          ).status_code == 403
    r = observatory("projects", "set", "shop", "--python", sys.executable,
                    "--url", shop["served"].url, env={"OBSERVATORY_TOKEN": "tok-operator"})
    assert r.returncode == 0 and f"shop: test runs use {sys.executable}" in r.stdout, r.stderr
    bad = observatory("projects", "set", "shop", "--python", "/no/such/python",
                      "--url", shop["served"].url, env={"OBSERVATORY_TOKEN": "tok-operator"})
    assert bad.returncode == 1 and "is not an executable file" in bad.stderr
    try:
        with role_client(shop["served"], "operator") as op:
            started = op.post("/api/test-runs", json={
                "project": "shop", "tests": ["tests/test_total.py::test_total",
                                             "tests/test_total.py::test_no_workbench_here"]}
            ).json()["test_run"]
            done = finished(op, started["id"])
    finally:
        observatory("projects", "set", "shop", "--python", "", "--url", shop["served"].url,
                    env={"OBSERVATORY_TOKEN": "tok-operator"})
    assert f"python: {sys.executable} (set for the project)" in done["message"]
    assert (done["state"], done["results"], done["failures"]) == ("failed", 2, 1)
    with role_client(shop["served"], "admin") as admin:
        audit = admin.get("/api/audit", params={"limit": 200}).json()["audit"]
    assert any(a["action"] == "project-python" and a["outcome"] == "ok" for a in audit)
    assert any(a["action"] == "PUT /api/projects/{project}" and a["role"] == "viewer"
               and a["outcome"].startswith("refused") for a in audit)
