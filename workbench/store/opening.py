"""Open the store ``--db`` / ``OBSERVATORY_DB`` names: a DuckDB file, or ClickHouse."""

from __future__ import annotations

import os

from .. import config
from .store import Store


def open_store(flag: str | os.PathLike[str] | None = None, **kwargs) -> Store:
    """The store for ``flag`` (else the configured one). A ClickHouse URL gives a
    :class:`~workbench.store.clickhouse.ch_store.ClickHouseStore` over it, with this
    node's control file at :func:`workbench.config.db_path`."""
    url = config.store_url(flag)
    if url is None:
        return Store(config.db_path(flag), **kwargs)
    from .clickhouse.ch_store import ClickHouseStore

    kwargs.pop("read_only", None)  # (the control file is small; ClickHouse has no lock)
    return ClickHouseStore(url, config.db_path(flag), **kwargs)
