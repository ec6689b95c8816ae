"""Reach the data from a notebook: the DuckDB file directly, or a running server's API."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from .http import http_client
from .store import Store

__all__ = ["RemoteStore", "connect", "http_client"]


class RemoteStore:
    """The read side of :class:`~workbench.store.Store` over HTTP (Arrow IPC).

    Used while ``observatory serve`` holds the database file, which no other process can
    then open.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self._http = http_client(url, token, timeout)

    def query_arrow(self, name: str, /, **params: Any) -> pa.Table:
        """Run a named query on the server; return an Arrow table."""
        body = json.dumps(params, default=_json_default)
        resp = self._http.get(f"/api/query/{name}", params={"params": body})
        if resp.status_code != 200:
            try:
                detail = resp.json().get("error")
            except ValueError:
                detail = resp.text[:200]
            raise RuntimeError(f"{self.url}/api/query/{name}: HTTP {resp.status_code}: {detail}")
        return pa.ipc.open_stream(resp.content).read_all()

    def query(self, name: str, /, **params: Any) -> pd.DataFrame:
        """Like :meth:`Store.query`: a named query as a DataFrame.

        The Arrow result is turned into pandas by DuckDB, the same conversion
        :meth:`Store.query` uses, so values and dtypes match the file's exactly (pyarrow's
        own conversion gives Decimal objects where DuckDB gives floats).
        """
        table = self.query_arrow(name, **params)
        con = duckdb.connect()
        try:
            return con.from_arrow(table).df()
        finally:
            con.close()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as a query parameter")


def connect(target: str | Path | None = None, token: str | None = None) -> Store | RemoteStore:
    """Open the data for analysis.

    ``target`` is an ``http(s)://`` URL of a running workbench, or a DuckDB file (default:
    ``OBSERVATORY_DB``, else ``observatory.duckdb`` in ``OBSERVATORY_HOME``). When a server
    holds that file (it advertises itself beside it) or ``OBSERVATORY_URL`` is set, the
    server is used; otherwise the file is opened.
    """
    from .intake import resolve

    if isinstance(target, str) and target.startswith(("http://", "https://")):
        return RemoteStore(target, token=token)
    path, url = resolve(target, token=token)
    if url:
        return RemoteStore(url, token=token)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such database (run `observatory demo` or "
            "`observatory ingest tests ...` first)"
        )
    return Store(path)
