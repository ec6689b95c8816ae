"""The control page's work and alert views: the task queue (with a form to queue a task
and cancel / retry / reprioritise), and the alerts (their evidence, and the person's
answer: acknowledge, resolve, resume or stop the agent from the alert — resume only while
the agent is paused, stop only while it runs), with the rules below (:mod:`.alert_rules`).
Buttons show only what the role may do; the server checks again."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from ..analysis import units
from .alert_rules import AlertRulesView, named, named_options
from .common import empty, readable, table, table_markup
from .escape import escape
from .notify import attempt

SEVERITY_COLORS = {"critical": "#d64545", "warning": "#e8590c", "info": "#1c7ed6"}
#: The agent states in which an alert offers each action on its agent.
AGENT_ACTIONS = {"resume": ("paused",),
                 "stop": ("starting", "running", "waiting-for-approval", "paused")}


#: The tasks table: a task's prompt or command, and its agent's name, with their ids in
#: the tooltips; headers' full meaning.
TASK_NAMES = {"what": "id", "agent": "agent_id"}
TASK_TIPS = {
    "what": "The prompt or command (hover over one for the task's id)",
    "state": "queued, running, done, failed, cancelled or expired",
    "agent": "The agent that took it (hover over one for its id)",
    "labels": "An agent takes it only if it has all of these labels",
    "failure": "Why it failed (the exit status and last output, or the error)",
    "created_at": "When it was queued",
}
TASK_TABLE = dict(titles={"what": "task", "created_at": "queued"}, tips=TASK_TIPS,
                  widths={"state": 96, "agent": 130, "labels": 100},
                  grow={"what": 3, "failure": 2}, min_widths={"what": 200})


class TaskQueueView(pn.viewable.Viewer):
    """The queue: running and queued tasks first (highest priority, then oldest), then
    the finished ones; a form to queue one."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self._table = table(named(pd.DataFrame(columns=self.model.TASK_COLUMNS),
                                  TASK_NAMES), page_size=15, boxed=True,
                            empty_text="No tasks yet: queue one above, with `observatory "
                            "tasks add`, or POST /api/tasks.",
                            **TASK_TABLE, **named_options(TASK_NAMES))
        self._table.param.watch(self._picked, "selection")
        may = self.model.may("task")
        self.what = pn.widgets.TextInput(name="Prompt or command", width=420,
                                         placeholder="fix the failing test in calc.py")
        self.kind = pn.widgets.RadioButtonGroup(options=["prompt", "command"],
                                                value="prompt", width=180)
        self.priority = pn.widgets.IntInput(name="Priority", value=0, width=90)
        self.labels = pn.widgets.TextInput(name="Labels (comma-separated)", width=200)
        self.project = pn.widgets.TextInput(name="Project", width=160)
        queue = pn.widgets.Button(name="Queue task", button_type="primary", disabled=not may,
                                  margin=(24, 5, 5, 5))
        queue.on_click(lambda e: self._queue())
        self._buttons = {}
        for action, kind in (("cancel", "danger"), ("retry", "light"),
                             ("raise priority", "light")):
            b = pn.widgets.Button(name=action.capitalize(), button_type=kind, width=130,
                                  disabled=True)
            b.on_click(lambda e, a=action: self._act(a))
            self._buttons[action] = b
        self._form = pn.Row(self.kind, self.what, self.priority, self.labels, self.project,
                            queue, sizing_mode="stretch_width")
        self._form.visible = may
        self._frame = pd.DataFrame()

    def refresh(self) -> None:
        self._frame = self.model.tasks()
        self._table.value = named(self._frame, TASK_NAMES)
        self._picked(None)

    def _selected(self) -> dict | None:
        rows = self._table.selection
        if not rows or rows[0] >= len(self._frame):
            return None
        return self._frame.iloc[rows[0]].to_dict()

    def _picked(self, _event) -> None:
        task = self._selected()
        may = self.model.may("task")
        state = task["state"] if task else None
        self._buttons["cancel"].disabled = not (may and state in ("queued", "running"))
        self._buttons["retry"].disabled = not (may and state in ("failed", "cancelled",
                                                                 "expired"))
        self._buttons["raise priority"].disabled = not (may and state == "queued")

    def _queue(self) -> None:
        text = self.what.value.strip()
        labels = [x.strip() for x in self.labels.value.split(",") if x.strip()]
        body = {self.kind.value: text, "priority": int(self.priority.value or 0),
                "labels": labels, "project": self.project.value.strip() or None}
        if attempt(self.model.add_task, body, ok="queued") is not None:
            self.what.value = ""
            self.refresh()

    def _act(self, action: str) -> None:
        task = self._selected()
        if task is None:
            return
        if action == "raise priority":
            done = attempt(self.model.task_action, task["id"], "priority",
                           {"priority": int(task["priority"]) + 10}, ok="priority raised")
        else:
            done = attempt(self.model.task_action, task["id"], action, ok=f"{action}: done")
        if done is not None:
            self.refresh()

    def __panel__(self):
        return pn.Column(self._form, pn.Row(*self._buttons.values()), self._table.box,
                         sizing_mode="stretch_width")


