"""DuckDB storage: the single owner of the database file."""

from .store import RunStateError, Store, StoreBusyError, StoreLockedError, StoreWriteError

__all__ = ["RunStateError", "Store", "StoreBusyError", "StoreLockedError", "StoreWriteError"]
