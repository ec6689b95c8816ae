"""Happy Observatory: analytics workbench and control plane for agentic software development."""

from __future__ import annotations

__version__ = "0.1.0"


def connect(target=None, token=None):
    """Open a DuckDB file or a running server's API; see :func:`workbench.client.connect`."""
    from .client import connect as _connect

    return _connect(target, token)
