"""What the supervisor knows of a backend: one interface (:class:`Backend`) and the registry
of the backends that implement it, by name (``"process"``, ``"claude-code"``, ...).

The supervisor and the task queue depend on this module; the backends depend on nothing of
theirs (they see an agent through :mod:`~workbench.control.agent`), so adding a backend is
one module and one line here.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .. import plugins
from .agent import EXTERNAL
from .claude_code import ClaudeCodeBackend
from .codex import CodexBackend
from .devkit_backend import DevKitBackend
from .process import ProcessBackend

if TYPE_CHECKING:
    import subprocess

    import param


class Backend(Protocol):
    """One run of one agent (one process group, or one session elsewhere)."""

    name: ClassVar[str]
    Config: ClassVar[type[param.Parameterized]]
    #: Whether its output is a protocol the workbench speaks (read through a pipe).
    protocol: ClassVar[bool]
    proc: subprocess.Popen | None
    pid: int | None
    ended: threading.Event
    tail: deque[str]

    def __init__(self, agent: Any) -> None: ...  # (an agent.Agent)
    @staticmethod
    def check(spec: dict[str, Any]) -> None: ...
    def argv(self) -> list[str]: ...
    def launch(self) -> int | None: ...
    def started(self) -> None: ...
    def wait(self) -> int: ...
    def follow(self, from_end: bool) -> None: ...
    def message(self, text: str) -> None: ...
    def interrupt(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def signal_group(self, sig: int) -> None: ...
    def apply_config(self, config: dict[str, Any]) -> bool: ...


__all__ = ["BACKENDS", "EXTERNAL", "Backend"]

BACKENDS: dict[str, type[Backend]] = {
    ProcessBackend.name: ProcessBackend,
    ClaudeCodeBackend.name: ClaudeCodeBackend,
    CodexBackend.name: CodexBackend,
    DevKitBackend.name: DevKitBackend,
}


def _plugin_backends() -> None:
    """Backends other packages add (``happy_observatory.backends``): a Backend subclass
    each, under its own ``name``; one that is not, or takes a built-in's name, is
    reported and skipped."""
    group = "happy_observatory.backends"
    for name, cls in plugins.working(group).items():
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            plugins.fail(group, name, "not a workbench.control.backends.Backend subclass")
        elif getattr(cls, "name", None) in BACKENDS:
            plugins.fail(group, name, f"backend name {cls.name!r} is taken")
        else:
            BACKENDS[cls.name] = cls


_plugin_backends()
