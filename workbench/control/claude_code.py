"""Claude Code as an agent (``backend: "claude-code"``), driven through the CLI's
stream-json control protocol — what the official claude-agent-sdk speaks:

    claude -p --input-format stream-json --output-format stream-json --verbose
           --permission-prompt-tool stdio

Prompts go in as ``user`` lines; every event comes out as a line (``system``/init with the
session id, ``assistant`` with text and tool uses, ``user`` with tool results, ``result``
with cost and usage). A tool call that needs permission arrives as a ``control_request``
of subtype ``can_use_tool``: it becomes an approval, and the answer goes back as a
``control_response`` (``behavior`` allow or deny). The workbench's own requests
(``initialize``, ``interrupt``, ``set_model``, ``set_permission_mode``) are control
requests the other way. The protocol is spoken directly rather than through the SDK, whose
asyncio client would need an event loop per agent beside the supervisor's threads.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import param

from .process import CLIBackend, find_cli

_requests = itertools.count(1)


def find_binary(configured: str = "") -> str | None:
    """The ``claude`` CLI to run (see :func:`~workbench.control.process.find_cli`)."""
    return find_cli("claude", configured)


class ClaudeCodeConfig(param.Parameterized):
    binary = param.String("", doc="path of the `claude` CLI (default: on PATH)")
    model = param.String("", doc="model name or alias; changed live on a running session")
    permission_mode = param.Selector(
        default="default", objects=["default", "acceptEdits", "plan", "bypassPermissions"],
        doc="changed live on a running session")
    resume = param.String("", doc="a session id to resume")
    max_turns = param.Integer(None, bounds=(1, 1000), allow_None=True)


class ClaudeCodeBackend(CLIBackend):
    name = "claude-code"
    Config = ClaudeCodeConfig
    cli, package = "claude", "@anthropic-ai/claude-code"

    def __init__(self, agent) -> None:
        super().__init__(agent)
        self._cost_at_launch = agent.cost_usd or 0.0
        self._cost = 0.0

    def argv(self) -> list[str]:
        config = self.agent.spec["config"]
        argv = [self.binary(), "-p", "--input-format", "stream-json", "--output-format",
                "stream-json", "--verbose", "--permission-prompt-tool", "stdio"]
        # (values joined to their option: a value can never stand as an option itself)
        if config.get("model"):
            argv.append(f"--model={config['model']}")
        if config.get("permission_mode") not in (None, "default"):
            argv += ["--permission-mode", config["permission_mode"]]
        resume = config.get("resume") or self.agent.session_id
        if resume:
            argv.append(f"--resume={resume}")
        if config.get("max_turns"):
            argv += ["--max-turns", str(config["max_turns"])]
        return argv

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.agent.telemetry_env("claude-code")}

    def started(self) -> None:
        self._control({"subtype": "initialize", "hooks": None})
        prompt = self.agent.spec.get("prompt")
        if prompt and not self.agent.prompted:
            self.agent.prompted = True
            self.message(prompt)
        else:
            self.agent.set_state("idle")

    # -- in -----------------------------------------------------------------------------
    def _send(self, obj: dict[str, Any]) -> None:
        self.write_line(json.dumps(obj))

    def _control(self, request: dict[str, Any]) -> None:
        self._send({"type": "control_request", "request_id": f"wb_{next(_requests)}",
                    "request": request})

    def message(self, text: str) -> None:
        self._send({"type": "user", "message": {"role": "user", "content": text},
                    "parent_tool_use_id": None, "session_id": self.agent.session_id or "default"})
        self.agent.emit("prompt", text)
        self.agent.set_state("running")

    def interrupt(self) -> None:
        self._control({"subtype": "interrupt"})

    def apply_config(self, config: dict[str, Any]) -> bool:
        old = self.agent.spec["config"]
        if {k for k in config if config[k] != old.get(k)} - {"model", "permission_mode"}:
            return False
        if config["model"] != old.get("model") and config["model"]:
            self._control({"subtype": "set_model", "model": config["model"]})
        if config["permission_mode"] != old.get("permission_mode"):
            self._control({"subtype": "set_permission_mode", "mode": config["permission_mode"]})
        return True

    def cost(self) -> float | None:
        return self._cost_at_launch + self._cost

    # -- out ----------------------------------------------------------------------------
    def on_stdout(self, line: str) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            self.tail.append(line)
            self.agent.emit("log", line, {"stream": "stdout"})
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "control_request":
            self._on_control(msg)
        elif kind == "control_response":
            response = msg.get("response") or {}
            if response.get("subtype") == "error":
                self.agent.emit("control_error", str(response.get("error"))[:500], response)
        elif kind == "system" and msg.get("subtype") == "init":
            self.agent.set_session(msg.get("session_id"))
            self.agent.emit("init", f"session {msg.get('session_id')} model {msg.get('model')}",
                            {k: msg.get(k) for k in ("session_id", "model", "cwd",
                                                     "permissionMode")})
        elif kind == "assistant":
            for block in (msg.get("message") or {}).get("content") or []:
                if block.get("type") == "text":
                    self.agent.emit("assistant", block.get("text", ""))
                elif block.get("type") == "tool_use":
                    self.agent.emit("tool_use", f"{block.get('name')}: "
                                    f"{_input_text(block.get('input'))}",
                                    {"tool": block.get("name"), "id": block.get("id"),
                                     "input": block.get("input")})
        elif kind == "user":
            for block in (msg.get("message") or {}).get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    self.agent.emit("tool_result", _content_text(block.get("content"))[:2000],
                                    {"id": block.get("tool_use_id"),
                                     "is_error": bool(block.get("is_error"))})
        elif kind == "result":
            self._cost = float(msg.get("total_cost_usd") or 0.0)
            self.agent.set_cost(self.cost())
            self.agent.emit("result", str(msg.get("result") or msg.get("subtype"))[:2000],
                            {k: msg.get(k) for k in ("subtype", "is_error", "num_turns",
                                                     "duration_ms", "total_cost_usd", "usage",
                                                     "session_id")})
            self.agent.set_state("idle")

    def _on_control(self, msg: dict[str, Any]) -> None:
        request_id = msg.get("request_id")
        request = msg.get("request") or {}
        if request.get("subtype") != "can_use_tool":
            self._send({"type": "control_response", "response": {
                "subtype": "error", "request_id": request_id,
                "error": f"unsupported control request {request.get('subtype')!r}"}})
            return
        tool_input = request.get("input") or {}

        def answer(decision: str, message: str) -> None:
            response: dict[str, Any] = (
                {"behavior": "allow", "updatedInput": tool_input} if decision != "deny"
                else {"behavior": "deny", "message": message or "denied in the workbench"})
            try:
                self._send({"type": "control_response", "response": {
                    "subtype": "success", "request_id": request_id, "response": response}})
            except ValueError:
                pass  # the session ended while the request waited

        self.agent.ask(str(request.get("tool_name")), tool_input, answer,
                       reason=request.get("decision_reason") or request.get("description"))


def _input_text(value: Any) -> str:
    if isinstance(value, dict) and "command" in value:
        return str(value["command"])
    return json.dumps(value, default=str)[:500]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)
