"""The server's side of the OTLP flattening process (:mod:`workbench.ingest.otlp_flattener`).

Started when the inbox writes a burst (more than one group of requests waiting; not while
the burst is being answered, whose pace its imports would slow), stopped after
:data:`IDLE_S` without work (its ~100 MB given back), started again by the next burst. A
process that fails (ends, answers garbled, or not within :data:`REPLY_S`) is stopped and
the inbox makes those rows in its own thread, as it does without one; after
:data:`MAX_FAILURES` failures it is not started again.
"""

from __future__ import annotations

import io
import logging
import queue
import select
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import launcher
from ..ingest import otlp_flattener as wire

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("workbench.intake")

#: Seconds without work after which the process is stopped.
IDLE_S = 60.0
#: Seconds a reply may take (a group is a few MB: it takes well under a second).
REPLY_S = 60.0
#: Groups the process may have in hand before the inbox's thread makes them all itself.
MAX_IN_FLIGHT = 4
#: Failures after which the process is no longer started.
MAX_FAILURES = 3


class _Child:
    """One flattening process, and the two threads that feed it and read its replies (so
    that it never waits for the server to read: a reply is megabytes, a pipe holds 64 KB)."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.frames: queue.Queue[bytes | None] = queue.Queue()
        self.waiting: deque[Future] = deque()  # (replies come in the order of the requests)
        self.lock = threading.Lock()
        self.dead: Exception | None = None
        self.progress = time.monotonic()  # (its last reply, or the send it began with)
        for target, name in ((self._write, "in"), (self._read, "out")):
            threading.Thread(target=target, name=f"otlp-flattener-{name}", daemon=True).start()

    def send(self, frame: bytes) -> Future:
        fut: Future = Future()
        with self.lock:
            if self.dead is not None:
                fut.set_exception(self.dead)
                return fut
            if not self.waiting:
                self.progress = time.monotonic()
            self.waiting.append(fut)
        self.frames.put(frame)
        return fut

    def idle(self) -> bool:
        with self.lock:
            return not self.waiting

    def _write(self) -> None:
        try:
            while (frame := self.frames.get()) is not None:
                self.popen.stdin.write(frame)
                self.popen.stdin.flush()
        except OSError as err:
            self._fail(err)
        finally:
            try:
                self.popen.stdin.close()  # (it ends at the end of its input)
            except OSError:
                pass  # (it is gone: what was not written is failed already)

    def _read(self) -> None:
        fd = self.popen.stdout.fileno()
        raw = io.FileIO(fd, closefd=False)  # (unbuffered: select() sees all that is unread)
        try:
            while True:
                if not select.select([fd], [], [], 1.0)[0]:
                    with self.lock:
                        late = bool(self.waiting) and time.monotonic() - self.progress > REPLY_S
                    if late:  # (stuck: its output then ends, and what it holds fails)
                        log.warning("OTLP flattening process: no reply in %g s; stopped",
                                    REPLY_S)
                        self.popen.kill()
                    continue
                head = wire.read_exact(raw, 4)
                if head is None:
                    raise EOFError(f"the process ended (exit status {self.popen.wait(5)})")
                payload = wire.read_exact(raw, wire._U32.unpack(head)[0]) or b""
                with self.lock:
                    fut = self.waiting.popleft() if self.waiting else None
                    self.progress = time.monotonic()
                if fut is None:
                    raise ValueError("a reply to no request")
                fut.set_result(payload)
        except (OSError, EOFError, ValueError, subprocess.TimeoutExpired) as err:
            self._fail(err)
        finally:
            self.popen.stdout.close()

    def _fail(self, err: Exception) -> None:
        with self.lock:
            self.dead = self.dead or err
            waiting, self.waiting = self.waiting, deque()
        for fut in waiting:
            fut.set_exception(err)

    def stop(self) -> None:
        self.frames.put(None)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


class Flattener:
    """Flattens stored OTLP requests in a child process. One thread sends and takes the
    results (the inbox's); several requests may be in flight."""

    def __init__(self) -> None:
        self._child: _Child | None = None
        self._lock = threading.Lock()
        self._failures = 0
        self._timer: threading.Timer | None = None
        self._closed = False

    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        child = self._child
        if child is None:
            return 0
        with child.lock:
            return len(child.waiting)

    def running(self) -> bool:
        child = self._child
        return child is not None and child.popen.poll() is None

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.popen.pid if child is not None and self.running() else None

    def tables(self, requests: list[tuple[str, bytes]]
               ) -> tuple[dict[str, pa.Table], list[str]] | None:
        """``(tables, problems)`` as :func:`~workbench.ingest.otlp_flattener.flatten_tables`
        makes them, or None when the process cannot (the caller flattens them itself)."""
        fut = self.send(requests)
        return None if fut is None else self.result(fut)

    def send(self, requests: list[tuple[str, bytes]]) -> Future | None:
        """Hand ``requests`` to the process (started if need be) and return at once: a
        future for :meth:`result` (done when the reply is in), or None when it cannot
        take them (the caller makes those rows itself)."""
        with self._lock:
            if self._closed or self._failures >= MAX_FAILURES:
                return None
            if not self.running() or self._child.dead is not None:
                if self._child is not None:  # (it ended by itself)
                    self._count(self._child.dead or EOFError("the process ended"))
                    self._stop()
                    if self._failures >= MAX_FAILURES:
                        return None
                try:
                    self._start()
                except OSError as err:
                    self._count(err)
                    return None
            child = self._child
        fut = child.send(wire.frame(wire.pack_requests(requests)))
        fut.child = child  # type: ignore[attr-defined]
        return fut

    def result(self, fut: Future) -> tuple[dict[str, pa.Table], list[str]] | None:
        """The reply a :meth:`send` future stands for, or None (the caller makes those
        rows itself: the process failed, and is stopped, or could not read them)."""
        try:
            tables, problems, error = wire.unpack_reply(fut.result(REPLY_S))
        except (OSError, EOFError, ValueError, KeyError, TimeoutError,
                subprocess.TimeoutExpired) as err:
            with self._lock:
                if fut.child is self._child:  # (not counted yet: the others in flight
                    self._count(err)  # fail with it)
                    self._stop()
            return None
        self._arm_idle()
        if error:
            log.warning("OTLP flattening process: %s; the inbox flattens these itself", error)
            return None
        return tables, problems

    def _count(self, err: Exception) -> None:
        self._failures += 1
        log.warning("OTLP flattening process failed (%s: %s); the inbox flattens in its own "
                    "thread%s", type(err).__name__, err,
                    "" if self._failures < MAX_FAILURES else " from now on")

    def _start(self) -> None:
        # The package this server runs, first on the child's path (it may not be installed);
        # -P: not the server's working folder, where a module could shadow a dependency.
        here = str(Path(__file__).resolve().parent.parent.parent)
        env = launcher.child_env(own={"PYTHONPATH": here})
        self._child = _Child(launcher.spawn(
            [sys.executable, "-P", "-m", "workbench.ingest.otlp_flattener"], cwd=here,
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE))

    def _arm_idle(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self._closed:
                return
            self._timer = threading.Timer(IDLE_S, self._idle)
            self._timer.daemon = True
            self._timer.start()

    def _idle(self) -> None:
        with self._lock:
            busy = self._child is not None and not self._child.idle()
            if not busy:
                self._stop()
        if busy:
            self._arm_idle()

    def _stop(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None  # (once it is gone)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            self._stop()

    def state(self) -> dict[str, Any]:
        """For tests and health: whether it runs, and its failures."""
        return {"running": self.running(), "pid": self.pid, "failures": self._failures}
