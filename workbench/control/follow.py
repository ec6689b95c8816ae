"""Following the output files of every process agent with one thread.

A thread per file polling for new lines cost the supervisor most of a core with 100
agents (200 threads waking 20 times a second). One thread checks every file's size each
tenth of a second (an ``fstat``, no read when nothing was written) and hands new complete
lines on; when the process has ended it reads what is left and says it is done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

POLL_S = 0.1


#: The most a follower reads of one file at a time.
READ_BYTES = 1 << 20


@dataclass
class Followed:
    path: Path
    offset: int
    on_line: Callable[[bytes], None]
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

    def follow(self, path: Path, offset: int, on_line: Callable[[bytes], None],
               ended: threading.Event) -> Followed:
        """Hand each new line of ``path`` after ``offset`` to ``on_line`` until ``ended`` is
        set and the rest has been read; the returned entry's ``done`` is set then."""
        entry = Followed(path, offset, on_line, ended)
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
            for entry in files:
                try:
                    finished = self._read(entry)
                except OSError:
                    finished = True
                if finished:
                    with self._lock:
                        self._files.remove(entry)
                    if entry.handle is not None:
                        entry.handle.close()
                    entry.done.set()
            self._wake.wait(POLL_S)
            self._wake.clear()

    @staticmethod
    def _read(entry: Followed) -> bool:
        """Read what is new; True when the entry is finished."""
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
            for line in lines:
                entry.on_line(line)
        if ended:
            if entry.pending:
                entry.on_line(entry.pending)
                entry.pending = b""
            return True
        return False


#: The supervisor's process-wide followers.
FOLLOWERS = Followers()
