"""Failure signatures: the same cause groups, different causes don't."""

from __future__ import annotations

from workbench.analysis.signatures import frames, normalize_text, signature

PY_TB = """Traceback (most recent call last):
  File "/home/ci/w/tests/test_orders.py", line {line}, in {test}
    repo.fetch(order_id={oid})
  File "/home/ci/w/src/shop/db/pool.py", line {line2}, in fetch
    conn = self._acquire()
  File "/home/ci/.venv/lib/python3.12/site-packages/psycopg/pool.py", line 812, in getconn
    raise e
ConnectionResetError: [Errno 104] Connection reset by peer (127.0.0.1:{port})"""


def test_normalize_strips_volatile_parts():
    text = (
        "\x1b[31mError\x1b[0m at 2026-01-02T03:04:05.123Z id 123e4567-e89b-12d3-a456-426614174000 "
        "ptr 0x7ffde4a1 in /tmp/pytest-of-ci/pytest-3/test_x0/file.txt after 12.5s (12:01:02)"
    )
    assert normalize_text(text) == "Error at <TS> id <UUID> ptr <ADDR> in <TMP> after <N>s (<TIME>)"


def test_same_cause_from_different_tests_and_runs_groups_together():
    a = signature(
        "ConnectionResetError: reset (127.0.0.1:41000)",
        None,
        PY_TB.format(line=10, test="test_a", oid=1, line2=55, port=41000),
    )
    b = signature(
        "ConnectionResetError: reset (127.0.0.1:52777)",
        None,
        PY_TB.format(line=99, test="test_b", oid=77, line2=57, port=52777),
    )
    assert a.signature == b.signature
    assert a.exception == "ConnectionResetError"
    assert a.suspect == "fetch (/home/ci/w/src/shop/db/pool.py)"


def test_assertions_in_different_tests_do_not_group():
    a = signature(
        "assert 1 == 2", None, "tests/test_x.py:5: in test_one\nE   AssertionError: assert 1 == 2"
    )
    b = signature(
        "assert 3 == 4", None, "tests/test_x.py:9: in test_two\nE   AssertionError: assert 3 == 4"
    )
    assert a.signature != b.signature
    assert a.exception == b.exception == "AssertionError"


def test_different_exceptions_do_not_group():
    a = signature("boom", "ValueError", None)
    b = signature("boom", "KeyError", None)
    assert a.signature != b.signature


def test_java_frames_innermost_first_and_framework_frames_dropped():
    trace = (
        "java.lang.NullPointerException: account is null\n"
        "\tat com.acme.Ledger.apply(Ledger.java:41)\n"
        "\tat com.acme.LedgerTest.posts(LedgerTest.java:12)\n"
        "\tat java.base/jdk.internal.reflect.Method.invoke(Method.java:580)\n"
        "\tat org.junit.platform.commons.util.ReflectionUtils.invokeMethod(ReflectionUtils.java:725)"
    )
    s = signature("account is null", "java.lang.NullPointerException", trace)
    assert s.suspect == "com.acme.Ledger.apply (Ledger.java)"
    assert s.exception == "java.lang.NullPointerException"
    assert frames(trace)[-1] == ("Ledger.java", "com.acme.Ledger.apply")


def test_javascript_and_dotnet_frames():
    js = "Error: expected\n    at renderPrice (src/lib/price.ts:10:7)\n    at Object.<anonymous> (src/a.test.ts:5:3)"
    assert signature("expected", None, js).suspect == "renderPrice (src/lib/price.ts)"
    cs = "System.Exception: x\n   at Shop.Cart.Add(Item i) in /src/Shop/Cart.cs:line 42"
    assert signature("x", None, cs).suspect == "Shop.Cart.Add (/src/Shop/Cart.cs)"


def test_empty_failure_still_has_a_signature():
    s = signature(None, None, None)
    assert s.signature and s.exception is None and s.suspect is None
