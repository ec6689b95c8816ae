"""Settings resolved as CLI flags > ``OBSERVATORY_*`` environment variables > defaults."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def report_tz(flag: str | None = None) -> str | None:
    """The zone of report timestamps written without one: ``--report-tz``, then
    ``OBSERVATORY_REPORT_TZ`` (an IANA name such as ``Europe/Berlin``); None means UTC."""
    name = flag or os.environ.get("OBSERVATORY_REPORT_TZ") or None
    if name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
            ) from None
    return name


def to_utc(ts: datetime, assume: str | None = None) -> datetime:
    """A stored timestamp: aware ones converted to UTC; naive ones taken to be in the zone
    ``assume`` (default UTC)."""
    if ts.tzinfo is None:
        if not assume:
            return ts
        ts = ts.replace(tzinfo=ZoneInfo(assume))
    return ts.astimezone(UTC).replace(tzinfo=None)
