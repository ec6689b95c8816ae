"""The terminals open in this process, by name: the one registry that agents' backends
(control/process.py) and the consoles' role checks (control/consoles.py) both add to.
Below the control plane: it knows terminals, not roles."""

from __future__ import annotations

import threading

from .terminal import Terminal


class ConsoleError(Exception):
    """A request about a console that cannot be done; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Registry:
    def __init__(self) -> None:
        self._terminals: dict[str, Terminal] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Terminal:
        with self._lock:
            found = self._terminals.get(name)
        if found is None:
            raise ConsoleError(404, f"no console {name!r} (it ended, or never was)")
        return found

    def all(self) -> list[Terminal]:
        with self._lock:
            return list(self._terminals.values())

    def register(self, terminal: Terminal) -> None:
        """Add ``terminal`` (replacing one of the same name: an agent's next run) and start
        reading it."""
        with self._lock:
            self._terminals[terminal.name] = terminal
        terminal.on_end = self._ended
        terminal.start()

    def _ended(self, terminal: Terminal) -> None:
        # (an ended agent's terminal stays until the agent's next run replaces it, so that
        # its last screen can still be read; an ended shell goes)
        if terminal.kind == "shell":
            with self._lock:
                if self._terminals.get(terminal.name) is terminal:
                    del self._terminals[terminal.name]


#: This process's terminals.
TERMINALS = Registry()
