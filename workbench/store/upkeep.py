"""Keeping one DuckDB file healthy for months: online backups, restore, and compaction.

- **Backup** copies the database as of one moment (a read transaction: ``ATTACH`` a new
  file, ``COPY FROM DATABASE``) while ingest goes on; the copy is written under a
  ``.partial`` name, opened and counted, and only then renamed to its final name — a crash
  mid-backup leaves a ``.partial`` file, which the next backup removes, never a backup that
  does not open. The newest ``keep`` backups are kept.
- **Compaction**: DuckDB gives deleted space back to the disk only at the file's tail
  (``CHECKPOINT``; ``VACUUM`` reclaims nothing), so a file whose old data was deleted keeps
  its size. Compacting copies the live data into a fresh file and swaps it in, on the
  writer thread between two transactions (writes wait, reads go on until the swap).
- **Restore** puts a backup in place of a file no server holds.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from . import otlp_journal
from .sql import literal

if TYPE_CHECKING:
    from .store import Store

PARTIAL = ".partial"


class UpkeepError(RuntimeError):
    """A backup, restore or compaction that could not be done; the reason on one line."""


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _copy_into(cur: duckdb.DuckDBPyConnection, dest: Path,
               marked: frozenset[str] = frozenset()) -> tuple[dict[str, int], dict[str, Any]]:
    """Copy the database ``cur`` reads into the new file ``dest``: the rows of each table
    as of the copy's snapshot (counted in the same transaction), and each ``marked``
    table's last row id then."""
    alias = f"copy_{os.getpid()}_{int(time.monotonic_ns())}"
    source = cur.execute("SELECT current_database()").fetchone()[0]
    cur.execute(f"ATTACH {literal(dest)} AS {alias}")
    try:
        cur.execute("BEGIN TRANSACTION")
        try:
            counts, marks = {}, {}
            for t in _tables(cur, source):
                counts[t], last = cur.execute(f'SELECT count(*), max(rowid) FROM '
                                              f'"{source}".main."{t}"').fetchone()
                if t in marked:
                    marks[t] = last
            cur.execute(f'COPY FROM DATABASE "{source}" TO {alias}')
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    finally:
        cur.execute(f"DETACH {alias}")
    return counts, marks


