"""Every setting in one table: flag, environment variable, default, meaning.

Resolved as command-line flag > ``OBSERVATORY_*`` environment variable > default. No other
module reads the environment for a setting; the README's configuration table is checked
against :data:`SETTINGS` by a test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_PORT = 5006
_CHECKOUT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    """One setting: how it is given and what it means."""

    env: str
    default: Any
    meaning: str
    flag: str | None = None
    kind: type = str


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in [
        Setting("OBSERVATORY_HOME", None, "the folder of the default database (default: `data/` "
                "of this checkout, or `~/.local/share/happy-observatory` for an installed "
                "package), the same from every working directory"),
        Setting("OBSERVATORY_DB", None, "the DuckDB file (default `observatory.duckdb` in "
                "`OBSERVATORY_HOME`), or a ClickHouse store: `clickhouse://user:pass@host:8123/db`"
                " (`clickhouse+https://` for TLS) or `chdb:///folder` (ClickHouse's engine in "
                "this process)", flag="--db"),
        Setting("OBSERVATORY_URL", None, "a running workbench every client uses instead of the "
                "file (default: the server that advertises itself beside the file)",
                flag="--url"),
        Setting("OBSERVATORY_NO_DEMO", False, "`1`: do not fill an empty database with the demo "
                "dataset", flag="--no-demo", kind=bool),
        Setting("OBSERVATORY_TOKENS", "", "comma-separated bearer tokens the HTTP API accepts, "
                "each optionally with its role (`tokA:admin,tokB:operator,tokC:viewer,"
                "tokD:ingest`; no role means admin); when unset, only loopback clients are "
                "served"),
        Setting("OBSERVATORY_USER_ROLES", "", "roles of users who log in to the dashboards "
                "(`alice:admin,bob:viewer`); others get `OBSERVATORY_DEFAULT_ROLE`"),
        Setting("OBSERVATORY_DEFAULT_ROLE", "admin", "role of a logged-in user not listed in "
                "`OBSERVATORY_USER_ROLES`: ingest, viewer, operator or admin (default admin)"),
        Setting("OBSERVATORY_TOKEN", None, "the token `ingest`, the pytest plugin and notebooks "
                "send to a server"),
        Setting("OBSERVATORY_MAX_REPORT_BYTES", 512 * 1024 * 1024, "largest report file "
                "`ingest` reads (default 512 MiB)", kind=int),
        Setting("OBSERVATORY_MAX_BODY_BYTES", 256 * 1024 * 1024, "largest report upload, after "
                "gzip inflation (default 256 MiB)", kind=int),
        Setting("OBSERVATORY_OTLP_MAX_BYTES", 64 * 1024 * 1024, "largest OTLP request, after "
                "gzip inflation (default 64 MiB)", kind=int),
        Setting("OBSERVATORY_OTLP_DEFER_S", 5.0, "while OTLP requests overlap, each is "
                "answered once its bytes are stored and its rows are written within this many "
                "seconds, or at the first quiet moment (0: rows before every answer; default "
                "5)", kind=float),
        Setting("OBSERVATORY_OTLP_INBOX_BYTES", 256 * 1024 * 1024, "OTLP requests answered and "
                "not yet written as rows, at most (then rows are written before the answer "
                "again; default 256 MiB)", kind=int),
        Setting("OBSERVATORY_OTLP_FLATTEN_PROCESS", True, "in a burst, make the waiting OTLP "
                "requests' rows in a child process, on a core of its own (~100 MB while it "
                "runs, stopped after a minute idle; never on one core; default on)", kind=bool),
        Setting("OBSERVATORY_REPORT_TZ", None, "zone of report timestamps written without one "
                "(default UTC)", flag="--report-tz"),
        Setting("OBSERVATORY_BASIC_AUTH", None, "as `serve --basic-auth`", flag="--basic-auth"),
        Setting("OBSERVATORY_COOKIE_SECRET", None, "signs the login cookie (default: a new "
                "random secret at each start, which logs everyone out on restart)"),
        Setting("OBSERVATORY_WRITE_QUEUE", 256, "writes that may wait for the store before "
                "requests get 503 + `Retry-After` (default 256)", kind=int),
        Setting("OBSERVATORY_DUCKDB_MEMORY", "512MB", "DuckDB's buffer pool, e.g. `2GB` "
                "(default 512MB; bigger queries spill to `<db>.tmp/`): what a big report's "
                "insert or a query may keep in memory"),
        Setting("OBSERVATORY_LIVE_INTERVAL", 1.0, "shortest time in seconds between two "
                "refreshes of one open dashboard while data keeps arriving (default 1)",
                kind=float),
        Setting("OBSERVATORY_REDIS_URL", None, "with a ClickHouse store: a Redis "
                "(`redis://host:6379/0`) whose pub/sub tells every serve process sharing the "
                "store of each other's writes at once"),
        Setting("OBSERVATORY_SHARED_POLL_S", 1.0, "with a ClickHouse store: seconds between "
                "looks at its tables for rows others wrote (other nodes, Collectors); 0 never "
                "looks", kind=float),
        Setting("OBSERVATORY_MAX_CONNECTIONS", 4096, "open HTTP connections the server keeps "
                "in all, on every port (at most the open-file limit less 256; more are closed "
                "at once)", kind=int),
        Setting("OBSERVATORY_MAX_CLIENT_CONNECTIONS", 512, "open HTTP connections one client "
                "address may hold (more are closed at once)", kind=int),
        Setting("OBSERVATORY_IDLE_TIMEOUT", 60.0, "seconds before an idle keep-alive "
                "connection, or one still sending its headers, is closed", kind=float),
        Setting("OBSERVATORY_BODY_TIMEOUT", 300.0, "seconds a client may take to send a "
                "request body", kind=float),
        Setting("OBSERVATORY_OTLP_PORT", None, "also receive OTLP/HTTP on this port",
                flag="--otlp-port", kind=int),
        Setting("OBSERVATORY_OTLP_GRPC_PORT", None, "receive OTLP over gRPC on this port "
                "(4317 is the standard one)", flag="--otlp-grpc-port", kind=int),
        Setting("OBSERVATORY_OTLP_ADDRESS", "127.0.0.1", "the address of the extra OTLP "
                "listeners, HTTP and gRPC (set by `serve` to its `--address`)"),
        Setting("OBSERVATORY_ALLOWED_HOSTS", "", "comma-separated host names the workbench "
                "(pages, API, OTLP) answers besides the loopback names (requests with another "
                "`Host` get 421)",
                flag="--allow-host"),
        Setting("OBSERVATORY_WEBHOOK_BACKOFF_S", 2.0, "seconds before the first retry of a "
                "failed webhook delivery; doubles each time (at most 10 attempts)"),
        Setting("OBSERVATORY_TEST_RUNS_PER_PROJECT", 1, "test runs started from the workbench "
                "that run at once per project; more wait in its queue"),
        Setting("OBSERVATORY_CHILD_ENV", "", "comma-separated names of this server's "
                "environment variables that agents, test runs and MCP servers inherit besides "
                "the built-in allow-list (PATH, HOME, locale, proxy, certificates), e.g. "
                "`ANTHROPIC_API_KEY`; the workbench's own tokens and secrets never"),
        Setting("OBSERVATORY_MAX_JSON_BYTES", 4 * 1024 * 1024, "largest JSON request body of "
                "the API (default 4 MiB; reports, coverage and OTLP have their own limits)",
                kind=int),
        Setting("OBSERVATORY_HOOK_TIMEOUT_S", 600.0, "seconds a permission request from a "
                "Claude Code hook waits for a person before it is denied (default 600)",
                kind=float),
        Setting("OBSERVATORY_CONSOLE_SHELLS", 4, "project shells one user may have open at "
                "once (default 4)", kind=int),
        Setting("OBSERVATORY_CONSOLE_GRACE_S", 30.0, "seconds a shell lives on after its last "
                "browser tab closed (a reload reattaches within it; default 30)", kind=float),
        Setting("OBSERVATORY_CONSOLE_IDLE_S", 3600.0, "seconds without a key typed after which "
                "a shell is ended (default 3600)", kind=float),
        Setting("OBSERVATORY_TLS_CERTFILE", None, "a PEM certificate (chain): every listener "
                "(pages, API, websockets, OTLP/HTTP and gRPC) speaks HTTPS/TLS with it",
                flag="--certfile"),
        Setting("OBSERVATORY_TLS_KEYFILE", None, "the certificate's private key (PEM)",
                flag="--keyfile"),
        Setting("OBSERVATORY_JWT_SECRET", None, "signs and checks the signed, expiring tokens "
                "`observatory tokens issue` makes (HS256)"),
        Setting("OBSERVATORY_JWT_PRIVATE_KEY", None, "a PEM RSA private key that signs them "
                "instead (RS256)"),
        Setting("OBSERVATORY_JWT_PUBLIC_KEY", None, "the PEM public key a server checks RS256 "
                "tokens with (default: from the private key)"),
        Setting("OBSERVATORY_OIDC_ISSUER", None, "single sign-on: the OpenID Connect "
                "provider's issuer URL (its `/.well-known/openid-configuration` is read)"),
        Setting("OBSERVATORY_OIDC_CLIENT_ID", None, "the workbench's client id at that "
                "provider"),
        Setting("OBSERVATORY_OIDC_CLIENT_SECRET", None, "its client secret"),
        Setting("OBSERVATORY_OIDC_ROLES", "", "groups mapped to roles, `group:role,...` "
                "(`platform:admin,devs:operator,everyone:viewer`; the highest wins)"),
        Setting("OBSERVATORY_OIDC_DEFAULT_ROLE", None, "the role of a user in no mapped group "
                "(default: such a user is refused)"),
        Setting("OBSERVATORY_OIDC_GROUPS_CLAIM", "groups", "the id_token claim listing the "
                "user's groups (default `groups`)"),
        Setting("OBSERVATORY_OIDC_USER_CLAIM", "email", "the claim that names the user "
                "(default `email`; `sub` when it is missing)"),
        Setting("OBSERVATORY_OIDC_SCOPES", "openid,email,profile", "scopes asked for, "
                "comma-separated (default `openid,email,profile`; some providers need "
                "`groups`)"),
        Setting("OBSERVATORY_OIDC_EXPIRY_DAYS", 1.0, "days a single sign-on login lasts "
                "(default 1)", kind=float),
        Setting("OBSERVATORY_RETENTION_EVERY_S", 3600.0, "seconds between two runs of the "
                "retention policies (then compaction when due; 0: never on a schedule; "
                "default 3600)", kind=float),
        Setting("OBSERVATORY_COMPACT_RATIO", 2.0, "compact the file when it is this many "
                "times the size of its live data (0: never on its own; default 2)",
                kind=float),
        Setting("OBSERVATORY_COMPACT_MIN_MB", 64, "compact only when at least this many MB "
                "would be given back (default 64)", kind=int),
        Setting("OBSERVATORY_BACKUP_EVERY_H", 0.0, "hours between two scheduled backups "
                "(default 0: none; `observatory backup` any time)", kind=float),
        Setting("OBSERVATORY_BACKUP_DIR", None, "where backups go (default `backups/` beside "
                "the database)"),
        Setting("OBSERVATORY_BACKUP_KEEP", 7, "backups kept; older ones are deleted after a "
                "new one verified (default 7)", kind=int),
        Setting("OBSERVATORY_SERVER_URL", None, "the URL the server advertises beside its "
                "database (set by `serve`; else read from `panel serve`'s `--address`/`--port`)"),
    ]
}


def get(env: str, flag: Any = None) -> Any:
    """The value of one setting: ``flag`` when given, else its variable, else the default."""
    setting = SETTINGS[env]
    if flag not in (None, ""):
        return flag
    raw = os.environ.get(env)
    if raw in (None, ""):
        return setting.default
    if setting.kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if setting.kind in (int, float):
        try:
            return setting.kind(raw)
        except ValueError:
            what = "a whole number" if setting.kind is int else "a number"
            raise ValueError(f"{env}={raw!r} is not {what}") from None
    return raw


def home() -> Path:
    """The folder of the default database, absolute and the same from every directory."""
    explicit = get("OBSERVATORY_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "dashboards").is_dir():
        return _CHECKOUT / "data"  # a source checkout (pip install -e .)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "happy-observatory"


def db_path(flag: str | os.PathLike[str] | None = None) -> Path:
    """The DuckDB file: ``--db``, then ``OBSERVATORY_DB``, then ``home()/observatory.duckdb``.

    Always absolute, so every command finds the same file whatever directory it runs in.
    With a ClickHouse store (:func:`store_url`) it is this node's control file: in the
    chDB folder, else ``home()/control.duckdb``. The server advertises itself beside it,
    so clients find a ClickHouse-backed server as they find any other. (Named for the
    server and database: two ClickHouses with a database of one name get a file each.)
    """
    value = get("OBSERVATORY_DB", flag)
    url = store_url(flag)
    if url is not None:
        from .store.clickhouse.connect import parse

        target = parse(url)
        folder = target.path if target.path is not None else home()
        return (folder / ("control.duckdb" if target.path is not None else
                          f"control-{target.host}-{target.port}-{target.database}.duckdb")
                ).resolve()
    path = Path(value).expanduser() if value else home() / "observatory.duckdb"
    return path.resolve()


def store_url(flag: str | os.PathLike[str] | None = None) -> str | None:
    """The ClickHouse store (``clickhouse://…``, ``chdb:///folder``) that ``--db`` or
    ``OBSERVATORY_DB`` names, or None for a DuckDB file."""
    from .store.clickhouse.connect import is_clickhouse_url

    value = get("OBSERVATORY_DB", flag)
    return str(value) if is_clickhouse_url(str(value or "")) else None


def demo_enabled(no_demo_flag: bool = False) -> bool:
    """Whether an empty database is filled with the demo dataset on first start."""
    return not get("OBSERVATORY_NO_DEMO", no_demo_flag or None)


#: Every role. ``ingest`` writes data (reports, live runs, coverage, telemetry, hooks) and
#: reads nothing; ``viewer`` reads and writes nothing; ``operator`` reads, writes data and
#: acts on agents; ``admin`` also sets policies, alert rules, webhooks and reads the audit
#: log. Not a ladder: what each may do is :data:`GRANTS`.
ROLES = ("ingest", "viewer", "operator", "admin")
#: The route levels each role passes (a route or action names the one level it needs).
GRANTS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest"}),
    "viewer": frozenset({"viewer"}),
    "operator": frozenset({"ingest", "viewer", "operator"}),
    "admin": frozenset({"ingest", "viewer", "operator", "admin"}),
}


def allows(role: str, need: str) -> bool:
    """Whether ``role`` may use what needs ``need`` (a level of :data:`GRANTS`, or ``any``:
    every authenticated principal)."""
    return need == "any" or need in GRANTS.get(role, ())


def _with_roles(raw: str) -> dict[str, str]:
    """``"a:admin,b:viewer,c"`` → ``{"a": "admin", "b": "viewer", "c": "admin"}``: an entry
    without a known role after its last colon is admin (as before roles existed)."""
    out = {}
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        name, _, role = item.rpartition(":")
        if name and role in ROLES:
            out[name] = role
        else:
            out[item] = "admin"
    return out


def api_token_roles() -> dict[str, str]:
    """Bearer tokens the API accepts and the role each carries (``OBSERVATORY_TOKENS``,
    ``token:role`` entries; no role means admin)."""
    return _with_roles(get("OBSERVATORY_TOKENS"))


def api_tokens() -> set[str]:
    """Bearer tokens accepted by the REST API (comma-separated ``OBSERVATORY_TOKENS``)."""
    return set(api_token_roles())


def secret_from(variable: str) -> str | None:
    """The value of an environment variable an agent's definition names for a secret (a
    token of another workbench): the definition stores the name, never the secret."""
    return os.environ.get(variable) if variable else None


def user_role(user: str) -> str:
    """The role of a logged-in user: ``OBSERVATORY_USER_ROLES`` (``alice:admin,bob:viewer``),
    else ``OBSERVATORY_DEFAULT_ROLE``."""
    return _with_roles(get("OBSERVATORY_USER_ROLES")).get(user) or get(
        "OBSERVATORY_DEFAULT_ROLE")


def utcnow() -> datetime:
    """Now, as the naive UTC timestamp every stored time uses."""
    return datetime.now(UTC).replace(tzinfo=None)


def report_tz(flag: str | None = None) -> str | None:
    """The zone of report timestamps written without one: ``--report-tz``, then
    ``OBSERVATORY_REPORT_TZ`` (an IANA name such as ``Europe/Berlin``); None means UTC."""
    name = get("OBSERVATORY_REPORT_TZ", flag) or None
    if name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
            ) from None
    return name


def to_utc(ts: datetime, assume: str | None = None) -> datetime:
    """A stored timestamp: aware ones converted to UTC; naive ones taken to be in the zone
    ``assume`` (default UTC)."""
    if ts.tzinfo is None:
        if not assume:
            return ts
        ts = ts.replace(tzinfo=ZoneInfo(assume))
    return ts.astimezone(UTC).replace(tzinfo=None)


def tls() -> tuple[str, str] | None:
    """``(certfile, keyfile)`` when the server speaks TLS, else None."""
    cert, key = get("OBSERVATORY_TLS_CERTFILE"), get("OBSERVATORY_TLS_KEYFILE")
    return (cert, key) if cert and key else None
