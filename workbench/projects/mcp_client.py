"""Connecting to the MCP servers a project declares, with the official ``mcp`` SDK's client.

A project's MCP server is code from that project (a stdio server is a command run on this
machine): the first connection needs an operator's approval, recorded per project, server
and *fingerprint* — of its declaration and of the project's files it runs (:func:`covers`:
their content, never their mtimes). Change the command, its arguments, environment or URL,
or edit the script or executable it runs, and it must be approved again; a file it runs
that the project names but that resolves out of it (a symlink) never runs. Every approval,
tool listing and call is audited.

Each listing or call opens its own session (connect, initialise, ask, close): the page and
the notebook ask rarely, and no server process is left running between calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import launcher
from ..config import utcnow
from ..control import access
from .scan import mcp_servers

#: Seconds a listing or a call may take, connection included.
TIMEOUT_S = 60.0
#: Bytes of one covered file hashed at most. A larger file is refused, not sampled: a digest
#: of only its first and last chunks would let an edit in between run under the approval.
MAX_BYTES = 64 * 2**20


class NotApproved(PermissionError):
    """The server (as declared now) has not been approved by an operator."""


class Refused(NotApproved):
    """No approval can cover the server as it is now: a file of the project it runs resolves
    out of the project (a symlink), is larger than :data:`MAX_BYTES`, or cannot be read."""


def declared(folder: str | Path) -> dict[str, dict[str, Any]]:
    """The project's servers by name, read from its files now (not from the last scan:
    what is approved and run is what the project declares at this moment)."""
    out = {}
    for spec in mcp_servers(Path(folder), full=True):
        if "name" in spec:
            out.setdefault(spec["name"], spec)
    return out


def covers(folder: str | Path, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's files a stdio server runs, which its fingerprint covers by content.

    Parameters
    ----------
    folder
        The project folder (the server's working directory).
    spec
        The server as :func:`declared` gives it.

    Returns
    -------
    list of dict
        One per file: ``role`` (``command``, ``arg`` or ``module``), ``path`` as declared
        (relative to the project when in it), ``target`` (where it resolves: relative when
        in the project, absolute when not), ``bytes``, ``sha256`` (of the whole content),
        and ``refused``: ``None``, or why no approval can cover it.

    Notes
    -----
    Covered: the command when its path (as declared, or found on ``PATH``) lies in the
    project; every argument, or ``--option=value`` value, naming an existing file in the
    project (relative to the project, the server's working directory): scripts, bundles,
    configuration alike; for ``-m pkg.mod``, the module's file, its ``__main__.py`` and its
    packages' ``__init__.py``. Not followed: what those import or load (``npx`` and
    ``uv run`` packages, a script's own imports), and files named outside the project (the
    machine's, as ``python3`` itself is: the declaration names them). Symlinks are resolved:
    an argument in the project that resolves out of it is refused; the command may (a
    virtual environment's interpreter links to the machine's), its target's path and
    content are then covered.
    """
    if spec.get("transport") == "http":
        return []
    root = Path(folder).resolve()
    out: list[dict[str, Any]] = []
    seen: set[Path] = set()

    def add(role: str, path: Path) -> None:
        try:
            lexical = Path(os.path.normpath(root / path))
            real = (root / path).resolve()  # each link, then each "..", as the kernel does
            is_file = real.is_file()
        except (OSError, ValueError, RuntimeError):  # a NUL, a loop, an unreadable folder
            return
        inside = real.is_relative_to(root)
        if lexical in seen or not is_file or not (inside or lexical.is_relative_to(root)):
            return
        seen.add(lexical)
        entry = {"role": role, "path": _shown(lexical, root), "target": _shown(real, root),
                 "bytes": None, "sha256": None, "refused": None}
        if not inside and role != "command":
            entry["refused"] = (f"{entry['path']} lies outside the project: it resolves to "
                                f"{real}; no approval of the project's code runs it")
        else:
            entry.update(_digest(real, entry["path"]))
        out.append(entry)

    command = _command(root, spec)
    if command is not None:
        add("command", command)
    args = [str(a) for a in spec.get("args") or []]
    for i, arg in enumerate(args):
        if arg == "-m" and i + 1 < len(args) and all(
                p.isidentifier() for p in args[i + 1].split(".")):
            parts = args[i + 1].split(".")
            for n in range(1, len(parts)):
                add("module", Path(*parts[:n], "__init__.py"))
            base = Path(*parts)
            for rel in (base.with_name(base.name + ".py"), base / "__init__.py",
                        base / "__main__.py"):
                add("module", rel)
            continue
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value and not value.startswith("-"):
            add("arg", Path(value))
    return out


