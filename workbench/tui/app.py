"""``observatory tui``: the workbench for people who live in the shell — a Textual app over
the same HTTP API every client uses (control/devkit.py), keyboard first, the mouse works.

Tabs: the fleet with live states (pushed by ``/ws/agents``), the approvals inbox (allow or
deny on a key), tasks, alerts (acknowledge, resume), recent test runs with their failures,
and the open consoles (attach to one). ``?`` shows every key.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Markdown,
    RichLog,
    Static,
    TabbedContent,
    TabPane,
)

from ..control.devkit import ControlError, DevKit

#: Seconds between two full refreshes (agents' changes are pushed between them).
REFRESH_S = 5.0


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _money(value: Any) -> str:
    return f"${value:.2f}" if isinstance(value, int | float) else "-"


def _failed(run: dict) -> int:
    """A run's failed and errored tests."""
    return sum(int(run.get(k) or 0) for k in ("failed", "errors") if run.get(k) == run.get(k))


class Table(DataTable):
    """A table of one tab: rows keyed by id, the cursor kept on its row across refreshes."""

    COLUMNS: tuple[str, ...] = ()

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*self.COLUMNS)

    def fill(self, rows: list[tuple[str, list[Any]]]) -> None:
        kept = self.current()
        self.clear()
        for key, cells in rows:
            self.add_row(*[c if isinstance(c, Text) else Text(str(c)) for c in cells], key=key)
        if kept is not None:
            keys = [k for k, _ in rows]
            if kept in keys:
                self.move_cursor(row=keys.index(kept))

    def current(self) -> str | None:
        """The id of the row under the cursor."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # (an empty or rebuilt table)
            return None


STATE_STYLE = {"running": "green", "waiting-for-approval": "bold yellow", "paused": "cyan",
               "error": "bold red", "lost": "red", "stopped": "dim", "completed": "dim",
               "idle": "blue", "starting": "green", "pending": "bold yellow",
               "firing": "bold red", "acknowledged": "yellow", "resolved": "dim",
               "queued": "blue", "done": "dim", "failed": "red", "cancelled": "dim"}


def _state(value: Any) -> Text:
    return Text(str(value or "-"), style=STATE_STYLE.get(str(value), ""))


class FleetTable(Table):
    COLUMNS = ("agent", "state", "backend", "project", "cost", "pid", "last error")
    BINDINGS = [
        Binding("p", "app.agent('pause')", "Pause"),
        Binding("r", "app.agent('resume')", "Resume"),
        Binding("s", "app.agent('stop')", "Stop"),
        Binding("S", "app.agent('start')", "Start"),
        Binding("enter,t", "app.transcript", "Transcript"),
        Binding("c", "app.attach_agent", "Console"),
    ]


class ApprovalsTable(Table):
    COLUMNS = ("approval", "agent", "tool", "asks", "since")
    BINDINGS = [Binding("a", "app.decide('allow')", "Allow"),
                Binding("d", "app.decide('deny')", "Deny")]


class TasksTable(Table):
    COLUMNS = ("task", "state", "priority", "agent", "what")
    BINDINGS = [Binding("x", "app.task('cancel')", "Cancel"),
                Binding("R", "app.task('retry')", "Retry")]


class AlertsTable(Table):
    COLUMNS = ("alert", "state", "severity", "title")
    BINDINGS = [Binding("k", "app.alert('ack')", "Acknowledge"),
                Binding("r", "app.alert('resume')", "Resume agent"),
                Binding("v", "app.alert('resolve')", "Resolve")]


class RunsTable(Table):
    COLUMNS = ("run", "project", "branch", "passed", "failed", "when")
    BINDINGS = [Binding("enter,f", "app.failures", "Failures")]


class ConsolesTable(Table):
    COLUMNS = ("console", "kind", "of", "clients", "size")
    BINDINGS = [Binding("enter,o", "app.attach", "Attach"),
                Binding("w", "app.attach('write')", "Attach to type")]


HELP = """\
# Keys

