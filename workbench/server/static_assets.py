"""How the pages' static files (BokehJS, Panel, the bundled libraries) are sent.

A page loaded 5.5-6.2 MiB of scripts and styles. `panel serve` sends them uncompressed (it
has no switch for Tornado's ``compress_response``), Panel asks every page with an HTML or
Markdown pane for Bokeh's 1.8 MiB MathJax bundle, and the bundled files Panel names
without a ``?v=`` version (Tabulator, luxon, Bootstrap, notyf, es-module-shims) carry no
``Cache-Control``, so every visit asks for them again. Three narrow changes:

- MathJax only for a page that draws mathematics (Bokeh's own test: a MathText glyph, or a
  label written as TeX). No page here does, and a test message with two ``$`` signs in it
  is better shown as written than typeset; without the bundle, BokehJS's math provider
  reports "failed" at once and the panes show their text.
- gzip, when the browser accepts it. Compressed once per file version (its ETag) and
  kept, so the event loop pays for a file once per process, not once per visit. Pages and
  API answers are not compressed: a page holds its session's token, and compressing a
  secret beside text a request chose is what BREACH reads.
- the unversioned bundled files may be kept a day. Their content changes only with the
  installed Panel, and their ETag still revalidates them after that day.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tornado import httputil
from tornado.web import Application, GZipContentEncoding, StaticFileHandler

#: How long a browser may keep a bundled file Panel names without a version.
BUNDLED_MAX_AGE = 24 * 3600
#: The compressed files kept, in bytes (all of a page's compress to about 1 MiB).
CACHE_BYTES = 32 * 1024 * 1024


class _Compressed:
    """Compressed static files by (path, ETag), least recently used out first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._files: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # (a second listener may run on another thread)

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            body = self._files.get(key)
            if body is not None:
                self._files.move_to_end(key)
            return body

    def put(self, key: tuple[str, str], body: bytes) -> None:
        if len(body) > self.limit:
            return
        with self._lock:
            if key in self._files:
                return
            self._files[key] = body
            self._size += len(body)
            while self._size > self.limit:
                _, old = self._files.popitem(last=False)
                self._size -= len(old)


COMPRESSED = _Compressed(CACHE_BYTES)


class StaticGzip(GZipContentEncoding):
    """Tornado's gzip transform, for a static file's whole 200 answer, from the cache when
    this version of the file was compressed before."""

    def __init__(self, request: httputil.HTTPServerRequest) -> None:
        super().__init__(request)
        self._path = request.path
        self._gzipping = self._gzipping and "/static/" in request.path \
            and request.method == "GET"
        self._key: tuple[str, str] | None = None
        self._raw: list[bytes] = []
        self._cached = False

    def transform_first_chunk(self, status_code: int, headers: httputil.HTTPHeaders,
                              chunk: bytes, finishing: bool):
        ctype = str(headers.get("Content-Type", "")).split(";")[0]
        etag = headers.get("Etag")
        if not (self._gzipping and status_code == 200 and etag and "Content-Encoding"
                not in headers and self._compressible_type(ctype)):
            # (a 304, a range, a small or binary file: as Tornado sends it)
            self._gzipping = False
            return status_code, headers, chunk
        headers["Vary"] = "Accept-Encoding"
        headers["Content-Encoding"] = "gzip"
        self._key = (self._path, etag)
        body = COMPRESSED.get(self._key)
        if body is not None:
            self._cached = True
            headers["Content-Length"] = str(len(body))
            return status_code, headers, body
        headers.pop("Content-Length", None)  # (sent chunked: the size is known at the end)
        return status_code, headers, self.transform_chunk(chunk, finishing)

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        if self._cached:
            return b""  # (the kept copy went with the first chunk)
        if not self._gzipping:
            return chunk
        # The file comes in 64 KiB reads; it is compressed whole at the end, once, and kept.
        self._raw.append(chunk)
        if not finishing:
            return b""
        import gzip

        body = gzip.compress(b"".join(self._raw), compresslevel=self.GZIP_LEVEL, mtime=0)
        self._raw = []
        COMPRESSED.put(self._key, body)
        return body


def _bundled_cache_time(get_cache_time):
    def cache_time(self: StaticFileHandler, path: str, modified, mime_type: str) -> int:
        seconds = get_cache_time(self, path, modified, mime_type)
        if not seconds and "/static/extensions/" in self.request.path \
                and "/bundled/" in self.request.path:
            return BUNDLED_MAX_AGE
        return seconds
    return cache_time


def install() -> None:
    """Apply the changes (idempotent), to every Tornado application made after this: the
    plugin module runs before Bokeh makes its own."""
    if getattr(Application.__init__, "_observatory", False):
        return
    init = Application.__init__

    def with_static_gzip(self: Application, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self.transforms.append(StaticGzip)

    with_static_gzip._observatory = True  # type: ignore[attr-defined]
    Application.__init__ = with_static_gzip  # type: ignore[method-assign]
    StaticFileHandler.get_cache_time = _bundled_cache_time(  # type: ignore[method-assign]
        StaticFileHandler.get_cache_time)

    from panel.io import resources

    # (Panel's own test: "any Panel HTML model may need MathJax"; Bokeh's stays)
    resources._panel_use_mathjax = lambda roots: False
