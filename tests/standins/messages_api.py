"""A stand-in for Anthropic's Messages API (``POST /v1/messages``, streaming SSE or JSON)
with scripted turns, so that the real Claude Code CLI runs offline against it.

The script reads the conversation as the CLI sends it:

- the last user message holds a ``tool_result`` → a closing text turn ("done: …" with the
  result's text);
- the first prompt contains ``LOOP: <command>`` → a ``Bash`` tool use of that command,
  every turn, for ever (an agent stuck in a loop);
- the prompt contains ``RUN: <command>`` → a ``Bash`` tool use of that command;
- the prompt contains ``SLOW`` → a text turn streamed slowly (about 30 s), to interrupt;
- anything else (including the CLI's own side requests) → a short text turn.

Every request is kept in ``requests`` for the test to inspect.
"""

from __future__ import annotations

import json
import re
import time
from http.server import BaseHTTPRequestHandler
from itertools import count
from typing import Any

from .serving import Serving

_ids = count(1)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            parts.append(_text_of(block.get("content")))
    return "\n".join(parts)


def plan(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, float]:
    """``(content blocks, stop reason, seconds between chunks)`` for one request."""
    # The CLI may append messages of its own (role "system") after the user's.
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    last = users[-1] if users else {"content": ""}
    content = last.get("content")
    loop = re.search(r"LOOP: (.+)", _text_of(users[0].get("content")) if users else "")
    if loop:
        return [_bash(loop.group(1))], "tool_use", 0.0
    if isinstance(content, list) and any(b.get("type") == "tool_result" for b in content):
        result = _text_of(content).strip()[:200]
        return [{"type": "text", "text": f"done: {result}"}], "end_turn", 0.0
    prompt = _text_of(content)
    run = re.search(r"RUN: (.+)", prompt)
    if run:
        return [_bash(run.group(1))], "tool_use", 0.0
    if "SLOW" in prompt:
        return [{"type": "text", "text": "thinking " * 60}], "end_turn", 0.5
    return [{"type": "text", "text": "ok"}], "end_turn", 0.0


def _bash(command: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{next(_ids):04d}", "name": "Bash",
            "input": {"command": command.strip(), "description": "scripted command"}}


class MessagesAPI(Serving):
    """``with MessagesAPI() as api:`` serves on ``api.url`` until the block ends."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self._json(200, {"data": [], "has_more": False})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                api.requests.append({"path": self.path, "body": body})
                if not self.path.startswith("/v1/messages"):
                    self._json(200, {})
                    return
                if "count_tokens" in self.path:
                    self._json(200, {"input_tokens": 12})
                    return
                blocks, stop, delay = plan(body)
                model = body.get("model", "claude-sonnet-4-5")
                message = {"id": f"msg_{next(_ids):06d}", "type": "message",
                           "role": "assistant", "model": model, "content": [],
                           "stop_reason": None, "stop_sequence": None,
                           "usage": {"input_tokens": 120, "output_tokens": 1,
                                     "cache_read_input_tokens": 0,
                                     "cache_creation_input_tokens": 0}}
                if not body.get("stream"):
                    self._json(200, {**message, "content": blocks, "stop_reason": stop,
                                     "usage": {**message["usage"], "output_tokens": 20}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self._sse("message_start", {"type": "message_start", "message": message})
                    for i, block in enumerate(blocks):
                        self._block(i, block, delay)
                    self._sse("message_delta", {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop, "stop_sequence": None},
                        "usage": {"output_tokens": 20}})
                    self._sse("message_stop", {"type": "message_stop"})
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the CLI hung up (an interrupt)
                self.close_connection = True

            def _block(self, i: int, block: dict[str, Any], delay: float) -> None:
                if block["type"] == "tool_use":
                    self._sse("content_block_start", {
                        "type": "content_block_start", "index": i,
                        "content_block": {**block, "input": {}}})
                    self._sse("content_block_delta", {
                        "type": "content_block_delta", "index": i,
                        "delta": {"type": "input_json_delta",
                                  "partial_json": json.dumps(block["input"])}})
                else:
                    self._sse("content_block_start", {
                        "type": "content_block_start", "index": i,
                        "content_block": {"type": "text", "text": ""}})
                    words = block["text"].split(" ") if delay else [block["text"]]
                    for word in words:
                        self._sse("content_block_delta", {
                            "type": "content_block_delta", "index": i,
                            "delta": {"type": "text_delta", "text": word + " "}})
                        if delay:
                            time.sleep(delay)
                self._sse("content_block_stop", {"type": "content_block_stop", "index": i})

            def _sse(self, event: str, data: dict[str, Any]) -> None:
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def _json(self, status: int, data: Any) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.serve(Handler)
        self.url = f"http://127.0.0.1:{self.port}"