def fingerprint(folder: str | Path, spec: dict[str, Any],
                covered: list[dict[str, Any]] | None = None) -> str:
    """What an approval is for: the project folder, everything in the declaration that
    decides what runs, and the project's files it runs (:func:`covers`; computed unless
    given)."""
    keys = ("file", "name", "transport", "command", "args", "env", "url", "headers")
    doc: list[Any] = [str(Path(folder).resolve()), {k: spec.get(k) for k in keys}]
    covered = covers(folder, spec) if covered is None else covered
    if covered:  # none (an HTTP server, a command of the machine's): as before this covered
        doc.append([[c["role"], c["path"], c["target"], c["sha256"], c["refused"]]
                    for c in covered])
    doc_text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(doc_text.encode()).hexdigest()[:24]


def server(store, folder: str | Path, name: str) -> tuple[dict[str, Any], str, bool]:
    """``(spec, fingerprint, approved)`` for server ``name`` of the project at ``folder``."""
    spec, fp, _, ok = _state(store, folder, name)
    return spec, fp, ok


def _state(store, folder, name) -> tuple[dict[str, Any], str, list[dict[str, Any]], bool]:
    spec = declared(folder).get(name)
    if spec is None:
        raise KeyError(f"{folder}: declares no MCP server {name!r}")
    covered = covers(folder, spec)
    fp = fingerprint(folder, spec, covered)
    if _refusal(covered):
        return spec, fp, covered, False
    rows = store.query("mcp_approval", project=str(Path(folder).resolve()), server=name,
                       fingerprint=fp)
    return spec, fp, covered, not rows.empty


def _refusal(covered: list[dict[str, Any]]) -> str | None:
    reasons = [c["refused"] for c in covered if c["refused"]]
    return "; ".join(reasons) if reasons else None


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _command(root: Path, spec: dict[str, Any]) -> Path | None:
    """The file the command names, found as the child finds it: a path with a separator is
    relative to its working directory (the project), a bare name is looked up on the
    ``PATH`` of the environment it gets (a relative entry: relative to the project)."""
    command = str(spec.get("command") or "")
    if not command:
        return None
    if "/" in command or (os.altsep and os.altsep in command) or os.sep in command:
        return root / command
    env = _env(spec)
    found = shutil.which(command, path=os.pathsep.join(
        str(root / d) for d in os.get_exec_path(env)))
    return Path(found) if found else None


def _digest(path: Path, shown: str) -> dict[str, Any]:
    """``bytes`` and ``sha256`` of the whole file, or why it is refused."""
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
                if size > MAX_BYTES:
                    return {"refused": f"{shown} is larger than {MAX_BYTES} bytes, the most "
                                       "an approval fingerprints"}
                digest.update(chunk)
    except OSError as err:
        return {"refused": f"{shown} cannot be read to fingerprint it: {err}"}
    return {"bytes": size, "sha256": digest.hexdigest()}


def listing(store, folder: str | Path) -> list[dict[str, Any]]:
    """Every declared server with whether it is approved as declared now, the project's
    files its approval covers (``covers``: paths, sizes and digests, never content) and, when
    no approval can hold, why (``refused``); no secrets (an environment's or headers' values
    are never shown)."""
    out = []
    for name, spec in declared(folder).items():
        _, fp, covered, ok = _state(store, folder, name)
        out.append({"name": name, "file": spec["file"], "transport": spec["transport"],
                    "command": spec.get("command"), "args": spec.get("args") or [],
                    "url": spec.get("url"), "env": sorted(spec.get("env") or {}),
                    "fingerprint": fp, "approved": ok,
                    "covers": [{**c, "sha256": (c["sha256"] or "")[:16] or None}
                               for c in covered],
                    "refused": _refusal(covered)})
    return out


def approve(store, folder: str | Path, name: str, principal: access.Principal) -> str:
    """Record an operator's approval of server ``name`` as it is now (declaration and the
    project's files it runs); audited. :class:`Refused` when no approval can cover it."""
    target = f"{Path(folder).name}/{name}"
    access.authorize(store, principal, "mcp", target)
    _, fp, covered, _ = _state(store, folder, name)
    params = {"fingerprint": fp, "covers": [c["path"] for c in covered]}
    if reason := _refusal(covered):
        access.record(store, principal, "mcp-approve", target, params, f"refused: {reason}"[:300])
        raise Refused(f"MCP server {name!r} of {Path(folder).name} cannot be approved: {reason}")
    values = [str(Path(folder).resolve()), name, fp, principal.who, utcnow()]
    # Written before this returns: the next call must find it.
    store.write(lambda cur: cur.execute(
        "INSERT OR REPLACE INTO mcp_approvals VALUES (?, ?, ?, ?, ?)", values), topic="control")
    access.record(store, principal, "mcp-approve", target, params)
    return fp


