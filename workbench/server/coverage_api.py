"""Coverage through the API: reports in (the same intake as ``observatory ingest
coverage``), and which tests ran a line."""

from __future__ import annotations

from ..coverage.lookup import covering_tests
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


COVERAGE_ROUTES = [
    (r"/api/coverage/reports", CoverageReportHandler, {}),
    (r"/api/coverage/who", CoverageWhoHandler, {}),
]
