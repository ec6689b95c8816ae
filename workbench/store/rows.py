"""A stored row as plain Python values, for code that keeps rows in memory (the task queue,
workflow runs): None for SQL's NULL (pandas' NaN and NaT), datetime for its timestamps,
int and float for numpy's scalars."""

from __future__ import annotations

from typing import Any


def plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        try:
            out[k] = None if v is None or v != v else v
        except (TypeError, ValueError):  # (an array's comparison is no truth value)
            out[k] = v
        if hasattr(out[k], "to_pydatetime"):
            out[k] = out[k].to_pydatetime()
        elif hasattr(out[k], "item") and not isinstance(out[k], str | bytes):
            out[k] = out[k].item()
    return out
