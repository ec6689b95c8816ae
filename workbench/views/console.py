"""The Console page: terminals in tabs — agents' terminals (watch; operators may type) and
shells in projects' folders (admins), the recordings of past shells (admins replay them),
and the caller's own command history.

``?agent=ID`` opens that agent's terminal, ``?console=NAME`` any console (``&mode=read``:
read-only even if it is one's own shell), ``?project=NAME``
picks the project for a new shell, ``?recording=NAME`` plays a recording.
"""

from __future__ import annotations

import time
from typing import Any

import panel as pn
import param

from ..control.consoles import ConsoleError
from ..models.console import ConsoleModel
from .common import empty, role_page
from .escape import escape
from .terminal import XTerm


class ConsolePage(pn.viewable.Viewer):
    model = param.ClassSelector(class_=ConsoleModel)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        m = self.model
        self.dark = pn.config.theme == "dark"
        self.tabs = pn.Tabs(closable=True, sizing_mode="stretch_width", dynamic=False)
        self.status = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        self.consoles = pn.Column(sizing_mode="stretch_width")
        self.refresh_btn = pn.widgets.Button(name="↻ Refresh", width=90)
        self.refresh_btn.on_click(lambda e: self.refresh())
        admin = m.may("console-shell")
        self.project = pn.widgets.Select(name="Project", width=200, disabled=not admin)
        self.open_btn = pn.widgets.Button(name="Open a shell", button_type="primary",
                                          width=120, disabled=not admin)
        self.open_btn.on_click(lambda e: self._open_shell())
        self.recordings = pn.Column(sizing_mode="stretch_width")
        self.history_q = pn.widgets.TextInput(placeholder="search the commands", width=300)
        self.history_q.param.watch(lambda e: self._history(), "value_input")
        self.tabs.param.watch(lambda e: self._history(), "active")
        self.history = pn.Column(sizing_mode="stretch_width")
        #: The project of each open shell (what its suggestions are for).
        self._projects: dict[str, str] = {}
        self.refresh()

    # -- the lists ----------------------------------------------------------------------
    def refresh(self) -> None:
        m = self.model
        self.project.options = m.projects()
        if self.project.value not in self.project.options and self.project.options:
            self.project.value = self.project.options[0]
        rows = []
        consoles = m.consoles()
        self._projects.update({c["name"]: c["target"] for c in consoles
                               if c["kind"] == "shell"})
        for c in consoles:
            watch = pn.widgets.Button(name="Open", width=70, margin=(2, 4))
            watch.on_click(lambda e, c=c: self.open_tab(c["name"], c["title"]))
            what = ("shell of " + escape(c["owner"]) if c["kind"] == "shell"
                    else "agent terminal")
            state = "ended" if c["ended"] else f"{c['clients']} attached"
            rows.append(pn.Row(watch, pn.pane.HTML(width=270, object=(
                f'<b>{escape(c["title"])}</b><br><span style="font-size:12px;opacity:.75">'
                f'{what} · {state} · {c["cols"]}×{c["rows"]}</span>'), margin=(0, 4)),
                sizing_mode="stretch_width"))
        self.consoles.objects = rows or [empty(
            "No open consoles. An agent defined with config.pty on has a terminal while it "
            "runs; admins open shells in a project's folder.")]
        recs = []
        for r in m.recordings()[:20]:
            play = pn.widgets.Button(name="Replay", width=70, margin=(2, 4))
            play.on_click(lambda e, r=r: self.open_recording(r["name"]))
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["timestamp"] or 0))
            recs.append(pn.Row(play, pn.pane.HTML(
                f'{escape(r["title"] or r["name"])}<br><span style="font-size:12px;'
                f'opacity:.75">{when} · {r["bytes"]:,} bytes</span>', margin=(0, 4))))
        self.recordings.objects = recs or [empty("No recordings yet." if m.may(
            "console-replay") else "Recordings of shells are for admins.")]
        self._history()

    def _history(self) -> None:
        """The commands offered for the shell shown (or the project picked): the caller's
        own first, then the project's likely ones; a click types one into the terminal."""
        if not self.model.may("console-shell"):
            self.history.objects = []
            return
        term = self._active()
        project = (self._projects.get(term.console, "") if term is not None
                   else self.project.value or "")
        found = self.model.suggestions(project, self.history_q.value_input or "")[:12]
        buttons = []
        for s in found:
            b = pn.widgets.Button(name=s["command"][:48], description=f"{s['source']}: "
                                  f"{escape(s['command'])}", button_type="light",
                                  width=330, margin=(1, 4), align="start")
            b.on_click(lambda e, c=s["command"]: self._type(c))
            buttons.append(b)
        self.history.objects = buttons or [empty(
            "No commands yet: what you run in a shell appears here.")]

    def _active(self) -> XTerm | None:
        if not len(self.tabs):
            return None
        return getattr(self.tabs[self.tabs.active], "_term", None)

    def _type(self, command: str) -> None:
        term = self._active()
        if term is None or not term.console:
            self._say("Open a shell first: a command is typed into the terminal shown.", True)
            return
        term.inject = command

    # -- tabs ---------------------------------------------------------------------------
    def _say(self, text: str, error: bool = False) -> None:
        color = "#c92a2a" if error else "inherit"
        self.status.object = f'<div style="color:{color};font-size:13px">{escape(text)}</div>'

    def open_tab(self, name: str, title: str, mode: str = "read") -> XTerm:
        for i, tab in enumerate(self.tabs):
            term = getattr(tab, "_term", None)
            if term is not None and term.console == name:
                self.tabs.active = i
                return term
        m = self.model
        shell = name.startswith("sh-")
        may_type = m.may("console-shell" if shell else "console-type")
        term = XTerm(console=name, mode=mode if may_type else "read", dark=self.dark,
                     height=520, sizing_mode="stretch_width")
        writing = term.mode == "write"
        typing = pn.widgets.Toggle(name="Typing" if writing else "Type", value=writing,
                                   width=90, disabled=not may_type,
                                   button_type="success" if writing else "light")

        def switch(event: Any) -> None:
            term.mode = "write" if event.new else "read"
            typing.name = "Typing" if event.new else "Type"
            typing.button_type = "success" if event.new else "light"

        typing.param.watch(switch, "value")
        parts: list[Any] = [typing]
        if shell:
            close = pn.widgets.Button(name="End shell", button_type="danger", width=100,
                                      disabled=not m.may("console-shell"))
            close.on_click(lambda e: self._close(name))
            parts.append(close)
        note = ("typing is for operators" if not shell and not may_type else
                "read-only until you press Type" if term.mode == "read" else "")
        parts.append(pn.pane.HTML(f'<span style="font-size:12px;opacity:.7">{note}</span>',
                                  margin=(12, 8)))
        body = pn.Column(pn.Row(*parts), term, sizing_mode="stretch_width")
        body._term = term
        self.tabs.append((title, body))
        self.tabs.active = len(self.tabs) - 1
        return term

    def open_recording(self, name: str) -> None:
        term = XTerm(recording=name, dark=self.dark, height=520, sizing_mode="stretch_width")
        body = pn.Column(term, sizing_mode="stretch_width")
        self.tabs.append((f"▶ {name[:24]}", body))
        self.tabs.active = len(self.tabs) - 1

    def _open_shell(self) -> None:
        project = self.project.value
        if not project:
            self._say("Pick a project first (scan or link one on the Projects page).", True)
            return
        try:
            name = self.model.open_shell(project)
        except (ConsoleError, PermissionError) as err:
            self._say(str(err), error=True)
            return
        self.open_tab(name, f"{project} shell", mode="write")
        if pn.state.location is not None:  # (a reload reattaches to it)
            pn.state.location.update_query(console=name)
        self._say(f"Opened a shell in {project} ({name}); it is recorded.")
        self.refresh()

    def _close(self, name: str) -> None:
        try:
            self.model.close(name)
        except (ConsoleError, PermissionError) as err:
            self._say(str(err), error=True)
            return
        self._say(f"Ended {name} and everything it started.")
        self.refresh()

    # -- layout -------------------------------------------------------------------------
    def __panel__(self) -> pn.viewable.Viewable:
        side = pn.Column(
            pn.pane.HTML("<b>Open consoles</b>"), self.consoles, self.refresh_btn,
            pn.layout.Divider(),
            pn.pane.HTML("<b>New shell</b> <span style='font-size:12px;opacity:.7'>(admins; "
                         "recorded)</span>"),
            pn.Row(self.project, self.open_btn),
            pn.layout.Divider(), pn.pane.HTML("<b>Recordings</b>"), self.recordings,
            *([pn.layout.Divider(), pn.pane.HTML(
                "<b>Commands</b> <span style='font-size:12px;opacity:.7'>(yours first, then "
                "the project's; a click types one)</span>"), self.history_q,
               self.history] if self.model.may("console-shell") else []), width=380)
        welcome = empty("Open a console on the left: it opens here, in a tab. Several may be "
                        "open; a reload reattaches and shows the recent screen.")
        main = pn.Column(self.status, self.tabs if len(self.tabs) else welcome,
                         sizing_mode="stretch_width")
        self.tabs.param.watch(lambda e: main.__setitem__(1, self.tabs), "objects")
        return pn.Row(side, main, sizing_mode="stretch_width")

    def template_page(self) -> pn.template.BaseTemplate:
        return role_page("Console", "console", self, self.model.role, "#1f2937")


def console_page(store) -> pn.template.BaseTemplate:
    from .control_page import session_principal

    page = ConsolePage(model=ConsoleModel(store=store, principal=session_principal()))
    args = pn.state.session_args or {}

    def arg(key: str) -> str:
        return (args.get(key) or [b""])[0].decode(errors="replace")

    if arg("project") in page.project.options:
        page.project.value = arg("project")
    wanted = arg("console") or (f"agent-{arg('agent')}" if arg("agent") else "")
    if wanted:
        known = {c["name"]: c for c in page.model.consoles()}
        if wanted in known:
            mine = (known[wanted]["kind"] == "shell"
                    and known[wanted]["owner"] == page.model.principal.who)
            # (one's own shell, reloaded, types again; anyone else's opens read-only, and
            # so does any with ?mode=read)
            mode = "write" if mine and arg("mode") != "read" else "read"
            page.open_tab(wanted, known[wanted]["title"], mode=mode)
        else:
            page._say(f"No open console {wanted}: an agent has a terminal only while it runs "
                      "with config.pty on.", error=True)
    if arg("recording") and page.model.may("console-replay"):
        page.open_recording(arg("recording"))
    return page.template_page()
