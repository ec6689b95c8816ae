"""The composer's canvas: a panel-reactflow graph whose nodes are a workflow's steps and
edges its routes, a palette to drag new steps from, and a settings form per step generated
from its kind's parameters (workflows/spec.py) in plain Panel widgets.

panel-reactflow 0.5.1 is pinned: it serves its compiled bundle from this server (its import
map names esm.sh, which the bundle never loads — the tour's request check proves it), it
has no palette of its own (a dragged item carries our MIME type to its ``drop`` event), and
its default form needs panel-material-ui, so the form here is our own.
"""

from __future__ import annotations

import itertools
from typing import Any

import panel as pn
import param
from panel_reactflow import NodeType, ReactFlow

from ..workflows.spec import KINDS
from .escape import escape

MIME = "application/x-observatory-step"
KIND_LABELS = {"agent": "Agent step", "tests": "Tests", "approval": "Approval",
               "condition": "Condition", "parallel": "Parallel", "join": "Join", "end": "End"}
#: A step's state → its colour on the canvas (the fleet's colours where they overlap).
STATE_COLORS = {"running": "#f59f00", "needs approval": "#ae3ec9", "done": "#2b8a3e",
                "failed": "#e03131", "cancelled": "#868e96", "skipped": "#adb5bd",
                "waiting": "#74c0fc"}

# Any stylesheet of ours makes panel-reactflow 0.5.1 drop the node chrome class from typed
# nodes (nodeClassName(): more than 7 stylesheets), so the chrome is declared here, with
# xyflow's own variables, so that its light and dark modes still apply.
CSS = """
.react-flow__node { border-radius: 6px; min-width: 150px; max-width: 230px; font-size: 13px;
  border: var(--xy-node-border, var(--xy-node-border-default));
  background: var(--xy-node-background-color, var(--xy-node-background-color-default));
  color: var(--xy-node-color, var(--xy-node-color-default)); }
.react-flow__node.selected { box-shadow: 0 0 0 2px #1971c2; }
.react-flow__edge-text { font-size: 11px; }
""" + "".join(
    f".wf-{state.replace(' ', '-')} {{ border: 2px solid {color} !important; "
    f"box-shadow: 0 0 0 3px {color}33 !important; }}\n"
    for state, color in STATE_COLORS.items())

def node_types() -> dict[str, NodeType]:
    return {kind: NodeType(type=kind, label=KIND_LABELS[kind], inputs=["in"],
                           outputs=[] if kind == "end" else ["out"])
            for kind in KINDS}


def defaults(kind: str) -> dict[str, Any]:
    cls = KINDS[kind]
    return {k: p.default for k, p in cls.param.objects().items() if k != "name"}


def step_form(data, schema, *, id, type, on_patch):  # noqa: A002 (the library's names)
    """The settings form of one step: widgets made from its kind's parameters; each change
    is patched into the node's data."""
    cls = KINDS.get(type)
    if cls is None or not [k for k in cls.param if k != "name"]:
        return pn.pane.HTML(f"<b>{escape(KIND_LABELS.get(type, type))}</b> "
                            f"<code>{escape(id)}</code><br><small>no settings</small>")
    values = {k: v for k, v in (data or {}).items() if k in cls.param and k != "name"}
    try:
        obj = cls(**values)
    except (ValueError, TypeError):
        obj = cls()
    names = [k for k in cls.param if k != "name"]
    widgets = {k: {"type": pn.widgets.TextAreaInput, "height": 110}
               for k in ("prompt", "message") if k in names}
    form = pn.Param(obj, parameters=names, show_name=False, widgets=widgets, width=280)
    obj.param.watch(lambda e: on_patch({e.name: e.new}), names)
    head = pn.pane.HTML(f"<b>{escape(KIND_LABELS[type])}</b> <code>{escape(id)}</code><br>"
                        f"<small>{escape((cls.__doc__ or '').strip())}</small>", width=280)
    return pn.Column(head, form, width=290)


