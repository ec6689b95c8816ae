"""Every route of the workbench, declared once: method, path, the role it needs, whether it
is audited, what it takes, and whether it may change anything.

From this table come the Tornado rules the plugin serves (:func:`tornado_rules`), each
handler's admission check (plugin_base.Declared: auth, role, query), the body schema its
parser enforces, the audit entry (audit.py) and the OpenAPI document (openapi.py). A route
missing here is not served; a test walks the live application and fails for any route —
the pages and static files of Bokeh and Panel included (pages.PAGES) — that is not
declared.

Roles (config.GRANTS): ``any`` — every authenticated caller; ``ingest`` — data writers
(ingest, operator, admin); ``viewer`` — readers (viewer, operator, admin); ``operator``;
``admin``. Audit: ``route`` — this layer writes the entry (outcome and query); ``action``
— the action writes a fuller one itself (control/access.py); ``no`` — reads, and data
streams too frequent to log one by one (OTLP, live results). Refusals are always audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tornado.web import RequestHandler

from . import schemas as s
from .bodies import BodyError, validated
from .console_api import (
    CompleteHandler,
    ConsoleHandlerByName,
    ConsolesHandler,
    ConsoleSocket,
    HistoryHandler,
    RecordingHandler,
    ShellsHandler,
)
from .control_api import (
    AgentActionHandler,
    AgentConfigHandler,
    AgentHandler,
    AgentImpactHandler,
    AgentPartHandler,
    AgentsHandler,
    AgentsSocket,
    AlertActionHandler,
    AlertPreviewHandler,
    AlertRuleHandler,
    AlertRulesHandler,
    AlertsHandler,
    ApprovalHandler,
    ApprovalsHandler,
    AuditHandler,
    ClaudeHookHandler,
    CulpritsHandler,
    DeliveriesHandler,
    PoolsHandler,
    TaskActionHandler,
    TaskHandler,
    TasksHandler,
    WebhookHandler,
    WebhooksHandler,
)
from .core_api import (
    HealthHandler,
    LiveFinishHandler,
    LiveHandler,
    LiveResultsHandler,
    LiveStartHandler,
    QueryHandler,
    ReportHandler,
    RunHandler,
    RunsHandler,
    SessionHandler,
)
from .coverage_api import CoverageQuestionHandler, CoverageReportHandler, CoverageWhoHandler
from .docs_api import DocsHandler, OpenAPIHandler, PluginsHandler, RoutesHandler
from .mcp_http import McpHandler
from .otlp import OTLPHandler
from .projects_api import (
    McpActionHandler,
    McpServersHandler,
    ProjectHandler,
    ProjectLinkHandler,
    ProjectScanHandler,
    ProjectsHandler,
)
from .schemas import BINARY
from .select_api import EvaluateHandler, SelectHandler, TestRunHandler, TestRunsHandler
from .store_api import (
    ExportHandler,
    RetentionHandler,
    StoreJobHandler,
    StoreStateHandler,
)
from .tokens_api import TokenRevokeHandler, TokensHandler
from .workflows_api import (
    AllWorkflowRunsHandler,
    WorkflowDiffHandler,
    WorkflowHandler,
    WorkflowImportHandler,
    WorkflowRunHandler,
    WorkflowRunsHandler,
    WorkflowsHandler,
    WorkflowTemplatesHandler,
    WorkflowValidateHandler,
    WorkflowVersionsHandler,
)

LEVELS = ("any", "ingest", "viewer", "operator", "admin")
#: What a path parameter matches, by its name (default ``[\w-]+``: ids).
ID = r"[\w-]+"
PARAM_PATTERNS = {"run_id": r"[\w.-]+", "project": r"[^/]+", "server": r"[^/]+",
                  "query": r"\w+", "recording": r"[\w.-]+"}
_PARAM = re.compile(r"\{(\w+)(?::([^}]+))?\}")


@dataclass(frozen=True)
class Route:
    """One method of one path."""

    method: str
    template: str
    handler: type[RequestHandler]
    role: str
    audit: str
    summary: str
    body: Any = None  # a schemas.Body model, BINARY (a file or OTLP message), or None
    query: type[s.Query] | None = None
    #: Whether it may change anything (every GET may not; a few POSTs only compute).
    changes: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: What a POST/PUT body looks like when it is not JSON (for the reference).
    content: str = "application/json"

    def __post_init__(self) -> None:
        if self.role not in LEVELS:
            raise ValueError(f"{self.template}: unknown role {self.role!r}")
        if self.audit not in ("no", "route", "action"):
            raise ValueError(f"{self.template}: audit must be no, route or action")
        if self.changes is None:
            object.__setattr__(self, "changes", self.method not in ("GET", "WS"))
        if self.method in ("GET", "WS") and self.changes:
            raise ValueError(f"GET {self.template}: a GET may not change anything")

    @property
    def name(self) -> str:
        """The operation's name (OpenAPI ``operationId``, the audit entry's action)."""
        return f"{self.method} {self.template}"

    @property
    def pattern(self) -> str:
        """The Tornado path pattern."""
        def group(m: re.Match) -> str:
            name, choices = m.group(1), m.group(2)
            return "(" + (choices or PARAM_PATTERNS.get(name, ID)) + ")"
        return _PARAM.sub(group, self.template)

    def params(self) -> list[tuple[str, list[str] | None]]:
        """The path's parameters, each with its fixed choices (or None)."""
        return [(m.group(1), m.group(2).split("|") if m.group(2) else None)
                for m in _PARAM.finditer(self.template)]

    def parse_query(self, arguments: dict[str, list[bytes]], where: str) -> dict[str, Any]:
        """The query string checked against :attr:`query` (BodyError 400 naming the
        parameter): every declared field with its default, nothing undeclared."""
        if self.query is None:
            if arguments:
                raise BodyError(400, f"{where}: takes no query parameters (got "
                                     f"{', '.join(sorted(arguments))[:100]})")
            return {}
        raw: dict[str, Any] = {}
        for key, values in arguments.items():
            try:
                texts = [v.decode("utf-8") for v in values]
            except UnicodeDecodeError:
                raise BodyError(400, f"{where}: query parameter {key[:40]} is not "
                                     "UTF-8") from None
            info = self.query.model_fields.get(key)
            many = info is not None and "list" in str(info.annotation)
            raw[key] = texts if many else texts[-1]
        return validated(self.query, raw, where, defaults=True)


