"""Paths as the project knows them: relative to its root, with forward slashes, so that a
report written on a CI runner (``/home/runner/work/app/app/src/x.py``), on Windows
(``C:\\src\\app\\src\\x.py``) and on a laptop line up."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath


def normalize(path: str, roots: list[str]) -> str:
    """``path`` relative to the first of ``roots`` that holds it (each root normalised the
    same way); otherwise as given, with forward slashes and no ``./``."""
    p = _clean(path)
    for root in roots:
        r = _clean(root).rstrip("/")
        if r and (p == r or p.startswith(r + "/")):
            return p[len(r) + 1:] or PurePosixPath(p).name
    return p  # (outside every root: kept whole; lookups match path suffixes)


def _clean(path: str) -> str:
    p = path.strip().replace("\\", "/")
    p = re.sub(r"/{2,}", "/", p)
    p = os.path.normpath(p).replace("\\", "/") if p else p
    return p[2:] if p.startswith("./") else p
