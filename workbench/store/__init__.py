"""DuckDB storage: the single owner of the database file."""

from .store import Store, StoreBusyError, StoreLockedError

__all__ = ["Store", "StoreBusyError", "StoreLockedError"]
