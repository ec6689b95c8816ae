"""Signed tokens through the API (admins): issue, list, revoke (the list the one
authentication check reads is server/bearer.py's)."""

from __future__ import annotations

from .. import tokens
from ..store import token_writes
from .bearer import revoked_now
from .plugin_base import APIHandler
from .state import get_store


class TokensHandler(APIHandler):
    """``GET /api/tokens`` (the tokens issued), ``POST /api/tokens`` with ``{"sub",
    "role", "ttl"}``: a new signed token (shown once: only its id is stored)."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "tokens": token_writes.listed(get_store())})

    async def post(self) -> None:
        def work() -> dict:
            body = self.payload()
            try:
                token, claims = tokens.issue(body["sub"], body["role"],
                                             tokens.parse_ttl(body["ttl"]))
            except tokens.TokenError as err:  # no key configured: the server's setup
                raise PermissionError(str(err)) from None
            token_writes.record_issued(get_store(), claims, self.principal.who)
            self.set_status(201)
            return {"ok": True, "token": token, "claims": claims}

        await self.answer(work)


class TokenRevokeHandler(APIHandler):
    """``POST /api/tokens/{jti}/revoke``: refused from now on, on this server (also a token
    signed with the same key elsewhere: ``"issued_here": false``); 409 when it was already."""

    async def post(self, jti: str) -> None:
        def work() -> dict:
            self.payload()
            done = token_writes.revoke(get_store(), jti, self.principal.who,
                                       tokens.MAX_TTL_S)
            if done == "already":
                self.set_status(409)
                return {"ok": False, "error": f"token {jti} was already revoked"}
            revoked_now(jti)
            return {"ok": True, "revoked": jti, "issued_here": done == "revoked"}

        await self.answer(work)
