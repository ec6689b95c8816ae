"""A checked workflow compiled to a LangGraph ``StateGraph``: one graph node per step, a
conditional edge per step routing on its outcome, and a waiting edge into each join.

The state is what the routing needs and the checkpointer keeps: each step's last result,
how often each step ran (a condition caps a loop with it), and the order steps ended in.
Parallel branches write to it in the same superstep, so every field has a reducer.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from .spec import OUTCOMES


def _merge(old: dict | None, new: dict | None) -> dict:
    return {**(old or {}), **(new or {})}


def _count(old: dict | None, new: dict | None) -> dict:
    out = dict(old or {})
    for key, n in (new or {}).items():
        out[key] = out.get(key, 0) + n
    return out


class RunState(TypedDict, total=False):
    inputs: dict[str, Any]
    #: node -> its last result ({"outcome", "output", "cost_usd", ...}).
    results: Annotated[dict[str, Any], _merge]
    #: node -> how many times it ran.
    visits: Annotated[dict[str, int], _count]
    #: the nodes in the order they ended.
    trail: Annotated[list[str], operator.add]


def takes(edge: dict[str, Any], kind: str, outcome: str) -> bool:
    """Whether ``edge`` (from a step of ``kind``) is taken for ``outcome``."""
    when = edge["when"]
    good = OUTCOMES[kind][0] if OUTCOMES[kind] else None
    return when == "always" or when == outcome or (when is None and outcome == good)


def build(spec: dict[str, Any], step: Callable[[dict[str, Any], int, RunState], dict[str, Any]]
          ) -> StateGraph:
    """The graph of ``spec`` (checked by spec.check); ``step(node, visit, state)`` does a
    step's work and returns its result, whose ``outcome`` picks the edges taken."""
    graph = StateGraph(RunState)
    kinds = {n["id"]: n["kind"] for n in spec["nodes"]}
    outgoing: dict[str, list[dict[str, Any]]] = {n: [] for n in kinds}
    for edge in spec["edges"]:
        outgoing[edge["source"]].append(edge)

    for node in spec["nodes"]:
        graph.add_node(node["id"], _runner(node, outgoing[node["id"]], step))

    graph.add_edge(START, spec["start"])
    for node_id, kind in kinds.items():
        routed = [e for e in outgoing[node_id] if kinds[e["target"]] != "join"]
        if routed or not outgoing[node_id]:
            graph.add_conditional_edges(node_id, _router(node_id, kind, routed),
                                        sorted({e["target"] for e in routed}) + [END])
    for node_id, kind in kinds.items():
        if kind == "join":
            sources = [e["source"] for e in spec["edges"] if e["target"] == node_id]
            graph.add_edge(sources, node_id)  # waits for every branch
    return graph


def _runner(node: dict[str, Any], edges: list[dict[str, Any]], step):
    node_id, kind = node["id"], node["kind"]

    def run(state: RunState) -> dict[str, Any]:
        visit = (state.get("visits") or {}).get(node_id, 0) + 1
        result = step(node, visit, state)
        outcome = result["outcome"]
        if kind != "end" and not any(takes(e, kind, outcome) for e in edges) and \
                OUTCOMES[kind] and outcome != OUTCOMES[kind][0]:
            result["unhandled"] = True  # a failure no edge takes: the run fails here
        return {"results": {node_id: {**result, "visit": visit}}, "visits": {node_id: 1},
                "trail": [node_id]}

    run.__name__ = f"step_{node_id}"
    return run


def _router(node_id: str, kind: str, edges: list[dict[str, Any]]):
    def route(state: RunState) -> list[str]:
        outcome = (state.get("results") or {}).get(node_id, {}).get("outcome")
        targets = [e["target"] for e in edges if takes(e, kind, outcome)]
        return sorted(set(targets)) or [END]

    return route
