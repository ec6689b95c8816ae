"""Which URL names a ClickHouse, and the official client for it.

``clickhouse://user:pass@host:8123/db`` (``clickhouse+https://`` for TLS) reaches a
ClickHouse server over HTTP; ``chdb:///path?database=db`` runs ClickHouse's engine in this
process over a folder (chDB): the same client, the same SQL, no server. chDB holds one
folder per process; databases inside it keep stores apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = ("clickhouse://", "clickhouse+https://", "clickhouse+http://", "chdb://")
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def first_line(err: BaseException, limit: int = 300) -> str:
    """An error as one line: ClickHouse's and its client's first line says what went
    wrong (the rest is the server's stack), else the error's kind."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]


def is_clickhouse_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(SCHEMES)


@dataclass(frozen=True)
class Target:
    """Where the ClickHouse is: ``path`` for chDB, else host/port/credentials."""

    url: str = field(repr=False)
    database: str
    path: Path | None = None
    host: str = ""
    port: int = 8123
    username: str = "default"
    password: str = field(default="", repr=False)
    secure: bool = False

    @property
    def shown(self) -> str:
        """The URL without its password (for logs, health and errors)."""
        if self.path is not None:
            return f"chdb://{self.path}?database={self.database}"
        scheme = "clickhouse+https" if self.secure else "clickhouse"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"


def redacted(url: str) -> str:
    """``url`` with any password in it replaced (for errors and logs)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def parse(url: str) -> Target:
    """Read a store URL; ``ValueError`` with the reason when it is not one (the URL in
    it without its password)."""
    shown = redacted(url)
    if not is_clickhouse_url(url):
        raise ValueError(f"{shown!r} is not a ClickHouse URL (use {', '.join(SCHEMES)})")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme.lower() == "chdb":
        raw = unquote((parts.netloc or "") + parts.path)
        if not raw:
            raise ValueError(f"{shown!r}: name the chDB folder (chdb:///path/to/folder)")
        database = (query.get("database") or ["observatory"])[0]
        target = Target(url, database, path=Path(raw).expanduser().resolve())
    else:
        database = parts.path.strip("/") or (query.get("database") or ["observatory"])[0]
        secure = parts.scheme.lower() == "clickhouse+https"
        if not parts.hostname:
            raise ValueError(f"{shown!r}: no host")
        target = Target(url, database, host=parts.hostname,
                        port=parts.port or (8443 if secure else 8123),
                        username=unquote(parts.username or "default"),
                        password=unquote(parts.password or ""), secure=secure)
    if not _DATABASE.fullmatch(target.database):
        raise ValueError(f"{shown!r}: database {target.database!r} is not a plain name")
    return target


#: Every session: UTC (as the DuckDB file's naive timestamps are), NULL where a query
#: asks for it rather than a type's default, and JSON text as DuckDB writes it (no
#: escaped ``/``: a search for ``src/a.py`` in attributes finds it on either store).
SETTINGS = {"session_timezone": "UTC", "join_use_nulls": 1,
            "output_format_json_escape_forward_slashes": 0}


def client(target: Target, database: bool = True):
    """A clickhouse-connect client for ``target`` (its database made first if need be)."""
    try:
        import clickhouse_connect
    except ImportError:
        raise RuntimeError("a ClickHouse store needs the clickhouse extra: "
                           "pip install 'happy-observatory[clickhouse]'") from None

    def make(db: str | None):
        if target.path is not None:
            target.path.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(
                interface="chdb", path=str(target.path), database=db, settings=SETTINGS)
        return clickhouse_connect.get_client(
            host=target.host, port=target.port, username=target.username,
            password=target.password, secure=target.secure, database=db,
            settings=SETTINGS, autogenerate_session_id=False)

    if not database:
        return make(None)
    boot = make(None)
    try:
        boot.command(f"CREATE DATABASE IF NOT EXISTS {target.database}")
    finally:
        boot.close()
    return make(target.database)


def check(url: str) -> str | None:
    """Why ``url`` cannot serve as the store (one line, no password), or None. A server is
    asked its version; a chDB folder is only made (the server process opens it: chDB
    holds a folder per process)."""
    try:
        target = parse(url)
    except ValueError as err:
        return str(err)
    import importlib.util

    for module in ("clickhouse_connect", *(("chdb",) if target.path is not None else ())):
        if importlib.util.find_spec(module) is None:
            return ("a ClickHouse store needs the clickhouse extra: "
                    "pip install 'happy-observatory[clickhouse]'")
    if target.path is not None:
        try:
            target.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            return f"{target.shown}: {err.strerror or err}"
        return None
    import logging

    driver = logging.getLogger("clickhouse_connect")
    level = driver.level
    driver.setLevel(logging.CRITICAL)  # (it logs the failure too: the one line is ours)
    try:
        client(target, database=False).close()
    except Exception as err:  # noqa: BLE001  (the client raises many kinds)
        reason = first_line(err)
        if target.password:
            reason = reason.replace(target.password, "***")
        return f"cannot reach {target.shown}: {reason}"
    finally:
        driver.setLevel(level)
    return None
