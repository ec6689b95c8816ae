"""A project's one identity: the name its folder goes by, which its runs, coverage,
agents, test runs and pages share.

A scanned folder is named after itself (``attrs-24.2.0``) until a person names it
(``projects scan --name``, ``projects link NAME PATH``, ``projects rename``, the API, the
projects page): a given name is kept by every rescan. Runs stored under another name
(``--project attrs``) find their folder by themselves when the evidence is unambiguous —
pytest ran in it, a report inside it was ingested, their name is its remote's path, or
they ran the commit checked out when it was scanned — which the store reads as one rule
(store/coverage_queries.IDENTITY); a given name always wins. A name names one folder:
giving it to another folder takes it from the first, which goes back to its own name.

Each change is an operator's action (the ``scan`` grant), checked here for every caller —
API, page, command line — and written to the audit log, refusals too. Runs keep the name
they were stored with: renaming a folder never rewrites history.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..control import access
from .scan import describe, release, store_projects

#: Names: what a person may type (a CI name such as ``team/app`` included).
MAX_NAME = 200


def _allowed(store, principal: access.Principal, action: str, target: str,
             params: dict[str, Any]) -> None:
    if not principal.may("scan"):
        access.record(store, principal, action, target, params, "refused: needs operator")
        raise access.Forbidden(f"{action} needs the operator role; {principal.who} is "
                               f"{principal.role}")


def checked_name(name: Any) -> str:
    """A project name as given (ValueError naming what is wrong)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name: a project name is required")
    name = name.strip()
    if len(name) > MAX_NAME or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise ValueError(f"name: at most {MAX_NAME} printable characters")
    return name


def folder_of(store, name: str) -> dict[str, Any] | None:
    """The scanned folder that goes by ``name`` (its ``scanned_projects`` row: path,
    named_by, python, ...), the newest scanned when several do; None when none."""
    rows = store.query("project_folder", name=name)
    if rows.empty:
        return None
    row = rows.iloc[0].to_dict()
    return {k: (None if not isinstance(v, list | dict) and _missing(v) else v)
            for k, v in row.items()}


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def known(store, name: str) -> dict[str, Any]:
    """:func:`folder_of`, or KeyError saying how to give ``name`` a folder."""
    row = folder_of(store, name)
    if row is None:
        raise KeyError(f"no folder known for project {name!r}: scan it (observatory "
                       f"projects scan FOLDER --name {name}) or link one (observatory "
                       f"projects link {name} FOLDER)")
    return row


def rename(store, principal: access.Principal, name: str, new: str) -> dict[str, Any]:
    """Give the folder that goes by ``name`` the name ``new`` (kept by rescans)."""
    params = {"name": new}
    _allowed(store, principal, "project-rename", name, params)
    new = checked_name(new)
    row = known(store, name)

    def write(cur) -> None:
        release(cur, new, row["path"])
        cur.execute("UPDATE projects SET name = ?, named = true WHERE path = ?",
                    [new, row["path"]])

    store.write(write, topic="tests")
    access.record(store, principal, "project-rename", name, {**params, "path": row["path"]})
    return known(store, new)


def link(store, principal: access.Principal, name: str, path: str) -> dict[str, Any]:
    """``name``'s folder is ``path`` (a git repository on this machine): it is stored as a
    scan would, under that name."""
    params = {"path": path}
    _allowed(store, principal, "project-link", name, params)
    name = checked_name(name)
    if not isinstance(path, str) or not Path(path).is_absolute():
        raise ValueError("path: an absolute folder path")
    folder = Path(path).resolve()
    if not folder.is_dir():
        raise ValueError(f"path: {folder} is not a folder")
    if not (folder / ".git").exists():
        raise ValueError(f"path: {folder} is not a git repository (no .git)")
    store_projects(store, [describe(folder)], name=name)
    access.record(store, principal, "project-link", name, {"path": str(folder)})
    return known(store, name)


def remove(store, principal: access.Principal, name: str) -> dict[str, Any]:
    """Forget the folder that goes by ``name`` (its runs and coverage stay)."""
    _allowed(store, principal, "project-remove", name, {})
    row = known(store, name)
    store.write(lambda cur: cur.execute("DELETE FROM projects WHERE path = ?", [row["path"]]),
                topic="tests")
    access.record(store, principal, "project-remove", name, {"path": row["path"]})
    return row


def set_python(store, principal: access.Principal, name: str,
               python: str | None) -> dict[str, Any]:
    """The interpreter ``name``'s test runs use (an absolute path to an executable); None
    or "": found again (control/testruns.interpreter)."""
    params = {"python": python}
    _allowed(store, principal, "project-python", name, params)
    row = known(store, name)
    if python:
        if not isinstance(python, str) or not Path(python).is_absolute():
            raise ValueError("python: an absolute path to a Python interpreter")
        if not Path(python).is_file() or not os.access(python, os.X_OK):
            raise ValueError(f"python: {python} is not an executable file")
    value = python or None
    store.write(lambda cur: cur.execute("UPDATE projects SET python = ? WHERE path = ?",
                                        [value, row["path"]]), topic="tests")
    access.record(store, principal, "project-python", name, {**params, "path": row["path"]})
    return known(store, name)
