"""Coverage XML through the ingest's hardened parser (an external DTD is named, never
loaded)."""

from __future__ import annotations

from ..ingest.base import IngestError
from ..ingest.xml import parse_xml
from .model import CoverageError


def parse(data: bytes, source: str):
    try:
        return parse_xml(data, source, external_dtd=True)
    except IngestError as err:
        raise CoverageError(str(err)) from None


def number(value: str | None, default: float = 0.0) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default
