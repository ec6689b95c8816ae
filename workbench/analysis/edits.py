"""Which files an agent's tool call changed, read from the call itself: Claude Code's
``Edit``/``Write``/``MultiEdit``/``NotebookEdit`` name a ``file_path``; Codex's file
changes name their paths; a shell command (``Bash``, ``exec_command``) that writes
(redirection, ``sed -i``, ``tee``, ``mv``, ``cp``, ``patch``…) is read for the paths it
names. Used by the alert rules (a "stall" is no edit) and by the link from a failing test
to the session that broke it."""

from __future__ import annotations

import difflib
import os
import re
import shlex
from typing import Any

EDIT_TOOLS = {"Edit", "Write", "MultiEdit", "NotebookEdit", "apply_patch", "fileChange"}
SHELL_TOOLS = {"Bash", "exec_command", "shell", "local_shell"}
# A shell command that may change files: these words or a redirection.
_WRITES = re.compile(r"(^|[\s;&|(])(sed\s+-i|perl\s+-p?i|tee|mv|cp|rm|patch|truncate|touch|"
                     r"git\s+(apply|checkout|restore|mv|rm|am|cherry-pick|revert|merge)"
                     r")\b|>{1,2}")
_PATHLIKE = re.compile(r"^[\w./\\-]+\.[A-Za-z0-9]{1,8}$")


def edited_paths(tool: str | None, tool_input: Any, cwd: str | None = None) -> list[str]:
    """The paths ``tool`` called with ``tool_input`` wrote, relative to ``cwd`` when inside
    it; empty when it wrote nothing that can be told."""
    if not isinstance(tool_input, dict):
        return []
    paths: list[str] = []
    if tool in EDIT_TOOLS:
        for key in ("file_path", "notebook_path", "path"):
            if isinstance(tool_input.get(key), str):
                paths.append(tool_input[key])
        for change in tool_input.get("changes") or []:
            if isinstance(change, dict) and isinstance(change.get("path"), str):
                paths.append(change["path"])
    elif tool in SHELL_TOOLS:
        command = tool_input.get("command", tool_input.get("cmd"))
        if isinstance(command, list):
            command = " ".join(str(c) for c in command)
        if isinstance(command, str) and _WRITES.search(command):
            paths = [w for w in _words(command) if not w.startswith("-") and (
                _PATHLIKE.search(w) or (cwd and os.path.isfile(os.path.join(cwd, w))))]
    return sorted({relative(p, cwd) for p in paths})


def _words(command: str) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    out = []
    for word in words:  # "a>b.txt" and "2>err.log" are a redirection into a path
        out.extend(w for w in re.split(r"[<>|;&]+", word) if w and not w.isdigit())
    return out


def relative(path: str, cwd: str | None) -> str:
    path = path.replace("\\", "/")
    if cwd and os.path.isabs(path):
        try:
            rel = os.path.relpath(path, cwd)
        except ValueError:
            return path
        if not rel.startswith(".."):
            return rel.replace("\\", "/")
    return path[2:] if path.startswith("./") else path


def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same file as far as can be told: equal, or one is a
    path-component suffix of the other (a stack frame's absolute path and an edit's
    relative one)."""
    a, b = a.replace("\\", "/").lstrip("./"), b.replace("\\", "/").lstrip("./")
    if not a or not b:
        return False
    short, long = sorted((a, b), key=len)
    return long == short or long.endswith("/" + short)


def diff_of(tool: str | None, tool_input: Any, limit: int = 60) -> str:
    """What the call changed, as a unified diff when the call says (Edit: old and new
    text; Write: the new content), else the command."""
    if not isinstance(tool_input, dict):
        return ""
    name = tool_input.get("file_path") or tool_input.get("path") or "file"
    edits = tool_input.get("edits") if tool == "MultiEdit" else [tool_input]
    if tool in ("Edit", "MultiEdit"):
        lines: list[str] = []
        for edit in edits or []:
            if isinstance(edit, dict):
                lines += difflib.unified_diff(
                    str(edit.get("old_string", "")).splitlines(),
                    str(edit.get("new_string", "")).splitlines(), f"a/{name}", f"b/{name}",
                    lineterm="")
        return "\n".join(lines[:limit])
    if tool in ("fileChange", "apply_patch"):  # Codex: each change carries its diff
        return "\n".join(f"--- {c.get('path')} ({c.get('kind')})\n{c.get('diff') or ''}"
                         for c in tool_input.get("changes") or [] if isinstance(c, dict))
    if tool == "Write":
        content = str(tool_input.get("content", "")).splitlines()
        return "\n".join([f"+++ b/{name}", *("+" + x for x in content[:limit])])
    command = tool_input.get("command", tool_input.get("cmd"))
    return f"$ {command}" if command else ""
