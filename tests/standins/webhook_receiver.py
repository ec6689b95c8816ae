"""A webhook receiver on 127.0.0.1: keeps every request (headers and raw body) and answers
with the statuses it is scripted to (then 200), so a test sees retries as they happen."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any

from .serving import Serving


class Receiver(Serving):
    """``with Receiver(port, fail_first=2) as r:`` — ``r.requests`` fills as POSTs arrive."""

    def __init__(self, port: int = 0, fail_first: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[int] = []
        receiver = self
        self._fail = fail_first

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = 500 if receiver._fail > 0 else 200
                receiver._fail -= 1
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.serve(Handler, port)
        self.url = f"http://127.0.0.1:{self.port}/hook"
