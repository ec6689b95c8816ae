"""Failure signatures: the same cause groups, different causes don't."""

from __future__ import annotations

from workbench.analysis.signatures import (
    MESSAGE_CHARS,
    cluster_key,
    frames,
    normalize_message,
    normalize_names,
    normalize_text,
    signature,
)

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


# -- one bug, one cluster (issue 21) ------------------------------------------------------

LONG_ENTRY = """    def test_{test}(self):
        def helper():
            return {cls}()
>       assert total(helper()) == 3

tests/test_shapes.py:{line}:
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _

obj = <tests.test_shapes.{cls} object at 0x7f3b2c1d9{line}0>

    def total(obj):
>       return obj.a + obj.b
E       {exc}: {message}

shapes/calc.py:2: {exc}"""


def test_messages_naming_different_names_have_one_template():
    same = [
        "AttributeError: 'HypClass' object has no attribute 'b'",
        "AttributeError: 'C' object has no attribute 'a'",
        "AttributeError: 'tests.strategies.HypClass' object has no attribute 'coords'",
    ]
    assert {normalize_message(m) for m in same} == {
        "AttributeError: <Q> object has no attribute <Q>"}
    assert normalize_message("TypeError: C.__init__() got an unexpected keyword argument 'z'") \
        == normalize_message("TypeError: total() got an unexpected keyword argument 'y'") \
        == "TypeError: <ID>() got an unexpected keyword argument <Q>"
    assert normalize_message("ValueError: bad <shop.Cart object at 0x7f00aa12> in /a/b/c.py:12") \
        == "ValueError: bad <OBJ> in <PATH>:<N>"
    assert normalize_message("TypeError: cart.items.map is not a function") \
        == normalize_message("TypeError: x is not a function") == "TypeError: <ID> is not a function"
    # An apostrophe inside a word opens no quote; placeholders survive a second pass.
    text = normalize_message("can't read 'config.toml': don't know \"why\"")
    assert text == "can't read <Q>: don't know <Q>"
    assert normalize_names(text) == text


def test_one_exception_at_one_frame_is_one_signature_whatever_the_message():
    sigs = [
        signature(f"{exc}: {message}", None,
                  LONG_ENTRY.format(test=test, cls=cls, line=line, exc=exc, message=message))
        for test, cls, line, exc, message in [
            ("a", "HypClass", 10, "AttributeError", "'HypClass' object has no attribute 'b'"),
            ("b", "C", 20, "AttributeError", "'C' object has no attribute 'a'"),
            ("c", "Point", 30, "AttributeError", "module 'math' has no attribute 'a'"),
        ]
    ]
    assert len({s.signature for s in sigs}) == 1
    assert {s.suspect for s in sigs} == {"total (shapes/calc.py)"}
    assert sigs[0].exception == "AttributeError"
    # Another kind of failure at the same line of the same function is another bug.
    other = signature("TypeError: unsupported operand type(s) for +: 'int' and 'str'", None,
                      LONG_ENTRY.format(test="d", cls="Str", line=40, exc="TypeError",
                                        message="unsupported operand type(s) for +"))
    assert other.suspect == sigs[0].suspect and other.signature != sigs[0].signature


def test_the_suspect_file_counts_by_name_not_by_folder():
    """Native tracebacks print absolute paths, pytest's own relative ones: same key."""
    native = ('Traceback (most recent call last):\n'
              '  File "/home/ci/w/tests/test_shapes.py", line 9, in test_a\n'
              '    total(C())\n'
              '  File "/home/ci/w/shapes/calc.py", line 2, in total\n'
              '    return obj.a + obj.b\n'
              "AttributeError: 'C' object has no attribute 'a'")
    a = signature("AttributeError: 'C' object has no attribute 'a'", None, native)
    b = signature("AttributeError: 'HypClass' object has no attribute 'b'", None,
                  LONG_ENTRY.format(test="a", cls="HypClass", line=10, exc="AttributeError",
                                    message="'HypClass' object has no attribute 'b'"))
    assert a.suspect == "total (/home/ci/w/shapes/calc.py)"
    assert a.signature == b.signature
    # A different module's function of the same name is another place.
    moved = native.replace("shapes/calc.py", "shapes/other.py")
    assert signature(a.normalized, None, moved).signature != a.signature


def test_without_a_frame_the_message_template_decides():
    a = signature("KeyError: 'pear'", "KeyError", None)
    b = signature("KeyError: 'kiwi'", "KeyError", None)
    c = signature("connection refused by 'db'", "KeyError", None)
    assert a.suspect is None and a.signature == b.signature != c.signature
    assert signature("KeyError: 'pear'", "IndexError", None).signature != a.signature


