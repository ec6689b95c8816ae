"""A workflow's definition, checked: what ``POST /api/workflows`` accepts and the composer
saves. Every error names the node (or edge, or agent) and says what is wrong.

A workflow is JSON::

    {"name", "description", "inputs": {name: default},
     "agents": {name: agent definition (as POST /api/agents takes, without its name)},
     "start": node id (default: the first node),
     "nodes": [{"id", "kind", "label", "settings": {...}, "position": {"x", "y"}}],
     "edges": [{"source", "target", "when": outcome | "always" | null}]}

Each kind's settings are a ``param.Parameterized`` class (:data:`KINDS`): the composer's
form is generated from it and :func:`check` validates against it. A step ends with an
outcome (:data:`OUTCOMES`); an edge without ``when`` is taken on the kind's good outcome,
so a failure nobody routed ends the run failed at that step.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import param

from ..control import spec as agent_specs

MAX_NODES = 500
_ID = re.compile(r"[A-Za-z][\w-]{0,39}")


class AgentStep(param.Parameterized):
    """A prompt to a coding agent, or a command, queued as a task; waits for its end."""

    agent = param.String("", doc="an agent of the workflow's `agents` (its session is kept "
                                 "between its steps); empty with `labels`: the fleet's")
    prompt = param.String("", doc="what the coding agent is asked ({inputs} filled in)")
    command = param.String("", doc="a command for a process agent (instead of a prompt)")
    labels = param.List([], item_type=str, doc="give the task to the fleet's idle agents "
                                               "with these labels instead")
    priority = param.Integer(0, bounds=(-1000, 1000), doc="the task's priority")
    budget_cost_usd = param.Number(None, bounds=(0, None), allow_None=True,
                                   doc="model cost in USD before the step fails")
    budget_s = param.Number(None, bounds=(0.1, None), allow_None=True,
                            doc="seconds before the step fails")


class TestsStep(param.Parameterized):
    """A test run of the project; its pass/fail is the step's outcome."""

    __test__ = False

    tests = param.List([], item_type=str, doc="pytest node ids; none: the whole suite")
    select = param.Boolean(False, doc="run the selector's choice for the working tree's "
                                      "change against `base` instead")
    base = param.String("HEAD", doc="the revision the change is measured from (select)")
    top = param.Integer(50, bounds=(1, 10000), doc="at most this many selected tests")
    command = param.List([], item_type=str, doc="another runner's argv (with `junit`)")
    junit = param.String("", doc="the JUnit XML file `command` writes")


class ApprovalStep(param.Parameterized):
    """Waits for a person in the approvals inbox (LangGraph interrupt)."""

    message = param.String("Continue?", doc="what the person is asked")
    timeout_s = param.Number(None, bounds=(1, None), allow_None=True,
                             doc="unanswered this long: `timeout_action`")
    timeout_action = param.Selector(default="deny", objects=["allow", "deny"],
                                    doc="the answer when nobody answers in time")


class ConditionStep(param.Parameterized):
    """Routes on an earlier step's result: yes, no, or exhausted after `max_iterations`."""

    step = param.String("", doc="the step whose result is read")
    check = param.Selector(default="outcome", objects=[
        "outcome", "exit_status", "tests_passed", "cost_below", "output_matches"],
        doc="outcome = value; exit status = value; tests passed; cost < value (USD); "
            "the output matches the regular expression value")
    value = param.String("", doc="what the check compares with")
    max_iterations = param.Integer(3, bounds=(1, 1000),
                                   doc="visits before it routes `exhausted` (a loop's cap)")


class ParallelStep(param.Parameterized):
    """Fans out: every outgoing edge runs at once."""


class JoinStep(param.Parameterized):
    """Fans in: waits for every incoming branch; ok when all of them were."""


class EndStep(param.Parameterized):
    """Ends the run with a status."""

    status = param.Selector(default="succeeded", objects=["succeeded", "failed"],
                            doc="the run's state when it ends here")
    message = param.String("", doc="said in the run's result")


#: kind -> its settings' class.
KINDS: dict[str, type[param.Parameterized]] = {
    "agent": AgentStep, "tests": TestsStep, "approval": ApprovalStep,
    "condition": ConditionStep, "parallel": ParallelStep, "join": JoinStep, "end": EndStep}
#: kind -> its outcomes, the good one first (an edge without ``when`` takes that one).
OUTCOMES: dict[str, tuple[str, ...]] = {
    "agent": ("ok", "failed"), "tests": ("passed", "failed", "error"),
    "approval": ("allowed", "denied"), "condition": ("yes", "no", "exhausted"),
    "parallel": ("ok",), "join": ("ok", "failed"), "end": ()}
