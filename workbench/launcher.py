"""The one way the workbench starts a child process (agents, test runs, git, MCP servers).

Three rules, kept here so that a new feature cannot forget one:

- **No client value where an option can stand.** ``argv`` is a list (never a shell line the
  workbench builds from a request); git revisions are resolved to full SHAs with
  ``rev-parse --verify --end-of-options`` before they are used (git.py), and paths
  come after ``--``.
- **No secret of the workbench reaches a child.** A child's environment is built from an
  allow-list (:data:`ALLOWED`, plus the names an admin adds with ``OBSERVATORY_CHILD_ENV``)
  and the values its definition names; the workbench's own tokens, cookie secret and login
  passwords are never among them, whatever a definition or the setting says.
- **Every long-lived child is its own process group, found again after a restart.** Its
  pid and start time are stored by its owner (agents, test runs); :func:`alive` tells the
  same process from a reused pid, and :func:`stop_group` ends one that nobody can adopt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import config

#: Variables a child inherits from the workbench: what programs need to find themselves,
#: their user, locale, temporary folder, proxy and certificates — nothing that grants.
ALLOWED = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ",
    "TMPDIR", "TEMP", "TMP", "COLORTERM", "NO_COLOR",
    "VIRTUAL_ENV", "CONDA_PREFIX", "PYENV_ROOT", "PYENV_VERSION",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
})
#: Prefixes of variables inherited like :data:`ALLOWED` (the locale's parts).
ALLOWED_PREFIXES = ("LC_",)
#: The workbench's own secrets: never in a child's environment, even when named.
SECRETS = frozenset({
    "OBSERVATORY_TOKENS", "OBSERVATORY_TOKEN", "OBSERVATORY_COOKIE_SECRET",
    "OBSERVATORY_BASIC_AUTH", "OBSERVATORY_USER_ROLES", "PANEL_BASIC_AUTH",
    "PANEL_COOKIE_SECRET", "PANEL_OAUTH_SECRET", "PANEL_OAUTH_KEY",
    "PANEL_OAUTH_ENCRYPTION", "BOKEH_SECRET_KEY",
})


def is_secret(name: str) -> bool:
    """Whether ``name`` is one of the workbench's own secrets."""
    return name.upper() in SECRETS


def inherited() -> set[str]:
    """The names of the workbench's variables every child may see."""
    extra = {n.strip() for n in (config.get("OBSERVATORY_CHILD_ENV") or "").split(",")}
    return {n for n in extra if n} | set(ALLOWED)


def child_env(named: Mapping[str, str] | None = None, *,
              own: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child's environment: the allowed part of this process's, then ``named`` (the
    values its definition gives), then ``own`` (what the workbench itself hands this child:
    a token of its own with the ingest role, the telemetry endpoint) — never one of the
    workbench's secrets otherwise.

    Raises ValueError when ``named`` tries to set one of :data:`SECRETS` (a definition
    that asks for the workbench's tokens is refused, not quietly trimmed)."""
    allowed = inherited()
    env = {k: v for k, v in os.environ.items()
           if (k in allowed or k.startswith(ALLOWED_PREFIXES)) and not is_secret(k)}
    for key, value in (named or {}).items():
        if is_secret(key):
            raise ValueError(f"env.{key}: a secret of the workbench; a child never gets it")
        env[str(key)] = str(value)
    env.update(own or {})
    return env


def checked_argv(argv: Iterable[Any]) -> list[str]:
    """``argv`` as a list of strings with no NUL byte (ValueError otherwise)."""
    out = list(argv)
    if not out or not all(isinstance(a, str) for a in out):
        raise ValueError("a command is a non-empty list of strings")
    if any("\0" in a for a in out):
        raise ValueError("a command's arguments may not contain NUL bytes")
    return out


def spawn(argv: Iterable[str], *, cwd: str | Path | None, env: Mapping[str, str],
          stdin: Any = subprocess.DEVNULL, stdout: Any = None, stderr: Any = None,
          before: Callable[[], None] | None = None) -> subprocess.Popen:
    """Start a long-lived child in a process group of its own (its owner stores
    ``(pid, identity(pid))`` to find it after a restart). ``env`` must come from
    :func:`child_env`; ``before`` runs in the child before the command (limits)."""
    return subprocess.Popen(checked_argv(argv), cwd=str(cwd) if cwd else None, env=dict(env),
                            stdin=stdin, stdout=stdout, stderr=stderr,
                            start_new_session=True, close_fds=True, preexec_fn=before)


def spawn_pty(argv: Iterable[str], *, cwd: str | Path | None, env: Mapping[str, str],
              size: tuple[int, int] = (24, 80),
              before: Callable[[], None] | None = None) -> Any:
    """Start a child on a pseudo-terminal (a console's shell, an agent run on a PTY): the
    same checked ``argv`` and allow-listed ``env`` as :func:`spawn`. ptyprocess makes the
    child a session leader — a process group of its own — whose controlling terminal is
    the PTY; ``size`` is (rows, cols). Returns the ``ptyprocess.PtyProcess``."""
    from ptyprocess import PtyProcess

    return PtyProcess.spawn(checked_argv(argv), cwd=str(cwd) if cwd else None, env=dict(env),
                            dimensions=size, preexec_fn=before)


def run(argv: Iterable[str], *, cwd: str | Path | None = None, timeout: float = 60,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a short command to its end and capture its output (git): the same rules, in a
    process group of its own so that a time-out kills all it started."""
    proc = spawn(argv, cwd=cwd, env=env if env is not None else child_env(),
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))


def identity(pid: int) -> float | None:
    """The start time of process ``pid`` (with the pid, what tells it from a reused pid)."""
    import psutil  # (in the functions that use it: `git` runs through this module too)

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def alive(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` is still the process that was started at ``started`` (and not a
    zombie). ``started`` None: any live process with that pid."""
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        same = started is None or abs(proc.create_time() - started) < 0.01
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_group(pid: int | None, started: float | None, grace_s: float = 5.0) -> str:
    """End the process group led by ``pid`` if it is still the one started at ``started``:
    SIGTERM, then SIGKILL after ``grace_s``. Returns what happened: ``"gone"`` (nothing to
    stop), ``"stopped"`` or ``"killed"``."""
    if not alive(pid, started):
        return "gone"
    _signal(pid, signal.SIGTERM)
    _signal(pid, signal.SIGCONT)  # a stopped group must wake to see SIGTERM
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not alive(pid, started):
            return "stopped"
        time.sleep(0.05)
    _signal(pid, signal.SIGKILL)
    return "killed"


def session_members(sid: int) -> list[int]:
    """The pids of every live process of session ``sid`` (a terminal's child and all it
    started, background jobs in process groups of their own included)."""
    import psutil

    found = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except (OSError, psutil.Error):
            continue
    return found


def hang_up(sid: int, grace_s: float = 2.0) -> str:
    """End a terminal's session as closing a terminal does: SIGHUP (and SIGCONT, so that a
    stopped job sees it) to every process of session ``sid``, then SIGKILL to whatever is
    left after ``grace_s``. A shell's background jobs run in process groups of their own,
    so the session, not one group, is what must end. Returns ``"gone"``, ``"stopped"`` or
    ``"killed"``."""
    def send(*signals: int) -> bool:
        members = session_members(sid)
        for pid in members:
            for sig in signals:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        return bool(members)

    if not send(signal.SIGHUP, signal.SIGCONT):
        return "gone"
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not session_members(sid):
            return "stopped"
        time.sleep(0.05)
    send(signal.SIGKILL)
    return "killed"
