"""What an alert rule would have fired on, over stored agent events and samples: the
preview the rules form and ``observatory alerts rules preview`` show before a rule is
saved. Pure functions over the frames :meth:`AlertEngine.preview
<workbench.control.alerts.AlertEngine.preview>` reads (times are epoch seconds).

A preview lists each moment the rule's condition became true for an agent — a rising edge:
a loop of ten identical calls is one firing, not six — with the title the live rule gives
it. The live rule fires at most once per agent until its alert is resolved, so it may fire
fewer times than a preview lists. The rules over test results (``test_loop``, ``stall``,
``test_health``) depend on test runs and edits as they happen and are not previewed.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import numpy as np
import pandas as pd

from . import units

#: The kinds a preview evaluates, and the event kinds each reads from the store.
PREVIEWED = ("state", "stale", "loop", "threshold")
_METRIC_EVENTS = {"tool_failure_rate": "tool_result", "tokens_per_minute": "result",
                  "cost_per_hour": "result"}
COLUMNS = ["at", "agent", "agent_id", "title"]


def event_kinds(rule: dict[str, Any]) -> list[str]:
    """The agent event kinds ``rule``'s preview reads (none: samples or silences)."""
    if rule["kind"] == "state":
        return ["state"]
    if rule["kind"] == "loop":
        return ["tool_use"]
    if rule["kind"] == "threshold" and rule["metric"] in _METRIC_EVENTS:
        return [_METRIC_EVENTS[rule["metric"]]]
    return []


def reads_samples(rule: dict[str, Any]) -> bool:
    return rule["kind"] == "threshold" and rule["metric"] in ("cpu_percent", "rss_mb")


def bucket_s(rule: dict[str, Any]) -> float:
    """Samples are read summed per bucket of this many seconds (a 60th of the window)."""
    return max(1.0, float(rule["window_s"]) / 60)


def watched(rule: dict[str, Any], agents: pd.DataFrame) -> pd.DataFrame:
    """The agents (``agent_id``, ``name``) whose name matches the rule's glob."""
    keep = [fnmatch.fnmatchcase(str(n), rule["agents"]) for n in agents["name"]]
    return agents[keep] if len(agents) else agents


def preview(rule: dict[str, Any], agents: pd.DataFrame, events: pd.DataFrame,
            samples: pd.DataFrame, quiet: pd.DataFrame, end: float) -> pd.DataFrame:
    """The firings of ``rule``, newest first (``at`` epoch seconds, ``agent``,
    ``agent_id``, ``title``).

    Parameters
    ----------
    rule : a checked rule (control.alerts.check_rule).
    agents : ``agent_id``, ``name`` of the agents the rule watches.
    events : ``agent_id``, ``t``, ``kind``, ``state``, ``text``, ``data`` (JSON text or
        dict), oldest first: the kinds :func:`event_kinds` names.
    samples : ``agent_id``, ``t`` (bucket start), ``n``, ``cpu`` (sum of CPU %),
        ``rss_mb`` (sum of MB) per :func:`bucket_s` bucket.
    quiet : ``agent_id``, ``t``, ``until``: an event while ``running`` and the next one
        (``until`` NaN: none yet), for ``stale``.
    end : now, epoch seconds.
    """
    names = dict(zip(agents["agent_id"], agents["name"], strict=True))
    kind = rule["kind"]
    if kind == "state":
        rows = _state(rule, events, names)
    elif kind == "loop":
        rows = _loop(rule, events, names)
    elif kind == "stale":
        rows = _stale(rule, quiet, names, end)
    elif kind == "threshold":
        rows = _threshold(rule, events, samples, names)
    else:
        rows = []
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values("at", ascending=False, kind="stable").reset_index(drop=True)


