"""What each route takes: its JSON body and its query, as pydantic models.

The route table (routes.py) names one of these per route; the body parser checks a body
against it before a handler sees it (types exact: no ``"1"`` for a number, no ``true`` for
a whole number; unknown fields refused), and the OpenAPI document is generated from them.
Deeper rules that also hold for the dashboards and the CLI (a backend's configuration, an
alert rule's bounds) stay with the domain (control/spec.py, control/alerts.py), whose
errors name the field too; the parts described by ``param`` classes there are turned into
models here, so the API reference shows them field by field.
"""

from __future__ import annotations

from typing import Any, Literal

import param
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..control import spec as specs
from ..control.alerts import AlertRule
from ..control.approvals import DECISIONS
from ..control.backends import BACKENDS
from ..control.webhooks import FORMATS as WEBHOOK_FORMATS
from ..intake import RUN_META_KEYS

#: The body of a route that takes a file or an OTLP message, not JSON.
BINARY = "binary"
def short() -> Any:
    """An optional short text field (names, ids); long text (prompts) has its own bound."""
    return Field(default=None, max_length=1000)


class Body(BaseModel):
    """A JSON object body: exact types, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """A query string: values arrive as text and are converted; no unknown parameters."""

    model_config = ConfigDict(extra="forbid")


def from_param(cls: type[param.Parameterized], name: str) -> type[Body]:
    """A model with ``cls``'s parameters as optional fields (the domain fills defaults and
    checks bounds; here: their types and choices, for the parser and the reference)."""
    fields: dict[str, Any] = {}
    for key, p in cls.param.objects("existing").items():
        if key == "name":
            continue
        if isinstance(p, param.ListSelector):
            kind: Any = list[Literal[tuple(p.objects)]] if p.objects else list[str]
        elif isinstance(p, param.Selector):
            kind = Literal[tuple(p.objects)]
        elif isinstance(p, param.Boolean):
            kind = bool
        elif isinstance(p, param.Integer):
            kind = int
        elif isinstance(p, param.Number):
            kind = float
        elif isinstance(p, param.List):
            kind = list[dict[str, Any]] if p.item_type is dict else list[str]
        elif isinstance(p, param.String):
            kind = str
        else:
            kind = Any
        fields[key] = (kind | None, Field(default=None, description=p.doc or None))
    return create_model(name, __base__=Body, **fields)


Limits = from_param(specs.Limits, "Limits")
Restart = from_param(specs.Restart, "Restart")
PolicyRule = from_param(specs.PolicyRule, "PolicyRule")


class Policy(from_param(specs.Policy, "PolicyBase")):  # type: ignore[misc]
    rules: list[PolicyRule] | None = None  # type: ignore[valid-type]


AlertRuleFields = from_param(AlertRule, "AlertRuleFields")


# -- tests ----------------------------------------------------------------------------------
def _run_meta(base: type[BaseModel], name: str) -> type[BaseModel]:
    """A model with a run's metadata (intake.RUN_META_KEYS) as optional short texts."""
    return create_model(name, __base__=base,
                        **{key: (str | None, short()) for key in RUN_META_KEYS})


class ReportQuery(_run_meta(Query, "ReportMeta")):  # type: ignore[misc]
    """Where a report comes from (each overrides what the report itself says; ``source``
    is ignored: the server names the uploaded file)."""

    filename: str | None = short()
    format: str | None = short()
    report_tz: str | None = Field(default=None, max_length=100,
                                  description="zone of timestamps written without one")


class LiveStart(_run_meta(Body, "LiveMeta")):  # type: ignore[misc]
    """A live run's metadata (the pytest plugin's)."""


class LiveResults(Body):
    """Finished tests, each ``{"name", "classname", "file", "attempts": [{"outcome",
    "duration_s", "message", "error_type", "details"}]}``, and the tests running now."""

    tests: list[dict[str, Any]] = Field(max_length=100_000)
    running: list[str] | None = Field(default=None, max_length=10_000)


class LiveFinish(Body):
    duration_s: float | None = Field(default=None, ge=0, le=1e9)


