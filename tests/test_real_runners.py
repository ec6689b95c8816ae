"""Reports written by the real runners on this machine, checked against what the runner said.

pytest (JUnit xunit1/xunit2, --tb long/short, report-log, the live plugin) and Node's
built-in runner (``node --test --test-reporter=junit``) produce the reports here; nothing
is hand-written, so a reader that mis-reads a real runner's shape fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.ingest import IngestError, parse_bytes, parse_file
from workbench.store import Store

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

CART = """
PRICES = {"apple": 3}


def price(item):
    return PRICES[item]


def total(items):
    return sum(price(i) for i in items)
"""

TESTS = """
import pytest
from shop import cart


@pytest.fixture
def db():
    raise ConnectionError("database at 10.0.0.1:5432 refused")


def test_missing_price():
    assert cart.price("pear") == 1


def test_total_through_generator():
    assert cart.total(["apple", "pear"]) == 3


def test_ok():
    assert cart.total(["apple"]) == 3


def test_db(db):
    pass


def test_assert():
    assert 1 == 2


@pytest.mark.skip(reason="later")
def test_skip():
    pass


@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n != 2
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "cart.py").write_text(CART)
    (root / "tests").mkdir()
    (root / "tests" / "test_cart.py").write_text(TESTS)
    return root


def run_pytest(root: Path, *args: str) -> dict[str, int]:
    """Run pytest on the shop project; return pytest's own summary counts."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-W", "ignore", *args],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    last = proc.stdout.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)",
                                                     last)}
    counts["errors"] = counts.pop("error", 0) + counts.pop("errors", 0)
    assert counts, proc.stdout + proc.stderr
    return counts


def expect(counts: dict[str, int]) -> dict[str, int]:
    return {
        "tests": sum(counts.values()),
        "passed": counts.get("passed", 0),
        "failed": counts.get("failed", 0),
        "errors": counts.get("errors", 0),
        "skipped": counts.get("skipped", 0),
    }


def failures(run) -> dict[str, tuple]:
    """test id → (error_type, signature, suspect) of each failing test."""
    data, sigs = run.columns()
    out = {}
    for i, tid in enumerate(data["test_id"]):
        if data["signature"][i]:
            s = sigs[data["signature"][i]]
            out[tid] = (data["error_type"][i], s[0], s[3])
    return out


@pytest.mark.parametrize("family,tb", [("xunit1", "long"), ("xunit2", "long"),
                                       ("xunit2", "short"), ("legacy", "auto")])
def test_pytest_junit_counts_match_pytest(shop, tmp_path, family, tb):
    out = tmp_path / "junit.xml"
    said = run_pytest(shop, f"--junitxml={out}", "-o", f"junit_family={family}", f"--tb={tb}")
    run = parse_file(out)
    assert run.counts() == expect(said)


def test_pytest_reportlog_counts_match_pytest(shop, tmp_path):
    pytest.importorskip("pytest_reportlog", reason="pytest-reportlog is in the test extra")
    out = tmp_path / "log.jsonl"
    said = run_pytest(shop, f"--report-log={out}")
    assert parse_file(out).counts() == expect(said)


def test_one_failure_one_signature_whatever_carried_it(shop, tmp_path):
    """JUnit, report-log and the live plugin give each failure the same signature,
    exception type and suspect frame; the suspect is the project frame that raised."""
    pytest.importorskip("pytest_reportlog", reason="pytest-reportlog is in the test extra")
    junit, log, db = tmp_path / "j.xml", tmp_path / "r.jsonl", tmp_path / "p.duckdb"
    run_pytest(shop, f"--junitxml={junit}", f"--report-log={log}", f"--observatory-db={db}")
    by_junit = failures(parse_file(junit))
    by_log = failures(parse_file(log))
    with Store(db) as store:
        rows = store.sql(
            "SELECT r.test_id, r.error_type, r.signature, s.suspect FROM results r "
            "JOIN signatures s USING (signature) WHERE r.signature IS NOT NULL"
        )
    by_plugin = {r.test_id: (r.error_type, r.signature, r.suspect) for r in rows.itertuples()}
    assert by_junit == by_log == by_plugin
    assert by_junit["tests.test_cart::test_missing_price"][0] == "KeyError"
    assert by_junit["tests.test_cart::test_missing_price"][2] == "price (shop/cart.py)"
    # Reached through a generator, the raising function is still the suspect.
    assert by_junit["tests.test_cart::test_total_through_generator"][2] == "price (shop/cart.py)"
    # The setup error: pytest's JUnit writes 'failed on setup with "..."'; same cluster.
    assert by_junit["tests.test_cart::test_db"][0] == "ConnectionError"
    assert by_junit["tests.test_cart::test_db"][2] == "db (tests/test_cart.py)"
    assert by_junit["tests.test_cart::test_assert"][0] == "AssertionError"


NODE_TESTS = """
import test, { describe, it } from 'node:test';
import assert from 'node:assert';