def _data(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            got = json.loads(value)
        except ValueError:
            return {}
        return got if isinstance(got, dict) else {}
    return {}


def _state(rule, events: pd.DataFrame, names) -> list[tuple]:
    rows = []
    for e in events.itertuples(index=False):
        data = _data(e.data)
        if e.kind == "state" and e.agent_id in names and data.get("to") in rule["states"]:
            name = names[e.agent_id]
            rows.append((e.t, name, e.agent_id, f"{name} is {data['to']}"
                         + (f": {data['error']}" if data.get("error") else "")))
    return rows


def _loop(rule, events: pd.DataFrame, names) -> list[tuple]:
    span, count = float(rule["window_s"]), int(rule["count"])
    calls: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for e in events.itertuples(index=False):
        if e.kind != "tool_use" or e.agent_id not in names:
            continue
        data = _data(e.data)
        key = str(data.get("tool")) + " " + json.dumps(data.get("input") or {}, sort_keys=True,
                                                       default=str)[:2000]
        calls.setdefault((e.agent_id, key), []).append((float(e.t), str(e.text)[:300]))
    rows = []
    for (agent_id, _key), seen in calls.items():
        times = np.array([t for t, _ in seen])
        inside = np.arange(len(times)) - np.searchsorted(times, times - span, side="right") + 1
        for i in _rising(inside >= count):
            name = names[agent_id]
            rows.append((times[i], name, agent_id, f"{name} made the same tool call "
                         f"{inside[i]} times in {span:g} s: {seen[i][1]}"))
    return rows


def _stale(rule, quiet: pd.DataFrame, names, end: float) -> list[tuple]:
    limit = float(rule["minutes"]) * 60
    rows = []
    for q in quiet.itertuples(index=False):
        if q.agent_id not in names:
            continue
        ongoing = q.until != q.until or q.until is None
        until = end if ongoing else float(q.until)
        if until - q.t > limit:
            name, silent = names[q.agent_id], until - q.t
            rows.append((q.t + limit, name, q.agent_id, f"{name} was silent for "
                         + (f"{silent / 60:.1f} minutes" if silent >= 60 else f"{silent:.0f} s")
                         + " while running" + (" (and still is)" if ongoing else "")))
    return rows


def _threshold(rule, events: pd.DataFrame, samples: pd.DataFrame, names) -> list[tuple]:
    metric, span = rule["metric"], float(rule["window_s"])
    rows = []
    for agent_id, name in names.items():
        if metric in ("cpu_percent", "rss_mb"):
            mine = samples[samples["agent_id"] == agent_id]
            t, value = _sample_means(mine, "cpu" if metric == "cpu_percent" else "rss_mb",
                                     span, int(rule["count"]))
        else:
            mine = events[(events["agent_id"] == agent_id)]
            t, value = _event_metric(metric, mine, span, int(rule["count"]))
        for i in _rising(value > rule["threshold"]):
            rows.append((t[i], name, agent_id,
                         f"{name}: {metric} {units.metric(metric, value[i])} > "
                         f"{units.metric(metric, rule['threshold'])}"))
    return rows


def _sample_means(buckets: pd.DataFrame, col: str, span: float, least: int):
    """Each bucket's mean over the window ending with it (NaN while the window is not
    covered yet or holds fewer than ``least`` samples)."""
    t = buckets["t"].to_numpy(float)
    if not len(t):
        return t, t
    n = np.concatenate([[0], np.cumsum(buckets["n"].to_numpy(float))])
    total = np.concatenate([[0], np.cumsum(buckets[col].to_numpy(float))])
    first = np.searchsorted(t, t - span, side="right")
    count = n[1:] - n[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total[1:] - total[first]) / count
    mean[(count < least) | (t - t[0] < span * 0.9)] = np.nan
    return t, mean


def _event_metric(metric: str, events: pd.DataFrame, span: float, least: int):
    """The metric over the window ending at each event."""
    t = events["t"].to_numpy(float)
    if not len(t):
        return t, t
    data = [_data(d) for d in events["data"]]
    first = np.searchsorted(t, t - span, side="right")
    if metric == "tool_failure_rate":
        err = np.array([bool(d.get("is_error") or d.get("exit_code") not in (None, 0))
                        for d in data], float)
        cum = np.concatenate([[0], np.cumsum(err)])
        count = np.arange(1, len(t) + 1) - first
        rate = (cum[1:] - cum[first]) / count
        rate[count < least] = np.nan
        return t, rate
    if metric == "tokens_per_minute":
        tokens = np.array([sum(v for k, v in (d.get("usage") or {}).items()
                               if isinstance(v, int) and "tokens" in k)
                           if isinstance(d.get("usage"), dict) else 0 for d in data], float)
        cum = np.concatenate([[0], np.cumsum(tokens)])
        return t, (cum[1:] - cum[first]) * 60 / span
    # cost_per_hour: a session's total so far, on each result
    cost = np.array([float(d.get("total_cost_usd") or 0.0) for d in data])
    before = np.where(first > 0, cost[np.maximum(first - 1, 0)], cost[first])
    return t, np.maximum(cost - before, 0.0) * 3600 / span


def _rising(above: np.ndarray) -> list[int]:
    """Where ``above`` turns true (NaN comparisons are false)."""
    above = np.asarray(above, bool)
    return [i for i in range(len(above)) if above[i] and (i == 0 or not above[i - 1])]
