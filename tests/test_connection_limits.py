"""One client must not take the server down: connection caps, idle/header/body time-outs
and a bounded log, on the main port and on the extra OTLP port (a real server)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from .conftest import Served, free_port

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

CAP, PER_CLIENT, IDLE, BODY = 200, 50, 2.0, 3.0


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    db = tmp_path_factory.mktemp("caps") / "c.duckdb"
    otlp = free_port()
    s = Served(db, env={"OBSERVATORY_NO_DEMO": "1", "OBSERVATORY_MAX_CONNECTIONS": str(CAP),
                        "OBSERVATORY_MAX_CLIENT_CONNECTIONS": str(PER_CLIENT),
                        "OBSERVATORY_IDLE_TIMEOUT": str(IDLE),
                        "OBSERVATORY_BODY_TIMEOUT": str(BODY)},
               extra_args=("--otlp-port", str(otlp)), ready_path="/api/health")
    s.otlp_url = f"http://127.0.0.1:{otlp}"
    yield s
    s.stop()


def _connect(url: str, source: str = "127.0.0.2") -> socket.socket:
    """A connection from another loopback address: another client, as far as the server
    can tell."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect((host, int(port)))
    sock.settimeout(0)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False  # still open, nothing to read
    except OSError:
        return True  # reset


def _wait_closed(socks: list[socket.socket], seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        n = sum(_closed_by_server(s) for s in socks)
        if n == len(socks):
            return n
        time.sleep(0.1)
    return sum(_closed_by_server(s) for s in socks)


@pytest.mark.parametrize("port", ["main", "otlp"])
def test_a_flood_of_idle_connections_does_not_stop_others(capped, port):
    url = capped.url if port == "main" else capped.otlp_url
    flood = [_connect(url) for _ in range(4 * PER_CLIENT)]
    try:
        time.sleep(0.5)
        refused = sum(_closed_by_server(s) for s in flood)
        assert refused >= 3 * PER_CLIENT - 5  # over the per-client cap: closed at once
        start = time.monotonic()
        with httpx.Client(timeout=5) as client:  # another client is served at once
            assert client.get(capped.url + "/api/health").status_code == 200
            r = client.post(capped.otlp_url + "/v1/traces", content=b"{}",
                            headers={"Content-Type": "application/json"})
            assert r.status_code == 200
        assert time.monotonic() - start < 2
        # The rest are idle: closed once the idle time-out is over, not held for an hour.
        assert _wait_closed(flood, IDLE + 3) == len(flood)
    finally:
        for s in flood:
            s.close()
    log = capped.log.read_text()
    assert "refused" in log
    assert log.count("connection from 127.0.0.2 refused") <= 21  # rate-limited lines
    assert "Too many open files" not in log


def _trickle(capped, opening: bytes, byte: bytes, limit: float) -> float:
    """Send ``opening``, then one ``byte`` every 0.4 s while checking that another client
    is still served; return the seconds until the server closed the connection."""
    slow = _connect(capped.url)
    slow.sendall(opening)
    start = time.monotonic()
    try:
        while time.monotonic() - start < limit + 4:
            try:
                slow.sendall(byte)
            except OSError:
                return time.monotonic() - start
            assert httpx.get(capped.url + "/api/health", timeout=2).status_code == 200
            if _closed_by_server(slow):
                return time.monotonic() - start
            time.sleep(0.4)
    finally:
        slow.close()
    raise AssertionError(f"a slow client held its connection past the {limit} s time-out")


def test_a_client_that_sends_headers_slowly_is_cut_off_and_hurts_no_one(capped):
    _trickle(capped, b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X", IDLE)


def test_a_client_that_sends_its_body_slowly_is_cut_off_and_hurts_no_one(capped):
    took = _trickle(capped, b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
                    b" ", BODY)
    assert took > BODY - 1  # but not before its time was up


def test_the_log_lets_a_burst_through_then_says_how_many_it_held_back():
    import logging

    from workbench.server.limits import LogRateLimit

    limit = LogRateLimit()
    records = [logging.LogRecord("tornado.general", logging.ERROR, __file__, 1,
                                 "accept failed: %s", ("EMFILE",), None) for _ in range(500)]
    passed = [r for r in records if limit.filter(r)]
    assert len(passed) == LogRateLimit.BURST
    other = logging.LogRecord("x", logging.INFO, __file__, 1, "another kind", (), None)
    assert limit.filter(other)  # one noisy kind does not silence the rest
    limit._seen[("tornado.general", "accept failed: %s")][0] -= LogRateLimit.WINDOW
    later = logging.LogRecord("tornado.general", logging.ERROR, __file__, 1,
                              "accept failed: %s", ("EMFILE",), None)
    assert limit.filter(later)
    assert later.getMessage().startswith("[480 similar messages held back")
