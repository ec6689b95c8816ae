"""``observatory tokens issue | list | revoke``: signed, expiring bearer tokens (JWT).

Through the server holding the database when one runs (it records what it issued, and a
revocation takes effect there at once; an admin token in ``$OBSERVATORY_TOKEN``), else
signed here with the configured key and recorded in the file.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub, target_args) -> None:
    tk = sub.add_parser("tokens", help="signed, expiring bearer tokens (JWT)",
                        description="Issue, list and revoke signed tokens (needs "
                        "OBSERVATORY_JWT_SECRET, or OBSERVATORY_JWT_PRIVATE_KEY for RS256).")
    tsub = tk.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = tsub.add_parser("issue", help="a new token (printed once, on stdout)",
                            description="A new token with a role and a lifetime, printed "
                            "once on stdout (only its id is kept).")
    issue.add_argument("--role", required=True,
                       choices=["ingest", "viewer", "operator", "admin"])
    issue.add_argument("--ttl", required=True, help="lifetime: seconds, or 90m, 12h, 30d")
    issue.add_argument("--sub", default=None,
                       help="who it is for (default: the user running the command)")
    lst = tsub.add_parser("list", help="the tokens issued", description="The tokens issued.")
    rev = tsub.add_parser("revoke", help="refuse a token from now on",
                          description="Refuse a token from now on (by its id, `jti`).")
    rev.add_argument("jti")
    for p in (issue, lst, rev):
        target_args(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=_one_line(cmd_tokens))


def _one_line(command):
    from .store_cli import _one_line as guard

    return guard(command)


def cmd_tokens(args: argparse.Namespace) -> int:
    import getpass

    from . import tokens
    from .intake import resolve
    from .store import token_writes
    from .store_cli import _api, _local

    path, url = resolve(args.db, args.url)
    try:
        if args.action == "issue":
            sub = args.sub or getpass.getuser()
            if url:
                got = _api(url, "POST", "/api/tokens",
                           json={"sub": sub, "role": args.role, "ttl": args.ttl})
                token, claims = got["token"], got["claims"]
            else:
                token, claims = tokens.issue(sub, args.role, tokens.parse_ttl(args.ttl))
                with _local(path) as store:
                    token_writes.record_issued(store, claims, f"cli:{getpass.getuser()}")
            print(token)
            print(f"token {claims['jti']} for {claims['sub']} ({claims['role']}), expires "
                  f"in {tokens.parse_ttl(args.ttl)} s", file=sys.stderr)
            return 0
        if args.action == "list":
            if url:
                rows = _api(url, "GET", "/api/tokens")["tokens"]
            else:
                with _local(path) as store:
                    rows = token_writes.listed(store)
            for r in rows:
                print(json.dumps(r) if args.json else
                      f"{r['jti']}  {r['role']:<8} {r['sub']:<20} expires {r['expires_at']}"
                      + (f"  revoked by {r['revoked_by']}" if r["revoked_by"] else ""))
            return 0
        if url:
            _api(url, "POST", f"/api/tokens/{args.jti}/revoke", json={})
        else:
            with _local(path) as store:
                if token_writes.revoke(store, args.jti, f"cli:{getpass.getuser()}",
                                       tokens.MAX_TTL_S) == "already":
                    raise ValueError(f"token {args.jti} was already revoked")
        print(f"revoked {args.jti}")
        return 0
    except (tokens.TokenError, ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"observatory tokens {args.action}: {err}", file=sys.stderr)
        return 2
