"""The ``observatory`` command line."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from . import __version__, config

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help=f"DuckDB file (default: $OBSERVATORY_DB or {config.DEFAULT_DB})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="observatory",
        description="Happy Observatory: test and agent analytics workbench.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser(
        "serve",
        help="serve the dashboards and the HTTP API",
        description="Start `panel serve` on the dashboards with the API "
        "plugin. An empty database is filled with the demo dataset first.",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=config.DEFAULT_PORT,
        help=f"HTTP port (default: {config.DEFAULT_PORT})",
    )
    serve.add_argument(
        "--address", default="localhost", help="address to bind (default: localhost)"
    )
    _db_arg(serve)
    serve.add_argument(
        "--no-demo", action="store_true", help="do not fill an empty database with the demo dataset"
    )
    serve.add_argument(
        "--allow-websocket-origin",
        action="append",
        metavar="HOST[:PORT]",
        help="extra origins allowed to open the dashboards (repeatable)",
    )
    serve.add_argument("--otlp-port", type=int, metavar="PORT",
                       help="also receive OTLP/HTTP on this port (4318 is the standard one "
                       "agents default to); /v1/* is always served on --port too")
    serve.add_argument("--basic-auth", metavar="PASSWORD|USERS.json",
                       help="require a login for the dashboards: one password, or a JSON file "
                       "of user: password (also $OBSERVATORY_BASIC_AUTH); the API then also "
                       "accepts the login cookie")
    serve.add_argument("--show", action="store_true", help="open a browser")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser(
        "demo",
        help="fill a database with the demo dataset",
        description="Store the deterministic demo dataset (several projects, "
        "200+ runs over six weeks, plus real sample reports).",
    )
    _db_arg(demo)
    demo.set_defaults(func=cmd_demo)

    ingest = sub.add_parser("ingest", help="store reports", description="Store reports.")
    isub = ingest.add_subparsers(dest="kind", metavar="KIND", required=True)
    tests = isub.add_parser(
        "tests",
        help="test results (JUnit, NUnit, xUnit.net, TRX, CTRF, pytest reportlog)",
        description="Store test reports. PATH may be a file, a directory (searched "
        "recursively for .xml/.json/.jsonl/.log/.trx) or a glob. Project, commit, branch "
        "and build come from these flags, else from CI environment variables (GitHub "
        "Actions, GitLab CI, Jenkins, CircleCI, Buildkite), else from the report. A file "
        "stored before is not stored again. Exit status 1 if any file was rejected.",
    )
    tests.add_argument(
        "paths", nargs="+", metavar="PATH", help="report files, directories or globs"
    )
    tests.add_argument("--project", help="project name")
    tests.add_argument("--commit", help="commit SHA")
    tests.add_argument("--branch", help="branch name")
    tests.add_argument("--build", help="CI build number or id")
    tests.add_argument("--variant", help="run variant, e.g. linux-py3.12 (kept as a dimension)")
    tests.add_argument(
        "--report-tz",
        metavar="ZONE",
        help="zone of report timestamps written without one, e.g. Europe/Berlin "
        "(default: $OBSERVATORY_REPORT_TZ, else UTC)",
    )
    tests.add_argument(
        "--format",
        choices=["junit", "nunit", "xunit", "trx", "ctrf", "reportlog"],
        help="force a format instead of detecting it",
    )
    _db_arg(tests)
    tests.add_argument(
        "--url",
        help="send to a running workbench instead of opening the file "
        "(e.g. http://localhost:5006; token from $OBSERVATORY_TOKEN)",
    )
    tests.add_argument("--json", action="store_true", help="print one JSON object per input file")
    tests.set_defaults(func=cmd_ingest_tests)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    env["OBSERVATORY_DB"] = str(config.db_path(args.db).resolve())
    if args.no_demo:
        env["OBSERVATORY_NO_DEMO"] = "1"
    basic_auth = args.basic_auth or os.environ.get("OBSERVATORY_BASIC_AUTH")
    if basic_auth:
        # Through Panel's environment variables, so the password is not on the command line.
        env["PANEL_BASIC_AUTH"] = basic_auth
        env["PANEL_COOKIE_SECRET"] = os.environ.get("OBSERVATORY_COOKIE_SECRET") or (
            secrets.token_urlsafe(32))
    if args.otlp_port:
        env["OBSERVATORY_OTLP_PORT"] = str(args.otlp_port)
        env["OBSERVATORY_OTLP_ADDRESS"] = args.address
    dashboards = sorted(str(p) for p in DASHBOARDS.glob("*.py"))
    if not dashboards:
        print(f"observatory serve: no dashboards found in {DASHBOARDS}", file=sys.stderr)
        return 2
    origins = [
        f"{args.address}:{args.port}",
        f"localhost:{args.port}",
        f"127.0.0.1:{args.port}",
        *(args.allow_websocket_origin or []),
    ]
    argv = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        *dashboards,
        "--plugins",
        "workbench.server.plugin",
        "--port",
        str(args.port),
        "--address",
        args.address,
        "--index",
        "tests",
    ]
    for origin in dict.fromkeys(origins):
        argv += ["--allow-websocket-origin", origin]
    if args.show:
        argv.append("--show")
    print(
        f"observatory: serving {env['OBSERVATORY_DB']} at http://{args.address}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    os.execve(sys.executable, argv, env)
    return 0  # not reached


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from .demo import load_demo
    from .store import Store

    path = config.db_path(args.db)
    with Store(path) as store, Progress(transient=True) as bar:
        task = bar.add_task("demo runs", total=None)
        n = load_demo(store, progress=lambda i, total: bar.update(task, completed=i, total=total))
    print(f"{path}: stored {n} demo runs" + (" (already present)" if n == 0 else ""))
    return 0


def cmd_ingest_tests(args: argparse.Namespace) -> int:
    from .ingest import expand

    try:
        tz = config.report_tz(args.report_tz)
    except ValueError as err:
        print(f"observatory ingest tests: {err}", file=sys.stderr)
        return 2
    flags = {
        "project": args.project,
        "commit": args.commit,
        "branch": args.branch,
        "build": args.build,
        "variant": args.variant,
        "report_tz": tz,
    }
    files = expand(args.paths)
    sink = _HttpSink(args.url) if args.url else _StoreSink(config.db_path(args.db))
    bad = 0
    pending: deque = deque()

    def settle(block: bool) -> None:
        nonlocal bad
        # Print in input order, as soon as each file's write has committed.
        if block:
            sink.flush()
        while pending and (block or pending[0].done()):
            result = pending.popleft().result()
            bad += not result["ok"]
            _report(result, args.json)
            advance()

    with sink, _progress(len(files), quiet=args.json) as advance:
        for path in files:
            pending.append(sink.ingest(path, flags, args.format))
            settle(block=len(pending) > 256)
        settle(block=True)
    return 1 if bad else 0


class _StoreSink:
    """Parses each file and writes them in chunks: one transaction per chunk of runs."""

    CHUNK_RUNS = 128
    CHUNK_ROWS = 200_000

    def __init__(self, db: Path):
        from .store import Store

        self.store = Store(db)
        self.chunk: list[tuple] = []  # (run, meta, summary, future)
        self.rows = 0

    def ingest(self, path: Path, flags: dict, fmt: str | None) -> Future:
        """Parse now; the write is queued, so the next file parses while earlier ones commit."""
        from .ingest import IngestError, parse_file
        from .ingest.ci_env import run_metadata

        try:
            run = parse_file(path, fmt)
        except IngestError as err:
            return _done({"path": str(path), "ok": False, "error": str(err)})
        summary = {"path": str(path), "ok": True, **run.counts(), "warnings": run.warnings}
        out: Future = Future()
        self.chunk.append((run, run_metadata(run.meta, flags), summary, out))
        self.rows += run.attempt_count
        if len(self.chunk) >= self.CHUNK_RUNS or self.rows >= self.CHUNK_ROWS:
            self.flush()
        return out

    def flush(self) -> None:
        from .store.writes import submit_runs

        if not self.chunk:
            return
        chunk, self.chunk, self.rows = self.chunk, [], 0
        ids, written = submit_runs(self.store, [(run, meta) for run, meta, _, _ in chunk])

        def settle(f: Future) -> None:
            err = f.exception()
            for i, (_, _, summary, out) in enumerate(chunk):
                out.set_result(
                    {**summary, "run_id": ids[i], "duplicate": not f.result()[i]}
                    if err is None
                    else {
                        "path": summary["path"],
                        "ok": False,
                        "error": f"{summary['path']}: not stored: {err}",
                    }
                )

        written.add_done_callback(settle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.flush()
        self.store.close()


class _HttpSink:
    def __init__(self, url: str):
        from .client import http_client

        self.http = http_client(url, timeout=300)

    def flush(self) -> None:
        pass  # each upload completes before the next starts

    def ingest(self, path: Path, flags: dict, fmt: str | None) -> Future:
        import httpx

        from .ingest.ci_env import detect

        params = {k: v for k, v in {**detect(), **flags}.items() if v and k != "ci_provider"}
        params["filename"] = str(path)
        if fmt:
            params["format"] = fmt
        try:
            data = path.read_bytes()
            resp = self.http.post("/api/tests/reports", params=params, content=data)
            body = resp.json()
        except OSError as err:
            return _done(
                {"path": str(path), "ok": False, "error": f"{path}: cannot read: {err.strerror}"}
            )
        except (httpx.HTTPError, ValueError) as err:
            return _done(
                {"path": str(path), "ok": False, "error": f"{path}: {self.http.base_url}: {err}"}
            )
        body["path"] = str(path)
        return _done(body)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.http.close()


def _done(result: dict) -> Future:
    fut: Future = Future()
    fut.set_result(result)
    return fut


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result), flush=True)
        return
    if not result["ok"]:
        print(f"error: {result['error']}", file=sys.stderr)
        return
    dup = " (already stored)" if result.get("duplicate") else ""
    print(
        f"{result['path']}: run {result['run_id']}{dup}: {result['tests']} tests, "
        f"{result['passed']} passed, {result['failed']} failed, {result['errors']} errors, "
        f"{result['skipped']} skipped"
    )
    for w in result.get("warnings") or []:
        print(f"warning: {result['path']}: {w}", file=sys.stderr)


class _progress:
    """A progress bar on stderr for long batches when a person is watching."""

    def __init__(self, total: int, quiet: bool):
        self.enabled = total > 20 and sys.stderr.isatty() and not quiet
        self.total = total

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.start()
        task = self.bar.add_task("ingesting", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``observatory``."""
    args = build_parser().parse_args(argv)
    from .store import StoreLockedError

    try:
        return args.func(args)
    except StoreLockedError as err:
        print(f"observatory: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
