"""One client must not take the server down: connection caps, time-outs, and a log that
cannot flood the disk — on every listener of the process (the main port and --otlp-port).

~20,000 idle half-open connections from one client once made every request time out and
wrote 1.37 GB of "Too many open files" in 90 s. Here:

- every HTTP server of the process is a :class:`LimitedHTTPServer` (through Tornado's own
  ``Configurable.configure``, so Bokeh's server and the OTLP listener alike): a cap on open
  connections per client address and in all, below the file-descriptor limit, so there is
  always room to serve; a connection over a cap is closed at once, and counted;
- idle keep-alive connections and clients that send their headers slowly are closed after
  ``OBSERVATORY_IDLE_TIMEOUT`` seconds, bodies that take longer than
  ``OBSERVATORY_BODY_TIMEOUT`` seconds are cut off;
- every log handler lets through at most :data:`LogRateLimit.BURST` records of the same
  kind a minute, and says how many it held back.
"""

from __future__ import annotations

import logging
import resource
import time
from collections import Counter

from tornado.httpserver import HTTPServer

from .. import config

log = logging.getLogger("workbench.server")

#: File descriptors kept free for the database, websockets already upgraded, and logs.
FD_RESERVE = 256


def _raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one; return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


class LimitedHTTPServer(HTTPServer):
    """Tornado's HTTP server with connection caps shared by every listener of the process."""

    max_total = 4096
    max_per_client = 512
    #: Open connections per client address, over all listeners.
    open_by_client: Counter[str] = Counter()
    _client_of: dict[int, str] = {}
    refused = 0

    def handle_stream(self, stream, address) -> None:
        client = address[0] if isinstance(address, tuple) else str(address)
        cls = LimitedHTTPServer
        if (len(cls._client_of) >= cls.max_total
                or cls.open_by_client[client] >= cls.max_per_client):
            cls.refused += 1
            log.warning("connection from %s refused: %d open from it, %d in all (caps %d "
                        "and %d; %d refused so far)", client, cls.open_by_client[client],
                        len(cls._client_of), cls.max_per_client, cls.max_total, cls.refused)
            stream.close()
            return
        cls._client_of[id(stream)] = client  # on_close gets the connection of this stream
        cls.open_by_client[client] += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        cls = LimitedHTTPServer
        client = cls._client_of.pop(id(server_conn.stream), None)  # type: ignore[attr-defined]
        if client is not None:
            cls.open_by_client[client] -= 1
            if cls.open_by_client[client] <= 0:
                del cls.open_by_client[client]


class LogRateLimit(logging.Filter):
    """At most :attr:`BURST` records of one kind (logger and message template) per minute;
    the first one let through after a quiet spell says how many were held back."""

    BURST = 20
    WINDOW = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[tuple[str, str], list] = {}  # kind -> [window start, count, held]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        state = self._seen.get(key)
        if state is None or now - state[0] >= self.WINDOW:
            held = state[2] if state else 0
            self._seen[key] = [now, 1, 0]
            if len(self._seen) > 10_000:  # kinds are few; never grow without bound
                self._seen = {key: self._seen[key]}
            if held:
                record.msg = f"[{held} similar messages held back in the last minute] " \
                             f"{record.msg}"
            return True
        state[1] += 1
        if state[1] <= self.BURST:
            return True
        state[2] += 1
        return False


def install() -> None:
    """Apply the caps, time-outs and log limit to this process (idempotent)."""
    if HTTPServer.configured_class() is LimitedHTTPServer:
        return
    soft = _raise_fd_limit()
    cap = config.get("OBSERVATORY_MAX_CONNECTIONS")
    LimitedHTTPServer.max_total = max(16, min(cap, soft - FD_RESERVE))
    LimitedHTTPServer.max_per_client = min(config.get("OBSERVATORY_MAX_CLIENT_CONNECTIONS"),
                                           LimitedHTTPServer.max_total)
    HTTPServer.configure(LimitedHTTPServer,
                         idle_connection_timeout=config.get("OBSERVATORY_IDLE_TIMEOUT"),
                         body_timeout=config.get("OBSERVATORY_BODY_TIMEOUT"))
    limit = LogRateLimit()
    loggers = [logging.root, *(lg for lg in logging.root.manager.loggerDict.values()
                               if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            handler.addFilter(limit)
