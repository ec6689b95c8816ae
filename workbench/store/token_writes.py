"""The signed tokens issued and revoked (table ``issued_tokens``; never the token)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


def revoke(store: Store, jti: str, who: str, max_ttl_s: int) -> str:
    """Mark ``jti`` revoked: ``"revoked"``, ``"already"`` (it was), or ``"unknown"`` — a
    token with the same key issued elsewhere (another file, offline): recorded as revoked
    for the longest a token can live, so that it is refused here too."""
    now = datetime.now(UTC).replace(tzinfo=None)

    def run(cur) -> str:
        row = cur.execute("SELECT revoked_at FROM issued_tokens WHERE jti = ?",
                          [jti]).fetchall()
        if row:
            if row[0][0] is not None:
                return "already"
            cur.execute("UPDATE issued_tokens SET revoked_by = ?, revoked_at = ? "
                        "WHERE jti = ?", [who, now, jti])
            return "revoked"
        cur.execute("INSERT INTO issued_tokens VALUES (?, '?', '?', NULL, NULL, ?, ?, ?)",
                    [jti, now + timedelta(seconds=max_ttl_s), who, now])
        return "unknown"

    return store.write(run, topic="control")


def revoked(store: Store) -> set[str]:
    """The revoked tokens that have not expired yet."""
    # (the times are naive UTC: compared with UTC, not the machine's zone)
    df = store.sql("SELECT jti FROM issued_tokens WHERE revoked_at IS NOT NULL AND "
                   "expires_at > ?", [datetime.now(UTC).replace(tzinfo=None)])
    return set(df["jti"])


def listed(store: Store) -> list[dict[str, Any]]:
    import json

    df = store.sql("SELECT * FROM issued_tokens ORDER BY issued_at DESC LIMIT 1000")
    return json.loads(df.to_json(orient="records", date_format="iso"))
