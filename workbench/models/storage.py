"""The database file as a page or a notebook sees it: its size against its live data, the
retention policies, the backups — and the admins' actions (set a policy, apply the
policies, back up, compact), each checked for the caller's role and audited.

In the server the jobs go through its housekeeping (``keeper``: one job at a time, and
what each did last is remembered); in a notebook they run on the file directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import param

from .. import config
from ..control import access
from ..store import retention, upkeep
from ..store.kinds import KINDS, TABLES


class StorageModel(param.Parameterized):
    store = param.Parameter(doc="the workbench's Store")
    principal = param.Parameter(doc="who acts (control.access.Principal)")
    keeper = param.Parameter(default=None, doc="the server's Housekeeping, or None")

    kinds = list(KINDS)
    tables = list(TABLES)

    def may(self, action: str) -> bool:
        return self.principal.may(action)

    def _check(self, action: str, target: str = "", params: dict | None = None) -> None:
        access.authorize(self.store, self.principal, action, target, params)

    def state(self) -> dict[str, Any]:
        """The file's figures, the policies and the backups."""
        self._check("storage")
        if self.keeper is not None:
            return self.keeper.state()
        return {**upkeep.state(self.store, self._backups()), "last": {}}

    def _backups(self) -> Path:
        return upkeep.backup_folder(self.store, config.get("OBSERVATORY_BACKUP_DIR"))

    def projects(self) -> list[str]:
        """Projects and services a policy may name (runs', scanned ones')."""
        names = set(self.store.query("projects")["project"].dropna())
        names |= set(self.store.query("scanned_projects").get("name", []))
        return sorted(str(n) for n in names if n)

    def set_policy(self, value: dict[str, Any]) -> dict[str, Any]:
        self._check("retention", value.get("kind", ""), value)
        saved = retention.put_policy(self.store, retention.check_policy(value),
                                     self.principal.who).as_dict()
        access.record(self.store, self.principal, "retention", saved["kind"], saved)
        return saved

    def delete_policy(self, kind: str, project: str = "") -> bool:
        self._check("retention", kind, {"project": project, "delete": True})
        gone = retention.delete_policy(self.store, kind, project)
        access.record(self.store, self.principal, "retention", kind,
                      {"project": project, "delete": True}, "ok" if gone else "no such policy")
        return gone

    def _job(self, action: str, run) -> dict[str, Any]:
        self._check(action)
        try:
            result = run()
        except Exception as err:
            access.record(self.store, self.principal, action, str(self.store.path), {},
                          f"failed: {err}")
            raise
        access.record(self.store, self.principal, action, str(self.store.path),
                      {k: v for k, v in result.items() if not isinstance(v, list | dict)})
        return result

    def apply_retention(self) -> dict[str, Any]:
        return self._job("retention", lambda: self.keeper.retention() if self.keeper
                         else retention.apply(self.store).as_dict())

    def backup(self) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            if self.keeper is not None:
                return self.keeper.backup()
            return upkeep.backup(self.store, self._backups(),
                                 config.get("OBSERVATORY_BACKUP_KEEP")).as_dict()
        return self._job("backup", run)

    def compact(self) -> dict[str, Any]:
        return self._job("compact", lambda: self.keeper.compact() if self.keeper
                         else upkeep.compact(self.store))

    @staticmethod
    def export_link(table: str, fmt: str = "parquet", project: str = "",
                    since: str = "") -> str:
        """The relative URL that downloads one table (the API's export route)."""
        from urllib.parse import urlencode

        query = {k: v for k, v in (("format", fmt), ("project", project),
                                   ("since", since)) if v}
        return f"./api/export/{table}?{urlencode(query)}"
