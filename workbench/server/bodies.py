"""Request bodies: bounded gzip inflation so a small bomb cannot exhaust memory."""

from __future__ import annotations

import zlib

from .. import config


class BodyError(ValueError):
    """``(status, message)`` for a body that cannot be accepted."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def decode(body: bytes, encoding: str | None, limit: int | None = None) -> bytes:
    """Return the body, gunzipped if ``Content-Encoding: gzip``, never over ``limit`` bytes."""
    if limit is None:
        limit = config.get("OBSERVATORY_MAX_BODY_BYTES")
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > limit:
            raise BodyError(413, f"body of {len(body)} bytes is over the {limit}-byte limit")
        return body
    if encoding != "gzip":
        raise BodyError(415, f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    # Every gzip member is decoded (RFC 1952 allows several, and `cat a.gz b.gz` makes
    # them); anything after the last member is refused, never silently dropped.
    out = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as err:
            raise BodyError(400, f"invalid gzip body: {err}") from None
        if len(out) > limit:
            raise BodyError(413, f"body inflates to over the {limit}-byte limit")
        if not inflater.eof:
            raise BodyError(400, "truncated gzip body")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)
        if not rest.startswith(b"\x1f\x8b"):
            raise BodyError(400, f"{len(rest)} bytes of trailing data after the gzip stream")
