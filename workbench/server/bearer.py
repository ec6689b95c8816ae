"""The bearer tokens this server accepts besides ``OBSERVATORY_TOKENS``: its own (made for
the agents it starts, until it stops) and signed ones (workbench/tokens.py), with the list
of those revoked — read from the store when the server opens it (state.get_store), kept
in memory, added to by ``POST /api/tokens/{jti}/revoke``."""

from __future__ import annotations

import secrets
import threading
from typing import TYPE_CHECKING

from .. import tokens

if TYPE_CHECKING:
    from ..store import Store

#: Tokens this process made for itself, with their roles.
own_tokens: dict[str, str] = {}
_lock = threading.Lock()
_revoked: set[str] = set()


def own_token(role: str = "ingest") -> str:
    """A new token this server accepts until it stops, with ``role``."""
    token = secrets.token_urlsafe(24)
    own_tokens[token] = role
    return token


def load_revoked(store: Store) -> None:
    """Read the revoked signed tokens that have not expired yet."""
    from ..store import token_writes

    found = token_writes.revoked(store)
    with _lock:
        _revoked.clear()
        _revoked.update(found)


def revoked_now(jti: str) -> None:
    with _lock:
        _revoked.add(jti)


def jwt_role(token: str) -> tuple[str | None, str, str]:
    """``(role or None, who, why not)`` of a signed token."""
    try:
        claims = tokens.verify(token)
    except tokens.TokenError as err:
        return None, "", str(err)
    with _lock:
        if claims["jti"] in _revoked:
            return None, "", "the token was revoked"
    return claims["role"], f"jwt:{claims['sub']}", ""
