"""A big JUnit report is stored as it is read (chunks inserted inside one transaction,
attempts, final flags and counts computed in SQL): what is stored is exactly what the
whole-report path stores, a bad report stores nothing, and memory does not grow with it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from workbench.ingest import IngestError, base, junit
from workbench.intake import LocalIntake
from workbench.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from gen import junit as generate  # noqa: E402

RESULT_COLS = ("test_id, suite, classname, name, params, file, attempt, final, outcome, "
               "duration_s, message, error_type, details, signature")


def _report() -> bytes:
    """3,000 generated cases (5% failing with tracebacks), one test retried twice, one
    skipped, one erroring."""
    data = generate(3000, seed=11)
    first = data[data.index(b"<testcase"):data.index(b"<testcase", data.index(b"<testcase") + 1)]
    extra = (first.replace(b'time="', b'time="1') + first
             + b'<testcase classname="x.y" name="skips"><skipped message="later"/></testcase>'
             + b'<testcase classname="x.y" name="errs"><error type="OSError">disk</error>'
             b'</testcase>')
    return data.replace(b"</testsuite>", extra + b"</testsuite>")


def _stored(store: Store, run_id: str) -> tuple[list, list]:
    def rows(df):  # NaN is not equal to itself: compare missing values as None
        return df.astype(object).where(df.notna(), None).values.tolist()

    results = store.sql(f"SELECT {RESULT_COLS} FROM results WHERE run_id = ? "
                        "ORDER BY test_id, attempt", [run_id])
    run = store.sql("SELECT tests, passed, failed, errors, skipped, attempts, header_tests, "
                    "warnings, format, source FROM runs WHERE run_id = ?", [run_id])
    return rows(results), rows(run)


def test_a_streamed_report_is_stored_exactly_as_a_whole_one(tmp_path, monkeypatch):
    data = _report()
    with Store(tmp_path / "whole.duckdb") as store:
        whole = LocalIntake(store, ci_env={}).report(data, "r.xml", {"project": "p"})
        expected = _stored(store, whole["run_id"])
    monkeypatch.setattr(junit, "STREAM_BYTES", 0)
    monkeypatch.setattr(base, "CHUNK_ROWS", 700)
    monkeypatch.setattr(junit, "CHUNK_ROWS", 700)
    from workbench.ingest import streams

    assert streams(data, "r.xml")
    with Store(tmp_path / "streamed.duckdb") as store:
        intake = LocalIntake(store, ci_env={})
        streamed = intake.report(data, "r.xml", {"project": "p"})
        assert streamed == whole  # the same summary: counts, warnings, run id
        assert streamed["tests"] == 3002 and streamed["errors"] == 1
        assert _stored(store, streamed["run_id"]) == expected
        again = intake.submit_report(data, "r.xml", {"project": "p"}).result()
        assert again["duplicate"] and again["tests"] == 3002


def test_a_bad_streamed_report_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(junit, "STREAM_BYTES", 0)
    monkeypatch.setattr(base, "CHUNK_ROWS", 500)
    monkeypatch.setattr(junit, "CHUNK_ROWS", 500)
    data = _report()
    cut = data[: len(data) * 2 // 3]  # well past the first chunks, then cut off
    with Store(tmp_path / "s.duckdb") as store:
        intake = LocalIntake(store, ci_env={})
        with pytest.raises(IngestError, match="not well-formed"):
            intake.report(cut, "cut.xml", {"project": "p"})
        result = intake.submit_report(cut, "cut.xml", {"project": "p"}).result()
        assert not result["ok"] and "not well-formed" in result["error"]
        assert store.sql("SELECT count(*) AS n FROM results").n[0] == 0
        assert store.sql("SELECT count(*) AS n FROM runs").n[0] == 0


def test_a_big_report_file_is_mapped_and_stored_the_same(tmp_path, monkeypatch):
    """A big report file is mapped, not read (its pages are given back behind the parser):
    stored exactly as the same bytes in memory; a big file of another format is read whole
    for its parser."""
    import mmap

    from workbench.ingest import read_report

    data = _report()
    path = tmp_path / "big.xml"
    path.write_bytes(data)
    with Store(tmp_path / "bytes.duckdb") as store:
        expected_summary = LocalIntake(store, ci_env={}).report(data, str(path),
                                                                 {"project": "p"})
        expected = _stored(store, expected_summary["run_id"])
    monkeypatch.setattr(junit, "STREAM_BYTES", 1024)
    mapped = read_report(path)
    assert isinstance(mapped, mmap.mmap) and len(mapped) == len(data)
    with Store(tmp_path / "mapped.duckdb") as store:
        result = LocalIntake(store, ci_env={}).submit_file(path, {"project": "p"}).result()
        assert result["ok"] and result["run_id"] == expected_summary["run_id"]
        assert _stored(store, result["run_id"]) == expected

        ctrf = tmp_path / "big.json"
        ctrf.write_text('{"results": {"tool": {"name": "jest"}, "summary": {"tests": 1}, '
                        '"tests": [{"name": "t", "status": "passed", "duration": 5}]}}'
                        + " " * 2048)
        assert isinstance(read_report(ctrf), mmap.mmap)
        intake = LocalIntake(store, ci_env={})
        pending = intake.submit_file(ctrf, {"project": "p"})
        intake.flush()  # (small runs are batched until a flush)
        other = pending.result(30)
        assert other["ok"] and other["tests"] == 1, other


def test_a_big_upload_is_inflated_to_a_file_not_to_memory():
    """A gzip body that inflates past the spool size is written to a temporary file and
    handed on mapped, every member decoded; trailing data and the size limit still refuse."""
    import gzip
    import mmap

    from workbench.server.bodies import SPOOL_BYTES, BodyError, decode

    part = (b"<testcase name='t'/>" * (SPOOL_BYTES // 20 + 1000))
    body = gzip.compress(part, 1) + gzip.compress(b"<end/>", 1)
    out = decode(body, "gzip", limit=4 * SPOOL_BYTES)
    assert isinstance(out, mmap.mmap)
    assert len(out) == len(part) + 6 and out[-6:] == b"<end/>" and out[:20] == part[:20]
    with pytest.raises(BodyError, match="trailing data"):
        decode(body + b"junk", "gzip", limit=4 * SPOOL_BYTES)
    with pytest.raises(BodyError, match="over the") as err:
        decode(body, "gzip", limit=SPOOL_BYTES)
    assert err.value.status == 413
