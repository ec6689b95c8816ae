"""Request bodies: bounded gzip inflation so a small bomb cannot exhaust memory, and the one
JSON parser of the API (depth, integers and Unicode checked before any handler looks)."""

from __future__ import annotations

import json
import math
import mmap
import re
import tempfile
import zlib
from typing import Any

from .. import config


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
#: Deepest nesting of arrays and objects a JSON body may have (deeper ones were a
#: RecursionError, a 500, on two dozen routes).
MAX_DEPTH = 32
#: Integers a JSON body may hold: what a 64-bit column stores (a bigger one was a 500).
INT_RANGE = (-(2**63), 2**63 - 1)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes, where: str) -> Any:
    """``raw`` as JSON, or :class:`BodyError` (400) naming ``where`` and the first thing
    wrong: not UTF-8, not JSON, NaN/Infinity, nested deeper than :data:`MAX_DEPTH`, an
    integer outside 64 bits, or a string that is not valid Unicode (a lone surrogate such
    as ``"\\ud800"``, which no database column can store)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BodyError(400, f"{where}: body is not UTF-8 ({err.reason} at byte "
                             f"{err.start})") from None
    try:
        value = json.loads(text, parse_constant=_constant)
    except RecursionError:
        raise BodyError(400, f"{where}: body is nested more than {MAX_DEPTH} deep") from None
    except ValueError as err:
        raise BodyError(400, f"{where}: body is not valid JSON: {err}") from None
    _check_tree(value, where)
    return value


def _check_tree(value: Any, where: str) -> None:
    """Walk ``value`` without recursion (depth, integers, strings and keys)."""
    todo: list[tuple[Any, str, int]] = [(value, "body", 0)]
    while todo:
        item, path, depth = todo.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise BodyError(400, f"{where}: {path[:120]} is nested more than "
                                     f"{MAX_DEPTH} deep")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and _SURROGATE.search(key):
                    raise BodyError(400, f"{where}: {path} has a key that is not valid "
                                         "Unicode (a lone surrogate)")
                todo.append((child, f"{path}.{key}" if isinstance(key, str)
                             else f"{path}[{key}]", depth + 1))
        elif isinstance(item, str):
            if _SURROGATE.search(item):
                raise BodyError(400, f"{where}: {path} is not valid Unicode (a lone "
                                     "surrogate)")
        elif isinstance(item, int) and not isinstance(item, bool) and \
                not INT_RANGE[0] <= item <= INT_RANGE[1]:
            raise BodyError(400, f"{where}: {path} is an integer outside 64 bits")
        elif isinstance(item, float) and not math.isfinite(item):
            raise BodyError(400, f"{where}: {path} is not a finite number")


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
