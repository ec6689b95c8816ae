"""One console: a child on a pseudo-terminal, the clients attached to it, and what it
printed lately.

Every method runs on the consoles' loop (io.py); other threads go through ``io.call``.

Flow control. Each client acknowledges the bytes its terminal has drawn (xterm.js's write
callback). While a client has more than :data:`HIGH_WATER` bytes unacknowledged, the
reader stops reading the PTY, so the child blocks on a full terminal as it would on a slow
one — but never for longer than :data:`MAX_PAUSE_S`: then the slow client is marked
*behind*, output is read again and not sent to it, and once it has drawn what it had it is
sent the recent screen instead (as on a reattach). A client that held the child for
MAX_PAUSE_S in all within SLOW_S — in one long pause or many short ones — is not waited for
again for SLOW_S (it is left behind at once), so the child is held at most MAX_PAUSE_S in
any SLOW_S by a slow client. A chatty program therefore neither
floods a browser (at most HIGH_WATER bytes in flight each) nor waits on one for long, and
the server holds at most the replay buffer plus HIGH_WATER per client.
"""

from __future__ import annotations

import collections
import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from . import io

#: What a reattaching client is shown: the last bytes the terminal printed.
REPLAY_BYTES = 256 * 1024
#: Undrawn bytes a client may have before the reader pauses (xterm.js draws ~64 KiB in a
#: few frames), and the level at which reading resumes.
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
#: What a client that fell behind is sent when it has caught up: enough for a screen (a
#: 50×200 terminal is 10 KB of text), not the whole replay buffer, so that catching up
#: costs the browser little.
RESYNC_BYTES = 16 * 1024
#: The longest the child waits for a slow client before that client is left behind.
MAX_PAUSE_S = 0.5
#: How long a client that was left behind is not waited for again: while it is slow, it is
#: left behind at once (a flood is not paused for it over and over).
SLOW_S = 10.0
CHUNK = 64 * 1024
#: What a client that fell behind is sent before the recent screen: xterm's full reset.
RESET = b"\x1bc"


@dataclass(eq=False)
class Client:
    """One attached viewer. ``deliver(bytes)`` and ``control(dict)`` are called on the
    consoles' loop and must not block (a websocket hands them to its own loop)."""

    user: str
    writable: bool
    deliver: Callable[[bytes], None]
    control: Callable[[dict[str, Any]], None]
    cols: int = 80
    rows: int = 24
    pending: int = 0
    behind: bool = False
    slow_until: float = 0.0
    #: Seconds this client held the child since ``held_since`` (a window of SLOW_S).
    held: float = 0.0
    held_since: float = 0.0


