"""Consoles (issue 23) against a real `observatory serve`: a project shell opened by an
admin over the API and attached with a real websocket client — typed into, reattached,
watched read-only, refused to the wrong role and the wrong origin, recorded, its history
searched, and closed with every process it started; an agent run on a PTY, watched by a
viewer and steered by an operator; and the flow control of a terminal whose client does
not keep up (in process, on a real PTY)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from workbench import launcher
from workbench.console import cast, io
from workbench.console.terminal import CHUNK, HIGH_WATER, MAX_PAUSE_S, RESET, Client, Terminal

from .conftest import ROLE_ENV, TOKENS, Served, gone, role_client, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shellproj")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    (folder / "test_one.py").write_text("def test_one():\n    assert True\n")
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory, project):
    s = Served(tmp_path_factory.mktemp("console") / "c.duckdb",
               env={**ROLE_ENV, "OBSERVATORY_NO_DEMO": "1", "OBSERVATORY_CONSOLE_GRACE_S": "2",
                    "OBSERVATORY_CONSOLE_SHELLS": "3"}, ready_path="/login")
    with role_client(s, "operator") as c:
        r = c.post("/api/projects/link", json={"path": str(project), "name": "shellproj"})
        assert r.status_code == 200, r.text
    yield s
    s.stop()


def ws_url(served: Served, name: str, **query: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return f"{served.url.replace('http', 'ws')}/ws/console/{name}" + (f"?{q}" if q else "")


def attach(served: Served, name: str, role: str = "admin", headers=None, **query: str):
    return connect(ws_url(served, name, **query), open_timeout=10, additional_headers={
        "Authorization": f"Bearer {TOKENS[role]}", **(headers or {})})


class Screen:
    """What a websocket client of a console has received: output (acknowledged as a
    browser's terminal does) and control messages."""

    def __init__(self, ws) -> None:
        self.ws, self.out, self.messages = ws, b"", []

    def read_until(self, test, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while not test(self):
            assert time.monotonic() < deadline, (self.out[-500:], self.messages)
            try:
                m = self.ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            if isinstance(m, bytes):
                self.out += m
                self.ws.send(json.dumps({"type": "ack", "bytes": len(m)}))
            else:
                self.messages.append(json.loads(m))
        return self.out

    def has(self, text: str):
        return lambda s: text.encode() in s.out

    @staticmethod
    def prompt(s) -> bool:
        """The shell waits for a command (``$`` or, as root, ``#``)."""
        return s.out.rstrip().endswith((b"$", b"#"))

    def told(self, kind: str):
        return lambda s: any(m.get("type") == kind for m in s.messages)


def open_shell(c, project: str = "shellproj", **size) -> dict:
    r = c.post("/api/console/shells", json={"project": project, **size})
    assert r.status_code == 201, r.text
    return r.json()["console"]


def test_a_project_shell_from_open_to_close(served, project):
    with role_client(served, "admin") as admin:
        shell = open_shell(admin, cols=100, rows=30)
        name = shell["name"]
        assert shell["kind"] == "shell" and shell["target"] == "shellproj"
        # Typed into, seen; a background job started, to be ended with the shell.
        with attach(served, name, mode="write", cols="100", rows="30") as ws:
            screen = Screen(ws)
            screen.read_until(screen.told("attached"))
            ws.send(b"echo hello-$((6*7))-$RANDOM; sleep 300 & echo job-$!\r")
            out = screen.read_until(lambda s: b"job-" in s.out and s.prompt(s))
            hello = next(w for w in out.decode().split() if w.startswith("hello-42-"))
            job = int(out.decode().split("job-")[-1].split()[0])
            assert psutil.pid_exists(job)
            ws.send(b"pwd; stty size\r")
            out = screen.read_until(screen.has("30 100"))
            assert str(project) in out.decode()  # (in the project's folder)
        # Reattached (a reload): the recent screen again, without running anything again.
        with attach(served, name) as ws:
            again = Screen(ws)
            again.read_until(again.has(hello))
            assert again.out.decode().count(hello) == 1
            ws.send(b"echo from-a-reader\r")  # read-only: refused, not typed
            again.read_until(again.told("refused"))
            assert "read-only" in next(m["why"] for m in again.messages
                                       if m["type"] == "refused")
        # Two clients: both see the same output; the terminal takes the smaller size.
        with attach(served, name, mode="write", cols="120", rows="40") as writer, \
                attach(served, name, cols="90", rows="20") as reader:
            w, r = Screen(writer), Screen(reader)
            r.read_until(r.told("attached"))
            w.read_until(lambda s: any(m.get("type") == "size" and m["cols"] == 90
                                       for m in s.messages))
            writer.send(b"echo both-$((1+1)); stty size\r")
            for s in (w, r):
                s.read_until(s.has("20 90"))
                assert b"both-2" in s.out
            assert b"from-a-reader" not in w.out
        # The history: bash's own record of the commands, per user and project.
        hist = wait_for(lambda: admin.get("/api/console/history", params={"q": "hello"}).json()[
            "history"], 10, "the history")
        assert hist[0]["command"].startswith("echo hello-$((6*7))") and \
            hist[0]["project"] == "shellproj"
        # (each command's history is stored when its output comes: wait for this one too)
        done = wait_for(lambda: admin.get("/api/console/complete", params={
            "project": "shellproj", "prefix": "echo b"}).json()["completions"], 10,
            "the completion")
        assert [c["command"] for c in done] == ["echo both-$((1+1)); stty size"]
        likely = admin.get("/api/console/complete", params={"project": "shellproj",
                                                            "prefix": "observatory t"}).json()
        assert {"command": "observatory tui", "source": "observatory"} in likely["completions"]
        assert admin.get("/api/console/history", params={"q": "hello"}, headers={
            "Authorization": f"Bearer {TOKENS['operator']}"}).status_code == 403
        # Closed: every process of its session ends, the background job too.
        assert admin.delete(f"/api/console/{name}").json()["ok"]
        wait_for(lambda: gone(job), 10, "the background job ended")
        wait_for(lambda: gone(shell["pid"]), 10, "the shell ended")
        wait_for(lambda: name not in [c["name"] for c in admin.get("/api/console").json()[
            "consoles"]], 10, "the console gone")
        # The recording: what was typed and printed, for admins to replay.
        listed = admin.get("/api/console").json()["recordings"]
        rec = next(r for r in listed if name in r["name"])
        got = admin.get(f"/api/console/recordings/{rec['name']}")
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("application/x-asciicast")
        lines = got.text.splitlines()
        header = json.loads(lines[0])
        assert header["version"] == 2 and header["width"] == 100
        events = [json.loads(x) for x in lines[1:]]
        assert any(e[1] == "i" and "echo hello-$((6*7))" in e[2] for e in events)
        assert any(e[1] == "o" and hello in e[2] for e in events)
        assert any(e[1] == "r" and e[2] == "90x20" for e in events)
        assert [e[0] for e in events] == sorted(e[0] for e in events)
        audit = admin.get("/api/audit", params={"limit": 500}).json()["audit"]
        actions = {(a["action"], a["target"]) for a in audit}
        assert {("console-shell", "shellproj"), ("console-close", "shellproj"),
                ("console-replay", rec["name"]), ("console-watch", name)} <= actions


def test_who_may_open_and_watch_a_shell(served):
    with role_client(served, "admin") as admin:
        name = open_shell(admin)["name"]
        for role in ("viewer", "operator"):
            with role_client(served, role) as c:
                r = c.post("/api/console/shells", json={"project": "shellproj"})
                assert r.status_code == 403 and "admin" in r.json()["error"]
                assert name not in [x["name"] for x in c.get("/api/console").json()[
                    "consoles"]]
                assert "recordings" not in c.get("/api/console").json()
            with pytest.raises(InvalidStatus) as refused:
                attach(served, name, role=role)
            assert refused.value.response.status_code == 403
            assert b"needs the admin role" in refused.value.response.body
        # another site's page, a missing or a wrong token
        for headers in ({"Origin": "http://evil.example"},
                        {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
            with pytest.raises(InvalidStatus) as refused:
                attach(served, name, headers=headers)
            assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(served, name), additional_headers={"Authorization": "Bearer no"})
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(served, name))
        assert refused.value.response.status_code == 401
        for bad in ({"mode": "root"}, {"cols": "x"}, {"rows": "99999"}, {"shell": "1"}):
            with pytest.raises(InvalidStatus) as refused:
                attach(served, name, **bad)
            assert refused.value.response.status_code == 400
        with pytest.raises(InvalidStatus) as refused:
            attach(served, "sh-nothere")
        assert refused.value.response.status_code == 404
        # A shell only in a known project's folder; a limit per user.
        for body, status in (({"project": "../etc"}, 404), ({"project": "nope"}, 404),
                             ({"project": 5}, 400), ({}, 400),
                             ({"project": "shellproj", "cols": 0}, 400),
                             ({"project": "shellproj", "path": "/"}, 400)):
            r = admin.post("/api/console/shells", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.json()["error"] and "\n" not in r.json()["error"]
        open_shell(admin)
        open_shell(admin)
        r = admin.post("/api/console/shells", json={"project": "shellproj"})
        assert r.status_code == 429 and "limit is 3" in r.json()["error"]
        # An agent's terminal may not be ended as a shell.
        assert admin.delete("/api/console/agent-x").status_code == 404
        for c in admin.get("/api/console").json()["consoles"]:
            admin.delete(f"/api/console/{c['name']}")
        refusals = [a for a in admin.get("/api/audit", params={"limit": 500}).json()["audit"]
                    if a["outcome"].startswith("refused") and "console" in a["action"]]
        assert refusals


def test_a_shell_nobody_watches_ends_after_the_grace(served):
    with role_client(served, "admin") as admin:
        shell = open_shell(admin)
        with attach(served, shell["name"], mode="write") as ws:
            Screen(ws).read_until(Screen.prompt)
        assert not gone(shell["pid"])  # (within the 2 s grace a reload reattaches)
        wait_for(lambda: gone(shell["pid"]), 15, "the abandoned shell ended")


def test_a_shell_never_sees_the_workbench_secrets(served):
    with role_client(served, "admin") as admin:
        name = open_shell(admin)["name"]
        with attach(served, name, mode="write") as ws:
            screen = Screen(ws)
            ws.send(b"env | sort | sed 's/^/ENV:/'; echo env-done\r")
            out = screen.read_until(lambda s: s.out.count(b"env-done") >= 2).decode()
        names = {line.split("ENV:", 1)[1].split("=", 1)[0] for line in out.splitlines()
                 if "ENV:" in line and "=" in line}
        assert "HISTFILE" in names and "OBSERVATORY_PROJECT" in names
        assert not names & set(launcher.SECRETS)
        assert "tok-admin" not in out
        admin.delete(f"/api/console/{name}")


AGENT = textwrap.dedent("""
    import signal, shutil, sys
    signal.signal(signal.SIGWINCH, lambda *a: print("size", *shutil.get_terminal_size(),
                                                     flush=True))
    print("ready", sys.stdin.isatty(), flush=True)
    for line in sys.stdin:
        print("got:", line.strip(), flush=True)
""")


def test_an_agent_on_a_pty_watched_by_viewers_and_steered_by_operators(served):
    with role_client(served, "operator") as op, role_client(served, "viewer") as viewer:
        agent = op.post("/api/agents", json={
            "name": "on-pty", "backend": "process", "command": [sys.executable, "-c", AGENT],
            "config": {"pty": True}}).json()["agent"]
        op.post(f"/api/agents/{agent['id']}/start")
        name = f"agent-{agent['id']}"
        wait_for(lambda: name in [c["name"] for c in viewer.get("/api/console").json()[
            "consoles"]], 20, "the agent's terminal")
        with attach(served, name, role="viewer") as ws:
            watcher = Screen(ws)
            watcher.read_until(watcher.has("ready True"))  # (its stdin is a terminal)
            with pytest.raises(InvalidStatus) as refused:
                attach(served, name, role="viewer", mode="write")
            assert refused.value.response.status_code == 403
            assert b"typing needs the operator role" in refused.value.response.body
            with attach(served, name, role="operator", mode="write", cols="100",
                        rows="30") as typing:
                steer = Screen(typing)
                typing.send(b"left turn\r")
                steer.read_until(steer.has("got: left turn"))
                # the smaller client sets the size; the child is told (SIGWINCH)
                typing.send(json.dumps({"type": "resize", "cols": 70, "rows": 20}))
                steer.read_until(steer.has("size 70 20"))
            watcher.read_until(watcher.has("got: left turn"))
            # A message through the API reaches the same terminal.
            assert op.post(f"/api/agents/{agent['id']}/message",
                           json={"text": "via api"}).status_code == 200
            watcher.read_until(watcher.has("got: via api"))
        # Its output is still the agent's log, line by line.
        events = wait_for(lambda: [e["text"] for e in op.get(
            f"/api/agents/{agent['id']}").json()["events"] if e["kind"] == "log"
            and "got: via api" in e["text"]], 15, "the log events")
        assert events
        with role_client(served, "admin") as admin:
            audit = admin.get("/api/audit", params={"limit": 500}).json()["audit"]
        typed = [a for a in audit if a["action"] == "console-type" and a["target"] == name]
        assert len(typed) == 1 and typed[0]["who"].startswith("token:")  # once per user
        op.post(f"/api/agents/{agent['id']}/stop")
        wait_for(lambda: op.get(f"/api/agents/{agent['id']}").json()["agent"]["state"]
                 in ("stopped", "completed", "error"), 20, "the agent stopped")


# -- flow control, on a real PTY in this process ------------------------------------------
FLOOD = "import sys\nfor i in range(%d): sys.stdout.write('%%07d %%s\\n' %% (i, 'x' * 120))"


def flood(lines: int):
    child = launcher.spawn_pty([sys.executable, "-c", FLOOD % lines], cwd=None,
                               env=launcher.child_env(own={"TERM": "xterm"}))
    return child, Terminal("flood", "agent", "x", "me", child)


def test_a_client_that_does_not_keep_up_neither_floods_nor_blocks_for_long():
    lines = 60_000  # ~7.7 MB
    child, term = flood(lines)
    got: list[bytes] = []
    slow = Client("slow", False, deliver=got.append, control=lambda m: None)
    io.run(term.attach, slow)
    term.start()
    started = time.monotonic()
    wait_for(lambda: term.ended, 60, "the flood's end", every=0.05)
    took = time.monotonic() - started
    sent = sum(map(len, got))
    # It never had more than the high-water mark (plus one read) in flight ...
    assert sent <= HIGH_WATER + CHUNK, sent
    # ... it paused the child once for MAX_PAUSE_S, then left the client behind.
    assert MAX_PAUSE_S * 0.9 <= term.paused_s <= MAX_PAUSE_S * 2, term.paused_s
    assert slow.behind and took < 30
    assert term.bytes_out > 7_000_000
    # Caught up: the client is sent a reset and the recent screen, which ends with the
    # last line.
    got.clear()
    io.run(term.ack, slow, slow.pending)
    assert got and got[0].startswith(RESET)
    assert f"{lines - 1:07d} ".encode() in got[0][-200:]
    child.wait()


def test_a_client_that_keeps_up_gets_every_byte_in_order():
    lines = 20_000
    child, term = flood(lines)
    got: list[bytes] = []
    client = Client("fast", False, deliver=None, control=lambda m: None)

    def drawn(data: bytes) -> None:  # (acknowledged as soon as drawn, as xterm.js does)
        got.append(data)
        io.loop().call_soon(term.ack, client, len(data))

    client.deliver = drawn
    io.run(term.attach, client)
    term.start()
    wait_for(lambda: term.ended, 60, "the flood's end", every=0.05)
    text = b"".join(got).decode()
    numbers = [int(x.split()[0]) for x in text.replace("\r", "").split("\n") if x.strip()]
    assert numbers == list(range(lines))
    assert not client.behind and term.paused_s < MAX_PAUSE_S
    child.wait()


def test_an_asciicast_recording_reads_back(tmp_path):
    rec = cast.Recorder(tmp_path / "a.cast", 80, 24, "t", {"TERM": "xterm", "SECRET": "x"})
    rec.output("é".encode()[:1])  # a character split between two reads
    rec.output("é".encode()[1:] + b"!")
    rec.input(b"ls\r")
    rec.resize(100, 30)
    rec.close()
    header, events = cast.read(tmp_path / "a.cast")
    assert header["env"] == {"TERM": "xterm"} and header["width"] == 80
    assert [(e[1], e[2]) for e in events] == [("o", "é!"), ("i", "ls\r"), ("r", "100x30")]
    (tmp_path / "b.cast").write_text('{"version": 1}\n')
    with pytest.raises(ValueError, match="b.cast:1: not an asciicast v2 header"):
        cast.read(tmp_path / "b.cast")


def test_a_follower_reads_a_flood_a_megabyte_at_a_time(tmp_path):
    """An agent's output file that grew by megabytes between two reads is read in bounded
    pieces (the supervisor once read it whole: a 200 MB flood cost it 400 MB)."""
    import threading

    from workbench.control import follow

    path = tmp_path / "out"
    lines = [f"{i:06d} ".encode() + b"y" * 200 for i in range(15_000)]  # ~3 MB
    path.write_bytes(b"\n".join(lines) + b"\n" + b"z" * (follow.READ_BYTES * 2 + 10))
    got: list[bytes] = []
    ended = threading.Event()
    ended.set()
    handed: list[int] = []  # (the lines handed on at a time)
    entry = follow.Followed(path, 0, lambda ls: (handed.append(len(ls)), got.extend(ls)),
                            ended)
    reads: list[int] = []
    handle = path.open("rb")
    read = handle.read
    handle.read = lambda n=-1: (reads.append(n), read(n))[1]  # (what each read asks for)
    entry.handle = handle
    out = follow._Out()
    assert follow.Followers._read(entry, out) is True
    out.hand_on()
    handle.close()
    assert len(handed) > 1  # (handed on as they reach a megabyte, not held to the end)
    assert got[:15_000] == lines
    assert b"".join(got[15_000:]) == b"z" * (follow.READ_BYTES * 2 + 10)
    assert all(len(x) <= follow.READ_BYTES * 2 for x in got)
    assert reads and all(0 < n <= follow.READ_BYTES for n in reads)