_TOP = {"name", "description", "inputs", "agents", "start", "nodes", "edges", "app"}
_NODE = {"id", "kind", "label", "settings", "position"}
_EDGE = {"source", "target", "when"}


def settings_of(kind: str, value: Any, where: str) -> dict[str, Any]:
    """``value`` checked against the kind's settings class (the agents' definitions' own
    check); ValueError names the field. A true or false is no number here (param takes
    it for one)."""
    cls = KINDS[kind]
    for key, v in (value.items() if isinstance(value, dict) else ()):
        if isinstance(v, bool) and key in cls.param and \
                not isinstance(cls.param[key], param.Boolean):
            raise ValueError(f"{where}.settings.{key}: a number, not true or false")
    return agent_specs._params(cls, value, f"{where}.settings")


def check(spec: Any, backends: dict[str, Any] | None = None) -> dict[str, Any]:
    """A complete, normalised workflow from what a client sent (ValueError if bad)."""
    if not isinstance(spec, dict):
        raise ValueError("a workflow must be a JSON object")
    unknown = sorted(set(spec) - _TOP)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(_TOP))})")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise ValueError("name: a non-empty string of at most 120 characters")
    if re.fullmatch(r"\s*wf-[0-9a-f]{10}\s*", name):  # (a lookup by id comes first)
        raise ValueError("name: reads like a workflow's id (wf-…): choose another")
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise ValueError("description: a string")
    inputs = spec.get("inputs") or {}
    if not isinstance(inputs, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool | type(None))
            for k, v in inputs.items()):
        raise ValueError("inputs: an object of names and plain default values")
    agents = _agents(spec.get("agents") or {}, backends)
    nodes, by_id = _nodes(spec.get("nodes"))
    edges = _edges(spec.get("edges") or [], by_id)
    start = spec.get("start") or nodes[0]["id"]
    if start not in by_id:
        raise ValueError(f"start: no node {str(start)[:40]!r}")
    for node in nodes:
        _node_refs(node, by_id, agents)
    _joins(nodes, edges)
    _reachable(start, nodes, edges)
    _loops(nodes, edges)
    _merges(nodes, edges)
    out = {"name": name.strip(), "description": description, "inputs": inputs,
           "agents": agents, "start": start, "nodes": nodes, "edges": edges}
    if spec.get("app") is not None:
        out["app"] = _app(spec["app"])
    return out


def _app(app: Any) -> dict[str, Any]:
    """An imported LangGraph app's own graph (shown, never run as a graph here)."""
    graph = app.get("graph") if isinstance(app, dict) else None
    if not isinstance(app, dict) or not isinstance(app.get("target"), str) or \
            not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list) or \
            not isinstance(graph.get("edges"), list) or len(graph["nodes"]) > MAX_NODES:
        raise ValueError("app: {\"target\": \"module:attr\", \"graph\": {\"nodes\", "
                         "\"edges\"}}")
    nodes = [{"id": str(n.get("id"))[:200], "name": str(n.get("name"))[:200]}
             for n in graph["nodes"] if isinstance(n, dict)]
    edges = [{"source": str(e.get("source"))[:200], "target": str(e.get("target"))[:200],
              "conditional": bool(e.get("conditional")),
              "label": None if e.get("label") is None else str(e["label"])[:200]}
             for e in graph["edges"][:5 * MAX_NODES] if isinstance(e, dict)]
    return {"target": app["target"][:300], "graph": {"nodes": nodes, "edges": edges}}


