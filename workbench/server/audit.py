"""The route layer's part of the audit log: every refusal (a missing or wrong token, a role
too low, a cross-site or webhook request), and the outcome of each route declared
``audit="route"`` (data writes and deletes). Actions with more to say (an agent's start, a
policy change, an approval) write their own, richer entry (``audit="action"``,
control/access.py).

Every refusal of an authenticated caller (a role too low) is recorded. Refusals of callers
who are not authenticated (no or a wrong token, a cross-site page) come from anyone, so
their entries are bounded: per client address at most :data:`BURST` a minute; beyond that
they are counted, and the next entry let through says how many were held back — the log
stays append-only and cannot be flooded by someone it knows nothing of.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..control.access import Principal, record

if TYPE_CHECKING:
    from tornado.web import RequestHandler

log = logging.getLogger("workbench.server")

BURST = 30
WINDOW_S = 60.0
#: client address -> [window start, entries written in it, entries held back]
_seen: dict[str, list] = {}


def _store():
    from .state import get_store

    return get_store()


def _who(handler: RequestHandler) -> Principal:
    principal = getattr(handler, "principal", None)
    if principal is not None:
        return principal
    header = handler.request.headers.get("Authorization", "")
    who = "anonymous"
    if header.lower().startswith("bearer "):
        from .auth import token_user

        who = token_user(header[7:].strip())  # a fingerprint, never the token
    return Principal(who, "-", handler.request.remote_ip or "")


def _target(handler: RequestHandler) -> str:
    return "/".join(str(a) for a in handler.path_args)[:200] or handler.request.path[:200]


def refused(handler: RequestHandler, denied: tuple[int, str]) -> None:
    """Record one refusal (an unauthenticated caller's bounded per client address)."""
    params: dict[str, Any] = {"status": denied[0], "path": handler.request.path[:200]}
    if getattr(handler, "principal", None) is None and not _let_through(handler, params):
        return
    route = getattr(handler, "route", None)
    action = route.name if route is not None else f"{handler.request.method} (no route)"
    try:
        record(_store(), _who(handler), action, _target(handler), params,
               f"refused: {denied[1][:300]}")
    except Exception:  # noqa: BLE001  (a refusal stands whether or not it is recorded)
        log.exception("could not record a refusal")


def _let_through(handler: RequestHandler, params: dict[str, Any]) -> bool:
    """Whether this client's refusal gets an entry now (adds ``held_back`` to ``params``
    when earlier ones did not)."""
    client = handler.request.remote_ip or ""
    now = time.monotonic()
    seen = _seen.get(client)
    if seen is None or now - seen[0] >= WINDOW_S:
        held = seen[2] if seen else 0
        seen = _seen[client] = [now, 0, held]
        if len(_seen) > 10_000:  # never grow without bound either
            _seen.clear()
            _seen[client] = seen
    if seen[1] >= BURST:
        seen[2] += 1
        return False
    seen[1] += 1
    if seen[2]:
        params["held_back"], seen[2] = seen[2], 0
    return True


def done(handler: RequestHandler, route: Any) -> None:
    """The entry of a finished request to ``route`` (a routes.Route declared
    ``audit="route"``)."""
    status = handler.get_status()
    query = {k: v for k, v in (getattr(handler, "q", None) or {}).items()
             if v not in (None, [], "")}
    outcome = "ok" if status < 400 else f"failed: HTTP {status}"
    if status in (401, 403) or handler.principal is None:
        return  # (refusals are recorded by refused())
    try:
        record(_store(), handler.principal, route.name, _target(handler), query, outcome)
    except Exception:  # noqa: BLE001  (the answer is sent; the failure is logged)
        log.exception("could not record %s in the audit log", route.name)