#: The alerts table: an alert's title, its agent's and its rule's names, with their ids
#: in the tooltips; headers' full meaning.
ALERT_NAMES = {"title": "id", "agent_name": "agent_id", "rule_name": "rule_id"}
ALERT_TIPS = {
    "title": "What happened (hover over one for the alert's id)",
    "state": "firing, acknowledged (a person has seen it) or resolved",
    "agent_name": "The agent it is about (hover over one for its id)",
    "rule_name": "The rule that fired it (hover over one for its id)",
}

#: Evidence fields as people read them: (header, its tooltip, kind of value — see
#: ``analysis.units.FORMATS``; ``time`` is a timestamp, ``text`` as it is). A field not
#: here keeps its own name, its numbers rounded.
EVIDENCE_FIELDS = {
    "at": ("at", "When it happened", "time"),
    "kind": ("event", "The kind of event", "text"),
    "text": ("what", "What the agent did or said", "text"),
    "tool_use_id": ("tool call", "The tool call's id", "text"),
    "last_event.at": ("last event", "When its last event happened", "time"),
    "last_event.kind": ("event", "The kind of its last event", "text"),
    "last_event.text": ("what", "What its last event said", "text"),
    "silent_s": ("silent for", "How long it had been silent", "duration_s"),
    "cost_usd": ("spent", "What it had spent by then, in US dollars", "money"),
    "seconds_ago": ("ago", "How long before the alert", "duration_s"),
    "tokens": ("tokens", "Tokens it spent in the window", "count"),
    "cpu_percent": ("CPU", "Its mean CPU over the window (100% is one core)", "percentage"),
    "rss_mb": ("memory MB", "Its mean resident memory over the window, in MB", "number"),
    "mean": ("mean", "The mean of its samples over the window", "number"),
    "samples": ("samples", "How many samples the mean is of", "count"),
    "tool_results": ("results", "Tool results in the window", "count"),
    "errors": ("failed", "Tool results that were errors", "count"),
    "tool_failure_rate": ("fail rate", "Share of the tool results that were errors",
                          "percent"),
    "test_id": ("test", "The test", "text"),
    "message": ("message", "Its failure message", "text"),
    "run_id": ("run", "The test run", "text"),
}
#: (as wide as its columns, not the page: two numbers sit side by side; long text wraps)
_EVIDENCE_STYLE = ("<style>.obs-t{width:auto;min-width:320px}"
                   ".obs-t td.t{white-space:normal;overflow-wrap:anywhere;min-width:240px}"
                   "</style>")


def evidence_html(evidence: list) -> str:
    """An alert's evidence (what matched its rule) as a table: a row per record, nested
    fields flattened, numbers through the one formatting layer (``89.83``, ``$0.59``,
    ``3.3 s``, ``67%``), headers people read with their meaning on hover; all escaped."""
    records = [e if isinstance(e, dict) else {"value": e} for e in evidence or []]
    if not records:
        return '<p style="color:#667;margin:4px 0"><em>No evidence recorded.</em></p>'
    df = pd.json_normalize(records, max_level=1)
    kinds = {c: EVIDENCE_FIELDS.get(c, ("", "", ""))[2] for c in df.columns}
    for c, kind in kinds.items():
        if kind == "time":
            df[c] = pd.to_datetime(df[c], errors="coerce", format="ISO8601")
        elif df[c].map(lambda v: isinstance(v, dict | list)).any():
            df[c] = df[c].map(lambda v: v if isinstance(v, str) else units_text(v))
    rows = readable(df, {c: k for c, k in kinds.items() if k and k != "time"})
    numeric = [c in rows.attrs.get("numeric", ()) for c in rows.columns]
    head = "".join(
        f'<th{" class=n" if right else ""}{title_attr}>{escape(title)}</th>'
        for c, right in zip(rows.columns, numeric, strict=True)
        for title, tip in [EVIDENCE_FIELDS.get(c, (c.replace("_", " "), c, ""))[:2]]
        for title_attr in [f' title="{escape(tip)}"' if tip else ""])
    return table_markup(rows, numeric, head=head) + _EVIDENCE_STYLE  # (after: it wins)


