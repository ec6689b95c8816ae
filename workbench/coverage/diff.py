"""What changed between coverage reports: a project's coverage over commits, and the files
and lines one report lost against another."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterator


def trend(store, project: str, limit: int = 200) -> pd.DataFrame:
    """The project's reports oldest first: when, which commit, percent and totals."""
    reports = store.query("coverage_reports", project=project, limit=limit)
    cols = ["report_id", "created_at", "commit_sha", "branch", "format", "files",
            "statements", "covered", "percent", "contexts"]
    return reports[cols].iloc[::-1].reset_index(drop=True)


def _report(store, report_id: str) -> pd.Series:
    row = store.query("coverage_report", report_id=report_id)
    if row.empty:
        raise KeyError(f"no coverage report {report_id!r}")
    return row.iloc[0]


def diff_reports(store, base_id: str, head_id: str) -> dict[str, Any]:
    """Compare report ``head_id`` with report ``base_id``.

    Files only in one report are listed as ``added`` / ``removed``. A file in both is
    listed when its percent or statement count changed or it left uncovered a line
    ``base`` covered (a statement in both, covered in ``base`` only).

    Parameters
    ----------
    store
        Anything with ``query(name, **params)``: a store, or a model's cached reader.
    base_id, head_id
        The two reports' ids.

    Returns
    -------
    dict
        ``base`` / ``head`` totals, ``delta`` (percent points), ``newly_uncovered_lines``
        and ``files``: per file its percent and statements in both, the newly uncovered
        lines as ``[[first, last], ...]`` and how many; most lines lost first, then the
        largest percent drop, then by path.
    """
    with _gc_paused():
        base, head = _report(store, base_id), _report(store, head_id)
        both = _joined(store.query("coverage_files", report_id=base_id),
                       store.query("coverage_files", report_id=head_id))
        common = both[both["side"] == "both"]
        counts, runs = _lost(common["covered_ranges_a"], common["statement_ranges_b"],
                             common["covered_ranges_b"])
        files = [*_changed(common, counts, runs), *_one_sided(both[both["side"] != "both"])]
        files.sort(key=lambda r: (-r["newly_uncovered_lines"], _delta(r), r["path"]))
    return {"base": _totals(base), "head": _totals(head),
            "delta": None if base.percent is None or head.percent is None
            else round(float(head.percent) - float(base.percent), 2),
            "newly_uncovered_lines": sum(r["newly_uncovered_lines"] for r in files),
            "files": files}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector meanwhile.

    The answer can hold hundreds of thousands of ``[first, last]`` lists; every 700 new
    containers start a collection, and their survivors trigger full ones over the whole
    heap: building 330,000 pairs took 170 ms with the collector on, 45 ms with it off.
    They hold only numbers, so there are no cycles to find; one collection still follows
    when it is back on. (The switch is the process's: other threads' cycles wait too, for
    the fraction of a second this takes.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _joined(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The two reports' files side by side by path (``_a``: base, ``_b``: head), ``side``
    telling which report has each (``both``, ``left_only``, ``right_only``)."""
    cols = ["path", "statements", "percent", "statement_ranges", "covered_ranges"]
    return old[cols].merge(new[cols], on="path", how="outer", suffixes=("_a", "_b"),
                           indicator="side")


def _row(path: str, change: str) -> dict[str, Any]:
    # The keys and their order, which the API's JSON and the views read (_changed writes
    # the same keys out, in this order).
    return {"path": path, "change": change, "base_percent": None, "head_percent": None,
            "base_statements": 0, "head_statements": 0, "newly_uncovered": [],
            "newly_uncovered_lines": 0}


def _one_sided(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of files only one report has."""
    out = []
    for r in rows.itertuples(index=False):
        row = _row(r.path, "added" if r.side == "right_only" else "removed")
        if r.side == "right_only":
            row.update(head_percent=_num(r.percent_b), head_statements=int(r.statements_b))
        else:
            row.update(base_percent=_num(r.percent_a), base_statements=int(r.statements_a))
        out.append(row)
    return out


def _changed(common: pd.DataFrame, counts: np.ndarray,
             runs: list[list[list[int]]]) -> list[dict[str, Any]]:
    """The rows of files in both reports that lost lines or changed percent or
    statements (the rest, usually most files, are decided without a Python row each)."""
    pa, pb = (common[c].to_numpy(dtype=float, na_value=np.nan)
              for c in ("percent_a", "percent_b"))
    sa, sb = (common[c].to_numpy(dtype=float) for c in ("statements_a", "statements_b"))
    same = ((pa == pb) | (np.isnan(pa) & np.isnan(pb))) & (sa == sb)
    keep = np.flatnonzero((counts > 0) | ~same)
    # Python values once per column (not a numpy scalar per cell): NaN (x != x) is None.
    paths = common["path"].to_numpy(dtype=object)[keep].tolist()
    pa, pb, sa, sb, counts = (v[keep].tolist() for v in (pa, pb, sa, sb, counts))
    # (The keys in :func:`_row`'s order, written out: this runs once per changed file.)
    return [{"path": paths[n], "change": "changed",
             "base_percent": None if pa[n] != pa[n] else pa[n],
             "head_percent": None if pb[n] != pb[n] else pb[n],
             "base_statements": int(sa[n]), "head_statements": int(sb[n]),
             "newly_uncovered": runs[i], "newly_uncovered_lines": counts[n]}
            for n, i in enumerate(keep.tolist())]


def _lost(covered_a: pd.Series, statements_b: pd.Series,
          covered_b: pd.Series) -> tuple[np.ndarray, list[list[list[int]]]]:
    """Per file, the lines covered in ``a`` that are statements but not covered in ``b``.

    All files' lines share one axis, each file in its own stretch with an unused slot
    after it (so a run of lines never crosses into the next file). A line scores 1 if
    ``a`` covered it, 2 if it is a statement in ``b`` and 4 if ``b`` covered it; the lost
    lines are those scoring exactly 3. That is one running sum over the axis instead of
    three Python sets per file.

    Returns
    -------
    counts : numpy.ndarray
        How many lines each file lost.
    runs : list
        Each file's lost lines as ``[[first, last], ...]``, in line order.
    """
    flats = [_flat(col) for col in (covered_a, statements_b, covered_b)]
    shift, starts, size = _layout(flats, len(covered_a))
    edges = np.zeros(size + 1, dtype=np.int8)
    for (flat, lengths), weight in zip(flats, (1, 2, 4), strict=True):
        _add_ranges(edges, flat + np.repeat(shift, lengths), weight)
    lost = np.cumsum(edges[:size], dtype=np.int8) == 3
    flips = np.flatnonzero(np.diff(lost, prepend=False))  # where a run starts, ends + 1
    first, after = flips[0::2], flips[1::2]
    # The runs of file i are first[bounds[i]:bounds[i + 1]] (both sorted along the axis).
    bounds = np.append(np.searchsorted(first, starts), len(first))
    moved = np.repeat(shift, np.diff(bounds))
    lines = np.append(0, np.cumsum(after - first))
    counts = lines[bounds[1:]] - lines[bounds[:-1]]
    pairs_ = np.column_stack([first - moved, after - 1 - moved]).tolist()
    bounds = bounds.tolist()
    return counts, [pairs_[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


_NONE = np.zeros(0, dtype=np.int64)


def _flat(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column of ``[first, last, ...]`` lists end to end, and each list's length."""
    lists = [_NONE if v is None else v for v in col.tolist()]
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.concatenate(lists) if lists else _NONE
    return flat, lengths


def _layout(flats: list[tuple[np.ndarray, np.ndarray]],
            n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Where each file's stretch of the shared axis starts (``starts``), what to add to
    one of its line numbers to get its place there (``shift``), and the axis' length."""
    lo = np.full(n, np.iinfo(np.int64).max)
    hi = np.full(n, np.iinfo(np.int64).min)
    for flat, lengths in flats:
        has = lengths > 0
        if has.any():
            at = (np.cumsum(lengths) - lengths)[has]
            lo[has] = np.minimum(lo[has], np.minimum.reduceat(flat, at))
            hi[has] = np.maximum(hi[has], np.maximum.reduceat(flat, at))
    empty = lo > hi
    lo[empty], hi[empty] = 0, 0
    span = hi - lo + 2  # the slot past the last line stays unused: runs end in their file
    starts = np.cumsum(span) - span
    return starts - lo, starts, int(span.sum())


def _add_ranges(edges: np.ndarray, at: np.ndarray, weight: int) -> None:
    """Add ``weight`` where each range ``at[0::2]``..``at[1::2]`` (places on the axis)
    starts and take it away after it ends, so the running sum is ``weight`` inside."""
    first, last = at[0::2], at[1::2]
    if np.any(last < first) or np.any(first[1:] <= last[:-1]):
        first, last = _tidy(first, last, len(edges))
    # (Fancy-index += adds once per place: right, as no two tidy ranges share a start or
    # an end.)
    edges[first] += weight
    edges[last + 1] -= weight


def _tidy(first: np.ndarray, last: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Ranges as stored are sorted and apart (``ranges()`` writes them so); any others —
    overlapping, out of order, or empty (``last < first``) — as sorted, apart ranges of
    the same lines."""
    keep = last >= first
    depth = np.bincount(first[keep], minlength=size) - \
        np.bincount(last[keep] + 1, minlength=size)
    flips = np.flatnonzero(np.diff(np.cumsum(depth[:size]) > 0, prepend=False))
    return flips[0::2], flips[1::2] - 1


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _delta(row: dict[str, Any]) -> float:
    a, b = row["base_percent"], row["head_percent"]
    return (b - a) if a is not None and b is not None else 0.0


def _totals(report: pd.Series) -> dict[str, Any]:
    return {"report_id": report["report_id"], "commit": report["commit_sha"],
            "created_at": str(report["created_at"]), "percent": _num(report["percent"]),
            "statements": int(report["statements"]), "covered": int(report["covered"])}
