"""The open consoles of this process: project shells and agents' terminals, by name.

A name outlives the browser: a reload, or another device, attaches to the same terminal
and is shown its recent screen. Who may do what is checked here too (control/access.py),
not only by the route: viewers may watch an agent's terminal, operators may type into it
(audited once per user and terminal), and only admins open, watch or close project
shells — each audited, and recorded (cast.py) for admins to replay.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config, launcher
from ..console import cast, io
from ..console.history import RC, ShellHistory, completions
from ..console.registry import TERMINALS, ConsoleError
from ..console.terminal import Client, Terminal
from . import access

if TYPE_CHECKING:
    from ..control.access import Principal
    from ..store import Store

#: How often the shells' idle time is checked.
SWEEP_S = 30.0


class Consoles:
    """Who may open, watch, type into and close which console; project shells; the
    recordings. The terminals themselves are in the registry (registry.py)."""

    def __init__(self) -> None:
        self._sweeping = False

    # -- finding ------------------------------------------------------------------------
    def get(self, name: str) -> Terminal:
        return TERMINALS.get(name)

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        """The consoles ``principal`` may see: agents' terminals for every reader, shells
        for admins only."""
        admin = config.allows(principal.role, "admin")
        return [t.info() for t in TERMINALS.all() if t.kind == "agent" or admin]

    # -- shells -------------------------------------------------------------------------
    def open_shell(self, store: Store, principal: Principal, project: str,
                   size: tuple[int, int] = (24, 80)) -> Terminal:
        """A new shell in ``project``'s folder for an admin (audited, recorded). The folder
        is the one the projects table holds for that name, resolved: never a path a client
        sent."""
        access.authorize(store, principal, "console-shell", project)
        row = _folder(store, project)
        if row is None:
            raise ConsoleError(404, f"no project {project!r} with a folder: scan or link it "
                               "on the Projects page first")
        folder = Path(row["path"]).resolve()
        if not folder.is_dir():
            raise ConsoleError(404, f"project {project!r}: its folder {row['path']} is gone")
        mine = [t for t in TERMINALS.all()
                if t.kind == "shell" and t.owner == principal.who and not t.ended]
        most = config.get("OBSERVATORY_CONSOLE_SHELLS")
        if len(mine) >= most:
            raise ConsoleError(429, f"{principal.who} has {len(mine)} shells open (the "
                               f"limit is {most}, OBSERVATORY_CONSOLE_SHELLS): close one")
        name = f"sh-{secrets.token_hex(6)}"
        base = store_folder(store)
        rc = base / "rc" / f"{name}.bashrc"
        rc.parent.mkdir(parents=True, exist_ok=True)
        rc.write_text(RC)
        history = ShellHistory(store, base / "history" / f"{name}.hist", principal.who,
                               project, name)
        bash = shutil.which("bash")
        argv = ([bash, "--noprofile", "--rcfile", str(rc), "-i"] if bash
                else [shutil.which("sh") or "/bin/sh", "-i"])
        env = launcher.child_env(own={
            "TERM": "xterm-256color", "COLORTERM": "truecolor", "HISTFILE": str(history.path),
            "OBSERVATORY_PROJECT": project, "SHELL": argv[0]})
        child = launcher.spawn_pty(argv, cwd=folder, env=env, size=size)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        recorder = cast.Recorder(base / "recordings" / f"{stamp}-{name}.cast", size[1],
                                 size[0], f"{project} — {principal.who}", env)
        terminal = Terminal(name, "shell", project, principal.who, child,
                            title=f"{project} shell", recorder=recorder,
                            on_input=history.typed, on_output=history.printed)
        TERMINALS.register(terminal)
        access.record(store, principal, "console-shell", project,
                      {"console": name, "pid": child.pid, "folder": str(folder),
                       "recording": recorder.name})
        self._sweep_later()
        return terminal

    def close(self, store: Store, principal: Principal, name: str) -> None:
        terminal = self.get(name)
        if terminal.kind != "shell":
            raise ConsoleError(409, f"{name} is an agent's terminal: stop the agent instead")
        access.authorize(store, principal, "console-shell", terminal.target)
        access.record(store, principal, "console-close", terminal.target, {"console": name})
        io.call(terminal.close, f"closed by {principal.who}")

    def _sweep_later(self) -> None:
        if not self._sweeping:
            self._sweeping = True
            io.call(lambda: io.later(SWEEP_S, self._sweep))

    def _sweep(self) -> None:
        """End shells nobody typed into for OBSERVATORY_CONSOLE_IDLE_S (on the loop)."""
        idle = config.get("OBSERVATORY_CONSOLE_IDLE_S")
        now = time.time()
        shells = [t for t in TERMINALS.all() if t.kind == "shell"]
        for t in shells:
            if not t.ended and now - t.last_input > idle:
                t.close(f"idle for {idle:.0f} s")
        io.later(SWEEP_S, self._sweep)

    # -- clients ------------------------------------------------------------------------
    @staticmethod
    def role_to(terminal: Terminal, typing: bool) -> str:
        """The role watching ``terminal`` (or, ``typing``, typing into it) needs: a shell
        is an admin's either way; an agent's terminal a viewer's to watch and an
        operator's to type into."""
        if terminal.kind == "shell":
            return "admin"
        return "operator" if typing else "viewer"

    def attach(self, terminal: Terminal, client: Client) -> None:
        io.call(terminal.attach, client)

    def detach(self, terminal: Terminal, client: Client) -> None:
        io.call(terminal.detach, client, config.get("OBSERVATORY_CONSOLE_GRACE_S"))

    def suggestions(self, store: Store, principal: Principal, project: str,
                    prefix: str = "") -> list[dict[str, Any]]:
        """What may complete ``prefix`` in a shell of ``project``: the caller's own
        commands there, the project's likely commands, the workbench's subcommands."""
        access.authorize(store, principal, "console-shell", project)
        return completions(store, principal.who, project, prefix,
                           likely_commands(store, project))

    # -- recordings ---------------------------------------------------------------------
    def recordings(self, store: Store) -> list[dict[str, Any]]:
        folder = store_folder(store) / "recordings"
        out = []
        for path in sorted(folder.glob("*.cast"), reverse=True) if folder.is_dir() else []:
            try:
                with path.open(encoding="utf-8") as f:
                    header = json.loads(f.readline() or "{}")
            except (OSError, ValueError):
                header = {}
            out.append({"name": path.name, "bytes": path.stat().st_size,
                        "title": header.get("title", ""), "timestamp": header.get("timestamp"),
                        "width": header.get("width"), "height": header.get("height")})
        return out

    def recording(self, store: Store, name: str) -> Path:
        if not cast.NAME.fullmatch(name):
            raise ConsoleError(400, f"{name!r}: not a recording's name")
        path = store_folder(store) / "recordings" / name
        if not path.is_file():
            raise ConsoleError(404, f"no recording {name!r}")
        return path


