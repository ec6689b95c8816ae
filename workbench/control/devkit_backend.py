"""Another workbench's agent as an agent here (``backend: "devkit"``): one workbench drives
the agents of another through its control API (the Happy-DevKit shape).

Starting it starts the remote agent; its state here follows the remote's ``agent_update``
messages on ``/ws/agents``; pause, resume, interrupt, stop and messages go to the remote;
the remote agent's permission requests are copied into this workbench's inbox, and the
answer given here is sent back (one inbox for every workbench). The token is read from the
environment variable the configuration names, so it is never stored or shown.
"""

from __future__ import annotations

import threading
from typing import Any

import param

from ..config import secret_from
from .devkit import ControlError, DevKit
from .process import ProcessBackend

FINAL = {"stopped", "completed", "error", "lost"}
#: The only variables ``token_env`` may name (a server's other variables are not tokens for
#: a URL an operator chooses).
TOKEN_PREFIX = "OBSERVATORY_DEVKIT_TOKEN"


class DevKitConfig(param.Parameterized):
    url = param.String("", doc="the other workbench, e.g. http://build-box:5006")
    agent_id = param.String("", doc="the agent there")
    token_env = param.String("", doc="environment variable of this server holding the "
                             "other workbench's token (operator or admin); its name must "
                             "start with `OBSERVATORY_DEVKIT_TOKEN`, so that an admin decides "
                             "which of the server's variables can be sent at all")


class DevKitBackend(ProcessBackend):
    name = "devkit"
    Config = DevKitConfig
    protocol = True

    def __init__(self, agent) -> None:
        super().__init__(agent)
        config = agent.spec["config"]
        self.remote = config["agent_id"]
        name = config.get("token_env") or ""
        token = secret_from(name) if name.startswith(TOKEN_PREFIX) else None
        self.kit = DevKit(config["url"], token)
        #: (state, error) the remote agent ended in; the supervisor reports it.
        self.outcome: tuple[str, str | None] | None = None
        self._ended = threading.Event()
        self._mirrored: dict[str, str] = {}  # remote approval id -> local approval id
        self._lock = threading.Lock()

    @staticmethod
    def check(spec: dict[str, Any]) -> None:
        config = spec["config"]
        if not config.get("url") or not config.get("agent_id"):
            raise ValueError("config.url and config.agent_id: required for the devkit backend")
        token_env = config.get("token_env") or ""
        if token_env and not token_env.startswith(TOKEN_PREFIX):
            raise ValueError(f"config.token_env: must name a variable starting with "
                             f"{TOKEN_PREFIX} (not {token_env[:60]!r}): only those hold "
                             "tokens of other workbenches")
        if spec.get("command"):
            raise ValueError("command: not used by the devkit backend")

    def argv(self) -> list[str]:
        return [f"{self.agent.spec['config']['url']}/api/agents/{self.remote}"]

    def launch(self) -> None:
        try:
            remote = self.kit.agent(self.remote, limit=1)["agent"]
            if remote["state"] in FINAL | {"idle"}:
                remote = self.kit.act(self.remote, "start")
        except ControlError as err:
            raise OSError(f"the other workbench refused: {err}") from None
        self._first = remote
        ready = threading.Event()
        threading.Thread(target=self._watch, args=(ready,), daemon=True,
                         name=f"agent-{self.agent.id}-devkit").start()
        ready.wait(10)
        return None

    def started(self) -> None:
        self._follow(self._first)

    def wait(self) -> int:
        self._ended.wait()
        return 0 if self.outcome and self.outcome[0] == "completed" else 1

    # -- following the remote agent ------------------------------------------------------
    def _watch(self, ready: threading.Event) -> None:
        try:
            for msg in self.kit.watch():
                if msg.get("type") == "snapshot":
                    ready.set()
                elif msg.get("type") == "agent_update" and msg["agent"]["id"] == self.remote:
                    self._follow(msg["agent"])
                if self._ended.is_set():
                    return
        except Exception as err:  # noqa: BLE001  (the connection is the agent's lifeline)
            ready.set()
            if not self._ended.is_set():
                self.outcome = ("lost", f"connection to {self.kit.url} lost: {err}")
                self._ended.set()

    def _follow(self, remote: dict[str, Any]) -> None:
        state = remote["state"]
        if state in FINAL:
            self.outcome = (state, remote.get("last_error"))
            self._ended.set()
            return
        if self.agent.stop_reason is not None:
            return  # stopping here: only the end is news
        self.agent.set_session(remote.get("session_id"))
        if remote.get("cost_usd") is not None:
            self.agent.set_cost(remote["cost_usd"])
        self._mirror_approvals(remote)
        if state != "waiting-for-approval":
            self.agent.set_state("running" if state == "starting" else state)

    def _mirror_approvals(self, remote: dict[str, Any]) -> None:
        with self._lock:
            if not remote.get("pending_approvals") and not self._mirrored:
                return
            try:
                there = {a["id"]: a for a in self.kit.approvals()
                         if a["agent_id"] == self.remote}
            except ControlError:
                return
            for remote_id, local_id in list(self._mirrored.items()):
                if remote_id not in there:  # answered on the other workbench
                    self.agent.sup.inbox.cancel(local_id, "answered on the other workbench")
                    del self._mirrored[remote_id]
            for remote_id, approval in there.items():
                if remote_id in self._mirrored:
                    continue

                def answer(decision: str, message: str, rid: str = remote_id) -> None:
                    try:
                        self.kit.decide(rid, decision, message)
                    except ControlError as err:
                        self.agent.emit("control_error", f"answer not delivered: {err}")

                self._mirrored[remote_id] = self.agent.ask(
                    approval["tool"], approval["input"], answer,
                    reason=f"on {self.kit.url}: {approval.get('reason') or ''}".strip())

    # -- steering -------------------------------------------------------------------------
    def _remote(self, action: str, *args: Any) -> None:
        try:
            if action == "message":
                self.kit.message(self.remote, *args)
            else:
                self.kit.act(self.remote, action)
        except ControlError as err:
            raise ValueError(f"the other workbench refused {action}: {err}") from None

    def message(self, text: str) -> None:
        self._remote("message", text)

    def interrupt(self) -> None:
        self._remote("interrupt")

    def pause(self) -> None:
        self._remote("pause")

    def resume(self) -> None:
        self._remote("resume")

    def terminate(self) -> None:
        try:
            self._remote("stop")
        except ValueError:
            pass  # already ending there

    def signal_group(self, sig: int) -> None:
        """No local process: the graceful stop is all there is."""

    def kill(self) -> None:
        pass
