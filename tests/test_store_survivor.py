"""The writer is a survivor (issue 20, finding 2): a failed commit fails that batch's callers
with :class:`StoreWriteError`, the writer thread lives, :meth:`Store.health` says ``error``
(with the reason) until a write succeeds again, and :meth:`Store.close` ends within its grace.

Real failures on a real file, no mocks and no privileges:

- **disk full**: after a checkpoint DuckDB opens the write-ahead log anew on the next write;
  the test puts ``<db>.wal`` there as a symlink to ``/dev/full`` (every write: ENOSPC, what a
  full disk answers) and removes it to give the disk back. DuckDB keeps the descriptor it
  opened, so recovering means reopening the file: the store's own job.
- **fatal checkpoint**: ``RLIMIT_FSIZE`` (with SIGXFSZ ignored) at the file's current size
  makes DuckDB's automatic checkpoint fail with EFBIG, and DuckDB then invalidates the whole
  database ("database has been invalidated because of a previous fatal error"), reads too.
- **a real full file system**: a 32 MiB tmpfs filled with a ballast file, then emptied.
  Mounting needs CAP_SYS_ADMIN (root on these machines has it): that test alone is skipped,
  with the reason, where ``mount`` is refused.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import resource
import signal
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from workbench.store import Store, StoreWriteError

from .conftest import fill

BEFORE = [f"before-{i}" for i in range(5)]


def signatures(store: Store) -> set[str]:
    return set(store.sql("SELECT signature FROM signatures")["signature"])


def insert(name: str, calls: dict[str, int] | None = None):
    """A write of one signature row (and one run row: a batch touches two tables)."""

    def fn(cur):
        if calls is not None:
            calls[name] = calls.get(name, 0) + 1
        cur.execute("INSERT INTO signatures (signature) VALUES (?)", [name])
        cur.execute("INSERT INTO runs (run_id, project, started_at) VALUES (?, 'p', now())",
                    [name])
        return name

    return fn


def hold_writer(store: Store) -> threading.Event:
    """Keep the writer busy until the returned gate is set, so what is submitted meanwhile
    lands in one batch."""
    gate, started = threading.Event(), threading.Event()
    store.submit(lambda cur: (started.set(), gate.wait(30)), topic=None)
    assert started.wait(10)
    return gate


@contextmanager
def wal_on_dev_full(store: Store):
    """The disk is full for ``store``'s file until the block ends."""
    store.sql("CHECKPOINT")  # folds the log into the file and removes it
    wal = Path(f"{store.path}.wal")
    assert not wal.exists(), "DuckDB kept its write-ahead log after a checkpoint"
    wal.symlink_to("/dev/full")
    try:
        yield
    finally:
        wal.unlink()


@contextmanager
def file_size_limit(nbytes: int):
    """No file of this process may grow past ``nbytes`` until the block ends (EFBIG)."""
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


@pytest.fixture
def filled(tmp_path):
    path = tmp_path / "survivor.duckdb"
    with Store(path) as store:
        for name in BEFORE:
            store.write(insert(name))
        yield store


def assert_ok(health: dict) -> None:
    assert health["store"] == "ok", health
    assert health["error"] is None and health["since"] is None
    assert health["failed_writes"] == 0
    assert health["writer"] in ("alive", "not started")
    json.dumps(health)  # ready for /api/health as it is


def test_a_full_disk_fails_the_batch_not_the_writer(filled):
    store = filled
    assert_ok(store.health())
    calls: dict[str, int] = {}
    with wal_on_dev_full(store):
        gate = hold_writer(store)
        futures = [store.submit(insert(f"lost-{i}", calls)) for i in range(4)]
        gate.set()
        errors = []
        for fut in futures:
            with pytest.raises(StoreWriteError) as err:
                fut.result(30)
            errors.append(str(err.value))
        # Each caller is told that the write failed, which file, and DuckDB's reason.
        for message in errors:
            assert str(store.path) in message
            assert "No space left on device" in message
            assert "not stored" in message
        # The commit failed for the disk, not for one write: no retrying them one by one
        # (at most once more on a reopened file).
        assert all(n <= 2 for n in calls.values()), calls

        health = store.health()
        assert health["store"] == "error" and health["writer"] == "alive"
        assert "No space left on device" in health["error"]
        assert health["failed_writes"] == 4
        assert datetime.fromisoformat(health["since"]).tzinfo is not None
        json.dumps(health)
        # Reads are served while degraded, and show nothing of the failed batch.
        assert signatures(store) == set(BEFORE)
        # Another write fails too, and is counted.
        with pytest.raises(StoreWriteError, match="No space left on device"):
            store.write(insert("lost-again"))
        assert store.health()["failed_writes"] == 5
        # A write that changes nothing proves nothing: still degraded.
        store.settle()
        assert store.health()["store"] == "error"

    # The disk is back: the next write succeeds, and health with it.
    assert store.write(insert("after")) == "after"
    assert_ok(store.health())
    assert store.health()["writer"] == "alive"
    assert signatures(store) == {*BEFORE, "after"}
    runs = set(store.sql("SELECT run_id FROM runs")["run_id"])
    assert runs == {*BEFORE, "after"}  # nothing of a failed batch is half-stored


