"""Lay out one trace as a waterfall: depth from parent links, offsets from the trace start."""

from __future__ import annotations

import pandas as pd


def layout(spans: pd.DataFrame) -> pd.DataFrame:
    """Add ``depth``, ``offset_ms``, ``row`` (display order: each span under its parent).

    ``spans`` has ``span_id, parent_span_id, start_ns, end_ns`` (the ``trace_spans``
    query). Spans whose parent is missing (not yet arrived, or from another service that
    does not export) are shown as roots rather than dropped.
    """
    if spans.empty:
        return spans.assign(
            depth=pd.Series(dtype=int), offset_ms=pd.Series(dtype=float), row=pd.Series(dtype=int)
        )
    ids = set(spans["span_id"])
    children: dict[str | None, list[int]] = {}
    for i, parent in zip(spans.index, spans["parent_span_id"], strict=True):
        key = parent if isinstance(parent, str) and parent in ids else None
        children.setdefault(key, []).append(i)
    start = spans["start_ns"].min()
    order: list[tuple[int, int]] = []
    stack = [
        (i, 0)
        for i in reversed(sorted(children.get(None, []), key=lambda i: spans.at[i, "start_ns"]))
    ]
    seen: set[int] = set()
    while stack:
        i, depth = stack.pop()
        if i in seen:  # a cycle in bad data: show each span once
            continue
        seen.add(i)
        order.append((i, depth))
        kids = sorted(
            children.get(spans.at[i, "span_id"], []), key=lambda k: spans.at[k, "start_ns"]
        )
        stack.extend((k, depth + 1) for k in reversed(kids))
    for i in spans.index:  # spans only reachable through a cycle
        if i not in seen:
            order.append((i, 0))
    out = spans.loc[[i for i, _ in order]].copy()
    out["depth"] = [d for _, d in order]
    out["offset_ms"] = (out["start_ns"] - start) / 1e6
    out["row"] = range(len(out))
    return out.reset_index(drop=True)