class Terminal:
    """A child on a PTY. ``kind`` is ``shell`` (a project's shell, ended with its last
    client after a grace period) or ``agent`` (an agent's terminal, which lives as long as
    the agent). ``tee`` gets every output chunk too (an agent's output file, which becomes
    its log events; closed at the end); ``recorder`` (cast.py) keeps a replayable record."""

    def __init__(self, name: str, kind: str, target: str, owner: str, child: Any, *,
                 title: str = "", recorder: Any = None,
                 tee: BinaryIO | None = None,
                 on_input: Callable[[bytes], None] | None = None,
                 on_output: Callable[[], None] | None = None,
                 on_end: Callable[[Terminal], None] | None = None) -> None:
        self.name, self.kind, self.target, self.owner = name, kind, target, owner
        self.title = title or name
        self.child = child
        self.pid: int = child.pid
        self.fd: int = child.fd
        self.created = time.time()
        self.last_input = time.time()
        self.clients: list[Client] = []
        self.replay: collections.deque[bytes] = collections.deque()
        self._replay_size = 0
        self.rows, self.cols = child.getwinsize()
        self.recorder, self.tee = recorder, tee
        self.on_input, self.on_output, self.on_end = on_input, on_output, on_end
        self.ended = False
        self.exit_code: int | None = None
        self.bytes_out = 0
        self.paused_s = 0.0
        self._paused_at: float | None = None
        self._pause_timer: Any = None
        self._holders: list[Client] = []
        self._grace_timer: Any = None
        self._typed_by: set[str] = set()
        os.set_blocking(self.fd, False)

    # -- reading ------------------------------------------------------------------------
    def start(self) -> None:
        io.call(lambda: io.loop().add_reader(self.fd, self._readable))

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, CHUNK)
        except BlockingIOError:
            return
        except OSError as err:  # EIO: every process closed the terminal's other side
            if err.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if not data:
            self._eof()
            return
        self.bytes_out += len(data)
        self.replay.append(data)
        self._replay_size += len(data)
        while self._replay_size - len(self.replay[0]) >= REPLAY_BYTES:
            self._replay_size -= len(self.replay.popleft())
        if self.tee is not None:
            self.tee.write(data)
        if self.recorder is not None:
            self.recorder.output(data)
        if self.on_output is not None:
            self.on_output()
        now = time.monotonic()
        for client in self.clients:
            if client.behind:
                continue
            client.pending += len(data)
            client.deliver(data)
            if client.pending > HIGH_WATER and client.slow_until > now:
                client.behind = True  # (slow lately: not waited for again)
        if any(c.pending > HIGH_WATER and not c.behind for c in self.clients):
            self._pause()

    def _pause(self) -> None:
        if self._paused_at is not None:
            return
        io.loop().remove_reader(self.fd)
        self._paused_at = time.monotonic()
        self._holders = [c for c in self.clients if not c.behind and c.pending > HIGH_WATER]
        self._pause_timer = io.later(MAX_PAUSE_S, self._overdue)

    def _resume(self) -> None:
        if self._paused_at is None or self.ended:
            return
        now = time.monotonic()
        held = now - self._paused_at
        self.paused_s += held
        self._paused_at = None
        for c in self._holders:  # (a client that holds the child often is slow)
            if now - c.held_since > SLOW_S:
                c.held, c.held_since = 0.0, now
            c.held += held
            if c.held >= MAX_PAUSE_S:
                c.slow_until, c.held = now + SLOW_S, 0.0
        if self._pause_timer is not None:
            self._pause_timer.cancel()
        io.loop().add_reader(self.fd, self._readable)

    def _overdue(self) -> None:
        """A client kept the child waiting too long: leave it behind, read on."""
        for client in self.clients:
            if client.pending > LOW_WATER:
                client.behind = True
                client.slow_until = time.monotonic() + SLOW_S
        self._resume()

    def screen(self) -> bytes:
        """The recent output (what a reattaching client is sent first)."""
        return b"".join(self.replay)

    # -- clients ------------------------------------------------------------------------
    def attach(self, client: Client) -> None:
        """Add ``client``; it is sent the recent screen, then everything new."""
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        self.clients.append(client)
        client.control({"type": "attached", **self.info()})
        screen = self.screen()
        if screen:
            client.pending += len(screen)
            client.deliver(screen)
        self._fit()
        if self.ended:
            client.control({"type": "exit", "code": self.exit_code})

    def detach(self, client: Client, grace_s: float) -> None:
        if client in self.clients:
            self.clients.remove(client)
        self._fit()
        if not self.clients:
            if self._paused_at is not None:
                self._resume()
            if self.kind == "shell" and not self.ended:
                self._grace_timer = io.later(grace_s, self._abandoned)
        elif self._paused_at is not None and self._all_drained():
            self._resume()

    def _abandoned(self) -> None:
        self._grace_timer = None
        if not self.clients:
            self.close("its last client left")

    def ack(self, client: Client, count: int) -> None:
        """``client`` has drawn ``count`` more bytes."""
        client.pending = max(0, client.pending - max(0, count))
        if client.behind and client.pending <= LOW_WATER:
            client.behind = False
            screen = RESET + self.screen()[-RESYNC_BYTES:]
            client.pending += len(screen)
            client.deliver(screen)
        if self._paused_at is not None and self._all_drained():
            self._resume()

    def _all_drained(self) -> bool:
        return all(c.pending <= LOW_WATER or c.behind for c in self.clients)

    def resize(self, client: Client, cols: int, rows: int) -> None:
        client.cols, client.rows = max(2, min(cols, 1000)), max(1, min(rows, 500))
        self._fit()

    def _fit(self) -> None:
        """The terminal takes the smallest attached client's size (so that every client
        sees all of it); setting it sends the child SIGWINCH."""
        if not self.clients or self.ended:
            return
        cols = min(c.cols for c in self.clients)
        rows = min(c.rows for c in self.clients)
        if (rows, cols) != (self.rows, self.cols):
            self.rows, self.cols = rows, cols
            try:
                self.child.setwinsize(rows, cols)
            except OSError:
                return
            if self.recorder is not None:
                self.recorder.resize(cols, rows)
            for c in self.clients:
                c.control({"type": "size", "cols": cols, "rows": rows})

    def write(self, client: Client, data: bytes) -> None:
        """Keys ``client`` typed (the caller checked that it may type)."""
        if self.ended or not data:
            return
        self.last_input = time.time()
        self.send(data)

    def send(self, data: bytes) -> None:
        """Write ``data`` to the child's terminal (what a person typed, or an agent's
        message)."""
        if self.ended:
            return
        if self.recorder is not None:
            self.recorder.input(data)
        if self.on_input is not None:
            self.on_input(data)
        view = memoryview(data)
        deadline = time.monotonic() + 1.0
        while view:  # (a few bytes at a time; a child that reads nothing for 1 s loses them)
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.005)
            except OSError:
                return

    def first_keys_of(self, user: str) -> bool:
        """Whether ``user`` types into this terminal for the first time (audited once
        each); marks it. Called by the websockets' thread only: one check-and-set, no
        race."""
        first = user not in self._typed_by
        self._typed_by.add(user)
        return first

    # -- the end ------------------------------------------------------------------------
    def _eof(self) -> None:
        io.loop().remove_reader(self.fd)
        if self._pause_timer is not None:
            self._pause_timer.cancel()
        if self.kind == "shell":
            io.loop().run_in_executor(None, self._reap)
        else:
            self._finish(None)

    def _reap(self) -> None:
        try:
            code: int | None = PtyChild(self.child).wait()
        except Exception:  # (already reaped by its owner)
            code = None
        io.call(self._finish, code)

    def _finish(self, code: int | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.exit_code = code
        if self.recorder is not None:
            self.recorder.close()
        if self.tee is not None:
            self.tee.close()
        for c in self.clients:
            c.control({"type": "exit", "code": code})
        try:  # (through its file object, which would otherwise close the fd number later)
            self.child.fileobj.close()
        except OSError:
            pass
        self.child.closed = True  # (ptyprocess's close() would also kill the child)
        if self.on_end is not None:
            self.on_end(self)

    def close(self, why: str) -> None:
        """End a shell's session (SIGHUP to all of it, SIGKILL to what is left); an agent's
        terminal is ended by its agent, not here."""
        if self.kind != "shell" or self.ended:
            return
        from .. import launcher

        io.loop().run_in_executor(None, launcher.hang_up, self.pid)
        for c in self.clients:
            c.control({"type": "closing", "why": why})

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "target": self.target,
                "title": self.title, "owner": self.owner, "pid": self.pid,
                "created": self.created, "clients": len(self.clients),
                "cols": self.cols, "rows": self.rows, "ended": self.ended,
                "exit_code": self.exit_code, "bytes_out": self.bytes_out,
                "paused_s": round(self.paused_s, 3),
                "last_input": self.last_input,
                "recording": getattr(self.recorder, "name", None)}


class PtyChild:
    """A child on a PTY as its owner sees a ``subprocess.Popen``: ``pid``,
    ``poll()``, ``wait()`` and no pipes. Only the thread in :meth:`wait` reaps it (two
    threads calling ``waitpid`` would race), so ``poll()`` tells what ``wait()`` saw."""

    stdin = stdout = stderr = None

    def __init__(self, pty: Any) -> None:
        self.pty = pty
        self.pid: int = pty.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self) -> int:
        self.pty.wait()
        signalled = self.pty.signalstatus
        self.returncode = -signalled if signalled else (self.pty.exitstatus or 0)
        return self.returncode
