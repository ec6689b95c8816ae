"""Failure clusters of real pytest runs: one bug is one cluster, two bugs are two.

Small projects are written to a temporary folder and run with the real pytest (JUnit in
long and native traceback form, report-log); the reports go into a real store and the
clusters are read with the query the Failure clusters view uses. Issue 21: a bug hit
through several classes made one cluster per class and attribute its message named.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from workbench.analysis.signatures import normalize_text, signature
from workbench.intake import LocalIntake
from workbench.models import TestAnalytics
from workbench.store import Store

from .conftest import write_tree

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

CALC = """\
def total(obj):
    return obj.a + obj.b
"""

REPORT = """\
from .calc import total


def summary(items):
    return [total(i) for i in items]
"""

# One bug (total assumes both attributes), hit through several classes and call paths, so
# that the messages name different classes, attributes and even templates.
ONE_BUG_TESTS = """\
import math
from types import SimpleNamespace

import pytest

from shapes.calc import total
from shapes.report import summary


class HypClass:
    def __init__(self):
        self.a = 1


class C:
    __slots__ = ("b",)

    def __init__(self):
        self.b = 2


class Point:
    def __init__(self, a):
        self.a = a


def test_hypothesis_like_class():
    assert total(HypClass()) == 3


def test_slotted_class():
    assert total(C()) == 3


@pytest.mark.parametrize("a", [1, 2, 3])
def test_points(a):
    assert total(Point(a)) == a + 1


def test_namespace():
    assert total(SimpleNamespace(b=1)) == 1


def test_module():
    assert total(math) == 0


def test_through_summary():
    assert summary([Point(1)]) == [2]


class TestMethods:
    def test_in_a_method(self):
        def helper():
            return Point(5)

        assert total(helper()) == 6


def test_passes():
    assert total(SimpleNamespace(a=1, b=2)) == 3
"""

# Two bugs on two lines of one function: a division by a count that can be zero, and a
# lookup of an item that may be missing.
STOCK = """\
PRICES = {"apple": 3, "pear": 4}


def unit_value(stock, item):
    per_unit = stock["total"] / stock["count"]
    return per_unit * PRICES[item]
"""

TWO_BUGS_TESTS = """\
import pytest

from shop.stock import unit_value



@pytest.mark.parametrize("total", [0, 10, 99])
def test_empty_stock(total):
    assert unit_value({"total": total, "count": 0}, "apple") == 0


@pytest.mark.parametrize("item", ["kiwi", "plum", "fig"])
def test_unknown_item(item):
    assert unit_value({"total": 10, "count": 5}, item) == 0


def test_known():
    assert unit_value({"total": 10, "count": 5}, "pear") == 8
"""


def run_pytest(root: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-W", "ignore", *args, "tests"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # tests failed, pytest ran


def ingest(store: Store, *reports: Path) -> None:
    intake = LocalIntake(store)
    for report in reports:
        assert intake.report(report.read_bytes(), str(report), {"project": "p"})["run_id"]


def clusters(store: Store):
    """The Failure clusters view's frame."""
    return TestAnalytics(store=store, window="all time").clusters()


@pytest.fixture(scope="module")
def one_bug(tmp_path_factory) -> dict[str, Path]:
    """The one-bug project run three ways: JUnit (long tracebacks, relative paths), JUnit
    with Python's own tracebacks (absolute paths) and report-log."""
    root = write_tree(tmp_path_factory.mktemp("one_bug"), {
        "shapes/__init__.py": "", "shapes/calc.py": CALC, "shapes/report.py": REPORT,
        "tests/__init__.py": "", "tests/test_shapes.py": ONE_BUG_TESTS,
    })
    out = {"long": root / "long.xml", "native": root / "native.xml", "log": root / "r.jsonl"}
    run_pytest(root, f"--junitxml={out['long']}", f"--report-log={out['log']}")
    run_pytest(root, f"--junitxml={out['native']}", "--tb=native")
    return out


def test_one_bug_through_many_classes_is_one_cluster(one_bug, tmp_path):
    with Store(tmp_path / "s.duckdb") as store:
        ingest(store, one_bug["long"])
        messages = store.sql("SELECT DISTINCT message FROM results WHERE signature IS NOT NULL")
        c = clusters(store)
    # The messages name different classes, attributes and even differ in template ...
    assert len(messages) >= 5, messages
    text = "\n".join(messages.message)
    assert "'HypClass' object has no attribute 'b'" in text
    assert "'C' object has no attribute 'a'" in text
    assert "module 'math' has no attribute 'a'" in text
    # ... but the bug is one: an AttributeError in total().
    assert len(c) == 1, c[["exception", "suspect", "normalized"]]
    row = c.iloc[0]
    assert row.exception == "AttributeError"
    assert row.suspect == "total (shapes/calc.py)"
    assert row.tests == row.failures == 9
    assert "HypClass" not in row.normalized and "<Q>" in row.normalized


def test_one_bug_is_one_cluster_whatever_report_carried_it(one_bug, tmp_path):
    """JUnit with long and with native tracebacks (absolute paths) and report-log: three
    runs, still one cluster."""
    with Store(tmp_path / "s.duckdb") as store:
        ingest(store, one_bug["long"], one_bug["native"], one_bug["log"])
        c = clusters(store)
    assert len(c) == 1, c[["exception", "suspect", "normalized"]]
    assert (c.iloc[0].runs, c.iloc[0].failures, c.iloc[0].tests) == (3, 27, 9)