def edge_form(data, schema, *, id, type, on_patch):  # noqa: A002
    """An edge's condition: the outcome of its source step it is taken on."""
    choices = ["(good outcome)", "always", "ok", "failed", "passed", "error", "allowed",
               "denied", "yes", "no", "exhausted"]
    when = (data or {}).get("when") or "(good outcome)"
    select = pn.widgets.Select(name="taken when the step ends", options=choices, value=when,
                               width=260)
    select.param.watch(lambda e: on_patch({"when": None if e.new == "(good outcome)"
                                           else e.new}), "value")
    return pn.Column(pn.pane.HTML(f"<b>Route</b> <code>{escape(id)}</code>"), select,
                     width=290)


def palette() -> pn.pane.HTML:
    items = "".join(
        f"<div class='wf-pal' data-kind='{kind}' draggable='true' title='drag onto the canvas' "
        f"ondragstart=\"event.dataTransfer.setData('{MIME}', JSON.stringify({{kind:'{kind}'}}));"
        f"event.dataTransfer.effectAllowed='copy'\" style='padding:5px 9px;margin:4px 0;"
        f"border:1px solid #adb5bd;border-left:4px solid #1971c2;border-radius:5px;"
        f"cursor:grab;background:var(--panel-surface-color,#fff);font:13px sans-serif'>"
        f"{KIND_LABELS[kind]}</div>" for kind in KINDS)
    return pn.pane.HTML("<div style='font:600 12px sans-serif;opacity:.8'>Drag a step onto "
                        f"the canvas</div>{items}", width=125, margin=(4, 8, 4, 4))


