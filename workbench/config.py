"""Settings resolved as CLI flags > ``OBSERVATORY_*`` environment variables > defaults."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

#: The embedded default database, relative to the working directory the server starts in.
DEFAULT_DB = Path("data") / "observatory.duckdb"
DEFAULT_PORT = 5006


def db_path(flag: str | os.PathLike[str] | None = None) -> Path:
    """Return the DuckDB file to use: ``--db`` flag, then ``OBSERVATORY_DB``, then the default."""
    value = flag or os.environ.get("OBSERVATORY_DB") or DEFAULT_DB
    return Path(value).expanduser()


def demo_enabled(no_demo_flag: bool = False) -> bool:
    """Whether an empty database is filled with the demo dataset on first start."""
    if no_demo_flag:
        return False
    return os.environ.get("OBSERVATORY_NO_DEMO", "").lower() not in {"1", "true", "yes"}


def api_tokens() -> set[str]:
    """Bearer tokens accepted by the REST API (comma-separated ``OBSERVATORY_TOKENS``)."""
    raw = os.environ.get("OBSERVATORY_TOKENS", "")
    return {t.strip() for t in raw.split(",") if t.strip()}


def utcnow() -> datetime:
    """Now, as the naive UTC timestamp every stored time uses."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc(ts: datetime) -> datetime:
    """A stored timestamp: aware ones converted to UTC, naive ones taken as UTC already."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts
