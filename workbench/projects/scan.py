"""Finding the git repositories under some folders, and what kind of project each is.

The walk is bounded: it never follows a symbolic link (so a link loop cannot trap it),
never enters what holds no project (dependencies, virtual environments, build outputs,
caches), and stops at a repository's root (its subfolders are the project's own). One
``scandir`` per folder, no subprocess: 100k folders take a few seconds (see
benchmarks/projects_scan.py).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

#: Folder names never entered.
SKIP = frozenset({
    "node_modules", ".venv", "venv", ".tox", ".nox", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", "site-packages", "dist", "build", "target", ".gradle",
    ".idea", ".vscode", ".cache", ".npm", ".cargo", ".rustup", "bower_components", ".next",
    ".terraform", "Library", ".Trash", "vendor",
})
#: Marker file → project kind, in the order a project's main kind is chosen.
MARKERS = (
    ("pyproject.toml", "python"), ("setup.py", "python"), ("setup.cfg", "python"),
    ("package.json", "node"), ("Cargo.toml", "rust"), ("go.mod", "go"),
    ("pom.xml", "java-maven"), ("build.gradle", "java-gradle"),
    ("build.gradle.kts", "java-gradle"), ("Gemfile", "ruby"), ("composer.json", "php"),
    ("mix.exs", "elixir"), ("Package.swift", "swift"), ("pubspec.yaml", "dart"),
    ("CMakeLists.txt", "cmake"), ("Makefile", "make"),
)
#: Dependency manifests and lock files (what the health row lists).
MANIFESTS = frozenset({
    "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile", "poetry.lock",
    "uv.lock", "package.json", "package-lock.json", "yarn.lock", "pnpm-lock.yaml",
    "Cargo.toml", "Cargo.lock", "go.mod", "go.sum", "pom.xml", "build.gradle",
    "build.gradle.kts", "Gemfile", "Gemfile.lock", "composer.json", "mix.exs",
    "Package.swift", "pubspec.yaml",
})


def default_roots() -> list[Path]:
    """The current folder, and ~/src, ~/code, ~/projects, ~/work where they exist."""
    home = Path.home()
    return [Path.cwd(), *(p for p in (home / n for n in ("src", "code", "projects", "work"))
                          if p.is_dir())]


def scan(roots: list[Path | str], max_dirs: int = 2_000_000) -> tuple[list[dict[str, Any]],
                                                                      int]:
    """The repositories under ``roots`` (each once), and how many folders were read."""
    found: dict[str, dict[str, Any]] = {}
    seen = 0
    todo = [Path(r).expanduser().resolve() for r in roots]
    while todo and seen < max_dirs:
        folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # unreadable, vanished, not a folder
            continue
        seen += 1
        names = {e.name for e in entries}
        if ".git" in names:
            key = str(folder)
            if key not in found:
                found[key] = describe(folder, names)
            continue  # a repository's subfolders are its own
        for entry in entries:
            if entry.name in SKIP or entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    todo.append(Path(entry.path))
            except OSError:
                continue
    return sorted(found.values(), key=lambda p: p["path"]), seen


def describe(folder: Path, names: set[str] | None = None) -> dict[str, Any]:
    """One repository: its kind(s), manifests, current branch, the commit checked out
    (``head``), its remote (``remote``: origin's URL without any user or password) and
    declared MCP servers. ``name`` is the folder's (a person may give another one:
    identity.py)."""
    names = names if names is not None else {p.name for p in folder.iterdir()}
    kinds = list(dict.fromkeys(kind for marker, kind in MARKERS if marker in names))
    if any(n.endswith((".csproj", ".sln", ".fsproj")) for n in names):
        kinds.append("dotnet")
    git = folder / ".git"
    return {"path": str(folder), "name": folder.name, "kind": kinds[0] if kinds else "other",
            "kinds": kinds, "manifests": sorted(names & MANIFESTS),
            "branch": current_branch(git), "head": head_commit(git),
            "remote": remote_url(git), "mcp_servers": mcp_servers(folder)}


def _git_dir(git: Path) -> Path:
    """The repository's git folder: ``.git`` itself, or where a ``.git`` file points (as
    in worktrees and submodules). OSError when unreadable."""
    if git.is_file():
        target = git.read_text().strip().removeprefix("gitdir:").strip()
        return (git.parent / target).resolve()
    return git


def _common_dir(gitdir: Path) -> Path:
    """Where a worktree's shared refs and config live (its ``commondir``), else itself."""
    try:
        return (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
    except OSError:
        return gitdir


def current_branch(git: Path) -> str | None:
    """The checked-out branch, read from ``.git/HEAD`` (``.git`` may be a file pointing
    elsewhere, as in worktrees and submodules); None when detached or unreadable."""
    try:
        head = (_git_dir(git) / "HEAD").read_text().strip()
    except OSError:
        return None
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else None


_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


def head_commit(git: Path) -> str | None:
    """The full SHA checked out, read from the git folder's files (``HEAD``, the ref it
    names, or ``packed-refs``); None in a repository without commits or unreadable."""
    try:
        gitdir = _git_dir(git)
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head if _SHA.match(head) else None
        ref = head[5:].strip()
        common = _common_dir(gitdir)
        for base in (gitdir, common):
            if (base / ref).is_file():
                sha = (base / ref).read_text().strip()
                return sha if _SHA.match(sha) else None
        for line in (common / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref and _SHA.match(sha):
                return sha
    except (OSError, ValueError):
        pass
    return None


def remote_url(git: Path) -> str | None:
    """The URL of the ``origin`` remote (else of the first remote), read from the git
    config; a user and password in it (``https://user:token@host/...``) are left out."""
    try:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string((_common_dir(_git_dir(git)) / "config").read_text())
    except (OSError, ValueError, configparser.Error):
        return None
    remotes = [s for s in parser.sections() if s.startswith('remote "')]
    remotes.sort(key=lambda s: s != 'remote "origin"')
    for section in remotes:
        url = parser.get(section, "url", fallback=None)
        if url:
            return re.sub(r"^([a-zA-Z][\w+.-]*://)[^/@]*@", r"\1", url.strip())
    return None


def mcp_servers(folder: Path, full: bool = False) -> list[dict[str, Any]]:
    """The MCP servers a project declares for its agents: Claude Code's ``.mcp.json``,
    Codex's ``.codex/config.toml`` ``[mcp_servers.*]``, Gemini's ``.gemini/settings.json``.
    ``full`` adds each one's ``env`` and ``headers`` (to connect; never stored: secrets)."""
    out: list[dict[str, Any]] = []
    for rel, reader in ((".mcp.json", _json_servers), (".gemini/settings.json", _json_servers),
                        (".codex/config.toml", _toml_servers)):
        path = folder / rel
        if not path.is_file():
            continue
        try:
            servers = reader(path)
        except (OSError, ValueError, tomllib.TOMLDecodeError) as err:
            out.append({"file": rel, "error": f"{rel}: {str(err).splitlines()[0][:200]}"})
            continue
        for name, spec in servers.items():
            if isinstance(spec, dict):
                url = spec.get("url") or spec.get("httpUrl")
                out.append({"file": rel, "name": name,
                            "transport": "http" if url else "stdio",
                            "command": spec.get("command"), "args": spec.get("args") or [],
                            "url": url})
                if full:
                    out[-1].update(env=_mapping(spec.get("env")),
                                   headers=_mapping(spec.get("headers")
                                                    or spec.get("http_headers")))
    return out


def _mapping(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _json_servers(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    servers = doc.get("mcpServers") if isinstance(doc, dict) else None
    return servers if isinstance(servers, dict) else {}


def _toml_servers(path: Path) -> dict[str, Any]:
    servers = tomllib.loads(path.read_text()).get("mcp_servers")
    return servers if isinstance(servers, dict) else {}


def stored_list(value: Any) -> list:
    """A stored project's list column (``kinds``, ``manifests``, ``mcp_servers``: JSON text
    as :func:`store_projects` writes it) as a list; missing or unreadable, an empty one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return list(value) if isinstance(value, list | tuple) else []


#: The columns a scan writes (a person's name for a project and its interpreter stay).
_SCANNED = ("path", "name", "kind", "kinds", "manifests", "branch", "mcp_servers",
            "scanned_at", "named", "remote", "head")


def release(cur, name: str, path: str) -> None:
    """Inside a write: any other folder holding ``name`` as a given name goes back to its
    own (a name names one folder)."""
    cur.execute("UPDATE projects SET name = regexp_extract(path, '[^/]+$'), named = false "
                "WHERE name = ? AND path <> ?", [name, path])


def store_projects(store, projects: list[dict[str, Any]], name: str | None = None) -> None:
    """Keep what a scan found: a project found again is updated, never duplicated, and
    keeps the name a person gave it (and its interpreter). ``name``: the name a person
    gives the one project found (``projects scan --name``; identity.py)."""
    from ..config import utcnow

    if name is not None and len(projects) != 1:
        raise ValueError(f"a name names one project; the scan found {len(projects)}")
    now = utcnow()
    rows = [[p["path"], name or p["name"], p["kind"], json.dumps(p["kinds"]),
             json.dumps(p["manifests"]), p["branch"], json.dumps(p["mcp_servers"]), now,
             name is not None, p.get("remote"), p.get("head")] for p in projects]
    keep = ", ".join(f"{c} = excluded.{c}" for c in _SCANNED[2:8] + _SCANNED[9:])

    def write(cur) -> None:
        if name is not None:
            release(cur, name, projects[0]["path"])
        cur.executemany(
            f"INSERT INTO projects ({', '.join(_SCANNED)}) VALUES "
            f"({', '.join('?' * len(_SCANNED))}) ON CONFLICT (path) DO UPDATE SET {keep}, "
            "name = CASE WHEN excluded.named OR NOT named THEN excluded.name ELSE name END, "
            "named = named OR excluded.named", rows)

    if rows:
        store.write(write, topic="tests")
