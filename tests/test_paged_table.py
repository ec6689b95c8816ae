"""The paged HTML table (the Agents tab's sessions): what it shows, and what a click may do.

Its browser side only forwards clicks as messages; these tests send the messages a browser
would (and ones a forged client could) straight to the server side. The click in a real
browser is in tests/test_browser.py."""

from __future__ import annotations

import re

import pandas as pd

from workbench.views.paged_table import PagedTable


def _table(n: int = 40, **kw) -> tuple[PagedTable, list]:
    opened: list = []
    t = PagedTable("session_id", on_open=opened.append, page_size=15, **kw)
    t.value = pd.DataFrame({
        "session_id": [f"s{i:02d}" for i in range(n)],
        "cost_usd": [float(i % 7) if i % 5 else None for i in range(n)],
        "commits": pd.array([i if i % 3 else None for i in range(n)], dtype="Int64"),
    })
    return t, opened


def _keys(t: PagedTable) -> list[str]:
    return re.findall(r'data-open="([^"]*)"', t.html)


def test_pages_turn_and_forged_pages_are_ignored():
    t, _ = _table()
    assert _keys(t) == [f"s{i:02d}" for i in range(15)]
    assert "rows 1–15 of 40" in t.html
    assert 'data-page="0" title="First page" aria-label="First page" disabled' in t.html
    t._handle_msg({"page": 2})
    assert _keys(t) == [f"s{i:02d}" for i in range(30, 40)] and "rows 31–40 of 40" in t.html
    for forged in ({"page": 3}, {"page": -1}, {"page": "1"}, {"page": float("nan")},
                   {"page": float("inf")}, ["page", 1], None, {"nothing": 1}):
        t._handle_msg(forged)
        assert t.page == 2
    t.value = t.value.head(20)  # fewer rows: the last page there is
    assert t.page == 1 and _keys(t) == [f"s{i:02d}" for i in range(15, 20)]


def test_a_column_title_sorts_then_reverses_with_missing_values_last():
    t, _ = _table()
    t._handle_msg({"page": 1})
    t._handle_msg({"sort": "cost_usd"})
    assert t.page == 0  # a new order starts at its first page
    costs = t.value.set_index("session_id")["cost_usd"]
    ascending = _keys(t)
    assert [costs[k] for k in ascending] == sorted(costs[k] for k in ascending)
    assert ascending[:2] == ["s07", "s14"]  # equal costs keep the order given
    # Sorted by value, shown as money; the short title, its meaning in the tooltip.
    assert ('title="Cost in US dollars (click to sort)" tabindex="0" '
            'data-sort="cost_usd">cost ▲</th>') in t.html
    assert "<td class=n>$1.00</td>" in t.html and "<td class=n>$6.00</td>" not in t.html
    t._handle_msg({"sort": "cost_usd"})
    assert "cost ▼" in t.html and costs[_keys(t)[0]] == 6.0
    t._handle_msg({"page": 2})
    assert all(pd.isna(costs[k]) for k in _keys(t)[-8:])  # missing values last, both ways
    for forged in ({"sort": "no_such_column"}, {"sort": ["cost_usd"]}, {"sort": None}):
        t._handle_msg(forged)  # ignored, never an exception
        assert "cost ▼" in t.html


def test_only_a_row_on_the_page_opens():
    t, opened = _table()
    t._handle_msg({"open": "s20"})  # a real row, but not on this page: a forged click
    t._handle_msg({"open": 3})
    assert opened == [] and t.selected is None
    t._handle_msg({"open": "s03"})
    assert opened == ["s03"]
    assert '<tr tabindex="0" data-open="s03" class="sel">' in t.html
    t.mark(None)  # the session filter cleared elsewhere
    assert 'class="sel"' not in t.html


def test_values_are_text_not_markup_and_numbers_read_as_numbers():
    hostile = '"><img src=x onerror=alert(1)>'
    opened: list = []
    t = PagedTable("session_id", on_open=opened.append)
    t.value = pd.DataFrame({"session_id": [hostile], "models": ["<script>x</script>"],
                            "lines_changed": [None], "commits": [3],
                            "input_tokens": pd.array([1234567], dtype="Int64")})
    assert "<img" not in t.html and "<script>x" not in t.html
    assert 'data-open="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"' in t.html
    t._handle_msg({"open": hostile})  # what the browser sends: the attribute, decoded
    assert opened == [hostile]
    assert "<td class=n>3</td>" in t.html and "<td></td>" in t.html  # missing: empty
    assert "NA" not in t.html
    assert "<td class=n>1,234,567</td>" in t.html  # a nullable count yields numpy ints
    assert 'class="obs-pg"' not in t.html  # one page: no pager


def test_empty_rows_say_why():
    t = PagedTable("session_id", empty_text="No sessions <yet>.")
    t.value = pd.DataFrame(columns=["session_id"])
    assert "No sessions &lt;yet&gt;." in t.html and "data-open" not in t.html


def test_the_agents_tab_opens_and_marks_a_session(demo_store):
    from workbench.models import AgentTelemetry
    from workbench.views.agents import AgentsOverview

    model = AgentTelemetry(store=demo_store, window="all time")
    table = AgentsOverview(model=model)._sessions
    key = table.value["session_id"].iloc[0]
    table._handle_msg({"open": key})
    assert model.session_id == key
    assert f'data-open="{key}" class="sel"' in table.html
    model.session_id = None  # "Show all sessions"
    assert 'class="sel"' not in table.html
