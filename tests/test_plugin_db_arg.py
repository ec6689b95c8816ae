"""``pytest --observatory-db PATH`` works as written (issue 21, item 7): a real src-layout
project whose pyproject.toml puts ``src`` on the path, a database that exists in another
folder, and both spellings of the option — pytest must find the project's rootdir and
settings, not the database's folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from workbench.store import Store

from .conftest import write_tree

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

PYPROJECT = """\
[project]
name = "shapes"
version = "0"

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
addopts = "-rA"
"""


@pytest.fixture
def project(tmp_path):
    root = write_tree(tmp_path / "shapes", {
        "pyproject.toml": PYPROJECT,
        "src/shapes/__init__.py": "def area(w, h):\n    return w * h\n",
        "tests/test_area.py": "from shapes import area\n\n\ndef test_area():\n"
                              "    assert area(2, 3) == 6\n\n\ndef test_square():\n"
                              "    assert area(2, 2) == 4\n",
    })
    db = tmp_path / "elsewhere" / "observatory.duckdb"
    db.parent.mkdir()
    with Store(db):  # the database exists before the run: the case that broke
        pass
    return root, db


def pytest_in(cwd, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "PYTEST_ADDOPTS"))}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-p", "no:randomly", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.parametrize("spelling", ["separate", "joined"])
def test_the_project_keeps_its_rootdir_and_settings(project, spelling):
    root, db = project
    option = (["--observatory-db", str(db)] if spelling == "separate"
              else [f"--observatory-db={db}"])
    r = pytest_in(root, *option, "--observatory-branch", "main")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert f"rootdir: {root}" in out and "configfile: pyproject.toml" in out
    assert "2 passed" in out and "PASSED tests/test_area.py::test_square" in out  # -rA
    with Store(db, read_only=True) as s:
        runs = s.sql("SELECT project, tests, passed, status FROM runs")
    assert runs.values.tolist() == [["shapes", 2, 2, "complete"]]


def test_a_relative_database_and_a_test_path_from_elsewhere(project):
    """From the database's folder, naming the project's tests: the rootdir is the
    project's (the common folder of the tests), its pythonpath applies."""
    root, db = project
    r = pytest_in(db.parent, "--observatory-db", db.name, str(root / "tests"))
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "2 passed" in out, out
    assert f"rootdir: {root}" in out

