"""Alert rules that act: evaluated continuously over what agents do and what the store
holds, firing alerts with their evidence, and pausing or stopping an agent until a person
looks.

Evaluation is incremental so that it costs ingest nothing measurable: each agent event
(the same ones the store gets) updates small in-memory windows — tool calls, tool results,
cost and tokens, edits — and the event-driven rules (state, loop) are decided right there,
within the event's own thread. A tick each second decides the time-driven ones (staleness,
thresholds, stalls) from those windows; the rules over test results (test health, a
failing test re-run without a code change, stalls' passing tests) query the store only when
its ``tests`` data version moved, at most every few seconds. An alert stays open — one per
rule and agent — until a person resolves it, or its agent's run ends (:meth:`AlertEngine.ended`:
an alert follows its agent).

:meth:`AlertEngine.preview` evaluates a rule, saved or not, over the last day's stored events
and samples (analysis/alert_preview.py): what it would have fired on.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import param

from .. import plugins
from ..analysis import alert_preview, units
from ..analysis.edits import edited_paths
from ..config import utcnow
from ..store import control_writes
from . import access
from .access import Principal
from .spec import STATES, _params

log = logging.getLogger("workbench.control")

KINDS = ("state", "stale", "threshold", "loop", "test_loop", "stall", "test_health",
         "storage")
METRICS = ("cost_per_hour", "tokens_per_minute", "cpu_percent", "rss_mb", "tool_failure_rate",
           "wal_mb", "disk_free_percent", "file_bloat")
#: The metrics of the database file a ``storage`` rule reads (not an agent's), and those of
#: them that are bad when low.
STORAGE_METRICS = ("wal_mb", "disk_free_percent", "file_bloat")
LOW_IS_BAD = ("disk_free_percent",)
#: The subject of the alerts about the database file (where an agent's id stands).
STORE = "store"
ACTIONS = ("notify", "pause", "stop")
#: Actions other packages add (``happy_observatory.alert_actions``: ``fn(alert)``), by name.
PLUGIN_ACTIONS: dict[str, Any] = {
    name: fn for name, fn in plugins.working("happy_observatory.alert_actions").items()
    if name not in ACTIONS}
#: Seconds between two queries of the store for the test-result rules.
TEST_QUERY_S = 3.0
#: Repeats of one tool call kept per agent (a loop rule's ``count`` above it never fires),
#: and distinct calls kept per agent (the least recent are forgotten).
MAX_REPEATS = 1000
MAX_CALLS = 5000
#: The states that end an agent's run: its alerts then resolve (see AlertEngine.ended).
ENDED = ("stopped", "completed", "error", "lost")
#: Seconds of stored history a preview evaluates; rows of it a preview lists at most.
PREVIEW_S = 86400.0
PREVIEW_ROWS = 200


class AlertRule(param.Parameterized):
    """One rule (see README, "Alert rules"): what it watches, and what it does."""

    kind = param.Selector(default="state", objects=list(KINDS))
    enabled = param.Boolean(True)
    agents = param.String("*", doc="which agents, a glob over their names")
    severity = param.Selector(default="warning", objects=["info", "warning", "critical"])
    actions = param.ListSelector(default=["notify"], objects=[*ACTIONS, *PLUGIN_ACTIONS])
    states = param.ListSelector(default=["error", "lost"], objects=list(STATES),
                                doc="state: the states that fire")
    metric = param.Selector(default="cost_per_hour", objects=list(METRICS),
                            doc="threshold: what is measured over the window")
    threshold = param.Number(5.0, doc="threshold: fires above this")
    window_s = param.Number(600.0, bounds=(1, 7 * 86400), doc="the window, in seconds")
    count = param.Integer(5, bounds=(1, 1000),
                          doc="loop/test_loop: how many repeats; threshold: least samples")
    minutes = param.Number(10.0, bounds=(0.01, 7 * 1440),
                           doc="stale/stall: minutes without an event / progress")


#: The fields of :class:`AlertRule` each kind reads, beyond those every rule has (the form
#: shows these; the others keep their values).
COMMON_FIELDS = ("kind", "enabled", "agents", "severity", "actions")
KIND_FIELDS = {"state": ("states",), "stale": ("minutes",),
               "threshold": ("metric", "threshold", "window_s", "count"),
               "loop": ("count", "window_s"), "test_loop": ("count", "window_s"),
               "stall": ("minutes",), "test_health": (),
               "storage": ("metric", "threshold")}


DEFAULT_RULES = [
    {"rule_id": "agent-error-or-lost", "name": "agent error or lost", "kind": "state",
     "states": ["error", "lost"], "severity": "critical", "actions": ["notify"]},
    {"rule_id": "tool-loop", "name": "loop: same tool call 5 times in 10 minutes",
     "kind": "loop", "count": 5, "window_s": 600, "severity": "critical",
     "actions": ["notify", "pause"]},
    {"rule_id": "disk-nearly-full", "name": "disk under 10 % free", "kind": "storage",
     "metric": "disk_free_percent", "threshold": 10.0, "severity": "critical",
     "actions": ["notify"]},
    {"rule_id": "wal-large", "name": "write-ahead log over 512 MB", "kind": "storage",
     "metric": "wal_mb", "threshold": 512.0, "severity": "warning", "actions": ["notify"]},
    {"rule_id": "cost-per-hour", "name": "cost per hour over $5", "kind": "threshold",
     "metric": "cost_per_hour", "threshold": 5.0, "window_s": 3600, "severity": "critical",
     "actions": ["notify", "pause"]},
]


def check_rule(value: Any) -> dict[str, Any]:
    """A complete rule from a client's (ValueError naming the field)."""
    if not isinstance(value, dict):
        raise ValueError("an alert rule must be a JSON object")
    body = {k: v for k, v in value.items() if k not in ("name", "rule_id", "id")}
    name = value.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise ValueError("name: a string of 1 to 120 characters is required")
    rule = _params(AlertRule, body, "rule")
    if (rule["kind"] == "storage") != (rule["metric"] in STORAGE_METRICS) and (
            rule["kind"] in ("storage", "threshold")):
        raise ValueError(f"metric: a {rule['kind']} rule measures "
                         + ", ".join(STORAGE_METRICS if rule["kind"] == "storage" else
                                     [m for m in METRICS if m not in STORAGE_METRICS]))
    if rule["kind"] == "storage" and set(rule["actions"]) & {"pause", "stop"}:
        raise ValueError("actions: a storage rule cannot pause or stop (it watches no agent)")
    rule_id = value.get("rule_id") or value.get("id") or "rule-" + uuid.uuid4().hex[:8]
    if not isinstance(rule_id, str) or not rule_id.replace("-", "").isalnum() or \
            len(rule_id) > 60:
        raise ValueError("rule_id: letters, digits and dashes, at most 60")
    return {"rule_id": rule_id, "name": name.strip(), **rule}


