"""Demo agent telemetry: coding-agent sessions and SDK agent traces over the last week.

Built as real OTLP export requests and stored through the receiver's own decoding, so the
demo exercises the same path as live agents: Claude Code, Codex CLI and Gemini CLI events
and metrics (their own attribute names, numbers as strings), and GenAI-semconv traces from
an SDK agent with ``invoke_agent`` / ``chat`` / ``execute_tool`` spans.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from .config import utcnow
from .ingest import otlp

if TYPE_CHECKING:
    from .store import Store

TOOLS = ["Bash", "Read", "Edit", "Write", "Grep", "Glob", "WebFetch"]
CODING_AGENTS = {
    # service.name: (event prefix, session key, token attribute names, models)
    "claude-code": ("claude_code", "session.id",
                    ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens"),
                    ["claude-sonnet-4-5", "claude-haiku-4-5"]),
    "codex": ("codex", "conversation.id",
              ("input_token_count", "output_token_count", "cached_token_count", None),
              ["gpt-5-codex"]),
    "gemini-cli": ("gemini_cli", "session.id",
                   ("input_token_count", "output_token_count", "cached_content_token_count", None),
                   ["gemini-2.5-pro", "gemini-2.5-flash"]),
}


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        v = AnyValue(bool_value=value)
    elif isinstance(value, int):
        v = AnyValue(int_value=value)
    elif isinstance(value, float):
        v = AnyValue(double_value=value)
    else:
        v = AnyValue(string_value=str(value))
    return KeyValue(key=key, value=v)


def _ns(t: datetime) -> int:
    return int(t.timestamp() * 1e9)


def _id(seed: str, size: int) -> bytes:
    return hashlib.sha256(seed.encode()).digest()[:size]


def _coding_agent(service: str, rng: random.Random, end: datetime):
    prefix, session_key, token_keys, models = CODING_AGENTS[service]
    logs = ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    rl.resource.attributes.extend([_kv("service.name", service), _kv("service.version", "1.0.0")])
    records = rl.scope_logs.add().log_records
    metrics = ExportMetricsServiceRequest()
    rm = metrics.resource_metrics.add()
    rm.resource.attributes.append(_kv("service.name", service))
    scope = rm.scope_metrics.add()

    def event(t: datetime, name: str, session: str, **attrs: object) -> None:
        r = records.add()
        r.time_unix_nano = r.observed_time_unix_nano = _ns(t)
        r.severity_number, r.severity_text = 9, "INFO"
        r.body.string_value = f"{prefix}.{name}"
        r.attributes.extend([_kv("event.name", name), _kv(session_key, session),
                             *[_kv(k, v) for k, v in attrs.items()]])

    def counter(name: str, t: datetime, value: float, **attrs: object) -> None:
        m = scope.metrics.add()
        m.name, m.unit = name, "1"
        m.sum.aggregation_temporality, m.sum.is_monotonic = 1, True  # delta
        p = m.sum.data_points.add()
        p.time_unix_nano = _ns(t)
        p.as_double = value
        p.attributes.extend([_kv(k, v) for k, v in attrs.items()])

    for s in range(rng.randint(8, 14)):
        session = hashlib.sha1(f"{service}-{s}".encode()).hexdigest()[:16]
        t = end - timedelta(days=rng.uniform(0.05, 6.5))
        model = rng.choice(models)
        for p in range(rng.randint(2, 8)):
            prompt = f"{session}-{p}"
            event(t, "user_prompt", session, **{"prompt.id": prompt,
                                                "prompt_length": str(rng.randint(20, 900))})
            for _ in range(rng.randint(1, 4)):
                t += timedelta(seconds=rng.uniform(2, 20))
                if rng.random() < 0.04:
                    event(t, "api_error", session, **{"prompt.id": prompt, "model": model,
                                                      "status_code": "529",
                                                      "error": "Overloaded", "duration_ms": "4100"})
                    continue
                tin, tout = rng.randint(800, 9000), rng.randint(50, 1500)
                cache = rng.randint(0, 40000)
                tokens = dict(zip(token_keys, (tin, tout, cache, rng.randint(0, 3000)),
                                  strict=True))
                tokens.pop(None, None)
                cost = round((tin * 3 + tout * 15 + cache * 0.3) / 1e6, 6)
                event(t, "api_request", session, **{"prompt.id": prompt, "model": model,
                                                    "cost_usd": str(cost),
                                                    "duration_ms": str(rng.randint(900, 14000)),
                                                    **{k: str(v) for k, v in tokens.items()}})
                for _ in range(rng.randint(0, 3)):
                    t += timedelta(seconds=rng.uniform(1, 15))
                    tool = rng.choice(TOOLS)
                    ok = rng.random() > 0.1
                    event(t, "tool_decision", session, **{"prompt.id": prompt, "tool_name": tool,
                                                          "decision": "accept", "source": "config"})
                    event(t, "tool_result", session, **{"prompt.id": prompt, "tool_name": tool,
                                                        "success": str(ok).lower(),
                                                        "duration_ms": str(rng.randint(5, 9000))})
            t += timedelta(minutes=rng.uniform(1, 20))
        if service == "claude-code":
            counter("claude_code.lines_of_code.count", t, rng.randint(10, 400),
                    **{"session.id": session, "type": "added"})
            counter("claude_code.lines_of_code.count", t, rng.randint(0, 120),
                    **{"session.id": session, "type": "removed"})
            if rng.random() < 0.6:
                counter("claude_code.commit.count", t, rng.randint(1, 3), **{"session.id": session})
            if rng.random() < 0.25:
                counter("claude_code.pull_request.count", t, 1, **{"session.id": session})
    return [("logs", logs), ("metrics", metrics)]


def _sdk_agent(rng: random.Random, end: datetime):
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", "triage-bot"),
                                   _kv("telemetry.sdk.language", "python")])
    spans = rs.scope_spans.add()
    spans.scope.name = "openai.agents"
    for n in range(40):
        conversation = f"conv-{n // 4}"
        trace_id = _id(f"trace-{n}", 16)
        t0 = end - timedelta(days=rng.uniform(0.02, 6.8))
        root_id = _id(f"root-{n}", 8)
        cursor = t0
        children = []
        for _ in range(rng.randint(2, 7)):
            chat_start = cursor + timedelta(milliseconds=rng.randint(5, 50))
            chat_end = chat_start + timedelta(milliseconds=rng.randint(400, 6000))
            tin, tout = rng.randint(300, 6000), rng.randint(20, 800)
            children.append(("chat gpt-5-mini", chat_start, chat_end, {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-5-mini", "gen_ai.usage.input_tokens": tin,
                "gen_ai.usage.output_tokens": tout, "gen_ai.conversation.id": conversation,
                "gen_ai.usage.cost": round((tin * 0.25 + tout * 2) / 1e6, 6)}, False))
            cursor = chat_end
            if rng.random() < 0.7:
                tool = rng.choice(["search_issues", "read_file", "post_comment"])
                failed = rng.random() < 0.12
                tool_end = cursor + timedelta(milliseconds=rng.randint(20, 3000))
                children.append((f"execute_tool {tool}", cursor, tool_end, {
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                    "gen_ai.conversation.id": conversation,
                    **({"error.type": "TimeoutError"} if failed else {})}, failed))
                cursor = tool_end
        root = spans.spans.add()
        root.trace_id, root.span_id, root.kind = trace_id, root_id, 1
        root.name = "invoke_agent triage"
        root.start_time_unix_nano, root.end_time_unix_nano = _ns(t0), _ns(cursor)
        root.attributes.extend([_kv("gen_ai.operation.name", "invoke_agent"),
                                _kv("gen_ai.agent.name", "triage-bot"),
                                _kv("gen_ai.conversation.id", conversation)])
        for i, (name, start, stop, attrs, failed) in enumerate(children):
            s = spans.spans.add()
            s.trace_id, s.span_id, s.parent_span_id = trace_id, _id(f"c-{n}-{i}", 8), root_id
            s.name, s.kind = name, 3
            s.start_time_unix_nano, s.end_time_unix_nano = _ns(start), _ns(stop)
            s.attributes.extend([_kv("gen_ai.agent.name", "triage-bot"),
                                 *[_kv(k, v) for k, v in attrs.items()]])
            if failed:
                s.status.code, s.status.message = 2, "tool timed out"
    return [("traces", req)]


def load_demo_telemetry(store: Store, end: datetime | None = None) -> int:
    """Store the demo telemetry; return how many records (spans, logs, points) it holds."""
    end = end or utcnow().replace(microsecond=0)
    rng = random.Random(29)
    requests = [*(r for svc in CODING_AGENTS for r in _coding_agent(svc, rng, end)),
                *_sdk_agent(rng, end)]
    from .intake import LocalIntake

    # As an agent would send it: serialised, then decoded by the receiver's own path.
    intake = LocalIntake(store, ci_env={})
    total = 0
    for signal, msg in requests:
        total += intake.telemetry(signal, msg.SerializeToString(), otlp.PROTOBUF)
    return total
