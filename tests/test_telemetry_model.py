"""The telemetry model on the demo data: agents, sessions, traces, timeline bounds."""

from __future__ import annotations

import pytest

from workbench.models import AgentTelemetry


def test_agents_and_sessions_add_up(demo_store):
    m = AgentTelemetry(store=demo_store, window="all time")
    agents = m.agents().set_index("agent")
    assert {"claude-code", "codex", "gemini-cli", "triage-bot"} <= set(agents.index)
    sessions = m.sessions()
    for agent, row in agents.iterrows():
        mine = sessions[sessions.agent == agent]
        assert row.sessions == len(mine)
        assert row.cost_usd == pytest.approx(mine.cost_usd.sum())
    claude = sessions[sessions.agent == "claude-code"]
    assert claude.lines_changed.notna().all() and (claude.cache_read_tokens > 0).any()
    assert 0 < agents.loc["codex", "tool_failure_rate"] < 1


def test_agent_filter_and_session_filter(demo_store):
    m = AgentTelemetry(store=demo_store, window="all time", agent="triage-bot")
    assert set(m.sessions().agent) == {"triage-bot"}
    m.session_id = m.sessions().session_id.iloc[0]
    traces = m.traces()
    assert not traces.empty and set(traces.session_id) == {m.session_id}


def test_waterfall_of_a_demo_trace(demo_store):
    m = AgentTelemetry(store=demo_store, window="all time")
    m.trace_id = m.traces().trace_id.iloc[0]
    w = m.waterfall()
    assert w.iloc[0]["name"] == "invoke_agent triage" and w.iloc[0]["depth"] == 0
    assert (w.iloc[1:]["depth"] == 1).all() and (w.offset_ms >= 0).all()


def test_timeline_is_bounded_by_buckets_not_records(demo_store):
    m = AgentTelemetry(store=demo_store, window="7 days")
    sessions, buckets = m.timeline(bins=50)
    records = int(buckets.records.sum())
    assert records > 1000
    # at most bins+1 buckets per agent and kind, however many records there are
    per_series = buckets.groupby(["agent", "kind"]).size()
    assert per_series.max() <= 51
    assert len(sessions) == len(m.sessions())


def test_a_50k_span_trace_lays_out_and_only_visible_rows_are_drawn():
    # (how long the layout takes is benchmarks/telemetry_queries.py's to print: a wall-clock
    # limit here failed CI on a loaded machine, not on a slow layout)
    import pandas as pd

    from workbench.analysis.waterfall import layout
    from workbench.views.traces import WATERFALL_LIMIT, visible_rows

    n = 50_000
    spans = pd.DataFrame({
        "span_id": [f"{i:016x}" for i in range(n)],
        "parent_span_id": [None] + [f"{(i - 1) // 10:016x}" for i in range(1, n)],
        "start_ns": range(0, n * 1000, 1000), "end_ns": range(500, n * 1000 + 500, 1000),
        "name": [f"span {i}" for i in range(n)], "service_name": "big",
        "duration_ms": 0.0005, "status_code": 0,
    })
    full = layout(spans)
    assert len(full) == n and full["depth"].max() > 3
    full["end_ms"] = full["offset_ms"] + full["duration_ms"]
    full["label"] = full["name"]
    full["status"] = "ok"
    opened = visible_rows(full)  # as the trace opens: the first screenful
    assert len(opened.Segments.I.data) <= 62
    paged = visible_rows(full, (30_000, 30_059))
    assert paged.Segments.I.data["row"].between(29_999, 30_060).all()
    zoomed_out = visible_rows(full, (0, n))
    assert len(zoomed_out.Segments.I.data) <= WATERFALL_LIMIT


def test_service_and_severity_filters(demo_store):
    m = AgentTelemetry(store=demo_store, window="all time")
    assert {"claude-code", "codex", "triage-bot"} <= set(m.param.service.objects)
    m.service = "codex"
    assert set(m.logs().service_name) == {"codex"}
    assert set(m.sessions().agent) == {"codex"}
    m.min_severity = "ERROR"
    assert m.logs().empty  # the demo's events are INFO
    m.min_severity = "INFO"
    assert not m.logs().empty


def test_log_summary_picks_the_attributes_people_scan_for(demo_store):
    from workbench.models.telemetry import summarize

    assert summarize('{"tool_name": "Bash", "success": "false", "x": 1, "duration_ms": "12"}') == (
        "tool_name=Bash success=false duration_ms=12 ms"  # a duration has its unit
    )
    # Numbers as people read them: money in dollars, the rest rounded (sent as text too).
    assert summarize('{"cost_usd": "0.012345678", "input_tokens": 4000, "duration_ms": '
                     '1234.5678}') == "input_tokens=4,000 cost_usd=$0.012 duration_ms=1.23 s"
    assert summarize(None) == "" and summarize("{not json") == ""
    m = AgentTelemetry(store=demo_store, window="all time", log_text="api_request")
    assert m.logs().summary.str.contains("model=").all()


def test_the_small_agent_tables_are_plain_escaped_html():
    import pandas as pd

    from workbench.views.common import HTML_TABLE_ROWS, html_table

    hostile = pd.DataFrame({"agent": ['<img src=x onerror="window.__x=1">'],
                            "sessions": [1234], "cost_usd": [0.5]})
    out = html_table(hostile)
    assert "<img" not in out and "&lt;img src=x" in out
    # separators, money in dollars, and the shared titles with their meaning on hover
    assert ">1,234<" in out and ">$0.50<" in out
    assert '<th class=n title="Cost in US dollars">cost</th>' in out
    many = html_table(pd.DataFrame({"n": range(HTML_TABLE_ROWS + 5)}))
    assert many.count("<tr>") == HTML_TABLE_ROWS + 1 and "and 5 more rows" in many
    assert "try a wider window" in html_table(pd.DataFrame())
