"""The one rule that picks where reads and writes go: a server holding the file wins."""

from __future__ import annotations

from pathlib import Path

from .. import config
from ..discovery import find_server
from .base import Intake


def resolve(db: str | Path | None = None, url: str | None = None,
            token: str | None = None) -> tuple[Path, str | None]:
    """``(database file, server URL or None)``.

    The URL is ``url``, else ``OBSERVATORY_URL``, else the live server that advertises
    itself beside the file (see :mod:`workbench.discovery`), else None (open the file).
    """
    path = config.db_path(db)
    url = config.get("OBSERVATORY_URL", url)
    if url:
        return path, url.rstrip("/")
    return path, find_server(path, token or config.get("OBSERVATORY_TOKEN"))


def open_intake(db: str | Path | None = None, url: str | None = None,
                token: str | None = None) -> Intake:
    """The intake every client writes through, by :func:`resolve`'s rule.

    Opening the file creates it when missing; ``intake.created`` says so, and the
    caller says where it stored what it stored.
    """
    path, server = resolve(db, url, token)
    if server:
        from .remote import RemoteIntake

        return RemoteIntake(server, token)
    from ..store.opening import open_store
    from .local import LocalIntake

    created = not path.exists()
    return LocalIntake(open_store(db), owns_store=True, created=created)