test('top ok', () => {});
test('top fail', () => { assert.strictEqual(1, 2); });
test.skip('skipped one', () => {});
test.todo('todo one', () => {});
describe('suite A', () => {
  it('same name', () => {});
  it('nested fail', () => { throw new TypeError('bad type'); });
  describe('inner', () => { it('same name', () => {}); });
});
"""


def test_node_test_runner_junit(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (tmp_path / "a.test.mjs").write_text(textwrap.dedent(NODE_TESTS))
    subprocess.run([node, "--test", "--test-reporter=junit",
                    "--test-reporter-destination=out.xml", "--test-reporter=tap",
                    "--test-reporter-destination=out.tap", "a.test.mjs"],
                   cwd=tmp_path, capture_output=True, timeout=120)
    tap = (tmp_path / "out.tap").read_text()
    said = {k: int(v) for k, v in re.findall(r"^# (\w+) (\d+)$", tap, re.M)}
    run = parse_file(tmp_path / "out.xml")
    counts = run.counts()
    assert counts["tests"] == said["tests"] == 7
    assert counts["passed"] == said["pass"]
    assert counts["failed"] == said["fail"]
    assert counts["skipped"] == said["skipped"] + said["todo"]
    assert run.warnings == []  # no false "header says 3 tests" from the one nested suite
    # Two tests named alike in different describe() blocks stay two tests.
    assert {"suite A::same name", "suite A > inner::same name"} <= set(run.test_ids())
    types = {tid: t for tid, (t, _, _) in failures(run).items()}
    assert types == {"top fail": "AssertionError", "suite A::nested fail": "TypeError"}


def test_cases_under_testsuites_are_never_dropped():
    """A report whose cases sit directly under <testsuites> (Node's shape) keeps them all."""
    xml = (b'<testsuites><testcase name="a" classname="x"/><testsuite name="s">'
           b'<testcase name="b" classname="x"/></testsuite><testcase name="c"/></testsuites>')
    assert parse_bytes(xml, "r.xml").counts()["tests"] == 3


def test_cases_a_parser_cannot_read_are_an_error_not_ok():
    """Whatever parser read it, a document holding test case elements is never stored
    as fewer tests than it holds (a third-party parser that reads nothing, say)."""
    from workbench.ingest import Parser

    class Lazy(Parser):
        format = "lazy-test-format"

        @classmethod
        def sniff(cls, head, name):
            return False

        def parse(self, data, source):
            run = self.new_run(data, source)
            run.expected_tests = data.count(b"<testcase")
            return run

    try:
        xml = b'<testsuites><testcase name="a"/><testcase name="b"/></testsuites>'
        with pytest.raises(IngestError, match=r"^r.xml: holds 2 test cases but only 0"):
            parse_bytes(xml, "r.xml", fmt="lazy-test-format")
        Lazy.parse = lambda self, data, source: self.new_run(data, source)
        with pytest.raises(IngestError, match="^r.xml: holds test case elements"):
            parse_bytes(xml, "r.xml", fmt="lazy-test-format")
    finally:
        Parser.registry.pop("lazy-test-format")
