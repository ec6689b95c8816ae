"""The "needs you" inbox: every permission request from any agent, decided by a policy
rule, by a person (allow, allow for the session, deny with a message), or by the rule's
time-out action. Each request is stored; its answer goes back to the agent at once.

Rules are read in the order ``rules_for`` gives: the built-in deny rules first, so that no
agent policy (not even ``{"tool": "*", "action": "allow"}``) allows what they deny; then the
agent's own rules; then any other built-in rule."""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
import shlex
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import utcnow
from .deletes import forced_delete

DECISIONS = ("allow", "allow_session", "deny")

#: Checks a built-in rule may name as its ``test``, besides (or instead of) an ``input``
#: expression: the request's text matches when the check returns true. Rules name them so
#: that a rule stays plain JSON.
TESTS: dict[str, Callable[[str], bool]] = {"forced_delete": forced_delete}

#: Rules every agent gets. The deny rules among them are read before the agent's own rules
#: (see ``rules_for``): recursive forced deletes are refused outright, whatever the policy
#: (``deletes.forced_delete`` reads the command: ``rm -Rf``, ``rm -r -f``, ``sudo rm -rf``,
#: ``sh -c 'rm -rf ...'``, ``find / -delete`` ...).
DEFAULT_RULES: list[dict[str, Any]] = [
    {"tool": "Bash|exec_command|shell", "action": "deny", "test": "forced_delete",
     "message": "recursive forced delete is denied by the workbench's default policy"},
]


def input_text(tool: str, value: Any) -> str:
    """What a person reads: the command, a diff for an edit, else the input as JSON."""
    if isinstance(value, dict):
        if tool == "workflow" and isinstance(value.get("message"), str):
            return f"{value.get('workflow')} · {value.get('step')}: {value['message']}"
        for key in ("command", "cmd"):  # Claude Code's Bash, Codex's exec_command
            if isinstance(value.get(key), str | list):
                cmd = value[key]  # a list is an argv: quoted, so that it reads as it runs
                return cmd if isinstance(cmd, str) else shlex.join(map(str, cmd))
        if "old_string" in value and "new_string" in value:
            path = str(value.get("file_path", "file"))
            return "".join(difflib.unified_diff(
                str(value["old_string"]).splitlines(True), str(value["new_string"]).splitlines(
                    True), fromfile=path, tofile=path))
        if "content" in value and "file_path" in value:
            return f"write {value['file_path']}:\n{str(value['content'])[:4000]}"
    return json.dumps(value, default=str)[:4000]


