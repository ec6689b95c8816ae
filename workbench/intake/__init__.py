"""The write side: one interface for every write, local (the file) or remote (a server).

Reads have :class:`~workbench.store.Store` and :class:`~workbench.client.RemoteStore`;
writes have :class:`LocalIntake` and :class:`RemoteIntake`, chosen by one rule in
:func:`open_intake`: a server holding the file wins. The CLI, the pytest plugin, the
server's routes and the demo are thin adapters over it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import RUN_META_KEYS, Intake, IntakeError
from .local import LocalIntake
from .rule import open_intake, resolve

if TYPE_CHECKING:
    from .remote import RemoteIntake


def __getattr__(name: str):
    # The remote intake imports httpx (0.1-0.2 s): only a command that talks to a server
    # pays for it (open_intake imports it when the rule picks a server).
    if name == "RemoteIntake":
        from .remote import RemoteIntake

        return RemoteIntake
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RUN_META_KEYS",
    "Intake",
    "IntakeError",
    "LocalIntake",
    "RemoteIntake",
    "open_intake",
    "resolve",
]
