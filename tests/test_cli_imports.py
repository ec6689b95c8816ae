"""`observatory ingest tests` imports only what it uses (start-up is most of a small ingest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: Libraries an ingest into a file never needs: the dashboards' stack, pandas (pyarrow
#: imports it on its first ``pa.array`` of a Python list: workbench.ingest.arrow), and the
#: HTTP client (only for a server holding the file).
UNUSED = ("panel", "bokeh", "holoviews", "pandas", "httpx")

_RUN = f"""
import json, sys
from workbench.cli import main
code = main(sys.argv[1:])
print(json.dumps(dict(code=code, loaded=[m for m in {UNUSED!r} if m in sys.modules])))
"""

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="s" tests="3" timestamp="2026-01-01T00:00:00">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_p[1]" time="0.2"/>
<testcase classname="tests.test_a" name="test_bad" time="0.3">
<failure message="ValueError: no" type="ValueError"><![CDATA[Traceback (most recent call last):
  File "/ci/src/app/mod.py", line 3, in f
    raise ValueError("no")
ValueError: no]]></failure></testcase>
</testsuite></testsuites>
"""


def test_ingest_tests_imports_no_dashboard_stack_pandas_or_http_client(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    env = {k: v for k, v in os.environ.items() if k not in ("OBSERVATORY_URL", "OBSERVATORY_DB")}
    out = subprocess.run(
        [sys.executable, "-c", _RUN, "ingest", "tests", str(report),
         "--db", str(tmp_path / "new.duckdb"), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=True)
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[0])["tests"] == 3  # (the ingest itself worked)
    assert json.loads(lines[-1]) == {"code": 0, "loaded": []}