def verify(path: Path, counts: dict[str, int]) -> None:
    """Open ``path`` read-only and check that every table holds ``counts`` rows."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table, n in counts.items():
            got = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if got != n:
                raise UpkeepError(f"{path}: {table} holds {got} rows, the source {n}")
    finally:
        con.close()


#: A backup's name after its file's stem: the UTC time it was taken.
_STAMPED = re.compile(r"-\d{8}T\d{6}\.\d{6}Z\.duckdb(?:\.partial)?$")


def _of(path: Path, stem: str) -> bool:
    """Whether ``path`` is a backup of the file named ``stem`` (``team-…`` is not one of
    ``team-ci``'s, nor the other way round)."""
    m = _STAMPED.search(path.name)
    return bool(m) and path.name[:m.start()] == stem


def backups_in(folder: Path, stem: str) -> list[Path]:
    """The finished backups of the file named ``stem`` in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{glob.escape(stem)}-*.duckdb") if _of(p, stem))


@dataclass
class Backup:
    path: Path
    bytes: int
    rows: int
    seconds: float
    removed: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.bytes, "rows": self.rows,
                "seconds": round(self.seconds, 3), "removed": self.removed}


def backup(store: Store, folder: str | Path, keep: int = 7) -> Backup:
    """Copy ``store``'s file into ``folder`` as ``<name>-<UTC time>.duckdb`` while writes
    go on, verify the copy, and delete all but the newest ``keep`` backups."""
    if not isinstance(store.path, Path):
        raise UpkeepError("an in-memory store has no file to back up")
    folder = Path(folder)
    if keep < 1:
        raise UpkeepError(f"keep must be at least 1, not {keep}")
    folder.mkdir(parents=True, exist_ok=True)
    stem = store.path.stem
    for left in folder.glob(f"{glob.escape(stem)}-*.duckdb{PARTIAL}"):
        if _of(left, stem):  # a backup of this file that a crash cut short
            _remove(left)
    final = folder / f"{stem}-{_stamp()}.duckdb"
    partial = final.with_name(final.name + PARTIAL)
    start = time.monotonic()
    try:
        with store.reading() as cur:
            counts, _ = _copy_into(cur, partial)
    except duckdb.Error as err:
        _remove(partial)
        raise UpkeepError(f"backup of {store.path} to {final} failed: "
                          f"{' '.join(str(err).split())[:300]}") from None
    try:
        verify(partial, counts)
    except (UpkeepError, duckdb.Error) as err:
        _remove(partial)
        raise UpkeepError(f"backup {final} did not verify: {err}") from None
    _fsync(partial)
    os.replace(partial, final)
    removed = []
    for old in backups_in(folder, stem)[:-keep]:
        old.unlink(missing_ok=True)
        removed.append(old.name)
    return Backup(final, final.stat().st_size, sum(counts.values()),
                  time.monotonic() - start, removed)


def _remove(path: Path) -> None:
    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore(source: str | Path, target: str | Path) -> dict[str, Any]:
    """Put the backup ``source`` in place of ``target`` (which no process may hold); the
    file it replaces is kept beside it as ``<name>.before-restore-<time>``."""
    from ..discovery import find_server

    source, target = Path(source), Path(target)
    if not source.is_file():
        raise UpkeepError(f"{source}: no such backup")
    if source.resolve() == target.resolve():
        raise UpkeepError(f"{source}: is the file it would restore")
    url = find_server(target)
    if url:
        raise UpkeepError(f"{target} is served by the workbench at {url}: stop it first "
                          "(Ctrl-C in its terminal, or kill the process named in "
                          f"{target.name}.server.json), then restore")
    staged = target.with_name(f".{target.name}.restoring")
    con = duckdb.connect()  # (the source through DuckDB: its own log is in the copy too)
    try:
        try:
            con.execute(f"ATTACH {literal(source)} AS src (READ_ONLY)")
            con.execute("USE src")
            version = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        except duckdb.Error as err:
            raise UpkeepError(f"{source}: not a workbench database: "
                              f"{' '.join(str(err).split())[:200]}") from None
        if target.exists():
            try:  # held by a process that does not advertise itself (a notebook)?
                duckdb.connect(str(target)).close()
            except duckdb.Error as err:
                raise UpkeepError(f"{target}: cannot take its place: "
                                  f"{' '.join(str(err).split())[:200]}") from None
        _remove(staged)
        try:
            counts, _ = _copy_into(con, staged)
            verify(staged, counts)
        except (duckdb.Error, OSError, UpkeepError) as err:
            _remove(staged)
            raise UpkeepError(f"restoring {source} to {target} failed (nothing changed): "
                              f"{' '.join(str(err).split())[:200]}") from None
    finally:
        con.close()
    _fsync(staged)
    kept = None
    stamp = _stamp()
    if target.exists():
        kept = target.with_name(f"{target.name}.before-restore-{stamp}")
        os.replace(target, kept)
    wal = Path(f"{target}.wal")
    if wal.exists():  # (the old file's log, even with the file gone: never replayed on this)
        os.replace(wal, target.with_name(f"{target.name}.before-restore-{stamp}.wal"))
    inbox = otlp_journal.folder_for(target)
    if inbox.exists():  # (the old file's OTLP requests waiting for their rows: likewise)
        os.replace(inbox, target.with_name(f"{target.name}.before-restore-{stamp}.otlp-inbox"))
    os.replace(staged, target)
    return {"restored": str(target), "from": str(source), "schema_version": version,
            "rows": sum(counts.values()), "previous": str(kept) if kept else None}


def file_stats(store: Store) -> dict[str, Any]:
    """How the file compares with what it holds: its size on disk, the blocks in use and
    free (free blocks are space deleted rows left, reused by new data but never given back
    to the disk), the write-ahead log, the OTLP inbox's journal, and the disk's free
    space."""
    row = store.sql("PRAGMA database_size").iloc[0]
    block = int(row["block_size"])
    used, free = int(row["used_blocks"]), int(row["free_blocks"])
    path = store.path if isinstance(store.path, Path) else None
    size = path.stat().st_size if path and path.exists() else 0
    wal = Path(f"{path}.wal") if path else None
    wal_bytes = wal.stat().st_size if wal and wal.exists() else 0
    disk = shutil.disk_usage(path.parent) if path else None
    return {
        "path": str(store.path), "file_bytes": size, "live_bytes": used * block,
        "free_bytes": free * block, "wal_bytes": wal_bytes,
        # OTLP requests answered and not yet written as rows (store/otlp_journal.py)
        "inbox_bytes": otlp_journal.size_of(otlp_journal.folder_for(path)) if path else 0,
        "bloat": round(size / (used * block), 3) if used else 1.0,
        "disk_free_bytes": disk.free if disk else None,
        "disk_free_percent": round(100 * disk.free / disk.total, 1) if disk else None,
    }


#: Tables whose rows are only ever appended (deleted only by retention, which never runs
#: beside a compaction): the rows written while the copy ran are those past its last row
#: id. The other tables (runs, agents, tasks, alerts, the rollup, ...) are small and may be
#: updated: they are copied again whole at the end.
APPEND_ONLY = frozenset({"spans", "span_events", "span_links", "logs", "metric_points",
                         "results", "agent_events", "agent_samples", "audit", "coverage_files",
                         "coverage_tests", "console_history"})


def compact(store: Store) -> dict[str, Any]:
    """Copy the live data into a fresh file and swap it in; the sizes before and after.

    In three steps, so that ingest waits only for the last: (1) on the writer, a checkpoint
    (a few ms: the deletions of a retention run are folded in, so row ids stay put); (2)
    while writes go on, a copy of one snapshot, noting each table's rows and last row id;
    (3) on the writer, between two transactions, what was written meanwhile — the
    append-only tables' new rows, the small tables whole, the sequences' new values — then
    every table counted against the source and the file swapped in. A table whose old rows
    changed meanwhile (a run deleted by hand) is copied again whole.
    """
    if not isinstance(store.path, Path):
        raise UpkeepError("an in-memory store has no file to compact")
    fresh = store.path.with_name(f".{store.path.name}.compacting")
    alias = f"compact_{os.getpid()}"
    start = time.monotonic()
    before = store.path.stat().st_size + _wal_size(store.path)

    def failed(err: BaseException) -> UpkeepError:
        _remove(fresh)
        return UpkeepError(f"compaction of {store.path} failed (the file is unchanged): "
                           f"{' '.join(str(err).split())[:300]}")

    store.exclusive(lambda st: st.writer_cursor().execute("CHECKPOINT"))
    _remove(fresh)
    try:
        with store.reading() as cur:
            source = cur.execute("SELECT current_database()").fetchone()[0]
            copied_rows, last_ids = _copy_into(cur, fresh, APPEND_ONLY)
    except duckdb.Error as err:
        raise failed(err) from None
    copied = time.monotonic() - start

    def catch_up(st: Store) -> dict[str, Any]:
        held = time.monotonic()
        wcur = st.writer_cursor()
        try:
            wcur.execute(f"ATTACH {literal(fresh)} AS {alias}")
            try:
                wcur.execute("BEGIN TRANSACTION")
                counts = {}
                for t in _tables(wcur, source):
                    counts[t] = wcur.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                    last = last_ids.get(t)
                    last = -1 if last is None else last  # (an empty table had none)
                    if t in last_ids and wcur.execute(
                            f'SELECT count(*) FROM "{t}" WHERE rowid <= ?',
                            [last]).fetchone()[0] == copied_rows[t]:
                        wcur.execute(f'INSERT INTO {alias}."{t}" SELECT * FROM "{t}" '
                                     f"WHERE rowid > ?", [last])
                    else:
                        wcur.execute(f'DELETE FROM {alias}."{t}"')
                        wcur.execute(f'INSERT INTO {alias}."{t}" SELECT * FROM "{t}"')
                for name, ahead in wcur.execute(
                        "SELECT s.sequence_name, s.last_value - c.last_value FROM "
                        "duckdb_sequences() s JOIN duckdb_sequences() c USING (sequence_name) "
                        "WHERE s.database_name = ? AND c.database_name = ?",
                        [source, alias]).fetchall():
                    if ahead and ahead > 0:
                        wcur.execute(f"SELECT nextval('{alias}.{name}') FROM range(?)",
                                     [ahead]).fetchall()
                wcur.execute("COMMIT")
            except BaseException:
                wcur.execute("ROLLBACK")
                raise
            finally:
                wcur.execute(f"DETACH {alias}")
            verify(fresh, counts)
        except (duckdb.Error, UpkeepError) as err:
            raise failed(err) from None
        _fsync(fresh)
        st.swap_file(fresh)
        return {"path": str(st.path), "before_bytes": before,
                "after_bytes": st.path.stat().st_size, "rows": sum(counts.values()),
                "seconds": round(time.monotonic() - start, 3), "copy_s": round(copied, 3),
                "writes_held_s": round(time.monotonic() - held, 3)}

    return store.exclusive(catch_up)


def _tables(cur: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    return [r[0] for r in cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1",
        [database]).fetchall()]


def _wal_size(path: Path) -> int:
    wal = Path(f"{path}.wal")
    return wal.stat().st_size if wal.exists() else 0


def state(store: Store, backup_folder: Path) -> dict[str, Any]:
    """The file's figures, the retention policies and the backups (newest first): what the
    Storage page, ``observatory storage`` and ``GET /api/store`` show."""
    from . import retention

    return {"file": file_stats(store), "shared": store.shared_tables(),
            "policies": [p.as_dict() for p in retention.policies(store)],
            "backups": {"folder": str(backup_folder), "files": [
                {"name": p.name, "bytes": p.stat().st_size}
                for p in backups_in(backup_folder, Path(store.path).stem)][::-1]}}


def backup_folder(store: Store, chosen: str | None = None) -> Path:
    """Where backups of ``store`` go: ``chosen`` (``OBSERVATORY_BACKUP_DIR``), else
    ``backups/`` beside the file."""
    return Path(chosen) if chosen else Path(store.path).parent / "backups"
