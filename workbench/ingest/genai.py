"""Agents and agent sessions from telemetry attributes.

One table says which attribute names feed which agent field, across the OpenTelemetry
GenAI semantic conventions (current and older names), OpenInference, and the coding
agents' own telemetry (Claude Code, Codex CLI, Gemini CLI). The README's mapping table is
generated from the same data (:func:`mapping_rows`).
"""

from __future__ import annotations

import math
from typing import Any

#: agent field -> attribute keys, first present wins.
FIELDS: dict[str, tuple[str, ...]] = {
    "agent_name": ("gen_ai.agent.name", "agent.name"),
    "session_id": ("gen_ai.conversation.id", "session.id", "conversation.id",
                   "gen_ai.session.id"),
    "prompt_id": ("prompt.id",),
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
    "model": ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "model"),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                     "llm.token_count.prompt", "input_tokens", "input_token_count"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                      "llm.token_count.completion", "output_tokens", "output_token_count"),
    "cache_read_tokens": ("gen_ai.usage.cache_read.input_tokens",
                          "gen_ai.usage.cache_read_input_tokens",
                          "llm.token_count.prompt_details.cache_read", "cache_read_tokens",
                          "cached_token_count", "cached_content_token_count"),
    "cache_creation_tokens": ("gen_ai.usage.cache_creation.input_tokens",
                              "gen_ai.usage.cache_creation_input_tokens",
                              "llm.token_count.prompt_details.cache_write",
                              "cache_creation_tokens"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens",
                         "llm.token_count.completion_details.reasoning",
                         "reasoning_token_count", "thoughts_token_count"),
    "cost_usd": ("gen_ai.usage.cost", "llm.cost.total", "cost_usd"),
    "tool_name": ("gen_ai.tool.name", "tool.name", "tool_name", "function_name"),
}
_INTS = {"input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
         "reasoning_tokens"}

#: OpenInference span kinds as GenAI operation names.
OPENINFERENCE_KINDS = {"LLM": "chat", "TOOL": "execute_tool", "AGENT": "invoke_agent",
                       "CHAIN": "chain", "EMBEDDING": "embeddings", "RETRIEVER": "retrieve",
                       "RERANKER": "rerank", "GUARDRAIL": "guardrail", "EVALUATOR": "evaluate"}

#: Coding agents' log events (suffix after their prefix) as operations.
EVENT_OPERATIONS = {
    "user_prompt": "user_prompt", "api_request": "chat", "api_response": "chat",
    "sse_event": "chat", "api_error": "api_error", "tool_result": "execute_tool",
    "tool_call": "execute_tool", "tool_decision": "tool_decision",
    "conversation_starts": "session_start",
}
AGENT_PREFIXES = ("claude_code.", "codex.", "gemini_cli.", "gen_ai.")


#: Whole numbers the store's BIGINT columns hold.
_INT64 = (-(2**63), 2**63 - 1)


def _number(value: Any, integer: bool) -> int | float | None:
    """Coding agents send numbers as strings as often as not. What is not a finite number
    (``"nan"``, ``"1e999"``) or, for counts, not one a BIGINT holds, is no number: None
    (they were a ValueError and an OverflowError)."""
    if isinstance(value, bool) or value is None:
        return None
    if type(value) is int and integer:  # (the usual count: not through a float, which
        return value if _INT64[0] <= value <= _INT64[1] else None  # rounds past 2^53)
    try:
        n = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(n):
        return None
    if integer:
        n = int(n)
        return n if _INT64[0] <= n <= _INT64[1] else None
    return n


def _truthy(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


#: attribute key -> (field, rank): one lookup per attribute instead of one per candidate.
_INDEX = {key: (field, rank) for field, keys in FIELDS.items() for rank, key in enumerate(keys)}
_EMPTY = dict.fromkeys(FIELDS)


def agent_fields(attrs: dict[str, Any], service: str | None, event: str | None = None,
                 span_status: int | None = None) -> dict[str, Any]:
    """Derive the typed agent columns for one span or log record.

    ``agent_name`` falls back to the resource's ``service.name`` (``claude-code``, ``codex``,
    a LangGraph app) when the record carries any GenAI signal; plain service telemetry gets
    no agent.
    """
    out: dict[str, Any] = dict(_EMPTY)
    best: dict[str, int] = {}
    for key in attrs.keys() & _INDEX.keys():  # (in C: most attributes are no agent field)
        value = attrs[key]
        field, rank = _INDEX[key]
        if rank < best.get(field, 99):
            best[field] = rank
            if field in _INTS or field == "cost_usd":
                value = _number(value, field in _INTS)
            elif value is not None and not isinstance(value, str):
                value = str(value)
            out[field] = value
    op = attrs.get("gen_ai.operation.name")
    if op is not None and not isinstance(op, str):
        op = str(op)  # (like every text field: one column, one type)
    if op is None and "openinference.span.kind" in attrs:
        op = OPENINFERENCE_KINDS.get(str(attrs["openinference.span.kind"]).upper())
    if op is None and event:
        op = EVENT_OPERATIONS.get(event.rsplit(".", 1)[-1])
    out["operation"] = op
    success = _truthy(attrs.get("success", attrs.get("tool.success")))
    status = _number(attrs.get("status_code", attrs.get("http.status_code")), True)
    out["is_error"] = bool(
        span_status == 2 or success is False or "error.type" in attrs
        or (op == "api_error") or (status is not None and status >= 400)
    )
    genai = op is not None or any(out[k] is not None for k in (
        "model", "session_id", "input_tokens", "output_tokens", "tool_name", "cost_usd"))
    if out["agent_name"] is None and genai:
        out["agent_name"] = service
    return out


def event_name(record_event: str | None, attrs: dict[str, Any], body: Any) -> str | None:
    """The event's full name: ``claude_code.api_request`` even when ``event.name`` says
    ``api_request`` and the prefix is only in the body."""
    name = record_event or attrs.get("event.name")
    if isinstance(body, str) and name and (body == name or body.endswith("." + str(name))):
        return body
    return str(name) if name else None


def metric_fields(name: str, attrs: dict[str, Any], service: str | None) -> dict[str, Any]:
    """Agent, session, model and kind (token type, line change type, ...) of a metric point."""
    agent = service if name.startswith(AGENT_PREFIXES) else None
    kind = attrs.get("type", attrs.get("gen_ai.token.type"))
    model = attrs.get("model", attrs.get("gen_ai.request.model",
                                         attrs.get("gen_ai.response.model")))
    session = attrs.get("session.id", attrs.get("gen_ai.conversation.id"))
    return {"agent_name": agent, "session_id": None if session is None else str(session),
            "model": None if model is None else str(model),
            "kind": None if kind is None else str(kind)}


def mapping_rows() -> list[tuple[str, str]]:
    """``(field, attribute names)`` rows for the documentation."""
    return [(field, ", ".join(f"`{k}`" for k in keys)) for field, keys in FIELDS.items()]