def _folder(store: Store, project: str) -> dict[str, Any] | None:
    """The scanned folder that goes by ``project`` (the store's ``project_folder``, the
    query behind projects.identity.folder_of, which control/ cannot import)."""
    rows = store.query("project_folder", name=project)
    return None if rows.empty else rows.iloc[0].to_dict()


def likely_commands(store: Store, project: str) -> list[str]:
    """A project's likely commands: its test command, and the commands of its agents."""
    out: list[str] = []
    row = _folder(store, project) if project else None
    if row is not None:
        python = row.get("python") if isinstance(row.get("python"), str) else "python3"
        out.append(f"{python} -m pytest -q")
    agents = store.query("agent_specs")
    for spec in agents.get("spec", []) if not agents.empty else []:
        try:
            spec = json.loads(spec) if isinstance(spec, str) else spec
        except ValueError:
            continue
        if not isinstance(spec, dict) or spec.get("project") not in (project, None, ""):
            continue
        command = spec.get("command")
        if isinstance(command, str):
            out.append(command)
        elif isinstance(command, list) and all(isinstance(a, str) for a in command):
            out.append(shlex.join(command))
    return list(dict.fromkeys(out))


def store_folder(store: Store) -> Path:
    """Where consoles keep their files: ``consoles/`` beside the database."""
    db = getattr(store, "path", None)
    base = Path(db).parent if db and str(db) != ":memory:" else config.home()
    return base / "consoles"


#: This process's consoles.
CONSOLES = Consoles()

__all__ = ["CONSOLES", "ConsoleError", "Consoles", "store_folder"]
