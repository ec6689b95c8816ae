"""The commands people type in project shells: read from bash's own history file, stored
per user and project, searched, and offered for completion with the project's likely
commands.

Guessing commands from keystrokes cannot see what arrow keys recalled or completion
filled in; bash itself can. Each shell gets a history file of its own and
``PROMPT_COMMAND='history -a'``, so bash appends each command as it is run; the file is
read when output follows a typed Enter (no polling).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import utcnow
from ..store import control_writes

if TYPE_CHECKING:
    from ..store import Store

#: What a shell runs before its first prompt (``bash --rcfile``): its prompt, and the
#: history appended to its file after each command. Not the user's ~/.bashrc: a project
#: shell of the workbench is the same for every admin.
RC = r"""
PS1='\[\e[1;36m\]${OBSERVATORY_PROJECT}\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '
HISTSIZE=10000
HISTFILESIZE=10000
HISTCONTROL=ignoredups
shopt -s histappend
PROMPT_COMMAND='history -a'
"""

#: The workbench's own subcommands, offered in every project.
OBSERVATORY = ("observatory runs", "observatory agents list", "observatory tasks list",
               "observatory select --changed", "observatory coverage", "observatory tui",
               "observatory ingest ")


class ShellHistory:
    """One shell's history file, read on from where it was last read."""

    def __init__(self, store: Store, path: Path, who: str, project: str,
                 console: str) -> None:
        self.store, self.path = store, path
        self.who, self.project, self.console = who, project, console
        self._offset = 0
        self._expecting = False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def typed(self, data: bytes) -> None:
        if b"\r" in data or b"\n" in data:
            self._expecting = True

    def printed(self) -> None:
        """Output arrived: after an Enter, bash may have appended the command."""
        if not self._expecting:
            return
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size <= self._offset:
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            raw = f.read(size - self._offset)
        end = raw.rfind(b"\n") + 1  # (a line bash has not finished stays for next time)
        self._offset += end
        self._expecting = False
        commands = [line.strip() for line in raw[:end].decode("utf-8", "replace").split("\n")]
        rows = [[utcnow(), self.who, self.project, c[:4000], self.console] for c in commands
                if c and not (c.startswith("#") and c[1:].isdigit())]  # (timestamps)
        if rows:
            control_writes.console_commands(self.store, rows)


def completions(store: Store, who: str, project: str, prefix: str,
                extra: list[str], limit: int = 20) -> list[dict[str, Any]]:
    """What may complete ``prefix`` in ``project``'s shell: ``who``'s own commands there
    (most recent first), then ``extra`` (its test command, agents' commands) and the
    workbench's subcommands; each once."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    mine = store.query("console_history", who=who, project=project or None, prefix=prefix,
                       limit=limit)
    for command in mine["command"]:
        if command not in seen:
            seen.add(command)
            out.append({"command": command, "source": "history"})
    for source, commands in (("project", extra), ("observatory", list(OBSERVATORY))):
        for command in commands:
            if command.startswith(prefix) and command not in seen:
                seen.add(command)
                out.append({"command": command, "source": source})
    return out[:limit]
