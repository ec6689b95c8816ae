"""Workflows through the API: definitions and their versions (admins edit, viewers read),
runs (operators start, cancel and resume them), and the shipped templates. Each action
checks its role again and writes its own audit entry (workflows/runs.py)."""

from __future__ import annotations

from ..workflows import spec as specs
from ..workflows.templates import TEMPLATES
from .plugin_base import APIHandler as Base
from .state import get_workflows


class APIHandler(Base):
    def shown(self, value):
        """What the caller's role may read of it (agents' environments: admins)."""
        return specs.shown(value, self.principal.role)


class WorkflowsHandler(APIHandler):
    """``GET /api/workflows`` (the newest version of each); ``POST`` a new one (201)."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "workflows": self.shown(get_workflows().list())})

    async def post(self) -> None:
        def work() -> dict:
            workflow = get_workflows().save(self.principal, self.payload())
            self.set_status(201)
            return {"ok": True, "workflow": workflow}

        await self.answer(work)


class WorkflowTemplatesHandler(APIHandler):
    """``GET /api/workflows/templates``: the shipped templates, ready to save."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "templates": TEMPLATES})


class WorkflowValidateHandler(APIHandler):
    """``POST /api/workflows/validate``: ``{"valid": true, "workflow": normalised}`` or
    ``{"valid": false, "error": "node fix: ..."}`` (200 either way: it only checks)."""

    async def post(self) -> None:
        from ..control.backends import BACKENDS

        def work() -> dict:
            body = self.payload()
            try:
                return {"ok": True, "valid": True, "workflow": specs.check(body, BACKENDS)}
            except ValueError as err:
                return {"ok": True, "valid": False, "error": str(err)}

        await self.answer(work)


class WorkflowHandler(APIHandler):
    """``GET /api/workflows/{id or name}?version=``; ``PUT`` saves a new version."""

    async def get(self, ref: str) -> None:
        await self.answer(lambda: {"ok": True, "workflow": self.shown(get_workflows().get(
            ref, self.q["version"]))})

    async def put(self, ref: str) -> None:
        def work() -> dict:
            body = self.payload()
            engine = get_workflows()
            return {"ok": True, "workflow": engine.save(self.principal, body,
                                                        engine.get(ref)["id"])}

        await self.answer(work)


class WorkflowVersionsHandler(APIHandler):
    """``GET /api/workflows/{id}/versions``."""

    async def get(self, ref: str) -> None:
        await self.answer(lambda: {"ok": True, "versions": self.shown(
            get_workflows().versions(ref))})


class WorkflowDiffHandler(APIHandler):
    """``GET /api/workflows/{id}/diff?a=1&b=2``: nodes and edges added, removed, changed."""

    async def get(self, ref: str) -> None:
        await self.answer(lambda: {"ok": True, "diff": get_workflows().diff(
            ref, self.q["a"], self.q["b"], self.principal.role)})


class WorkflowRunsHandler(APIHandler):
    """``GET /api/workflows/{id}/runs``; ``POST`` starts one with ``{"inputs", "version"}``."""

    async def get(self, ref: str) -> None:
        await self.answer(lambda: {"ok": True, "runs": get_workflows().list_runs(
            ref, self.q["limit"])})

    async def post(self, ref: str) -> None:
        def work() -> dict:
            body = self.payload()
            run = get_workflows().start(self.principal, ref, body.get("inputs"),
                                        body.get("version"))
            self.set_status(201)
            return {"ok": True, "run": run}

        await self.answer(work)


class AllWorkflowRunsHandler(APIHandler):
    """``GET /api/workflow-runs?workflow=&limit=``: runs, newest first."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "runs": get_workflows().list_runs(
            self.q["workflow"], self.q["limit"])})


class WorkflowRunHandler(APIHandler):
    """``GET /api/workflow-runs/{id}``: the run, each visit of each step, and the
    definition it runs; ``POST …/cancel|resume`` (operators)."""

    async def get(self, run_id: str) -> None:
        await self.answer(lambda: {"ok": True, "run": self.shown(get_workflows().run(run_id))})

    async def post(self, run_id: str, action: str) -> None:
        def work() -> dict:
            self.payload()  # (empty)
            engine = get_workflows()
            act = engine.cancel if action == "cancel" else engine.resume
            return {"ok": True, "run": act(self.principal, run_id)}

        await self.answer(work)


class WorkflowImportHandler(APIHandler):
    """``POST /api/workflows/import-langgraph`` with ``{"target": "module:attr",
    "project"}`` (admins): the app's graph read in the project's own Python, saved as a
    workflow that runs the app as one process step (201)."""

    async def post(self) -> None:
        def work() -> dict:
            body = self.payload()
            engine = get_workflows()
            from ..control import access
            from ..workflows.langgraph_app import as_workflow

            access.authorize(engine.store, self.principal, "workflow-edit", body["target"])
            workflow = engine.save(self.principal, as_workflow(
                engine.store, body["target"], body["project"]))
            self.set_status(201)
            return {"ok": True, "workflow": workflow}

        await self.answer(work)
