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
from ..git import GitError
from .plugin_base import APIHandler, UploadHandler
from .state import get_intake, get_store


class CoverageReportHandler(UploadHandler):
    """``POST /api/coverage/reports?project=&commit=&branch=&filename=&format=&root=`` with
    one report as the body → the ``ingest coverage --json`` object; 400 with the one-line
    reason when it cannot be read (nothing stored)."""

    async def post(self) -> None:
        q = self.q

        def work() -> dict:
            flags = {k: q[k] for k in ("project", "commit", "branch")}
            result = get_intake().coverage(self.body(), q["filename"] or "upload", flags,
                                           q["root"] or None, q["format"])
            if not result["ok"]:
                raise ValueError(result["error"])
            return result

        await self.answer(work)


class CoverageWhoHandler(APIHandler):
    """``GET /api/coverage/who?project=&file=&line=&commit=`` → ``{"tests": [...]}``, the
    tests that ran that line in the latest report with per-test contexts."""

    async def get(self) -> None:
        q = self.q

        def work() -> dict:
            return {"ok": True, "tests": covering_tests(get_store(), q["project"], q["file"],
                                                        q["line"], q["commit"])}

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
        q = self.q

        def work() -> dict:
            store = get_store()
            if question == "patch":
                folder = project_repo(store, q["project"])
                if folder is None:
                    raise KeyError(f"no scanned folder for project {q['project']!r}")
                try:  # (revisions are resolved to SHAs before git sees them: git.revision)
                    return {"ok": True, **patch_coverage(store, q["project"], str(folder),
                                                         q["base"], q["head"] or None)}
                except GitError as err:
                    raise ValueError(str(err)) from None
            if question == "diff":
                return {"ok": True, **diff_reports(store, q["base"], q["head"])}
            if question == "at-risk":
                return {"ok": True, "files": _records(at_risk(store, q["project"]))}
            files = store.query("coverage_files", project=q["project"],
                                report_id=q["report"] or None)
            return {"ok": True, "items": _records(tree.children(files, q["folder"]))}

        await self.answer(work)


