"""``observatory export | import | backup | restore | compact | retention | storage``: the
database file's upkeep from the command line.

Each command works on the file itself, or — while a server holds it (DuckDB lets one
process open a file) — through that server's API, by the one rule of
:func:`workbench.intake.resolve`. ``import`` and ``restore`` write a file no server holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import config
from .store.kinds import KINDS


def add_parsers(sub, target_args, db_arg) -> None:
    ex = sub.add_parser(
        "export", help="tables as Parquet, CSV or JSON lines (or spans as OTLP)",
        description="Write the stored data of some kinds (default: all, settings included) "
        "into a new folder, one file per table plus manifest.json, read from one snapshot "
        "while ingest goes on. `observatory import` reads it back. With --otlp-file or "
        "--otlp-endpoint, spans are written or sent as OTLP/JSON instead (to Phoenix, "
        "Langfuse, Tempo, a Collector).")
    target_args(ex)
    ex.add_argument("dest", metavar="FOLDER", nargs="?",
                    help="a new (or empty) folder (not with --otlp-*)")
    ex.add_argument("--kind", action="append", choices=[*KINDS, "all"],
                    help="what to export (repeatable; default all)")
    ex.add_argument("--format", default="parquet", choices=["parquet", "csv", "jsonl"],
                    help="file format (default parquet, zstd-compressed)")
    ex.add_argument("--project", help="one project's rows (telemetry: its service.name)")
    ex.add_argument("--since", help="rows from this ISO time (UTC)")
    ex.add_argument("--until", help="rows before this ISO time (UTC)")
    ex.add_argument("--partition", action="store_true",
                    help="a folder per day for dated tables (day=YYYY-MM-DD/), for big exports")
    ex.add_argument("--otlp-file", metavar="FILE", help="write spans as OTLP/JSON lines")
    ex.add_argument("--otlp-endpoint", metavar="URL",
                    help="send spans to an OTLP/HTTP endpoint (…/v1/traces)")
    ex.add_argument("--otlp-header", action="append", metavar="NAME=VALUE", default=[],
                    help="a header for --otlp-endpoint (repeatable), e.g. Authorization=…")
    ex.add_argument("--target", metavar="NAME=DEST",
                    help="hand the data to an export target a plugin adds "
                    "(happy_observatory.export_targets; `observatory plugins` lists them)")
    ex.set_defaults(func=_one_line(cmd_export))

    im = sub.add_parser("import", help="store an export into a new database file",
                        description="Store the folder `observatory export` wrote into a "
                        "database file holding no data yet; all or nothing.")
    db_arg(im)
    im.add_argument("src", metavar="FOLDER")
    im.set_defaults(func=_one_line(cmd_import))

    cy = sub.add_parser("copy", help="move a DuckDB file's data to a ClickHouse store",
                        description="Copy a DuckDB file (no server may hold it) into a "
                        "ClickHouse store: telemetry into the OpenTelemetry Collector "
                        "exporter's tables, everything else into the node's new control file "
                        "(the one `observatory serve --db URL` uses). The ClickHouse "
                        "database must hold no telemetry yet; counts are checked at the end.")
    cy.add_argument("--from", dest="source", required=True, metavar="FILE.duckdb",
                    help="the DuckDB file to copy")
    cy.add_argument("--to", dest="target", required=True, metavar="URL",
                    help="clickhouse://user:pass@host:8123/db or chdb:///folder")
    cy.add_argument("--control", metavar="FILE.duckdb",
                    help="the control file to make (default: where `serve --db URL` looks)")
    cy.set_defaults(func=_one_line(cmd_copy))

    bk = sub.add_parser("backup", help="back the database up, online",
                        description="Copy the database as of one moment while ingest goes "
                        "on (a running server does it itself), verify the copy by opening it "
                        "and counting, and delete all but the newest --keep backups.")
    target_args(bk)
    bk.add_argument("--keep", type=int, help="backups to keep (default "
                    "$OBSERVATORY_BACKUP_KEEP, 7)")
    bk.add_argument("--to", metavar="FOLDER", help="where (default $OBSERVATORY_BACKUP_DIR, "
                    "else backups/ beside the database; a server uses its own setting)")
    bk.add_argument("--json", action="store_true", help="print JSON")
    bk.set_defaults(func=_one_line(cmd_backup))

    rs = sub.add_parser("restore", help="put a backup in place of the database",
                        description="Replace the database with a backup. Refused while a "
                        "server holds the file: stop it first. The replaced file is kept "
                        "beside it (NAME.before-restore-TIME), with its write-ahead log and "
                        "its OTLP inbox's journal.")
    db_arg(rs)
    rs.add_argument("backup", metavar="FILE")
    rs.set_defaults(func=_one_line(cmd_restore))

    cp = sub.add_parser("compact", help="give deleted space back to the disk",
                        description="Copy the live data into a fresh file and swap it in "
                        "(a running server does it between two writes).")
    target_args(cp)
    cp.add_argument("--json", action="store_true", help="print JSON")
    cp.set_defaults(func=_one_line(cmd_compact))

    pl = sub.add_parser("plugins", help="the plugins installed, loaded or not",
                        description="Every plugin found in the entry-point groups "
                        "(report formats, agent backends, alert actions, webhook formats, "
                        "export targets, dashboard tabs), and why one was skipped.")
    pl.add_argument("--json", action="store_true", help="print JSON")
    pl.set_defaults(func=_one_line(cmd_plugins))

    st = sub.add_parser("storage", help="the file against its live data, policies, backups",
                        description="The database file's size against its live data, its "
                        "write-ahead log, its OTLP inbox's journal (requests answered and not "
                        "yet written as rows), the disk's free space, the retention policies "
                        "and the backups.")
    target_args(st)
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=_one_line(cmd_storage))

    rt = sub.add_parser("retention", help="how long each kind of data is kept",
                        description="Retention policies: per kind and project (no --project: "
                        "the default for every project without its own). A running server "
                        "applies them every $OBSERVATORY_RETENTION_EVERY_S seconds.")
    rsub = rt.add_subparsers(dest="action", metavar="ACTION", required=True)
    rset = rsub.add_parser("set", help="set a policy", description="Set a policy.")
    target_args(rset)
    rset.add_argument("kind", choices=list(KINDS))
    rset.add_argument("--project", default="", help="one project (default: the default)")
    rset.add_argument("--days", type=float, help="keep rows this many days")
    rset.add_argument("--keep-runs", type=int, help="tests, coverage: keep the newest N "
                      "runs/reports per project")
    rset.add_argument("--archive", action="store_true",
                      help="write the rows to Parquet (archive/ beside the file) first")
    rdel = rsub.add_parser("delete", help="remove a policy", description="Remove a policy.")
    target_args(rdel)
    rdel.add_argument("kind", choices=list(KINDS))
    rdel.add_argument("--project", default="")
    rrun = rsub.add_parser("run", help="apply the policies now",
                           description="Apply the policies now.")
    target_args(rrun)
    for p in (rset, rdel, rrun):
        p.add_argument("--json", action="store_true", help="print JSON")
    rset.set_defaults(func=_one_line(cmd_retention))
    rdel.set_defaults(func=_one_line(cmd_retention))
    rrun.set_defaults(func=_one_line(cmd_retention))


def _one_line(command):
    """``command`` with what the disk, DuckDB or the network refused said on one line
    (naming the command and the reason), never a traceback."""
    import functools

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        import duckdb
        import httpx

        try:
            return command(args)
        except (duckdb.Error, OSError, httpx.HTTPError) as err:
            name = command.__name__.removeprefix("cmd_").replace("_", " ")
            reason = " ".join(str(err).split())[:300] or type(err).__name__
            if isinstance(err, httpx.HTTPError) and "CERTIFICATE_VERIFY_FAILED" in reason:
                reason += (" (a private CA: point SSL_CERT_FILE at its certificate)")
            return _fail(name, reason)

    return run


# -- where ------------------------------------------------------------------------------

def _where(args: argparse.Namespace) -> tuple[Path, str | None]:
    from .intake import resolve

    return resolve(getattr(args, "db", None), getattr(args, "url", None))


def _api(url: str, method: str, path: str, **kw) -> dict[str, Any]:
    from .http import http_client

    with http_client(url, timeout=3600) as c:
        r = c.request(method, path, **kw)
    try:
        body = r.json()
    except ValueError:
        body = {"ok": False, "error": r.text[:300]}
    if r.status_code >= 400:
        raise RuntimeError(f"{url}{path}: HTTP {r.status_code}: {body.get('error')}")
    return body


def _local(path: Path):
    from .store import Store

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such database")
    return Store(path)


def _fail(command: str, err: BaseException) -> int:
    print(f"observatory {command}: {err}", file=sys.stderr)
    return 2


def _bar(quiet: bool = False):
    """A progress bar on stderr when a person watches (none in pipes and tests)."""
    from contextlib import nullcontext

    if quiet or not sys.stderr.isatty():
        return nullcontext(lambda *a: None)
    from rich.progress import Progress

    class _Bar:
        def __enter__(self):
            self.p = Progress(transient=True)
            self.p.start()
            self.task = self.p.add_task("exporting", total=None)
            return lambda name, rows=0, done=0: self.p.update(
                self.task, description=f"{name}: {rows:,} rows", completed=done)

        def __exit__(self, *exc):
            self.p.stop()

    return _Bar()


# -- commands ---------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from .store import otlp_out
    from .store.export import ExportError, export
    from .store.kinds import Filter, parse_time

    try:
        flt = Filter(args.project, parse_time(args.since, "--since"),
                     parse_time(args.until, "--until"))
        path, url = _where(args)
        otlp = args.otlp_file or args.otlp_endpoint
        if args.target:
            return _export_target(args, path, url, flt)
        if not otlp and not args.dest:
            raise ValueError("name a FOLDER to export into (or --otlp-file/--otlp-endpoint)")
        if url:
            return _export_remote(args, url, flt)
        store = _local(path)
        try:
            with _bar() as tick:
                if args.otlp_file:
                    n = otlp_out.write(store, args.otlp_file, flt, lambda t: tick("spans", t))
                    print(f"{args.otlp_file}: {n} spans as OTLP/JSON")
                elif args.otlp_endpoint:
                    headers = dict(h.split("=", 1) for h in args.otlp_header)
                    n = otlp_out.send(store, args.otlp_endpoint, flt, headers,
                                      lambda t: tick("spans", t))
                    print(f"{args.otlp_endpoint}: {n} spans sent")
                else:
                    m = export(store, args.dest, args.kind, args.format, flt, args.partition,
                               tick)
                    _said(args.dest, m["tables"])
        finally:
            store.close()
    except (ExportError, ValueError, RuntimeError, FileNotFoundError, OSError) as err:
        return _fail("export", err)
    return 0


def _export_target(args: argparse.Namespace, path: Path, url: str | None, flt) -> int:
    """``--target NAME=DEST``: a plugin's export target gets the file and the filter."""
    from . import plugins

    name, _, dest = args.target.partition("=")
    targets = plugins.working("happy_observatory.export_targets")
    if name not in targets:
        raise ValueError(f"--target: no export target {name!r} (installed: "
                         f"{', '.join(targets) or 'none'})")
    if url:
        raise ValueError(f"--target: a plugin reads the file itself; {path} is held by the "
                         f"server at {url}")
    store = _local(path)
    try:
        print(targets[name](store, flt, dest))
    finally:
        store.close()
    return 0


