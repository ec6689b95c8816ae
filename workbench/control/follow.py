"""Following the output files of every process agent with one thread.

A thread per file polling for new lines cost the supervisor most of a core with 100
agents (200 threads waking 20 times a second). One thread checks every file's size each
quarter second (an ``fstat``, no read when nothing was written) and hands the new
complete lines on, all those of one read together (one batch of events, not one each);
when the process has ended it reads what is left and says it is done (at once: the
supervisor wakes it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..store import control_writes

#: A quarter second: each look that finds lines is one write to the store. Twenty agents
#: printing ten times a second cost the server 12% of a core looking every tenth of a
#: second, 7% every quarter (benchmarks/agent_output.py); a person reading the log does
#: not see the difference.
POLL_S = 0.25


#: The most a follower reads of one file at a time.
READ_BYTES = 1 << 20


@dataclass
class Followed:
    path: Path
    offset: int
    on_lines: Callable[[list[bytes]], None]
    ended: threading.Event
    done: threading.Event = field(default_factory=threading.Event)
    pending: bytes = b""
    handle: object = None


class Followers:
    def __init__(self) -> None:
        self._files: list[Followed] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def wake(self) -> None:
        """Look now, not at the next tick: a process ended and its end waits for the
        last lines (a workflow's chain of short commands waited 50 ms a step for it)."""
        self._wake.set()

    def follow(self, path: Path, offset: int, on_lines: Callable[[list[bytes]], None],
               ended: threading.Event) -> Followed:
        """Hand the new lines of ``path`` after ``offset`` to ``on_lines`` (a list at a time,
        in order) until ``ended`` is set and the rest has been read; the returned entry's
        ``done`` is set then."""
        entry = Followed(path, offset, on_lines, ended)
        with self._lock:
            self._files.append(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agent-output",
                                                daemon=True)
                self._thread.start()
        return entry

    def _run(self) -> None:
        while True:
            with self._lock:
                files = list(self._files)
            out, finished = _Out(), []
            for entry in files:
                try:
                    if self._read(entry, out):
                        finished.append(entry)
                except OSError:
                    finished.append(entry)
            out.hand_on()  # (every file read first: a tick's lines reach the store together)
            for entry in finished:
                with self._lock:
                    self._files.remove(entry)
                if entry.handle is not None:
                    entry.handle.close()
                entry.done.set()
            self._wake.wait(POLL_S)
            self._wake.clear()

    @staticmethod
    def _read(entry: Followed, out: _Out) -> bool:
        """Read what is new into ``out``; True when the entry is finished."""
        ended = entry.ended.is_set()  # before reading: nothing is written after it
        if entry.handle is None:
            if not entry.path.exists():
                return ended
            entry.handle = entry.path.open("rb")
            entry.handle.seek(entry.offset)
        f = entry.handle
        # A megabyte at a time: an agent that printed 200 MB since the last read must not
        # make the supervisor hold 200 MB (and its lines) at once. A "line" longer than
        # that is passed on in pieces.
        while os.fstat(f.fileno()).st_size > f.tell():
            data = entry.pending + f.read(READ_BYTES)
            *lines, entry.pending = data.split(b"\n")
            if len(entry.pending) >= READ_BYTES:
                lines.append(entry.pending)
                entry.pending = b""
            if lines:
                out.add(entry, lines, len(data))
        if ended:
            if entry.pending:
                out.add(entry, [entry.pending], len(entry.pending))
                entry.pending = b""
            return True
        return False


class _Out:
    """The lines one tick read, handed on after every file was read (each file's in
    order, one list per read), or as soon as they reach a megabyte."""

    def __init__(self) -> None:
        self.reads: list[tuple[Followed, list[bytes]]] = []
        self.size = 0

    def add(self, entry: Followed, lines: list[bytes], size: int) -> None:
        self.reads.append((entry, lines))
        self.size += size
        if self.size >= READ_BYTES:
            self.hand_on()

    def hand_on(self) -> None:
        reads, self.reads, self.size = self.reads, [], 0
        with control_writes.gathered():  # (every agent's lines of a tick: one transaction)
            for entry, lines in reads:
                entry.on_lines(lines)


#: The supervisor's process-wide followers.
FOLLOWERS = Followers()
