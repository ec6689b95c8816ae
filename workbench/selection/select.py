"""Rank a project's tests for a change (``observatory select``, ``POST /api/select``, the MCP
tool ``select_tests``): tests new or changed by the change and tests that failed in the last
run first, then by estimated probability of failing per second (:mod:`.evidence`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.culprits import test_key
from ..store.coverage_writes import expand
from . import changes as ch
from .evidence import PRIOR, UNTIMED_S, Evidence, first, per_second, score


def rank(evidence: list[Evidence]) -> list[dict[str, Any]]:
    """Best first: the tests that always go first (by score among themselves), then the
    others by score; each with ``test``, ``score``, ``probability``, ``duration_s``,
    ``first`` and ``reasons``."""
    out = []
    for e in evidence:
        if not (e.fails or e.changed_lines_run or e.touches_changed_file or e.co_change
                or e.new_or_changed or e.failed_last):
            # Most tests of a big project: nothing to weigh (the common case, kept cheap).
            out.append({"test": e.test, "score": round(per_second(PRIOR, e.duration_s), 6),
                        "probability": PRIOR, "duration_s": e.duration_s, "first": False,
                        "reasons": NO_EVIDENCE})
            continue
        s, p, reasons = score(e)
        up = first(e)
        out.append({"test": e.test, "score": round(s, 6), "probability": round(p, 4),
                    "duration_s": e.duration_s, "first": bool(up),
                    "reasons": up + reasons or NO_EVIDENCE})
    out.sort(key=_order)
    return out


NO_EVIDENCE = ["no evidence: ranked by run time"]


def _order(r: dict[str, Any]) -> tuple:
    return (not r["first"], -r["score"], r["duration_s"] or 0, r["test"])


def cut(ranked: list[dict[str, Any]], budget_s: float | None = None,
        top: int | None = None) -> list[dict[str, Any]]:
    """The head of a ranking: at most ``top`` tests, and tests while their summed expected
    run time stays within ``budget_s`` (a test never timed counts as its assumed time)."""
    if top is not None:
        ranked = ranked[: max(0, top)]
    if budget_s is None:
        return ranked
    out, spent = [], 0.0
    for r in ranked:
        cost = r["duration_s"] if r["duration_s"] else UNTIMED_S
        if spent + cost > budget_s and out:
            break
        out.append(r)
        spent += cost
    return out


def gather(store, project: str, repo: str | Path | None, changed: dict[str, set[int]],
           window: int = 30) -> list[Evidence]:
    """The evidence for every test the project knows (its recent runs, its latest coverage
    report with contexts) and every test the change adds, for ``changed`` lines."""
    stats = store.query("selection_stats", project=project, window=window)
    tests: dict[str, Evidence] = {}
    by_key: dict[str, Evidence] | None = None

    def get(node: str) -> Evidence:
        """The test's evidence; an id spelled another way (a coverage context for a JUnit
        id) is matched by :func:`test_key`, indexed only when first needed."""
        nonlocal by_key
        e = tests.get(node)
        if e is None:
            if by_key is None:
                by_key = {test_key(t): v for t, v in tests.items()}
            key = test_key(node)
            e = by_key.get(key)
            if e is None:
                e = tests[node] = by_key[key] = Evidence(node)
        return e

    # Columns as Python lists: iterating Arrow-backed frames row by row costs more than
    # the query at 10,000 tests.
    cols = {c: stats[c].tolist() for c in ("test_id", "file", "classname", "name", "runs",
                                          "fails")}
    for c in ("since_fail", "duration_s"):  # NaN for none
        cols[c] = stats[c].to_numpy(dtype=float, na_value=float("nan")).tolist()
    for c in ("failed_last", "flaky"):
        cols[c] = stats[c].to_numpy(dtype=bool, na_value=False).tolist()
    for i, test_id in enumerate(cols["test_id"]):
        node = ch.node_id(test_id, cols["file"][i], cols["classname"][i], cols["name"][i])
        since, dur = cols["since_fail"][i], cols["duration_s"][i]
        tests[node] = Evidence(
            node, runs=cols["runs"][i], fails=cols["fails"][i],
            since_fail=None if since != since else int(since),
            failed_last=cols["failed_last"][i], flaky=cols["flaky"][i],
            duration_s=None if dur != dur else dur)
    rows = (store.query("coverage_tests_in", project=project, paths=sorted(changed))
            if changed else None)
    mark_change(lambda test: get(ch.node_id(test)), changed, rows, repo)
    if repo is not None and changed and sum(cols["fails"]) > 0:
        history = store.query("selection_history", project=project, limit=window * 10)
        files = set(changed)
        for test_id, past in ch.failure_files(repo, history).items():
            row = stats[stats["test_id"] == test_id]
            if row.empty:
                continue
            r = row.iloc[0]
            e = get(ch.node_id(test_id, r["file"], r["classname"], r["name"]))
            shared = [f for f in past if f & files]
            if shared:
                e.co_change = len(shared) / len(past)
                e.co_files = tuple(sorted(set().union(*shared) & files))
    found = list(tests.values())
    return _existing(repo, found) if repo is not None else found


def mark_change(lookup: Callable[[str], Evidence | None], changed: dict[str, set[int]],
                rows: pd.DataFrame | None = None, repo: str | Path | None = None) -> None:
    """Mark what a change means for each test: the changed lines it ran (coverage ``rows``:
    test_id, path, ranges) and, with the ``repo``, whether a changed test file defines it.
    ``lookup`` gives a test's evidence by any spelling of its id (None: not ranked)."""
    if rows is not None:
        for test, path, flat in zip(rows["test_id"], rows["path"], rows["ranges"],
                                    strict=True):
            e = lookup(test) if path in changed else None
            if e is not None:
                e.changed_lines_run += len(expand(flat) & changed[path])
                e.touches_changed_file = True
    if repo is None:
        return
    for path in changed:
        if ch.is_test_file(path) and (Path(repo) / path).is_file():
            for node in ch.tests_in(repo, path):
                e = lookup(node)
                if e is not None:
                    e.new_or_changed = True


