"""The control page's views: the fleet board, the approvals inbox, one agent's detail
(transcript, CPU and memory, configuration form, next prompt), a form for a new agent, and
the audit log. Buttons only show what the role may do; the server checks again. Every text
from an agent is escaped (:mod:`.escape`), in the notifications too (:mod:`.notify`)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, LinearAxis, Range1d
from bokeh.plotting import figure

from ..analysis import units
from .alert_rules import named, named_options
from .common import FollowBrowserTheme, ThemedDesign, bokeh_changes, empty, nav, pre, table
from .escape import escape
from .lazy_tabs import LazyTabs, Later
from .notify import attempt, notify
from .work import TASK_NAMES, TASK_TABLE, AlertsView, TaskQueueView

STATE_COLORS = {
    "idle": "#868e96", "starting": "#4dabf7", "running": "#2e9e5b",
    "waiting-for-approval": "#e8590c", "paused": "#7950f2", "stopping": "#adb5bd",
    "stopped": "#495057", "completed": "#1c7ed6", "error": "#d64545", "lost": "#a61e4d",
}
TASK_COLORS = {"running": "#4dabf7", "done": "#2e9e5b", "failed": "#d64545",
               "cancelled": "#868e96", "queued": "#adb5bd", "expired": "#adb5bd"}
#: Actions a card offers in each state (the supervisor refuses the others anyway).
OFFERED = {
    "idle": ("start",), "stopped": ("start",), "completed": ("start",), "error": ("start",),
    "lost": ("start",), "starting": ("stop",),
    "running": ("pause", "interrupt", "restart", "stop"),
    "waiting-for-approval": ("pause", "interrupt", "restart", "stop"),
    "paused": ("resume", "restart", "stop"), "stopping": (),
}
DESTRUCTIVE = {"stop", "restart"}
#: Up to N whole lines, then an ellipsis (never a line cut through mid-height); the whole
#: text is the element's title.
_CLAMP = ("overflow-wrap:anywhere;overflow:hidden;display:-webkit-box;"
          "-webkit-box-orient:vertical;-webkit-line-clamp:")


def _cost(a: dict) -> str:
    """An agent's spend so far (``$0.59``, ``<$0.001``); nothing for one that has none to
    report (a command agent)."""
    return units.money(a["cost_usd"]) if a.get("cost_usd") else ""


def state_badge(state: str) -> str:
    color = STATE_COLORS.get(state, "#555")
    return (f'<span style="background:{color};color:white;border-radius:10px;'
            f'padding:1px 9px;font-size:12px;white-space:nowrap">{escape(state)}</span>')


class ConfirmButton(pn.viewable.Viewer):
    """A button that asks once more: the first click arms it for five seconds."""

    def __init__(self, label: str, action, **params):
        super().__init__(**params)
        self._label, self._action, self._armed = label, action, 0.0
        self._button = pn.widgets.Button(name=label, button_type="light", width=92,
                                         margin=(2, 3))
        self._button.on_click(self._click)

    def _click(self, _event) -> None:
        if time.monotonic() - self._armed < 5:
            self._armed = 0.0
            self._button.name, self._button.button_type = self._label, "light"
            self._action()
        else:
            self._armed = time.monotonic()
            self._button.name, self._button.button_type = f"Really {self._label.lower()}?", \
                "danger"

    def __panel__(self):
        return self._button


class FleetBoard(pn.viewable.Viewer):
    """A card per agent: state, project, what it does now, cost, CPU and memory, waiting
    approvals, and the actions its state allows. Cards are updated in place — the text
    is one HTML patch, the buttons change only with the state — so that a chatty agent
    costs small patches and a button armed for confirmation stays armed. A line an agent
    prints reaches its card alone (:meth:`lines`): that card's text, no list of agents."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self._box = pn.FlexBox(sizing_mode="stretch_width")
        self._cards: dict[str, tuple[pn.Column, pn.pane.HTML, pn.FlexBox, str]] = {}
        #: What each card shows (the agent as last listed, with its newest line).
        self._shown: dict[str, dict] = {}
        self._order: list[str] | None = None

    def refresh(self) -> None:
        agents = self.model.agents()
        for a in agents:
            card = self._cards.get(a["id"])
            if card is None:
                head = pn.pane.HTML(sizing_mode="stretch_width", margin=(4, 6))
                buttons = pn.FlexBox()
                column = pn.Column(head, buttons, width=330, margin=6)
                card = (column, head, buttons, "")
            column, head, buttons, state = card
            head.object = self._head(a)
            self._shown[a["id"]] = a
            if a["state"] != state:
                buttons.objects = self._buttons(a)
                color = STATE_COLORS.get(a["state"], "#ccc")
                column.styles = {"border": f"1px solid {color}",
                                 "border-left": f"6px solid {color}",
                                 "border-radius": "6px", "padding": "4px"}
            self._cards[a["id"]] = (column, head, buttons, a["state"])
        order = [a["id"] for a in agents]
        if order != self._order:
            self._order = order
            self._box.objects = [self._cards[i][0] for i in order] or [empty(
                "No agents yet: define one under New agent, with `observatory agents add`, "
                "or POST /api/agents.")]

    def lines(self, printed: dict[str, dict]) -> None:
        """The newest line each of some agents printed (``agent_id`` → its last event):
        only those cards' text changes."""
        for agent_id, last in printed.items():
            a, card = self._shown.get(agent_id), self._cards.get(agent_id)
            if a is None or card is None or a.get("last_event") == last:
                continue
            a = self._shown[agent_id] = {**a, "last_event": last}
            card[1].object = self._head(a)

    def _head(self, a: dict) -> str:
        sample = a.get("sample") or {}
        usage = (f'{sample.get("cpu_percent", 0):.0f}% CPU · '
                 f'{sample.get("rss_bytes", 0) / 2**20:.0f} MB' if sample and a.get("pid")
                 else "")
        last = (a.get("last_event") or {}).get("text") or ""
        waiting = (f'<div style="color:#e8590c;font-weight:600">{escape(a["pending_approvals"])} '
                   'approval(s) waiting</div>' if a.get("pending_approvals") else "")
        error = (f'<div title="{escape(a["last_error"][:2000])}" style="color:#d64545;'
                 f'font-size:12px;{_CLAMP}4">{escape(a["last_error"][:300])}</div>'
                 if a.get("last_error") else "")
        return (
            f'<div style="display:flex;justify-content:space-between;gap:8px">'
            f'<b style="font-size:15px;overflow-wrap:anywhere">{escape(a["name"])}</b>'
            f'{state_badge(a["state"])}</div>'
            f'<div style="font-size:12px;color:#667">{escape(a["backend"])}'
            f'{" · " + escape(a["project"]) if a.get("project") else ""} · {escape(a["id"])}'
            f'{" · pid " + str(a["pid"]) if a.get("pid") else ""}</div>'
            f'<div title="{escape(last[:2000])}" style="font-size:13px;margin:4px 0;'
            f'{_CLAMP}3">{escape(last[:300])}</div>'
            f'<div style="font-size:12px">'
            f'{" · ".join(x for x in (_cost(a), usage) if x)}</div>{waiting}{error}')

    def _buttons(self, a: dict) -> list:
        buttons: list = []
        if self.model.may("start") and a["backend"] != "external":  # hooks: answer only
            for action in OFFERED.get(a["state"], ()):
                def run(act=action, i=a["id"]) -> None:
                    attempt(self.model.act, i, act, ok=f"{act}: {a['name']}")

                if action in DESTRUCTIVE:
                    buttons.append(ConfirmButton(action.capitalize(), run))
                else:
                    b = pn.widgets.Button(name=action.capitalize(), width=92, margin=(2, 3),
                                          button_type="primary" if action == "start"
                                          else "light")
                    b.on_click(lambda e, r=run: r())
                    buttons.append(b)
        details = pn.widgets.Button(name="Details", width=92, margin=(2, 3),
                                    button_type="light")
        details.on_click(lambda e, i=a["id"]: self.show(i))
        buttons.append(details)
        return buttons

    def show(self, agent_id: str) -> None:
        """Open an agent's detail (the dashboard replaces this to switch tabs too)."""
        self.model.selected = agent_id

    def __panel__(self):
        return self._box


