"""Codex as an agent (``backend: "codex"``), driven through ``codex app-server``: JSON-RPC
2.0 over stdio (one JSON object per line).

The workbench is the client: ``initialize`` (then the ``initialized`` notification),
``thread/start`` (or ``thread/resume`` with a thread id) with the working directory,
approval policy and sandbox, ``turn/start`` for each prompt, ``turn/interrupt``. The
server's notifications are the agent's events (``item/started`` and ``item/completed`` for
messages, commands and file changes, ``turn/completed``, token usage); its requests
``item/commandExecution/requestApproval`` and ``item/fileChange/requestApproval`` become
approvals, answered ``accept``, ``acceptForSession`` or ``decline``.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import param

from .process import CLIBackend, find_cli

#: A ``-c`` setting: ``key=value`` whose key is a dotted name (never an option).
_OVERRIDE = re.compile(r"^[A-Za-z0-9_][\w.\-]*=")
DECISIONS = {"allow": "accept", "allow_session": "acceptForSession", "deny": "decline"}


def find_binary(configured: str = "") -> str | None:
    """The ``codex`` CLI to run (see :func:`~workbench.control.process.find_cli`)."""
    return find_cli("codex", configured)


class CodexConfig(param.Parameterized):
    binary = param.String("", doc="path of the `codex` CLI (default: on PATH)")
    model = param.String("", doc="model name")
    approval_policy = param.Selector(
        default="untrusted", objects=["untrusted", "on-request", "on-failure", "never"],
        doc="when Codex asks before it acts (`untrusted`: every command not known safe)")
    sandbox = param.Selector(
        default="workspace-write",
        objects=["read-only", "workspace-write", "danger-full-access"])
    resume = param.String("", doc="a thread id to resume")
    overrides = param.List([], item_type=str,
                           doc="`key=value` settings passed as `-c` (e.g. a model provider)")


class CodexBackend(CLIBackend):
    name = "codex"
    Config = CodexConfig
    cli, package = "codex", "@openai/codex"

    def __init__(self, agent) -> None:
        super().__init__(agent)
        self._ids = itertools.count(1)
        self._calls: dict[int, str] = {}
        self._turn: str | None = None

    def argv(self) -> list[str]:
        config = self.agent.spec["config"]
        argv = [self.binary(), "app-server"]
        for item in config.get("overrides") or []:
            if not _OVERRIDE.match(item):
                raise ValueError(f"config.overrides: {item[:60]!r} is not key=value")
            argv += ["-c", item]
        return argv

    # -- in -----------------------------------------------------------------------------
    def _call(self, method: str, params: dict[str, Any]) -> None:
        call = next(self._ids)
        self._calls[call] = method
        self.write_line(json.dumps({"jsonrpc": "2.0", "id": call, "method": method,
                                    "params": params}))

    def _reply(self, request_id: Any, result: dict[str, Any] | None = None,
               error: str | None = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if error is None:
            msg["result"] = result or {}
        else:
            msg["error"] = {"code": -32601, "message": error}
        try:
            self.write_line(json.dumps(msg))
        except ValueError:
            pass  # the session ended while the request waited

    def started(self) -> None:
        self._call("initialize", {"clientInfo": {"name": "happy-observatory",
                                                 "version": "0.1"}})

    def _open_thread(self) -> None:
        config = self.agent.spec["config"]
        resume = config.get("resume") or self.agent.session_id
        params: dict[str, Any] = {"cwd": self.agent.spec.get("cwd"),
                                  "approvalPolicy": config.get("approval_policy"),
                                  "sandbox": config.get("sandbox")}
        if config.get("model"):
            params["model"] = config["model"]
        if resume:
            self._call("thread/resume", {**params, "threadId": resume})
        else:
            self._call("thread/start", params)

    def message(self, text: str) -> None:
        if not self.agent.session_id:
            raise ValueError("the codex thread is not open yet")
        self._call("turn/start", {"threadId": self.agent.session_id,
                                  "input": [{"type": "text", "text": text}]})
        self.agent.emit("prompt", text)
        self.agent.set_state("running")

    def interrupt(self) -> None:
        if self._turn and self.agent.session_id:
            self._call("turn/interrupt", {"threadId": self.agent.session_id,
                                          "turnId": self._turn})


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
        if "method" in msg and "id" in msg:
            self._on_request(msg)
        elif "method" in msg:
            self._on_notification(msg["method"], msg.get("params") or {})
        elif "id" in msg:
            self._on_result(self._calls.pop(msg["id"], ""), msg)

    def _on_result(self, method: str, msg: dict[str, Any]) -> None:
        if "error" in msg:
            error = str((msg.get("error") or {}).get("message"))[:500]
            self.agent.emit("control_error", f"{method}: {error}", msg.get("error"))
            if method in ("initialize", "thread/start", "thread/resume"):
                self.tail.append(f"{method}: {error}")
                self.kill()
            return
        result = msg.get("result") or {}
        if method == "initialize":
            self.write_line(json.dumps({"jsonrpc": "2.0", "method": "initialized"}))
            self._open_thread()
        elif method in ("thread/start", "thread/resume"):
            thread = result.get("thread") or {}
            self.agent.set_session(thread.get("id"))
            self.agent.emit("init", f"thread {thread.get('id')}",
                            {"thread": thread.get("id"), "model": result.get("model")})
            prompt = self.agent.spec.get("prompt")
            if prompt and not self.agent.prompted:
                self.agent.prompted = True
                self.message(prompt)
            else:
                self.agent.set_state("idle")

    def _on_notification(self, method: str, params: dict[str, Any]) -> None:
        item = params.get("item") or {}
        kind = item.get("type")
        if method == "turn/started":
            self._turn = (params.get("turn") or {}).get("id")
        elif method == "item/started" and kind == "commandExecution":
            self.agent.emit("tool_use", f"exec_command: {item.get('command')}",
                            {"tool": "exec_command", "id": item.get("id"),
                             "input": {"cmd": item.get("command")}})
        elif method == "item/completed" and kind == "commandExecution":
            output = str(item.get("aggregatedOutput") or "")
            self.agent.emit("tool_result", output[:2000] or f"exit {item.get('exitCode')}",
                            {"id": item.get("id"), "exit_code": item.get("exitCode"),
                             "status": item.get("status")})
        elif method == "item/started" and kind == "fileChange":
            # (a tool call of its own, so that the edit is linked to the tests it breaks)
            changes = item.get("changes") or []
            self.agent.emit("tool_use", "fileChange: " + ", ".join(
                str(c.get("path")) for c in changes if isinstance(c, dict)),
                {"tool": "fileChange", "id": item.get("id"), "input": {"changes": changes}})
        elif method == "item/completed" and kind == "fileChange":
            self.agent.emit("tool_result", f"file change {item.get('status')}",
                            {"id": item.get("id"), "changes": item.get("changes"),
                             "is_error": item.get("status") not in (None, "completed")})
        elif method == "item/completed" and kind == "agentMessage":
            self.agent.emit("assistant", str(item.get("text") or ""))
        elif method == "thread/tokenUsage/updated":
            self._usage = (params.get("tokenUsage") or {}).get("total")
        elif method == "turn/completed":
            turn = params.get("turn") or {}
            self._turn = None
            self.agent.emit("result", str(turn.get("status")),
                            {"status": turn.get("status"), "error": turn.get("error"),
                             "usage": getattr(self, "_usage", None)})
            self.agent.set_state("idle")
        elif method == "error":
            self.agent.emit("control_error", json.dumps(params)[:500], params)

    def _on_request(self, msg: dict[str, Any]) -> None:
        method, params = msg["method"], msg.get("params") or {}
        if method == "item/commandExecution/requestApproval":
            tool, tool_input = "exec_command", {"cmd": params.get("command"),
                                                "cwd": params.get("cwd")}
        elif method == "item/fileChange/requestApproval":
            tool, tool_input = "apply_patch", {"changes": params.get("changes"),
                                               "grant_root": params.get("grantRoot")}
        else:
            self._reply(msg["id"], error=f"{method} is not supported by the workbench")
            return

        def answer(decision: str, message: str) -> None:
            self._reply(msg["id"], {"decision": DECISIONS.get(decision, "decline")})

        self.agent.ask(tool, tool_input, answer, reason=params.get("reason"))
