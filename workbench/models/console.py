"""The consoles as a page or a notebook sees them: which terminals are open, which projects
a shell may be opened in, the recordings, the shell history — and the actions, each
checked for the caller's role by control/consoles.py and audited."""

from __future__ import annotations

from typing import Any

import param

from ..control.consoles import CONSOLES


class ConsoleModel(param.Parameterized):
    store = param.Parameter(doc="the workbench's Store")
    principal = param.Parameter(doc="who acts (control.access.Principal)")

    @property
    def role(self) -> str:
        return self.principal.role

    def may(self, action: str) -> bool:
        return self.principal.may(action)

    def consoles(self) -> list[dict[str, Any]]:
        """Open consoles the caller may see: agents' terminals, and shells for admins."""
        return sorted(CONSOLES.list(self.principal), key=lambda c: -c["created"])

    def projects(self) -> list[str]:
        """Projects with a folder (where a shell may be opened)."""
        frame = self.store.query("scanned_projects")
        return sorted({n for n in frame.get("name", []) if isinstance(n, str) and n})

    def open_shell(self, project: str, cols: int = 120, rows: int = 32) -> str:
        return CONSOLES.open_shell(self.store, self.principal, project, size=(rows, cols)).name

    def close(self, name: str) -> None:
        CONSOLES.close(self.store, self.principal, name)

    def recordings(self) -> list[dict[str, Any]]:
        return CONSOLES.recordings(self.store) if self.may("console-replay") else []

    def suggestions(self, project: str, text: str = "") -> list[dict[str, Any]]:
        """Commands to offer in ``project``'s shell: the caller's own there, then the
        project's likely commands and the workbench's subcommands; those containing
        ``text``."""
        found = CONSOLES.suggestions(self.store, self.principal, project)
        return [s for s in found if text.lower() in s["command"].lower()]

    def history(self, q: str = "", project: str = "", limit: int = 50):
        """The caller's commands typed in project shells (a DataFrame, newest first)."""
        return self.store.query("console_history", who=self.principal.who, q=q or None,
                                project=project or None, limit=limit)