class Window:
    """What one agent did lately, kept in memory for the rules."""

    def __init__(self, cost: float = 0.0) -> None:
        now = time.time()
        #: Each distinct tool call's recent times: a loop rule reads only its own call's.
        self.calls: OrderedDict[str, deque[tuple[float, dict]]] = OrderedDict()
        self.tool_results: deque[tuple[float, bool]] = deque(maxlen=2000)
        self.costs: deque[tuple[float, float]] = deque(maxlen=5000)
        self.tokens: deque[tuple[float, int]] = deque(maxlen=5000)
        self.samples: deque[tuple[float, float, float]] = deque(maxlen=7200)
        self.last_event = now
        #: The latest event as ``(kind, text, time.time())``: kept raw, because every
        #: line an agent prints passes here (2,000 a second for 20 chatty agents) and only
        #: a silence rule that fires reads it (:attr:`last_seen`).
        self.seen: tuple[str, str, float] | None = None
        self.last_edit = now
        self.started = now
        self.costs.append((now, cost))  # the baseline: spending is measured from here

    @property
    def last_seen(self) -> dict[str, Any] | None:
        """The latest event, as a silence alert's evidence shows it."""
        if self.seen is None:
            return None
        kind, text, at = self.seen
        return {"kind": kind, "text": text[:300],
                "at": _ts(at).isoformat()}


