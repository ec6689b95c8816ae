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
#: Seconds a reply may take beyond a second per MB of its requests (a group of 8 is
#: 1-2 MB and takes ~0.1 s; the receiver takes requests of up to 64 MiB).
REPLY_S = 60.0
#: Groups the process may have in hand before the inbox's thread makes them all itself.
MAX_IN_FLIGHT = 4
#: Failures in a row after which the process is no longer started.
MAX_FAILURES = 3

#: What the child runs: its replies on a descriptor of their own, taken before anything
#: is imported, and its stdout pointed at stderr, so that nothing a module (a parser
#: plugin, say) prints can get into them. The package this server runs comes first on its
#: path (it may not be installed); -P: not the working folder, where a module could
#: shadow a dependency.
_BOOT = ("import os, sys; replies = os.fdopen(os.dup(1), 'wb'); os.dup2(2, 1); "
         "sys.path.insert(0, sys.argv[1]); "
         "from workbench.ingest.otlp_flattener import serve; serve(sys.stdin.buffer, replies)")


class _Child:
    """One flattening process, and the two threads that feed it and read its replies (so
    that it never waits for the server to read: a reply is megabytes, a pipe holds 64 KB).
    Nothing here waits for the process from a thread that reads it: a failure kills it,
    and its reader reaps it."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.frames: queue.Queue[bytes | None] = queue.Queue()
        # (future, bytes sent): replies come in the order of the requests
        self.waiting: deque[tuple[Future, int]] = deque()
        self.lock = threading.Lock()
        self.dead: Exception | None = None
        self.ready = False  # (its imports done: ~0.4 s after its start)
        self.progress = time.monotonic()  # (its last reply, or the send it began with)
        threads = [threading.Thread(target=target, name=f"otlp-flattener-{name}", daemon=True)
                   for target, name in ((self._write, "in"), (self._read, "out"))]
        try:
            for thread in threads:
                thread.start()
        except RuntimeError as err:  # (no new thread at interpreter shutdown)
            self.kill()
            popen.wait(5)
            raise OSError(f"cannot start its threads: {err}") from None

    def send(self, frame: bytes) -> Future:
        fut: Future = Future()
        with self.lock:  # (queued in the order its future waits: replies pair up)
            if self.dead is not None:
                fut.set_exception(self.dead)
                return fut
            if not self.waiting:
                self.progress = time.monotonic()
            self.waiting.append((fut, len(frame)))
            self.frames.put(frame)
        return fut

    def in_flight(self) -> int:
        with self.lock:
            return len(self.waiting)

    def kill(self) -> None:
        try:
            self.popen.kill()
        except OSError:
            pass  # (gone already)

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

    def _kill_if_late(self) -> None:
        """Kill it when the request it works on is past its time (its output then ends,
        and what it holds fails)."""
        with self.lock:
            if not self.waiting:
                return
            budget = REPLY_S + self.waiting[0][1] / 1e6
            late = time.monotonic() - self.progress > budget
        if late:
            log.warning("OTLP flattening process: no reply in %.0f s; stopped", budget)
            self.kill()

    def _readable(self, raw: io.FileIO) -> None:
        """Wait until its output can be read, however long the request it works on may
        take (then it is killed, and its output ends)."""
        while not select.select([raw], [], [], 1.0)[0]:
            self._kill_if_late()

    def _read(self) -> None:
        raw = io.FileIO(self.popen.stdout.fileno(), closefd=False)  # (unbuffered: select()
        err: Exception = EOFError("its output ended")  # sees all that is unread)

        def read(n: int) -> bytes | None:
            return wire.read_exact(raw, n, lambda: self._readable(raw))

        try:
            while (head := read(wire.REPLY_HEAD.size)) is not None:
                magic, size = wire.REPLY_HEAD.unpack(head)
                if magic == wire.READY_MAGIC and not size and not self.ready:
                    self.ready = True
                    continue
                if magic != wire.REPLY_MAGIC:
                    raise ValueError(f"not a reply: {head!r}")
                payload = read(size)
                if payload is None and size:
                    raise EOFError("its reply ended after its length")
                with self.lock:
                    fut = self.waiting.popleft()[0] if self.waiting else None
                    self.progress = time.monotonic()
                if fut is None:
                    raise ValueError("a reply to no request")
                fut.set_result(payload or b"")
        except Exception as e:  # noqa: BLE001  (whatever it is, what it holds fails)
            err = e
        finally:
            self._fail(err)
            self.kill()
            try:
                self.popen.wait(5)  # (reaped here, never by a thread that reads it)
            except subprocess.TimeoutExpired:
                pass
            self.popen.stdout.close()

    def _fail(self, err: Exception) -> None:
        with self.lock:
            self.dead = self.dead or err
            waiting, self.waiting = self.waiting, deque()
        for fut, _ in waiting:
            fut.set_exception(err)

    def stop(self) -> None:
        """End it when idle (from the inbox's thread, the idle timer or close)."""
        self.frames.put(None)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            self.popen.wait(5)


class Flattener:
    """Flattens stored OTLP requests in a child process. One thread sends and takes the
    results (the inbox's); several requests may be in flight."""

    def __init__(self) -> None:
        self._child: _Child | None = None
        self._lock = threading.Lock()
        self._failures = 0  # (in a row)
        self._used = time.monotonic()
        self._timer: threading.Timer | None = None
        self._closed = False

    def in_flight(self) -> int:
        """Groups sent and not answered yet."""
        child = self._child
        return 0 if child is None else child.in_flight()

    def running(self) -> bool:
        child = self._child
        return child is not None and child.dead is None and child.popen.poll() is None

    def ready(self) -> bool:
        """Whether it runs and has its imports done (a group sent before waits for them)."""
        return self.running() and self._child.ready

    def start(self) -> None:
        """Start it if it is not running (and may be), without waiting for it."""
        with self._lock:
            self._started()

    def _started(self) -> _Child | None:
        """The running process, started if need be; None when it may not be."""
        if self._closed or self._failures >= MAX_FAILURES:
            return None
        if not self.running():
            if self._child is not None:  # (it ended by itself, or failed unseen)
                self._count(self._child.dead or EOFError("the process ended"))
                self._child.kill()
                self._child = None
                if self._failures >= MAX_FAILURES:
                    return None
            try:
                self._start()
            except OSError as err:
                self._count(err)
                return None
        return self._child

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
            child = self._started()
            if child is None:
                return None
            self._used = time.monotonic()
        fut = child.send(wire.frame(wire.pack_requests(requests)))
        fut.child = child  # type: ignore[attr-defined]
        return fut

    def result(self, fut: Future) -> tuple[dict[str, pa.Table], list[str]] | None:
        """The reply a :meth:`send` future stands for, or None (the caller makes those
        rows itself: the process failed, and is killed, or could not read them). Never
        waits for the process to end: it may run in the thread that reads it."""
        try:
            tables, problems, error = wire.unpack_reply(fut.result())
        except Exception as err:  # noqa: BLE001  (a garbled reply: struct, JSON, Arrow...)
            with self._lock:
                child = fut.child
                if child is self._child:  # (not counted yet: the others in flight fail
                    self._count(err)      # with it)
                    self._child = None
                    child.kill()  # (its reader reaps it)
            return None
        with self._lock:
            self._failures = 0
            self._used = time.monotonic()
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
        here = str(Path(__file__).resolve().parent.parent.parent)
        self._child = _Child(launcher.spawn(
            [sys.executable, "-P", "-c", _BOOT, here], cwd=here, env=launcher.child_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        self._used = time.monotonic()
        if self._timer is None:
            self._arm_idle(IDLE_S)

    def _arm_idle(self, seconds: float) -> None:
        try:
            self._timer = threading.Timer(seconds, self._idle)
            self._timer.daemon = True
            self._timer.start()
        except RuntimeError:  # (interpreter shutdown: it ends with the server anyway)
            self._timer = None

    def _idle(self) -> None:
        with self._lock:
            self._timer = None
            if self._closed or self._child is None:
                return
            left = self._used + IDLE_S - time.monotonic()
            if left <= 0 and not self._child.in_flight():
                self._stop()
            else:
                self._arm_idle(max(left, 1.0))

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
        """For tests and health: whether it runs, and its failures in a row."""
        return {"running": self.running(), "pid": self.pid, "failures": self._failures}
