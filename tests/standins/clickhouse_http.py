"""A stand-in ClickHouse server on loopback: ClickHouse's own engine (chDB) behind the
ClickHouse HTTP interface, as much of it as the official client (clickhouse-connect)
speaks. No ClickHouse server installs on these machines; this lets several real
`observatory serve` processes share one ClickHouse through the real client.

What it speaks: the statement in the body or in ``query``; ``param_*`` bound values;
``database`` and the other URL parameters as session settings; an INSERT's data block in
the body (``Content-Encoding`` lz4 frame, zstd or gzip); answers in the format the
statement names, with the ``X-ClickHouse-*`` headers the client reads; errors as
ClickHouse sends them (``X-ClickHouse-Exception-Code`` and ``Code: N. DB::Exception``).

    python -m tests.standins.clickhouse_http FOLDER PORT
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

from .serving import Serving

#: URL parameters that are the transport's, not session settings.
TRANSPORT = {"query", "database", "query_id", "wait_end_of_query", "default_format",
             "send_progress_in_http_headers", "http_headers_progress_interval_ms",
             "enable_http_compression", "client_protocol_version", "compress", "decompress",
             "session_id", "session_timeout", "session_check", "user", "password"}
_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(.+?)\s+FORMAT\s+(\w+)\s*$", re.I | re.S)
_CODE = re.compile(r"Code: (\d+)")


def _decode(body: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return body
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.decompress(body)
    if encoding == "zstd":
        try:
            from compression import zstd
        except ImportError:
            from backports import zstd
        return zstd.decompress(body)
    if encoding == "gzip":
        return gzip.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class ClickHouseHTTP(Serving):
    def __init__(self, folder: Path, port: int = 0) -> None:
        import chdb

        self.conn = chdb.connect(str(folder))
        self.lock = threading.Lock()
        self.spool = Path(tempfile.mkdtemp(prefix="ch-standin-"))
        stand = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # (quiet)
                pass

            def do_GET(self) -> None:
                if urlparse(self.path).path in ("/ping", "/"):
                    if not urlparse(self.path).query:
                        return self._send(200, b"Ok.\n", {})
                self._run(b"")

            def do_POST(self) -> None:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    parts = []
                    while True:  # (an insert streams its blocks)
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if not size:
                            self.rfile.readline()
                            break
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    return self._run(b"".join(parts))
                size = int(self.headers.get("Content-Length") or 0)
                self._run(self.rfile.read(size) if size else b"")

            def _run(self, body: bytes) -> None:
                params = dict(parse_qsl(urlparse(self.path).query, keep_blank_values=True))
                try:
                    status, out, headers = stand.execute(
                        params, _decode(body, self.headers.get("Content-Encoding")))
                except Exception as err:  # noqa: BLE001  (ClickHouse's own error, as it sends it)
                    text = str(err)
                    code = _CODE.search(text)
                    return self._send(500, (text if text.startswith("Code:") else
                                            f"Code: 1001. DB::Exception: {text}").encode(),
                                      {"X-ClickHouse-Exception-Code": code.group(1)
                                       if code else "1001"})
                self._send(status, out, headers)

            def _send(self, status: int, out: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.serve(Handler, port)

    def execute(self, params: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        bound = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items()
                    if k not in TRANSPORT and not k.startswith("param_")}
        query = params.get("query")
        data = b""
        if query is None and body.lstrip()[:6].upper() == b"INSERT":
            head, _, data = body.partition(b"\n")  # (statement, then the data block)
            query = head.decode()
        elif query is None:
            query = body.decode()
        else:
            data = body
            if not _INSERT.match(query) and body:
                query = query + "\n" + body.decode()  # (a query split between URL and body)
                data = b""
        headers = {"X-ClickHouse-Query-Id": params.get("query_id") or str(uuid.uuid4()),
                   "X-ClickHouse-Timezone": "UTC",
                   "X-ClickHouse-Server-Display-Name": "observatory-standin"}
        with self.lock:
            cur = self.conn.cursor()
            try:
                cur.execute(f"USE {params.get('database') or 'default'}")
                for k, v in settings.items():
                    if not re.fullmatch(r"\w+", k):
                        raise ValueError(f"bad setting name {k!r}")
                    cur.execute(f"SET {k} = '{v.replace(chr(39), chr(39) * 2)}'")
            finally:
                cur.close()
            insert = _INSERT.match(query)
            if insert and data:
                target, fmt = insert.groups()
                path = self.spool / f"{uuid.uuid4().hex}.{fmt.lower()}"
                path.write_bytes(data)
                try:
                    self.conn.query(f"INSERT INTO {target} SELECT * FROM "
                                    f"file('{path}', '{fmt}')", "CSV")
                finally:
                    path.unlink(missing_ok=True)
                headers["X-ClickHouse-Summary"] = json.dumps({"written_rows": "0"})
                return 200, b"", headers
            named = _FORMAT.search(query)
            fmt = named.group(1) if named else params.get("default_format", "TabSeparated")
            sql = _FORMAT.sub("", query) if named else query
            result = self.conn.query(sql, fmt, params=bound) if bound else \
                self.conn.query(sql, fmt)
        headers["X-ClickHouse-Format"] = fmt
        headers["X-ClickHouse-Summary"] = json.dumps({"read_rows": "0"})
        out = result.bytes() if hasattr(result, "bytes") else bytes(result or b"")
        return 200, out, headers


def main() -> None:
    folder, port = Path(sys.argv[1]), int(sys.argv[2])
    with ClickHouseHTTP(folder, port) as stand:
        print(f"listening on {stand.port}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
