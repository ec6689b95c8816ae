"""The Storage page: the database file against its live data, how long each kind of data
is kept (admins edit the policies), backups and compaction, and table exports to
download."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import panel as pn
import param

from ..models.storage import StorageModel
from .common import html_table, role_page
from .escape import escape
from .notify import attempt

_MIB = 2**20


def _size(n: float | None) -> str:
    if n is None:
        return "-"
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / _MIB:.1f} MiB" if n >= _MIB / 10 else f"{n / 1024:.1f} KiB"


class StoragePage(pn.viewable.Viewer):
    model = param.ClassSelector(class_=StorageModel)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        m = self.model
        admin = m.may("retention")
        self.figures = pn.pane.HTML(sizing_mode="stretch_width")
        self.policies = pn.pane.HTML(sizing_mode="stretch_width")
        self.shared = pn.pane.HTML(sizing_mode="stretch_width")
        self.backups = pn.pane.HTML(sizing_mode="stretch_width")
        self.kind = pn.widgets.Select(name="Kind", options=m.kinds, width=130)
        self.project = pn.widgets.AutocompleteInput(
            name="Project (empty: the default)", options=m.projects(), restrict=False,
            min_characters=1, width=230)
        self.days = pn.widgets.FloatInput(name="Days", value=None, start=0.05, width=100)
        self.keep_runs = pn.widgets.IntInput(name="Newest runs kept", value=None, start=1,
                                             width=130)
        self.archive = pn.widgets.Checkbox(name="archive to Parquet first", width=200,
                                           margin=(28, 10, 0, 10))
        self.save = pn.widgets.Button(name="Save policy", button_type="primary", width=120,
                                      margin=(22, 5, 0, 5))
        self.remove = pn.widgets.Button(name="Remove", width=90, margin=(22, 5, 0, 5))
        self.apply = pn.widgets.Button(name="Apply the policies now", width=190)
        self.backup = pn.widgets.Button(name="Back up now", width=130)
        self.compact = pn.widgets.Button(name="Compact now", width=130)
        for w in (self.save, self.remove, self.apply, self.backup, self.compact,
                  self.kind, self.project, self.days, self.keep_runs, self.archive):
            w.disabled = not admin
        self.save.on_click(lambda e: self._save())
        self.remove.on_click(lambda e: self._remove())
        self.apply.on_click(lambda e: self._run(m.apply_retention, "retention applied"))
        self.backup.on_click(lambda e: self._run(m.backup, "backup verified"))
        self.compact.on_click(lambda e: self._run(m.compact, "file compacted"))
        self.kind.param.watch(lambda e: self._fill(), "value")
        self.project.param.watch(lambda e: self._fill(), "value")
        # Exports: a download link, built from the choices (the browser's login goes along).
        self.table = pn.widgets.Select(name="Table", options=m.tables, value="runs", width=160)
        self.fmt = pn.widgets.Select(name="Format", options=["parquet", "csv", "jsonl", "otlp"],
                                     width=110)
        self.ex_project = pn.widgets.TextInput(name="Project / service", width=180)
        self.ex_days = pn.widgets.IntInput(name="Last days (empty: all)", value=None, start=1,
                                           width=150)
        self.link = pn.pane.HTML(margin=(28, 10, 0, 10))
        for w in (self.table, self.fmt, self.ex_project, self.ex_days):
            w.param.watch(lambda e: self._link(), "value")
        self._policies: list[dict[str, Any]] = []
        self.refresh()
        self._link()

    def refresh(self) -> None:
        state = self.model.state()
        f = state["file"]
        bloat = f["bloat"]
        # (the log holds what is not checkpointed yet, the OTLP inbox requests answered
        # and not yet written as rows: on disk is all three)
        cards = [("on disk (file, log, OTLP inbox)",
                  _size(f["file_bytes"] + f["wal_bytes"] + f["inbox_bytes"])),
                 ("live data", _size(f["live_bytes"])),
                 ("file ÷ live", f"{bloat:.2f}×"), ("write-ahead log", _size(f["wal_bytes"])),
                 ("disk free", f"{f['disk_free_percent']}%" if f["disk_free_percent"]
                  is not None else "-")]
        self.figures.object = (
            '<div style="display:flex;gap:12px;flex-wrap:wrap">' + "".join(
                f'<div style="border:1px solid rgba(128,128,128,.3);border-radius:6px;'
                f'padding:8px 14px;min-width:120px"><div style="font-size:12px;opacity:.7">'
                f'{escape(k)}</div><div style="font-size:20px;font-weight:600">{escape(v)}'
                f'</div></div>' for k, v in cards) + "</div>"
            f'<p style="font-size:12px;opacity:.75;margin:6px 0">{escape(f["path"])}. Space '
            f"deleted rows leave is reused, not given back; compaction gives it back "
            f"(automatically past {state.get('schedule', {}).get('compact_ratio', 2):g}× "
            f"after a retention run).</p>")
        self.shared.object = self._shared(state.get("shared"))
        self._policies = state["policies"]
        rows = pd.DataFrame([{
            "kind": p["kind"], "project": p["project"] or "(default: every other project)",
            "days": p["days"], "newest runs kept": p["keep_runs"],
            "archive": "yes" if p["archive"] else "no", "set by": p["updated_by"]}
            for p in self._policies])
        self.policies.object = html_table(
            rows if not rows.empty else None,
            "No policies: everything is kept. Add one below.")
        last = state.get("last") or {}
        done = last.get("retention")
        note = ""
        if done and "deleted" in done:
            note = (f"<p style='font-size:12px;opacity:.75'>Last retention run: "
                    f"{sum(done['deleted'].values()):,} rows deleted in {done['chunks']} chunks "
                    f"({done['seconds']:.1f} s).</p>")
        files = state["backups"]["files"]
        self.backups.object = (
            f"<p>{len(files)} backup{'' if len(files) == 1 else 's'} in "
            f"<code>{escape(state['backups']['folder'])}</code>"
            + (f"; newest <code>{escape(files[0]['name'])}</code> ({_size(files[0]['bytes'])})"
               if files else "") + ".</p>" + note)

    @staticmethod
    def _shared(shared: dict[str, Any] | None) -> str:
        """ClickHouse's tables, when the store is there (else nothing)."""
        if not shared:
            return ""
        rows = pd.DataFrame([{
            "table": t["table"], "rows": f"{t['rows']:,}", "on disk": _size(t["bytes"]),
            "uncompressed": _size(t["uncompressed"]),
            "compression": f"{t['uncompressed'] / t['bytes']:.1f}×" if t["bytes"] else "-",
            "parts": t["parts"], "TTL": t["ttl"] or ""} for t in shared["tables"]])
        return (f"<p>Shared by every node: <code>{escape(shared['url'])}</code>, "
                f"{_size(shared['bytes'])} on disk ({_size(shared['uncompressed'])} "
                "uncompressed). ClickHouse drops old rows itself as it merges, by the TTL "
                "the policies below set; back it up with ClickHouse's own <code>BACKUP</code>"
                ". The buttons above act on this node's file.</p>"
                + html_table(rows, "No tables yet."))

    def _fill(self) -> None:
        """Show the saved policy of the chosen kind and project in the form."""
        for p in self._policies:
            if p["kind"] == self.kind.value and p["project"] == (self.project.value or ""):
                self.days.value, self.keep_runs.value = p["days"], p["keep_runs"]
                self.archive.value = p["archive"]
                return
        self.days.value = self.keep_runs.value = None
        self.archive.value = False

    def _save(self) -> None:
        value = {"kind": self.kind.value, "project": self.project.value or "",
                 "days": self.days.value, "keep_runs": self.keep_runs.value,
                 "archive": self.archive.value}
        if attempt(self.model.set_policy, value, ok="policy saved") is not None:
            self.refresh()

    def _remove(self) -> None:
        if attempt(self.model.delete_policy, self.kind.value, self.project.value or "",
                   ok="policy removed") is not None:
            self.refresh()

    def _run(self, job, ok: str) -> None:
        for b in (self.apply, self.backup, self.compact):
            b.loading = True
        try:
            if attempt(job, ok=ok) is not None:
                self.refresh()
        finally:
            for b in (self.apply, self.backup, self.compact):
                b.loading = False

    def _link(self) -> None:
        since = ""
        days = self.ex_days.value
        if days and 0 < days <= 36500:  # (more than a century: all of it)
            since = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")
        fmt = self.fmt.value
        if fmt == "otlp" and self.table.value != "spans":
            self.link.object = "<em>OTLP: the spans table only</em>"
            return
        url = self.model.export_link(self.table.value, fmt, self.ex_project.value or "", since)
        self.link.object = (f'<a href="{escape(url)}" download>⬇ Download '
                            f"{escape(self.table.value)} ({escape(fmt)})</a>")

    def __panel__(self) -> pn.viewable.Viewable:
        admin = self.model.may("retention")
        hint = ("" if admin else "<p style='opacity:.75'>Changing policies, backing up and "
                "compacting need the admin role.</p>")
        title = "This node's file" if self.shared.object else "The database file"
        return pn.Column(
            pn.pane.HTML(f"<h3 style='margin:4px 0'>{title}</h3>"), self.figures,
            pn.Row(self.backup, self.compact, self.apply), self.backups,
            *((pn.layout.Divider(), pn.pane.HTML("<h3 style='margin:4px 0'>ClickHouse</h3>"),
               self.shared) if self.shared.object else ()),
            pn.layout.Divider(),
            pn.pane.HTML("<h3 style='margin:4px 0'>How long data is kept</h3>" + hint),
            self.policies,
            pn.Row(self.kind, self.project, self.days, self.keep_runs, self.archive,
                   self.save, self.remove),
            pn.layout.Divider(),
            pn.pane.HTML("<h3 style='margin:4px 0'>Export a table</h3><p style='font-size:"
                         "12px;opacity:.75'>Everything at once, or into another tool: "
                         "<code>observatory export</code>.</p>"),
            pn.Row(self.table, self.fmt, self.ex_project, self.ex_days, self.link),
            sizing_mode="stretch_width", max_width=1200)


def storage_page(store, keeper=None) -> pn.template.BaseTemplate:
    """The page; ``keeper``: the server's housekeeping when ``store`` is its file."""
    from .control_page import session_principal

    model = StorageModel(store=store, principal=session_principal(), keeper=keeper)
    return role_page("Storage", "storage", StoragePage(model=model), model.principal.role,
                     "#364fc7")
