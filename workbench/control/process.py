"""Any command as an agent (``backend: "process"``): a LangGraph app, a script, a CLI.

It runs in its own session and process group, so that pause/resume (SIGSTOP/SIGCONT), stop
(SIGTERM, then SIGKILL after a grace period) and the limits reach every process it starts.
stdout and stderr become log events line by line; the last lines are kept for the error
of a crash. :class:`ProcessBackend` is also the base of the protocol backends, which only
change what a line of output means and how the agent is steered.
"""

from __future__ import annotations

import collections
import os
import resource
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import param

from .. import launcher
from .follow import FOLLOWERS

if TYPE_CHECKING:
    from .agent import Agent


class ProcessConfig(param.Parameterized):
    shell = param.Boolean(False, doc="run `command` through /bin/sh -c")
    stdin = param.Boolean(True, doc="keep stdin open: a message is written to it as a line")
    pty = param.Boolean(False, doc="run it on a pseudo-terminal: the console attaches to it "
                        "(viewers watch, operators type); its output still becomes log "
                        "events. Not adopted after a server restart: the terminal closes "
                        "with the server")


class ProcessBackend:
    """One run of one agent's process group."""

    name = "process"
    Config: type[param.Parameterized] = ProcessConfig
    #: Whether stdout is a protocol the workbench speaks (read through a pipe).
    protocol = False

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.proc: subprocess.Popen | None = None
        #: The group leader's pid (also set for an agent adopted after a restart).
        self.pid: int | None = None
        #: Set when the process has ended (the output followers then drain and stop).
        self.ended = threading.Event()
        self._offsets: dict[str, int] = {}
        self._followed: list = []
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        self._write_lock = threading.Lock()

    # -- definition ---------------------------------------------------------------------
    @staticmethod
    def check(spec: dict[str, Any]) -> None:
        if not spec.get("command") and not spec.get("labels"):
            raise ValueError("command: required for the process backend (or labels: a "
                             "worker that runs the commands of the tasks it takes)")

    def argv(self) -> list[str]:
        command = self.agent.run_command or self.agent.spec["command"]
        if self.agent.spec["config"].get("shell"):
            return ["/bin/sh", "-c", command if isinstance(command, str) else shlex.join(command)]
        return shlex.split(command) if isinstance(command, str) else list(command)

    def env(self) -> dict[str, str]:
        """The allow-listed environment and what the definition names (launcher.py): never
        the workbench's own tokens or secrets."""
        return launcher.child_env({"PYTHONUNBUFFERED": "1", **self.agent.spec["env"]})

    # -- life ---------------------------------------------------------------------------
    def launch(self) -> int:
        """Start the process group; return its pid (raises OSError if it cannot start)."""
        spec = self.agent.spec
        if not self.protocol and spec["config"].get("pty"):
            return self._launch_on_pty(spec)
        if self.protocol:
            out = err = subprocess.PIPE
        else:
            # Output to files, not pipes: a process writing to a pipe dies of SIGPIPE when
            # the workbench does; with files it lives on and is adopted, still followed.
            for name in ("stdout", "stderr"):
                path = self.log_path(name)
                self._offsets[name] = path.stat().st_size if path.exists() else 0
            out, err = (self.log_path(n).open("ab") for n in ("stdout", "stderr"))
        try:
            self.proc = launcher.spawn(
                self.argv(), cwd=spec.get("cwd") or None, env=self.env(),
                stdin=subprocess.PIPE if self.wants_stdin() else subprocess.DEVNULL,
                stdout=out, stderr=err, before=self.rlimits(spec["limits"]))
        finally:
            if not self.protocol:
                out.close()
                err.close()
        self.pid = self.proc.pid
        if self.protocol:
            for stream, name in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr")):
                threading.Thread(target=self._read, args=(stream, name), daemon=True,
                                 name=f"agent-{self.agent.id}-{name}").start()
        else:
            self.follow(from_end=False)
        return self.pid

    def _launch_on_pty(self, spec: dict[str, Any]) -> int:
        """Start the command on a pseudo-terminal that the console can attach to: its
        output is read by the consoles' loop and also appended to the output file, which
        the followers turn into log events as for any process agent."""
        from ..console.registry import TERMINALS
        from ..console.terminal import PtyChild, Terminal

        for name in ("stdout", "stderr"):
            path = self.log_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            self._offsets[name] = path.stat().st_size
        tee = self.log_path("stdout").open("ab", buffering=0)
        try:
            pty = launcher.spawn_pty(self.argv(), cwd=spec.get("cwd") or None,
                                     env={**self.env(), "TERM": "xterm-256color"},
                                     size=(40, 120), before=self.rlimits(spec["limits"]))
        except BaseException:
            tee.close()
            raise
        self.proc = PtyChild(pty)
        self.pid = pty.pid
        name = spec["name"]
        self.terminal = Terminal(f"agent-{self.agent.id}", "agent", self.agent.id, name, pty,
                                 title=f"agent {name}", tee=tee)
        TERMINALS.register(self.terminal)
        self.follow(from_end=False)
        return self.pid

    def log_path(self, stream: str) -> Path:
        return self.agent.sup.output_dir / f"{self.agent.id}.{stream}"

    def follow(self, from_end: bool) -> None:
        """Turn the output files' new lines into log events until the process ends."""
        for name in ("stdout", "stderr"):
            path = self.log_path(name)
            offset = path.stat().st_size if path.exists() else 0
            if not from_end:
                offset = self._offsets.get(name, offset)
            self._followed.append(FOLLOWERS.follow(
                path, offset, lambda raws, n=name: self._lines(raws, n), self.ended))

    def _lines(self, raws: list[bytes], name: str) -> None:
        """What one read of an output file found: a plain process's lines are stored as one
        batch of log events (a protocol's are read one by one from its pipe)."""
        lines = [raw.decode("utf-8", "replace").rstrip("\r\n") for raw in raws]
        self.tail.extend(lines)
        self.agent.emit_logs(lines, {"stream": name})

    def _line(self, raw: bytes, name: str) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if name == "stdout":
            self.on_stdout(line)
        else:
            self.tail.append(line)
            self.agent.emit("log", line, {"stream": name})

    def rlimits(self, limits: dict[str, Any]):
        """What runs in the child before the command: the nice value (inherited by all it
        starts) and, for a memory limit, an address-space cap at 4x as a backstop for a
        spike between two of the watchdog's samples (the limit itself is the watchdog's
        check of resident memory: an address-space cap at 1x breaks runtimes that reserve
        much more than they use)."""
        nice, memory = limits.get("cpu_nice"), limits.get("memory_mb")
        if not nice and not memory:
            return None

        def apply() -> None:
            if nice:
                os.nice(nice)
            if memory:
                cap = int(memory * 4 * 2**20)
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        return apply

    def wants_stdin(self) -> bool:
        return bool(self.agent.spec["config"].get("stdin", True))

    def started(self) -> None:
        """Called once the process runs: a protocol backend opens its session here."""
        self.agent.set_state("running")

    def _read(self, stream, name: str) -> None:
        for raw in iter(stream.readline, b""):
            self._line(raw, name)
        stream.close()

    def on_stdout(self, line: str) -> None:
        self.tail.append(line)
        self.agent.emit("log", line, {"stream": "stdout"})

    def wait(self) -> int:
        assert self.proc is not None
        code = self.proc.wait()
        self.ended.set()
        FOLLOWERS.wake()
        for followed in self._followed:  # the last lines are read before the exit is told
            followed.done.wait(2)
        return code

    # -- steering -----------------------------------------------------------------------
    def signal_group(self, sig: int) -> None:
        if self.pid is None or (self.proc is not None and self.proc.poll() is not None):
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def write_line(self, text: str) -> None:
        terminal = getattr(self, "terminal", None)
        if terminal is not None:
            if terminal.ended:
                raise ValueError("the agent's terminal is closed")
            from ..console import io

            io.call(terminal.send, text.encode() + b"\r")
            return
        if self.proc is None or self.proc.stdin is None or self.proc.poll() is not None:
            raise ValueError("the agent's stdin is not open")
        with self._write_lock:
            try:
                self.proc.stdin.write(text.encode() + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                raise ValueError("the agent closed its stdin") from None

    def message(self, text: str) -> None:
        self.write_line(text)

    def interrupt(self) -> None:
        self.signal_group(signal.SIGINT)

    def pause(self) -> None:
        self.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal_group(signal.SIGCONT)

    def terminate(self) -> None:
        """The graceful stop: SIGTERM to the group (a stopped group is woken to receive it)."""
        self.signal_group(signal.SIGTERM)
        self.signal_group(signal.SIGCONT)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def apply_config(self, config: dict[str, Any]) -> bool:
        """Apply a new configuration to the running agent; False: it needs a restart."""
        return False

    def cost(self) -> float | None:
        return None


_CHECKOUT_BIN = Path(__file__).resolve().parents[2] / "node_modules" / ".bin"


def find_cli(name: str, configured: str = "") -> str | None:
    """A coding agent's CLI: the configured path, ``name`` on PATH, or the checkout's npm
    copy (``node_modules/.bin``, where ``.ci/run`` installs it)."""
    if configured:
        return configured
    found = shutil.which(name)
    if found:
        return found
    local = _CHECKOUT_BIN / name
    return str(local) if local.exists() else None


class CLIBackend(ProcessBackend):
    """A coding agent's CLI spoken to over stdin and stdout (claude-code, codex): the
    workbench reads its protocol from a pipe, and closing stdin is the graceful stop."""

    protocol = True
    #: The CLI's name on PATH and in node_modules/.bin, and its npm package.
    cli = ""
    package = ""

    @classmethod
    def check(cls, spec: dict[str, Any]) -> None:
        if spec.get("command"):
            raise ValueError(f"command: not used by the {cls.name} backend (use prompt)")

    def binary(self) -> str:
        found = find_cli(self.cli, self.agent.spec["config"].get("binary", ""))
        if not found:
            raise FileNotFoundError(f"the {self.cli} CLI is not installed (npm install "
                                    f"{self.package}, or set config.binary)")
        return found

    def wants_stdin(self) -> bool:
        return True

    def rlimits(self, limits: dict[str, Any]):
        # No address-space cap: these CLIs' runtimes reserve far more than they use.
        return super().rlimits({**limits, "memory_mb": None})

    def pause(self) -> None:
        """A safe point: the supervisor holds the agent's permission requests until the
        resume (no SIGSTOP: a stopped CLI would drop its model connection)."""

    def resume(self) -> None:
        """The supervisor releases the held requests."""

    def terminate(self) -> None:
        """Closing stdin ends the session cleanly; the supervisor follows with SIGTERM and
        SIGKILL if it does not."""
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