class RunsQuery(Query):
    project: str | None = short()
    limit: int = Field(default=50, ge=1, le=5000)


class QueryQuery(Query):
    params: str = Field(default="{}", max_length=100_000,
                        description="the named query's parameters as a JSON object")


# -- agents ---------------------------------------------------------------------------------
class AgentDefinition(Body):
    """An agent: what runs (``backend`` and ``command`` or ``prompt``), where, its limits,
    restart policy, permission policy (admins only) and backend configuration (each
    backend's fields: ``GET /api/agents/{id}/config``)."""

    name: str = Field(min_length=1, max_length=120)
    backend: Literal[tuple(BACKENDS)]  # type: ignore[valid-type]
    project: str | None = Field(default=None, max_length=specs.MAX_CHARS["project"])
    cwd: str | None = Field(default=None, max_length=specs.MAX_CHARS["cwd"])
    prompt: str | None = Field(default=None, max_length=specs.MAX_CHARS["prompt"])
    command: str | list[str] | None = None
    env: dict[str, str] | None = Field(default=None, max_length=200)
    labels: list[str] | None = Field(default=None, max_length=100)
    limits: Limits | None = None  # type: ignore[valid-type]
    restart: Restart | None = None  # type: ignore[valid-type]
    policy: Policy | None = None
    config: dict[str, Any] | None = None
    pool: str | None = Field(default=None, max_length=specs.MAX_CHARS["pool"])


class BackendConfig(BaseModel):
    """A backend's configuration: its own fields (``GET /api/agents/{id}/config`` gives
    their schema), checked by the backend."""

    model_config = ConfigDict(extra="allow", strict=True)


class Message(Body):
    text: str = Field(min_length=1, max_length=1_000_000)


class LimitQuery(Query):
    limit: int = Field(default=200, ge=1, le=10_000)


class ApprovalsQuery(LimitQuery):
    state: Literal["pending", "allowed", "denied", "expired", "all"] = "pending"


class Decision(Body):
    decision: Literal[DECISIONS]  # type: ignore[valid-type]
    message: str | None = Field(default=None, max_length=10_000)


class Hook(BaseModel):
    """A Claude Code hook's input (its documented fields; others are kept as they come)."""

    model_config = ConfigDict(extra="allow", strict=True)
    session_id: str = Field(min_length=1, max_length=200)
    hook_event_name: str = Field(min_length=1, max_length=100)
    cwd: str | None = Field(default=None, max_length=specs.MAX_CHARS["cwd"])
    tool_name: str | None = Field(default=None, max_length=200)
    tool_input: Any = None
    permission_mode: str | None = Field(default=None, max_length=100)
    transcript_path: str | None = Field(default=None, max_length=4096)


class Task(Body):
    """Work for the queue: a ``prompt`` for a coding agent or a ``command`` for a worker."""

    prompt: str | None = Field(default=None, max_length=1_000_000)
    command: str | list[str] | None = None
    project: str | None = short()
    priority: int | None = Field(default=None, ge=-10**6, le=10**6)
    labels: list[str] | None = Field(default=None, max_length=100)
    deadline: str | None = Field(default=None, max_length=64, description="ISO 8601")
    budget: dict[Literal["cost_usd", "seconds"], float] | None = None


class TasksQuery(LimitQuery):
    state: Literal["queued", "running", "done", "failed", "cancelled", "expired",
                   "all"] | None = None


class Priority(Body):
    priority: int = Field(ge=-10**6, le=10**6)


class Empty(Body):
    """No fields (an empty body or ``{}``)."""


# -- workflows ------------------------------------------------------------------------------
class WorkflowNode(Body):
    id: str = Field(min_length=1, max_length=40)
    kind: Literal["agent", "tests", "approval", "condition", "parallel", "join", "end"]
    label: str | None = Field(default=None, max_length=200)
    settings: dict[str, Any] | None = None
    position: dict[str, float] | None = None


class WorkflowEdge(Body):
    source: str = Field(min_length=1, max_length=40)
    target: str = Field(min_length=1, max_length=40)
    when: str | None = Field(default=None, max_length=20)


