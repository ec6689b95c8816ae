"""The write side: one interface for every write, local (the file) or remote (a server).

Reads have :class:`~workbench.store.Store` and :class:`~workbench.client.RemoteStore`;
writes have :class:`LocalIntake` and :class:`RemoteIntake`, chosen by one rule in
:func:`open_intake`: a server holding the file wins. The CLI, the pytest plugin, the
server's routes and the demo are thin adapters over it.
"""

from __future__ import annotations

from .base import RUN_META_KEYS, Intake, IntakeError
from .local import LocalIntake
from .remote import RemoteIntake
from .rule import open_intake, resolve

__all__ = [
    "RUN_META_KEYS",
    "Intake",
    "IntakeError",
    "LocalIntake",
    "RemoteIntake",
    "open_intake",
    "resolve",
]
