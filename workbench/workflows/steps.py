"""What each kind of step does, through the control plane that already exists: an agent
step is a task of the work queue, a tests step a test run, an approval a request in the
approvals inbox (LangGraph ``interrupt``), a condition reads an earlier result. Nothing
here starts a process itself.

A step that was under way when the workbench stopped is found again by its record (the
task or test run it started), so a resumed run waits for that one instead of starting a
second; a finished step is never run again (its result is in the checkpoint).
"""

from __future__ import annotations

import re
import shlex
import threading
import time
from typing import Any

from langgraph.types import interrupt

from ..control.access import Principal
from ..control.tasks import OPEN
from .spec import FIELD

#: The engine (runs.Workflows) and a run (runs.Run): passed in, not imported — the engine
#: holds these steps, so an import back would tie the two modules in a circle.
Run = Workflows = Any

#: The failure a task gets when the workbench stopped under it (control/tasks.py).
_RESTARTED = "the workbench restarted while it ran"
_FIELD = FIELD


class Cancelled(Exception):
    """The run was cancelled while this step waited."""


def fill(text: str, state: dict[str, Any]) -> str:
    """``{input}`` and ``{step.output}`` (or ``.outcome``, ``.cost_usd``) filled in;
    anything else is left as written."""
    inputs, results = state.get("inputs") or {}, state.get("results") or {}

    def one(m: re.Match) -> str:
        name, part = m.group(1), m.group(2)
        if part and name in results:
            return str(results[name].get(part, ""))
        if not part and name in inputs:
            return str(inputs[name])
        return m.group(0)

    return _FIELD.sub(one, text)


def fill_command(command: str, state: dict[str, Any]) -> list[str]:
    """A command as its words, each ``{value}`` word (spec.check: a value is a word of its
    own) replaced by the value as one argument — never parsed by a shell — and refused
    where it would be an option (it starts with ``-`` and no ``--`` comes before it)."""
    words, out = shlex.split(command), []
    for word in words:
        filled = fill(word, state) if _FIELD.fullmatch(word) else word
        if filled is not word and filled.startswith("-") and "--" not in out:
            raise ValueError(f"{word} is {filled[:40]!r}: a value, not an option (put -- "
                             "before it in the command if it may start with -)")
        out.append(filled)
    return out


def exit_status(text: str | None, done: bool) -> int | None:
    if done:
        return 0
    m = re.search(r"exit (?:status|code) (-?\d+)", text or "")
    return int(m.group(1)) if m else None