class ApprovalsInbox(pn.viewable.Viewer):
    """Every permission request waiting for a person, oldest first."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self._box = pn.Column(sizing_mode="stretch_width")
        self._shown: list[str] | None = None

    def refresh(self) -> None:
        pending = sorted(self.model.approvals(), key=lambda r: r["created_at"])
        ids = [p["id"] for p in pending]
        if ids == self._shown:
            return
        self._shown = ids
        if not pending:
            self._box.objects = [empty("Nothing waiting for you.")]
            return
        names = {a["id"]: a["name"] for a in self.model.agents()}
        self._box.objects = [self._card(p, names.get(p["agent_id"], p["agent_id"]))
                             for p in pending]

    def _card(self, p: dict, agent: str) -> pn.Column:
        age = (datetime.utcnow() - datetime.fromisoformat(p["created_at"])).total_seconds()
        held = " · held (the agent is paused)" if p.get("held") else ""
        head = pn.pane.HTML(
            f'<b title="{escape(p.get("agent_id"))}">{escape(agent)}</b> wants to use '
            f'<b>{escape(p["tool"])}</b>'
            f'<span style="color:#667;font-size:12px"> · {age:.0f} s ago · '
            f'{escape(p.get("project") or "no project")} · session '
            f'{escape(p.get("session_id") or "-")}'
            f'{held}</span>' + (f'<div style="font-size:12px">{escape(p["reason"])}</div>'
                                if p.get("reason") else ""),
            sizing_mode="stretch_width")
        message = pn.widgets.TextInput(placeholder="message to the agent (for a deny)",
                                       width=320)
        buttons = []
        if self.model.may("approve"):
            for label, decision, kind in (("Allow", "allow", "success"),
                                          ("Allow for session", "allow_session", "primary"),
                                          ("Deny", "deny", "danger")):
                b = pn.widgets.Button(name=label, button_type=kind, width=140)
                b.on_click(lambda e, d=decision: self._decide(p["id"], d, message.value))
                buttons.append(b)
        return pn.Column(head, pre(p.get("text") or p.get("input"), max_height=240),
                         pn.Row(message, *buttons), sizing_mode="stretch_width",
                         styles={"border": "1px solid #e8590c", "border-radius": "6px",
                                 "padding": "6px"}, margin=(4, 0))

    def _decide(self, approval_id: str, decision: str, message: str) -> None:
        if attempt(self.model.decide, approval_id, decision, message,
                   ok=f"{decision}: sent") is not None:
            self._shown = None
            self.refresh()

    def __panel__(self):
        return self._box


class AgentDetail(pn.viewable.Viewer):
    """One agent: its transcript (state changes, prompts, tool uses and results, output),
    CPU and memory, its configuration form, and a box for its next prompt."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self._pick = pn.widgets.Select(name="Agent", width=360)
        self._refreshing = False
        self._pick.param.watch(self._picked, "value")
        self._head = pn.pane.HTML("", sizing_mode="stretch_width")
        self._events = table(pd.DataFrame(columns=["ts", "kind", "state", "text"]),
                             empty_text="No events yet.", page_size=10,
                             widths={"ts": 150, "kind": 96, "state": 150})
        self._runs = table(pd.DataFrame(columns=["started_at", "branch", "status"]),
                           empty_text="No test runs on its project since it was defined.",
                           page_size=5)
        self._telemetry = table(pd.DataFrame(columns=["agent", "sessions"]),
                                empty_text="No telemetry under its name yet.", page_size=5)
        self._tasks = table(named(pd.DataFrame(columns=self.model.TASK_COLUMNS), TASK_NAMES),
                            page_size=5, boxed=True,
                            empty_text="No tasks taken from the queue.", **TASK_TABLE,
                            # (they are all this agent's)
                            **named_options(TASK_NAMES, hidden=("agent",)))
        self._impact = table(pd.DataFrame(columns=["effect", "test_id"]), page_size=5,
                             empty_text="No test it broke or fixed (its edits are matched "
                             "to the failures of the runs on its project).")
        self._source = ColumnDataSource({"ts": [], "cpu_percent": [], "rss_mb": []})
        self._spans = ColumnDataSource({"state": [], "start": [], "end": [], "color": []})
        self._task_spans = ColumnDataSource({"task": [], "state": [], "start": [], "end": [],
                                             "what": [], "color": []})
        self._timeline = self._make_timeline()
        # (the Bokeh pane sits in a Column whose visibility is switched: switching the
        # pane's own visibility made Panel re-sync its stylesheets and fail)
        self._chart = pn.Column(self._make_chart(), sizing_mode="stretch_width")
        self._no_samples = empty("No CPU or memory samples: it has not run with a process "
                                 "here yet.")
        self._config = pn.Column()
        self._text = pn.widgets.TextAreaInput(placeholder="next prompt (claude-code) or a "
                                              "line for stdin (process)", height=70,
                                              sizing_mode="stretch_width")
        send = pn.widgets.Button(name="Send", button_type="primary", width=90)
        send.on_click(lambda e: self._send())
        self._send_row = pn.Row(self._text, send, sizing_mode="stretch_width")
        self.model.param.watch(lambda e: self.refresh(), "selected")

    def _picked(self, event) -> None:
        if event.new and event.new != self.model.selected and not self._refreshing:
            self.model.selected = event.new

    def _make_timeline(self):
        fig = figure(height=120, x_axis_type="datetime", sizing_mode="stretch_width",
                     toolbar_location=None, title="State timeline (below) and tasks (above)",
                     y_range=(-0.5, 1.5))
        states = fig.hbar(y=0, left="start", right="end", height=0.8, color="color",
                          source=self._spans, legend_field="state")
        tasks = fig.hbar(y=1, left="start", right="end", height=0.6, color="color",
                         line_color="white", source=self._task_spans)
        fig.yaxis.ticker = [0, 1]
        fig.yaxis.major_label_overrides = {0: "state", 1: "tasks"}
        fig.ygrid.grid_line_color = None
        times = {"@start": "datetime", "@end": "datetime"}
        fig.add_tools(HoverTool(renderers=[states], formatters=times, tooltips=[
            ("state", "@state"), ("from", "@start{%H:%M:%S}"), ("to", "@end{%H:%M:%S}")]))
        fig.add_tools(HoverTool(renderers=[tasks], formatters=times, tooltips=[
            ("task", "@task (@state)"), ("what", "@what"), ("from", "@start{%H:%M:%S}"),
            ("to", "@end{%H:%M:%S}")]))
        fig.legend.orientation = "horizontal"
        fig.add_layout(fig.legend[0], "right")
        return pn.pane.Bokeh(fig, sizing_mode="stretch_width")

    def _make_chart(self):
        fig = figure(height=200, x_axis_type="datetime", sizing_mode="stretch_width",
                     toolbar_location=None, title="CPU % (line) and memory MB (dashed)")
        fig.line("ts", "cpu_percent", source=self._source, line_width=2, color="#4c78a8")
        fig.extra_y_ranges = {"mem": Range1d(0, 100)}
        fig.add_layout(LinearAxis(y_range_name="mem", axis_label="MB"), "right")
        fig.line("ts", "rss_mb", source=self._source, y_range_name="mem", line_width=2,
                 line_dash="dashed", color="#b279a2")
        fig.yaxis[0].axis_label = "CPU %"
        return pn.pane.Bokeh(fig, sizing_mode="stretch_width")

    def refresh(self) -> None:
        agents = self.model.agents()
        if not self.model.selected and agents:
            self.model.selected = agents[-1]["id"]  # (which refreshes)
            return
        # Options and value together, and no selection event while doing it: a new
        # options list alone makes the Select pick its first entry.
        self._refreshing = True
        try:
            self._pick.param.update(
                options={f'{a["name"]} ({a["id"]})': a["id"] for a in agents},
                value=self.model.selected or None)
        finally:
            self._refreshing = False
        detail = self.model.detail()
        if detail is None:
            self._head.object = "<i>Pick an agent.</i>"
            return
        a = detail["agent"]
        self._head.object = (
            f'<h3 style="margin:4px 0">{escape(a["name"])} {state_badge(a["state"])}</h3>'
            f'<div style="font-size:13px">{escape(a["backend"])}'
            f'{" · project " + escape(a["project"]) if a.get("project") else ""}'
            f' · session {escape(a.get("session_id") or "-")} · {_cost(a) or "no cost"}'
            f' · {escape(a["restarts"])} restart(s)'
            + (f' · <a href="./console?agent={escape(a["id"])}">its terminal</a>'
               if a.get("pty") else "") + '</div>'
            + (f'<div style="color:#d64545">{escape(a["last_error"])}</div>'
               if a.get("last_error") else ""))
        self._events.value = self.model.events(detail)
        self._runs.value = self.model.runs(detail)
        self._telemetry.value = self.model.telemetry(detail)
        self._tasks.value = named(self.model.tasks(a["id"]), TASK_NAMES)
        self._impact.value = self.model.impact(a["id"])
        samples = self.model.samples(detail)
        data = {c: samples[c].tolist() for c in ("ts", "cpu_percent", "rss_mb")}
        top = float(samples["rss_mb"].max()) if len(samples) else 100.0

        self._chart.visible = bool(len(samples))
        self._no_samples.visible = not len(samples)

        spans = self.model.state_spans(detail)
        span_data = {"state": spans["state"].tolist(), "start": spans["start"].tolist(),
                     "end": spans["end"].tolist(),
                     "color": [STATE_COLORS.get(x, "#999") for x in spans["state"]]}

        work = self.model.task_spans(a["id"])
        work_data = {**{c: work[c].tolist() for c in work.columns},
                     "color": [TASK_COLORS.get(x, "#999") for x in work["state"]]}

        def draw() -> None:
            with bokeh_changes():
                self._spans.data = span_data
                self._task_spans.data = work_data
                self._source.data = data
                self._chart[0].object.extra_y_ranges["mem"].end = max(top * 1.2, 10.0)

        # A plain Bokeh model (not a Panel widget) may change only under the document's
        # lock, which a widget's callback does not hold: scheduled on the loop, which has it.
        pn.state.execute(draw, schedule=True)
        self._config_form(a["id"])
        self._send_row.visible = self.model.may("message")

    def _config_form(self, agent_id: str) -> None:
        if getattr(self, "_config_for", None) == agent_id:
            return
        self._config_for = agent_id
        data = self.model.config(agent_id)
        widgets = {}
        for name, spec in data["schema"].items():
            value = data["config"].get(name)
            kind = spec.get("type")
            if "enum" in spec:
                w = pn.widgets.Select(name=name, options=spec["enum"], value=value)
            elif kind == "boolean":
                w = pn.widgets.Checkbox(name=name, value=bool(value))
            elif "integer" in str(kind):
                w = pn.widgets.IntInput(name=name, value=value)
            else:
                w = pn.widgets.TextInput(name=name, value="" if value is None else str(value))
            # (Panel renders a description as Markdown: HTML)
            w.description = escape(spec.get("description")) or None
            widgets[name] = w
        apply = pn.widgets.Button(name="Apply configuration", button_type="primary",
                                  disabled=not self.model.may("config"))

        def on_apply(_event) -> None:
            config = {k: w.value for k, w in widgets.items()}
            result = attempt(self.model.set_config, agent_id, config)
            if result is not None:
                notify("applied to the running session" if result.get("applied_live")
                       else "saved: takes effect at the next start", duration=3000)

        apply.on_click(on_apply)
        self._config.objects = [pn.pane.Markdown("**Configuration**"), *widgets.values(),
                                apply]

    def _send(self) -> None:
        if self.model.selected and self._text.value.strip():
            if attempt(self.model.message, self.model.selected, self._text.value,
                       ok="sent") is not None:
                self._text.value = ""

    def __panel__(self):
        return pn.Column(self._pick, self._head, self._send_row,
                         pn.Row(pn.Column(self._timeline, self._chart, self._no_samples,
                                          self._events,
                                          pn.pane.Markdown("**Test runs on its project**"),
                                          self._runs,
                                          pn.pane.Markdown("**Tests it broke and fixed**"),
                                          self._impact,
                                          pn.pane.Markdown("**Its tasks**"),
                                          self._tasks.box,
                                          pn.pane.Markdown("**Its telemetry**"),
                                          self._telemetry, sizing_mode="stretch_width"),
                                self._config, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")


class NewAgentForm(pn.viewable.Viewer):
    """Define an agent (and start it)."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self.name_input = pn.widgets.TextInput(name="Name", placeholder="e.g. nightly-fixer")
        self.backend = pn.widgets.Select(name="Backend", options=["process", "claude-code"])
        self.command = pn.widgets.TextInput(name="Command (process)",
                                            placeholder="python agent.py --task x")
        self.prompt = pn.widgets.TextAreaInput(name="First prompt (claude-code)", height=80)
        self.project = pn.widgets.TextInput(name="Project")
        self.labels = pn.widgets.TextInput(
            name="Labels (for the tasks it takes; comma-separated)",
            placeholder="e.g. python, tests",
            description="It takes queued tasks whose labels it all has (no labels: none)")
        self.cwd = pn.widgets.TextInput(name="Working directory")
        self.memory = pn.widgets.IntInput(name="Memory limit (MB, 0 = none)", value=0, start=0)
        self.runtime = pn.widgets.IntInput(name="Max runtime (s, 0 = none)", value=0, start=0)
        self.start = pn.widgets.Checkbox(name="Start at once", value=True)
        self.create = pn.widgets.Button(name="Create agent", button_type="primary",
                                        disabled=not self.model.may("add"))
        self.create.on_click(lambda e: self._create())

    def _create(self) -> None:
        spec = {"name": self.name_input.value.strip(), "backend": self.backend.value,
                "project": self.project.value.strip() or None,
                "labels": [x.strip() for x in self.labels.value.split(",") if x.strip()],
                "cwd": self.cwd.value.strip() or None, "limits": {}}
        if self.backend.value == "process":
            spec["command"] = self.command.value.strip() or None
        elif self.prompt.value.strip():
            spec["prompt"] = self.prompt.value.strip()
        if self.memory.value:
            spec["limits"]["memory_mb"] = self.memory.value
        if self.runtime.value:
            spec["limits"]["max_runtime_s"] = self.runtime.value
        agent = attempt(self.model.add, spec, self.start.value)
        if agent is not None:
            self.show(agent["id"])
            notify(*done_text(agent, self.start.value), duration=3000)

    def show(self, agent_id: str) -> None:
        """Open the new agent's detail (the dashboard replaces this to switch tabs)."""
        self.model.selected = agent_id

    def __panel__(self):
        return pn.Column(self.name_input, self.backend, self.command, self.prompt,
                         self.project, self.labels, self.cwd, self.memory, self.runtime,
                         self.start, self.create, width=480)


def done_text(agent: dict, started: bool) -> tuple[str, str]:
    """What a toast says a new agent's definition did: the act, not a state the agent may
    have left before the toast is read (a "running" toast for an agent that had already
    failed) — the card and the detail follow its state. A start refused at once is an
    error toast with its reason."""
    if started and agent["state"] == "error":
        return f"{agent['name']}: could not start: {agent.get('last_error') or ''}", "error"
    if started and agent.get("pid"):
        return f"{agent['name']}: defined and started (pid {agent['pid']})", "success"
    return f"{agent['name']}: defined" + (" and started" if started else ""), "success"


#: The audit table: what each entry acted on, named (the raw target in the tooltip);
#: headers' full meaning.
AUDIT_NAMES = {"about": "target"}
AUDIT_TIPS = {
    "who": "Who did it: a user, a token's name, loopback, the workbench or a rule",
    "role": "The role it had: admin, operator, viewer or ingest",
    "action": "What was done (or refused)",
    "about": "What it acted on (hover over one for its id or path as recorded)",
    "outcome": "ok, failed: why, or refused: why",
    "client": "The client's address",
    "params": "What was asked, as sent",
}


class AuditView(pn.viewable.Viewer):
    """Every control action, decision and refusal, newest first; what each acted on by
    its name."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self._table = table(named(pd.DataFrame(columns=self.model.AUDIT_COLUMNS),
                                  AUDIT_NAMES), boxed=True,
                            empty_text="No control actions yet.", page_size=25,
                            widths={"who": 130, "role": 80, "action": 110, "client": 150,
                                    "outcome": 130},
                            titles={"about": "target"}, tips=AUDIT_TIPS,
                            grow={"about": 2, "params": 3}, min_widths={"about": 220},
                            **named_options(AUDIT_NAMES))

    def refresh(self) -> None:
        if self.model.may("audit"):
            self._table.value = named(self.model.audit(), AUDIT_NAMES)

    def __panel__(self):
        if not self.model.may("audit"):
            return empty("The audit log is for admins.")
        return self._table.box


class ControlDashboard(pn.viewable.Viewer):
    """The control page. Pushed agent updates redraw the open tab within a second."""

    model = param.Parameter()
    tabs = ("Fleet", "Approvals", "Alerts", "Tasks", "Agent", "New agent", "Audit")

    def __init__(self, **params):
        super().__init__(**params)
        m = self.model

        def showing(view):  # (only a person's click opens the detail tab, not every
            view.show = self._details  # change of the selection)
            return view

        # Each view is made when its tab first opens: a hidden one follows nothing (it is
        # refreshed on opening), and making all seven with their tables was ~0.3 s of the
        # page's request (py-spy of DocHandler.get).
        self._lazy = LazyTabs(self.tabs, [
            Later(lambda _: showing(FleetBoard(model=m))),
            Later(lambda _: ApprovalsInbox(model=m)), Later(lambda _: AlertsView(model=m)),
            Later(lambda _: TaskQueueView(model=m)), Later(lambda _: AgentDetail(model=m)),
            Later(lambda _: showing(NewAgentForm(model=m))),
            Later(lambda _: AuditView(model=m))], opening=self._refresh_tab,
            sizing_mode="stretch_width")
        self._tabs = self._lazy.tabs
        self.refresh()

    def _view(self, title: str):
        return self._lazy.view(self.tabs.index(title))

    fleet = property(lambda self: self._view("Fleet"))
    detail = property(lambda self: self._view("Agent"))

    def _details(self, agent_id: str) -> None:
        self.model.selected = agent_id
        self._show_detail()

    def _show_detail(self) -> None:
        if self._tabs.active != self.tabs.index("Agent"):
            self._tabs.active = self.tabs.index("Agent")
        else:
            self.detail.refresh()

    def refresh(self) -> None:
        self._refresh_tab(self._tabs.active)

    def _refresh_tab(self, i: int) -> None:
        view = self._lazy.view(i)
        if hasattr(view, "refresh"):
            view.refresh()

    def subscribe(self, supervisor) -> None:
        """Redraw on the agents' pushed changes, at most four times a second. The
        supervisor calls from its own threads: they only schedule, with the one document
        method that is safe from another thread (``add_next_tick_callback``); the redraw
        runs on the session's loop 250 ms later, taking every change since with it. (A
        Panel periodic callback did the same by polling, but kept the page's busy
        indicator spinning.)"""
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            return
        self._scheduled = False

        def redraw() -> None:
            self._scheduled = False
            self.refresh()

        def soon() -> None:
            doc.add_timeout_callback(redraw, 250)

        def changed(_update) -> None:
            if not self._scheduled:
                self._scheduled = True
                doc.add_next_tick_callback(soon)

        unsubscribe = supervisor.on_change(changed)
        unsubscribe_work = supervisor.on_work(lambda kind, item: changed(item))
        unsubscribe_output = self._follow_output(supervisor, doc)
        doc.on_session_destroyed(lambda ctx: (unsubscribe(), unsubscribe_work(),
                                              unsubscribe_output()))

    def _follow_output(self, supervisor, doc):
        """The lines agents print, to their fleet cards within ~0.3 s: the supervisor's
        reader threads only note each agent's newest line; one callback on the session's
        loop 250 ms after the first of them patches those cards' text — every line since
        in one go, no list of agents read, nothing done while the fleet is not shown.
        (Lines are not changes: :meth:`subscribe`'s redraw would re-read every agent per
        line, and before this a card's line waited for the next state change.)"""
        lock = threading.Lock()
        printed: dict[str, dict] = {}
        scheduled = [False]

        def flush() -> None:
            with lock:
                scheduled[0] = False
                lines = dict(printed)
                printed.clear()
            if self._tabs.active == self.tabs.index("Fleet"):
                self.fleet.lines(lines)

        def soon() -> None:
            doc.add_timeout_callback(flush, 250)

        def output(agent_id: str, last: dict) -> None:
            with lock:
                printed[agent_id] = last
                if scheduled[0]:
                    return
                scheduled[0] = True
            doc.add_next_tick_callback(soon)

        return supervisor.on_output(output)

    def template(self) -> pn.template.BaseTemplate:
        role = pn.pane.HTML(f'<span style="color:white;opacity:.85;font-size:13px">role: '
                            f'{escape(self.model.role)}</span>', margin=(10, 0, 0, 20))
        return pn.template.BootstrapTemplate(
            title="Happy Observatory · Control", main=[self._tabs],
            header=[nav("control"), role, FollowBrowserTheme(width=0, height=0, margin=0)],
            header_background="#2b8a3e", theme=pn.config.theme,
            design=ThemedDesign)  # (light buttons and tables' pagers follow the theme)

    def __panel__(self):
        return self._tabs