def units_text(value: object) -> str:
    """A nested value of the evidence as short text (numbers rounded)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {units_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(units_text(v) for v in value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return units.number(value)
    return "" if value is None else str(value)


class AlertsView(pn.viewable.Viewer):
    """Open alerts, newest first; the selected one's evidence and what a person can do
    about it; the rules below."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self.state = pn.widgets.RadioButtonGroup(
            options=["open", "resolved", "all"], value="open", width=240)
        self.state.param.watch(lambda e: self.refresh(), "value")
        self._table = table(named(self.model.alerts_frame([]), ALERT_NAMES), page_size=10,
                            boxed=True,
                            empty_text="No alerts: nothing the rules watch for happened.",
                            widths={"state": 118, "agent_name": 130, "rule_name": 170},
                            titles={"title": "alert"}, tips=ALERT_TIPS,
                            grow={"title": 1}, min_widths={"title": 220},
                            **named_options(ALERT_NAMES))
        self._table.param.watch(lambda e: self._show(), "selection")
        self._detail = pn.Column(sizing_mode="stretch_width")
        self._rules = AlertRulesView(model=self.model)
        self._alerts: list[dict] = []

    def refresh(self) -> None:
        self._alerts = self.model.alerts(self.state.value)
        self._table.value = named(self.model.alerts_frame(self._alerts), ALERT_NAMES)
        self._rules.refresh()
        if not self._table.selection and self._alerts:
            self._table.selection = [0]
        self._show()

    def _show(self) -> None:
        rows = self._table.selection
        a = self._alerts[rows[0]] if rows and rows[0] < len(self._alerts) else None
        # Rebuilt only when the alert changes: pushed refreshes come several times a
        # second while agents work, and a button replaced under the pointer loses a click.
        key = a and (a["id"], a["state"], a.get("acked_by"), a.get("resolved_by"),
                     a.get("agent_state"), self.model.may("alert"))
        if key == getattr(self, "_shown_key", ()) and self._detail.objects:
            return
        self._shown_key = key
        if a is None:
            self._detail.objects = [empty("Select an alert to see its evidence.")]
            return
        color = SEVERITY_COLORS.get(a["severity"], "#555")
        head = pn.pane.HTML(
            f'<div style="border-left:6px solid {color};padding:4px 10px">'
            f'<b>{escape(a["title"])}</b><br><span style="font-size:12px;color:#667">'
            f'{escape(a["severity"])} · rule {escape(a["rule_name"])} · agent '
            f'{escape(a.get("agent_name") or a["agent_id"])}'
            + (f' ({escape(a["agent_state"])})' if a.get("agent_state") else "")
            + ' · fired '
            f'{escape(_when(a["fired_at"]))}'
            f' · {escape(a["state"])}'
            + (f' · acknowledged by {escape(a["acked_by"])}' if a.get("acked_by") else "")
            + (f' · resolved by {escape(a["resolved_by"])}' if a.get("resolved_by") else "")
            + (f' · the rule did: {escape(", ".join(a["actions"]))}' if a.get("actions") else "")
            + "</span></div>", sizing_mode="stretch_width")
        buttons = []
        if self.model.may("alert") and a["state"] != "resolved":
            for label, action, kind in (("Acknowledge", "ack", "light"),
                                        ("Resume agent", "resume", "success"),
                                        ("Stop agent", "stop", "danger"),
                                        ("Resolve", "resolve", "primary")):
                if action == "ack" and a["state"] != "firing":
                    continue
                if action in AGENT_ACTIONS and a.get("agent_state") not in AGENT_ACTIONS[
                        action]:
                    continue  # (an alert follows its agent: nothing to resume or stop)
                b = pn.widgets.Button(name=label, button_type=kind, width=130)
                b.on_click(lambda e, act=action, i=a["id"]: self._act(i, act))
                buttons.append(b)
        evidence = pn.pane.HTML(evidence_html(a.get("evidence")), sizing_mode="stretch_width",
                                styles={"max-height": "300px", "overflow": "auto"})
        self._detail.objects = [head, pn.Row(*buttons),
                                pn.pane.Markdown("**Evidence** (what matched the rule)"),
                                evidence]

    def _act(self, alert_id: str, action: str) -> None:
        if attempt(self.model.alert_action, alert_id, action, ok=f"{action}: done"):
            self.refresh()

    def __panel__(self):
        return pn.Column(self.state, self._table.box, self._detail, self._rules,
                         sizing_mode="stretch_width")


def _when(value: object) -> str:
    """A time from the API (ISO text) as every table shows times."""
    try:
        return units.timestamp(pd.Timestamp(value).to_pydatetime())
    except (TypeError, ValueError):
        return str(value or "")