def tools(store, folder: str | Path, name: str, principal: access.Principal
          ) -> list[dict[str, Any]]:
    """The server's tools (name, description, input schema); needs an approval."""
    spec = _approved(store, folder, name, principal, "list tools")

    async def ask(client):
        return (await client.list_tools()).tools

    found = _run(spec, folder, ask)
    access.record(store, principal, "mcp-tools", f"{Path(folder).name}/{name}",
                  {"tools": len(found)})
    return [{"name": t.name, "description": t.description or "",
             "input_schema": t.input_schema} for t in found]


def call(store, folder: str | Path, name: str, tool: str, arguments: dict[str, Any],
         principal: access.Principal) -> dict[str, Any]:
    """Call ``tool`` with ``arguments``; the answer's text, structured content and whether
    the tool reported an error. Audited with its arguments and outcome."""
    if not isinstance(arguments, dict):
        raise ValueError("arguments: a JSON object")
    spec = _approved(store, folder, name, principal, f"call {tool}")
    target = f"{Path(folder).name}/{name}"

    async def ask(client):
        return await client.call_tool(tool, arguments)

    try:
        result = _run(spec, folder, ask)
    except Exception as err:
        access.record(store, principal, "mcp-call", target,
                      {"tool": tool, "arguments": arguments}, f"failed: {err}"[:300])
        raise
    texts = [getattr(c, "text", "") for c in result.content if getattr(c, "text", None)]
    access.record(store, principal, "mcp-call", target, {"tool": tool, "arguments": arguments},
                  "tool error" if result.is_error else "ok")
    return {"tool": tool, "is_error": bool(result.is_error), "text": "\n".join(texts),
            "structured": result.structured_content}


def _approved(store, folder, name, principal, what: str) -> dict[str, Any]:
    target = f"{Path(folder).name}/{name}"
    access.authorize(store, principal, "mcp", target)
    spec, fp, covered, ok = _state(store, folder, name)
    if reason := _refusal(covered):
        access.record(store, principal, "mcp", target, {"what": what}, f"refused: {reason}"[:300])
        raise Refused(f"MCP server {name!r} of {Path(folder).name} will not run: {reason}")
    if not ok:
        raise NotApproved(f"MCP server {name!r} of {Path(folder).name} is not approved as "
                          f"it is now (its declaration and the project's files it runs, "
                          f"fingerprint {fp}): an operator approves it first")
    return spec


def _run(spec: dict[str, Any], folder, ask):
    """Open a session to the server, ``await ask(client)``, close; within TIMEOUT_S."""
    from mcp import Client

    async def session():
        if spec["transport"] != "http":
            from mcp.client.stdio import stdio_client

            # The server's stderr to a file of its own: the caller's may have no file
            # descriptor (a notebook kernel's), and its last line explains a failure.
            with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
                try:
                    async with Client(stdio_client(_stdio(spec, folder), errlog=err)) as client:
                        return await ask(client)
                except Exception as exc:
                    err.seek(0)
                    last = [line for line in err.read().splitlines() if line.strip()][-1:]
                    if last:
                        raise ConnectionError(f"{exc}; the server said: {last[0][:300]}"
                                              ) from exc
                    raise
        from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

        headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
        async with create_mcp_http_client(headers=headers) as http:  # closed even on failure
            async with Client(streamable_http_client(spec["url"], http_client=http)) as client:
                return await ask(client)

    def in_new_loop():
        return asyncio.run(asyncio.wait_for(session(), TIMEOUT_S))

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return in_new_loop()
        # Called from code on a running loop (a notebook's kernel): run beside it.
        with ThreadPoolExecutor(1, thread_name_prefix="mcp-client") as pool:
            return pool.submit(in_new_loop).result()
    except TimeoutError:
        raise TimeoutError(f"MCP server {spec['name']!r}: no answer in {TIMEOUT_S:.0f} s"
                           ) from None
    except BaseExceptionGroup as group:  # anyio task groups wrap the first real error
        first = group.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise ConnectionError(f"MCP server {spec['name']!r}: {first}") from None


def _env(spec: dict[str, Any]) -> dict[str, str]:
    """A stdio server's environment (launcher.child_env): the allow-list and what the
    project declares — never the workbench's own secrets (a declared one is refused)."""
    return launcher.child_env({str(k): str(v) for k, v in (spec.get("env") or {}).items()})


def _stdio(spec: dict[str, Any], folder):
    from mcp.client.stdio import StdioServerParameters

    env = _env(spec)
    return StdioServerParameters(command=spec["command"], args=[str(a) for a in
                                                               spec.get("args") or []],
                                 env=env, cwd=str(folder))
