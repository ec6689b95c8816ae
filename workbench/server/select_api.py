"""Test selection through the API: ``POST /api/select`` ranks a project's tests for a change
in the project's scanned folder; ``GET /api/select/evaluate?project=`` replays the selector
over the stored history."""

from __future__ import annotations

import json
from typing import Any

from ..control import access
from ..coverage.lines import project_repo
from ..git import GitError
from ..selection.evaluate import replay
from ..selection.select import is_pytest_id, select_tests
from .plugin_base import APIHandler
from .state import get_store, get_test_runs


def _ranked(store, project: str, repo, spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`select_tests` for a client's ``{"base", "head", "budget", "top"}`` (checked
    against schemas.SelectSpec); a revision git cannot read is the client's mistake (400):
    revisions reach git only as the SHAs they resolve to (git.revision)."""
    try:
        return select_tests(store, project, repo, spec.get("base"), spec.get("head"),
                            spec.get("budget"), spec.get("top"))
    except GitError as err:
        raise ValueError(str(err)) from None


def _folder(store, project: str):
    """The folder a scan found for ``project`` (404 when none)."""
    folder = project_repo(store, project)
    if folder is None:
        raise KeyError(f"no scanned folder for project {project!r} (POST /api/projects/scan)")
    return folder


class SelectHandler(APIHandler):
    """``POST /api/select`` with ``{"project", "base"?, "head"?, "budget"?, "top"?}`` →
    ``{"ranking": [{"test", "score", "probability", "duration_s", "first", "reasons"}],
    ...}``, best first. The change is ``base..head`` (no ``head``: the working tree) in the
    folder a scan found for the project; with no ``base``, history alone."""

    async def post(self) -> None:
        def work() -> dict:
            body = self.payload()
            store, project = get_store(), body["project"]
            # With no base the ranking is history alone, which needs no folder.
            repo = _folder(store, project) if body.get("base") else \
                project_repo(store, project)
            return {"ok": True, **_ranked(store, project, repo, body)}

        await self.answer(work)


class EvaluateHandler(APIHandler):
    """``GET /api/select/evaluate?project=``: the replay's figures for the selector and the
    baselines."""

    async def get(self) -> None:
        def work() -> dict:
            project, store = self.q["project"], get_store()
            return {"ok": True, **replay(store, project, project_repo(store, project))}

        await self.answer(work)


class TestRunsHandler(APIHandler):
    """``GET /api/test-runs?project=``: runs started from the workbench, newest first, each
    with the results its stored run has so far. ``POST /api/test-runs`` (operators) with
    ``{"project", "tests": [node ids]}`` or ``{"project", "select": {"base", "head",
    "top", "budget"}}`` (the selector's choice), or ``{"project", "command": [argv],
    "junit": PATH}`` for another runner → the queued run."""

    __test__ = False

    async def get(self) -> None:
        def work() -> dict:
            df = get_test_runs().list(self.q["project"] or None)
            return {"ok": True, "runs": json.loads(df.to_json(orient="records",
                                                             date_format="iso"))}

        await self.answer(work)

    async def post(self) -> None:
        principal = self.principal

        def work() -> dict:
            body = self.payload()
            store, project = get_store(), body["project"]
            access.authorize(store, principal, "test-run", project)
            folder = _folder(store, project)
            tests = body.get("tests")
            chosen = body.get("select")
            if chosen is not None:
                ranked = _ranked(store, project, folder, chosen)
                tests = [r["test"] for r in ranked["ranking"] if is_pytest_id(r["test"])]
                if not tests:
                    raise ValueError(f"the selection for {project!r} is empty")
            row = get_test_runs().submit(principal, project, folder, tests,
                                         body.get("command"), body.get("junit"))
            return {"ok": True, "test_run": _plain(row)}

        await self.answer(work)


class TestRunHandler(APIHandler):
    """``GET /api/test-runs/{id}``: one run with its progress; ``POST …/cancel``
    (operators): stop its process group, or take it off the queue."""

    __test__ = False

    async def get(self, run: str) -> None:
        await self.answer(lambda: {"ok": True, "test_run": _plain(get_test_runs().get(run))})

    async def post(self, run: str, action: str) -> None:
        def work() -> dict:
            self.payload()  # (empty)
            return {"ok": True, "test_run": _plain(get_test_runs().cancel(self.principal,
                                                                         run))}

        await self.answer(work)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in row.items() if k != "cancelled"},
                                 default=str))


