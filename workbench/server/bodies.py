"""Request bodies: bounded gzip inflation so a small bomb cannot exhaust memory, and the one
JSON parser of the API (depth, integers and Unicode checked before any handler looks)."""

from __future__ import annotations

import mmap
import tempfile
import zlib
from typing import Any

from .. import config
from ..ingest.base import IngestError, checked_json


class BodyError(ValueError):
    """``(status, message)`` for a body that cannot be accepted."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


#: Bodies (and inflated bodies) bigger than this go to a temporary file, mapped for the
#: parser, instead of memory: a 250 MB report upload must not cost 250 MB twice over.
SPOOL_BYTES = 16 * 1024 * 1024
_PIECE = 1024 * 1024


class Spool:
    """Bytes written in pieces: in memory while small, then in a temporary file; read back
    as ``bytes`` or as a read-only map of the file."""

    def __init__(self, limit: int, over: str) -> None:
        self.size, self._limit, self._over = 0, limit, over
        self._mem: list[bytes] | None = []
        self._file = None

    def write(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self._limit:
            raise BodyError(413, self._over)
        if self._mem is not None and self.size > SPOOL_BYTES:
            self._file = tempfile.TemporaryFile(prefix="observatory-body-")
            for held in self._mem:
                self._file.write(held)
            self._mem = None
        if self._mem is not None:
            self._mem.append(bytes(piece))
        else:
            self._file.write(piece)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        self._mem = self._file = None

    def value(self):
        """The bytes written: ``bytes``, or an ``mmap`` of the file for a big body."""
        if self._mem is not None:
            return b"".join(self._mem)
        self._file.flush()
        mapped = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._file.close()  # the map keeps the (deleted) file's pages
        return mapped


def decode(body, encoding: str | None, limit: int | None = None):
    """Return the body, gunzipped if ``Content-Encoding: gzip``, never over ``limit`` bytes.

    ``body`` is bytes or a map of a spooled file; a big inflated body is itself spooled to
    a file and returned mapped (inflation goes a megabyte at a time either way)."""
    if limit is None:
        limit = config.get("OBSERVATORY_MAX_BODY_BYTES")
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > limit:
            raise BodyError(413, f"body of {len(body)} bytes is over the {limit}-byte limit")
        return body
    if encoding != "gzip":
        raise BodyError(415, f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    out = Spool(limit, f"body inflates to over the {limit}-byte limit")
    try:
        return _inflate(memoryview(body), out)
    except BodyError:
        out.discard()
        raise


def _inflate(view: memoryview, out: Spool):
    pos = 0
    # Every gzip member is decoded (RFC 1952 allows several, and `cat a.gz b.gz` makes
    # them); anything after the last member is refused, never silently dropped.
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not inflater.eof:
            if pos >= len(view):
                raise BodyError(400, "truncated gzip body")
            piece = view[pos:pos + _PIECE]
            pos += len(piece)
            try:
                out.write(inflater.decompress(piece, _PIECE))
                while inflater.unconsumed_tail and not inflater.eof:
                    out.write(inflater.decompress(inflater.unconsumed_tail, _PIECE))
            except zlib.error as err:
                raise BodyError(400, f"invalid gzip body: {err}") from None
        # What the member did not use starts the next member (or is trailing garbage).
        pos -= len(inflater.unused_data)
        if pos >= len(view):
            return out.value()
        if bytes(view[pos:pos + 2]) != b"\x1f\x8b":
            raise BodyError(400, f"{len(view) - pos} bytes of trailing data after the gzip "
                                 "stream")


# -- JSON bodies ----------------------------------------------------------------------------
def parse_json(raw: bytes, where: str) -> Any:
    """``raw`` as JSON, or :class:`BodyError` (400) naming ``where`` and the first thing
    wrong: not UTF-8, not JSON, NaN/Infinity, nested too deep, an integer outside 64 bits,
    a string that is not valid Unicode (ingest.base.checked_json: the one reader of JSON
    requests)."""
    try:
        return checked_json(raw, where)
    except IngestError as err:
        raise BodyError(400, str(err)) from None


def validated(model, value: Any, where: str, defaults: bool = False) -> Any:
    """``value`` checked against ``model`` (a pydantic model): the fields as sent (a dict
    without the fields left out; with ``defaults``, every field), or :class:`BodyError`
    (400) naming the first bad field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(value).model_dump(exclude_unset=not defaults)
    except ValidationError as err:
        first = err.errors()[0]
        if not first["loc"] and first["type"] in ("model_type", "dict_type"):
            raise BodyError(400, f"{where}: the body must be a JSON object") from None
        field = ".".join(str(p) for p in first["loc"])
        raise BodyError(400, f"{where}: {field}: {first['msg']}") from None