| where | key | what |
|---|---|---|
| everywhere | `1`–`6` | fleet, approvals, tasks, alerts, tests, consoles |
| | `g` | refresh now |
| | `?` | this help · `q` quit |
| fleet | `p` `r` `s` `S` | pause, resume, stop, start the agent |
| | `enter` / `t` | its live transcript · `c` its terminal |
| approvals | `a` / `d` | allow / deny |
| tasks | `x` / `R` | cancel / retry |
| alerts | `k` `r` `v` | acknowledge, resume its agent, resolve |
| tests | `enter` / `f` | the run's failures |
| consoles | `enter` / `w` | attach read-only / to type |
| a transcript, a console | `escape` | back |

The mouse works too: click a tab, a row, a key in the footer.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90; height: auto; max-height: 90%; border: round $accent;
                            background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Markdown(HELP)


class TextScreen(Screen):
    """A transcript, a run's failures: a live log with a title."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.heading = title

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text(self.heading, style="bold"), id="heading")
        yield RichLog(wrap=True, markup=False, highlight=False, id="log")
        yield Footer()

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#log", RichLog)


class TranscriptScreen(TextScreen):
    """An agent's events as they come (refreshed every second)."""

    def __init__(self, kit: DevKit, agent_id: str, name: str) -> None:
        super().__init__(f"{name} — transcript")
        self.kit, self.agent_id = kit, agent_id
        self.seen = 0

    def on_mount(self) -> None:
        self.pull()
        self.set_interval(1.0, self.pull)

    @work(thread=True, exclusive=True, group="transcript")
    def pull(self) -> None:
        try:
            events = self.kit.agent(self.agent_id, limit=500)["events"]
        except ControlError as err:
            self.app.call_from_thread(self.log_widget.write, Text(str(err), style="red"))
            return
        self.app.call_from_thread(self._show, events)

    def _show(self, events: list[dict]) -> None:
        for e in events[self.seen:]:
            style = {"state": "cyan", "tool_use": "yellow", "result": "green",
                     "prompt": "bold"}.get(e["kind"], "")
            self.log_widget.write(Text(f"{str(e['ts'])[11:19]} {e['kind']:<12} "
                                       f"{_short(e.get('text') or '', 200)}", style=style))
        self.seen = len(events)


class ConsoleScreen(TextScreen):
    """Attached to a console: its output as it comes; a line typed below is sent with
    Enter when attached to type."""

    def __init__(self, kit: DevKit, name: str, title: str, mode: str) -> None:
        super().__init__(f"{title} — {'typing' if mode == 'write' else 'read-only'} "
                         "(escape: detach)")
        self.kit, self.console_name, self.attach_mode = kit, name, mode
        self._ws: Any = None
        self._detached = threading.Event()
        self._partial = ""

    def compose(self) -> ComposeResult:
        yield from super().compose()
        if self.attach_mode == "write":
            yield Input(placeholder="a line for the terminal (Enter sends it)", id="line")

    def on_mount(self) -> None:
        self.follow()

    @work(thread=True, exclusive=True, group="console")
    def follow(self) -> None:
        try:
            with self.kit.socket(f"/ws/console/{self.console_name}?mode={self.attach_mode}"
                                 "&cols=120&rows=40", timeout=10) as ws:
                self._ws = ws
                while not self._detached.is_set():
                    try:
                        message = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    if isinstance(message, bytes):
                        ws.send(json.dumps({"type": "ack", "bytes": len(message)}))
                        self.app.call_from_thread(self._output, message)
                    else:
                        msg = json.loads(message)
                        if msg.get("type") in ("exit", "closing", "refused", "error"):
                            self.app.call_from_thread(self.log_widget.write, Text(
                                f"[{msg['type']}: {msg.get('why') or msg.get('code')}]",
                                style="yellow"))
        except Exception as err:  # noqa: BLE001  (any failure to attach is shown, not raised)
            self.app.call_from_thread(self.log_widget.write, Text(
                f"cannot attach: {_short(str(err), 200)}", style="red"))

    def _output(self, data: bytes) -> None:
        text = self._partial + data.decode("utf-8", "replace").replace("\r\n", "\n")
        *lines, self._partial = text.split("\n")
        for line in lines:
            self.log_widget.write(Text.from_ansi(line.split("\r")[-1]))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._ws is not None:
            self._ws.send((event.value + "\r").encode())
        event.input.value = ""

    def on_unmount(self) -> None:
        self._detached.set()


