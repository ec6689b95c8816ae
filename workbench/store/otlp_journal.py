"""The OTLP inbox's journal: acknowledged request bodies in append-only segment files
beside the database, each record flushed to disk before its request is answered.

A request's bytes went into a DuckDB row first (``otlp_inbox``): an INSERT of a 150 KB
blob and its COMMIT cost ~6 ms of the writer's time per request, where appending the same
bytes to a file and ``fdatasync`` cost ~0.9 ms (benchmarks/otlp_sink.py, docs/
performance.md). A record is::

    magic (4) | id (8) | signal (1) | length (4) | crc32 of the body (4) | body

in files named by their first record's id (``00000000000000000001.seg``) in the folder
``<database>.otlp-inbox``. A record that does not check out (a crash while it was being
written; it was not answered, as its sync had not returned) ends its segment: recovery
cuts the file there. Nothing records which records were written as rows: a segment is
deleted once all of its records are, and after a crash every record still on disk is
written again, which stores nothing twice (the rows' own de-duplication: a resent
request's spans, events, logs, points and links are found and skipped).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

MAGIC = b"OTI1"
HEADER = struct.Struct("<4sQBII")
SIGNALS = ("traces", "metrics", "logs")
#: A segment holding more than this starts the next one (so that written records' space is
#: given back while requests keep arriving).
SEGMENT_BYTES = 32 * 1024 * 1024


def folder_for(database: Path) -> Path:
    """The journal's folder of the database file ``database``."""
    return database.with_name(database.name + ".otlp-inbox")


def size_of(folder: Path) -> int:
    """Bytes the journal's segments take on disk (0 when it has none). A segment the inbox
    deletes meanwhile counts as gone."""
    total = 0
    for path in folder.glob("*.seg") if folder.is_dir() else ():
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def scan(data: bytes) -> tuple[list[tuple[int, str, int, int]], int]:
    """The whole records at the start of a segment's bytes, ``(id, signal, offset of the
    body, length)`` each, and where the last one ends: a record that does not check out
    ends the segment."""
    found, end = [], 0
    while end + HEADER.size <= len(data):
        magic, rid, code, length, crc = HEADER.unpack_from(data, end)
        start = end + HEADER.size
        body = data[start:start + length]
        if (magic != MAGIC or code >= len(SIGNALS) or len(body) != length
                or zlib.crc32(body) != crc):
            break
        found.append((rid, SIGNALS[code], start, length))
        end = start + length
    return found, end


class Journal:
    """Segments of records in ``folder``; :meth:`append` and :meth:`sync` a record, read it
    back by its place, :meth:`drop` a segment whose records are all written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[int, object] = {}  # segment (its first id) -> open file
        self.active: int | None = None  # the segment appended to (None: a new one next)

    # -- at start -----------------------------------------------------------------------

    def recover(self) -> list[tuple[int, str, int, int, int]]:
        """Every whole record on disk, oldest first: ``(id, signal, segment, offset,
        length)``; a segment is cut after its last whole record."""
        found = []
        for path in sorted(self.folder.glob("*.seg")):
            seg = int(path.stem)
            data = path.read_bytes()
            records, end = scan(data)
            found += [(rid, signal, seg, start, length) for rid, signal, start, length in records]
            if end == 0:  # (nothing whole in it: a crash just after it was begun)
                path.unlink()
                continue
            if end < len(data):
                with open(path, "r+b") as f:
                    f.truncate(end)
                    os.fsync(f.fileno())
            self._files[seg] = open(path, "r+b")  # noqa: SIM115  (kept open until dropped)
        return found

    # -- the receiver's side --------------------------------------------------------------

    def append(self, rid: int, signal: str, body: bytes) -> tuple[int, int]:
        """Write one record (not yet synced; see :meth:`sync`); its ``(segment, offset of
        the body)``. The caller serialises appends."""
        seg = self.active
        f = self._files.get(seg) if seg is not None else None
        if f is None or f.tell() >= SEGMENT_BYTES:
            seg, f = rid, self._new(rid)
            self.active = seg
        head = HEADER.pack(MAGIC, rid, SIGNALS.index(signal), len(body), zlib.crc32(body))
        f.write(head)
        offset = f.tell()
        f.write(body)
        f.flush()
        return seg, offset

    def sync(self, seg: int) -> bool:
        """Flush segment ``seg`` to disk; False when it is gone (dropped: its records were
        all written as rows, which is as durable)."""
        f = self._files.get(seg)
        if f is None:
            return False
        try:
            os.fdatasync(f.fileno())
        except (ValueError, OSError):  # closed meanwhile by drop(): see above
            if seg in self._files:
                raise
            return False
        return True

    def _new(self, seg: int):
        path = self.folder / f"{seg:020d}.seg"
        f = open(path, "x+b")  # noqa: SIM115  (kept open until dropped)
        self._files[seg] = f
        # The new file's name must reach the disk too, or a synced record in it could be
        # lost with it.
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return f

    # -- the worker's side ----------------------------------------------------------------

    def read(self, seg: int, offset: int, length: int) -> bytes:
        return os.pread(self._files[seg].fileno(), length, offset)

    def drop(self, seg: int) -> None:
        """Delete a segment whose records are all written (the active one too: the next
        append starts another)."""
        f = self._files.pop(seg, None)
        if seg == self.active:
            self.active = None
        if f is not None:
            f.close()
            (self.folder / f"{seg:020d}.seg").unlink(missing_ok=True)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self.active = None
