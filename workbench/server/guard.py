"""Who may talk to the API at all: known Host names only, and nothing a browser sends for
another site's page (no cross-site writes to pages either).

A page served from another origin (another localhost port included) must not be able to
write through a user's browser, and a DNS-rebinding page must not reach the API under a
foreign host name. Clients that are not browsers (exporters, the CLI, the pytest plugin)
send neither ``Origin`` nor ``Sec-Fetch-Site`` and are unaffected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import config

if TYPE_CHECKING:
    from tornado.web import RequestHandler

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: Methods that change state; reads stay open to same-site pages as before.
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: Sent with every API answer.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


#: Browsers that once reached the workbench over HTTPS never try plain HTTP again (a year).
HSTS = "max-age=31536000"


def transport_headers() -> dict[str, str]:
    """``Strict-Transport-Security`` when the server speaks TLS (sent on every answer)."""
    return {"Strict-Transport-Security": HSTS} if config.tls() else {}


def allowed_hosts() -> set[str]:
    """Loopback names, plus ``OBSERVATORY_ALLOWED_HOSTS`` (``serve --allow-host``)."""
    extra = {h.strip().lower() for h in config.get("OBSERVATORY_ALLOWED_HOSTS").split(",")}
    return set(LOOPBACK_NAMES) | {h for h in extra if h}


def hostname(hostport: str) -> str:
    """The host name of a ``Host`` header, without its port, lower case."""
    if hostport.startswith("["):  # [::1]:5006
        return hostport[1:].split("]", 1)[0].lower()
    return hostport.rsplit(":", 1)[0].lower() if hostport.count(":") == 1 else hostport.lower()


def check(handler: RequestHandler, reads_too: bool = True) -> tuple[int, str] | None:
    """``None`` when the request may proceed, else ``(status, reason)``.

    The API refuses every request a browser sends for another site's page, reads too
    (``reads_too``): no page elsewhere has any business with it, and in the no-token
    loopback mode an ``<img src>`` on any web page would otherwise reach it as an admin.
    Pages refuse only such writes (a link from elsewhere to a dashboard is fine)."""
    req = handler.request
    host = req.headers.get("Host", "")  # a known one: unknown hosts got 421 (pages.py)
    if req.method not in WRITES and not reads_too:
        return None
    what = "write" if req.method in WRITES else "request"
    site = req.headers.get("Sec-Fetch-Site")
    if site and site not in ("same-origin", "none"):
        return 403, f"cross-site {what} refused (Sec-Fetch-Site: {site[:40]})"
    origin = req.headers.get("Origin")
    if origin and origin != "null":
        if urlsplit(origin).netloc.lower() != host.lower():
            return 403, f"cross-origin {what} refused (Origin {origin[:80]})"
    elif origin == "null":
        return 403, f"cross-origin {what} refused (opaque Origin)"
    return None
