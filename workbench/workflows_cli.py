"""``observatory workflows``: list, show, run, cancel, resume, export and import the
workflows of a running workbench (its API; token from ``$OBSERVATORY_TOKEN``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

#: The states a run ends in.
ENDED = frozenset({"succeeded", "failed", "cancelled"})


def add_parser(sub, target_args, control) -> None:
    """``observatory workflows``; ``control(args, fn, show)`` is the CLI's way to call a
    running workbench (cli._control), passed in so that this module does not import the CLI
    that imports it."""
    wf = sub.add_parser(
        "workflows", help="the workflows of a running workbench: run, show, export, import",
        description="Workflows of a running workbench (the composer's: steps that are "
        "agents' tasks, test runs, approvals and conditions, run on LangGraph). Editing "
        "needs an admin token, running an operator's.")
    wsub = wf.add_subparsers(dest="action", metavar="ACTION", required=True)

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = wsub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        target_args(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func, noun="workflows", control=control)
        return p

    command("list", "the workflows (newest version of each) and their runs", cmd_list)
    show = command("show", "a workflow (id or name) with its recent runs, or a run (wr-…) "
                   "with each step's state", cmd_show)
    show.add_argument("ref", metavar="WORKFLOW_OR_RUN")
    run = command("run", "start a run (with --wait: follow it to its end; exit 1 unless "
                  "it succeeded)", cmd_run)
    run.add_argument("ref", metavar="WORKFLOW")
    run.add_argument("--project", help="the project its steps work on")
    run.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                     help="an input over its default (repeatable)")
    run.add_argument("--version", type=int, help="run this version (default: the newest)")
    run.add_argument("--wait", action="store_true", help="follow the run to its end")
    for name, help in (("cancel", "cancel a run"),
                       ("resume", "resume a failed or cancelled run from its last "
                                  "checkpoint (finished steps do not run again)")):
        command(name, help, cmd_act).add_argument("run_id", metavar="RUN")
    export = command("export", "a workflow's definition as JSON (to import elsewhere)",
                     cmd_export)
    export.add_argument("ref", metavar="WORKFLOW")
    export.add_argument("--version", type=int, help="this version (default: the newest)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    imp = command("import", "save a workflow from a JSON file (or a shipped template); a "
                  "workflow of the same name gets a new version", cmd_import)
    what = imp.add_mutually_exclusive_group(required=True)
    what.add_argument("file", nargs="?", metavar="FILE", help="a workflow's JSON ('-': stdin)")
    what.add_argument("--template", metavar="NAME", help="a shipped template by name")
    what.add_argument("--langgraph", metavar="MODULE:ATTR",
                      help="a LangGraph app of --project: its graph shown read-only, the app "
                      "run as one process step (read by the project's own Python)")
    imp.add_argument("--project", help="the scanned project holding the --langgraph app")
    imp.add_argument("--name", help="save it under this name")
    command("templates", "the shipped templates", cmd_templates)


def _control(args, fn, show=None) -> int:
    return args.control(args, fn, show or _show)


def _show(result: Any) -> None:
    rows = result if isinstance(result, list) else [result]
    for row in rows:
        print(_line(row))
        for step in row.get("steps") or [] if not isinstance(result, list) else []:
            visit = f"#{step['visit']}" if step["visit"] > 1 else ""
            what = step.get("task_id") or step.get("test_run_id") or step.get(
                "approval_id") or ""
            cost = f" ${step['cost_usd']:.4f}" if step.get("cost_usd") else ""
            out = (step.get("output") or "").strip().splitlines()
            print(f"  {step['node'] + visit:<16} {step.get('state') or '-':<15} "
                  f"{step.get('outcome') or '-':<9} {what:<16}{cost}  "
                  f"{(out[-1] if out else '')[:70]}")


def _line(row: dict[str, Any]) -> str:
    if "run_id" in row:
        cost = f"${row.get('cost_usd') or 0:.4f}"
        return (f"{row['id']}  {row['state']:<10} {row.get('name') or '-'} v{row['version']}"
                f"  {cost}  {row.get('message') or ''}")
    if "spec" in row or "runs" in row:
        spec = row.get("spec") or {}
        runs = f"  {row['runs']} runs" if "runs" in row else ""
        return (f"{row.get('id', '-')}  v{row.get('version', '-')}  {row['name']}  "
                f"({len(spec.get('nodes') or [])} steps){runs}")
    return json.dumps(row)


def _inputs(args) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in args.input:
        if "=" not in item:
            raise SystemExit(f"observatory workflows run: --input {item!r}: NAME=VALUE")
        key, value = item.split("=", 1)
        out[key] = value
    if args.project:
        out["project"] = args.project
    return out


def cmd_list(args) -> int:
    return _control(args, lambda kit: kit.workflows())


def cmd_show(args) -> int:
    if args.ref.startswith("wr-"):
        return _control(args, lambda kit: kit.workflow_run(args.ref))

    def show(kit):
        workflow = kit.workflow(args.ref)
        return {**workflow, "recent_runs": kit.workflow_runs(workflow["id"], 10)}

    def print_it(w):
        print(_line(w))
        if w.get("description"):
            print(f"  {w['description']}")
        for node in w["spec"]["nodes"]:
            print(f"  {node['id']:<16} {node['kind']:<10} {node['label']}")
        for run in w["recent_runs"]:
            print("  " + _line(run))

    return _control(args, show, print_it)


def cmd_run(args) -> int:
    inputs = _inputs(args)
    final: dict[str, Any] = {}

    def run(kit):
        started = kit.run_workflow(args.ref, inputs, args.version)
        if not args.wait:
            return started
        seen: dict[tuple[str, int], str] = {}
        while True:
            now = kit.workflow_run(started["id"])
            for step in now["steps"]:
                key = (step["node"], step["visit"])
                if seen.get(key) != step.get("state"):
                    seen[key] = step.get("state")
                    if not args.json:
                        print(f"{step['node']:<16} {step.get('state')}", file=sys.stderr)
            if now["state"] in ENDED:
                final["state"] = now["state"]
                return now
            time.sleep(0.5)

    code = _control(args, run)
    # (with --wait the run's own end decides the exit status; its lines said why)
    return 1 if code == 0 and args.wait and final.get("state") != "succeeded" else code


def cmd_act(args) -> int:
    return _control(args, lambda kit: kit.workflow_run_action(args.run_id, args.action))


def cmd_export(args) -> int:
    def export(kit):
        return kit.workflow(args.ref, args.version)["spec"]

    def write(spec):
        text = json.dumps(spec, indent=2) + "\n"
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"{args.output}: {spec['name']} ({len(spec['nodes'])} steps)")
        else:
            sys.stdout.write(text)

    return _control(args, export, write)


def cmd_import(args) -> int:
    spec: Any = None
    if args.file:
        source = sys.stdin if args.file == "-" else None
        try:
            text = source.read() if source else Path(args.file).read_text(encoding="utf-8")
            spec = json.loads(text)
        except (OSError, ValueError) as err:
            raise SystemExit(f"observatory workflows import: {args.file}: {err}") from None
        if not isinstance(spec, dict):
            raise SystemExit(f"observatory workflows import: {args.file}: not a JSON object")

    if args.langgraph and not args.project:
        raise SystemExit("observatory workflows import: --langgraph needs --project")

    def save(kit):
        nonlocal spec
        if args.langgraph:
            return kit.import_langgraph(args.langgraph, args.project)
        if spec is None:
            found = [t for t in kit.workflow_templates() if t["name"] == args.template]
            if not found:
                from .control.devkit import ControlError
                raise ControlError(404, f"no template {args.template!r}")
            spec = dict(found[0])
        if args.name:
            spec["name"] = args.name
        existing = [w for w in kit.workflows() if w["name"] == spec.get("name")]
        return kit.save_workflow(spec, existing[0]["id"] if existing else None)

    return _control(args, save)


def cmd_templates(args) -> int:
    def show(rows):
        for t in rows:
            print(f"{t['name']:<28} {len(t['nodes'])} steps  {t['description']}")

    return _control(args, lambda kit: kit.workflow_templates(), show)
