"""Agents' events and shell commands are write-combined (issue 26): a flood of them from
many threads is stored whole, in order per agent, in few writer jobs — a burst that
arrives while the writer is busy lands as one insert in one transaction. Real DuckDB files,
the store's own writer."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time

from workbench.store import Store, control_writes

T0 = dt.datetime(2026, 12, 7, 9, 0)


def _event(agent: str, n: int) -> list:
    return [agent, T0 + dt.timedelta(microseconds=n), "log", "running", f"{agent} line {n}",
            '{"stream": "stdout"}']


def _flood(store: Store, agents: int, each: int) -> None:
    """``agents`` threads, each emitting ``each`` numbered events of its own agent at once."""
    go = threading.Barrier(agents)

    def emit(agent: str) -> None:
        go.wait()
        for n in range(each):
            control_writes.agent_event(store, _event(agent, n))
    threads = [threading.Thread(target=emit, args=(f"ag-{i}",)) for i in range(agents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


def _stored_in_order(store: Store, agents: int, each: int) -> None:
    for i in range(agents):
        texts = store.sql("SELECT text FROM agent_events WHERE agent_id = ? ORDER BY rowid",
                          [f"ag-{i}"])["text"].tolist()
        assert texts == [f"ag-{i} line {n}" for n in range(each)]


def test_a_burst_while_the_writer_is_busy_is_one_insert(tmp_path):
    store = Store(tmp_path / "burst.duckdb")
    commits: list[frozenset[str]] = []
    store.on_commit(commits.append)
    busy, release = threading.Event(), threading.Event()

    def hold(cur) -> None:
        busy.set()
        release.wait(30)
    try:
        held = store.submit(hold, topic=None)
        assert busy.wait(10)
        _flood(store, agents=8, each=25)  # 200 events: per-row jobs would be 4 batches of 64
        release.set()
        held.result(10)
        store.settle()
        assert sum("control" in topics for topics in commits) == 1
        assert control_writes.pending(store, "agent_events").jobs == 1
        _stored_in_order(store, agents=8, each=25)
    finally:
        release.set()
        store.close()


def test_a_flood_from_many_threads_is_stored_whole_in_order_in_few_jobs(tmp_path):
    store = Store(tmp_path / "flood.duckdb")
    try:
        _flood(store, agents=12, each=500)
        fut = control_writes.agent_event(store, _event("ag-last", 0))
        assert fut.result(30) >= 1  # (a caller may wait until its event is stored)
        store.settle()
        _stored_in_order(store, agents=12, each=500)
        assert store.sql("SELECT count(*) AS n FROM agent_events")["n"].iloc[0] == 6001
        pending = control_writes.pending(store, "agent_events")
        assert pending.inserted == 6001
        assert pending.jobs < 6001 / 4, pending.jobs  # rows coalesce while the writer works
    finally:
        store.close()


def test_shell_commands_are_combined_too(tmp_path):
    store = Store(tmp_path / "shell.duckdb")
    try:
        at = T0
        for n in range(3):
            control_writes.console_commands(store, [[at, "ann", "shop", f"make {n}.{k}", "c1"]
                                                    for k in range(2)])
        store.settle()
        assert store.sql("SELECT command FROM console_history ORDER BY rowid")[
            "command"].tolist() == [f"make {n}.{k}" for n in range(3) for k in range(2)]
    finally:
        store.close()


def _ticks(store: Store, ticks: int, gather: bool) -> list[object]:
    """What the agents' output reader does each tick: 20 agents' lines handed on one after
    another (a little work between, as each agent's listeners run), with the writer idle."""
    futures = []
    for t in range(ticks):
        with control_writes.gathered() if gather else contextlib.nullcontext():
            for i in range(20):
                futures.append(control_writes.agent_events(
                    store, [_event(f"ag-{i}", t * 10 + k) for k in range(10)]))
                time.sleep(0.0005)
        store.settle()
    return futures


def test_a_tick_of_many_agents_lines_is_one_writer_job(tmp_path):
    store = Store(tmp_path / "ticks.duckdb")
    try:
        futures = _ticks(store, ticks=5, gather=True)
        pending = control_writes.pending(store, "agent_events")
        assert pending.jobs == 5, pending.jobs
        assert all(f.result(10) >= 200 for f in futures)  # each caller's insert: all 200 rows
        _stored_in_order(store, agents=20, each=50)
        # (the same without the block: the idle writer takes the first agents' rows at once)
        before = pending.jobs
        _ticks(store, ticks=5, gather=False)
        assert pending.jobs - before > 5
    finally:
        store.close()


def test_rows_gathered_in_a_failing_block_are_still_stored(tmp_path):
    store = Store(tmp_path / "raise.duckdb")
    try:
        try:
            with control_writes.gathered():
                fut = control_writes.agent_events(store, [_event("ag-0", 0)])
                raise RuntimeError("a listener failed")
        except RuntimeError:
            pass
        assert fut.result(10) == 1
        assert store.sql("SELECT count(*) AS n FROM agent_events")["n"].iloc[0] == 1
    finally:
        store.close()