def _said(dest: str, tables: dict[str, Any]) -> None:
    from .store.export import directory_size

    rows = sum(t["rows"] for t in tables.values())
    print(f"{dest}: {len(tables)} tables, {rows:,} rows, "
          f"{directory_size(Path(dest)) / 2**20:.1f} MiB")


def _export_remote(args: argparse.Namespace, url: str, flt) -> int:
    """Export through the server holding the file: a table per request, streamed to disk;
    the manifest counts what arrived."""
    import duckdb

    from .http import http_client
    from .store.export import FORMATS, MANIFEST, ExportError
    from .store.kinds import KINDS, kinds_of

    params = {k: v for k, v in (("project", flt.project),
                                ("since", flt.since and flt.since.isoformat()),
                                ("until", flt.until and flt.until.isoformat())) if v}
    if args.partition:
        raise ExportError("--partition: only when the file is opened directly (stop the "
                          "server, or export without it)")
    if args.otlp_endpoint:
        raise ExportError("--otlp-endpoint: only when the file is opened directly; with a "
                          "server, --otlp-file and send that file")
    if args.otlp_file:
        targets = [("spans", "otlp", Path(args.otlp_file))]
    else:
        dest = Path(args.dest)
        if dest.exists() and any(dest.iterdir()):
            raise ExportError(f"{dest}: exists and is not an empty folder")
        dest.mkdir(parents=True, exist_ok=True)
        ext = FORMATS[args.format][0]
        targets = [(t.name, args.format, dest / f"{t.name}.{ext}")
                   for k in kinds_of(args.kind) for t in KINDS[k]]
    tables = {}
    with http_client(url, timeout=3600) as c:
        for table, fmt, out in targets:
            with c.stream("GET", f"/api/export/{table}", params={**params, "format": fmt}) as r:
                if r.status_code != 200:
                    r.read()
                    raise RuntimeError(f"{url}/api/export/{table}: HTTP {r.status_code}: "
                                       f"{r.json().get('error') if r.content else ''}")
                with open(out, "wb") as f:
                    for chunk in r.iter_bytes(1 << 20):
                        f.write(chunk)
            if fmt == "otlp":
                print(f"{out}: spans as OTLP/JSON")
                return 0
            reader = {"parquet": "read_parquet", "csv": "read_csv",
                      "jsonl": "read_json"}[fmt]
            con = duckdb.connect()
            try:
                rows = con.execute(f"SELECT count(*) FROM {reader}(?)", [str(out)]).fetchone()[0]
            except duckdb.Error:
                rows = 0  # (an empty CSV or JSON file has no columns to read)
            finally:
                con.close()
            tables[table] = {"rows": int(rows), "files": [out.name], "partitioned": False}
    manifest = {"format": args.format, "schema_version": _api(url, "GET", "/api/health")[
                    "schema"], "source": url,
                "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "kinds": kinds_of(args.kind), "tables": tables,
                "filter": {k: params.get(k) for k in ("project", "since", "until")}}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _said(args.dest, tables)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .store import Store
    from .store.export import ExportError, import_export

    path = config.db_path(args.db)
    from .discovery import find_server
    if find_server(path):
        return _fail("import", f"{path} is held by a running server: import into a new file "
                     "(--db NEW.duckdb)")
    try:
        with Store(path) as store, _bar() as tick:
            counts = import_export(store, args.src, tick)
    except ExportError as err:
        return _fail("import", err)
    print(f"{path}: stored {sum(counts.values()):,} rows in {len(counts)} tables from "
          f"{args.src}")
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from .store.clickhouse.connect import is_clickhouse_url, parse
    from .store.upkeep import UpkeepError

    if not is_clickhouse_url(args.target):
        return _fail("copy", f"--to {args.target!r} is not a ClickHouse URL "
                     "(clickhouse://… or chdb:///folder)")
    source = Path(args.source).expanduser().resolve()
    control = (Path(args.control).expanduser().resolve() if args.control
               else config.db_path(args.target))
    from .discovery import find_server
    if source.is_file() and find_server(source):
        return _fail("copy", f"{source} is served by a running workbench: stop it first")
    from .store.clickhouse.copy import copy

    shown = parse(args.target).shown
    try:
        with _bar() as tick:
            done = copy(source, args.target, control, tick)
    except (UpkeepError, ValueError, RuntimeError) as err:
        return _fail("copy", err)
    except Exception as err:  # noqa: BLE001  (what ClickHouse refused, on one line)
        if not type(err).__module__.startswith(("clickhouse_connect", "chdb")):
            raise
        return _fail("copy", f"{shown}: {' '.join(str(err).split())[:300]}")
    rows = ", ".join(f"{n:,} {label}" for label, n in done["tables"].items() if n)
    print(f"{shown}: copied {rows or 'no telemetry'} from {source} in {done['seconds']} s; "
          f"this node's control file (tests, coverage, projects, agents): {control}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from .store import upkeep

    path, url = _where(args)
    try:
        if url:
            if args.to:
                raise ValueError("--to: a server backs up into its own folder "
                                 "($OBSERVATORY_BACKUP_DIR); run without --to")
            body = {"keep": args.keep} if args.keep else {}
            result = _api(url, "POST", "/api/store/backup", json=body)
        else:
            store = _local(path)
            folder = upkeep.backup_folder(store, args.to
                                          or config.get("OBSERVATORY_BACKUP_DIR"))
            try:
                result = upkeep.backup(store, folder, args.keep or
                                       config.get("OBSERVATORY_BACKUP_KEEP")).as_dict()
            finally:
                store.close()
    except (upkeep.UpkeepError, ValueError, RuntimeError, FileNotFoundError) as err:
        return _fail("backup", err)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['path']}: {result['rows']:,} rows, {result['bytes'] / 2**20:.1f} MiB "
              f"in {result['seconds']:.1f} s (verified)"
              + (f"; removed {len(result['removed'])} older" if result["removed"] else ""))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from .store import upkeep

    try:
        done = upkeep.restore(args.backup, config.db_path(args.db))
    except upkeep.UpkeepError as err:
        return _fail("restore", err)
    print(f"{done['restored']}: restored from {done['from']} ({done['rows']:,} rows)"
          + (f"; the previous file is {done['previous']}" if done["previous"] else ""))
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from .store import upkeep

    path, url = _where(args)
    try:
        if url:
            result = _api(url, "POST", "/api/store/compact", json={})
        else:
            store = _local(path)
            try:
                result = upkeep.compact(store)
            finally:
                store.close()
    except (upkeep.UpkeepError, RuntimeError, FileNotFoundError) as err:
        return _fail("compact", err)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['path']}: {result['before_bytes'] / 2**20:.1f} MiB → "
              f"{result['after_bytes'] / 2**20:.1f} MiB in {result['seconds']:.1f} s")
    return 0


