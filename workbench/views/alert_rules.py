"""The alert rules on the control page's Alerts tab: the list, a form built from the rule's
param class (the fields its kind reads), enable/disable, delete, and a preview of what a
rule — saved or being edited — would have fired on in the last day. Changing a rule is for
admins (the buttons say so; the server checks again); anyone who reads may preview."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import HTMLTemplateFormatter

from ..models.control import ControlModel
from .common import empty, table
from .escape import escape
from .notify import attempt

#: A table's name cells, each with its tooltip (the name whole, then the id): the only
#: markup is ours; both values are escaped by :func:`named` before they get here.
_NAMED = '<span title="<%= {tip} %>"><%= value %></span>'


def named(df: pd.DataFrame, shown: dict[str, str]) -> pd.DataFrame:
    """``df`` as a table of the control page shows it: each column of ``shown`` names
    something (an agent, a task, a rule) whose id is in the column ``shown[column]``; its
    cells get a tooltip, ``{column}_tip`` (the name whole — a cell may elide it — then
    the id). Those columns are escaped here, as their cells are HTML
    (:func:`named_options`); ``df`` itself is left as it was."""
    out = df.copy()
    for column, id_column in shown.items():
        if column not in out.columns:
            out[column] = None
        ids = out[id_column] if id_column in out.columns else pd.Series(None, out.index)
        names = out[column]
        out[f"{column}_tip"] = pd.Series([
            escape(f"{n}\n{i}" if _text(n) and _text(i) and n != i else (n if _text(n) else i))
            for n, i in zip(names, ids, strict=True)], index=out.index, dtype=object)
        out[column] = pd.Series([escape(n) if _text(n) else None for n in names],
                                index=out.index, dtype=object)
    return out


def _text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def named_options(shown: dict[str, str], hidden: tuple[str, ...] = ()) -> dict[str, Any]:
    """The :func:`~.common.table` options for a :func:`named` frame: the name cells'
    template, and the columns only their tooltips show (the ids, the tips) hidden."""
    return {"formatters": {c: HTMLTemplateFormatter(template=_NAMED.format(tip=f"{c}_tip"))
                           for c in shown},
            "hidden_columns": [*hidden, *shown.values(), *(f"{c}_tip" for c in shown)]}


def rule_widget(name: str, p: param.Parameter, value: Any):
    """The widget for one parameter of the rule's param class, holding ``value``."""
    if isinstance(p, param.ListSelector):
        w = pn.widgets.MultiChoice(name=name, options=list(p.objects), value=list(value or []))
    elif isinstance(p, param.Selector):
        w = pn.widgets.Select(name=name, options=list(p.objects), value=value)
    elif isinstance(p, param.Boolean):
        w = pn.widgets.Checkbox(name=name, value=bool(value))
    elif isinstance(p, param.Integer):
        low, high = p.bounds or (None, None)
        w = pn.widgets.IntInput(name=name, value=value, start=low, end=high)
    elif isinstance(p, param.Number):
        low, high = p.bounds or (None, None)
        w = pn.widgets.FloatInput(name=name, value=value, start=low, end=high)
    else:
        w = pn.widgets.TextInput(name=name, value="" if value is None else str(value))
    # (Panel renders a description as Markdown: HTML)
    w.description = escape(p.doc) or None
    w.width = 300
    return w


#: The rules table: a rule's name with its id in the tooltip; headers' full meaning.
RULE_NAMES = {"name": "rule_id"}
RULE_TIPS = {
    "name": "The rule's name (hover over one for its id)",
    "kind": "What it watches: state, stale, threshold, loop, test_loop, stall or "
            "test_health",
    "enabled": "Whether it is evaluated now",
    "agents": "Which agents it watches: a glob over their names",
    "actions": "What it does when it fires: notify, pause or stop the agent",
}


