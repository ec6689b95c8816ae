"""How a client finds the server that holds a database: the server advertises itself.

DuckDB lets one process open a file. While ``observatory serve`` (or ``panel serve`` with
the plugin) holds it, it writes ``<db>.server.json`` beside the file with its URL and PID;
every client (CLI, pytest plugin, notebooks) that resolves the same file reads that note
and goes through the server instead. A note left by a server that died is ignored.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
from pathlib import Path


def client_url(address: str, port: int | str, tls: bool = False) -> str:
    """The URL a client on this machine uses for a server bound to ``address:port``
    (``https`` when it speaks TLS)."""
    host = address
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"  # always reachable on this machine, whatever the bind
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def advert_path(db: Path) -> Path:
    """The note beside ``db`` naming the server that holds it."""
    return db.with_name(db.name + ".server.json")


def advertise(db: Path, url: str) -> Path:
    """Write the note for this process; it is removed when the process exits."""
    path = advert_path(db)
    note = {"url": url.rstrip("/"), "pid": os.getpid(), "db": str(db)}
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(note))
    os.replace(tmp, path)  # readers never see half a note
    atexit.register(withdraw, db)
    return path


def withdraw(db: Path) -> None:
    """Remove the note if this process wrote it."""
    path = advert_path(db)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_server(db: Path, token: str | None = None) -> str | None:
    """The URL of the live server holding ``db``, or None.

    The note must name a running process and the server at its URL must say it holds this
    very file; anything else (a stale note, a different server on that port) is ignored.
    """
    try:
        note = json.loads(advert_path(db).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or not _alive(note.get("pid")):
        return None
    url = note.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    import httpx  # (here, not at the top: a command that opens the file never needs it)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.get(f"{url}/api/health", headers=headers, timeout=5)
        held = resp.json().get("db") if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    if held is None:
        # A server that refuses us (no token) still holds the file: go there and let its
        # answer say why, rather than fail on DuckDB's lock.
        return url if resp.status_code in (401, 403) else None
    return url if Path(held) == db else None
