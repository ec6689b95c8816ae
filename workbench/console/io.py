"""The consoles' event loop: one thread whose asyncio loop reads every pseudo-terminal.

A PTY's output is read when the kernel says it is readable (``loop.add_reader``), never by
polling, and in one thread for all of them — not a thread per terminal, and not Tornado's
loop, so that consoles work the same in the server, a notebook or the CLI. Everything that
touches a terminal's state runs here; other threads hand work in with :func:`call`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """The consoles' loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None:
            new = asyncio.new_event_loop()
            threading.Thread(target=new.run_forever, name="console-io", daemon=True).start()
            _loop = new
        return _loop


def on_loop() -> bool:
    """Whether the caller runs on the consoles' loop."""
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


def call(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the consoles' loop (at once when already there)."""
    if on_loop():
        fn(*args)
    else:
        loop().call_soon_threadsafe(fn, *args)


def run(fn: Callable[..., Any], *args: Any, timeout: float = 10) -> Any:
    """Run ``fn(*args)`` on the consoles' loop and return its result (from another
    thread: waits for it)."""
    if on_loop():
        return fn(*args)

    async def wrapped() -> Any:
        return fn(*args)

    return asyncio.run_coroutine_threadsafe(wrapped(), loop()).result(timeout)


def later(delay: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
    """Run ``fn(*args)`` on the consoles' loop after ``delay`` seconds (call it there)."""
    return loop().call_later(delay, fn, *args)
