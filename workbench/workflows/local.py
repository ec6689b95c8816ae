"""The workflows of this process for one principal, with the methods of the HTTP client
(control/devkit.DevKit): the page and a notebook drive either the same way, and every
action checks the principal's role inside the engine."""

from __future__ import annotations

from typing import Any

from .spec import shown
from .templates import TEMPLATES


class LocalWorkflows:
    def __init__(self, engine, principal) -> None:
        self.engine = engine
        self.principal = principal

    def workflows(self) -> list[dict]:
        return shown(self.engine.list(), self.principal.role)

    def workflow(self, ref: str, version: int | None = None) -> dict:
        return shown(self.engine.get(ref, version), self.principal.role)

    def save_workflow(self, spec: dict[str, Any], ref: str | None = None) -> dict:
        return self.engine.save(self.principal, spec, ref)

    def workflow_templates(self) -> list[dict]:
        return TEMPLATES

    def workflow_versions(self, ref: str) -> list[dict]:
        return shown(self.engine.versions(ref), self.principal.role)

    def workflow_diff(self, ref: str, a: int, b: int) -> dict:
        return self.engine.diff(ref, a, b, self.principal.role)

    def run_workflow(self, ref: str, inputs: dict[str, Any] | None = None,
                     version: int | None = None) -> dict:
        return self.engine.start(self.principal, ref, inputs, version)

    def workflow_runs(self, ref: str | None = None, limit: int = 100) -> list[dict]:
        return self.engine.list_runs(ref, limit)

    def workflow_run(self, run_id: str) -> dict:
        return shown(self.engine.run(run_id), self.principal.role)

    def workflow_run_action(self, run_id: str, action: str) -> dict:
        act = self.engine.cancel if action == "cancel" else self.engine.resume
        return act(self.principal, run_id)
