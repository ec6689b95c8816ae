"""The Workflows page: pick or start a workflow (from a template or a JSON file), draw it
on the canvas, save it as a new version, compare versions, run it and watch each step's
state on the canvas as the run pushes it, with the run's history as a timeline in which
parallel branches stand side by side."""

from __future__ import annotations

import io
import json
from typing import Any

import holoviews as hv
import panel as pn
import param

from ..models.workflows import WorkflowsModel
from .common import empty, role_page, table
from .escape import escape
from .workflow_canvas import STATE_COLORS, Canvas, app_graph

#: The template picker's first choice: start from nothing.
EMPTY = "(an empty canvas)"


class WorkflowsPage(pn.viewable.Viewer):
    model = param.ClassSelector(class_=WorkflowsModel)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        m = self.model
        self.canvas = Canvas(dark=pn.config.theme == "dark")
        self.picker = pn.widgets.Select(name="Workflow", width=260)
        self.template = pn.widgets.Select(name="New", width=230)
        self.wf_name = pn.widgets.TextInput(name="Name", width=220)
        self.save_btn = pn.widgets.Button(name="Save version", button_type="primary",
                                          width=120, disabled=not m.may("workflow-edit"))
        self.save_new = pn.widgets.Button(name="Save as new", width=110,
                                          disabled=not m.may("workflow-edit"))
        self.undo_btn = pn.widgets.Button(name="Undo", width=80, disabled=True)
        self.check_btn = pn.widgets.Button(name="Check", width=80)
        self.status = pn.pane.HTML("", sizing_mode="stretch_width", margin=(4, 10))
        self.project = pn.widgets.TextInput(name="Project", width=180,
                                            placeholder="its name (scanned)")
        self.inputs = pn.widgets.TextInput(name="Inputs (JSON)", width=260, placeholder="{}")
        self.run_btn = pn.widgets.Button(name="Run", button_type="success", width=80,
                                         disabled=not m.may("workflow-run"))
        self.runs = pn.Column(sizing_mode="stretch_width")
        self.run_head = pn.pane.HTML("", sizing_mode="stretch_width")
        self.cancel_btn = pn.widgets.Button(name="Cancel run", button_type="danger", width=110,
                                            visible=False)
        self.resume_btn = pn.widgets.Button(name="Resume run", width=110, visible=False)
        self.timeline = pn.pane.HoloViews(None, sizing_mode="stretch_width", height=240)
        self.step = pn.pane.HTML("", sizing_mode="stretch_width")
        self.version_a = pn.widgets.Select(name="Compare", width=110)
        self.version_b = pn.widgets.Select(name="with", width=110)
        self.diff_btn = pn.widgets.Button(name="Diff", width=70)
        self.diff = pn.pane.HTML("", sizing_mode="stretch_width")
        self.meta = pn.widgets.TextAreaInput(name="Agents and inputs (JSON)", height=180,
                                             sizing_mode="stretch_width")
        self.download = pn.widgets.FileDownload(callback=self._export, filename="workflow.json",
                                                label="Export JSON", width=130)
        self.upload = pn.widgets.FileInput(accept=".json", width=220)
        self.app = pn.Column(sizing_mode="stretch_width")
        self._runs_table = None
        self._scheduled = False
        self._wire()
        self._fill_pickers()

    # -- wiring -------------------------------------------------------------------------
    def _wire(self) -> None:
        self.picker.param.watch(lambda e: self._open(e.new), "value")
        self.template.param.watch(lambda e: self._from_template(e.new), "value")
        self.save_btn.on_click(lambda _: self._save(as_new=False))
        self.save_new.on_click(lambda _: self._save(as_new=True))
        self.undo_btn.on_click(lambda _: self._undo())
        self.check_btn.on_click(lambda _: self._check())
        self.run_btn.on_click(lambda _: self._run())
        self.cancel_btn.on_click(lambda _: self._act("cancel"))
        self.resume_btn.on_click(lambda _: self._act("resume"))
        self.diff_btn.on_click(lambda _: self._diff())
        self.upload.param.watch(lambda e: self._import(e.new), "value")
        self.canvas.param.watch(self._edited, "changed")
        self.model.param.watch(lambda e: setattr(self.undo_btn, "disabled", e.new == 0),
                               "undo_depth")
        self.canvas.flow.on("node_clicked", self._clicked)
        self._last = self.canvas.spec()

    def _fill_pickers(self, select: str | None = None) -> None:
        rows = self.model.workflows()
        options = {f"{w['name']} (v{w['version']}, {w['runs']} runs)": w["id"] for w in rows}
        self.picker.options = {"—": "", **options}
        self.template.options = ["—", EMPTY, *[t["name"] for t in self.model.templates()]]
        if select is not None:
            self.picker.value = select
        elif rows and not self.picker.value:
            self.picker.value = rows[0]["id"]
        elif not rows and not self.canvas.flow.nodes:
            # (a new workbench: a shipped workflow to start from, not an empty canvas)
            self._from_template(self.model.templates()[0]["name"])

    # -- a workflow on the canvas ---------------------------------------------------------
    def _open(self, workflow_id: str) -> None:
        self.model.workflow = workflow_id or ""
        self.model.run = ""
        self.model.forget()
        w = self.model.definition()
        self._show(w["spec"] if w else None)
        versions = [v["version"] for v in self.model.versions()]
        self.version_a.options = versions
        self.version_b.options = versions
        if versions:
            self.version_a.value = versions[max(0, len(versions) - 2)]
            self.version_b.value = versions[-1]
        self.diff.object = ""
        self._refresh_runs()
        self._refresh_run()
        if w:
            self._say(f"{escape(w['name'])} — version {w['version']} by "
                      f"{escape(w.get('created_by') or '?')}. {escape(w.get('description'))}")

    def _show(self, spec: dict[str, Any] | None) -> None:
        self.canvas.load(spec)
        self.wf_name.value = (spec or {}).get("name") or ""
        meta = {"agents": (spec or {}).get("agents") or {},
                "inputs": (spec or {}).get("inputs") or {},
                "description": (spec or {}).get("description") or ""}
        self.meta.value = json.dumps(meta, indent=1)
        self._last = self.canvas.spec()
        app = (spec or {}).get("app")
        self.app.objects = [] if not app else [
            pn.pane.HTML(f"<b>The app's own graph</b> ({escape(app['target'])}, read-only: "
                         "it runs as the one step above; dashed: a conditional edge)"),
            app_graph(app, dark=pn.config.theme == "dark")]

    def _from_template(self, name: str) -> None:
        if not name or name == "—":
            return
        if name == EMPTY:
            self.picker.value = ""
            self._show(None)
            self.template.value = "—"
            self._say("An empty canvas: drag steps onto it from the palette.")
            return
        template = next(t for t in self.model.templates() if t["name"] == name)
        self.picker.value = ""  # a new workflow: saved under its own id
        self._show(template)
        self.template.value = "—"
        self._say(f"The template <b>{escape(name)}</b> is on the canvas: set its agents and "
                  "inputs below, then <i>Save as new</i>.")

    def _edited(self, _event) -> None:
        self.model.remember(self._last)
        self._last = self.canvas.spec()

    def _undo(self) -> None:
        spec = self.model.undo()
        if spec is not None:
            self.canvas.load(spec)
            self._last = spec
            self._say("Undone.")

    def _current(self) -> dict[str, Any]:
        """The canvas with the name and the agents/inputs editor's fields."""
        try:
            meta = json.loads(self.meta.value or "{}")
        except ValueError as err:
            raise ValueError(f"agents and inputs: not JSON ({err})") from None
        if not isinstance(meta, dict):
            raise ValueError("agents and inputs: a JSON object")
        spec = self.canvas.spec()
        spec.update({k: meta[k] for k in ("agents", "inputs", "description") if k in meta})
        spec["name"] = self.wf_name.value.strip()
        return spec

    def _check(self) -> None:
        from ..control.backends import BACKENDS
        from ..workflows.spec import check

        try:
            check(self._current(), BACKENDS)
        except ValueError as err:
            self._say(f"✗ {escape(err)}", error=True)
            return
        self._say("✓ The workflow is valid.")

    def _save(self, as_new: bool) -> None:
        try:
            saved = self.model.save(self._current(), as_new=as_new)
        except (ValueError, KeyError, PermissionError) as err:
            self._say(f"✗ Not saved: {escape(err)}", error=True)
            return
        self.model.forget()
        self._fill_pickers(select=saved["id"])
        self._open(saved["id"])
        self._say(f"✓ Saved {escape(saved['name'])} as version {saved['version']}.")

    def _export(self) -> io.StringIO:
        spec = self._current()
        self.download.filename = f"{spec['name'] or 'workflow'}.json".replace(" ", "-")
        return io.StringIO(json.dumps(spec, indent=2))

    def _import(self, raw: bytes | None) -> None:
        if not raw:
            return
        try:
            spec = json.loads(raw)
            if not isinstance(spec, dict) or not isinstance(spec.get("nodes"), list):
                raise ValueError("not a workflow (no nodes)")
        except ValueError as err:
            self._say(f"✗ {escape(self.upload.filename)}: {escape(err)}", error=True)
            return
        self.picker.value = ""
        self._show(spec)
        self._say(f"{escape(self.upload.filename)} is on the canvas: <i>Save as new</i> to "
                  "keep it.")

    def _diff(self) -> None:
        a, b = self.version_a.value, self.version_b.value
        if not self.model.workflow or a is None or b is None:
            return
        d = self.model.diff(a, b)
        parts = [f"<b>v{a} → v{b}</b>"]
        for label, key in (("added", "added"), ("removed", "removed"), ("moved", "moved")):
            if d[key]:
                parts.append(f"{label}: {escape(', '.join(d[key]))}")
        if d["changed"]:
            parts.append("changed: " + escape(", ".join(
                f"{c['id']} ({', '.join(c['fields'])})" for c in d["changed"])))
        for label, key in (("routes added", "edges_added"), ("routes removed", "edges_removed")):
            if d[key]:
                parts.append(f"{label}: " + escape(", ".join(
                    f"{s}→{t}{' [' + w + ']' if w else ''}" for s, t, w in d[key])))
        text = escape(d["text"]) or "(the same definition)"
        self.diff.object = (" · ".join(parts) + "<pre style='max-height:260px;overflow:auto;"
                            f"font-size:12px'>{text}</pre>")

    # -- runs -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            inputs = json.loads(self.inputs.value or "{}")
            if not isinstance(inputs, dict):
                raise ValueError("inputs: a JSON object")
            if self.project.value.strip():
                inputs["project"] = self.project.value.strip()
            run = self.model.start(inputs)
        except (ValueError, KeyError, PermissionError) as err:
            self._say(f"✗ Not started: {escape(err)}", error=True)
            return
        self._say(f"Run {escape(run['id'])} started.")
        self._refresh_runs()
        self._refresh_run()

    def _act(self, action: str) -> None:
        try:
            self.model.act(action)
        except (ValueError, KeyError, PermissionError) as err:
            self._say(f"✗ {escape(err)}", error=True)
        self._refresh_run()

    def _refresh_runs(self) -> None:
        df = self.model.runs_frame()
        if df.empty:
            self.runs.objects = [empty("No runs of this workflow yet.")]
            self._runs_table = None
            return
        shown = df.assign(cost_usd=df["cost_usd"].fillna(0.0).round(4))
        if self._runs_table is None:
            self._runs_table = table(shown, page_size=6)
            self._runs_table.param.watch(self._pick_run, "selection")
            self.runs.objects = [self._runs_table]
        else:
            self._runs_table.value = shown

    def _pick_run(self, event) -> None:
        if event.new and self._runs_table is not None:
            self.model.run = str(self._runs_table.value.iloc[event.new[0]]["id"])
            self._refresh_run()

    def _refresh_run(self) -> None:
        detail = self.model.run_detail()
        states = self.model.node_states(detail)
        self.canvas.show_states(states)
        if detail is None:
            self.run_head.object = ""
            self.timeline.object = None
            self.step.object = ""
            self.cancel_btn.visible = self.resume_btn.visible = False
            return
        color = {"succeeded": "#2b8a3e", "failed": "#e03131", "waiting": "#ae3ec9",
                 "cancelled": "#868e96"}.get(detail["state"], "#f59f00")
        self.run_head.object = (
            f"<b>{escape(detail['id'])}</b> <span style='color:{color};font-weight:700'>"
            f"{escape(detail['state'])}</span> · v{detail['version']} · started by "
            f"{escape(detail.get('started_by'))} · ${float(detail.get('cost_usd') or 0):.4f}"
            + (f" · {escape(detail['message'])}" if detail.get("message") else ""))
        may = self.model.may("workflow-run")
        self.cancel_btn.visible = may and detail["state"] in ("running", "waiting")
        self.resume_btn.visible = may and detail["state"] in ("failed", "cancelled")
        self.timeline.object = self._timeline(detail)

    def _timeline(self, detail: dict[str, Any]):
        df = self.model.timeline(detail)
        if df.empty:
            return None
        order = list(dict.fromkeys(df["label"]))
        df = df.assign(y=df["label"].map({label: i for i, label in enumerate(order)}),
                       color=df["state"].map(STATE_COLORS).fillna("#868e96"),
                       seconds=(df["end"] - df["start"]).dt.total_seconds().round(2))
        segments = hv.Segments(df, ["start", "y", "end", "y"],
                               ["label", "visit", "state", "seconds", "color"])
        return segments.opts(
            color="color", line_width=14, height=max(140, 34 * len(order) + 60),
            responsive=True, yticks=list(enumerate(order)), ylabel="", xlabel="",
            invert_yaxis=True, tools=["hover"], title="Which steps ran, when (branches side "
            "by side)", default_tools=["pan", "wheel_zoom", "reset"])

    def _clicked(self, payload: dict[str, Any]) -> None:
        """A step clicked while a run is shown: each of its visits, with the task, agent
        session, test run or approval it made."""
        detail = self.model.run_detail()
        node_id = payload.get("node_id") or (payload.get("node") or {}).get("id")
        if detail is None or not node_id:
            return
        visits = [s for s in detail["steps"] if s["node"] == node_id]
        if not visits:
            self.step.object = f"<b>{escape(node_id)}</b>: not reached in this run."
            return
        rows = []
        for s in visits:
            made = []
            if s.get("agent_id"):
                made.append(f"<a href='./control?agent={escape(s['agent_id'])}'>agent "
                            f"{escape(s['agent_id'])}</a>")
            for key, label in (("task_id", "task"), ("session_id", "session"),
                               ("test_run_id", "test run"), ("approval_id", "approval")):
                if s.get(key):
                    made.append(f"{label} <code>{escape(s[key])}</code>")
            rows.append(
                f"<tr><td>#{s['visit']}</td><td>{escape(s.get('state'))}</td>"
                f"<td>{escape(s.get('outcome'))}</td><td>{' · '.join(made)}</td>"
                f"<td style='text-align:right'>${float(s.get('cost_usd') or 0):.4f}</td>"
                f"<td><pre style='margin:0;white-space:pre-wrap;max-height:120px;"
                f"overflow:auto'>{escape((s.get('output') or '')[-800:])}</pre></td></tr>")
        self.step.object = (f"<b>Step {escape(node_id)}</b><table style='width:100%;"
                            "font-size:13px'><tr><th>visit</th><th>state</th><th>outcome"
                            "</th><th>made</th><th>cost</th><th>output</th></tr>"
                            + "".join(rows) + "</table>")

    def _say(self, html: str, error: bool = False) -> None:
        color = "#e03131" if error else "inherit"
        self.status.object = f"<span style='color:{color}'>{html}</span>"

    # -- live -----------------------------------------------------------------------------
    def subscribe(self, supervisor) -> None:
        """Redraw the shown run when the engine pushes a change of it (at most four times
        a second, on the session's loop: the engine calls from its own threads)."""
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            return

        def redraw() -> None:
            self._scheduled = False
            self._refresh_run()
            self._refresh_runs()

        def changed(kind: str, item: dict[str, Any]) -> None:
            if kind != "workflow-run" or item.get("id") != self.model.run or self._scheduled:
                return
            self._scheduled = True
            doc.add_next_tick_callback(lambda: doc.add_timeout_callback(redraw, 250))

        unsubscribe = supervisor.on_work(changed)
        doc.on_session_destroyed(lambda ctx: unsubscribe())

    # -- layout ---------------------------------------------------------------------------
    def __panel__(self):
        bar = pn.Row(self.picker, self.template, self.wf_name, self.save_btn, self.save_new,
                     self.undo_btn, self.check_btn, sizing_mode="stretch_width")
        files = pn.Row(self.download, self.upload, self.version_a, self.version_b,
                       self.diff_btn, sizing_mode="stretch_width")
        run = pn.Row(self.project, self.inputs, self.run_btn, self.cancel_btn,
                     self.resume_btn, sizing_mode="stretch_width")
        return pn.Column(
            bar, self.status, self.canvas, self.app,
            pn.Accordion(("Agents, inputs and description", self.meta),
                         ("Versions, export and import", pn.Column(files, self.diff)),
                         sizing_mode="stretch_width"),
            pn.pane.HTML("<h3 style='margin:8px 0 0'>Runs</h3>"), run, self.runs,
            self.run_head, self.timeline, self.step, sizing_mode="stretch_width")

    def template_page(self) -> pn.template.BaseTemplate:
        return role_page("Workflows", "workflows", self, self.model.role, "#5f3dc4")


def workflows_page(store) -> pn.template.BaseTemplate:
    from ..server.state import get_supervisor, get_workflows
    from ..workflows.local import LocalWorkflows
    from .control_page import session_principal

    page = WorkflowsPage(model=WorkflowsModel(source=LocalWorkflows(get_workflows(),
                                                                    session_principal())))
    page.subscribe(get_supervisor())
    run = (pn.state.session_args or {}).get("run")
    if run:  # ?run=wr-…: that run on its workflow's canvas
        try:
            detail = page.model.source.workflow_run(run[0].decode(errors="replace"))
        except KeyError as err:
            page._say(escape(err.args[0]), error=True)
        else:
            page.picker.value = detail["workflow_id"]
            page.model.run = detail["id"]
            page._refresh_run()
    return page.template_page()

