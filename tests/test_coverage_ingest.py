"""Coverage end to end with the real producers: a git repository built here, its tests run
by pytest under coverage.py with per-test contexts (pytest-cov's ``--cov-context=test``, and
coverage.py's own ``dynamic_context = test_function``), the reports coverage.py writes from
it (its data file, JSON, Cobertura XML, LCOV) ingested, totals checked against coverage.py's
own, and the tests that ran chosen lines checked against coverage.py's own contexts —
through the file and through a served workbench."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import coverage
import duckdb
import httpx
import pytest

from workbench.ingest import ci_env
from workbench.store import Store

from .conftest import Served

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

CART = '''\
def total(prices, discount=0):
    subtotal = sum(prices)
    if discount:
        subtotal -= subtotal * discount  # discounted
    return round(subtotal, 2)


def add_item(cart, item, qty=1):
    if qty <= 0:
        raise ValueError("qty must be positive")  # refused
    cart[item] = cart.get(item, 0) + qty
    return cart


def unused():
    return "never run"  # dead
'''
TESTS = '''\
import pytest

from shop.cart import add_item, total



def test_total():
    assert total([1, 2]) == 3


def test_discount():
    assert total([10, 10], discount=0.5) == 10


def test_add():
    assert add_item({}, "pen") == {"pen": 1}


def test_refuse():
    with pytest.raises(ValueError):
        add_item({}, "pen", 0)


class TestCart:
    def test_twice(self):
        cart = add_item(add_item({}, "a"), "a", 2)
        assert cart == {"a": 3}

    def test_discount_zero(self):
        assert total([5], discount=0) == 5
'''


def run(cwd: Path, *cmd: str) -> str:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def line_of(marker: str) -> int:
    return next(i for i, text in enumerate(CART.splitlines(), 1) if marker in text)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "cart.py").write_text(CART)
    (root / "tests").mkdir()
    (root / "tests" / "__init__.py").write_text("")
    (root / "tests" / "test_cart.py").write_text(TESTS)
    run(root, "git", "init", "-q", "-b", "main")
    run(root, "git", "add", ".")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
        "shop")
    py = sys.executable
    run(root, py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:observatory",
        "--cov=shop", "--cov-context=test", "--cov-branch", "--cov-report=", "tests")
    run(root, py, "-m", "coverage", "json", "--show-contexts", "-o", "cov.json")
    run(root, py, "-m", "coverage", "xml", "-o", "cov.xml")
    run(root, py, "-m", "coverage", "lcov", "-o", "cov.lcov")
    # coverage.py's own per-test contexts, in a second data file
    (root / "fn.rc").write_text("[run]\nsource = shop\ndynamic_context = test_function\n"
                                "data_file = .coverage.fn\n")
    run(root, py, "-m", "coverage", "run", "--rcfile=fn.rc", "-m", "pytest", "-q",
        "-p", "no:cacheprovider", "-p", "no:observatory", "-p", "no:cov", "tests")
    return root


def observatory(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # (without a CI system's variables: the report's git checkout is what is asserted)
    env = {k: v for k, v in os.environ.items()
           if k not in {marker for marker, _ in ci_env._PROVIDERS.values()}}
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def ingest(repo: Path, db: Path, *files: str, extra: tuple[str, ...] = ()) -> list[dict]:
    r = observatory("ingest", "coverage", *[str(repo / f) for f in files], "--project",
                    "shop", "--db", str(db), "--json", *extra)
    return [json.loads(line) for line in r.stdout.splitlines()]


def coveragepy_truth(repo: Path) -> tuple[dict, dict[int, set[str]]]:
    """coverage.py's own totals, and its contexts per line of cart.py (phases stripped)."""
    doc = json.loads((repo / "cov.json").read_text())
    data = coverage.CoverageData(basename=str(repo / ".coverage"))
    data.read()
    cart = next(f for f in data.measured_files() if f.endswith("cart.py"))
    by_line = {line: {c.rsplit("|", 1)[0] for c in ctxs if c}
               for line, ctxs in data.contexts_by_lineno(cart).items()}
    return doc["totals"], by_line


