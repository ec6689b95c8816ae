"""SQL text the store writes itself, where DuckDB takes no bound parameter (a file's path
in ``COPY``/``ATTACH``, a pattern inside a migration)."""

from __future__ import annotations

from pathlib import Path


def literal(text: str | Path) -> str:
    """``text`` as a single-quoted SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"