class Workflow(Body):
    """A workflow: steps (nodes) of a kind with settings and a canvas position, edges with
    the outcome they are taken on, the agents its steps use, and its inputs' defaults."""

    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=10_000)
    inputs: dict[str, str | int | float | bool | None] | None = None
    agents: dict[str, dict[str, Any]] | None = None
    app: dict[str, Any] | None = None
    start: str | None = Field(default=None, max_length=40)
    nodes: list[WorkflowNode] = Field(min_length=1, max_length=500)
    edges: list[WorkflowEdge] | None = Field(default=None, max_length=5000)


class WorkflowRunRequest(Body):
    """Inputs over the workflow's defaults (``project``: the project its steps work on)."""

    inputs: dict[str, str | int | float | bool | None] | None = None
    version: int | None = Field(default=None, ge=1)


class WorkflowImport(Body):
    """A LangGraph app by ``module:attribute`` in a scanned project's folder: its graph
    (read by the project's Python) shown read-only, the app run as one process step."""

    target: str = Field(min_length=3, max_length=300, pattern=r"^[\w.]+:[\w.]+$")
    project: str = Field(min_length=1, max_length=200)


class WorkflowVersionQuery(Query):
    version: int | None = Field(default=None, ge=1)


class WorkflowDiffQuery(Query):
    a: int = Field(ge=1)
    b: int = Field(ge=1)


class WorkflowRunsQuery(LimitQuery):
    workflow: str | None = Field(default=None, max_length=120)


class Pool(Body):
    pool: str = Field(min_length=1, max_length=40)
    template: dict[str, Any]
    max_agents: int | None = Field(default=None, ge=0, le=100)


class AlertRuleBody(AlertRuleFields):  # type: ignore[misc, valid-type]
    """An alert rule (an existing ``rule_id`` is replaced)."""

    name: str = Field(min_length=1, max_length=120)
    rule_id: str | None = Field(default=None, max_length=60)
    id: str | None = Field(default=None, max_length=60)


class AlertRulePreview(AlertRuleFields):  # type: ignore[misc, valid-type]
    """A rule to preview, saved or not (its ``name`` and id are optional)."""

    name: str | None = Field(default=None, max_length=120)
    rule_id: str | None = Field(default=None, max_length=60)
    id: str | None = Field(default=None, max_length=60)


class AlertsQuery(LimitQuery):
    state: Literal["open", "firing", "acknowledged", "resolved"] | None = None


class Webhook(Body):
    url: str = Field(max_length=2000)
    secret: str = Field(min_length=8, max_length=500)
    events: list[str] | None = None
    format: Literal[WEBHOOK_FORMATS] | None = Field(  # type: ignore[valid-type]
        default=None, description="json, slack, or a format a plugin adds")


# -- projects, coverage, selection ----------------------------------------------------------
class Scan(Body):
    roots: list[str] | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=200,
                             description="the name of the one project found")


class ProjectLink(Body):
    name: str = Field(min_length=1, max_length=200)
    path: str = Field(min_length=1, max_length=4096, description="an absolute folder")


class ProjectChange(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200,
                             description="a new name")
    python: str | None = Field(default=None, max_length=4096,
                               description="the interpreter its test runs use (an absolute "
                               "path; \"\" or null: found again)")


class McpCall(Body):
    tool: str = Field(min_length=1, max_length=200)
    arguments: dict[str, Any] | None = None


class CoverageQuery(Query):
    project: str | None = short()
    commit: str | None = short()
    branch: str | None = short()
    filename: str | None = short()
    format: str | None = short()
    root: list[str] | None = Field(default=None, max_length=100,
                                   description="path prefixes to strip (repeatable)")


class WhoQuery(Query):
    project: str = Field(max_length=1000)
    file: str = Field(max_length=4096)
    line: int = Field(ge=1, le=10**9)
    commit: str | None = short()


class PatchQuery(Query):
    project: str = Field(max_length=1000)
    base: str = Field(max_length=256, description="a git revision")
    head: str | None = Field(default=None, max_length=256,
                             description="a git revision (none: the working tree)")