def _agents(agents: Any, backends: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(agents, dict):
        raise ValueError("agents: an object of names and agent definitions")
    out = {}
    for name, definition in agents.items():
        if not _ID.fullmatch(str(name)):
            raise ValueError(f"agents.{str(name)[:40]}: a name of letters, digits, - and _")
        if not isinstance(definition, dict):
            raise ValueError(f"agents.{name}: an agent definition (object)")
        if backends is not None:  # (the server checks the whole definition)
            try:
                agent_specs.check({**definition, "name": name,
                                   "labels": definition.get("labels") or [f"wf-{name}"]},
                                  backends)
            except ValueError as err:
                raise ValueError(f"agents.{name}.{err}") from None
        out[name] = definition
    return out


def _nodes(nodes: Any) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    if not isinstance(nodes, list) or not nodes:
        raise ValueError("nodes: a non-empty list")
    if len(nodes) > MAX_NODES:
        raise ValueError(f"nodes: at most {MAX_NODES}")
    out, by_id = [], {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise ValueError(f"nodes[{i}]: an object")
        node_id = node.get("id")
        if not isinstance(node_id, str) or not _ID.fullmatch(node_id):
            raise ValueError(f"nodes[{i}].id: letters, digits, - and _ (at most 40), "
                             "starting with a letter")
        where = f"node {node_id}"
        bad = sorted(set(node) - _NODE)
        if bad:
            raise ValueError(f"{where}: unknown field {bad[0]} (known: {', '.join(sorted(_NODE))})")
        if node_id in by_id:
            raise ValueError(f"{where}: a second node with this id")
        kind = node.get("kind")
        if kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, not "
                             f"{str(kind)[:40]!r}")
        label = node.get("label") or node_id
        if not isinstance(label, str) or len(label) > 200:
            raise ValueError(f"{where}.label: a string of at most 200 characters")
        pos = node.get("position") or {"x": 0, "y": 0}
        if not isinstance(pos, dict) or not all(
                isinstance(pos.get(k), int | float) and not isinstance(pos.get(k), bool)
                for k in ("x", "y")):
            raise ValueError(f"{where}.position: {{\"x\": number, \"y\": number}}")
        clean = {"id": node_id, "kind": kind, "label": label,
                 "settings": settings_of(kind, node.get("settings"), where),
                 "position": {"x": float(pos["x"]), "y": float(pos["y"])}}
        out.append(clean)
        by_id[node_id] = clean
    return out, by_id


def _edges(edges: Any, by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(edges, list):
        raise ValueError("edges: a list")
    out, seen = [], set()
    for i, edge in enumerate(edges):
        if not isinstance(edge, dict) or set(edge) - _EDGE:
            raise ValueError(f"edges[{i}]: {{\"source\", \"target\", \"when\"}}")
        source, target, when = edge.get("source"), edge.get("target"), edge.get("when")
        for end, value in (("source", source), ("target", target)):
            if value not in by_id:
                raise ValueError(f"edges[{i}].{end}: no node {str(value)[:40]!r} "
                                 "(a dangling edge)")
        kind = by_id[source]["kind"]
        if kind == "end":
            raise ValueError(f"node {source}: an end step has no way out (edge to {target})")
        if when is not None and when != "always" and when not in OUTCOMES[kind]:
            raise ValueError(f"edges[{i}] ({source} → {target}).when: a {kind} step ends "
                             f"{', '.join(OUTCOMES[kind])} (or always), not {str(when)[:40]!r}")
        key = (source, target, when)
        if key in seen:
            raise ValueError(f"edges[{i}]: {source} → {target} twice")
        seen.add(key)
        out.append({"source": source, "target": target, "when": when})
    return out


def _node_refs(node: dict[str, Any], by_id: dict[str, Any], agents: dict[str, Any]) -> None:
    s, where = node["settings"], f"node {node['id']}"
    if node["kind"] == "agent":
        if bool(s["prompt"].strip()) == bool(s["command"].strip()):
            raise ValueError(f"{where}: a prompt or a command (exactly one)")
        if s["agent"] and s["agent"] not in agents:
            raise ValueError(f"{where}.settings.agent: no agent {s['agent']!r} in the "
                             f"workflow's agents ({', '.join(agents) or 'none'})")
        if not s["agent"] and not s["labels"] and s["prompt"].strip():
            raise ValueError(f"{where}: a prompt needs an agent of the workflow or labels "
                             "of the fleet's agents")
        if s["command"].strip():
            _command_fields(s["command"], where, agents.get(s["agent"]) or {})
        backend = (agents.get(s["agent"]) or {}).get("backend")
        if backend and (backend == "process") != bool(s["command"].strip()):
            raise ValueError(f"{where}: agent {s['agent']} ({backend}) takes "
                             f"{'a command' if backend == 'process' else 'a prompt'}")
    elif node["kind"] == "condition":
        if s["step"] not in by_id:
            raise ValueError(f"{where}.settings.step: no step {s['step'][:40]!r} to read")
        if s["check"] == "output_matches":
            try:
                re.compile(s["value"])
            except re.error as err:
                raise ValueError(f"{where}.settings.value: not a regular expression: "
                                 f"{err}") from None
        if s["check"] == "cost_below":
            try:
                float(s["value"])
            except ValueError:
                raise ValueError(f"{where}.settings.value: a cost in USD") from None
    elif node["kind"] == "tests" and s["command"] and not s["junit"]:
        raise ValueError(f"{where}.settings.junit: the JUnit file `command` writes")


#: A value filled into a step's text: ``{input}``, ``{step.output}`` (.outcome, .cost_usd).
FIELD = re.compile(r"\{([A-Za-z][\w-]*)(?:\.(output|outcome|cost_usd))?\}")


def _command_fields(command: str, where: str, agent: dict[str, Any]) -> None:
    """A command's ``{values}`` must each stand alone as one word: the value then reaches
    the program as one argument, whatever it holds. Inside a word (``sh -c "echo {x}"``)
    or in a shell agent's command it would be shell syntax — an operator's input or an
    agent's output would run as commands."""
    try:
        words = shlex.split(command)
    except ValueError as err:
        raise ValueError(f"{where}.settings.command: not a command line ({err})") from None
    fields = [w for w in words if FIELD.search(w)]
    if fields and (agent.get("config") or {}).get("shell"):
        raise ValueError(f"{where}.settings.command: a shell agent's command cannot take "
                         f"values ({fields[0]}): they would be shell syntax")
    for word in fields:
        if not FIELD.fullmatch(word):
            raise ValueError(
                f"{where}.settings.command: {word[:60]!r}: a value must be a word of its own "
                "(inside another it would be the command's syntax; in a shell: "
                "sh -c 'echo \"$1\"' _ {value})")


def _joins(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    for node in nodes:
        if node["kind"] != "join":
            continue
        incoming = [e for e in edges if e["target"] == node["id"]]
        if len(incoming) < 2:
            raise ValueError(f"node {node['id']}: a join needs two or more incoming branches")
        for edge in incoming:
            if edge["when"] is not None:
                raise ValueError(f"node {node['id']}: its incoming edge from {edge['source']}"
                                 " has a condition (a join waits for every branch's end)")


def _merges(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    """A step reached from two or more steps runs once for each that reaches it (LangGraph
    starts it again): only a join waits for them all, an end ends the run, and a loop comes
    back to its head. Anything else must go through a join (both ran) or a condition."""
    for node in nodes:
        if node["kind"] in ("join", "end"):
            continue
        sources = sorted({e["source"] for e in edges if e["target"] == node["id"]})
        if len(sources) < 2:
            continue
        below = _reached(node["id"], edges)
        outside = [s for s in sources if s not in below]  # (not its own loop's way back)
        if len(outside) > 1:
            raise ValueError(f"node {node['id']}: reached from {', '.join(outside)}, which can "
                             "each start it — it would run once for each: put a join before "
                             "it (it then waits for all) or route them through a condition")


def _reached(start: str, edges: list[dict[str, Any]]) -> set[str]:
    """The nodes a run can reach from ``start`` (``start`` included)."""
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for e in edges:
            if e["source"] == here and e["target"] not in seen:
                seen.add(e["target"])
                todo.append(e["target"])
    return seen


def _reachable(start: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    seen = _reached(start, edges)
    for node in nodes:
        if node["id"] not in seen:
            raise ValueError(f"node {node['id']}: not reachable from the start ({start})")


def _loops(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    """Every cycle must leave a condition by its yes or no route — the routes it stops
    taking after ``max_iterations`` visits: without those routes, the graph must have none.
    (A loop back through ``exhausted`` or ``always`` would never end.)"""
    kinds = {n["id"]: n["kind"] for n in nodes}
    after: dict[str, list[str]] = {n["id"]: [] for n in nodes}
    for e in edges:
        if not (kinds[e["source"]] == "condition" and e["when"] in (None, "yes", "no")):
            after[e["source"]].append(e["target"])
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in after[node]:
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                raise ValueError(f"node {nxt}: a loop ({' → '.join(cycle)}) with no condition "
                                 "step to end it (a condition's max_iterations caps a loop "
                                 "that goes back by its yes or no route)")
            if state.get(nxt) is None:
                visit(nxt, path + [nxt])
        state[node] = 2

    for n in after:
        if state.get(n) is None:
            visit(n, [n])


def schema(kind: str) -> dict[str, Any]:
    """The JSON schema of a kind's settings (the composer's form and the reference)."""
    raw = KINDS[kind].param.schema()
    raw.pop("name", None)
    return {"type": "object", "title": kind, "description": (KINDS[kind].__doc__ or "").strip(),
            "properties": raw}


HIDDEN = "(hidden: admins only)"


def shown(value: Any, role: str) -> Any:
    """``value`` (a workflow, a run, a list of them) as ``role`` may read it: the agents'
    environment values are for admins alone (they may hold keys), as the agents API keeps
    them."""
    if role == "admin":
        return value
    if isinstance(value, list):
        return [shown(v, role) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key == "agents" and isinstance(v, dict):
            v = {name: ({**d, "env": dict.fromkeys(d["env"], HIDDEN)}
                        if isinstance(d, dict) and isinstance(d.get("env"), dict) else d)
                 for name, d in v.items()}
        elif isinstance(v, dict | list):
            v = shown(v, role)
        out[key] = v
    return out