class Steps:
    """The kinds' work for one engine."""

    def __init__(self, engine: Workflows) -> None:
        self.engine = engine
        self.queue = engine.supervisor.tasks
        self._task_done: dict[str, threading.Event] = {}
        engine.supervisor.on_work(self._work)

    def _work(self, kind: str, item: dict[str, Any]) -> None:
        if kind == "task" and item.get("state") not in OPEN:
            event = self._task_done.get(item.get("id") or "")
            if event is not None:
                event.set()

    def run(self, run: Run, node: dict[str, Any], visit: int, state: dict[str, Any]
            ) -> dict[str, Any]:
        return getattr(self, "_" + node["kind"])(run, node, visit, state)

    # -- kinds --------------------------------------------------------------------------
    def _agent(self, run: Run, node: dict[str, Any], visit: int, state) -> dict[str, Any]:
        s = node["settings"]
        record = run.step(node["id"], visit)
        task_id = record.get("task_id")
        task = self.queue.tasks.get(task_id) if task_id else None
        if task is not None and task["state"] == "failed" and \
                (task["failure"] or "").startswith(_RESTARTED):
            self.queue.retry(task_id)  # it never finished: run it again, once
        elif task is None or task["state"] in ("cancelled", "expired"):
            # (none yet; or the run was cancelled under it, and is resumed: a new one)
            labels, project = list(s["labels"]), None
            if s["agent"]:
                agent = self.engine.agent_for(run, s["agent"])
                labels, project = agent.spec["labels"], agent.spec.get("project")
            body: dict[str, Any] = {"labels": labels, "project": project,
                                    "priority": s["priority"]}
            if s["prompt"].strip():
                body["prompt"] = fill(s["prompt"], state)
            else:
                body["command"] = fill_command(s["command"], state)
            budget = {k: v for k, v in (("cost_usd", s["budget_cost_usd"]),
                                        ("seconds", s["budget_s"])) if v}
            if budget:
                body["budget"] = budget
            task_id = self.queue.add(body, f"workflow:{run.id}", internal=True)["id"]
            # (an end before the event is registered is seen by the loop's first look)
            run.record(node, visit, state="running", task_id=task_id)
        event = self._task_done.setdefault(task_id, threading.Event())
        try:
            while self.queue.tasks[task_id]["state"] in OPEN:
                if run.cancelled.is_set():
                    self.queue.cancel(task_id)
                    raise Cancelled()
                event.wait(0.5)
                event.clear()
                task = self.queue.tasks[task_id]
                agent = self.engine.supervisor.agents.get(task["agent_id"] or "")
                if agent is not None and record.get("agent_id") != agent.id:
                    record = run.record(node, visit, agent_id=agent.id,
                                        session_id=agent.session_id)
        finally:
            self._task_done.pop(task_id, None)
        task = self.queue.tasks[task_id]
        done = task["state"] == "done"
        output = (task["result"] if done else task["failure"]) or ""
        tokens = 0
        if task["started_at"] and task["prompt"] is not None:  # (a command has none)
            tokens = self.queue.detail(task_id).get("tokens") or 0
        elif task["started_at"]:
            printed = self._printed(task)
            output = printed + ("" if done or not output else f"\n{output}") if printed \
                else output
        return {"outcome": "ok" if done else "failed", "output": output[-2000:],
                "exit_status": exit_status(output, done), "cost_usd": task["cost_usd"] or 0.0,
                "tokens": tokens, "task_id": task_id, "agent_id": task["agent_id"],
                "session_id": task["session_id"]}

    def _printed(self, task: dict[str, Any]) -> str:
        """What a command printed while it ran its task (its agent's log events)."""
        store = self.engine.store
        store.settle()
        df = store.query("agent_events_between", agent_ids=[task["agent_id"]], kinds=["log"],
                         since=task["started_at"], until=task["ended_at"], newest=200)
        return "\n".join(df["text"].tolist())[-2000:]

    def _tests(self, run: Run, node: dict[str, Any], visit: int, state) -> dict[str, Any]:
        s, runs = node["settings"], self.engine.test_runs
        if not run.project or not run.folder:
            return {"outcome": "error", "output": "the run has no project with a scanned "
                    "folder (give the input project)"}
        record = run.step(node["id"], visit)
        test_run = record.get("test_run_id")
        note = ""
        if test_run:
            try:
                earlier = runs.get(test_run)["state"]
            except KeyError:
                earlier = "lost"
            if earlier in ("cancelled", "lost"):
                test_run = None  # (cancelled under a cancelled run, or lost to a restart)
        if not test_run:
            tests = [fill(t, state) for t in s["tests"]]
            if s["select"]:
                tests, note = self._selected(run, s)
            principal = Principal(f"workflow:{run.id}", "operator")
            row = runs.submit(principal, run.project, run.folder, tests,
                              s["command"] or None, s["junit"] or None)
            test_run = row["id"]
            run.record(node, visit, state="running", test_run_id=test_run)
        while True:
            row = runs._rows.get(test_run) or runs.get(test_run)
            if row["state"] not in ("queued", "running"):
                break
            if run.cancelled.is_set():
                runs.cancel(Principal(f"workflow:{run.id}", "operator"), test_run)
                raise Cancelled()
            time.sleep(0.1)
        row = runs.get(test_run)
        counts = self.engine.run_counts(row.get("run_id"))
        outcome = {"passed": "passed", "failed": "failed"}.get(row["state"], "error")
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or row["state"]
        # (the last line is what the canvas shows: the tally, after how it ran)
        output = "\n".join(filter(None, [row.get("message") or "",
                                          "; ".join(filter(None, [note, summary]))]))
        return {"outcome": outcome, "output": output, "test_run_id": test_run,
                "run_id": row.get("run_id"), "exit_status": row.get("exit_code"),
                "passed": counts.get("passed", 0), "failed": counts.get("failed", 0),
                "cost_usd": 0.0}

    def _selected(self, run: Run, s: dict[str, Any]) -> tuple[list[str], str]:
        from ..git import GitError
        from ..selection.select import is_pytest_id, select_tests

        try:
            ranked = select_tests(self.engine.store, run.project, run.folder, s["base"],
                                  None, None, s["top"])
        except (GitError, ValueError) as err:
            return [], f"selection failed ({err}): the whole suite"
        tests = [r["test"] for r in ranked["ranking"] if is_pytest_id(r["test"])]
        return tests, (f"{len(tests)} selected" if tests else "nothing selected: the whole "
                       "suite")

    def _approval(self, run: Run, node: dict[str, Any], visit: int, state) -> dict[str, Any]:
        s = node["settings"]
        answer = interrupt({"node": node["id"], "label": node["label"],
                            "message": fill(s["message"], state), "visit": visit})
        allowed = answer.get("decision") in ("allow", "allow_session")
        return {"outcome": "allowed" if allowed else "denied",
                "output": f"{answer.get('decision')} by {answer.get('who') or 'a person'}"
                          + (f": {answer['message']}" if answer.get("message") else ""),
                "approval_id": answer.get("approval_id"), "cost_usd": 0.0}

    def _condition(self, run: Run, node: dict[str, Any], visit: int, state) -> dict[str, Any]:
        s = node["settings"]
        seen = (state.get("results") or {}).get(s["step"])
        if seen is None:
            yes, why = False, f"{s['step']} has not run"
        else:
            yes, why = _check(s["check"], s["value"], seen)
        outcome = "yes" if yes else ("exhausted" if visit > s["max_iterations"] else "no")
        if outcome == "exhausted":
            why += f" (visit {visit} of at most {s['max_iterations']})"
        return {"outcome": outcome, "output": why, "cost_usd": 0.0}

    def _parallel(self, run: Run, node: dict[str, Any], visit: int, state) -> dict[str, Any]:
        return {"outcome": "ok", "output": "", "cost_usd": 0.0}

    def _join(self, run: Run, node: dict[str, Any], visit: int, state) -> dict[str, Any]:
        results = state.get("results") or {}
        inputs = [e["source"] for e in run.spec["edges"] if e["target"] == node["id"]]
        bad = [n for n in inputs if (results.get(n) or {}).get("unhandled")]
        return {"outcome": "failed" if bad else "ok", "cost_usd": 0.0,
                "output": f"failed: {', '.join(bad)}" if bad else f"{len(inputs)} branches"}

    def _end(self, run: Run, node: dict[str, Any], visit: int, state) -> dict[str, Any]:
        s = node["settings"]
        return {"outcome": s["status"], "output": fill(s["message"], state), "cost_usd": 0.0}


def _check(check: str, value: str, seen: dict[str, Any]) -> tuple[bool, str]:
    if check == "outcome":
        return seen.get("outcome") == value, f"outcome {seen.get('outcome')}"
    if check == "exit_status":
        status = seen.get("exit_status")
        return str(status) == value.strip(), f"exit status {status}"
    if check == "tests_passed":
        return seen.get("outcome") == "passed", (
            f"{seen.get('passed', 0)} passed, {seen.get('failed', 0)} failed")
    if check == "cost_below":
        cost = float(seen.get("cost_usd") or 0.0)
        return cost < float(value), f"cost ${cost:.4f}"
    found = re.search(value, seen.get("output") or "")
    return found is not None, f"output {'matches' if found else 'does not match'} /{value}/"