class DiffQuery(Query):
    base: str = Field(max_length=100, description="a coverage report id")
    head: str = Field(max_length=100, description="a coverage report id")


class ProjectQuery(Query):
    project: str = Field(max_length=1000)


class MapQuery(ProjectQuery):
    folder: str = Field(default="", max_length=4096)
    report: str | None = Field(default=None, max_length=100)


class OptionalProjectQuery(Query):
    project: str | None = short()


class SelectSpec(Body):
    base: str | None = Field(default=None, max_length=256, description="a git revision")
    head: str | None = Field(default=None, max_length=256, description="a git revision")
    budget: float | None = Field(default=None, ge=0, le=1e9, description="seconds")
    top: int | None = Field(default=None, ge=0, le=10**9)


class Select(SelectSpec):
    project: str = Field(max_length=1000)


class TestRunRequest(Body):
    __test__ = False
    project: str = Field(max_length=1000)
    tests: list[str] | None = Field(default=None, max_length=100_000)
    select: SelectSpec | None = None
    command: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    junit: str | None = Field(default=None, max_length=4096)


class SocketMessage(Body):
    """A message on ``/ws/agents``: an action on an agent, or a decision."""

    action: Literal["start", "stop", "pause", "resume", "restart", "interrupt", "message",
                    "approve"]
    agent_id: str | None = Field(default=None, max_length=200)
    approval_id: str | None = Field(default=None, max_length=200)
    decision: Literal[DECISIONS] | None = None  # type: ignore[valid-type]
    message: str | None = Field(default=None, max_length=10_000)
    text: str | None = Field(default=None, max_length=1_000_000)


class ConsoleShell(Body):
    project: str = Field(max_length=1000, description="a project with a folder")
    cols: int | None = Field(default=None, ge=2, le=1000)
    rows: int | None = Field(default=None, ge=1, le=500)


class HistoryQuery(LimitQuery):
    limit: int = Field(default=50, ge=1, le=10_000)
    q: str | None = Field(default=None, max_length=1000, description="a part of the command")
    project: str | None = short()


class CompleteQuery(Query):
    project: str | None = short()
    prefix: str = Field(default="", max_length=1000)


class ConsoleAttach(Query):
    mode: Literal["read", "write"] = Field(default="read",
                                           description="write: type (read-only otherwise)")
    cols: int = Field(default=80, ge=2, le=1000)
    rows: int = Field(default=24, ge=1, le=500)
    xsrf: str | None = Field(default=None, max_length=200,
                             description="the anti-forgery token (GET /api/session), "
                                         "required with the login cookie")


# -- the store ------------------------------------------------------------------------------
class RetentionPolicy(Body):
    """How long one kind of data is kept, for one project (``""``: the default for every
    project without its own)."""

    kind: Literal["tests", "spans", "logs", "metrics", "coverage", "agents", "audit"]
    project: str = Field(default="", max_length=200)
    days: float | int | None = Field(default=None, description="rows older go (cut at an hour)")
    keep_runs: int | None = Field(default=None, description="tests, coverage: newest N per "
                                  "project are kept")
    archive: bool = Field(default=False, description="write to Parquet before deleting")


class RetentionQuery(Query):
    project: str = Field(default="", max_length=200)


class BackupBody(Body):
    keep: int | None = Field(default=None, ge=1, le=1000,
                             description="backups to keep (default OBSERVATORY_BACKUP_KEEP)")


class ExportQuery(Query):
    format: Literal["parquet", "csv", "jsonl", "otlp"] = Field(
        default="parquet", description="otlp: spans only, as OTLP/JSON lines")
    project: str | None = short()
    since: str | None = Field(default=None, max_length=40, description="ISO time (UTC)")
    until: str | None = Field(default=None, max_length=40, description="ISO time (UTC)")


class TokenRequest(Body):
    """A signed token to issue."""

    sub: str = Field(min_length=1, max_length=200, description="who it is for")
    role: Literal["ingest", "viewer", "operator", "admin"]
    ttl: str | int = Field(description="lifetime: seconds, or 90m, 12h, 30d (at most 366d)")