def test_every_format_coveragepy_writes_agrees_with_coveragepy(repo, tmp_path):
    totals, by_line = coveragepy_truth(repo)
    results = ingest(repo, tmp_path / "c.duckdb", ".coverage", "cov.json", "cov.xml",
                     "cov.lcov")
    assert [r["ok"] for r in results] == [True] * 4, results
    assert [r["format"] for r in results] == ["coveragepy", "coveragepy-json", "cobertura",
                                              "lcov"]
    for r in results:
        assert (r["files"], r["statements"], r["covered"]) == (
            2, totals["num_statements"], totals["covered_lines"]), r
        assert r["percent"] == round(100 * totals["covered_lines"] /
                                     totals["num_statements"], 2)
        assert r["warnings"] == [], r
    tests = set().union(*by_line.values())
    assert len(tests) == 6
    assert [r["contexts"] for r in results] == [6, 6, 0, 0]
    with Store(tmp_path / "c.duckdb", read_only=True) as s:
        files = s.sql("SELECT path, partial_lines, branches, branches_covered FROM "
                      "coverage_files WHERE report_id = ?", [results[0]["report_id"]])
    assert sorted(files["path"]) == ["shop/__init__.py", "shop/cart.py"]  # project-relative
    cart = files[files["path"] == "shop/cart.py"].iloc[0]
    assert cart["branches"] == totals["num_branches"] and list(cart["partial_lines"]) == []
    assert cart["branches_covered"] == totals["covered_branches"]


@pytest.mark.parametrize("marker", ["discounted", "refused", "dead", "return round",
                                    "cart[item] ="])
