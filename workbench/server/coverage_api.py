"""Coverage through the API: reports in (the same intake as ``observatory ingest
coverage``), and which tests ran a line."""

from __future__ import annotations

import json

from ..coverage import tree
from ..coverage.diff import diff_reports
from ..coverage.lines import project_repo
from ..coverage.lookup import covering_tests
from ..coverage.patch import patch_coverage
from ..coverage.risk import at_risk
from ..projects.git import GitError
from .plugin_base import APIHandler, UploadHandler
from .state import get_intake, get_store


class CoverageReportHandler(UploadHandler):
    """``POST /api/coverage/reports?project=&commit=&branch=&filename=&format=&root=`` with
    one report as the body → the ``ingest coverage --json`` object; 400 with the one-line
    reason when it cannot be read (nothing stored)."""

    async def post(self) -> None:
        def work() -> dict:
            arg = self.get_query_argument
            flags = {k: arg(k, None) for k in ("project", "commit", "branch")}
            result = get_intake().coverage(
                self.body(), arg("filename", "upload"), flags,
                self.get_query_arguments("root") or None, arg("format", None))
            if not result["ok"]:
                raise ValueError(result["error"])
            return result

        await self.answer(work)


class CoverageWhoHandler(APIHandler):
    """``GET /api/coverage/who?project=&file=&line=&commit=`` → ``{"tests": [...]}``, the
    tests that ran that line in the latest report with per-test contexts."""

    async def get(self) -> None:
        def work() -> dict:
            arg = self.get_query_argument
            project, path, line = arg("project", ""), arg("file", ""), arg("line", "")
            if not project or not path:
                raise ValueError("project and file are required")
            try:
                number = int(line)
            except ValueError:
                raise ValueError(f"line must be a whole number, not {line[:20]!r}") from None
            return {"ok": True, "tests": covering_tests(get_store(), project, path, number,
                                                        arg("commit", None))}

        await self.answer(work)


def _records(df) -> list[dict]:
    return json.loads(df.to_json(orient="records", date_format="iso"))


class CoverageQuestionHandler(APIHandler):
    """What the projects page shows, for scripts:

    - ``GET /api/coverage/patch?project=&base=&head=`` — patch coverage of ``base..head``
      (no ``head``: the working tree) in the project's scanned folder;
    - ``GET /api/coverage/diff?base=REPORT&head=REPORT`` — files that dropped and lines
      newly uncovered;
    - ``GET /api/coverage/at-risk?project=`` — lines run only by flaky or broken tests;
    - ``GET /api/coverage/map?project=&folder=&report=`` — one level of the coverage map.
    """

    async def get(self, question: str) -> None:
        arg = self.get_query_argument

        def need(*names: str) -> list[str]:
            values = [arg(n, "") for n in names]
            missing = [n for n, v in zip(names, values, strict=True) if not v]
            if missing:
                raise ValueError(f"/api/coverage/{question}: {', '.join(missing)} required")
            return values

        def work() -> dict:
            store = get_store()
            if question == "patch":
                project, base = need("project", "base")
                folder = project_repo(store, project)
                if folder is None:
                    raise KeyError(f"no scanned folder for project {project!r}")
                try:
                    return {"ok": True, **patch_coverage(store, project, str(folder), base,
                                                         arg("head", None) or None)}
                except GitError as err:
                    raise ValueError(str(err)) from None
            if question == "diff":
                base, head = need("base", "head")
                return {"ok": True, **diff_reports(store, base, head)}
            if question == "at-risk":
                (project,) = need("project")
                return {"ok": True, "files": _records(at_risk(store, project))}
            (project,) = need("project")
            files = store.query("coverage_files", project=project,
                                report_id=arg("report", None) or None)
            return {"ok": True, "items": _records(tree.children(files, arg("folder", "")))}

        await self.answer(work)


COVERAGE_ROUTES = [
    (r"/api/coverage/reports", CoverageReportHandler, {}),
    (r"/api/coverage/who", CoverageWhoHandler, {}),
    (r"/api/coverage/(patch|diff|at-risk|map)", CoverageQuestionHandler, {}),
]
