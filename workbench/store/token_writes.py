"""The signed tokens issued and revoked (table ``issued_tokens``; never the token)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Store


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def record_issued(store: Store, claims: dict[str, Any], who: str) -> None:
    store.write(lambda cur: cur.execute(
        "INSERT INTO issued_tokens VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
        [claims["jti"], claims["sub"], claims["role"], who, _at(claims["iat"]),
         _at(claims["exp"])]), topic="control")


def revoke(store: Store, jti: str, who: str) -> bool:
    """Mark ``jti`` revoked; False when no such token was issued here (or it was already)."""
    return bool(store.write(lambda cur: cur.execute(
        "UPDATE issued_tokens SET revoked_by = ?, revoked_at = ? WHERE jti = ? AND "
        "revoked_at IS NULL", [who, datetime.now(UTC).replace(tzinfo=None), jti]
    ).fetchone()[0], topic="control"))


def revoked(store: Store) -> set[str]:
    """The revoked tokens that have not expired yet."""
    df = store.sql("SELECT jti FROM issued_tokens WHERE revoked_at IS NOT NULL AND "
                   "expires_at > now()::TIMESTAMP")
    return set(df["jti"])


def listed(store: Store) -> list[dict[str, Any]]:
    import json

    df = store.sql("SELECT * FROM issued_tokens ORDER BY issued_at DESC LIMIT 1000")
    return json.loads(df.to_json(orient="records", date_format="iso"))
