"""Workflows and their runs: versions stored in the workbench, each run driven by LangGraph
in a thread of its own and checkpointed after every step in a SQLite file beside the
database (LangGraph's maintained ``SqliteSaver``), so a run survives the server: a
restarted workbench resumes each unfinished run from its last checkpoint, and files again
the approvals a run was waiting for (the old requests expired with the old process).

Editing a workflow needs an admin, running or cancelling one an operator; each is audited.
Every step is stored as it starts and ends (``workflow_steps``), pushed to open pages
(``supervisor.work_changed("workflow-run", ...)``) and sent as a span of the run's trace
(``workflow.run_id``, ``workflow.node``) through the same intake as OTLP exporters.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import secrets
import sqlite3
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.errors import GraphInterrupt
from langgraph.types import Command

from ..config import utcnow
from ..control import access
from ..control.access import Principal
from ..control.spec import LIVE, STARTABLE
from ..coverage.lines import project_repo
from ..store import workflow_writes
from ..store.rows import plain
from . import spec as specs
from .graph import build
from .steps import Cancelled, Steps

log = logging.getLogger("workbench.workflows")

STATES = ("running", "waiting", "succeeded", "failed", "cancelled")
OPEN = frozenset({"running", "waiting"})
#: What a step's outcome makes its state (conditions and joins route; they do not fail).
_FAILED = frozenset({"failed", "error", "denied"})
#: LangGraph's cap on supersteps: far above any loop a condition allows.
RECURSION_LIMIT = 10_000


class Run:
    """One run: its definition (the version it started with), inputs and step records."""

    def __init__(self, engine: Workflows, row: dict[str, Any], spec: dict[str, Any]) -> None:
        self.engine = engine
        self.row = row
        self.spec = spec
        self.id: str = row["run_id"]
        self.project: str | None = row.get("project")
        self.folder: Path | None = project_repo(engine.store, self.project) \
            if self.project else None
        self.steps: dict[tuple[str, int], dict[str, Any]] = {}
        self.cancelled = threading.Event()
        self.lock = threading.Lock()  # one LangGraph stream at a time
        #: interrupt id -> approval id, for the requests filed in this process.
        self.filed: dict[str, str] = {}

    def step(self, node: str, visit: int) -> dict[str, Any]:
        return self.steps.get((node, visit), {})

    def record(self, node: dict[str, Any], visit: int, **fields: Any) -> dict[str, Any]:
        """Store (and push to open pages) what is known of one visit of one step."""
        key = (node["id"], visit)
        rec = self.steps.setdefault(key, {"run_id": self.id, "node": node["id"],
                                          "visit": visit, "kind": node["kind"]})
        rec.update(fields)
        workflow_writes.save_step(self.engine.store, rec)
        self.engine.changed(self)
        return rec

    def summary(self) -> dict[str, Any]:
        """The run without its steps (a list of runs, a pushed change)."""
        return {**_iso(self.row), "id": self.id}

    def public(self) -> dict[str, Any]:
        """The run with every visit of every step, in the order they started."""
        steps = sorted(self.steps.values(),
                       key=lambda r: (str(r.get("started_at") or ""), r["visit"]))
        return {**self.summary(), "steps": [_iso(rec) for rec in steps]}


class _Asker:
    """What the approvals inbox needs of an asker, for a run waiting on a person."""

    def __init__(self, run: Run, settings: dict[str, Any]) -> None:
        self.id = run.id
        self.session_id = run.id
        self.paused = False
        self.spec = {"project": run.project, "policy": {
            "rules": [], "timeout_s": settings.get("timeout_s"),
            "timeout_action": settings.get("timeout_action") or "deny"}}


class Workflows:
    """Every workflow and run of one workbench; thread-safe."""

    def __init__(self, supervisor, test_runs, intake=None) -> None:
        self.supervisor = supervisor
        self.store = supervisor.store
        self.test_runs = test_runs
        self.intake = intake
        folder = (Path(self.store.path).resolve().parent
                  if isinstance(self.store.path, Path | str) and str(self.store.path) !=
                  ":memory:" else Path.cwd())
        self.checkpoints = folder / "workflows.sqlite"
        # One connection for every run's thread: the saver serialises its own use of it.
        self._conn = sqlite3.connect(self.checkpoints, check_same_thread=False)
        self.saver = SqliteSaver(self._conn)
        self.saver.setup()
        self.runs: dict[str, Run] = {}
        self._lock = threading.RLock()
        self.steps = Steps(self)
        self._resume_left()

    # -- definitions --------------------------------------------------------------------
    def save(self, principal: Principal, body: Any, workflow_id: str | None = None
             ) -> dict[str, Any]:
        """A new workflow, or a new version of ``workflow_id`` (admins)."""
        from ..control.backends import BACKENDS

        access.authorize(self.store, principal, "workflow-edit", workflow_id or "")
        spec = specs.check(body, BACKENDS)
        with self._lock:
            named = self.store.sql("SELECT DISTINCT workflow_id FROM workflows WHERE name = ? "
                                   "AND workflow_id IS DISTINCT FROM ?",
                                   [spec["name"], workflow_id])
            if not named.empty:
                other = named["workflow_id"].iloc[0]
                raise ValueError(f"name: a workflow named {spec['name']!r} exists ({other}): "
                                 "save a new version of it, or choose another name")
            if workflow_id is None:
                workflow_id, version = "wf-" + secrets.token_hex(5), 1
            else:
                version = self.get(workflow_id)["version"] + 1
            row = {"workflow_id": workflow_id, "version": version, "name": spec["name"],
                   "description": spec["description"], "spec": spec,
                   "created_by": principal.who, "created_at": utcnow()}
            workflow_writes.save_workflow(self.store, row).result()
        access.record(self.store, principal, "workflow-edit", workflow_id,
                      {"version": version, "name": spec["name"],
                       "nodes": len(spec["nodes"])})
        # (not the definition: its agents' env is for admins, and /ws/agents forwards this)
        self.supervisor.work_changed("workflow", {k: v for k, v in _public_workflow(
            row).items() if k != "spec"})
        return _public_workflow(row)

    def list(self) -> list[dict[str, Any]]:
        self.store.settle()
        df = self.store.sql(
            "SELECT w.*, (SELECT count(*) FROM workflow_runs r WHERE r.workflow_id = "
            "w.workflow_id) AS runs FROM workflows w WHERE version = (SELECT max(version) "
            "FROM workflows v WHERE v.workflow_id = w.workflow_id) ORDER BY name")
        return [{**_public_workflow(r), "runs": int(r["runs"])} for r in df.to_dict("records")]

    def get(self, ref: str, version: int | None = None) -> dict[str, Any]:
        """A workflow by id or name, its newest version unless ``version`` (KeyError)."""
        self.store.settle()
        df = self.store.sql(
            "SELECT * FROM workflows WHERE (workflow_id = ? OR name = ?) "
            "AND (? IS NULL OR version = ?) ORDER BY workflow_id = ? DESC, version DESC "
            "LIMIT 1", [ref, ref, version, version, ref])  # (an id before a name)
        if df.empty:
            raise KeyError(f"no workflow {ref!r}" + (f" version {version}" if version else ""))
        return _public_workflow(df.iloc[0].to_dict())

    def versions(self, ref: str) -> list[dict[str, Any]]:
        workflow_id = self.get(ref)["id"]
        df = self.store.sql("SELECT * FROM workflows WHERE workflow_id = ? ORDER BY version",
                            [workflow_id])
        return [_public_workflow(r) for r in df.to_dict("records")]

    def diff(self, ref: str, a: int, b: int, role: str = "admin") -> dict[str, Any]:
        """What changed from version ``a`` to ``b``: nodes added, removed and changed
        (settings, kind, label), edges added and removed, and a unified diff of the JSON
        (of what ``role`` may read)."""
        old = specs.shown(self.get(ref, a)["spec"], role)
        new = specs.shown(self.get(ref, b)["spec"], role)
        return diff_specs(old, new, f"v{a}", f"v{b}")

    # -- runs ---------------------------------------------------------------------------
    def start(self, principal: Principal, ref: str, inputs: dict[str, Any] | None = None,
              version: int | None = None) -> dict[str, Any]:
        """Start a run of ``ref`` (operators): the workflow's inputs with ``inputs`` over
        them; ``project`` names the project its steps work on."""
        access.authorize(self.store, principal, "workflow-run", ref)
        workflow = self.get(ref, version)
        spec = workflow["spec"]
        inputs = inputs or {}
        if not isinstance(inputs, dict):
            raise ValueError("inputs: an object")
        unknown = sorted(set(inputs) - set(spec["inputs"]) - {"project"})
        if unknown:
            raise ValueError(f"inputs.{unknown[0]}: not an input of {workflow['name']} "
                             f"(inputs: {', '.join(spec['inputs']) or 'none'}, project)")
        values = {**spec["inputs"], **inputs}
        project = values.get("project") or None
        if project is not None and not isinstance(project, str):
            raise ValueError("inputs.project: a project's name")
        # A run works in its project's folder: its tests run there, and its agents without
        # a folder of their own start there — never in the server's own folder.
        used = {n["settings"]["agent"] for n in spec["nodes"]
                if n["kind"] == "agent" and n["settings"]["agent"]}
        homeless = sorted(a for a in used if not spec["agents"][a].get("cwd"))
        why = ("runs tests" if any(n["kind"] == "tests" for n in spec["nodes"]) else
               f"has agents that work in the project's folder ({', '.join(homeless)})"
               if homeless else None)
        if project and project_repo(self.store, project) is None:
            raise ValueError(f"inputs.project: no scanned folder for {project!r} "
                             "(observatory projects scan)")
        if why and not project:
            raise ValueError(f"inputs.project: {workflow['name']} {why}, which needs a "
                             "project with a scanned folder (observatory projects scan)")
        row = {"run_id": "wr-" + uuid.uuid4().hex[:10], "workflow_id": workflow["id"],
               "version": workflow["version"], "name": workflow["name"], "state": "running",
               "inputs": values, "project": project, "started_by": principal.who,
               "created_at": utcnow(), "ended_at": None, "message": None, "cost_usd": 0.0,
               "tokens": 0}
        workflow_writes.save_run(self.store, row).result()  # stored before it is answered
        run = Run(self, row, spec)
        with self._lock:
            self.runs[run.id] = run
        access.record(self.store, principal, "workflow-run", workflow["id"],
                      {"run": run.id, "version": workflow["version"], "inputs": values})
        self._go(run, {"inputs": values, "results": {}, "visits": {}, "trail": []})
        return run.public()

    def list_runs(self, ref: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        self.store.settle()
        workflow_id = self.get(ref)["id"] if ref else None
        df = self.store.sql(
            "SELECT * FROM workflow_runs WHERE (? IS NULL OR workflow_id = ?) "
            "ORDER BY created_at DESC LIMIT ?", [workflow_id, workflow_id, limit])
        out = []
        for row in df.to_dict("records"):
            live = self.runs.get(row["run_id"])
            out.append(live.summary() if live else _public_run(row))
        return out

    def run(self, run_id: str) -> dict[str, Any]:
        """A run with every visit of every step, and its workflow's definition."""
        live = self.runs.get(run_id)
        if live is not None:
            return {**live.public(), "spec": live.spec}
        self.store.settle()
        df = self.store.sql("SELECT * FROM workflow_runs WHERE run_id = ?", [run_id])
        if df.empty:
            raise KeyError(f"no workflow run {run_id!r}")
        row = df.iloc[0].to_dict()
        steps = self.store.sql("SELECT * FROM workflow_steps WHERE run_id = ? "
                               "ORDER BY started_at, visit", [run_id])
        spec = self.get(row["workflow_id"], int(row["version"]))["spec"]
        return {**_public_run(row), "spec": spec,
                "steps": [_iso(plain(r)) for r in steps.to_dict("records")]}

    def cancel(self, principal: Principal, run_id: str) -> dict[str, Any]:
        access.authorize(self.store, principal, "workflow-run", run_id)
        run = self.runs.get(run_id)
        if run is None or run.row["state"] not in OPEN:
            state = run.row["state"] if run else self.run(run_id)["state"]
            raise ValueError(f"cannot cancel workflow run {run_id}: it is {state}")
        run.cancelled.set()
        for ask_id, approval in list(run.filed.items()):
            run.filed.pop(ask_id, None)
            self.supervisor.inbox.cancel(approval, f"workflow run cancelled by {principal.who}")
        if run.row["state"] == "waiting":  # no step is running to see the flag
            self._end(run, "cancelled", f"cancelled by {principal.who}")
        access.record(self.store, principal, "workflow-cancel", run_id)
        return run.public()

    def resume(self, principal: Principal, run_id: str) -> dict[str, Any]:
        """Run a failed or cancelled run again from its last checkpoint: the steps that
        finished are not run again."""
        access.authorize(self.store, principal, "workflow-run", run_id)
        self.run(run_id)  # (a KeyError for a run that does not exist)
        with self._lock:  # checked and set at once: two resumes must not run it twice
            run = self.runs.get(run_id) or self._load_run(run_id)
            if run.row["state"] not in ("failed", "cancelled"):
                raise ValueError(f"cannot resume workflow run {run_id}: it is "
                                 f"{run.row['state']}")
            failed_at = self._failed_step(run)
            run.cancelled.clear()
            run.row.update(state="running", ended_at=None, message=None)
        workflow_writes.save_run(self.store, run.row)
        access.record(self.store, principal, "workflow-resume", run_id)
        self._go(run, failed_at)
        return run.public()

    def _failed_step(self, run: Run) -> dict[str, Any] | None:
        """For a run that ended at a failed step: the checkpoint before that step (LangGraph
        forks from it, so the step runs again); None to go on from the last checkpoint
        (a cancelled step left no result there: it runs again by itself)."""
        graph, config = self._graph(run), self._config(run)
        values = graph.get_state(config).values or {}
        results = values.get("results") or {}
        trail = values.get("trail") or []
        kinds = {x["id"]: x["kind"] for x in run.spec["nodes"]}
        if trail and kinds[trail[-1]] == "end" and run.row.get("state") == "failed":
            raise ValueError(f"cannot resume workflow run {run.id}: its routes ended it at "
                             f"{trail[-1]} — start a new run")
        failed = [n for n in dict.fromkeys(reversed(trail)) if results[n].get("unhandled")]
        if not failed:
            return None
        step = run.steps.get((failed[0], results[failed[0]].get("visit", 1))) or {}
        for key in ("task_id", "test_run_id"):  # (that visit's work ran: it runs anew)
            step.pop(key, None)
        for snapshot in graph.get_state_history(config):
            if failed[0] in snapshot.next:
                return {"fork": snapshot.config}
        return None

    # -- the engine ---------------------------------------------------------------------
    def _go(self, run: Run, value: Any) -> None:
        threading.Thread(target=self._drive, args=(run, value), daemon=True,
                         name=f"workflow-{run.id}").start()

    def _graph(self, run: Run):
        def step(node: dict[str, Any], visit: int, state: dict[str, Any]) -> dict[str, Any]:
            return self._step(run, node, visit, state)

        return build(run.spec, step).compile(checkpointer=self.saver)

    def _config(self, run: Run) -> dict[str, Any]:
        return {"configurable": {"thread_id": run.id}, "recursion_limit": RECURSION_LIMIT}

    def _drive(self, run: Run, value: Any) -> None:
        """Run the graph until it ends or waits for a person."""
        with run.lock:
            if run.row["state"] not in OPEN:
                return
            if run.row["state"] == "waiting":
                run.row["state"] = "running"
                workflow_writes.save_run(self.store, run.row)
            graph, config = self._graph(run), self._config(run)
            if isinstance(value, dict) and "fork" in value:
                config, value = {**value["fork"], "recursion_limit": RECURSION_LIMIT}, None
            try:
                if value is None and not graph.get_state(config).values:
                    # (stopped before its first checkpoint: it starts from the beginning)
                    value = {"inputs": run.row["inputs"], "results": {}, "visits": {},
                             "trail": []}
                for _ in graph.stream(value, config, stream_mode="updates"):
                    pass
                snapshot = graph.get_state(config)
            except Cancelled:
                self._end(run, "cancelled", "cancelled")
                return
            except Exception as err:  # the run fails and says why; the engine goes on
                log.exception("workflow run %s", run.id)
                self._end(run, "failed", f"{type(err).__name__}: {err}"[:2000])
                return
            if run.cancelled.is_set():
                self._end(run, "cancelled", "cancelled")
                return
            asks = [i for task in snapshot.tasks for i in task.interrupts]
            if asks:
                self._wait(run, asks)
                return
            self._finish(run, snapshot.values)

    def _step(self, run: Run, node: dict[str, Any], visit: int, state: dict[str, Any]
              ) -> dict[str, Any]:
        if run.cancelled.is_set():
            raise Cancelled()
        started = run.step(node["id"], visit).get("started_at") or utcnow()
        run.record(node, visit, state="running", started_at=started, ended_at=None)
        t0 = time.time_ns()
        try:
            result = self.steps.run(run, node, visit, state)
        except GraphInterrupt:
            raise
        except Cancelled:
            run.record(node, visit, state="cancelled", ended_at=utcnow())
            raise
        except Exception as err:
            run.record(node, visit, state="failed", outcome="error", ended_at=utcnow(),
                       output=f"{type(err).__name__}: {err}"[:2000])
            self._span(run, node, visit, t0, {"outcome": "error", "output": str(err)})
            raise
        failed = result["outcome"] in _FAILED and node["kind"] not in ("condition",)
        run.record(node, visit, state="failed" if failed else "done",
                   outcome=result["outcome"], ended_at=utcnow(),
                   output=(result.get("output") or "")[-2000:],
                   cost_usd=result.get("cost_usd") or 0.0, tokens=result.get("tokens") or 0,
                   **{k: result[k] for k in ("task_id", "test_run_id", "approval_id",
                                             "agent_id", "session_id") if result.get(k)})
        with self._lock:
            run.row["cost_usd"] = round((run.row["cost_usd"] or 0.0)
                                        + (result.get("cost_usd") or 0.0), 6)
            run.row["tokens"] = int(run.row["tokens"] or 0) + int(result.get("tokens") or 0)
        workflow_writes.save_run(self.store, run.row)
        self._span(run, node, visit, t0, result)
        return result

    def _wait(self, run: Run, asks: list[Any]) -> None:
        """File each interrupt not yet filed as a request in the approvals inbox; its
        answer resumes the run."""
        by_id = {n["id"]: n for n in run.spec["nodes"]}
        for ask in asks:
            if ask.id in run.filed:
                continue
            info = ask.value
            node = by_id[info["node"]]

            def answer(decision: str, message: str, ask_id: str = ask.id) -> None:
                threading.Thread(target=self._answered, args=(run, ask_id, decision, message),
                                 daemon=True, name=f"workflow-{run.id}").start()

            approval = self.supervisor.inbox.ask(
                _Asker(run, node["settings"]), "workflow",
                {"workflow": run.row["name"], "run": run.id, "step": node["id"],
                 "message": info["message"]}, answer, reason=info["message"])
            run.filed[ask.id] = approval
            run.record(node, info["visit"], state="needs approval", approval_id=approval)
        # Waiting only once the requests are stored: whoever sees the run waiting finds
        # its request, in the inbox and — after a crash — in the store.
        self.store.settle()
        run.row["state"] = "waiting"
        workflow_writes.save_run(self.store, run.row)
        self.changed(run)

    def _answered(self, run: Run, ask_id: str, decision: str, message: str) -> None:
        approval = run.filed.pop(ask_id, None)
        self._drive(run, Command(resume={ask_id: {
            "decision": decision, "message": message, "approval_id": approval,
            "who": self._decided_by(approval)}}))

    def _decided_by(self, approval_id: str | None) -> str | None:
        if not approval_id:
            return None
        self.store.settle()  # (the inbox queues the decision before it answers)
        df = self.store.sql("SELECT decided_by FROM approvals WHERE approval_id = ?",
                            [approval_id])
        return None if df.empty else df["decided_by"].iloc[0]

    def _finish(self, run: Run, values: dict[str, Any]) -> None:
        kinds = {n["id"]: n for n in run.spec["nodes"]}
        results, trail = values.get("results") or {}, values.get("trail") or []
        ends = [n for n in trail if kinds[n]["kind"] == "end"]
        stuck = [(j, [e["source"] for e in run.spec["edges"] if e["target"] == j
                      and e["source"] not in results])
                 for j, node in kinds.items() if node["kind"] == "join" and j not in results
                 and any(e["source"] in results for e in run.spec["edges"]
                         if e["target"] == j)]
        if stuck and not ends:
            join, missing = stuck[0]
            self._end(run, "failed", f"join {join} waited for {', '.join(missing)}, which did "
                                     "not run (a join waits for every branch)")
            return
        if ends:
            last = results[ends[-1]]
            state = last["outcome"]
            message = last.get("output") or f"ended at {kinds[ends[-1]]['label']}"
        else:
            broken = [n for n in dict.fromkeys(reversed(trail)) if results[n].get("unhandled")]
            if broken:
                n = broken[0]
                state = "failed"
                message = (f"step {n} {results[n]['outcome']}: "
                           f"{(results[n].get('output') or '')[-300:]}")
            else:
                state, message = "succeeded", f"{len(trail)} steps"
        self._end(run, state, message)

    def _end(self, run: Run, state: str, message: str) -> None:
        run.row.update(state=state, message=message, ended_at=utcnow())
        workflow_writes.save_run(self.store, run.row)
        for (node_id, visit), rec in list(run.steps.items()):
            if rec.get("state") in ("running", "needs approval"):
                node = next(n for n in run.spec["nodes"] if n["id"] == node_id)
                run.record(node, visit, state="cancelled", ended_at=utcnow())
        self._stop_agents(run)
        self._span(run, None, 0, None, {"outcome": state, "output": message})
        self.changed(run)
        with self._lock:  # (an ended run is read from the store: memory stays bounded)
            self.runs.pop(run.id, None)

    def changed(self, run: Run) -> None:
        # The run without its steps: a page asks for what it shows (re-sending every step
        # on each step's change grew with the run), and /ws/agents forwards this to clients.
        self.supervisor.work_changed("workflow-run", run.summary())

    # -- the run's own agents -----------------------------------------------------------
    def agent_for(self, run: Run, name: str):
        """The run's agent ``name`` of the workflow's ``agents``: defined on first use
        (labels only its tasks carry, the run's project and folder), started when it is a
        coding agent (it then waits idle for its tasks)."""
        full = f"{run.id}-{name}"
        sup = self.supervisor
        with self._lock:
            agent = next((a for a in sup.agents.values() if a.spec["name"] == full), None)
            if agent is None:
                definition = dict(run.spec["agents"][name])
                definition.update(name=full, labels=[full])
                definition.setdefault("project", run.project)
                if not definition.get("cwd") and run.folder is not None:
                    definition["cwd"] = str(run.folder)
                agent = sup.define(definition)
        if agent.spec["backend"] != "process" and agent.state in STARTABLE:
            sup.start(agent)
        return agent

    def _stop_agents(self, run: Run) -> None:
        for agent in list(self.supervisor.agents.values()):
            # (an idle coding agent still has its session: it is stopped too)
            if agent.spec["name"].startswith(run.id + "-") and (
                    agent.state in LIVE or agent.backend is not None):
                try:
                    self.supervisor.stop(agent, "its workflow run ended")
                except (ValueError, AttributeError):
                    pass

    def run_counts(self, run_id: str | None) -> dict[str, int]:
        """A stored test run's tallies (``passed``, ``failed``, ``errors``, ``skipped``)."""
        if not run_id:
            return {}
        self.store.settle()
        df = self.store.query("run", run_id=run_id)
        if df.empty:
            return {}
        row = df.iloc[0][["passed", "failed", "errors", "skipped"]]
        return {k: int(v) for k, v in row.items() if v == v and v is not None}

    # -- after a restart ----------------------------------------------------------------
    def _load_run(self, run_id: str) -> Run:
        df = self.store.sql("SELECT * FROM workflow_runs WHERE run_id = ?", [run_id])
        row = plain(df.iloc[0].to_dict())
        row["inputs"] = json.loads(row["inputs"]) if isinstance(row["inputs"], str) else {}
        spec = self.get(row["workflow_id"], int(row["version"]))["spec"]
        run = Run(self, row, spec)
        for rec in self.store.sql("SELECT * FROM workflow_steps WHERE run_id = ?",
                                  [run_id]).to_dict("records"):
            rec = plain(rec)
            run.steps[(rec["node"], int(rec["visit"]))] = rec
        with self._lock:
            self.runs[run.id] = run
        return run

    def _resume_left(self) -> None:
        """Runs the previous process left running or waiting go on from their checkpoint."""
        left = self.store.sql("SELECT run_id FROM workflow_runs WHERE state IN "
                              "('running', 'waiting') ORDER BY created_at")
        for run_id in left["run_id"]:
            run = self._load_run(run_id)
            run.row["state"] = "running"
            log.warning("workflow run %s resumes from its last checkpoint", run_id)
            self._go(run, None)

    # -- traces -------------------------------------------------------------------------
    def _span(self, run: Run, node: dict[str, Any] | None, visit: int, t0: int | None,
              result: dict[str, Any]) -> None:
        """One span per step (child of the run's span, sent when the run ends)."""
        if self.intake is None:
            return
        trace = hashlib.sha256(run.id.encode()).hexdigest()[:32]
        root = hashlib.sha256(("root" + run.id).encode()).hexdigest()[:16]
        end = time.time_ns()
        if node is None:
            created = run.row["created_at"]
            start = int((created - _EPOCH).total_seconds() * 1e9) if hasattr(
                created, "year") else end
            span_id, name, parent = root, f"workflow {run.row['name']}", ""
            attrs = {"workflow.run_id": run.id, "workflow.name": run.row["name"],
                     "workflow.version": run.row["version"],
                     "workflow.cost_usd": run.row["cost_usd"] or 0.0,
                     "workflow.state": result["outcome"]}
        else:
            start, span_id, parent = t0 or end, secrets.token_hex(8), root
            name = f"step {node['id']}"
            attrs = {"workflow.run_id": run.id, "workflow.node": node["id"],
                     "workflow.kind": node["kind"], "workflow.visit": visit,
                     "workflow.outcome": result.get("outcome"),
                     "workflow.cost_usd": result.get("cost_usd") or 0.0}
            for key in ("task_id", "test_run_id", "approval_id", "agent_id", "session_id"):
                if result.get(key):
                    attrs[f"workflow.{key}"] = result[key]
        bad = result.get("outcome") in _FAILED or result.get("outcome") == "cancelled"
        span = {"traceId": trace, "spanId": span_id, "name": name, "kind": 1,
                "startTimeUnixNano": str(start), "endTimeUnixNano": str(max(end, start)),
                "attributes": [_attr(k, v) for k, v in attrs.items()],
                "status": {"code": 2 if bad else 1,
                           "message": (result.get("output") or "")[:500] if bad else ""}}
        if parent:
            span["parentSpanId"] = parent
        body = {"resourceSpans": [{"resource": {"attributes": [
            _attr("service.name", "observatory-workflows")]}, "scopeSpans": [{
                "scope": {"name": "workbench.workflows"}, "spans": [span]}]}]}
        try:
            self.intake.submit_telemetry("traces", json.dumps(body).encode(),
                                         "application/json")
        except Exception as err:  # a busy store loses a span, never the run
            log.warning("workflow span of %s not stored: %s", run.id, err)

    def close(self) -> None:
        for run in self.runs.values():
            run.cancelled.set()


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def diff_specs(old: dict[str, Any], new: dict[str, Any], a: str = "old", b: str = "new"
               ) -> dict[str, Any]:
    """Nodes added, removed and changed, edges added and removed, and a text diff."""
    before = {n["id"]: n for n in old["nodes"]}
    after = {n["id"]: n for n in new["nodes"]}
    changed = []
    for node_id in sorted(set(before) & set(after)):
        fields = [k for k in ("kind", "label", "settings") if before[node_id][k] !=
                  after[node_id][k]]
        if fields:
            changed.append({"id": node_id, "fields": fields})
    edge = lambda e: (e["source"], e["target"], e["when"])  # noqa: E731
    old_edges, new_edges = {edge(e) for e in old["edges"]}, {edge(e) for e in new["edges"]}
    strip = lambda s: json.dumps({**s, "nodes": [{k: v for k, v in n.items()  # noqa: E731
                                                  if k != "position"} for n in s["nodes"]]},
                                 indent=1, sort_keys=True).splitlines(True)
    return {"added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)), "changed": changed,
            "edges_added": [list(e) for e in sorted(new_edges - old_edges, key=str)],
            "edges_removed": [list(e) for e in sorted(old_edges - new_edges, key=str)],
            "moved": sorted(n for n in set(before) & set(after)
                            if before[n]["position"] != after[n]["position"]),
            "text": "".join(difflib.unified_diff(strip(old), strip(new), a, b))}


_EPOCH = datetime(1970, 1, 1)


def _iso(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def _public_workflow(row: dict[str, Any]) -> dict[str, Any]:
    spec = row["spec"] if isinstance(row["spec"], dict) else json.loads(row["spec"])
    created = row.get("created_at")
    return {"id": row["workflow_id"], "version": int(row["version"]), "name": row["name"],
            "description": row.get("description") or "", "spec": spec,
            "created_by": row.get("created_by"),
            "created_at": created.isoformat() if hasattr(created, "isoformat") else created}


def _public_run(row: dict[str, Any]) -> dict[str, Any]:
    out = plain(row)
    if isinstance(out.get("inputs"), str):
        out["inputs"] = json.loads(out["inputs"])
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in out.items()}
    out["id"] = out["run_id"]
    return out