def laid_out(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes, placed in columns by their distance from the start when the definition
    does not place them (an API client's or an imported graph's: all at one point)."""
    nodes = spec["nodes"]
    spots = {(float((n.get("position") or {}).get("x", 0)),
              float((n.get("position") or {}).get("y", 0))) for n in nodes}
    if len(spots) == len(nodes) or not nodes:
        return nodes
    start = spec.get("start") or nodes[0]["id"]
    depth, todo = {start: 0}, [start]
    while todo:
        here = todo.pop(0)
        for e in spec.get("edges") or []:
            if e["source"] == here and e["target"] not in depth:
                depth[e["target"]] = depth[here] + 1
                todo.append(e["target"])
    rows: dict[int, int] = {}
    out = []
    for n in nodes:
        col = depth.get(n["id"], max(depth.values(), default=0) + 1)
        row = rows[col] = rows.get(col, -1) + 1
        out.append({**n, "position": {"x": 240.0 * col, "y": 120.0 * row}})
    return out


class Canvas(pn.viewable.Viewer):
    """A workflow on the canvas; ``changed`` counts edits (the page remembers each for
    Undo); :meth:`spec` reads the canvas back as a workflow definition."""

    changed = param.Integer(default=0)

    def __init__(self, dark: bool = False, **params: Any) -> None:
        super().__init__(**params)
        self.flow = ReactFlow(
            nodes=[], edges=[], node_types=node_types(), drop_types=[MIME],
            editor_mode="side", default_node_editor=step_form, default_edge_editor=edge_form,
            stylesheets=[CSS], sizing_mode="stretch_width", height=540,
            color_mode="dark" if dark else "light", min_zoom=0.2, max_zoom=1.2)
        # Panel puts a component's stylesheets in the page's head as well, and a file path
        # there becomes a URL under the page (404): name them by the URL Bokeh serves
        # panel-reactflow's files under (relative: it works behind a prefix too).
        self.flow._stylesheets = [f"static/extensions/panel-reactflow/{name}" for name in (
            "panel-reactflow.bundle.css", "css/reactflow.css")]
        self.palette = palette()
        self._views: dict[str, pn.pane.HTML] = {}
        self._meta: dict[str, Any] = {}
        self._loading = False
        self.flow.on("drop", self._drop)
        for event in ("node_added", "node_deleted", "edge_added", "edge_deleted",
                      "node_moved", "node_data_changed", "edge_data_changed"):
            self.flow.on(event, self._edited)

    # -- the workflow in and out ----------------------------------------------------------
    def load(self, spec: dict[str, Any] | None) -> None:
        """Show ``spec`` (None: an empty canvas)."""
        spec = spec or {"name": "untitled", "nodes": [], "edges": []}
        self._meta = {k: v for k, v in spec.items() if k not in ("nodes", "edges")}
        self._views = {}
        self._loading = True
        try:
            self.flow.nodes = [self._node(n) for n in laid_out(spec)]
            self.flow.edges = [self._edge(e) for e in spec.get("edges") or []]
        finally:
            self._loading = False

    def _node(self, node: dict[str, Any]) -> dict[str, Any]:
        view = self._views[node["id"]] = pn.pane.HTML(
            self._caption(node["kind"], node.get("settings") or {}), margin=0,
            styles={"font-size": "11px", "opacity": ".85"})
        return {"id": node["id"], "type": node["kind"], "label": node.get("label") or node["id"],
                "position": node.get("position") or {"x": 0, "y": 0},
                "data": {**defaults(node["kind"]), **(node.get("settings") or {})},
                "view": view}

    @staticmethod
    def _edge(edge: dict[str, Any]) -> dict[str, Any]:
        when = edge.get("when")
        return {"id": f"{edge['source']}->{edge['target']}:{when or ''}",
                "source": edge["source"], "target": edge["target"], "label": when or "",
                "sourceHandle": "out", "targetHandle": "in", "data": {"when": when}}

    @staticmethod
    def _caption(kind: str, settings: dict[str, Any]) -> str:
        what = {"agent": settings.get("agent") or ", ".join(settings.get("labels") or []),
                "tests": "selected" if settings.get("select") else
                f"{len(settings.get('tests') or [])} tests" if settings.get("tests") else
                "whole suite",
                "condition": f"{settings.get('check', '')} of {settings.get('step', '')}",
                "end": settings.get("status", "")}.get(kind, "")
        return escape(f"{KIND_LABELS[kind]}{' · ' + what if what else ''}")

    def spec(self) -> dict[str, Any]:
        """The canvas as a workflow definition (checked when saved)."""
        nodes, edges = [], []
        for n in self.flow.nodes:
            n = n if isinstance(n, dict) else n.to_dict()
            kind = n["type"]
            data = {k: v for k, v in (n.get("data") or {}).items() if k in KINDS[kind].param}
            nodes.append({"id": n["id"], "kind": kind, "label": n.get("label") or n["id"],
                          "settings": data, "position": {
                              "x": round(float(n["position"]["x"]), 1),
                              "y": round(float(n["position"]["y"]), 1)}})
        for e in self.flow.edges:
            e = e if isinstance(e, dict) else e.to_dict()
            edges.append({"source": e["source"], "target": e["target"],
                          "when": (e.get("data") or {}).get("when")})
        ids = {n["id"] for n in nodes}
        start = self._meta.get("start")
        if start not in ids:
            heads = [n["id"] for n in nodes if not any(e["target"] == n["id"] for e in edges)]
            start = heads[0] if len(heads) == 1 else (nodes[0]["id"] if nodes else None)
        meta = {k: v for k, v in self._meta.items() if k != "start"}
        return {**meta, "start": start, "nodes": nodes, "edges": edges}

    @property
    def meta(self) -> dict[str, Any]:
        return self._meta

    def set_meta(self, **fields: Any) -> None:
        self._meta.update(fields)

    # -- edits ----------------------------------------------------------------------------
    def _drop(self, payload: dict[str, Any]) -> None:
        kind = (payload.get("data") or {}).get("kind")
        if kind not in KINDS:
            return
        taken = {(n if isinstance(n, dict) else n.to_dict())["id"] for n in self.flow.nodes}
        node_id = next(f"{kind}-{i}" for i in itertools.count(1) if f"{kind}-{i}" not in taken)
        self.flow.add_node(self._node({"id": node_id, "kind": kind, "label": node_id,
                                       "position": payload.get("position") or {"x": 0, "y": 0},
                                       "settings": {}}))

    def _edited(self, payload: dict[str, Any]) -> None:
        if self._loading:
            return
        if payload.get("type") == "edge_added":
            edge = payload.get("edge") or {}
            if edge.get("id"):
                when = (edge.get("data") or {}).get("when")
                self.flow.patch_edge_props(edge["id"], {"label": when or ""})
        if payload.get("type") == "edge_data_changed":
            when = (payload.get("patch") or {}).get("when")
            self.flow.patch_edge_props(payload["edge_id"], {"label": when or ""})
        if payload.get("type") == "node_data_changed":
            node_id = payload.get("node_id")
            for n in self.flow.nodes:
                n = n if isinstance(n, dict) else n.to_dict()
                if n["id"] == node_id and node_id in self._views:
                    self._views[node_id].object = self._caption(n["type"], n.get("data") or {})
        self.changed += 1

    # -- a run on the canvas --------------------------------------------------------------
    def show_states(self, states: dict[str, dict[str, Any]]) -> None:
        """Each step's state as its border, and what it did under its name; empty: the
        plain workflow."""
        for n in self.flow.nodes:
            n = n if isinstance(n, dict) else n.to_dict()
            node_id, view = n["id"], self._views.get(n["id"])
            st = states.get(node_id)
            css = f"wf-{st['state'].replace(' ', '-')}" if st and st.get("state") else None
            self.flow.patch_node_props(node_id, {"className": css})
            if view is None:
                continue
            if not st:
                view.object = self._caption(n["type"], n.get("data") or {})
                continue
            bits = [st.get("state") or ""]
            if st.get("visits", 0) > 1:
                bits.append(f"×{st['visits']}")
            if st.get("cost_usd"):
                bits.append(f"${st['cost_usd']:.4f}")
            if st.get("outcome"):
                bits.append(st["outcome"])
            out = (st.get("output") or "").strip().splitlines()
            last = escape(out[-1][:80]) if out else ""
            view.object = (f"<b style='color:{STATE_COLORS.get(st.get('state'), '#868e96')}'>"
                           f"{escape(' · '.join(b for b in bits if b))}</b>"
                           + (f"<br><span style='opacity:.8'>{last}</span>" if last else ""))

    def __panel__(self):
        # (the palette beside the canvas, not over it: it hid the first column of steps)
        return pn.Row(self.palette, self.flow, sizing_mode="stretch_width")


def app_graph(app: dict[str, Any], dark: bool = False) -> ReactFlow:
    """An imported LangGraph app's own graph, read-only (it runs as one process step)."""
    graph = app["graph"]
    spec = {"start": "__start__", "nodes": [
        {"id": n["id"], "kind": "parallel", "label": n["name"]} for n in graph["nodes"]],
        "edges": [{"source": e["source"], "target": e["target"]} for e in graph["edges"]]}
    nodes = [{"id": n["id"], "type": "default", "label": n["label"], "position": n["position"],
              "data": {}, "deletable": False, "connectable": False}
             for n in laid_out(spec)]
    edges = [{"id": f"{e['source']}->{e['target']}:{i}", "source": e["source"],
              "target": e["target"], "label": e.get("label") or "",
              "style": {"strokeDasharray": "5 4"} if e.get("conditional") else None}
             for i, e in enumerate(graph["edges"])]
    return ReactFlow(nodes=nodes, edges=edges, editable=False, stylesheets=[CSS],
                     sizing_mode="stretch_width", height=320, max_zoom=1.2,
                     color_mode="dark" if dark else "light")
