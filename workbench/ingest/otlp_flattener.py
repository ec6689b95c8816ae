"""The OTLP inbox's flattening process: stored protobuf requests in, Arrow tables out.

Flattening a request into rows is Python work that holds the GIL (~25 µs a span). In a
burst the server's inbox thread did it while the event loop and the store's writer waited
for the same lock, and the server used ~1.15 cores of two. Run here, in a process of its
own (:class:`workbench.intake.flattener.Flattener` starts it through the one launcher),
it takes a core of its own while the server writes the tables it sends back.

It reads requests from stdin and writes replies to a descriptor the server's bootstrap
gives it (its stdout is pointed at stderr, so that nothing a module prints gets into the
replies), one frame at a time, until stdin ends (the server closed it, or died: the child
never outlives it)::

    request  = u32 length, then records: u8 signal (index in SIGNALS), u32 size, body
    ready    = b"OTF0", u32 0 (once, its imports done)
    reply    = b"OTF1", u32 length, u32 header size, JSON header, each table's Arrow IPC
    header   = {"tables": [[name, size], ...], "problems": [...], "error": null or text}
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

SIGNALS = ("traces", "metrics", "logs")
_U32 = struct.Struct(">I")
_RECORD = struct.Struct(">BI")
#: A reply's head: what marks it as one (anything else on the pipe is a failure), and its
#: length. READY_MAGIC (length 0) is sent once, when its imports are done.
REPLY_MAGIC, READY_MAGIC = b"OTF1", b"OTF0"
REPLY_HEAD = struct.Struct(">4sI")


def pack_requests(requests: list[tuple[str, bytes]]) -> bytes:
    """A request frame's payload."""
    return b"".join(_RECORD.pack(SIGNALS.index(signal), len(body)) + body
                    for signal, body in requests)


def unpack_requests(payload: bytes) -> list[tuple[str, bytes]]:
    """The requests of a frame's payload (ValueError for a malformed one)."""
    out, pos = [], 0
    while pos < len(payload):
        if pos + _RECORD.size > len(payload):
            raise ValueError("a request record is cut short")
        signal, size = _RECORD.unpack_from(payload, pos)
        pos += _RECORD.size
        if signal >= len(SIGNALS) or pos + size > len(payload):
            raise ValueError("a request record is cut short or names no signal")
        out.append((SIGNALS[signal], payload[pos:pos + size]))
        pos += size
    return out


def frame(payload: bytes) -> bytes:
    """A request frame."""
    return _U32.pack(len(payload)) + payload


def reply_frame(payload: bytes) -> bytes:
    return REPLY_HEAD.pack(REPLY_MAGIC, len(payload)) + payload


def pack_reply(tables: dict[str, Any], problems: list[str], error: str | None = None) -> bytes:
    """A reply frame's payload: the header, then each table as an Arrow IPC stream."""
    import pyarrow as pa

    blobs = []
    for table in tables.values():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        blobs.append(sink.getvalue().to_pybytes())
    header = json.dumps({"tables": [[name, len(b)] for name, b in zip(tables, blobs,
                                                                      strict=True)],
                         "problems": problems, "error": error}).encode()
    return _U32.pack(len(header)) + header + b"".join(blobs)


def unpack_reply(payload: bytes) -> tuple[dict[str, Any], list[str], str | None]:
    """``(tables, problems, error)`` of a reply frame's payload."""
    import pyarrow as pa

    (size,) = _U32.unpack_from(payload, 0)
    header = json.loads(payload[4:4 + size])
    tables, pos = {}, 4 + size
    for name, length in header["tables"]:
        tables[name] = pa.ipc.open_stream(payload[pos:pos + length]).read_all()
        pos += length
    return tables, header["problems"], header["error"]


def read_exact(stream: BinaryIO, n: int, wait: Callable[[], None] | None = None
               ) -> bytes | None:
    """``n`` bytes, or None at the end of the stream before any; ``wait`` is called before
    each read (the server's side waits there, with its time limit)."""
    parts, got = [], 0
    while got < n:
        if wait is not None:
            wait()
        chunk = stream.read(min(n - got, 1 << 20))
        if not chunk:
            if got:
                raise EOFError(f"the stream ended {n - got} bytes short")
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def flatten_tables(requests: list[tuple[str, bytes]]) -> tuple[dict[str, Any], list[str]]:
    """What the inbox writes for ``requests``: Arrow tables by store table, and problems."""
    from .arrow import rows_table
    from .otlp import flatten_group

    rows, problems = flatten_group(requests)
    return {t: rows_table(r) for t, r in rows.items() if r}, problems


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Say it is ready, then answer request frames from ``inp`` on ``out`` until ``inp``
    ends."""
    from . import arrow, otlp  # noqa: F401  (what it needs, imported before it is ready)

    out.write(REPLY_HEAD.pack(READY_MAGIC, 0))
    out.flush()
    while (head := read_exact(inp, _U32.size)) is not None:
        payload = read_exact(inp, _U32.unpack(head)[0]) or b""
        try:
            reply = pack_reply(*flatten_tables(unpack_requests(payload)))
        except Exception as err:  # noqa: BLE001  (the server writes these rows itself then)
            reply = pack_reply({}, [], f"{type(err).__name__}: {err}")
        out.write(reply_frame(reply))
        out.flush()
