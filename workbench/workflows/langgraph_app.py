"""A LangGraph app of a project as a workflow: its graph, drawn by its own ``get_graph()``,
shown read-only, and the app run as one process step.

The app's module is the project's code: it is imported only in a child process of the
project's own Python (the one its test runs use), started through the launcher in the
project's folder — never in the workbench.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

from .. import launcher
from ..control.testruns import interpreter
from ..coverage.lines import project_repo

#: Finds argv[1] (``module:attribute``) in the project's folder, as ``obj``.
_FIND = """
import importlib, json, sys
sys.path.insert(0, '.')
module, attr = sys.argv[1].split(':', 1)
obj = importlib.import_module(module)
for part in attr.split('.'):
    obj = getattr(obj, part)
"""

#: Prints ``get_graph()`` of argv[1] as JSON.
READ = _FIND + """
graph = obj.get_graph()
print(json.dumps({
    'nodes': [{'id': str(n.id), 'name': str(n.name)} for n in graph.nodes.values()],
    'edges': [{'source': str(e.source), 'target': str(e.target),
               'conditional': bool(e.conditional),
               'label': None if e.data is None else str(e.data)} for e in graph.edges]}))
"""

#: Invokes argv[1] with the JSON input, its last argument, and prints its result (the
#: step's output).
RUN = _FIND + """
print(json.dumps(obj.invoke(json.loads(sys.argv[-1])), default=str)[:20000])
"""

MAX_NODES = 500


def read_graph(store, target: str, project: str, timeout: float = 60) -> dict[str, Any]:
    """``{"nodes", "edges"}`` of the app ``target`` in ``project``'s folder (ValueError
    saying why not: no such project, the import failed, not a graph)."""
    folder = project_repo(store, project)
    if folder is None:
        raise ValueError(f"project: no scanned folder for {project!r} (observatory projects "
                         "scan)")
    python, _ = interpreter(store, project, folder)
    try:
        done = launcher.run([python, "-c", READ, target], cwd=folder, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ValueError(f"{target}: reading its graph took over {timeout:g} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"{target}: could not read its graph in {folder} ({last[:300]})")
    try:
        graph = json.loads(done.stdout.strip().splitlines()[-1])
        nodes, edges = graph["nodes"], graph["edges"]
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"{target}: get_graph() did not give a graph") from None
    if len(nodes) > MAX_NODES:
        raise ValueError(f"{target}: {len(nodes)} nodes (at most {MAX_NODES})")
    return {"nodes": nodes, "edges": edges}


def as_workflow(store, target: str, project: str) -> dict[str, Any]:
    """A workflow that runs the app as one process step (its input: the run's ``input``, a
    JSON text), with the app's own graph kept beside it for the read-only view."""
    graph = read_graph(store, target, project)
    folder = project_repo(store, project)
    python, _ = interpreter(store, project, folder)
    command = shlex.join([python, "-c", RUN, target, "--"]) + " {input}"  # (one argument)
    return {
        "name": target[:120], "description": f"The LangGraph app {target} of {project}: its graph "
                                       "as get_graph() draws it, run as one process step.",
        "inputs": {"project": project, "input": "{}"},
        "agents": {"app": {"backend": "process"}},
        "app": {"target": target, "graph": graph},
        "nodes": [{"id": "app", "kind": "agent", "label": target,
                   "settings": {"agent": "app", "command": command},
                   "position": {"x": 0, "y": 0}}],
        "edges": []}
