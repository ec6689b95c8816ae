"""A stand-in for OpenAI's Responses API (``POST /v1/responses``, streaming SSE) with
scripted turns, so that the real Codex CLI runs offline against it (a custom model
provider with ``wire_api = "responses"``).

- the newest input item is a function call's output → a closing message ("done: …");
- the user's text contains ``RUN: <command>`` → an ``exec_command`` call of that command;
- anything else → a short message.

Every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from itertools import count
from typing import Any

from .serving import Serving

_ids = count(1)


def _user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return "\n".join(c.get("text", "") for c in content or [] if isinstance(c, dict))
    return ""


def plan(body: dict[str, Any]) -> dict[str, Any]:
    """The one output item of this turn."""
    items = [i for i in body.get("input") or [] if isinstance(i, dict)]
    last = items[-1] if items else {}
    if last.get("type") == "function_call_output":
        output = last.get("output")
        text = output if isinstance(output, str) else json.dumps(output)
        return {"type": "message", "role": "assistant", "id": f"msg_{next(_ids)}",
                "status": "completed",
                "content": [{"type": "output_text", "text": f"done: {text[:200]}",
                             "annotations": []}]}
    run = re.search(r"RUN: (.+)", _user_text(items))
    if run:
        return {"type": "function_call", "id": f"fc_{next(_ids)}", "status": "completed",
                "call_id": f"call_{next(_ids)}", "name": "exec_command",
                "arguments": json.dumps({"cmd": run.group(1).strip()})}
    return {"type": "message", "role": "assistant", "id": f"msg_{next(_ids)}",
            "status": "completed", "content": [{"type": "output_text", "text": "ok",
                                                "annotations": []}]}


class ResponsesAPI(Serving):
    """``with ResponsesAPI() as api:`` serves on ``api.url`` (the provider's base_url)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                raw = json.dumps({"object": "list", "data": [], "models": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                api.requests.append({"path": self.path, "body": body})
                item = plan(body)
                rid = f"resp_{next(_ids)}"
                base = {"id": rid, "object": "response", "model": body.get("model", "gpt-5"),
                        "output": []}
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                events = [
                    ("response.created", {"response": {**base, "status": "in_progress"}}),
                    ("response.output_item.added", {"output_index": 0, "item": item}),
                    ("response.output_item.done", {"output_index": 0, "item": item}),
                    ("response.completed", {"response": {
                        **base, "status": "completed", "output": [item],
                        "usage": {"input_tokens": 100, "input_tokens_details": {
                            "cached_tokens": 0}, "output_tokens": 12,
                            "output_tokens_details": {"reasoning_tokens": 0},
                            "total_tokens": 112}}}),
                ]
                try:
                    for n, (kind, data) in enumerate(events):
                        payload = {"type": kind, "sequence_number": n, **data}
                        self.wfile.write(f"event: {kind}\ndata: {json.dumps(payload)}\n\n"
                                         .encode())
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self.serve(Handler)
        self.url = f"http://127.0.0.1:{self.port}/v1"
