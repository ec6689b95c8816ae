"""Synthetic JUnit reports for the benchmarks: realistic names, 5% failures with tracebacks."""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import quoteattr

TRACE = """Traceback (most recent call last):
  File "/ci/work/tests/test_mod{m}.py", line {l}, in test_case_{i}
    result = client.call(order={o})
  File "/ci/work/src/app/client{c}.py", line {l2}, in call
    raise ConnectionError("reset by peer on port {p}")
ConnectionError: reset by peer on port {p}"""


def junit(cases: int, seed: int, fail_rate: float = 0.05) -> bytes:
    """One report with ``cases`` test cases."""
    rng = random.Random(seed)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n'
        f'<testsuite name="bench" tests="{cases}" timestamp="2026-01-01T00:00:00">\n'
    ]
    for i in range(cases):
        m = i // 200
        name = f"test_case_{i}" + (f"[p{i % 7}]" if i % 5 == 0 else "")
        t = f"{rng.random() * 0.5:.4f}"
        if rng.random() < fail_rate:
            body = TRACE.format(
                m=m,
                l=rng.randint(10, 400),
                i=i,
                o=rng.randint(1, 10**6),
                c=rng.randint(0, 20),
                l2=rng.randint(10, 200),
                p=rng.randint(1000, 65000),
            )
            out.append(
                f'<testcase classname="tests.test_mod{m}" name={quoteattr(name)} time="{t}">'
                f'<failure message="ConnectionError: reset by peer" type="ConnectionError">'
                f"<![CDATA[{body}]]></failure></testcase>\n"
            )
        else:
            out.append(
                f'<testcase classname="tests.test_mod{m}" name={quoteattr(name)} time="{t}"/>\n'
            )
    out.append("</testsuite>\n</testsuites>\n")
    return "".join(out).encode()


def write_set(folder: Path, files: int, cases: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(files):
        p = folder / f"report-{n:04d}.xml"
        p.write_bytes(junit(cases, seed=n))
        paths.append(p)
    return paths