def _existing(repo: str | Path, found: list[Evidence]) -> list[Evidence]:
    """Only the Python tests still defined in the repository (a test deleted since its last
    run cannot be run); other runners' tests are kept."""
    files = {e.test.partition("::")[0] for e in found if ".py::" in e.test}
    if files and not any((Path(repo) / f).is_file() for f in files):
        return found  # not the repository these tests live in: nothing to check against
    defined: dict[str, set[str]] = {}
    out = []
    for e in found:
        path, sep, _ = e.test.partition("::")
        if not sep or not path.endswith(".py"):
            out.append(e)
            continue
        if path not in defined:
            defined[path] = set(ch.tests_in(repo, path))
        if e.test.split("[", 1)[0] in defined[path]:
            out.append(e)
    return out


def select_tests(store, project: str, repo: str | Path | None, base: str | None = None,
                 head: str | None = None, budget_s: float | None = None,
                 top: int | None = None) -> dict[str, Any]:
    """The ranked tests for ``base..head`` (no ``head``: the working tree) in ``repo``, cut
    to the budget or the top N. Without a repository (or a base) the ranking uses history
    alone."""
    changed: dict[str, set[int]] = {}
    if repo is not None and base:
        changed = ch.changes(repo, base, head)
    ranked = rank(gather(store, project, repo, changed))
    chosen = cut(ranked, budget_s, top)
    return {"project": project, "base": base, "head": head or ("working tree" if base else None),
            "changed_files": sorted(changed), "tests": len(ranked), "selected": len(chosen),
            "expected_s": round(sum(r["duration_s"] or 0 for r in chosen), 3),
            "ranking": chosen}


def is_pytest_id(test: str) -> bool:
    """Whether ``test`` is a pytest node id (``path.py::name``): what ``--format pytest``
    prints and a pytest run is given (a project may also hold other runners' tests)."""
    return ".py::" in test