def test_two_bugs_in_one_function_are_two_clusters(tmp_path):
    root = write_tree(tmp_path / "shop", {
        "shop/__init__.py": "", "shop/stock.py": STOCK,
        "tests/__init__.py": "", "tests/test_stock.py": TWO_BUGS_TESTS,
    })
    run_pytest(root, f"--junitxml={root / 'j.xml'}")
    with Store(tmp_path / "s.duckdb") as store:
        ingest(store, root / "j.xml")
        c = clusters(store)
    assert len(c) == 2, c[["exception", "suspect", "normalized"]]
    by_type = {r.exception: r for r in c.itertuples()}
    assert set(by_type) == {"ZeroDivisionError", "KeyError"}
    assert {r.suspect for r in c.itertuples()} == {"unit_value (shop/stock.py)"}
    assert [t.split("[")[0] for t in by_type["ZeroDivisionError"].affected_tests] == [
        "tests.test_stock::test_empty_stock"] * 3
    assert [t.split("[")[0] for t in by_type["KeyError"].affected_tests] == [
        "tests.test_stock::test_unknown_item"] * 3


def test_a_bug_stays_one_cluster_when_lines_move(tmp_path):
    """No line number in the key: code added above the bug does not split its cluster."""
    root = write_tree(tmp_path / "p", {
        "shapes/__init__.py": "", "shapes/calc.py": CALC, "shapes/report.py": REPORT,
        "tests/__init__.py": "", "tests/test_shapes.py": ONE_BUG_TESTS,
    })
    run_pytest(root, f"--junitxml={root / 'before.xml'}")
    (root / "shapes" / "calc.py").write_text('"""Sums."""\n\nZERO = 0\n\n\n' + CALC)
    run_pytest(root, f"--junitxml={root / 'after.xml'}")
    assert "calc.py:2: AttributeError" in (root / "before.xml").read_text()
    assert "calc.py:7: AttributeError" in (root / "after.xml").read_text()
    with Store(tmp_path / "s.duckdb") as store:
        ingest(store, root / "before.xml", root / "after.xml")
        c = clusters(store)
    assert len(c) == 1 and c.iloc[0].runs == 2


def test_stored_failures_are_rekeyed_when_the_store_is_upgraded(one_bug, tmp_path):
    """A store written before schema 14 held one signature per message (the old key).
    Opening it re-keys every stored failure, in SQL, to what ingest gives it now."""
    path = tmp_path / "old.duckdb"
    with Store(path) as store:
        ingest(store, one_bug["long"], one_bug["native"])
        now = store.sql("SELECT signature, count(*) AS n FROM results "
                        "WHERE signature IS NOT NULL GROUP BY ALL")
    assert len(now) == 1
    # Make it the file the code before schema 14 left: a signature per exception, message
    # and test (finer than the old key, which split by message), the message normalised
    # the old way (volatile parts only).
    con = duckdb.connect(str(path))
    rows = con.execute("SELECT DISTINCT r.test_id, r.message, r.details, "
                       "s.exception, s.suspect FROM results r JOIN signatures s "
                       "USING (signature)").fetchall()
    con.execute("DELETE FROM signatures")
    for test_id, message, details, exception, suspect in rows:
        first = next((ln for ln in message.splitlines() if ln.strip()), "")
        old = hashlib.blake2b(f"{exception}{first}{test_id}".encode(), digest_size=8).hexdigest()
        con.execute("INSERT OR IGNORE INTO signatures VALUES (?, ?, ?, ?)",
                    [old, exception, normalize_text(first)[:240], suspect])
        con.execute("UPDATE results SET signature = ? WHERE test_id = ? AND message = ? "
                    "AND details = ?", [old, test_id, message, details])
    con.execute("DELETE FROM schema_version WHERE version >= 14")
    for table in ("workflow_steps", "workflow_runs", "workflows",  # (schema 15's)
                  "console_history",  # (16's)
                  "retention_policies", "issued_tokens",  # (17's, 18's)
                  "otlp_inbox"):  # (19's)
        con.execute(f"DROP TABLE {table}")
    con.execute("DROP SEQUENCE otlp_inbox_ids")
    before = con.execute("SELECT count(DISTINCT signature) FROM results").fetchone()[0]
    con.close()
    assert before >= 5

    with Store(path) as store:  # opened read-write: migrations run
        assert store.schema_version >= 14
        got = store.sql("SELECT message, error_type, details, signature FROM results "
                        "WHERE signature IS NOT NULL")
        sigs = store.sql("SELECT * FROM signatures")
        c = clusters(store)
    # Every failure carries the signature ingest gives it today; one cluster again.
    for r in got.itertuples():
        assert r.signature == signature(r.message, r.error_type, r.details).signature
    assert set(got.signature) == set(sigs.signature) == set(now.signature)
    assert len(c) == 1 and c.iloc[0].failures == 18
    templates = {signature(r.message, None, r.details).normalized for r in got.itertuples()}
    assert c.iloc[0].normalized in templates
