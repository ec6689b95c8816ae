"""Signed, expiring bearer tokens (JWT): issued by ``observatory tokens issue``, checked by
the server's one authentication rule beside the static ``OBSERVATORY_TOKENS``.

HS256 with ``OBSERVATORY_JWT_SECRET``, or RS256 with a key pair
(``OBSERVATORY_JWT_PRIVATE_KEY`` signs, ``OBSERVATORY_JWT_PUBLIC_KEY`` checks: a server
can check tokens without being able to make them). Claims: ``sub`` (who), ``role``
(ingest, viewer, operator, admin), ``exp``, ``iat``, ``iss`` and ``jti`` (by which one
token is revoked). PyJWT does the signing and checking.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

from . import config

ISSUER = "happy-observatory"
ROLES = ("ingest", "viewer", "operator", "admin")
#: Longest lifetime a token may be issued with (a year): a token that never expires is a
#: static token, which ``OBSERVATORY_TOKENS`` already is.
MAX_TTL_S = 366 * 86400
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class TokenError(ValueError):
    """A token that is not accepted, with the reason (expired, bad signature, ...)."""


def looks_like_jwt(text: str) -> bool:
    return bool(_JWT.match(text)) and len(text) < 8192


def _read(path: str, name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TokenError(f"{name}: cannot read {path}: {err.strerror}") from None


def configured() -> bool:
    return bool(config.get("OBSERVATORY_JWT_SECRET") or config.get("OBSERVATORY_JWT_PUBLIC_KEY")
                or config.get("OBSERVATORY_JWT_PRIVATE_KEY"))


#: The shortest HS256 secret taken: RFC 7518 asks for a key as long as the hash (32 bytes);
#: a short one can be guessed offline from any token.
MIN_SECRET_BYTES = 32


def _secret() -> str | None:
    secret = config.get("OBSERVATORY_JWT_SECRET")
    if secret and len(secret.encode()) < MIN_SECRET_BYTES:
        raise TokenError(f"OBSERVATORY_JWT_SECRET: at least {MIN_SECRET_BYTES} bytes (it has "
                         f"{len(secret.encode())}): `python -c 'import secrets; "
                         "print(secrets.token_urlsafe(48))'` makes one")
    return secret


def check_keys() -> None:
    """TokenError naming the setting when a configured key cannot be used (``serve``
    checks at start, not at the first token)."""
    if configured():
        _checking()
        if config.get("OBSERVATORY_JWT_PRIVATE_KEY"):
            _signing()


def _signing() -> tuple[str, Any]:
    secret = _secret()
    if secret:
        return "HS256", secret
    private = config.get("OBSERVATORY_JWT_PRIVATE_KEY")
    if private:
        return "RS256", _pem(private, "OBSERVATORY_JWT_PRIVATE_KEY", private=True)
    raise TokenError("no signing key: set OBSERVATORY_JWT_SECRET (HS256) or "
                     "OBSERVATORY_JWT_PRIVATE_KEY (RS256, a PEM file)")


def _pem(path: str, name: str, private: bool):
    """The RSA key in the PEM file ``path`` (parsed once per file and change)."""
    from cryptography.hazmat.primitives import serialization

    raw = _read(path, name)
    cached = _keys.get((path, private))
    if cached and cached[0] == raw:
        return cached[1]
    try:
        key = (serialization.load_pem_private_key(raw, None) if private
               else serialization.load_pem_public_key(raw))
    except (ValueError, TypeError) as err:
        raise TokenError(f"{name}: {path} is not a PEM {'private' if private else 'public'} "
                         f"key without a password: {err}") from None
    _keys[(path, private)] = (raw, key)
    return key


_keys: dict[tuple[str, bool], tuple[bytes, Any]] = {}


def _checking() -> tuple[str, Any] | None:
    secret = _secret()
    if secret:
        return "HS256", secret
    public = config.get("OBSERVATORY_JWT_PUBLIC_KEY")
    if public:
        return "RS256", _pem(public, "OBSERVATORY_JWT_PUBLIC_KEY", private=False)
    private = config.get("OBSERVATORY_JWT_PRIVATE_KEY")
    if private:
        return "RS256", _pem(private, "OBSERVATORY_JWT_PRIVATE_KEY", private=True).public_key()
    return None


def parse_ttl(text: str | int | float) -> int:
    """Seconds from ``3600``, ``90m``, ``12h``, ``30d`` (ValueError otherwise)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = int(text)
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(text))
        if not m:
            raise ValueError(f"ttl: {text!r} is not a duration (3600, 90m, 12h, 30d)")
        seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if not 1 <= seconds <= MAX_TTL_S:
        raise ValueError(f"ttl: from 1 second to {MAX_TTL_S // 86400} days")
    return seconds


def issue(sub: str, role: str, ttl_s: int) -> tuple[str, dict[str, Any]]:
    """A new token and its claims."""
    import jwt

    if role not in ROLES:
        raise ValueError(f"role: one of {', '.join(ROLES)}")
    if not sub or len(sub) > 200 or not sub.isprintable():
        raise ValueError("sub: a printable name of 1 to 200 characters")
    now = int(time.time())
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + parse_ttl(ttl_s),
              "iss": ISSUER, "jti": uuid.uuid4().hex}
    alg, key = _signing()
    return jwt.encode(claims, key, algorithm=alg), claims


def verify(token: str) -> dict[str, Any]:
    """The claims of a valid token; TokenError saying why not."""
    import jwt

    checking = _checking()
    if checking is None:
        raise TokenError("signed tokens are not enabled on this server")
    alg, key = checking
    try:
        claims = jwt.decode(token, key, algorithms=[alg], issuer=ISSUER,
                            options={"require": ["exp", "sub", "role", "jti", "iss"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired") from None
    except jwt.InvalidTokenError as err:
        raise TokenError(f"invalid token: {err}") from None
    if claims.get("role") not in ROLES:
        raise TokenError(f"invalid token: role {str(claims.get('role'))[:20]!r} is not one "
                         f"of {', '.join(ROLES)}")
    return claims
