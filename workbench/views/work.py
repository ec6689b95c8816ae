"""The control page's work and alert views: the task queue (with a form to queue a task
and cancel / retry / reprioritise), and the alerts (their evidence, and the person's
answer: acknowledge, resolve, resume or stop the agent from the alert — resume only while
the agent is paused, stop only while it runs), with the rules below (:mod:`.alert_rules`).
Buttons show only what the role may do; the server checks again."""

from __future__ import annotations

import json

import pandas as pd
import panel as pn
import param

from .alert_rules import AlertRulesView
from .common import empty, pre, table
from .escape import escape
from .notify import attempt

SEVERITY_COLORS = {"critical": "#d64545", "warning": "#e8590c", "info": "#1c7ed6"}
#: The agent states in which an alert offers each action on its agent.
AGENT_ACTIONS = {"resume": ("paused",),
                 "stop": ("starting", "running", "waiting-for-approval", "paused")}


class TaskQueueView(pn.viewable.Viewer):
    """The queue: running and queued tasks first (highest priority, then oldest), then
    the finished ones; a form to queue one."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self._table = table(pd.DataFrame(columns=self.model.TASK_COLUMNS), page_size=15,
                            empty_text="No tasks yet: queue one above, with `observatory "
                            "tasks add`, or POST /api/tasks.",
                            widths={"id": 120, "state": 80, "priority": 70, "what": 300,
                                    "agent_id": 120, "failure": 220, "created_at": 160})
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
        self._table.value = self._frame
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
        return pn.Column(self._form, pn.Row(*self._buttons.values()), self._table,
                         sizing_mode="stretch_width")


class AlertsView(pn.viewable.Viewer):
    """Open alerts, newest first; the selected one's evidence and what a person can do
    about it; the rules below."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self.state = pn.widgets.RadioButtonGroup(
            options=["open", "resolved", "all"], value="open", width=240)
        self.state.param.watch(lambda e: self.refresh(), "value")
        self._table = table(self.model.alerts_frame([]), page_size=10,
                            empty_text="No alerts: nothing the rules watch for happened.",
                            widths={"id": 120, "state": 110, "severity": 80, "title": 420})
        self._table.param.watch(lambda e: self._show(), "selection")
        self._detail = pn.Column(sizing_mode="stretch_width")
        self._rules = AlertRulesView(model=self.model)
        self._alerts: list[dict] = []

    def refresh(self) -> None:
        self._alerts = self.model.alerts(self.state.value)
        self._table.value = self.model.alerts_frame(self._alerts)
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
            f'{escape(str(a["fired_at"])[:19])}'
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
        evidence = json.dumps(a.get("evidence") or [], indent=1, default=str)
        self._detail.objects = [head, pn.Row(*buttons),
                                pn.pane.Markdown("**Evidence** (what matched the rule)"),
                                pre(evidence, max_height=260)]

    def _act(self, alert_id: str, action: str) -> None:
        if attempt(self.model.alert_action, alert_id, action, ok=f"{action}: done"):
            self.refresh()

    def __panel__(self):
        return pn.Column(self.state, self._table, self._detail, self._rules,
                         sizing_mode="stretch_width")