def rules_for(policy_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules a request is matched against, in order: the built-in deny rules, then the
    agent's own ``policy_rules``, then the other built-in rules. An agent's rule can refine
    what a person is asked, never allow what a built-in rule denies."""
    builtin_denies = [r for r in DEFAULT_RULES if r["action"] == "deny"]
    return builtin_denies + list(policy_rules) + [r for r in DEFAULT_RULES
                                                  if r["action"] != "deny"]


def match(rules: list[dict[str, Any]], tool: str, text: str) -> dict[str, Any] | None:
    """The first rule whose tool pattern, input expression and test (a name in ``TESTS``)
    all match; a rule without an expression or a test matches any input."""
    for rule in rules:
        tools = (rule.get("tool") or "*").split("|")
        if not any(fnmatch.fnmatchcase(tool, t) for t in tools):
            continue
        if rule.get("input") and not re.search(rule["input"], text):
            continue
        if rule.get("test") and not TESTS[rule["test"]](text):
            continue
        return rule
    return None


def describe(rule: dict[str, Any]) -> str:
    """Who decided, for the approval's ``decided_by``: ``policy:`` and the rule."""
    parts = [rule.get("tool") or "*", rule.get("input") or "",
             f"[{rule['test']}]" if rule.get("test") else ""]
    return "policy: " + " ".join(p for p in parts if p).strip()


@dataclass
class Pending:
    row: dict[str, Any]
    answer: Callable[[str, str], None]
    timeout_s: float | None
    timeout_action: str
    since: float = field(default_factory=time.monotonic)
    held: bool = False
    #: An answer given while the agent was paused, delivered when it resumes.
    deferred: tuple[str, str, str] | None = None


class Inbox:
    """Pending requests in memory (their answer callbacks), every request in the store."""

    def __init__(self, save: Callable[[dict[str, Any]], None],
                 changed: Callable[[str], None]) -> None:
        self._save = save
        self._changed = changed
        self._pending: dict[str, Pending] = {}
        self._session_allows: set[tuple[str, str | None, str]] = set()
        self._lock = threading.Lock()

    def ask(self, agent, tool: str, tool_input: Any, answer: Callable[[str, str], None],
            reason: str | None = None) -> str:
        """File one request; a rule or an earlier "allow for the session" may answer it at
        once. Returns the approval id.

        The rules are ``rules_for(policy rules)``: the built-in deny rules come before the
        agent's own, so its policy cannot allow a recursive forced delete; a rule decides
        before an "allow for the session" does."""
        text = input_text(tool, tool_input)
        row = {"approval_id": "ap-" + uuid.uuid4().hex[:12], "agent_id": agent.id,
               "session_id": agent.session_id, "project": agent.spec.get("project"),
               "tool": tool, "input": tool_input, "text": text, "reason": reason,
               "state": "pending", "message": None, "decided_by": None,
               "created_at": utcnow(), "decided_at": None}
        policy = agent.spec["policy"]
        rule = match(rules_for(policy.get("rules") or []), tool, text)
        with self._lock:
            allowed = (agent.id, agent.session_id, tool) in self._session_allows
        if rule is not None and not agent.paused:
            self._finish(row, answer, rule["action"], rule.get("message") or "",
                         describe(rule))
        elif rule is not None and rule["action"] == "deny":
            # Paused: the agent hears the answer when it resumes, but it is decided now —
            # nobody can allow, while it waits, what a rule denies.
            row.update(decision="deny", message=rule.get("message") or None,
                       decided_by=describe(rule))
            with self._lock:
                self._pending[row["approval_id"]] = Pending(
                    row, answer, None, "deny", held=True,
                    deferred=("deny", rule.get("message") or "", describe(rule)))
            self._save(row)
            self._changed(agent.id)
        elif allowed and not agent.paused:
            self._finish(row, answer, "allow", "", "allowed for the session")
        else:
            with self._lock:
                self._pending[row["approval_id"]] = Pending(
                    row, answer, policy.get("timeout_s"), policy.get("timeout_action", "deny"),
                    held=agent.paused)
            self._save(row)
            self._changed(agent.id)
        return row["approval_id"]

    def decide(self, approval_id: str, decision: str, message: str, who: str) -> dict:
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        with self._lock:
            pending = self._pending.get(approval_id)
            if pending is not None and pending.deferred and \
                    pending.deferred[2].startswith("policy"):
                raise ValueError(f"approval {approval_id} was decided by {pending.deferred[2]}"
                                 f" ({pending.deferred[0]}); it is delivered when the agent "
                                 "resumes")
            pending = self._pending.pop(approval_id, None)
            if pending is not None and decision == "allow_session":
                r = pending.row
                self._session_allows.add((r["agent_id"], r["session_id"], r["tool"]))
        if pending is None:
            raise KeyError(f"no pending approval {approval_id!r}")
        if pending.held:
            # The agent is paused at this request: the answer waits for the resume.
            pending.deferred = (decision, message, who)
            pending.row.update(decision=decision, message=message or None, decided_by=who)
            with self._lock:
                self._pending[approval_id] = pending
            self._changed(pending.row["agent_id"])
            return {**pending.row, "held": True}
        self._finish(pending.row, pending.answer, decision, message, who)
        return pending.row

    def _finish(self, row: dict[str, Any], answer: Callable[[str, str], None], decision: str,
                message: str, who: str) -> None:
        row.update(state="denied" if decision == "deny" else "allowed", message=message or None,
                   decided_by=who, decided_at=utcnow(), decision=decision)
        self._save(row)  # (queued before the answer: an asker may read who decided)
        answer(decision, message)
        self._changed(row["agent_id"])

    def pending(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p.row, held=p.held) for p in self._pending.values()
                    if agent_id in (None, p.row["agent_id"])]

    def hold(self, agent_id: str) -> None:
        """An agent paused: answers to its waiting requests wait for its resume."""
        with self._lock:
            for p in self._pending.values():
                if p.row["agent_id"] == agent_id:
                    p.held = True

    def release(self, agent_id: str) -> None:
        """An agent resumed: the answers given while it was paused go to it now; its other
        held requests wait for a person (or their time-out) again."""
        with self._lock:
            answered = []
            for key, p in list(self._pending.items()):
                if p.row["agent_id"] == agent_id:
                    p.held = False
                    if p.deferred is not None:
                        answered.append(self._pending.pop(key))
        for p in answered:
            decision, message, who = p.deferred
            self._finish(p.row, p.answer, decision, message, who)

    def drop(self, agent_id: str, why: str) -> None:
        """The agent's session ended: its requests can no longer be answered."""
        with self._lock:
            gone = [k for k, p in self._pending.items() if p.row["agent_id"] == agent_id]
            rows = [self._pending.pop(k).row for k in gone]
        for row in rows:
            row.update(state="expired", message=why, decided_by="workbench",
                       decided_at=utcnow())
            self._save(row)

    def cancel(self, approval_id: str, why: str) -> None:
        """One request can no longer be answered (its asker hung up)."""
        with self._lock:
            pending = self._pending.pop(approval_id, None)
        if pending is not None:
            pending.row.update(state="expired", message=why, decided_by="workbench",
                               decided_at=utcnow())
            self._save(pending.row)
            self._changed(pending.row["agent_id"])

    def expire(self) -> None:
        """Answer the requests older than their policy's time-out with its action."""
        now = time.monotonic()
        with self._lock:
            due = [k for k, p in self._pending.items()
                   if p.timeout_s and now - p.since >= p.timeout_s and not p.held]
            items = [self._pending.pop(k) for k in due]
        for p in items:
            self._finish(p.row, p.answer, p.timeout_action,
                         f"no answer within {p.timeout_s:g} s", "policy: time-out")


def approval_json(row: dict[str, Any]) -> dict[str, Any]:
    """An approval as the API shows it: times as ISO strings, its ``id``."""
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
    out["id"] = out["approval_id"]
    return out