class AlertEngine:
    """The rules, the open alerts, and what fires them."""

    def __init__(self, supervisor, webhooks, tick_s: float = 1.0) -> None:
        self.sup = supervisor
        self.store = supervisor.store
        self.webhooks = webhooks
        self.tick_s = tick_s
        self.rules: dict[str, dict[str, Any]] = {}
        self._matching: dict[tuple[str, str], list[dict[str, Any]]] = {}
        rows = self.store.sql("SELECT rule FROM alert_rules ORDER BY created_at")
        for raw in rows["rule"]:
            rule = json.loads(raw)
            self.rules[rule["rule_id"]] = rule
        if rows.empty:  # first start: the shipped rules, editable like any other
            for rule in DEFAULT_RULES:
                self._save_rule(check_rule(rule), created=True)
        self.open: dict[tuple[str, str], dict[str, Any]] = {}
        alerts = self.store.sql("SELECT * FROM alerts WHERE state <> 'resolved'")
        for row in alerts.to_dict("records"):
            self.open[(row["rule_id"], row["agent_id"])] = _alert_row(row)
        self.windows: dict[str, Window] = {}
        #: The open alerts whose rule stopped their agent (kept open past that ending).
        self._stopped: set[str] = set()
        self.evaluations = 0
        self._lock = threading.RLock()
        self._tests_version = -1
        self._tests: dict[str, dict[str, Any]] = {}
        self._tests_checked = 0.0
        self._closed = threading.Event()
        supervisor.on_event(self.on_event)
        threading.Thread(target=self._run, name="alert-rules", daemon=True).start()

    # -- rules --------------------------------------------------------------------------
    def _save_rule(self, rule: dict[str, Any], created: bool) -> None:
        self.rules[rule["rule_id"]] = rule
        self._matching = {}
        now = utcnow()
        control_writes.submit(
            self.store, "INSERT OR REPLACE INTO alert_rules VALUES (?, ?, coalesce("
            "(SELECT created_at FROM alert_rules WHERE rule_id = ?), ?), ?)",
            [rule["rule_id"], json.dumps(rule), rule["rule_id"], now, now])

    def put_rule(self, value: Any) -> dict[str, Any]:
        rule = check_rule(value)
        self._save_rule(rule, created=rule["rule_id"] not in self.rules)
        return rule

    def delete_rule(self, rule_id: str) -> None:
        if self.rules.pop(rule_id, None) is None:
            raise KeyError(f"no alert rule {rule_id!r}")
        self._matching = {}
        control_writes.submit(self.store, "DELETE FROM alert_rules WHERE rule_id = ?", [rule_id])

    def _rules(self, kind: str, agent) -> list[dict[str, Any]]:
        """The enabled rules of ``kind`` that watch ``agent`` (kept until a rule changes:
        this runs for every event)."""
        key = (kind, agent.spec["name"])
        found = self._matching.get(key)
        if found is None:
            found = self._matching[key] = [
                r for r in list(self.rules.values()) if r["kind"] == kind and r["enabled"]
                and fnmatch.fnmatchcase(agent.spec["name"], r["agents"])]
        return found

    # -- events (the agent's own thread: cheap) -----------------------------------------
    def window(self, agent) -> Window:
        w = self.windows.get(agent.id)
        if w is None:
            w = self.windows[agent.id] = Window(agent.cost_usd)
        return w

    def on_event(self, agent, kind: str, text: str, data: dict[str, Any] | None) -> None:
        now = time.time()
        w = self.window(agent)
        w.last_event = now
        w.seen = (kind, text, now)
        data = data or {}
        self.evaluations += 1
        if kind == "state":
            if data.get("to") == "starting":
                w.started = w.last_edit = now
            if data.get("to") in ENDED:
                self.ended(agent, data["to"])  # (before this ending fires its own)
            for rule in self._rules("state", agent):
                if data.get("to") in rule["states"]:
                    self.fire(rule, agent, f"{agent.spec['name']} is {data.get('to')}"
                              + (f": {data.get('error')}" if data.get("error") else ""),
                              [{"kind": kind, "text": text, "at": utcnow().isoformat()}])
        elif kind == "tool_use":
            tool, tool_input = str(data.get("tool")), data.get("input") or {}
            if edited_paths(tool, tool_input, agent.spec.get("cwd")):
                w.last_edit = now
            key = tool + " " + json.dumps(tool_input, sort_keys=True, default=str)[:2000]
            times = w.calls.pop(key, None) or deque(maxlen=MAX_REPEATS)
            w.calls[key] = times  # (the most recent last: the oldest calls are dropped)
            if len(w.calls) > MAX_CALLS:
                w.calls.popitem(last=False)
            times.append((now, {"at": utcnow().isoformat(), "text": text[:300],
                                "tool_use_id": data.get("id")}))
            self._loop(agent, times, now)
        elif kind == "tool_result":
            w.tool_results.append((now, bool(data.get("is_error") or
                                              (data.get("exit_code") not in (None, 0)))))
        elif kind == "result":
            self._cost(agent, w, now)
            usage = data.get("usage") or {}
            total = sum(v for k, v in usage.items() if isinstance(v, int) and "tokens" in k)
            if total:
                w.tokens.append((now, total))

    @staticmethod
    def _cost(agent, w: Window, now: float) -> None:
        if w.costs[-1][1] != agent.cost_usd:
            w.costs.append((now, agent.cost_usd))

    def _loop(self, agent, times: deque, now: float) -> None:
        for rule in self._rules("loop", agent):
            same = [e for t, e in times if t >= now - rule["window_s"]]
            if len(same) >= rule["count"]:
                self.fire(rule, agent, f"{agent.spec['name']} made the same tool call "
                          f"{len(same)} times in {rule['window_s']:g} s: {same[-1]['text']}",
                          same[-rule["count"]:])

    # -- the tick (time-driven rules) ---------------------------------------------------
    def _run(self) -> None:
        while not self._closed.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # the rules must outlive one bad evaluation
                log.exception("alert rules")

    def tick(self) -> None:
        now = time.time()
        live = [a for a in list(self.sup.agents.values()) if a.backend is not None]
        for agent in live:
            w = self.window(agent)
            self._cost(agent, w, now)
            if agent.sample:
                w.samples.append((now, agent.sample["cpu_percent"],
                                  agent.sample["rss_bytes"] / 2**20))
            self.evaluations += 1
            for rule in self._rules("stale", agent):
                quiet = now - w.last_event
                if agent.state == "running" and quiet > rule["minutes"] * 60:
                    self.fire(rule, agent, f"{agent.spec['name']} has been silent for "
                              + (f"{quiet / 60:.1f} minutes" if quiet >= 60
                                 else f"{quiet:.0f} s") + " while running",
                              [{"last_event": w.last_seen, "silent_s": round(quiet, 1)}])
            for rule in self._rules("threshold", agent):
                value, evidence = self.measure(rule, w, now)
                if value is not None and value > rule["threshold"]:
                    self.fire(rule, agent, f"{agent.spec['name']}: {rule['metric']} "
                              f"{units.metric(rule['metric'], value)} > "
                              f"{units.metric(rule['metric'], rule['threshold'])}", evidence)
        version = self.store.versions.get("tests", 0)
        if version != self._tests_version and now - self._tests_checked >= TEST_QUERY_S:
            self._tests_version, self._tests_checked = version, now
            self._load_tests(live, now)
            for agent in live:
                self._test_rules(agent, now)
        for agent in live:
            self._stall(agent, now)

    def measure(self, rule: dict[str, Any], w: Window, now: float):
        """``(value, evidence)`` of a threshold rule's metric over its window."""
        span = rule["window_s"]
        start = now - span
        metric = rule["metric"]
        if metric == "cost_per_hour":
            before = [c for t, c in w.costs if t < start]
            inside = [(t, c) for t, c in w.costs if t >= start]
            if not inside:
                return None, []
            spent = inside[-1][1] - (before[-1] if before else inside[0][1])
            return spent * 3600 / span, [{"cost_usd": c, "seconds_ago": round(now - t, 1)}
                                         for t, c in inside[-10:]]
        if metric == "tokens_per_minute":
            inside = [n for t, n in w.tokens if t >= start]
            return (sum(inside) * 60 / span if inside else None), [{"tokens": sum(inside)}]
        if metric in ("cpu_percent", "rss_mb"):
            if not w.samples or w.samples[0][0] > start + span * 0.1:
                return None, []  # the window is not covered yet (a start is a spike)
            col = 1 if metric == "cpu_percent" else 2
            values = [s[col] for s in w.samples if s[0] >= start]
            if len(values) < rule["count"]:
                return None, []
            # (the evidence names what its number is — a CPU share in points, or MB — so
            # that a view shows it in its unit; rounded as people read it)
            mean = sum(values) / len(values)
            return mean, [{metric: round(mean, 2), "samples": len(values)}]
        results = [err for t, err in w.tool_results if t >= start]
        if len(results) < rule["count"]:
            return None, []
        return sum(results) / len(results), [{"tool_failure_rate": round(
            sum(results) / len(results), 4), "tool_results": len(results),
            "errors": sum(results)}]

    def _stall(self, agent, now: float) -> None:
        rules = self._rules("stall", agent)
        if not rules:
            return
        w = self.window(agent)
        for rule in rules:
            span = rule["minutes"] * 60
            if now - w.started < span or now - w.last_edit < span:
                continue
            spent = [c for t, c in w.costs if t >= now - span]
            tokens = [n for t, n in w.tokens if t >= now - span]
            if not (tokens or (len(spent) > 1 and spent[-1] > spent[0])):
                continue
            tests = self._tests.get(agent.spec.get("project") or "")
            if tests and tests["last_pass"] >= now - span:
                continue
            self.fire(rule, agent, f"{agent.spec['name']} spends tokens with no edit and no "
                      f"new passing test for {rule['minutes']:g} minutes",
                      [{"tokens": sum(tokens), "cost_usd": spent[-1] if spent else None}])

    def _load_tests(self, live: list, now: float) -> None:
        """What the test rules need of each project some live agent works on: its runs
        since the earliest such agent started (and the one before), their failing tests,
        and the time of its last passing test — one set of queries per project, however
        many agents and rules (per agent and rule, 100 rules over 100 agents took 5 s)."""
        since: dict[str, float] = {}
        for agent in live:
            project = agent.spec.get("project")
            if project and any(self._rules(k, agent) for k in ("test_health", "test_loop",
                                                                "stall")):
                w = self.window(agent)
                start = min(w.started, w.last_edit, now - max(
                    [r["window_s"] for r in self._rules("test_loop", agent)] or [0]))
                since[project] = min(since.get(project, start), start)
        tests = {}
        for project, start in since.items():
            runs = self.store.query("runs_ingested_since", project=project,
                                    since=_ts(start)).iloc[::-1]
            fails: dict[str, dict[str, Any]] = {r: {} for r in runs["run_id"]}
            if fails:
                found = self.store.query("final_failures", run_ids=list(fails))
                for row in found.itertuples(index=False):
                    fails[row.run_id][row.test_id] = row.message
            last = self.store.query("last_pass", project=project)["at"].iloc[0]
            tests[project] = {"runs": list(zip(runs["run_id"], runs["at"], strict=True)),
                              "fails": fails,
                              "last_pass": float(last) if last == last and last else 0.0}
        self._tests = tests

    def _test_rules(self, agent, now: float) -> None:
        tests = self._tests.get(agent.spec.get("project") or "")
        if not tests or not tests["runs"]:
            return
        w, runs, fails = self.window(agent), tests["runs"], tests["fails"]
        project = agent.spec["project"]
        for rule in self._rules("test_health", agent):
            before = [r for r, at in runs if at < w.started]
            after = [r for r, at in runs if at >= w.started]
            if not after:
                continue
            base = fails[before[-1]] if before else {}
            new = {t: m for t, m in fails[after[-1]].items() if t not in base}
            if new:
                self.fire(rule, agent, f"{len(new)} new failing test(s) in {project} since "
                          f"{agent.spec['name']} started",
                          [{"test_id": t, "message": m, "run_id": after[-1]}
                           for t, m in sorted(new.items())[:50]])
        for rule in self._rules("test_loop", agent):
            since = max(w.last_edit, now - rule["window_s"])
            counts: dict[str, list[str]] = {}
            for run_id, at in runs:
                if at >= since:
                    for test_id in fails[run_id]:
                        counts.setdefault(test_id, []).append(run_id)
            worst = max(counts.items(), key=lambda kv: len(kv[1]), default=None)
            if worst and len(worst[1]) >= rule["count"]:
                self.fire(rule, agent, f"{worst[0]} failed {len(worst[1])} times with no edit "
                          f"by {agent.spec['name']} in between",
                          [{"test_id": worst[0], "run_id": r} for r in worst[1][-20:]])

    # -- alerts -------------------------------------------------------------------------
    def fire(self, rule: dict[str, Any], agent, title: str,
             evidence: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Open an alert (unless this rule has one open on this agent) and act."""
        alert = self._open_alert(rule, agent.id, agent.spec["name"], title, evidence)
        if alert is None:
            return None
        agent.emit("alert", f"alert: {title}", {"alert_id": alert["id"],
                                                 "rule_id": rule["rule_id"]})
        self.webhooks.publish("alert.fired", agent.id, public(alert))
        self._plugin_actions(rule, alert)
        acts = [a for a in rule["actions"] if a in ("pause", "stop")]
        if acts:
            threading.Thread(target=self._act, args=(rule, agent, alert, acts[-1]),
                             daemon=True).start()
        return alert

    def _open_alert(self, rule: dict[str, Any], subject: str, name: str, title: str,
                    evidence: list[dict[str, Any]]) -> dict[str, Any] | None:
        """A new firing alert of ``rule`` about ``subject`` (an agent's id, or
        :data:`STORE` for the database), stored; None while one is open already."""
        with self._lock:
            key = (rule["rule_id"], subject)
            if key in self.open:
                return None
            alert = {"id": "al-" + uuid.uuid4().hex[:10], "rule_id": rule["rule_id"],
                     "rule_name": rule["name"], "agent_id": subject,
                     "agent_name": name, "severity": rule["severity"],
                     "state": "firing", "title": title[:500], "evidence": evidence[:50],
                     "actions": list(rule["actions"]), "fired_at": utcnow(),
                     "acked_by": None, "acked_at": None, "resolved_by": None,
                     "resolved_at": None}
            self.open[key] = alert
        self._save(alert)
        return alert

    def check_storage(self, stats: dict[str, Any]) -> list[dict[str, Any]]:
        """Evaluate the ``storage`` rules on the database file's figures (upkeep's
        :func:`~workbench.store.upkeep.file_stats`): fire those past their threshold,
        resolve (as the workbench) those back within it. The alerts fired."""
        fired = []
        for rule in [r for r in list(self.rules.values())
                     if r["kind"] == "storage" and r["enabled"]]:
            value = storage_value(rule["metric"], stats)
            if value is None:
                continue
            low = rule["metric"] in LOW_IS_BAD
            bad = value < rule["threshold"] if low else value > rule["threshold"]
            key = (rule["rule_id"], STORE)
            if bad:
                shown = units.metric(rule["metric"], value)
                limit = units.metric(rule["metric"], rule["threshold"])
                alert = self._open_alert(
                    rule, STORE, "database", f"{stats['path']}: {rule['metric']} {shown} "
                    f"{'<' if low else '>'} {limit}", [{"metric": rule["metric"],
                                                       "value": value, **stats}])
                if alert is not None:
                    self.webhooks.publish("alert.fired", STORE, public(alert))
                    self._plugin_actions(rule, alert)
                    fired.append(alert)
            elif key in self.open:
                self.resolve(self.open[key]["id"], "workbench (back within the threshold)")
        return fired

    def _plugin_actions(self, rule: dict[str, Any], alert: dict[str, Any]) -> None:
        """Run the rule's plugin actions, each on a thread of its own: a slow or failing
        plugin delays nothing; what each did is audited as the rule."""
        for name in rule["actions"]:
            fn = PLUGIN_ACTIONS.get(name)
            if fn is not None:
                threading.Thread(target=self._plugin_action, args=(rule, alert, name, fn),
                                 name=f"alert-action-{name}", daemon=True).start()

    def _plugin_action(self, rule: dict[str, Any], alert: dict[str, Any], name: str,
                       fn) -> None:
        who = Principal(f"rule:{rule['rule_id']}", "admin", "alerts")
        params = {"alert_id": alert["id"], "rule": rule["name"], "plugin": name}
        try:
            fn(public(alert))
        except Exception as err:  # noqa: BLE001  (a plugin's failure is its own)
            log.warning("alert action %s failed: %s", name, err)
            access.record(self.store, who, "alert-action", alert["id"], params,
                          f"failed: {type(err).__name__}: {str(err)[:200]}")
            return
        access.record(self.store, who, "alert-action", alert["id"], params)

    def _act(self, rule: dict[str, Any], agent, alert: dict[str, Any], action: str) -> None:
        """Pause (at a safe point) or stop the agent, as the rule: audited as the rule."""
        who = Principal(f"rule:{rule['rule_id']}", "admin", "alerts")
        params = {"alert_id": alert["id"], "rule": rule["name"]}
        try:
            if action == "stop":
                self._stopped.add(alert["id"])
                self.sup.stop(agent, f"alert: {alert['title']}")
            else:
                self.sup.pause(agent)
                backend = agent.backend
                if backend is not None and backend.protocol:
                    backend.interrupt()  # end the turn: nothing more runs until a person looks
            access.record(self.store, who, action, agent.id, params)
        except (ValueError, KeyError) as err:
            access.record(self.store, who, action, agent.id, params, f"failed: {err}")

    def ended(self, agent, state: str) -> None:
        """An alert follows its agent: when the agent's run ends (``state`` in
        :data:`ENDED`), every alert still open about it is resolved by the workbench — but
        one whose rule stopped it, which stays open (a person should see why it stopped)
        until the next run ends or a person resolves it. An alert this ending fires (a
        ``state`` rule) comes after, and likewise stays open."""
        with self._lock:
            mine = [a for (_, agent_id), a in self.open.items() if agent_id == agent.id]
        for alert in mine:
            if alert["id"] in self._stopped:
                self._stopped.discard(alert["id"])
                continue
            self.resolve(alert["id"], f"workbench (agent {state})")
            access.record(self.store, access.SYSTEM, "alert", alert["id"],
                          {"action": "resolve", "because": f"agent {agent.id} {state}"})

    def get(self, alert_id: str) -> dict[str, Any]:
        for alert in list(self.open.values()):
            if alert["id"] == alert_id:
                return alert
        self.store.settle()
        df = self.store.sql("SELECT * FROM alerts WHERE alert_id = ?", [alert_id])
        if df.empty:
            raise KeyError(f"no alert {alert_id!r}")
        return _alert_row(df.to_dict("records")[0])

    def ack(self, alert_id: str, who: str) -> dict[str, Any]:
        alert = self.get(alert_id)
        if alert["state"] == "resolved":
            raise ValueError(f"alert {alert_id} is already resolved")
        if alert["state"] == "firing":
            alert.update(state="acknowledged", acked_by=who, acked_at=utcnow())
            self._save(alert)
            self.webhooks.publish("alert.acknowledged", alert["agent_id"], public(alert))
        return public(alert)

    def resolve(self, alert_id: str, who: str) -> dict[str, Any]:
        alert = self.get(alert_id)
        if alert["state"] != "resolved":
            alert.update(state="resolved", resolved_by=who, resolved_at=utcnow())
            with self._lock:
                self.open.pop((alert["rule_id"], alert["agent_id"]), None)
                self._stopped.discard(alert["id"])
            self._save(alert)
            self.webhooks.publish("alert.resolved", alert["agent_id"], public(alert))
        return public(alert)

    def _save(self, a: dict[str, Any]) -> None:
        self.sup.work_changed("alert", public(a))
        control_writes.submit(self.store, f"INSERT OR REPLACE INTO alerts VALUES "
                              f"({', '.join('?' * 14)})", [
            a["id"], a["rule_id"], a["rule_name"], a["agent_id"], a["severity"], a["state"],
            a["title"], json.dumps(a["evidence"], default=str), json.dumps(a["actions"]),
            a["fired_at"], a["acked_by"], a["acked_at"], a["resolved_by"], a["resolved_at"]])

    # -- preview ------------------------------------------------------------------------
    def preview(self, value: Any) -> dict[str, Any]:
        """What a rule (saved or not; ``name`` optional) would have fired on over the last
        :data:`PREVIEW_S` seconds of stored events and samples. Reads only: nothing is
        fired, stored or changed."""
        if isinstance(value, dict):  # (an unsaved rule has no name or id yet)
            value = {**value, "name": value.get("name") or "preview",
                     "rule_id": value.get("rule_id") or value.get("id") or "preview"}
        rule = check_rule(value)
        end = time.time()
        since = _ts(end - PREVIEW_S)
        self.store.settle()
        agents = alert_preview.watched(rule, self.store.sql(
            "SELECT agent_id, name FROM agents ORDER BY created_at"))
        ids = agents["agent_id"].tolist()
        events = samples = quiet = None
        kinds = alert_preview.event_kinds(rule)
        if kinds and ids:
            events = self.store.query("alert_preview_events", since=since, kinds=kinds,
                                      agent_ids=ids)
        if alert_preview.reads_samples(rule) and ids:
            samples = self.store.query("alert_preview_samples", since=since, agent_ids=ids,
                                       bucket_s=alert_preview.bucket_s(rule))
        if rule["kind"] == "stale" and ids:
            # (in the store: only the silences longer than the rule's, not every event)
            quiet = self.store.query("alert_preview_quiet", since=since, agent_ids=ids,
                                     end=end, seconds=rule["minutes"] * 60)
        empty = pd.DataFrame(columns=["agent_id", "t"])
        fired = alert_preview.preview(
            rule, agents, events if events is not None else empty,
            samples if samples is not None else empty, quiet if quiet is not None else empty,
            end)
        rows = [{"at": _ts(at).isoformat(), "agent": name, "agent_id": agent_id,
                 "title": title[:500]}
                for at, name, agent_id, title in fired.head(PREVIEW_ROWS).itertuples(
                    index=False)]
        note = ("" if rule["kind"] in alert_preview.PREVIEWED else
                f"a {rule['kind']} rule reads test runs and edits as they happen: not "
                "previewed")
        return {"rule": rule, "since": since.isoformat(), "until": _ts(end).isoformat(),
                "agents": agents["name"].tolist(), "count": len(fired), "fired": rows,
                "note": note}

    def close(self) -> None:
        self._closed.set()


def public(alert: dict[str, Any]) -> dict[str, Any]:
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in alert.items()}
    return out


def _alert_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: (None if v is None or v != v else v) for k, v in row.items()}  # NaT → None
    out["id"] = out.pop("alert_id")
    out["evidence"] = json.loads(out["evidence"] or "[]")
    out["actions"] = json.loads(out["actions"] or "[]")
    out.setdefault("agent_name", None)
    return out


def storage_value(metric: str, stats: dict[str, Any]) -> float | None:
    """A storage metric from the file's figures."""
    if metric == "wal_mb":
        return stats["wal_bytes"] / 2**20
    if metric == "disk_free_percent":
        return stats.get("disk_free_percent")
    return stats.get("bloat")


def _ts(epoch: float) -> datetime:
    """An epoch time as the naive UTC timestamp the store keeps."""
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _records(df) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records", date_format="iso"))
