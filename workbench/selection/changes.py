"""What a change is, as the selector needs it: the lines it touches, the test files it adds
or edits (and the tests defined there, read without importing anything), pytest node ids
for stored test ids, and which files changed with each of a test's past failures."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd

from ..git import GitError, changed_lines, git

SHA = re.compile(r"^[0-9a-fA-F]{4,64}$")


def changes(repo: str | Path, base: str, head: str | None = None) -> dict[str, set[int]]:
    """Lines added or changed per file, ``base..head`` (no ``head``: the working tree,
    untracked files included as wholly new)."""
    out = changed_lines(repo, base, head)
    if head is None:
        for name in git(repo, "ls-files", "--others", "--exclude-standard").splitlines():
            path = Path(repo) / name
            try:
                count = sum(1 for _ in path.open(encoding="utf-8", errors="replace"))
            except OSError:
                continue
            out[name] = set(range(1, count + 1))
    return out


def is_test_file(path: str) -> bool:
    name = Path(path).name
    return path.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def tests_in(repo: str | Path, path: str) -> list[str]:
    """The node ids of the tests a Python test file defines (module-level ``test*``
    functions, ``test*`` methods of ``Test*`` classes), read with ``ast``: nothing of the
    project is imported or run to know them."""
    try:
        tree = ast.parse((Path(repo) / path).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return []
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and \
                node.name.startswith("test"):
            out.append(f"{path}::{node.name}")
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            out += [f"{path}::{node.name}::{m.name}" for m in node.body
                    if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                    and m.name.startswith("test")]
    return out


def node_id(test_id: str, file: str | None = None, classname: str | None = None,
            name: str | None = None) -> str:
    """The pytest node id of a stored test (``tests.test_x.TestC::t`` with its file
    ``tests/test_x.py`` → ``tests/test_x.py::TestC::t``); ids that are node ids already
    stay as they are, and ids of other runners are returned unchanged."""
    if ".py::" in test_id:
        return test_id
    if file and str(file).endswith(".py") and name:
        file = str(file).replace("\\", "/")
        module = file[:-3].replace("/", ".")
        rest = ""
        if classname and classname != module and classname.startswith(module + "."):
            rest = classname[len(module) + 1:].replace(".", "::") + "::"
        return f"{file}::{rest}{name}"
    head, sep, last = test_id.rpartition("::")
    if sep and head.startswith(("tests.", "test_")) and "/" not in head:
        return f"{head.replace('.', '/')}.py::{last}"
    return test_id


def failure_files(repo: str | Path, history: pd.DataFrame, limit: int = 50
                  ) -> dict[str, list[set[str]]]:
    """For each test, the sets of files that changed just before each of its new failures
    (a run where it failed after passing in the run before, on another commit) — the last
    ``limit`` such runs. ``history`` is the ``selection_history`` query's frame."""
    if history.empty:
        return {}
    runs = history.drop_duplicates("run_id")[["run_id", "commit_sha"]].reset_index(drop=True)
    failed = history[history["outcome"].isin(("failed", "error"))]
    by_run = failed.groupby("run_id")["test_id"].agg(set).to_dict()
    out: dict[str, list[set[str]]] = {}
    seen = 0
    for i in range(len(runs) - 1, 0, -1):
        run, prev = runs.iloc[i], runs.iloc[i - 1]
        new = by_run.get(run["run_id"], set()) - by_run.get(prev["run_id"], set())
        a, b = str(prev["commit_sha"] or ""), str(run["commit_sha"] or "")
        # (stored shas come from clients: only hex names reach git's command line)
        if not new or a == b or not (SHA.match(a) and SHA.match(b)):
            continue
        try:
            files = set(git(repo, "diff", "--name-only", "--no-renames",
                            f"{a}..{b}", "--").split())
        except GitError:
            continue
        for test in new:
            out.setdefault(test, []).append(files)
        seen += 1
        if seen >= limit:
            break
    return out