def cmd_storage(args: argparse.Namespace) -> int:
    from .store import upkeep

    path, url = _where(args)
    try:
        if url:
            state = _api(url, "GET", "/api/store")
        else:
            store = _local(path)
            try:
                state = upkeep.state(store, upkeep.backup_folder(
                    store, config.get("OBSERVATORY_BACKUP_DIR")))
            finally:
                store.close()
    except (RuntimeError, FileNotFoundError) as err:
        return _fail("storage", err)
    if args.json:
        print(json.dumps(state))
        return 0
    f = state["file"]
    mib = 2**20
    print(f"{f['path']}: {f['file_bytes'] / mib:.1f} MiB on disk, "
          f"{f['live_bytes'] / mib:.1f} MiB in use ({f['bloat']:.2f}×), "
          f"{f['free_bytes'] / mib:.1f} MiB free inside; log {f['wal_bytes'] / mib:.1f} MiB; "
          f"OTLP inbox {f['inbox_bytes'] / mib:.1f} MiB; disk {f['disk_free_percent']}% free")
    for p in state["policies"]:
        what = ", ".join(x for x in (
            f"{p['days']:g} days" if p["days"] is not None else "",
            f"newest {p['keep_runs']} runs" if p["keep_runs"] is not None else "",
            "archived" if p["archive"] else "") if x)
        print(f"  keep {p['kind']} of {p['project'] or 'every project'}: {what}")
    if not state["policies"]:
        print("  no retention policies: everything is kept")
    files = state["backups"]["files"]
    print(f"  {len(files)} backups in {state['backups']['folder']}"
          + (f", newest {files[0]['name']}" if files else ""))
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from .store import retention

    path, url = _where(args)
    try:
        if args.action == "set":
            body = {"kind": args.kind, "project": args.project, "days": args.days,
                    "keep_runs": args.keep_runs, "archive": args.archive}
            if url:
                result = _api(url, "PUT", "/api/store/retention", json=body)["policy"]
            else:
                policy = retention.check_policy(body)
                store = _local(path)
                try:
                    result = retention.put_policy(store, policy, "cli").as_dict()
                finally:
                    store.close()
        elif args.action == "delete":
            if url:
                _api(url, "DELETE", f"/api/store/retention/{args.kind}",
                     params={"project": args.project})
            else:
                store = _local(path)
                try:
                    if not retention.delete_policy(store, args.kind, args.project):
                        raise ValueError(f"no policy for {args.kind} of "
                                         f"{args.project or 'the default'}")
                finally:
                    store.close()
            result = {"deleted": args.kind, "project": args.project}
        else:
            if url:
                result = _api(url, "POST", "/api/store/retention/run", json={})
            else:
                store = _local(path)
                try:
                    result = retention.apply(store).as_dict()
                finally:
                    store.close()
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        return _fail(f"retention {args.action}", err)
    print(json.dumps(result) if args.json or args.action != "run" else
          f"deleted {sum(result['deleted'].values()):,} rows "
          f"({', '.join(f'{t} {n:,}' for t, n in result['deleted'].items() if n) or 'none'}) "
          f"in {result['chunks']} chunks, {result['seconds']:.1f} s")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from . import plugins

    found = plugins.report()
    broken = 1 if any(not p["loaded"] for p in found) else 0
    if args.json:
        print(json.dumps(found))
        return broken
    if not found:
        print("no plugins installed (see docs: Plugins)")
    for p in found:
        state = "ok" if p["loaded"] else f"SKIPPED: {p['error']}"
        print(f"{p['kind']:<16} {p['name']:<20} {p['package'] or '-':<24} {state}")
    return broken