def test_what_was_committed_survives_the_failure_on_disk(filled):
    store, path = filled, filled.path
    with wal_on_dev_full(store):
        with pytest.raises(StoreWriteError):
            store.write(insert("lost"))
    store.write(insert("after"))
    store.close()
    with Store(path) as again:
        assert signatures(again) == {*BEFORE, "after"}
        assert set(again.sql("SELECT run_id FROM runs")["run_id"]) == {*BEFORE, "after"}


def test_an_invalidated_database_is_reopened_and_reads_go_on(filled):
    store = filled
    store.sql("CHECKPOINT")
    size = store.path.stat().st_size

    def big(cur):
        # The commit checkpoints (on the file opened again, too), and the file must grow.
        cur.execute("SET checkpoint_threshold = '1KB'")
        cur.execute("INSERT INTO signatures (signature) "
                    "SELECT 'lost-' || md5(i::VARCHAR) FROM range(20000) r(i)")

    with file_size_limit(size):
        with pytest.raises(StoreWriteError) as err:
            store.submit(big).result(30)
    message = str(err.value)
    assert str(store.path) in message and "File too large" in message

    health = store.health()
    assert health["store"] == "error" and health["writer"] == "alive"
    assert "File too large" in health["error"]
    assert health["failed_writes"] == 1
    # DuckDB invalidated its database; the store opened the file again, so reads go on.
    deadline = time.monotonic() + 10
    while store.health()["connection"] != "open" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.health()["connection"] == "open"
    assert store.health()["reopened"] >= 1
    assert signatures(store) == set(BEFORE)

    store.write(insert("after"))
    assert_ok(store.health())
    assert signatures(store) == {*BEFORE, "after"}


