"""Static files are sent compressed and cached, MathJax only to a page that draws math;
pages and API answers are not compressed."""

from __future__ import annotations

import gzip
import re

import httpx


def _page_assets(server) -> list[str]:
    html = httpx.get(server.url + "/tests", timeout=60).text
    return re.findall(r'(?:src|href)="(static/[^"]+\.(?:js|css)[^"]*)"', html)


def raw(url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """An answer and its bytes as sent (httpx would otherwise undo the gzip itself)."""
    with httpx.Client(timeout=60) as c, c.stream("GET", url, headers=headers) as r:
        return r, b"".join(r.iter_raw())


def test_a_pages_scripts_come_gzipped_the_same_bytes_each_time(server):
    assets = _page_assets(server)
    bokeh = next(a for a in assets if "/js/bokeh.min.js?v=" in a)
    plain, plain_bytes = raw(f"{server.url}/{bokeh}", **{"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    first, first_bytes = raw(f"{server.url}/{bokeh}", **{"Accept-Encoding": "gzip, deflate"})
    again, again_bytes = raw(f"{server.url}/{bokeh}", **{"Accept-Encoding": "gzip"})
    for r, sent in ((first, first_bytes), (again, again_bytes)):
        assert r.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in r.headers["Vary"]
        assert gzip.decompress(sent) == plain_bytes
    assert first_bytes == again_bytes  # (the second from the kept copy)
    assert len(again_bytes) < len(plain_bytes) / 2
    assert int(again.headers["Content-Length"]) == len(again_bytes)
    # A versioned file is kept for good; a revalidation and a range are as Tornado sends them.
    assert "max-age=315360000" in first.headers["Cache-Control"]
    unchanged, nothing = raw(f"{server.url}/{bokeh}", **{
        "Accept-Encoding": "gzip", "If-None-Match": plain.headers["Etag"]})
    assert unchanged.status_code == 304 and not nothing
    part, some = raw(f"{server.url}/{bokeh}", **{"Accept-Encoding": "gzip",
                                                 "Range": "bytes=0-99"})
    assert part.status_code == 206 and some == plain_bytes[:100]
    assert "Content-Encoding" not in part.headers


def test_a_page_without_mathematics_does_not_load_mathjax(server):
    assets = _page_assets(server)
    assert any("/js/bokeh.min.js" in a for a in assets)
    # (1.8 MiB that Panel asked for whenever a page had an HTML or Markdown pane)
    assert not [a for a in assets if "mathjax" in a]


def test_unversioned_bundled_files_are_kept_a_day(server):
    unversioned = [a for a in _page_assets(server) if "/bundled/" in a and "?v=" not in a]
    assert unversioned, "the page names no unversioned bundled file any more"
    for asset in unversioned:
        r, _ = raw(f"{server.url}/{asset}", **{"Accept-Encoding": "gzip"})
        assert r.status_code == 200, asset
        assert r.headers["Cache-Control"] == "max-age=86400", asset
        assert r.headers.get("Etag"), asset  # (revalidated after that day)


def test_pages_and_api_answers_are_not_compressed(server):
    # A page carries its session's token: compressed beside what a request chose, its
    # length would tell the token (BREACH). Static files hold no secret.
    for path in ("/tests", "/api/health", "/api/test-runs"):
        r, _ = raw(server.url + path, **{"Accept-Encoding": "gzip"})
        assert r.status_code == 200, path
        assert "Content-Encoding" not in r.headers, path