def test_who_ran_a_line_is_what_coveragepy_recorded(repo, tmp_path, marker):
    _, by_line = coveragepy_truth(repo)
    db = tmp_path / "who.duckdb"
    assert ingest(repo, db, ".coverage")[0]["ok"]
    line = line_of(marker)
    r = observatory("coverage", "who", "--project", "shop", f"shop/cart.py:{line}",
                    "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == sorted(by_line.get(line, set()))
    if marker == "discounted":
        assert json.loads(r.stdout) == ["tests/test_cart.py::test_discount"]
    if marker == "dead":
        assert json.loads(r.stdout) == []


def test_coveragepy_test_function_contexts_map_to_node_ids(repo, tmp_path):
    db = tmp_path / "fn.duckdb"
    result = ingest(repo, db, ".coverage.fn")[0]
    assert result["ok"] and result["contexts"] == 6, result
    line = line_of("cart[item] =")
    r = observatory("coverage", "who", "--project", "shop", f"shop/cart.py:{line}",
                    "--db", str(db), "--json")
    assert json.loads(r.stdout) == ["tests/test_cart.py::TestCart::test_twice",
                                    "tests/test_cart.py::test_add"]


def test_through_a_served_workbench(repo, tmp_path):
    served = Served(tmp_path / "s.duckdb", extra_args=("--no-demo",), ready_path="/api/health")
    try:
        r = observatory("ingest", "coverage", str(repo / ".coverage"), "--project", "shop",
                        "--commit", "abc123", "--url", served.url, "--json")
        result = json.loads(r.stdout)
        assert result["ok"] and result["contexts"] == 6, result
        line = line_of("refused")
        who = httpx.get(f"{served.url}/api/coverage/who", params={
            "project": "shop", "file": "cart.py", "line": line}).json()
        assert who["tests"] == ["tests/test_cart.py::test_refuse"]  # (a path suffix will do)
        bad = httpx.get(f"{served.url}/api/coverage/who", params={
            "project": "shop", "file": "cart.py", "line": "x"})
        assert bad.status_code == 400 and "line" in bad.json()["error"]
        junk = httpx.post(f"{served.url}/api/coverage/reports", params={
            "project": "shop", "filename": "junk.txt"}, content=b"hello")
        assert junk.status_code == 400 and junk.json()["error"].startswith("junk.txt:")
        cli = observatory("coverage", "who", "--project", "shop", f"shop/cart.py:{line}",
                          "--url", served.url)
        assert cli.stdout.split() == ["tests/test_cart.py::test_refuse"]
    finally:
        served.stop()


@pytest.mark.parametrize("name, body, error", [
    ("notes.txt", b"just some text", "not a coverage report"),
    ("cut.lcov", b"SF:/x/a.py\nDA:1,1\n", "no end_of_record"),
    ("bad.lcov", b"SF:a.py\nDA:one,1\nend_of_record\n", "malformed DA record"),
    ("bomb.xml", b'<?xml version="1.0"?><!DOCTYPE coverage [<!ENTITY a "aaaa">]>'
                 b"<coverage>&a;</coverage>", "entities"),
    ("empty.xml", b'<coverage line-rate="1"><packages/></coverage>', "no source files"),
    ("other.json", b'{"tests": []}', "not coverage.py"),
    ("broken.coverage", b"SQLite format 3\x00" + b"\x00" * 200, "not readable as coverage"),
])
def test_bad_reports_get_one_line_naming_the_file(tmp_path, name, body, error):
    path = tmp_path / name
    path.write_bytes(body)
    r = observatory("ingest", "coverage", str(path), "--project", "p", "--db",
                    str(tmp_path / "bad.duckdb"), "--json")
    result = json.loads(r.stdout)
    assert r.returncode == 1 and not result["ok"]
    assert result["error"].startswith(str(path)) and error in result["error"], result
    assert "\n" not in result["error"]
    with Store(tmp_path / "bad.duckdb", read_only=True) as s:
        assert s.sql("SELECT count(*) AS n FROM coverage_reports")["n"].item() == 0


def test_data_file_whose_sources_are_gone(repo, tmp_path):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    data = moved / ".coverage"
    data.write_bytes((repo / ".coverage").read_bytes())
    (repo / "shop" / "cart.py").rename(repo / "shop" / "cart.py.away")
    try:
        r = observatory("ingest", "coverage", str(data), "--project", "p", "--db",
                        str(tmp_path / "gone.duckdb"), "--json")
    finally:
        (repo / "shop" / "cart.py.away").rename(repo / "shop" / "cart.py")
    result = json.loads(r.stdout)
    assert result["ok"] and result["files"] == 1  # __init__.py is still there
    assert "1 measured file(s) skipped" in result["warnings"][0]


def test_patch_coverage_of_a_commit(repo, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(repo, work)
    cart = work / "shop" / "cart.py"
    cart.write_text(cart.read_text().replace(
        "subtotal -= subtotal * discount  # discounted",
        "subtotal = subtotal * (1 - discount)  # discounted")
        + "\n\ndef refund(amount):\n    return -amount  # never tested\n")
    run(work, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam",
        "change")
    run(work, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
        "no:observatory", "--cov=shop", "--cov-context=test", "--cov-report=", "tests")
    db = tmp_path / "patch.duckdb"
    assert ingest(work, db, ".coverage")[0]["ok"]
    # no --commit/--branch: the report's own checkout says which
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT commit_sha, branch FROM coverage_reports").fetchall() == [
        (run(work, "git", "rev-parse", "HEAD").strip(),
         run(work, "git", "branch", "--show-current").strip())]
    con.close()
    r = observatory("coverage", "patch", "--project", "shop", "--base", "HEAD~1", "--head",
                    "HEAD", "--repo", str(work), "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    lines = cart.read_text().splitlines()
    refund = next(i for i, t in enumerate(lines, 1) if "never tested" in t)
    assert [f["path"] for f in result["files"]] == ["shop/cart.py"]
    # changed statements: the discount line (run by test_discount), `def refund` (run at
    # import) and its body (never run)
    assert (result["statements"], result["covered"]) == (3, 2)
    assert result["files"][0]["missing"] == [[refund, refund]]
    text = observatory("coverage", "patch", "--project", "shop", "--base", "HEAD~1",
                       "--repo", str(work), "--db", str(db))
    assert "patch coverage HEAD~1..working tree: 2/3 (66.7%)" in text.stdout
    bad = observatory("coverage", "patch", "--project", "shop", "--base", "no-such-rev",
                      "--repo", str(work), "--db", str(db))
    assert bad.returncode == 1 and "no-such-rev" in bad.stderr
