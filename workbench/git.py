"""A repository through the ``git`` command (no library: git itself is what every project
has, and its porcelain output is stable): branches, recent commits, and a diff as files
and changed line ranges.

A revision from a client never reaches git as it was sent: :func:`revision` resolves it to
a full SHA first (``rev-parse --verify --end-of-options``), so ``--output=/any/file`` is a
revision git cannot find, never an option it obeys.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from . import launcher

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


class GitError(RuntimeError):
    """git refused; the message is its first line of error."""


def git(repo: str | Path, *args: str) -> str:
    try:
        out = launcher.run(["git", "-C", str(repo), *args], timeout=60)
    except (OSError, ValueError, subprocess.TimeoutExpired) as err:
        raise GitError(f"git {args[0]}: {err}") from None
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or ["failed"])[0]
        raise GitError(f"{repo}: git {args[0]}: {first}")
    return out.stdout


def revision(repo: str | Path, rev: Any) -> str:
    """The full SHA of the commit ``rev`` names (a branch, tag, short SHA, ``HEAD~2``):
    GitError (the client's mistake) when it is not a revision of ``repo``."""
    if not isinstance(rev, str) or not rev or len(rev) > 256 or \
            any(c in rev for c in "\0\n\r") or rev.startswith("-"):
        raise GitError(f"{str(rev)[:60]!r} is not a git revision")
    try:
        sha = git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options",
                  f"{rev}^{{commit}}").strip()
    except GitError:
        raise GitError(f"{repo}: no commit {rev[:60]!r}") from None
    if not _SHA.match(sha):
        raise GitError(f"{repo}: no commit {rev[:60]!r}")
    return sha


def branches(repo: str | Path) -> dict[str, Any]:
    """The current branch (None when detached) and every local branch."""
    current = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    names = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
    return {"current": None if current == "HEAD" else current, "branches": names}


def commits(repo: str | Path, rev: str = "HEAD", limit: int = 20) -> list[dict[str, Any]]:
    """The newest commits reachable from ``rev``: sha, author, time, subject."""
    out = git(repo, "log", f"-{int(limit)}", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s",
              revision(repo, rev), "--")
    keys = ("sha", "author", "email", "time", "subject")
    return [dict(zip(keys, line.split("\x1f"), strict=True)) for line in out.splitlines()]


def changed_lines(repo: str | Path, base: str, head: str | None = None) -> dict[str, set[int]]:
    """Lines added or changed in each file from ``base`` to ``head`` (default: the working
    tree), in the new version's numbering; deleted files are left out. Both revisions are
    resolved to SHAs first (:func:`revision`)."""
    args = ["diff", "--unified=0", "--no-color", "--no-ext-diff", "--diff-filter=d",
            revision(repo, base)]
    if head:
        args.append(revision(repo, head))
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


def checked_out(repo: str | Path) -> dict[str, str]:
    """``commit`` (full SHA) and ``branch`` (left out when detached) checked out in the
    repository holding ``repo``; {} outside one or before its first commit."""
    try:
        sha, _, branch = git(repo, "rev-parse", "HEAD", "--abbrev-ref", "HEAD").partition("\n")
    except GitError:
        return {}
    if not _SHA.match(sha.strip()):
        return {}
    out = {"commit": sha.strip()}
    if branch.strip() and branch.strip() != "HEAD":
        out["branch"] = branch.strip()
    return out