def test_standard_library_and_generated_code_are_not_suspects():
    tb = ('Traceback (most recent call last):\n'
          '  File "/src/app/tests/test_load.py", line 5, in test_load\n'
          '    load("x")\n'
          '  File "/src/app/app/config.py", line 8, in load\n'
          '    return Settings(**json.loads(text))\n'
          '  File "<attrs generated init app.config.Settings>", line 3, in __init__\n'
          '  File "/root/.pyenv/versions/3.11.7/lib/python3.11/json/__init__.py", line 346, '
          'in loads\n'
          '  File "C:\\Python311\\Lib\\json\\decoder.py", line 337, in decode\n'
          '  File "/usr/local/lib/python3.12/json/decoder.py", line 355, in raw_decode\n'
          'json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)')
    s = signature("Expecting value: line 1 column 1 (char 0)", None, tb)
    assert s.suspect == "load (/src/app/app/config.py)"
    assert s.exception == "json.decoder.JSONDecodeError"


def test_a_long_pytest_entry_is_named_by_its_own_def():
    """A function defined inside a test does not name the test's frame."""
    details = ("    def test_slots_being_used():\n"
               "        class C:\n"
               "            def staticmethod():\n"
               "                return 1\n"
               ">       assert C.x == 2\n"
               "E       AssertionError: assert 1 == 2\n\n"
               "tests/test_slots.py:12: AssertionError")
    assert signature("assert 1 == 2", None, details).suspect == \
        "test_slots_being_used (tests/test_slots.py)"


SAMPLES = [  # (exception, suspect, normalized as the code before schema 14 stored it)
    ("AttributeError", "total (/home/ci/w/shapes/calc.py)",
     "AttributeError: 'HypClass' object has no attribute 'b'"),
    ("AttributeError", "total (shapes/calc.py)", "AttributeError: 'C' object has no attribute 'a'"),
    ("KeyError", None, "KeyError: 'pear'"),
    ("KeyError", None, "KeyError: 'kiwi'"),
    (None, "render (C:\\Program Files (x86)\\app\\view.js)", "boom 'x' in a/b/c.js:<N>"),
    (None, None, ""),
    ("ValueError", None, "naïve ünïcode 'é' — <shop.Cart object at <ADDR>> x.y() `z` \"w's\""),
    ("TypeError", "f (a.py)", "x" * 300),
    ("java.lang.ClassCastException", "com.acme.Ledger.apply (Ledger.java)",
     "class java.lang.Integer cannot be cast to class java.lang.String"),
    ("TypeError", None, "cart.items.map is not a function; y is undefined (z is null)"),
    ("Error", None, "can't open \"it's\" or 'b''c' or ``"),
]


def test_the_store_rekeys_stored_signatures_as_ingest_keys_new_ones():
    """Schema 14's SQL (DuckDB's RE2) and ingest's Python give every stored failure the
    same key: NAME_RULES and SUSPECT_PARTS read alike in both, and so does the key."""
    import duckdb

    from workbench.store.schema import MIGRATIONS

    (statements,) = [s for v, s in MIGRATIONS if v == 14]
    con = duckdb.connect()
    con.execute("CREATE TABLE results (signature VARCHAR)")
    con.execute("CREATE TABLE signatures (signature VARCHAR PRIMARY KEY, exception VARCHAR,"
                " normalized VARCHAR, suspect VARCHAR)")
    for i, (exc, suspect, normalized) in enumerate(SAMPLES):
        con.execute("INSERT INTO signatures VALUES (?, ?, ?, ?)",
                    [f"old{i}", exc, normalized, suspect])
        con.execute("INSERT INTO results VALUES (?)", [f"old{i}"])
    con.execute("INSERT INTO results VALUES (NULL)")  # a passed test: no signature
    for sql in statements:
        con.execute(sql)
    got = [r[0] for r in con.execute("SELECT signature FROM results").fetchall()]
    want = []
    for exc, suspect, normalized in SAMPLES:
        text = normalize_names(normalized[:MESSAGE_CHARS])[:MESSAGE_CHARS]
        want.append(cluster_key(exc, suspect, text))
    assert got == [*want, None]
    # Same key, one row; its text is the new normalisation.
    stored = dict(con.execute("SELECT signature, normalized FROM signatures").fetchall())
    assert set(stored) == set(want) and len(stored) == len(SAMPLES) - 2
    assert stored[want[2]] == "KeyError: <Q>"
    assert "signature_rekey" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}
