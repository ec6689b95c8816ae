"""Writes sent to a running workbench's HTTP API."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import httpx

from ..ingest import as_bytes
from ..ingest.ci_env import detect
from .base import RUN_META_KEYS, RUN_SECRET_HEADER, Intake, IntakeError, done, failed

_NOT_API = (
    "{url} answered {what} with HTTP {status} and no workbench JSON: it is not serving the "
    "workbench API (start it with `observatory serve`, or give `panel serve` "
    "`--plugins workbench.server.plugin`)"
)


class RemoteIntake(Intake):
    """A server's intake over HTTP; ``token`` defaults to ``OBSERVATORY_TOKEN``."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 300):
        from ..http import http_client

        self.where = url.rstrip("/")
        self.created = False
        self._http = http_client(url, token, timeout)
        self._secrets: dict[str, str] = {}  # run id → the secret its start returned

    def _call(self, method: str, path: str, **kw: Any) -> tuple[int, dict]:
        """``(status, JSON body)``; an unreachable or non-workbench server raises."""
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise IntakeError(f"{self.where}: cannot reach the workbench: {err}") from None
        try:
            body = resp.json()
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            raise IntakeError(_NOT_API.format(url=self.where, what=f"{method} {path}",
                                              status=resp.status_code)) from None
        return resp.status_code, body

    def _ok(self, method: str, path: str, **kw: Any) -> dict:
        status, body = self._call(method, path, **kw)
        if status != 200:
            raise IntakeError(f"{self.where}{path}: HTTP {status}: {body.get('error')}")
        return body

    def submit_report(self, data: bytes, name: str, flags: dict[str, Any],
                      fmt: str | None = None) -> Future:
        # The client's CI environment describes the run; the server's does not.
        meta = {**detect(), **{k: v for k, v in flags.items() if v not in (None, "")}}
        params = {k: v for k, v in meta.items() if k in (*RUN_META_KEYS, "report_tz")}
        params["filename"] = name
        if fmt:
            params["format"] = fmt
        try:
            status, body = self._call("POST", "/api/tests/reports", params=params,
                                      content=as_bytes(data))
        except IntakeError as err:
            return done(failed(name, f"{name}: {err}"))
        if status != 200 or not body.get("ok"):
            return done(failed(name, body.get("error") or f"{name}: HTTP {status}"))
        return done({**body, "path": name})

    def coverage(self, data: bytes, name: str, flags: dict[str, Any],
                 roots: list[str] | None = None, fmt: str | None = None) -> dict[str, Any]:
        from ..coverage import CoverageError
        from ..coverage.coveragepy import as_json
        from ..coverage.read import detect

        data = as_bytes(data)
        try:  # a data file is read where its sources are: here, not on the server
            if (fmt or detect(data, name)) == "coveragepy":
                data, fmt = as_json(data, name), "coveragepy-json"
        except CoverageError as err:
            return failed(name, str(err))
        params = {k: v for k, v in flags.items() if k in ("project", "commit", "branch") and v}
        params.update(filename=name, **({"format": fmt} if fmt else {}))
        if roots:
            params["root"] = roots
        try:
            status, body = self._call("POST", "/api/coverage/reports", params=params,
                                      content=data)
        except IntakeError as err:
            return failed(name, f"{name}: {err}")
        if status != 200 or not body.get("ok"):
            return failed(name, body.get("error") or f"{name}: HTTP {status}")
        return {**body, "path": name}

    def live_start(self, meta: dict[str, Any], secret_sha256: str | None = None) -> str:
        body = self._ok("POST", "/api/tests/live", json={k: meta.get(k) for k in RUN_META_KEYS})
        self._secrets[body["run_id"]] = body.get("secret", "")
        return body["run_id"]

    def _writer(self, run_id: str) -> dict[str, str]:
        return {RUN_SECRET_HEADER: self._secrets.get(run_id, "")}

    def live_append(self, run_id: str, tests: list[dict[str, Any]],
                    running: list[str] | None = None) -> int:
        body: dict[str, Any] = {"tests": tests}
        if running is not None:
            body["running"] = running
        return self._ok("POST", f"/api/tests/live/{run_id}/results", json=body,
                        headers=self._writer(run_id))["stored"]

    def live_finish(self, run_id: str, duration_s: float | None) -> None:
        self._ok("POST", f"/api/tests/live/{run_id}/finish", json={"duration_s": duration_s},
                 headers=self._writer(run_id))

    def telemetry(self, signal: str, data: bytes, content_type: str | None) -> int:
        """POST one OTLP request to the server's receiver; -1: the count is the server's."""
        try:
            resp = self._http.post(f"/v1/{signal}", content=data,
                                   headers={"Content-Type": content_type or ""})
        except httpx.HTTPError as err:
            raise IntakeError(f"{self.where}: cannot reach the workbench: {err}") from None
        if resp.status_code != 200:
            raise IntakeError(f"{self.where}/v1/{signal}: HTTP {resp.status_code}")
        return -1

    def delete_run(self, run_id: str) -> bool:
        status, body = self._call("DELETE", f"/api/runs/{run_id}")
        if status == 404:
            return False
        if status != 200:
            raise IntakeError(f"{self.where}/api/runs/{run_id}: HTTP {status}: "
                              f"{body.get('error')}")
        return True

    def close(self) -> None:
        self._http.close()
