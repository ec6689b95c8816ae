"""chDB runs one folder per process (a second folder is refused): every test in a process
shares one, and each store lives in a database of its own inside it."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

_folder: Path | None = None


def chdb_url(prefix: str = "t") -> str:
    """A ``chdb://`` store URL no other test uses."""
    global _folder
    if _folder is None:
        _folder = Path(tempfile.mkdtemp(prefix="observatory-chdb-"))
    return f"chdb://{_folder}?database={prefix}_{uuid.uuid4().hex[:10]}"
