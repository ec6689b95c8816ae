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
