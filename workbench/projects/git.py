"""A repository through the ``git`` command (no library: git itself is what every project
has, and its porcelain output is stable): branches, recent commits, and a diff as files
and changed line ranges."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class GitError(RuntimeError):
    """git refused; the message is its first line of error."""


def git(repo: str | Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise GitError(f"git {args[0]}: {err}") from None
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or ["failed"])[0]
        raise GitError(f"{repo}: git {args[0]}: {first}")
    return out.stdout


def branches(repo: str | Path) -> dict[str, Any]:
    """The current branch (None when detached) and every local branch."""
    current = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    names = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
    return {"current": None if current == "HEAD" else current, "branches": names}


def commits(repo: str | Path, rev: str = "HEAD", limit: int = 20) -> list[dict[str, Any]]:
    """The newest commits reachable from ``rev``: sha, author, time, subject."""
    out = git(repo, "log", f"-{int(limit)}", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s", rev,
              "--")
    keys = ("sha", "author", "email", "time", "subject")
    return [dict(zip(keys, line.split("\x1f"), strict=True)) for line in out.splitlines()]


def changed_lines(repo: str | Path, base: str, head: str | None = None) -> dict[str, set[int]]:
    """Lines added or changed in each file from ``base`` to ``head`` (default: the working
    tree), in the new version's numbering; deleted files are left out."""
    args = ["diff", "--unified=0", "--no-color", "--no-ext-diff", "--diff-filter=d", base]
    if head:
        args.append(head)
    out: dict[str, set[int]] = {}
    path = None
    for line in git(repo, *args, "--").splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            path = None if name == "/dev/null" else name.removeprefix("b/")
            if path is not None:
                out.setdefault(path, set())
        elif path is not None and (m := _HUNK.match(line)):
            start, count = int(m.group(1)), int(m.group(2) or 1)
            out[path].update(range(start, start + count))
    return {p: lines for p, lines in out.items() if lines}