def test_a_bad_write_fails_alone_and_the_store_stays_ok(filled):
    store = filled
    calls: dict[str, int] = {}

    def bad(cur):
        cur.execute("INSERT INTO signatures (signature) VALUES ('half')")
        cur.execute("INSERT INTO signatures (signature) VALUES ('before-0')")  # duplicate

    gate = hold_writer(store)
    good = [store.submit(insert(f"good-{i}", calls)) for i in range(3)]
    wrong = store.submit(bad)
    gate.set()
    for fut in good:
        fut.result(30)
    with pytest.raises(Exception, match="(?i)constraint") as err:
        wrong.result(30)
    assert not isinstance(err.value, StoreWriteError)  # the request's fault, not the disk's
    assert_ok(store.health())
    assert signatures(store) == {*BEFORE, "good-0", "good-1", "good-2"}


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()],
                         ids=["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_nothing_a_write_function_raises_kills_the_writer(filled, raised):
    store = filled

    def fn(cur):
        cur.execute("INSERT INTO signatures (signature) VALUES ('half')")
        raise raised

    # It reaches its caller (KeyboardInterrupt, SystemExit propagate), in the caller's thread.
    with pytest.raises(type(raised)):
        store.submit(fn).result(30)
    assert store.health()["writer"] == "alive"
    store.write(insert("after"))
    assert_ok(store.health())
    assert signatures(store) == {*BEFORE, "after"}


def test_a_cancelled_write_is_skipped_and_the_writer_lives(filled):
    store = filled
    gate = hold_writer(store)
    cancelled = store.submit(insert("cancelled"))
    assert cancelled.cancel()
    kept = store.submit(insert("kept"))
    gate.set()
    assert kept.result(30) == "kept"
    assert store.health()["writer"] == "alive"
    assert signatures(store) == {*BEFORE, "kept"}


def test_close_ends_within_its_grace_when_a_write_is_stuck(filled):
    store, path = filled, filled.path
    gate, started = threading.Event(), threading.Event()

    def stuck(cur):
        cur.execute("INSERT INTO signatures (signature) VALUES ('stuck')")
        started.set()
        gate.wait(60)

    running = store.submit(stuck)
    assert started.wait(10)
    queued = [store.submit(insert(f"queued-{i}")) for i in range(3)]
    t0 = time.monotonic()
    store.close(timeout=1.0)
    took = time.monotonic() - t0
    assert took < 3, f"close took {took:.1f} s with a grace of 1 s"
    assert store.health()["store"] == "closed"
    for fut in [running, *queued]:
        with pytest.raises(StoreWriteError, match="closed"):
            fut.result(1)
    gate.set()  # the stuck write ends now: it must not commit after all
    deadline = time.monotonic() + 10
    while store._writer.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store._writer.is_alive()
    with Store(path) as again:
        assert signatures(again) == set(BEFORE)


def test_close_interrupts_a_long_statement_and_the_writer_closes_the_file(filled):
    store, path = filled, filled.path
    started = threading.Event()

    def endless(cur):
        cur.execute("INSERT INTO signatures (signature) VALUES ('endless')")
        started.set()
        cur.execute("SELECT count(*) FROM range(10_000_000_000_000)").fetchall()

    running = store.submit(endless)
    assert started.wait(10)
    t0 = time.monotonic()
    store.close(timeout=1.0)
    assert time.monotonic() - t0 < 3
    with pytest.raises(StoreWriteError, match="closed"):
        running.result(1)
    store._writer.join(5)  # DuckDB stopped the statement: the writer ends and closes the file
    assert not store._writer.is_alive()
    assert store._con is None
    with Store(path) as again:
        assert signatures(again) == set(BEFORE)


def test_close_ends_within_its_grace_when_the_writer_is_gone(filled):
    store = filled
    store._queue.put(None)  # the writer stops, as a dead one would
    store._writer.join(10)
    assert not store._writer.is_alive()
    orphans = []
    for i in range(3):
        fut: cf.Future = cf.Future()
        store._queue.put((insert(f"orphan-{i}"), fut, "tests"))
        orphans.append(fut)
    t0 = time.monotonic()
    store.close(timeout=1.0)
    assert time.monotonic() - t0 < 3
    for fut in orphans:
        with pytest.raises(StoreWriteError, match="closed"):
            fut.result(1)


def test_close_with_a_full_queue_and_a_stuck_writer_ends(tmp_path):
    store = Store(tmp_path / "full.duckdb", max_pending=2)
    gate, started = threading.Event(), threading.Event()
    store.submit(lambda cur: (started.set(), gate.wait(60)))
    assert started.wait(10)
    queued = [store.submit(insert(f"q-{i}")) for i in range(2)]  # the queue is full now
    t0 = time.monotonic()
    store.close(timeout=0.5)
    assert time.monotonic() - t0 < 3
    for fut in queued:
        with pytest.raises(StoreWriteError):
            fut.result(1)
    gate.set()


def test_a_write_after_close_fails_at_once(filled):
    store = filled
    store.close()
    t0 = time.monotonic()
    with pytest.raises(StoreWriteError, match=r"closed") as err:
        store.write(insert("late"))
    assert str(store.path) in str(err.value)
    with pytest.raises(StoreWriteError, match=r"closed"):
        store.submit(insert("late"), block=False)
    assert time.monotonic() - t0 < 1
    assert store.health()["store"] == "closed"
    json.dumps(store.health())


def test_a_store_never_written_closes_and_reports_ok(tmp_path):
    with Store(tmp_path / "idle.duckdb") as store:
        assert_ok(store.health())
        assert store.health()["writer"] == "not started"
    assert store.health()["store"] == "closed"


# -- a real full file system -------------------------------------------------------------
def test_a_really_full_file_system_degrades_and_recovers(small_disk):
    with Store(small_disk / "real.duckdb") as store:
        for name in BEFORE:
            store.write(insert(name))
        store.sql("CHECKPOINT")
        ballast = fill(small_disk)

        def big(cur):
            cur.execute("INSERT INTO signatures (signature) "
                        "SELECT 'lost-' || repeat(md5(i::VARCHAR), 8) FROM range(5000) r(i)")

        with pytest.raises(StoreWriteError) as err:
            store.write(big)
        assert str(store.path) in str(err.value)
        assert "No space left on device" in str(err.value)
        health = store.health()
        assert health["store"] == "error" and health["writer"] == "alive"
        assert "No space left on device" in health["error"]
        assert signatures(store) == set(BEFORE)

        ballast.unlink()
        store.write(insert("after"))
        assert_ok(store.health())
        assert signatures(store) == {*BEFORE, "after"}
