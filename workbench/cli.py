"""The ``observatory`` command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from collections import deque
from pathlib import Path

from . import __version__, config

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"
TEMPLATES = Path(__file__).resolve().parent / "server" / "templates"
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH|URL",
        help="DuckDB file (default: $OBSERVATORY_DB, else observatory.duckdb in "
        f"$OBSERVATORY_HOME, here {config.home()}), or a ClickHouse store: "
        "clickhouse://user:pass@host:8123/db or chdb:///folder",
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
    serve.add_argument("--allow-host", action="append", metavar="NAME",
                       help="a host name the workbench (pages, API, OTLP) answers besides "
                       "loopback names (repeatable; "
                       "also $OBSERVATORY_ALLOWED_HOSTS); requests naming another Host get 421, "
                       "which stops DNS rebinding")
    serve.add_argument("--otlp-port", type=int, metavar="PORT",
                       help="also receive OTLP/HTTP on this port (4318 is the standard one "
                       "agents default to); /v1/* is always served on --port too")
    serve.add_argument("--otlp-grpc-port", type=int, metavar="PORT",
                       help="also receive OTLP over gRPC on this port (4317 is the standard "
                       "one; same tokens, roles, limits and TLS as OTLP/HTTP)")
    serve.add_argument("--basic-auth", metavar="PASSWORD|USERS.json",
                       help="require a login for the dashboards: one password, or a JSON file "
                       "of user: password (also $OBSERVATORY_BASIC_AUTH); the API then also "
                       "accepts the login cookie. With $OBSERVATORY_TOKENS and no "
                       "--basic-auth, the login takes a token as the password")
    serve.add_argument("--certfile", metavar="PEM",
                       help="speak HTTPS/TLS on every listener (pages, API, websockets, OTLP) "
                       "with this certificate chain (also $OBSERVATORY_TLS_CERTFILE); plain "
                       "HTTP is refused, and browsers are told to stay on HTTPS (HSTS)")
    serve.add_argument("--keyfile", metavar="PEM",
                       help="the certificate's private key (also $OBSERVATORY_TLS_KEYFILE)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow listening on a non-loopback address with no authentication")
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
        choices=ingest_formats(),
        help="force a format instead of detecting it",
    )
    _target_args(tests)
    tests.add_argument("--json", action="store_true", help="print one JSON object per input file")
    tests.set_defaults(func=cmd_ingest_tests)

    cov = isub.add_parser(
        "coverage",
        help="coverage reports (coverage.py data or JSON, Cobertura, LCOV, JaCoCo)",
        description="Store coverage reports: coverage.py's .coverage data file (read with "
        "coverage.py where the sources are; per-test contexts kept), `coverage json`, "
        "Cobertura XML, LCOV, JaCoCo XML. Paths are made relative to --root (default: the "
        "git work tree holding the report, else its folder). Exit status 1 if any file was "
        "rejected.")
    cov.add_argument("paths", nargs="+", metavar="PATH", help="coverage files")
    cov.add_argument("--project", required=True, help="project name")
    cov.add_argument("--commit", help="commit SHA the report was made at (default: CI's "
                     "variables, else the commit checked out where the report is)")
    cov.add_argument("--branch", help="branch name (default: CI's, else the checked-out one)")
    cov.add_argument("--root", action="append", metavar="DIR",
                     help="a folder the report's paths are relative to (repeatable)")
    cov.add_argument("--format", choices=["coveragepy", "coveragepy-json", "cobertura", "lcov",
                                          "jacoco"], help="force a format instead of detecting it")
    _target_args(cov)
    cov.add_argument("--json", action="store_true", help="print one JSON object per input file")
    cov.set_defaults(func=cmd_ingest_coverage)

    coverage = sub.add_parser("coverage", help="ask stored coverage",
                              description="Questions about stored coverage reports.")
    csub = coverage.add_subparsers(dest="action", metavar="ACTION", required=True)
    who = csub.add_parser(
        "who", help="the tests that ran a line",
        description="The tests that ran FILE:LINE in the project's latest coverage report "
        "with per-test contexts (pytest node ids for pytest), one a line or --json a list.")
    who.add_argument("where", metavar="FILE:LINE")
    who.add_argument("--project", required=True, help="project name")
    who.add_argument("--commit", help="the report of this commit instead of the latest")
    _target_args(who)
    who.add_argument("--json", action="store_true", help="print a JSON list of test ids")
    who.set_defaults(func=cmd_coverage_who)
    patch = csub.add_parser(
        "patch", help="patch coverage of a git diff",
        description="Of the lines a change added or modified (git diff BASE..HEAD, or BASE "
        "against the working tree), the statements and whether the tests ran them, per file, "
        "against the project's latest coverage report (or the report of --commit).")
    patch.add_argument("--project", required=True, help="project name")
    patch.add_argument("--base", required=True, metavar="REV", help="the revision before")
    patch.add_argument("--head", metavar="REV", help="the revision after (default: the "
                       "working tree)")
    patch.add_argument("--repo", default=".", metavar="DIR",
                       help="the repository (default: the current folder)")
    patch.add_argument("--commit", help="use the coverage report of this commit")
    _target_args(patch)
    patch.add_argument("--json", action="store_true", help="print the result as JSON")
    patch.set_defaults(func=cmd_coverage_patch)

    sel = sub.add_parser(
        "select", help="which tests to run for a change, best first",
        description="Rank the project's tests for the change BASE..HEAD (or BASE against the "
        "working tree): new or changed tests and tests that failed in the last run first, "
        "then by estimated probability of failing per second — from per-test coverage of "
        "the changed lines, failure history and recency, files that changed with a test's "
        "past failures, and flakiness (a known-flaky test's failures count for less). Each "
        "test comes with its reasons; the table marks the tests that always go first with * "
        "(each group by score) and says so below it. With --evaluate, replay the selector "
        "over the project's stored history and compare it with random order, slowest-last "
        "and last-failed-first (APFD and catch rates as percentages). A value that is not "
        "there reads - in the table, null in JSON.")
    sel.add_argument("--project", required=True, help="project name")
    sel.add_argument("--base", metavar="REV", help="the revision before the change")
    sel.add_argument("--head", metavar="REV", help="the revision after (default: the "
                     "working tree)")
    sel.add_argument("--working-tree", action="store_true",
                     help="compare BASE with the working tree (the default without --head)")
    sel.add_argument("--budget", type=float, metavar="SECONDS",
                     help="only as many tests as fit in this many seconds of run time")
    sel.add_argument("--top", type=int, metavar="N", help="only the first N tests")
    sel.add_argument("--format", choices=("table", "json", "pytest"), default="table",
                     help="table (default), json (a list, best first), or pytest node ids "
                     "to paste: pytest $(observatory select ... --format pytest)")
    sel.add_argument("--repo", metavar="DIR",
                     help="the project's repository (default: the folder a scan found for "
                     "the project, else the current folder)")
    sel.add_argument("--evaluate", action="store_true",
                     help="replay the selector over the stored history and print how early "
                     "it would have caught each run's failures, against the baselines")
    _target_args(sel)
    sel.set_defaults(func=cmd_select)

    rt = sub.add_parser(
        "run-tests", help="run a project's tests from the workbench",
        description="Ask the running workbench to run a project's tests in the folder a "
        "scan found for it: pytest with the given node ids (or the selector's choice with "
        "--select, or the whole suite), each result streamed into the store as it ends; or "
        "another runner's --command whose --junit file is ingested when it ends. Runs of a "
        "project wait in its queue; starting one needs the operator role and is audited. "
        "Waits and prints progress (Ctrl-C cancels the run) unless --no-wait.")
    rt.add_argument("tests", nargs="*", metavar="NODE_ID", help="pytest node ids to run")
    rt.add_argument("--project", required=True, help="project name")
    rt.add_argument("--select", action="store_true",
                    help="run what `observatory select` would choose (with --base, --head, "
                    "--top, --budget)")
    rt.add_argument("--base", metavar="REV", help="with --select: the revision before")
    rt.add_argument("--head", metavar="REV", help="with --select: the revision after "
                    "(default: the working tree)")
    rt.add_argument("--top", type=int, metavar="N", help="with --select: the first N tests")
    rt.add_argument("--budget", type=float, metavar="SECONDS",
                    help="with --select: as many tests as fit in this run time")
    rt.add_argument("--command", metavar="CMD",
                    help="another runner's command line (instead of pytest)")
    rt.add_argument("--junit", metavar="PATH",
                    help="with --command: the JUnit XML file it writes (relative to the "
                    "project's folder)")
    rt.add_argument("--no-wait", action="store_true", help="print the queued run and return")
    rt.add_argument("--url", help="the running workbench (default: $OBSERVATORY_URL, else "
                    "the server holding the database; token from $OBSERVATORY_TOKEN)")
    _db_arg(rt)
    rt.set_defaults(func=cmd_run_tests)

    runs = sub.add_parser("runs", help="list or delete stored test runs",
                          description="List stored test runs, or delete one stored by mistake.")
    rsub = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    rlist = rsub.add_parser("list", help="the newest runs", description="The newest runs: "
                            "id, time, project, branch, status, counts, source. A value "
                            "that is not there (a run with no branch) reads - in the "
                            "table, null in JSON.")
    rlist.add_argument("--project", help="only this project")
    rlist.add_argument("--limit", type=int, default=20, help="how many (default: 20)")
    _target_args(rlist)
    rlist.add_argument("--json", action="store_true", help="print one JSON object per run")
    rlist.set_defaults(func=cmd_runs_list)
    rdel = rsub.add_parser("delete", help="delete runs and their results",
                           description="Delete runs and all their results.")
    rdel.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    _target_args(rdel)
    rdel.set_defaults(func=cmd_runs_delete)
    projects = sub.add_parser("projects", help="the projects on this machine",
                              description="Find the projects (git repositories) on this "
                              "machine and keep them in the workbench.")
    psub = projects.add_subparsers(dest="action", metavar="ACTION", required=True)
    pscan = psub.add_parser(
        "scan", help="find git repositories under folders",
        description="Find git repositories under ROOT folders (default: the current folder "
        "and ~/src, ~/code, ~/projects, ~/work where they exist), recognise their kind "
        "(pyproject.toml, package.json, Cargo.toml, go.mod, pom.xml, build.gradle, …), and "
        "store them. Never follows symbolic links; skips dependencies, virtual "
        "environments and build outputs. Through the running workbench when there is one.")
    pscan.add_argument("roots", nargs="*", metavar="ROOT", help="folders to search")
    pscan.add_argument("--name", help="the name of the one project the scan finds "
                       "(default: its folder's name, or the name its runs go by)")
    _target_args(pscan)
    pscan.add_argument("--json", action="store_true",
                       help="print one JSON object per project (path, name, kind, kinds, …)")
    pscan.set_defaults(func=cmd_projects_scan)
    plist = psub.add_parser(
        "list", help="the projects' folders and the names they go by",
        description="The scanned projects, each under its one name, with how it got it "
        "(given by a person, or the name of runs that came from the folder: root, remote, "
        "commit; else the folder's) and the interpreter its test runs use when one is set.")
    _target_args(plist)
    plist.add_argument("--json", action="store_true", help="print one JSON object each")
    plist.set_defaults(func=cmd_projects_list)
    plink = psub.add_parser(
        "link", help="name a project's folder",
        description="The project NAME's folder is PATH (a git repository): stored as a "
        "scan would, under that name, which rescans keep. A name names one folder. Through "
        "the running workbench when there is one (operators; audited).")
    plink.add_argument("name", metavar="NAME")
    plink.add_argument("path", metavar="PATH")
    _target_args(plink)
    plink.set_defaults(func=cmd_projects_change)
    pren = psub.add_parser(
        "rename", help="give a project's folder another name",
        description="The folder that goes by NAME goes by NEW_NAME from now on (rescans "
        "keep it). Its runs keep the name they were stored with.")
    pren.add_argument("name", metavar="NAME")
    pren.add_argument("new_name", metavar="NEW_NAME")
    _target_args(pren)
    pren.set_defaults(func=cmd_projects_change)
    prem = psub.add_parser(
        "remove", help="forget a project's folder",
        description="Forget the folder that goes by NAME (its runs and coverage stay).")
    prem.add_argument("name", metavar="NAME")
    _target_args(prem)
    prem.set_defaults(func=cmd_projects_change)
    pset = psub.add_parser(
        "set", help="a project's settings: the interpreter of its test runs",
        description="Set the Python interpreter the project's test runs use "
        "(run-tests, the projects page). Without one: the project's .venv or venv, else "
        "the active virtualenv, else the workbench's own Python.")
    pset.add_argument("name", metavar="NAME")
    pset.add_argument("--python", required=True, metavar="PATH",
                      help="an absolute path to a Python interpreter ('' : find one again)")
    _target_args(pset)
    pset.set_defaults(func=cmd_projects_change)
    mcp = sub.add_parser(
        "mcp", help="serve the workbench's tools over MCP (stdio) for coding agents",
        description="An MCP server on stdin/stdout (the official mcp SDK): flaky_status, "
        "failures, covering_tests, project_health, recent_sessions — read from the database "
        "(or the workbench serving it). Point a coding agent at `observatory mcp`.")
    _target_args(mcp)
    mcp.set_defaults(func=cmd_mcp)
    tui = sub.add_parser(
        "tui", help="the terminal UI: fleet, approvals, tasks, alerts, test runs, consoles",
        description="A keyboard-first terminal UI (Textual) over a running workbench's API: "
        "the fleet with live states, the approvals inbox (a: allow, d: deny), tasks, alerts "
        "(k: acknowledge, r: resume), recent test runs with their failures, and attaching to "
        "a console. ? shows every key. Needs a running workbench (`observatory serve`): the "
        "agents live in its process.")
    _target_args(tui)
    tui.set_defaults(func=cmd_tui)
    _agents_parser(sub)
    _tasks_parser(sub)
    _alerts_parser(sub)
    from .workflows_cli import add_parser as workflows_parser

    workflows_parser(sub, _target_args, _control)
    from .store_cli import add_parsers as store_parsers

    store_parsers(sub, _target_args, _db_arg)
    from .tokens_cli import add_parser as tokens_parser

    tokens_parser(sub, _target_args)
    return parser


AGENT_ACTIONS = ("start", "stop", "pause", "resume", "restart", "interrupt")


def _agents_parser(sub) -> None:
    agents = sub.add_parser(
        "agents", help="control the agents of a running workbench",
        description="Define, start, stop, pause, resume, restart and steer the agents of a "
        "running workbench, and answer their permission requests (the server's control API; "
        "token from $OBSERVATORY_TOKEN, its role decides what is allowed).")
    asub = agents.add_subparsers(dest="action", metavar="ACTION", required=True)

    def command(name: str, help: str, func, *ids: str) -> argparse.ArgumentParser:
        p = asub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        for arg in ids:
            p.add_argument(arg, metavar=arg.upper())
        _target_args(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    command("list", "the agents, their state and pending approvals", cmd_agents_list)
    add = command("add", "define an agent", cmd_agents_add, "name")
    add.add_argument("--backend", default="process", help="process or claude-code "
                     "(default: process)")
    add.add_argument("--command", help="the command (process backend)")
    add.add_argument("--prompt", help="the first prompt (claude-code backend)")
    add.add_argument("--project", help="the project it works on")
    add.add_argument("--cwd", help="its working directory")
    add.add_argument("--label", action="append", default=[], dest="labels", metavar="LABEL",
                     help="a label: it takes queued tasks whose labels it all has "
                     "(repeatable; added to --spec's)")
    add.add_argument("--spec", help="further fields as JSON (env, limits, restart, policy, "
                     "config, labels)")
    add.add_argument("--start", action="store_true", help="start it at once")
    for action in AGENT_ACTIONS:
        command(action, f"{action} an agent (AGENT: its id or its name)", cmd_agents_act,
                "agent")
    msg = command("message", "send the next prompt to a running agent (its id or name)",
                  cmd_agents_message, "agent")
    msg.add_argument("text")
    command("approvals", "the permission requests waiting for an answer", cmd_agents_approvals)
    for decision in ("approve", "deny"):
        p = command(decision, f"{decision} a permission request", cmd_agents_decide,
                    "approval_id")
        p.add_argument("--message", default="", help="what the agent is told")
        if decision == "approve":
            p.add_argument("--session", action="store_true",
                           help="allow this tool for the rest of the session")


def _tasks_parser(sub) -> None:
    tasks = sub.add_parser(
        "tasks", help="queue work for the agents of a running workbench",
        description="Queue prompts and commands for agents (highest priority first, then "
        "oldest; an idle agent whose labels and project match takes each), list and cancel "
        "them (the server's control API; token from $OBSERVATORY_TOKEN).")
    tsub = tasks.add_subparsers(dest="action", metavar="ACTION", required=True)

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = tsub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        _target_args(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func, noun="tasks")
        return p

    add = command("add", "queue a task", cmd_tasks_add)
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", help="the prompt, for a coding agent (claude-code, codex)")
    what.add_argument("--command", dest="task_command", metavar="COMMAND",
                      help="the command, for a process agent")
    add.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    add.add_argument("--label", action="append", default=[], dest="labels", metavar="LABEL",
                     help="a label the agent must have (repeatable)")
    add.add_argument("--project", help="the project the agent must work on")
    add.add_argument("--deadline", help="ISO 8601 time after which a queued task expires")
    add.add_argument("--budget-cost", type=float, metavar="USD", help="USD the task may spend")
    add.add_argument("--budget-seconds", type=float, metavar="SECONDS",
                     help="seconds the task may run")
    lst = command("list", "the tasks, running and queued first", cmd_tasks_list)
    lst.add_argument("--state", choices=["queued", "running", "done", "failed", "cancelled",
                                         "expired"], help="only tasks in this state")
    for name, help in (("cancel", "cancel a queued or running task"),
                       ("retry", "queue a failed task again, telling it the failure")):
        command(name, help, cmd_tasks_act).add_argument("task_id", metavar="TASK_ID")


def _alerts_parser(sub) -> None:
    alerts = sub.add_parser(
        "alerts", help="the alerts of a running workbench",
        description="List the alerts its rules fired, acknowledge or resolve them, and "
        "resume or stop the agent an alert paused.")
    asub = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = asub.add_parser("list", help="open alerts (or --state)",
                          description="Open alerts, newest first (or --state).")
    lst.add_argument("--state", default="open",
                     choices=["open", "firing", "acknowledged", "resolved"])
    for p in (lst,):
        _target_args(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_alerts_list, noun="alerts")
    for name in ("ack", "resolve", "resume", "stop"):
        help = {"ack": "acknowledge an alert", "resolve": "resolve an alert",
                "resume": "resume the agent an alert paused (and acknowledge it)",
                "stop": "stop the alert's agent (and resolve it)"}[name]
        p = asub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        p.add_argument("alert_id", metavar="ALERT_ID")
        _target_args(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_alerts_act, noun="alerts")
    _rules_parser(asub)


#: An alert rule's fields as options (control.alerts.AlertRule; a test keeps them equal):
#: option, type or choices, whether it takes several values, help.
RULE_KINDS = ("state", "stale", "threshold", "loop", "test_loop", "stall", "test_health",
              "storage")
RULE_OPTIONS = {
    "kind": (RULE_KINDS, False, "what it watches (default: state)"),
    "agents": (str, False, "which agents, a glob over their names (default: *)"),
    "severity": (("info", "warning", "critical"), False, "default: warning"),
    "actions": (("notify", "pause", "stop"), True, "what it does when it fires (default: "
                "notify)"),
    "states": (("idle", "starting", "running", "waiting-for-approval", "paused", "stopping",
                "stopped", "completed", "error", "lost"), True,
               "state: the states that fire (default: error lost)"),
    "metric": (("cost_per_hour", "tokens_per_minute", "cpu_percent", "rss_mb",
                "tool_failure_rate", "wal_mb", "disk_free_percent", "file_bloat"), False,
               "threshold: what is measured over the window (default: cost_per_hour); "
               "storage: the database file's (wal_mb, disk_free_percent, file_bloat)"),
    "threshold": (float, False, "threshold: fires above this (default: 5)"),
    "window_s": (float, False, "threshold/loop/test_loop: the window, in seconds "
                 "(default: 600)"),
    "count": (int, False, "loop/test_loop: how many repeats; threshold: least samples "
              "(default: 5)"),
    "minutes": (float, False, "stale/stall: minutes without an event / progress "
                "(default: 10)"),
}


def _rule_options(p: argparse.ArgumentParser) -> None:
    for name, (kind, many, help) in RULE_OPTIONS.items():
        kw: dict = {"dest": f"rule_{name}", "help": help + (
            f"; {'some' if many else 'one'} of {', '.join(kind)}" if isinstance(kind, tuple)
            else "")}
        if isinstance(kind, tuple):
            kw.update(choices=kind, metavar=name.upper().rstrip("S") if many else name.upper())
        else:
            kw.update(type=kind, metavar=name.upper().replace("_S", ""))
        if many:
            kw["nargs"] = "+"
        p.add_argument("--" + name.replace("_", "-"), **kw)


def _rule_fields(args: argparse.Namespace) -> dict:
    return {name: getattr(args, f"rule_{name}") for name in RULE_OPTIONS
            if getattr(args, f"rule_{name}", None) is not None}


def _rules_parser(asub) -> None:
    rules = asub.add_parser(
        "rules", help="the alert rules: list, add, edit, enable, disable, delete, preview",
        description="The alert rules of a running workbench (see README, Alerts): list them; "
        "add, edit, enable, disable and delete one (admins); preview what a rule — saved, "
        "or given by options — would have fired on in the last day (anyone who reads).")
    rsub = rules.add_subparsers(dest="rule_action", metavar="ACTION", required=True)

    def command(name: str, help: str, *ids: str, options: bool = False):
        p = rsub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        for arg in ids:
            p.add_argument(arg, metavar=arg.upper(), **({"nargs": "?"} if name == "preview"
                                                         else {}))
        if options:
            _rule_options(p)
        _target_args(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_rules, noun="alerts")
        return p

    command("list", "the rules")
    add = command("add", "add a rule", "name", options=True)
    add.add_argument("--rule-id", help="its id (letters, digits, dashes; default: made up)")
    add.add_argument("--disabled", action="store_true", help="stored, not evaluated yet")
    edit = command("edit", "change a rule's fields (the others stay)", "rule_id",
                   options=True)
    edit.add_argument("--name", dest="rule_name", help="a new name")
    command("enable", "evaluate a rule again", "rule_id")
    command("disable", "stop evaluating a rule (kept)", "rule_id")
    command("delete", "delete a rule", "rule_id")
    command("preview", "what a rule would have fired on in the last day: RULE_ID's, changed "
            "by the options, or a new one's from the options alone", "rule_id", options=True)


def _devkit(args: argparse.Namespace):
    from .control.devkit import DevKit
    from .intake.rule import resolve

    _, url = resolve(args.db, args.url)
    if not url:
        raise SystemExit("observatory agents: no running workbench found (start one with "
                         "`observatory serve`, or give --url)")
    return DevKit(url)


def _control(args: argparse.Namespace, fn, show=None) -> int:
    from .control.devkit import ControlError

    with _devkit(args) as kit:
        try:
            result = fn(kit)
        except ControlError as err:
            print(f"observatory {getattr(args, 'noun', 'agents')} {args.action}: {err}",
                  file=sys.stderr)
            return 1
    if args.json:
        print(_json(result, indent=2))
    elif show is not None:
        show(result)
    elif isinstance(result, list):
        for row in result:
            print(_agent_line(row))
    else:
        print(_agent_line(result))
    return 0


def _agent_line(row: dict) -> str:
    """One agent, task, approval, alert or alert rule as a line (:func:`_cell`: a missing
    field is ``-``, never ``None``)."""
    if "deleted" in row:
        return f"{row['deleted']}  deleted"
    if "kind" in row and "rule_id" in row and "title" not in row:  # an alert rule
        actions = ",".join(row.get("actions") or []) or None
        return (f"{_cell(row['rule_id'], '<22')} {'on ' if row['enabled'] else 'off'} "
                f"{_cell(row['kind'], '<11')} {_cell(row.get('agents'), '<14')} "
                f"{_cell(row.get('severity'), '<8')} {_cell(actions, '<14')} "
                f"{_cell(row.get('name'))}")
    if "rule_id" in row and "title" in row:  # an alert
        return (f"{row['id']}  {_cell(row['state'], '<12')} {_cell(row.get('severity'), '<8')} "
                f"{_cell(row['title'])}")
    if "priority" in row:  # a task
        command = row.get("command")
        what = row.get("prompt") or (command if isinstance(command, str)
                                     else " ".join(command or [])) or None
        where = f"  on {row['agent_id']}" if row.get("agent_id") else ""
        why = f"  ({row['failure']})" if row.get("failure") and row["state"] != "done" else ""
        return (f"{row['id']}  {_cell(row['state'], '<9')} p{_cell(row['priority'], '<4')} "
                f"{_cell(what)[:60]}{where}{why}")
    if "tool" in row:  # an approval
        given = row.get("input")
        what = MISSING if _missing(given) else _json(given)[:80]
        return (f"{row['id']}  {_cell(row['state'], '<9')} {_cell(row.get('agent_id'))}  "
                f"{_cell(row['tool'])}  {what}")
    pending = f"  {row['pending_approvals']} waiting" if row.get("pending_approvals") else ""
    error = f"  ({row['last_error']})" if row.get("last_error") else ""
    return (f"{row['id']}  {_cell(row['state'], '<20')} {_cell(row.get('backend'), '<12')} "
            f"{_cell(row.get('name'))}{pending}{error}")


def cmd_agents_list(args: argparse.Namespace) -> int:
    return _control(args, lambda kit: kit.agents())


def cmd_agents_add(args: argparse.Namespace) -> int:
    try:
        spec = json.loads(args.spec) if args.spec else {}
    except ValueError as err:
        raise SystemExit(f"observatory agents add: --spec is not valid JSON: {err}") from None
    if not isinstance(spec, dict):
        raise SystemExit("observatory agents add: --spec must be a JSON object")
    spec.update({k: v for k, v in {"name": args.name, "backend": args.backend,
                                   "command": args.command, "prompt": args.prompt,
                                   "project": args.project, "cwd": args.cwd}.items() if v})
    if args.labels:  # (labels in --spec that are not a list: the server says so)
        given = spec.get("labels") or []
        spec["labels"] = [*given, *args.labels] if isinstance(given, list) else given

    def add(kit):
        agent = kit.add(spec)
        if not args.start:
            return agent
        started = kit.act(agent["id"], "start")
        if started.get("note"):  # (the queue started it first: nothing to do, not an error)
            print(f"observatory agents add: {started['note']}", file=sys.stderr)
        return started

    return _control(args, add)


def _agent_id(kit, given: str) -> str:
    """The id of the agent ``given`` names: its id, else its name (the one agent of that
    name; two of one name must be told apart by id)."""
    from .control.devkit import ControlError

    agents = kit.agents()
    if any(a["id"] == given for a in agents):
        return given
    named = [a["id"] for a in agents if a.get("name") == given]
    if len(named) > 1:
        raise ControlError(409, f"{len(named)} agents are called {given!r}: give one of "
                                f"their ids ({', '.join(named)})")
    return named[0] if named else given  # (none: the server's 404 says so)


def cmd_agents_act(args: argparse.Namespace) -> int:
    return _control(args, lambda kit: kit.act(_agent_id(kit, args.agent), args.action))


def cmd_agents_message(args: argparse.Namespace) -> int:
    return _control(args, lambda kit: kit.message(_agent_id(kit, args.agent), args.text))


def cmd_agents_approvals(args: argparse.Namespace) -> int:
    return _control(args, lambda kit: kit.approvals())


def cmd_agents_decide(args: argparse.Namespace) -> int:
    decision = "deny" if args.action == "deny" else (
        "allow_session" if args.session else "allow")
    return _control(args, lambda kit: kit.decide(args.approval_id, decision, args.message))


def cmd_tasks_add(args: argparse.Namespace) -> int:
    body = {"prompt": args.prompt, "command": args.task_command, "priority": args.priority,
            "labels": args.labels, "project": args.project, "deadline": args.deadline,
            "budget": {k: v for k, v in (("cost_usd", args.budget_cost),
                                         ("seconds", args.budget_seconds)) if v is not None}}
    body = {k: v for k, v in body.items() if v not in (None, {}, [])}
    return _control(args, lambda kit: kit.add_task(body))


def cmd_tasks_list(args: argparse.Namespace) -> int:
    return _control(args, lambda kit: kit.tasks(args.state))


def cmd_tasks_act(args: argparse.Namespace) -> int:
    return _control(args, lambda kit: kit.task_action(args.task_id, args.action))


def cmd_alerts_list(args: argparse.Namespace) -> int:
    return _control(args, lambda kit: kit.alerts(args.state))


def cmd_rules(args: argparse.Namespace) -> int:
    """``observatory alerts rules ACTION``."""
    action, fields = args.rule_action, _rule_fields(args)

    def stored(kit) -> dict:
        from .control.devkit import ControlError

        found = [r for r in kit.alert_rules() if r["rule_id"] == args.rule_id]
        if not found:
            raise ControlError(404, f"no alert rule {args.rule_id!r}")
        return found[0]

    def run(kit):
        if action == "list":
            return kit.alert_rules()
        if action == "add":
            body = {"name": args.name, **fields, "enabled": not args.disabled,
                    **({"rule_id": args.rule_id} if args.rule_id else {})}
            return kit.put_rule(body)
        if action == "edit":
            name = {"name": args.rule_name} if args.rule_name else {}
            return kit.put_rule({**stored(kit), **fields, **name})
        if action in ("enable", "disable"):
            return kit.put_rule({**stored(kit), "enabled": action == "enable"})
        if action == "delete":
            kit.delete_rule(args.rule_id)
            return {"ok": True, "deleted": args.rule_id}
        base = stored(kit) if args.rule_id else {}
        return kit.preview_rule({**base, **fields})

    return _control(args, run, show=_show_preview if action == "preview" else None)


def _show_preview(result: dict) -> None:
    for row in result["fired"]:
        print(f"{row['at'][:19]}  {row['agent']:<20} {row['title']}")
    agents = result["agents"]
    print(f"{result['count']} firing(s) from {result['since'][:19]} to {result['until'][:19]} "
          f"UTC over {len(agents)} agent(s) matching {result['rule']['agents']!r}"
          + (f" (the newest {len(result['fired'])} shown)"
             if result["count"] > len(result["fired"]) else "")
          + (f"; {result['note']}" if result.get("note") else ""))


def cmd_alerts_act(args: argparse.Namespace) -> int:
    return _control(args, lambda kit: kit.alert_action(args.alert_id, args.action))


def ingest_formats() -> list[str]:
    from .ingest import formats

    return formats()


def _target_args(p: argparse.ArgumentParser) -> None:
    """``--db`` and ``--url``: where a command reads or writes (one rule, see intake)."""
    _db_arg(p)
    p.add_argument(
        "--url",
        help="a running workbench (default: $OBSERVATORY_URL, else the server holding the "
        "database, found by itself; token from $OBSERVATORY_TOKEN)",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from .discovery import client_url

    env = dict(os.environ)
    store_url = config.store_url(args.db)
    if store_url is not None:
        from .store.clickhouse.connect import check

        problem = check(store_url)
        if problem:
            print(f"observatory serve: {problem}", file=sys.stderr)
            return 2
    env["OBSERVATORY_DB"] = store_url or str(config.db_path(args.db))
    certfile = config.get("OBSERVATORY_TLS_CERTFILE", args.certfile)
    keyfile = config.get("OBSERVATORY_TLS_KEYFILE", args.keyfile)
    if bool(certfile) != bool(keyfile):
        print("observatory serve: --certfile and --keyfile go together (the certificate "
              "and its private key)", file=sys.stderr)
        return 2
    if certfile:
        import ssl

        try:  # (a wrong file fails here, in one line, not in Bokeh's traceback)
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                certfile, keyfile)
        except (OSError, ssl.SSLError) as err:
            print(f"observatory serve: {certfile}, {keyfile}: not a certificate and its "
                  f"key: {err}", file=sys.stderr)
            return 2
        env["OBSERVATORY_TLS_CERTFILE"] = str(Path(certfile).resolve())
        env["OBSERVATORY_TLS_KEYFILE"] = str(Path(keyfile).resolve())
    env["OBSERVATORY_SERVER_URL"] = client_url(args.address, args.port, tls=bool(certfile))
    if args.no_demo:
        env["OBSERVATORY_NO_DEMO"] = "1"
    hosts = [h for h in config.get("OBSERVATORY_ALLOWED_HOSTS").split(",") if h]
    hosts += args.allow_host or []
    if args.address not in ("", "0.0.0.0", "::"):
        hosts.append(args.address)  # the name it was told to listen on
    hosts += [o.rsplit(":", 1)[0] for o in args.allow_websocket_origin or []]
    env["OBSERVATORY_ALLOWED_HOSTS"] = ",".join(dict.fromkeys(hosts))
    basic_auth = config.get("OBSERVATORY_BASIC_AUTH", args.basic_auth)
    from .tokens import TokenError, check_keys
    from .tokens import configured as signed_tokens

    try:
        check_keys()
    except TokenError as err:
        print(f"observatory serve: {err}", file=sys.stderr)
        return 2

    if args.address not in LOOPBACK and not (basic_auth or config.api_tokens()
                                             or signed_tokens()) and not args.insecure:
        print(f"observatory serve: refusing to listen on {args.address} with no "
              "authentication: anyone who can reach it could read and write everything. Set "
              "OBSERVATORY_TOKENS and/or --basic-auth, or pass --insecure if this network "
              "is yours alone.", file=sys.stderr)
        return 2
    oidc = config.get("OBSERVATORY_OIDC_ISSUER")
    if oidc:
        if basic_auth:
            print("observatory serve: single sign-on (OBSERVATORY_OIDC_ISSUER) and "
                  "--basic-auth exclude each other: choose one login", file=sys.stderr)
            return 2
        if not (config.get("OBSERVATORY_OIDC_CLIENT_ID")
                and config.get("OBSERVATORY_OIDC_CLIENT_SECRET")):
            print("observatory serve: single sign-on needs OBSERVATORY_OIDC_CLIENT_ID and "
                  "OBSERVATORY_OIDC_CLIENT_SECRET (the workbench's client at the provider)",
                  file=sys.stderr)
            return 2
    login = bool(basic_auth or config.api_tokens() or signed_tokens() or oidc)
    if oidc:
        import base64

        # Through Panel's environment variables, so the secret is not on the command line;
        # Panel encrypts the provider's tokens in their cookies with a key of this start.
        env["PANEL_OAUTH_KEY"] = config.get("OBSERVATORY_OIDC_CLIENT_ID")
        env["PANEL_OAUTH_SECRET"] = config.get("OBSERVATORY_OIDC_CLIENT_SECRET")
        env["PANEL_OAUTH_ENCRYPTION_KEY"] = base64.urlsafe_b64encode(
            secrets.token_bytes(32)).decode()
    elif basic_auth:
        # Through Panel's environment variables, so the password is not on the command line.
        env["PANEL_BASIC_AUTH"] = basic_auth
        env["OBSERVATORY_BASIC_AUTH"] = basic_auth  # the API's one auth rule reads it
    elif login:
        # Tokens alone protect the dashboards too: Panel's login, whose password nobody
        # knows, takes any of the tokens instead (server/pages.py).
        env["PANEL_BASIC_AUTH"] = secrets.token_urlsafe(32)
    if login:
        env["PANEL_COOKIE_SECRET"] = config.get("OBSERVATORY_COOKIE_SECRET") or (
            secrets.token_urlsafe(32))
    if args.otlp_port:
        env["OBSERVATORY_OTLP_PORT"] = str(args.otlp_port)
        env["OBSERVATORY_OTLP_ADDRESS"] = args.address
    if args.otlp_grpc_port:
        env["OBSERVATORY_OTLP_GRPC_PORT"] = str(args.otlp_grpc_port)
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
    if certfile:
        argv += ["--ssl-certfile", env["OBSERVATORY_TLS_CERTFILE"],
                 "--ssl-keyfile", env["OBSERVATORY_TLS_KEYFILE"]]
    if oidc:  # (the provider's own sign-in page replaces the login form)
        argv += ["--oauth-provider", "observatory-oidc",
                 "--oauth-redirect-uri", env["OBSERVATORY_SERVER_URL"] + "/login",
                 "--oauth-expiry-days", str(config.get("OBSERVATORY_OIDC_EXPIRY_DAYS")),
                 "--oauth-error-template", str(TEMPLATES / "oauth_error.html"),
                 "--logout-template", str(TEMPLATES / "logout.html")]
    elif login:  # our own pages: Panel's load its logo and icon from a CDN
        argv += ["--basic-login-template", str(TEMPLATES / "login.html"),
                 "--logout-template", str(TEMPLATES / "logout.html")]
    if args.show:
        argv.append("--show")
    print(
        f"observatory: serving {_shown_store(args.db)} at {env['OBSERVATORY_SERVER_URL']}",
        file=sys.stderr,
        flush=True,
    )
    os.execve(sys.executable, argv, env)
    return 0  # not reached


def _shown_store(flag: str | None) -> str:
    """The store as a person may see it: a ClickHouse URL without its password."""
    url = config.store_url(flag)
    if url is None:
        return str(config.db_path(flag))
    from .store.clickhouse.connect import parse

    return f"{parse(url).shown} (this node's control file: {config.db_path(flag)})"


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
    from .intake import IntakeError, open_intake

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
    if not (args.commit and args.branch):
        from .ingest.ci_env import ask_git_early

        ask_git_early()  # (the run's commit and branch, while the reports are read)
    bad = stored = 0
    pending: deque = deque()

    def settle(block: bool) -> None:
        nonlocal bad, stored
        # Print in input order, as soon as each file's write has committed.
        if block:
            intake.flush()
        while pending and (block or pending[0].done()):
            result = pending.popleft().result()
            bad += not result["ok"]
            stored += bool(result["ok"] and not result.get("duplicate"))
            _report(result, args.json)
            advance()

    try:
        intake = open_intake(args.db, args.url)
    except IntakeError as err:
        print(f"observatory ingest tests: {err}", file=sys.stderr)
        return 2
    _say_created(intake)
    with intake, _progress(len(files), quiet=args.json) as advance:
        for path in files:
            pending.append(intake.submit_file(path, flags, args.format))
            settle(block=len(pending) > 256)
        settle(block=True)
    if not args.json:
        print(f"observatory: {stored} new run(s) stored in {intake.where}", file=sys.stderr)
    return 1 if bad else 0


def _git_root(folder: Path) -> str | None:
    from .git import GitError, git

    try:
        return git(folder, "rev-parse", "--show-toplevel").strip() or None
    except GitError:
        return None


def cmd_ingest_coverage(args: argparse.Namespace) -> int:
    from .ingest import IngestError, read_report
    from .ingest.ci_env import detect
    from .intake import IntakeError, open_intake

    try:
        intake = open_intake(args.db, args.url)
    except IntakeError as err:
        print(f"observatory ingest coverage: {err}", file=sys.stderr)
        return 2
    _say_created(intake)
    flags = {"project": args.project, "commit": args.commit, "branch": args.branch}
    bad = 0
    with intake:
        for name in args.paths:
            path = Path(name)
            roots = [str(Path(r).resolve()) for r in args.root or []] or [
                r for r in [_git_root(path.resolve().parent)] if r]
            try:
                data = read_report(path)
            except IngestError as err:
                result = {"path": name, "ok": False, "error": str(err)}
            else:
                # commit and branch not given: the CI variables, then the report's own git
                # checkout (as `ingest tests` and the pytest plugin do)
                found = detect(folder=path.resolve().parent)
                mine = {**flags, **{k: found[k] for k in ("commit", "branch")
                                    if not flags[k] and found.get(k)}}
                result = intake.coverage(data, name, mine, roots, args.format)
            bad += not result["ok"]
            if args.json:
                print(_json(result), flush=True)
            elif not result["ok"]:
                print(f"error: {result['error']}", file=sys.stderr)
            else:
                pct = "-" if result["percent"] is None else f"{result['percent']:.2f}%"
                print(f"{name}: {result['format']}: {result['files']} files, "
                      f"{result['covered']}/{result['statements']} lines ({pct}), "
                      f"{result['contexts']} test contexts")
                for w in result.get("warnings") or []:
                    print(f"warning: {name}: {w}", file=sys.stderr)
    return 1 if bad else 0


#: How a project got its name (``named_by``), as the command line says it.
NAMED_BY = {"given": "", "root": "  (the name of the runs that came from this folder)",
            "remote": "  (the name of runs: its remote's path)",
            "commit": "  (the name of runs of its checked-out commit)", "folder": ""}


def cmd_projects_scan(args: argparse.Namespace) -> int:
    from .intake import resolve
    from .projects.scan import default_roots, scan, store_projects

    roots = [str(Path(r).expanduser().resolve()) for r in args.roots] or [
        str(r) for r in default_roots()]
    missing = [r for r in roots if not Path(r).is_dir()]
    if missing:
        print(f"observatory projects scan: {missing[0]}: not a folder", file=sys.stderr)
        return 2
    path, url = resolve(args.db, args.url)
    if url:
        from .http import http_client

        body = {"roots": roots, **({"name": args.name} if args.name is not None else {})}
        with http_client(url, None, 600) as http:
            r = http.post("/api/projects/scan", json=body)
        body = r.json()
        if r.status_code != 200:
            print(f"observatory projects scan: {url}: {body.get('error')}", file=sys.stderr)
            return 1
        found, seen = body["projects"], body["folders"]
    else:
        from .projects.identity import checked_name
        from .store import Store

        found, seen = scan(roots)
        try:
            name = None if args.name is None else checked_name(args.name)
            with Store(path) as store:
                store_projects(store, found, name)
                names = {r["path"]: r for r in _scanned(store)}
        except ValueError as err:
            print(f"observatory projects scan: --name: {err}", file=sys.stderr)
            return 2
        found = [{**p, "name": names.get(p["path"], p)["name"],
                  "named_by": names.get(p["path"], {}).get("named_by")} for p in found]
    for project in found:
        if args.json:
            print(json.dumps(project))
        else:
            print(f"{project['name']:<24} {project['kind']:<12} "
                  f"{project['branch'] or '-':<20} {project['path']}"
                  f"{NAMED_BY.get(project.get('named_by'), '')}")
    if not args.json:
        print(f"observatory: {len(found)} project(s) in {seen} folder(s)", file=sys.stderr)
    return 0


def _scanned(store) -> list[dict]:
    from .projects.scan import stored_list

    rows = json.loads(store.query("scanned_projects").to_json(orient="records",
                                                               date_format="iso"))
    for row in rows:
        for key in ("kinds", "manifests", "mcp_servers"):
            row[key] = stored_list(row[key])
    return rows


def cmd_projects_list(args: argparse.Namespace) -> int:
    store = _read_store(args, "projects list")
    if store is None:
        return 2
    rows = _scanned(store)
    store.close()
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            python = f"  python: {row['python']}" if row.get("python") else ""
            print(f"{row['name']:<24} {row['kind'] or '-':<12} {row['path']}"
                  f"{NAMED_BY.get(row.get('named_by'), '')}{python}")
    if not rows and not args.json:
        print("no projects: observatory projects scan [FOLDER...]", file=sys.stderr)
    return 0


def cmd_projects_change(args: argparse.Namespace) -> int:
    """``projects link|rename|remove|set``: through the running workbench when there is
    one (operators; audited there), else on the file (audited as the command line)."""
    from .intake import resolve

    command = f"observatory projects {args.action}"
    if args.action == "link":
        args.path = str(Path(args.path).expanduser().resolve())
    python = getattr(args, "python", None)
    if python:
        python = str(Path(python).expanduser().absolute())
    path, url = resolve(args.db, args.url)
    if url:
        from urllib.parse import quote

        from .http import http_client

        where = f"/api/projects/{quote(args.name, safe='')}"
        with http_client(url, None, 60) as http:
            r = (http.post("/api/projects/link", json={"name": args.name, "path": args.path})
                 if args.action == "link" else
                 http.put(where, json={"name": args.new_name}) if args.action == "rename" else
                 http.delete(where) if args.action == "remove" else
                 http.put(where, json={"python": python}))
        body = r.json()
        if r.status_code != 200:
            print(f"{command}: {url}: {body.get('error')}", file=sys.stderr)
            return 1
        row = body["project"]
    else:
        from .control.access import Forbidden, Principal
        from .projects import identity
        from .store import Store

        me = Principal("command line", "admin", "file")
        try:
            with Store(path) as store:
                row = (identity.link(store, me, args.name, args.path)
                       if args.action == "link" else
                       identity.rename(store, me, args.name, args.new_name)
                       if args.action == "rename" else
                       identity.remove(store, me, args.name) if args.action == "remove" else
                       identity.set_python(store, me, args.name, python))
        except (KeyError, ValueError, Forbidden) as err:
            print(f"{command}: {err.args[0] if err.args else err}", file=sys.stderr)
            return 1
    said = {"link": f"{row['name']}: {row['path']}",
            "rename": f"{args.name} is now {row['name']}: {row['path']}",
            "remove": f"forgot the folder of {args.name}: {row['path']} (its runs stay)",
            "set": f"{row['name']}: test runs use "
                   f"{row.get('python') or 'the interpreter found for them'}"}
    print(said[args.action])
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    from .intake.rule import resolve

    _, url = resolve(args.db, args.url)
    if not url:
        print("observatory tui: no running workbench found (start one with `observatory "
              "serve`, or give --url)", file=sys.stderr)
        return 1
    from .tui.app import ObservatoryApp

    ObservatoryApp(url).run()
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from .mcp_server import serve_stdio

    try:
        serve_stdio(args.url or args.db)
    except FileNotFoundError as err:
        print(f"observatory mcp: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_coverage_patch(args: argparse.Namespace) -> int:
    from .coverage.patch import patch_coverage
    from .git import GitError

    store = _read_store(args, "coverage patch")
    if store is None:
        return 2
    try:
        result = patch_coverage(store, args.project, args.repo, args.base, args.head,
                                args.commit)
    except (GitError, KeyError) as err:
        print(f"observatory coverage patch: {err.args[0]}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        print(_json(result))
        return 0
    from .analysis import units

    for f in result["files"]:
        missing = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in f["missing"])
        print(f"{f['path']}: {f['covered']}/{f['statements']} changed lines covered"
              + (f"; not run: {missing}" if missing else ""))
    print(f"patch coverage {result['base']}..{_cell(result['head'])}: {result['covered']}/"
          f"{result['statements']} ({_cell(result['percent'], fmt=units.percentage)})")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from .git import GitError
    from .selection.evaluate import replay
    from .selection.select import is_pytest_id, select_tests

    if args.head and args.working_tree:
        print("observatory select: --head and --working-tree exclude each other",
              file=sys.stderr)
        return 2
    if (args.head or args.working_tree) and not args.base:
        print("observatory select: --head/--working-tree need --base", file=sys.stderr)
        return 2
    store = _read_store(args, "select")
    if store is None:
        return 2
    if args.repo:
        repo = Path(args.repo).resolve()
    else:
        from .coverage.lines import project_repo

        repo = project_repo(store, args.project) or Path.cwd()
    if not (repo / ".git").exists():
        if args.base:
            store.close()
            print(f"observatory select: {repo} is not a git repository (--repo DIR)",
                  file=sys.stderr)
            return 2
        repo = None
    try:
        if args.evaluate:
            result = replay(store, args.project, repo)
        else:
            result = select_tests(store, args.project, repo, args.base, args.head,
                                  args.budget, args.top)
    except GitError as err:
        print(f"observatory select: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.evaluate:
        return _print_evaluation(result, args.format == "json")
    ranking = result["ranking"]
    if args.format == "json":
        print(_json(ranking))
    elif args.format == "pytest":
        print("\n".join(r["test"] for r in ranking if is_pytest_id(r["test"])))
    else:
        _print_ranking(ranking)
        print(f"{result['selected']} of {result['tests']} tests, about {result['expected_s']} s"
              + (f"; {len(result['changed_files'])} changed files" if args.base else
                 "; no change given (--base): history alone"), file=sys.stderr)
    if not ranking:
        print(f"observatory select: no tests known for project {args.project!r}",
              file=sys.stderr)
        return 1
    return 0


def cmd_run_tests(args: argparse.Namespace) -> int:
    import shlex
    import time

    from .http import http_client
    from .intake import resolve

    _, url = resolve(args.db) if not args.url else (None, args.url)
    if url is None:
        print("observatory run-tests: no running workbench (start one with `observatory "
              "serve`, or --url): runs started from the workbench are queued, audited and "
              "shown on its projects page", file=sys.stderr)
        return 2
    body: dict = {"project": args.project}
    if args.command:
        body.update(command=shlex.split(args.command), junit=args.junit)
    elif args.select:
        body["select"] = {k: getattr(args, k) for k in ("base", "head", "top", "budget")
                          if getattr(args, k) is not None}
    else:
        body["tests"] = args.tests
    api = http_client(url, timeout=120)
    answer = api.post("/api/test-runs", json=body)
    if answer.status_code != 200:
        print(f"observatory run-tests: {answer.json().get('error', answer.text)}",
              file=sys.stderr)
        return 1
    run = answer.json()["test_run"]
    # (a file or folder given holds an unknown number of tests: no "of N")
    selected = len(run["tests"] or []) if all("::" in t for t in run["tests"] or []) else 0
    given = run["tests"] or []
    print(f"{run['id']}: {run['state']}, "
          + (f"{selected} tests" if selected else args.command if args.command else
             " ".join(given[:3]) + (" …" if len(given) > 3 else "") if given else
             "the whole suite"), file=sys.stderr)
    if args.no_wait:
        print(json.dumps(run))
        return 0
    shown = None
    try:
        while True:
            run = api.get(f"/api/test-runs/{run['id']}").json()["test_run"]
            line = (f"{run['state']}: {run['results'] or 0}"
                    + (f"/{selected}" if selected else "") + f" results, "
                    f"{run['failures'] or 0} failed")
            if line != shown:
                print(line, file=sys.stderr)
                shown = line
            if run["state"] not in ("queued", "running"):
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        api.post(f"/api/test-runs/{run['id']}/cancel")
        print(f"{run['id']}: cancelled", file=sys.stderr)
        return 130
    if run.get("message"):
        print(run["message"], file=sys.stderr)
    return {"passed": 0, "failed": 1}.get(run["state"], 2)


#: The legend of ``observatory select``'s ``*``.
FIRST_LEGEND = ("* always first: tests the change adds or edits and tests that failed in "
                "the last run, before every other test (each group best score first)")


def _print_ranking(ranking: list[dict]) -> None:
    """``observatory select``'s table: a header, one line per test best first (the ones
    that always go first marked ``*``, each group by score), and the legend of ``*``."""
    from .analysis import units

    if not ranking:
        return
    print(f"{'rank':>5} {'score':>8} {'P(fail)':>7} {'time':>8}  test  (reasons)")
    for i, r in enumerate(ranking, 1):
        mark = "*" if r["first"] else " "
        print(f"{i:>4}{mark} {_cell(r['score'], '>8.3f')} "
              f"{_cell(r.get('probability'), '>7', units.percent)} "
              f"{_cell(r.get('duration_s'), '>8', units.duration)}  {r['test']}  "
              f"({'; '.join(r['reasons'])})")
    if any(r["first"] for r in ranking):
        print(FIRST_LEGEND)


def _print_evaluation(result: dict, as_json: bool) -> int:
    if as_json:
        print(_json(result))
        return 0 if result["evaluated"] else 1
    if not result["evaluated"]:
        print(f"observatory select --evaluate: no run of {result['project']} with failures "
              "after another run to replay", file=sys.stderr)
        return 1
    print(f"{result['evaluated']} runs with failures replayed of {result['runs']} "
          f"({'with' if result['with_git'] else 'without'} git changes)")
    from .analysis import units

    cols = {"apfd": "APFD", **{f"{k}_{c}": f"{k}@{c}%" for k in ("tests", "time")
                               for c in (10, 25, 50)}}
    print(f"{'order':<18}" + "".join(f"{t:>10}" for t in cols.values()))
    for name, m in result["orders"].items():
        print(f"{name:<18}" + "".join(_cell(m.get(c), ">10", units.percent) for c in cols))
    print("APFD: 100% when every failing test comes first, 50% for a random order; "
          "tests@10%: the share of the failing tests caught within the first 10% of the "
          "tests (time@: of the run time)")
    return 0


def cmd_coverage_who(args: argparse.Namespace) -> int:
    from .coverage.lookup import covering_tests

    path, _, line = args.where.rpartition(":")
    if not path or not line.isdigit():
        print(f"observatory coverage who: {args.where!r} is not FILE:LINE", file=sys.stderr)
        return 2
    store = _read_store(args, "coverage who")
    if store is None:
        return 2
    try:
        tests = covering_tests(store, args.project, path, int(line), args.commit)
    finally:
        store.close()
    if args.json:
        print(_json(tests))
    else:
        print("\n".join(tests) if tests else f"no test ran {args.where} in the latest report "
              "with per-test contexts", file=sys.stdout if tests else sys.stderr)
    return 0


def _say_created(intake) -> None:
    # Never create a database silently: a new file no dashboard shows is the usual
    # sign of the wrong --db or OBSERVATORY_HOME.
    if intake.created:
        print(f"observatory: created a new database {intake.where}", file=sys.stderr)


def _read_store(args: argparse.Namespace, command: str):
    """The data a reading command asks (``--url`` or ``--db``, one rule: see
    :func:`workbench.connect`), or None after saying on stderr that there is none."""
    from .client import connect

    try:
        return connect(args.url or args.db)
    except FileNotFoundError as err:
        print(f"observatory {command}: {err}", file=sys.stderr)
        return None


def cmd_runs_list(args: argparse.Namespace) -> int:

    store = _read_store(args, "runs list")
    if store is None:
        return 2
    df = store.query("runs", project=args.project, limit=max(args.limit, 1), offset=0)
    store.close()
    from .analysis import units

    cols = ["run_id", "started_at", "project", "branch", "status", "tests", "passed", "failed",
            "errors", "skipped", "source"]
    counts = ("tests", "passed", "failed", "errors", "skipped")
    rows = df[cols].to_dict(orient="records")
    for row in rows:  # (a count is a float column's through a server when one is missing)
        row.update({c: int(row[c]) for c in counts if not _missing(row[c])})
    if args.json:
        for row in rows:
            print(_json(row))
        return 0
    if df.empty:
        print("no runs stored", file=sys.stderr)
        return 0
    shown = [{c: _cell(row[c], fmt=units.timestamp if c == "started_at" else None)[:40]
              for c in cols} for row in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in shown)) for c in cols}
    for line in ({c: c for c in cols}, *shown):
        print("  ".join(line[c].rjust(widths[c]) if c in counts else line[c].ljust(widths[c])
                        for c in cols).rstrip())
    return 0


def cmd_runs_delete(args: argparse.Namespace) -> int:
    from .intake import IntakeError, open_intake

    missing = 0
    try:
        with open_intake(args.db, args.url) as intake:
            for run_id in args.run_ids:
                if intake.delete_run(run_id):
                    print(f"deleted run {run_id} from {intake.where}")
                else:
                    missing += 1
                    print(f"error: no run {run_id!r} in {intake.where}", file=sys.stderr)
    except IntakeError as err:
        print(f"observatory runs delete: {err}", file=sys.stderr)
        return 2
    return 1 if missing else 0


#: How a text table of the command line shows a value that is not there; JSON says null.
#: Never ``NaN``, ``NaT``, ``None`` or ``nan`` (one rule for every listing: _cell, _json).
MISSING = "-"


def _missing(value: object) -> bool:
    """Whether ``value`` is not there: None, NaN (numpy's too), NaT or pandas' NA."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT are not equal to themselves
    except TypeError:  # pandas' NA has no truth value
        return True
    except ValueError:  # an array: not one missing value
        return False


def _cell(value: object, spec: str = "", fmt=None) -> str:
    """One value of a text table: :data:`MISSING` when it is not there, else ``fmt(value)``
    (or the value itself) formatted by ``spec`` (``"<12"``: padded to 12)."""
    if _missing(value):
        width = re.search(r"\d+", spec.split(".")[0])
        align = "<" if "<" in spec else "^" if "^" in spec else ">"
        return f"{MISSING:{align}{width.group() if width else ''}}"
    if fmt is not None:
        value = fmt(value)
    if isinstance(value, float) and value.is_integer() and not spec.endswith("f"):
        value = int(value)  # a count that went through a float column
    return format(value, spec)


def _plain(value: object) -> object:
    """``value`` with every missing value None, numpy numbers as Python's, times as ISO
    text: what :func:`_json` writes."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return _plain(value.tolist())
    if _missing(value):
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None  # (JSON has no infinity either)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _json(value: object, **kw) -> str:
    """JSON of a command's answer: null for every missing value, never NaN or NaT."""
    return json.dumps(_plain(value), allow_nan=False, default=str, **kw)


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print(_json(result), flush=True)
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