class AlertRulesView(pn.viewable.Viewer):
    """The rules: a table, a form for the selected (or a new) rule, and its preview."""

    model = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self._table = table(named(pd.DataFrame(columns=ControlModel.RULE_COLUMNS), RULE_NAMES),
                            page_size=10, boxed=True,
                            empty_text="No rules: make one with New rule.",
                            widths={"kind": 96, "enabled": 104, "agents": 110, "actions": 130},
                            titles={"name": "rule"}, tips=RULE_TIPS, grow={"name": 1},
                            # ("agents" is a count elsewhere; here a glob)
                            kinds={"agents": "text"}, **named_options(RULE_NAMES))
        self._table.param.watch(lambda e: self._picked(), "selection")
        self._frame = pd.DataFrame()
        self._admin = self.model.may("rules")
        self._controls: pn.Row | None = None  # (made when shown)
        self._armed = 0.0
        self._form = pn.Column(empty("Select a rule to edit it, or make a New rule."),
                               width=340)
        # (a table is made per preview: one made in a hidden box draws with no columns)
        self._preview_box = pn.Column(sizing_mode="stretch_width")
        self._widgets: dict[str, Any] = {}
        self._editing: dict[str, Any] | None = None

    # -- the list -----------------------------------------------------------------------
    def refresh(self) -> None:
        frame = self.model.rules()
        if not frame.equals(self._frame):
            picked = self._picked_id()
            self._frame = frame
            self._table.value = named(frame, RULE_NAMES)
            rows = [i for i, r in enumerate(frame.get("rule_id", [])) if r == picked]
            if self._table.selection != rows[:1]:
                self._table.selection = rows[:1]
        self._buttons()

    def _picked_id(self) -> str | None:
        rows = self._table.selection
        if not rows or rows[0] >= len(self._frame):
            return None
        return self._frame.iloc[rows[0]]["rule_id"]

    def _make_controls(self) -> pn.Row:
        self._new = pn.widgets.Button(name="New rule", button_type="primary", width=120)
        self._new.on_click(lambda e: self._edit(None))
        self._toggle = pn.widgets.Button(name="Disable", button_type="light", width=120,
                                         disabled=True)
        self._toggle.on_click(lambda e: self._enable())
        self._delete = pn.widgets.Button(name="Delete", button_type="light", width=120,
                                         disabled=True)
        self._delete.on_click(lambda e: self._remove())
        self._controls = pn.Row(self._new, self._toggle, self._delete)
        self._buttons()
        return self._controls

    def _buttons(self) -> None:
        if self._controls is None:
            return
        picked = self._picked_id()
        row = (self._frame[self._frame["rule_id"] == picked].iloc[0]
               if picked is not None else None)
        self._toggle.disabled = self._delete.disabled = not (self._admin and picked)
        self._toggle.name = "Enable" if row is not None and not row["enabled"] else "Disable"
        if self._armed and time.monotonic() - self._armed >= 5:
            self._disarm()

    def _picked(self) -> None:
        self._disarm()
        self._buttons()
        rule_id = self._picked_id()
        if rule_id is not None and (self._editing or {}).get("rule_id") != rule_id:
            rule = self.model.rule(rule_id)
            if rule is not None:
                self._edit(rule)

    # -- the form -----------------------------------------------------------------------
    def _edit(self, rule: dict[str, Any] | None) -> None:
        """Fill the form with ``rule`` (None: a new rule at the class's defaults)."""
        if rule is None and self._table.selection:
            self._table.selection = []
        values = rule or {**self.model.new_rule(), "name": "", "rule_id": ""}
        self._editing = rule
        cls = self.model.rule_class()
        self._widgets = {
            "name": pn.widgets.TextInput(name="name", value=values.get("name") or "",
                                         placeholder="what people read", width=300),
            "rule_id": pn.widgets.TextInput(name="rule_id", value=values.get("rule_id") or "",
                                            placeholder="(made for you)", width=300,
                                            disabled=rule is not None),
            **{n: rule_widget(n, cls.param[n], values.get(n)) for n in cls.param
               if n != "name"}}
        self._widgets["kind"].param.watch(lambda e: self._show_fields(), "value")
        save = pn.widgets.Button(name="Save rule", button_type="primary", width=140,
                                 disabled=not self._admin)
        save.on_click(lambda e: self._save())
        preview = pn.widgets.Button(name="Preview (last day)", button_type="light",
                                    width=150)
        preview.on_click(lambda e: self._run_preview())
        title = (f"Edit {escape(rule['name'])}" if rule else "New rule")
        note = ("" if self._admin else
                '<div style="font-size:12px;color:#667">Changing rules is for admins; '
                "anyone may preview.</div>")
        self._form.objects = [pn.pane.HTML(f"<b>{title}</b>{note}"), *self._widgets.values(),
                              pn.Row(save, preview)]
        self._show_fields()
        self._preview_box.objects = [empty("Preview (last day) shows what this rule would "
                                           "have fired on in the last day.")]

    def _show_fields(self) -> None:
        shown = {"name", "rule_id", *self.model.rule_fields(self._widgets["kind"].value)}
        for name, w in self._widgets.items():
            w.visible = name in shown

    def _body(self) -> dict[str, Any]:
        body = {**(self._editing or {}),
                **{n: w.value for n, w in self._widgets.items() if n != "rule_id"}}
        body["name"] = body["name"].strip()
        rule_id = self._widgets["rule_id"].value.strip()
        body.pop("id", None)
        if rule_id:
            body["rule_id"] = rule_id
        else:
            body.pop("rule_id", None)
        return body

    def _save(self) -> None:
        saved = attempt(self.model.save_rule, self._body(), ok="rule saved")
        if saved is not None:
            self._editing = saved
            self.refresh()
            rows = [i for i, r in enumerate(self._frame["rule_id"]) if r == saved["rule_id"]]
            self._table.selection = rows[:1]
            self._edit(saved)

    def _run_preview(self) -> None:
        found = attempt(self.model.preview_rule, self._body())
        if found is None:
            return
        frame, info = found
        agents = info.get("agents") or []
        shown = ", ".join(agents[:8]) + (f" and {len(agents) - 8} more" if len(agents) > 8
                                         else "")
        summary = pn.pane.HTML(
            f'<div style="margin:4px 0"><b>{escape(info.get("count", 0))} firing(s)</b> in '
            f'the last day, over {escape(len(agents))} agent(s) matching '
            f'<code>{escape(info["rule"]["agents"])}</code>'
            + (f" ({escape(shown)})" if agents else "")
            + (f'<div style="color:#e8590c">{escape(info["note"])}</div>'
               if info.get("note") else "")
            + '<div style="font-size:12px;color:#667">Each moment its condition became '
            "true; the live rule keeps one alert open per agent, so it may fire fewer "
            "times.</div></div>", sizing_mode="stretch_width")
        found = table(named(frame, {"agent": "agent_id"}), page_size=10, selectable=False,
                      boxed=True,
                      empty_text="Nothing: in the last day the rule would not have fired.",
                      widths={"at": 156, "agent": 140}, kinds={"at": "time"},
                      tips={"at": "When its condition became true",
                            "title": "The title the live rule gives such an alert"},
                      **named_options({"agent": "agent_id"}))
        self._preview_box.objects = [summary, found.box]

    # -- enable, delete -----------------------------------------------------------------
    def _enable(self) -> None:
        rule_id = self._picked_id()
        if rule_id is None:
            return
        enabled = bool(self._frame[self._frame["rule_id"] == rule_id].iloc[0]["enabled"])
        done = attempt(self.model.enable_rule, rule_id, not enabled,
                       ok=f"{rule_id}: {'disabled' if enabled else 'enabled'}")
        if done is not None:
            self._editing = None
            self.refresh()
            self._edit(done)

    def _remove(self) -> None:
        rule_id = self._picked_id()
        if rule_id is None:
            return
        if time.monotonic() - self._armed >= 5:  # the first click arms it for five seconds
            self._armed = time.monotonic()
            self._delete.name, self._delete.button_type = "Really delete?", "danger"
            return
        self._disarm()
        if attempt(self.model.delete_rule, rule_id, ok=f"{rule_id}: deleted") is not None:
            self._table.selection = []
            self._editing = None
            self.refresh()
            self._form.objects = [empty("Select a rule to edit it, or make a New rule.")]
            self._preview_box.objects = []

    def _disarm(self) -> None:
        self._armed = 0.0
        if self._controls is not None:
            self._delete.name, self._delete.button_type = "Delete", "light"

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown("#### Alert rules"),
            self._controls or self._make_controls(),
            self._table.box,
            pn.Row(self._form, self._preview_box, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
