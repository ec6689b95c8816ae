"""What every intake offers, and the run metadata keys (listed here and nowhere else)."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..ingest import IngestError, read_report

#: Run metadata a client may give (flags, CI environment, live-run start).
RUN_META_KEYS = ("project", "branch", "commit", "variant", "build", "build_url", "ci_provider",
                 "source")


#: The header a live run's writer sends with the secret its start returned (server API).
RUN_SECRET_HEADER = "X-Observatory-Run-Secret"


class IntakeError(RuntimeError):
    """A write that could not be delivered; the message is one line saying why."""


def done(result: Any) -> Future:
    """A future that already holds ``result``."""
    fut: Future = Future()
    fut.set_result(result)
    return fut


def failed(path: str, error: str) -> dict[str, Any]:
    """The ``ingest --json`` object of a report that was not stored."""
    return {"path": path, "ok": False, "error": error}


class Intake:
    """Every write the workbench takes.

    ``where`` names the destination for messages (``/abs/file.duckdb`` or a server URL).
    Report results are the objects ``observatory ingest tests --json`` prints.
    """

    where: str = ""

    def submit_report(self, data: bytes, name: str, flags: dict[str, Any],
                      fmt: str | None = None) -> Future:
        """Queue one report; the future holds its result object."""
        raise NotImplementedError

    def submit_file(self, path: Path, flags: dict[str, Any], fmt: str | None = None) -> Future:
        """Queue one report file (unreadable files become a not-ok result)."""
        try:
            data = read_report(path)
        except IngestError as err:
            return done(failed(str(path), str(err)))
        return self.submit_report(data, str(path), flags, fmt)

    def report(self, data: bytes, name: str, flags: dict[str, Any],
               fmt: str | None = None) -> dict[str, Any]:
        """Store one report and wait for it."""
        fut = self.submit_report(data, name, flags, fmt)
        self.flush()
        return fut.result()

    def flush(self) -> None:
        """Send whatever :meth:`submit_report` still holds back."""

    def coverage(self, data: bytes, name: str, flags: dict[str, Any],
                 roots: list[str] | None = None, fmt: str | None = None) -> dict[str, Any]:
        """Store one coverage report (``flags``: project, commit, branch; ``roots``: folders
        its paths are made relative to); the ``ingest coverage --json`` object, ``ok``
        false with the one-line ``error`` when it is not stored."""
        raise NotImplementedError

    def live_start(self, meta: dict[str, Any], secret_sha256: str | None = None) -> str:
        """Open a live run (status ``running``); return its id. ``secret_sha256``: the hash
        of the secret its writer must present (the server's routes use it)."""
        raise NotImplementedError

    def live_append(self, run_id: str, tests: list[dict[str, Any]],
                    running: list[str] | None = None) -> int:
        """Add finished tests (the plugin's batch shape) to a live run; ``running`` lists
        the test ids started and not finished yet."""
        raise NotImplementedError

    def live_finish(self, run_id: str, duration_s: float | None) -> None:
        """Close a live run."""
        raise NotImplementedError

    def telemetry(self, signal: str, data: bytes, content_type: str | None) -> int:
        """Store one OTLP/HTTP request body (``traces``, ``metrics`` or ``logs``)."""
        raise NotImplementedError

    def delete_run(self, run_id: str) -> bool:
        """Remove a run and its results; False when there was no such run."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file or the connection."""

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