def R(method: str, template: str, handler: type, role: str, audit: str, summary: str,
      **kw: Any) -> Route:
    return Route(method, template, handler, role, audit, summary, **kw)


_AGENT_ACTIONS = "start|stop|pause|resume|restart|interrupt"
_COVERAGE = {"patch": (s.PatchQuery, "patch coverage of base..head (no head: the working "
                       "tree) in the project's scanned folder"),
             "diff": (s.DiffQuery, "files whose coverage dropped and lines newly uncovered "
                      "between two coverage reports"),
             "at-risk": (s.ProjectQuery, "lines run only by flaky or broken tests"),
             "map": (s.MapQuery, "one level of the coverage map")}

#: The API, in the order of the reference.
ROUTES: list[Route] = [
    # -- the server itself
    R("GET", "/api/health", HealthHandler, "any", "no",
      "the store's state: 200 while it takes writes, 503 with the reason while it cannot"),
    R("GET", "/api/session", SessionHandler, "any", "no",
      "who the caller is, its role, and a logged-in browser's X-XSRF-Token"),
    R("GET", "/api/live", LiveHandler, "viewer", "no",
      "the data-change signal: what each live refresh of the open dashboards cost"),
    R("GET", "/api/openapi.json", OpenAPIHandler, "any", "no",
      "this reference as an OpenAPI 3.1 document"),
    R("GET", "/api/docs", DocsHandler, "any", "no", "this reference as a page"),
    R("GET", "/api/plugins", PluginsHandler, "viewer", "no",
      "the plugins found (report formats, backends, alert actions, webhook formats, export "
      "targets, dashboard tabs), loaded or not, with why not"),
    R("GET", "/api/routes", RoutesHandler, "admin", "no",
      "the live application's routes, each with its declaration (or none)"),
    # -- signed tokens
    R("GET", "/api/tokens", TokensHandler, "admin", "no",
      "the signed tokens issued here (their ids and claims, never the tokens)"),
    R("POST", "/api/tokens", TokensHandler, "admin", "route",
      "issue a signed, expiring token (JWT) with a role; shown once", body=s.TokenRequest),
    R("POST", "/api/tokens/{jti}/revoke", TokenRevokeHandler, "admin", "route",
      "revoke a signed token before it expires", body=s.Empty),
    # -- the database file
    R("GET", "/api/store", StoreStateHandler, "viewer", "no",
      "the file against its live data, the retention policies, the backups, and what the "
      "last retention, compaction and backup did"),
    R("PUT", "/api/store/retention", RetentionHandler, "admin", "route",
      "set how long a kind of data is kept (for a project, or the default)",
      body=s.RetentionPolicy),
    R("POST", "/api/store/{job:backup}", StoreJobHandler, "admin", "route",
      "back the file up now (online; verified; the oldest beyond keep are deleted)",
      body=s.BackupBody),
    R("POST", "/api/store/{job:compact}", StoreJobHandler, "admin", "route",
      "copy the live data into a fresh file and swap it in (writes wait meanwhile)",
      body=s.Empty),
    R("POST", "/api/store/retention/{job:run}", StoreJobHandler, "admin", "route",
      "apply the retention policies now (then compact when due)", body=s.Empty),
    R("DELETE", "/api/store/retention/{kind}", RetentionHandler, "admin", "route",
      "remove a retention policy (that kind is kept again)", query=s.RetentionQuery),
    R("GET", "/api/export/{table}", ExportHandler, "viewer", "route",
      "one table as Parquet (zstd), CSV or JSON lines, or spans as OTLP/JSON; filtered by "
      "project (telemetry: service.name) and time; audit needs admin", query=s.ExportQuery),
    # -- test results
    R("POST", "/api/tests/reports", ReportHandler, "ingest", "route",
      "store one report (JUnit, CTRF, reportlog, NUnit, TRX, xUnit; gzip allowed)",
      body=BINARY, query=s.ReportQuery, content="application/octet-stream"),
    R("POST", "/api/tests/live", LiveStartHandler, "ingest", "route",
      "start a live run; the answer's secret authorises its writes", body=s.LiveStart),
    R("POST", "/api/tests/live/{run_id}/results", LiveResultsHandler, "ingest", "no",
      "finished tests of a live run (with X-Observatory-Run-Secret)", body=s.LiveResults),
    R("POST", "/api/tests/live/{run_id}/finish", LiveFinishHandler, "ingest", "route",
      "end a live run (with X-Observatory-Run-Secret)", body=s.LiveFinish),
    R("GET", "/api/runs", RunsHandler, "viewer", "no", "runs, newest first",
      query=s.RunsQuery),
    R("DELETE", "/api/runs/{run_id}", RunHandler, "operator", "route",
      "delete a run stored by mistake"),
    R("GET", "/api/runs/{run_id}/culprits", CulpritsHandler, "viewer", "no",
      "each new failure of a run with the agent sessions most likely to have caused it"),
    R("GET", "/api/query/{query}", QueryHandler, "viewer", "no",
      "a named query as an Arrow IPC stream (notebooks); audit_log and "
      "webhook_deliveries need admin", query=s.QueryQuery),
    # -- agents
    R("GET", "/api/agents", AgentsHandler, "viewer", "no", "every agent"),
    R("POST", "/api/agents", AgentsHandler, "operator", "action",
      "define an agent (a policy in it needs admin)", body=s.AgentDefinition),
    R("GET", "/api/agents/{agent_id}", AgentHandler, "viewer", "no",
      "an agent with its newest events, samples and pending approvals",
      query=s.LimitQuery),
    R("POST", f"/api/agents/{{agent_id}}/{{action:{_AGENT_ACTIONS}}}", AgentActionHandler,
      "operator", "action", "act on an agent", body=s.Empty),
    R("POST", "/api/agents/{agent_id}/{action:message}", AgentActionHandler, "operator",
      "action", "send an agent a message (its next prompt)", body=s.Message),
    R("GET", "/api/agents/{agent_id}/config", AgentConfigHandler, "viewer", "no",
      "an agent's backend configuration and its schema"),
    R("PUT", "/api/agents/{agent_id}/config", AgentConfigHandler, "operator", "action",
      "change an agent's backend configuration (live where the backend can)",
      body=s.BackendConfig),
    R("PUT", "/api/agents/{agent_id}/{part:policy}", AgentPartHandler, "admin", "action",
      "set an agent's permission policy", body=s.Policy),
    R("PUT", "/api/agents/{agent_id}/{part:limits}", AgentPartHandler, "operator", "action",
      "set an agent's resource limits", body=s.Limits),
    R("GET", "/api/agents/{agent_id}/impact", AgentImpactHandler, "viewer", "no",
      "the tests an agent's sessions broke and fixed"),
    R("WS", "/ws/agents", AgentsSocket, "viewer", "action",
      "a snapshot, then agent_update/task_update/alert_update messages; actions may be "
      "sent (each needs its own role)", body=s.SocketMessage),
    # -- approvals and hooks
    R("GET", "/api/approvals", ApprovalsHandler, "viewer", "no",
      "the approvals inbox (pending; other states from the store)",
      query=s.ApprovalsQuery),
    R("POST", "/api/approvals/{approval_id}", ApprovalHandler, "operator", "action",
      "decide a permission request", body=s.Decision),
    R("POST", "/api/hooks/claude-code", ClaudeHookHandler, "ingest", "no",
      "Claude Code's HTTP hooks: a permission request waits for its decision",
      body=s.Hook),
    R("GET", "/api/audit", AuditHandler, "admin", "no", "the audit log, newest first",
      query=s.LimitQuery),
    # -- the work queue
    R("GET", "/api/tasks", TasksHandler, "viewer", "no", "the queue: running, then queued",
      query=s.TasksQuery),
    R("POST", "/api/tasks", TasksHandler, "operator", "action", "queue a task",
      body=s.Task),
    R("GET", "/api/tasks/{task_id}", TaskHandler, "viewer", "no",
      "a task with its session, cost, tokens, tool calls and test runs"),
    R("POST", "/api/tasks/{task_id}/{action:cancel|retry}", TaskActionHandler, "operator",
      "action", "cancel or retry a task", body=s.Empty),
    R("POST", "/api/tasks/{task_id}/{action:priority}", TaskActionHandler, "operator",
      "action", "change a task's priority", body=s.Priority),
    R("GET", "/api/pools", PoolsHandler, "viewer", "no", "agent pools"),
    R("POST", "/api/pools", PoolsHandler, "admin", "action",
      "define a pool: agents started from a template for tasks no idle agent takes",
      body=s.Pool),
    # -- workflows
    R("GET", "/api/workflows", WorkflowsHandler, "viewer", "no",
      "workflows, the newest version of each"),
    R("POST", "/api/workflows", WorkflowsHandler, "admin", "action",
      "save a new workflow (checked: errors name the node)", body=s.Workflow),
    R("GET", "/api/workflows/templates", WorkflowTemplatesHandler, "viewer", "no",
      "the shipped workflow templates"),
    R("POST", "/api/workflows/validate", WorkflowValidateHandler, "viewer", "no",
      "check a workflow without saving it", body=s.Workflow, changes=False),
    R("POST", "/api/workflows/import-langgraph", WorkflowImportHandler, "admin", "action",
      "a LangGraph app (module:attr in a scanned project) as a workflow: its graph read "
      "by the project's Python, the app run as a process step", body=s.WorkflowImport),
    R("GET", "/api/workflows/{workflow_id}", WorkflowHandler, "viewer", "no",
      "a workflow by id or name (its newest version, or ?version=)",
      query=s.WorkflowVersionQuery),
    R("PUT", "/api/workflows/{workflow_id}", WorkflowHandler, "admin", "action",
      "save a new version of a workflow", body=s.Workflow),
    R("GET", "/api/workflows/{workflow_id}/versions", WorkflowVersionsHandler, "viewer",
      "no", "every version of a workflow"),
    R("GET", "/api/workflows/{workflow_id}/diff", WorkflowDiffHandler, "viewer", "no",
      "what changed between two versions", query=s.WorkflowDiffQuery),
    R("GET", "/api/workflows/{workflow_id}/runs", WorkflowRunsHandler, "viewer", "no",
      "a workflow's runs, newest first", query=s.LimitQuery),
    R("POST", "/api/workflows/{workflow_id}/runs", WorkflowRunsHandler, "operator",
      "action", "start a run with inputs", body=s.WorkflowRunRequest),
    R("GET", "/api/workflow-runs", AllWorkflowRunsHandler, "viewer", "no",
      "workflow runs, newest first", query=s.WorkflowRunsQuery),
    R("GET", "/api/workflow-runs/{run_id}", WorkflowRunHandler, "viewer", "no",
      "a run: the state of each step's every visit, and its definition"),
    R("POST", "/api/workflow-runs/{run_id}/{action:cancel|resume}", WorkflowRunHandler,
      "operator", "action", "cancel a run, or resume a failed or cancelled one from its "
      "last checkpoint", body=s.Empty),
    # -- alerts and webhooks
    R("GET", "/api/alert-rules", AlertRulesHandler, "viewer", "no", "alert rules"),
    R("POST", "/api/alert-rules", AlertRulesHandler, "admin", "action",
      "add an alert rule (an existing rule_id is replaced)", body=s.AlertRuleBody),
    R("PUT", "/api/alert-rules/{rule_id}", AlertRuleHandler, "admin", "action",
      "replace an alert rule", body=s.AlertRuleBody),
    R("DELETE", "/api/alert-rules/{rule_id}", AlertRuleHandler, "admin", "action",
      "delete an alert rule"),
    R("POST", "/api/alert-preview", AlertPreviewHandler, "viewer", "no",
      "what an alert rule (saved or not) would have fired on in the last day (computes; "
      "changes nothing)", body=s.AlertRulePreview, changes=False),
    R("GET", "/api/alerts", AlertsHandler, "viewer", "no", "alerts with their evidence",
      query=s.AlertsQuery),
    R("POST", "/api/alerts/{alert_id}/{action:ack|resolve|resume|stop}",
      AlertActionHandler, "operator", "action",
      "acknowledge or resolve an alert, or resume or stop its agent", body=s.Empty),
    R("GET", "/api/webhooks", WebhooksHandler, "admin", "no", "webhooks"),
    R("POST", "/api/webhooks", WebhooksHandler, "admin", "action", "add a webhook",
      body=s.Webhook),
    R("DELETE", "/api/webhooks/{webhook_id}", WebhookHandler, "admin", "action",
      "delete a webhook"),
    R("GET", "/api/webhooks/{webhook_id}/deliveries", DeliveriesHandler, "admin", "no",
      "a webhook's deliveries, newest first", query=s.LimitQuery),
    # -- coverage
    R("POST", "/api/coverage/reports", CoverageReportHandler, "ingest", "route",
      "store one coverage report (coverage.py JSON, Cobertura, LCOV, JaCoCo)",
      body=BINARY, query=s.CoverageQuery, content="application/octet-stream"),
    R("GET", "/api/coverage/who", CoverageWhoHandler, "viewer", "no",
      "the tests that ran a line", query=s.WhoQuery),
    *[R("GET", f"/api/coverage/{{question:{q}}}", CoverageQuestionHandler, "viewer", "no",
        summary, query=model) for q, (model, summary) in _COVERAGE.items()],
    # -- projects and their MCP servers
    R("GET", "/api/projects", ProjectsHandler, "viewer", "no", "what scans found"),
    R("POST", "/api/projects/scan", ProjectScanHandler, "operator", "action",
      "scan folders of the server's machine for projects", body=s.Scan),
    R("POST", "/api/projects/link", ProjectLinkHandler, "operator", "action",
      "name a project's folder: a git repository of the server's machine",
      body=s.ProjectLink),
    R("PUT", "/api/projects/{project}", ProjectHandler, "operator", "action",
      "rename a project's folder, or set the interpreter its test runs use",
      body=s.ProjectChange),
    R("DELETE", "/api/projects/{project}", ProjectHandler, "operator", "action",
      "forget a project's folder (its runs and coverage stay)"),
    R("GET", "/api/projects/{project}/mcp", McpServersHandler, "viewer", "no",
      "the MCP servers a project declares, with what each approval covers"),
    R("POST", "/api/projects/{project}/mcp/{server}/{action:approve}", McpActionHandler,
      "operator", "action", "approve an MCP server as declared now", body=s.Empty),
    R("POST", "/api/projects/{project}/mcp/{server}/{action:tools}", McpActionHandler,
      "operator", "action", "list an approved server's tools (runs it)", body=s.Empty),
    R("POST", "/api/projects/{project}/mcp/{server}/{action:call}", McpActionHandler,
      "operator", "action", "call a tool of an approved server", body=s.McpCall),
    # -- test selection and test runs
    R("POST", "/api/select", SelectHandler, "viewer", "no",
      "rank a project's tests for a change (computes; changes nothing)", body=s.Select,
      changes=False),
    R("GET", "/api/select/evaluate", EvaluateHandler, "viewer", "no",
      "the selector replayed over the stored history", query=s.ProjectQuery),
    R("GET", "/api/test-runs", TestRunsHandler, "viewer", "no",
      "test runs started from the workbench", query=s.OptionalProjectQuery),
    R("POST", "/api/test-runs", TestRunsHandler, "operator", "action",
      "run tests (node ids, the selector's choice, or another runner's command)",
      body=s.TestRunRequest),
    R("GET", "/api/test-runs/{test_run_id}", TestRunHandler, "viewer", "no",
      "a test run with its progress"),
    R("POST", "/api/test-runs/{test_run_id}/{action:cancel}", TestRunHandler, "operator",
      "action", "cancel a test run", body=s.Empty),
    # -- consoles (console/): shells in projects' folders, agents' terminals
    R("GET", "/api/console", ConsolesHandler, "viewer", "no",
      "open consoles (agents' terminals; shells and recordings for admins)"),
    R("POST", "/api/console/shells", ShellsHandler, "admin", "action",
      "open a shell in a project's folder (audited, recorded)", body=s.ConsoleShell),
    R("GET", "/api/console/history", HistoryHandler, "admin", "no",
      "the caller's commands typed in project shells, newest first", query=s.HistoryQuery),
    R("GET", "/api/console/complete", CompleteHandler, "admin", "no",
      "completions for a shell's line: history, the project's likely commands",
      query=s.CompleteQuery),
    R("GET", "/api/console/recordings/{recording}", RecordingHandler, "admin",
      "action", "a shell's recording (asciicast v2)"),
    R("DELETE", "/api/console/{name}", ConsoleHandlerByName, "admin", "action",
      "end a shell and every process it started"),
    R("WS", "/ws/console/{name}", ConsoleSocket, "viewer", "action",
      "attach to a console: binary frames are output and keys; JSON text frames resize, "
      "acknowledge drawn bytes, and tell attach/size/exit (a shell needs admin; typing "
      "into an agent's terminal operator; ?mode=write to type)",
      query=s.ConsoleAttach),
    # -- for agents and exporters
    R("POST", "/mcp", McpHandler, "viewer", "no",
      "the workbench as an MCP server (streamable HTTP, stateless): flaky tests, "
      "failures, coverage, selection — reads only", body=BINARY, changes=False),
    R("GET", "/mcp", McpHandler, "viewer", "no", "405: no server stream (stateless)"),
    R("DELETE", "/mcp", McpHandler, "viewer", "no", "405: no session to end (stateless)",
      changes=False),
    *[R("POST", f"/v1/{signal}", OTLPHandler, "ingest", "no",
        f"OTLP/HTTP {signal} (protobuf or JSON, gzip allowed)", body=BINARY,
        options={"signal": signal}, content="application/x-protobuf")
      for signal in ("traces", "metrics", "logs")],
]

def tornado_rules(routes: list[Route] | None = None) -> list[tuple[str, type, dict]]:
    """The Tornado rules serving ``routes``: one per path and handler, each handler told
    its routes by method (``Declared.initialize``)."""
    grouped: dict[tuple[str, type, tuple], dict[str, Route]] = {}
    for route in routes if routes is not None else ROUTES:
        key = (route.pattern, route.handler, tuple(sorted(route.options.items())))
        method = "GET" if route.method == "WS" else route.method
        if method in grouped.setdefault(key, {}):
            raise ValueError(f"{route.name}: declared twice")
        grouped[key][method] = route
    return [(pattern, handler, {"routes": methods, **dict(options)})
            for (pattern, handler, options), methods in grouped.items()]


def otlp_rules() -> list[tuple[str, type, dict]]:
    """The OTLP routes alone (the extra ``--otlp-port`` listener)."""
    return tornado_rules([r for r in ROUTES if r.handler is OTLPHandler])