class ObservatoryApp(App):
    TITLE = "Happy Observatory"
    CSS = """
    TabbedContent { height: 1fr; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    DataTable { height: 1fr; }
    #heading { padding: 0 1; }
    """
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("g", "refresh", "Refresh"),
        *[Binding(str(i), f"tab('{tab}')", tab.title(), show=False)
          for i, tab in enumerate(("fleet", "approvals", "tasks", "alerts", "tests",
                                   "consoles"), 1)],
    ]

    def __init__(self, url: str, token: str | None = None) -> None:
        super().__init__()
        self.kit = DevKit(url, token)
        self.url, self.token = url, token
        self.sub_title = url
        self._stop = threading.Event()
        self._runs: dict[str, dict] = {}
        self._consoles: dict[str, dict] = {}
        self._agents: dict[str, dict] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="fleet"):
            for tab, table in (("fleet", FleetTable), ("approvals", ApprovalsTable),
                               ("tasks", TasksTable), ("alerts", AlertsTable),
                               ("tests", RunsTable), ("consoles", ConsolesTable)):
                with TabPane(tab.title(), id=tab):
                    yield table(id=f"{tab}-table")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()
        self.set_interval(REFRESH_S, self.action_refresh)
        self.watch_agents()
        self.query_one("#fleet-table").focus()

    def on_unmount(self) -> None:
        self._stop.set()
        self.kit.close()

    async def action_quit(self) -> None:
        self._stop.set()
        await super().action_quit()

    def say(self, text: str, error: bool = False) -> None:
        self.query_one("#status", Static).update(Text(text, style="red" if error else ""))

    # -- data ---------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self.pull()

    @work(thread=True, exclusive=True, group="pull")
    def pull(self) -> None:
        from ..client import RemoteStore

        try:
            found = {"agents": self.kit.agents(), "approvals": self.kit.approvals(),
                     "tasks": self.kit.tasks(limit=200), "alerts": self.kit.alerts(limit=200),
                     "consoles": self.kit.consoles()}
            with RemoteStore(self.url, self.token) as remote:
                found["runs"] = remote.query("runs", limit=50, offset=0)
        except Exception as err:  # noqa: BLE001  (a server gone: said, and tried again)
            self.call_from_thread(self.say, f"{self.url}: {_short(str(err), 160)}", True)
            return
        self.call_from_thread(self._fill, found)

    def _fill(self, f: dict[str, Any]) -> None:
        self._agents = {a["id"]: a for a in f["agents"]}
        self.query_one("#fleet-table", Table).fill([
            (a["id"], [a["name"], _state(a["state"]), a["backend"], a.get("project") or "-",
                       _money(a.get("cost_usd")), a.get("pid") or "-",
                       _short(a.get("last_error") or "", 40)]) for a in f["agents"]])
        names = {a["id"]: a["name"] for a in f["agents"]}
        self.query_one("#approvals-table", Table).fill([
            (p["id"], [p["id"], names.get(p["agent_id"], p["agent_id"]), p["tool"],
                       _short(p.get("input"), 70), str(p.get("created_at") or "")[11:19]])
            for p in f["approvals"]])
        self.query_one("#tasks-table", Table).fill([
            (t["id"], [t["id"], _state(t["state"]), t.get("priority", "-"),
                       names.get(t.get("agent_id"), t.get("agent_id") or "-"),
                       _short(t.get("prompt") or t.get("command") or "", 60)])
            for t in f["tasks"]])
        self.query_one("#alerts-table", Table).fill([
            (a["id"], [a["id"], _state(a["state"]), a.get("severity") or "-",
                       _short(a.get("title"), 80)]) for a in f["alerts"]])
        runs = f["runs"]
        self._runs = {str(r["run_id"]): r for r in runs.to_dict("records")}
        self.query_one("#tests-table", Table).fill([
            (str(r["run_id"]), [str(r["run_id"])[:24], r.get("project") or "-",
                                r.get("branch") or "-", r.get("passed", "-"),
                                Text(str(_failed(r)), style="bold red" if _failed(r) else ""),
                                str(r.get("started_at") or "")[:19]])
            for r in self._runs.values()])
        self._consoles = {c["name"]: c for c in f["consoles"]}
        self.query_one("#consoles-table", Table).fill([
            (c["name"], [c["title"], c["kind"], c["owner"], c["clients"],
                         f"{c['cols']}×{c['rows']}"]) for c in f["consoles"]])
        waiting = len(f["approvals"])
        self.say(f"{len(f['agents'])} agents · {waiting} approval(s) waiting · "
                 f"{sum(a['state'] == 'firing' for a in f['alerts'])} alert(s) firing")

    @work(thread=True, group="watch")
    def watch_agents(self) -> None:
        """Agents' changes as the server pushes them (``/ws/agents``): the tables follow
        within a moment. Wakes every second to see whether the app is ending."""
        while not self._stop.is_set() and self.is_running:
            try:
                with self.kit.socket("/ws/agents", timeout=10) as ws:
                    while not self._stop.is_set() and self.is_running:
                        try:
                            message = json.loads(ws.recv(timeout=1))
                        except TimeoutError:
                            continue
                        if message.get("type") != "snapshot":
                            self.call_from_thread(self.action_refresh)
            except Exception:  # noqa: BLE001  (a dropped socket: reconnect)
                if self._stop.wait(2):
                    return

    # -- actions ------------------------------------------------------------------------
    def _picked(self, tab: str) -> str | None:
        key = self.query_one(f"#{tab}-table", Table).current()
        if key is None:
            self.say(f"nothing selected on {tab}", True)
        return key

    @work(thread=True, group="act")
    def _act(self, fn, done: str) -> None:
        try:
            fn()
        except ControlError as err:
            self.call_from_thread(self.say, str(err), True)
            return
        self.call_from_thread(self.say, done)
        self.call_from_thread(self.action_refresh)

    def action_agent(self, action: str) -> None:
        agent_id = self._picked("fleet")
        if agent_id:
            name = self._agents.get(agent_id, {}).get("name", agent_id)
            self._act(lambda: self.kit.act(agent_id, action), f"{action}: {name}")

    def action_decide(self, decision: str) -> None:
        approval_id = self._picked("approvals")
        if approval_id:
            self._act(lambda: self.kit.decide(approval_id, decision),
                      f"{decision}ed {approval_id}" if decision == "allow"
                      else f"denied {approval_id}")

    def action_task(self, action: str) -> None:
        task_id = self._picked("tasks")
        if task_id:
            self._act(lambda: self.kit.task_action(task_id, action), f"{action}: {task_id}")

    def action_alert(self, action: str) -> None:
        alert_id = self._picked("alerts")
        if alert_id:
            self._act(lambda: self.kit.alert_action(alert_id, action), f"{action}: {alert_id}")

    def action_transcript(self) -> None:
        agent_id = self._picked("fleet")
        if agent_id:
            name = self._agents.get(agent_id, {}).get("name", agent_id)
            self.push_screen(TranscriptScreen(self.kit, agent_id, name))

    def action_attach_agent(self) -> None:
        agent_id = self._picked("fleet")
        if agent_id:
            name = f"agent-{agent_id}"
            if name not in self._consoles:
                self.say("this agent has no terminal (it runs with config.pty on only)", True)
                return
            self.push_screen(ConsoleScreen(self.kit, name, self._consoles[name]["title"],
                                           "read"))

    def action_attach(self, mode: str = "read") -> None:
        name = self._picked("consoles")
        if name:
            title = self._consoles.get(name, {}).get("title", name)
            self.push_screen(ConsoleScreen(self.kit, name, title, mode))

    def action_failures(self) -> None:
        run_id = self._picked("tests")
        if run_id:
            screen = TextScreen(f"run {run_id} — failures")
            self.push_screen(screen)
            self._failures(screen, run_id)

    @work(thread=True, group="failures")
    def _failures(self, screen: TextScreen, run_id: str) -> None:
        from ..client import RemoteStore

        with RemoteStore(self.url, self.token) as remote:
            rows = remote.query("run_results", run_id=run_id, final_only=True)
        failed = rows[rows["outcome"].isin(["failed", "error"])]

        def show() -> None:
            log = screen.log_widget
            if failed.empty:
                log.write(Text("no failures in this run", style="green"))
            for r in failed.itertuples():
                log.write(Text(f"✗ {r.test_id}", style="bold red"))
                log.write(Text(f"  {_short(r.message or r.error_type or '', 300)}"))
        self.call_from_thread(show)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one(f"#{tab}-table").focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id
        if pane:
            self.query_one(f"#{pane}-table").focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
