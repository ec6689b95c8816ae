"""What changed between coverage reports: a project's coverage over commits, and the files
and lines one report lost against another."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from collections.abc import Iterator


def trend(store, project: str, limit: int = 200) -> pd.DataFrame:
    """The project's reports oldest first: when, which commit, percent and totals."""
    reports = store.query("coverage_reports", project=project, limit=limit)
    cols = ["report_id", "created_at", "commit_sha", "branch", "format", "files",
            "statements", "covered", "percent", "contexts"]
    return reports[cols].iloc[::-1].reset_index(drop=True)


def _report(store, report_id: str) -> dict[str, Any]:
    rows = store.query_arrow("coverage_report", report_id=report_id).to_pylist()
    if not rows:
        raise KeyError(f"no coverage report {report_id!r}")
    return rows[0]


def diff_reports(store, base_id: str, head_id: str) -> dict[str, Any]:
    """Compare report ``head_id`` with report ``base_id``.

    Files only in one report are listed as ``added`` / ``removed``. A file in both is
    listed when its percent or statement count changed or it left uncovered a line
    ``base`` covered (a statement in both, covered in ``base`` only).

    Parameters
    ----------
    store
        Anything with ``query(name, **params)`` and ``query_arrow(name, **params)``: a
        store (DuckDB or ClickHouse) or a server's client.
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
        # Arrow, not DataFrames: the range lists stay three flat buffers each, where
        # pandas made a numpy array per file and list (40 of the 60 ms of reading).
        files = _compared(store.query_arrow("coverage_files", report_id=base_id),
                          store.query_arrow("coverage_files", report_id=head_id))
    return {"base": _totals(base), "head": _totals(head),
            "delta": None if base["percent"] is None or head["percent"] is None
            else round(float(head["percent"]) - float(base["percent"]), 2),
            "newly_uncovered_lines": sum(r["newly_uncovered_lines"] for r in files),
            "files": files}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector meanwhile.

    The answer can hold hundreds of thousands of ``[first, last]`` lists; every 700 new
    containers start a collection, and their survivors trigger full ones over the whole
    heap: building 330,000 pairs took 170 ms with the collector on, 45 ms with it off.
    They hold only numbers, so there are no cycles to find. (The switch is the process's:
    other threads' cycles wait too, for the fraction of a second this takes.)

    Turned back on, the collector would look at every one of them in its next young
    collection (30-40 ms for a 10,000-file answer), so they are first moved to the oldest
    generation, as objects that had survived two collections would be: ``gc.freeze()``
    then ``gc.unfreeze()`` does that for every tracked object, without looking at them.
    Cycles among them, or other threads' young garbage, are collected by the next full
    collection instead. (Skipped when something else keeps objects frozen: unfreezing
    would undo that.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


def _compared(old: pa.Table, new: pa.Table) -> list[dict[str, Any]]:
    """The rows of the answer's ``files``, in its order, from the two reports' files
    (``old``: base, ``new``: head).

    Files are matched by path with one hash lookup; what is decided per file (lost
    lines, a changed percent, the order) is decided on whole columns, and a Python row
    is made only for a file that is listed.
    """
    at = pc.index_in(new["path"], value_set=old["path"])  # each head file's base row
    both = _np(pc.is_valid(at), bool)
    hb, added = np.flatnonzero(both), np.flatnonzero(~both)
    ha = _np(at.filter(both), np.int64)
    removed = np.flatnonzero(~_np(pc.is_in(old["path"], value_set=new["path"]), bool))

    counts, runs = _lost(_rows(old["covered_ranges"], ha), _rows(new["statement_ranges"], hb),
                         _rows(new["covered_ranges"], hb))
    old_pct, old_st = _np(old["percent"], float), _np(old["statements"], float)
    new_pct, new_st = _np(new["percent"], float), _np(new["statements"], float)
    pa_, sa, pb, sb = old_pct[ha], old_st[ha], new_pct[hb], new_st[hb]
    same = ((pa_ == pb) | (np.isnan(pa_) & np.isnan(pb))) & (sa == sb)
    keep = np.flatnonzero((counts > 0) | ~same)

    # The listed files end to end: changed ones, then added, then removed (NaN: no value).
    nan = np.full(len(added) + len(removed), np.nan)
    new_paths = _array(new["path"])
    paths = pa.concat_arrays([new_paths.take(hb[keep]), new_paths.take(added),
                              _array(old["path"]).take(removed)])
    lost = np.concatenate([counts[keep], np.zeros(len(nan), dtype=counts.dtype)])
    base_pct = np.concatenate([pa_[keep], nan[:len(added)], old_pct[removed]])
    head_pct = np.concatenate([pb[keep], new_pct[added], nan[len(added):]])
    base_st = np.concatenate([sa[keep], np.zeros(len(added)), old_st[removed]])
    head_st = np.concatenate([sb[keep], new_st[added], np.zeros(len(removed))])
    change = np.array(["changed", "added", "removed"], dtype=object).repeat(
        [len(keep), len(added), len(removed)])
    lines = [runs[i] for i in keep.tolist()] + [[] for _ in range(len(nan))]

    # Most lines lost, then the largest drop (no drop without both percents), then path
    # (Arrow orders strings by their UTF-8 bytes: the order of Python's str comparison).
    delta = np.nan_to_num(head_pct - base_pct, nan=0.0)
    order = pc.sort_indices(pa.table({"lost": lost, "delta": delta, "path": paths}),
                            sort_keys=[("lost", "descending"), ("delta", "ascending"),
                                       ("path", "ascending")]).to_numpy()
    # Python values a column at a time, in the answer's order (not a numpy scalar per
    # cell), a missing percent as None.
    columns = (paths.take(order).to_pylist(), change[order].tolist(),
               _floats(base_pct[order]), _floats(head_pct[order]),
               base_st[order].astype(np.int64).tolist(),
               head_st[order].astype(np.int64).tolist(),
               [lines[i] for i in order.tolist()], lost[order].tolist())
    # (The keys in the order the API's JSON has always had.)
    return [{"path": p, "change": c, "base_percent": bp, "head_percent": hp,
             "base_statements": bs, "head_statements": hs, "newly_uncovered": nu,
             "newly_uncovered_lines": nl}
            for p, c, bp, hp, bs, hs, nu, nl in zip(*columns, strict=True)]


def _floats(values: np.ndarray) -> list[float | None]:
    """Numbers as Python floats, NaN as None."""
    return pa.array(values, mask=np.isnan(values)).to_pylist()


def _array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _rows(col: pa.ChunkedArray, at: np.ndarray) -> pa.Array:
    """``col``'s rows ``at``. Usually both reports list the same files (in the same
    order, by path): then that is the whole column, and copying its lists is skipped."""
    col = _array(col)
    if len(at) == len(col) and (not len(at) or (at[0] == 0 and np.all(np.diff(at) == 1))):
        return col
    return col.take(at)


def _np(col: pa.ChunkedArray | pa.Array, dtype: Any) -> np.ndarray:
    """A column as numpy: a missing number as NaN (``float``) or 0, a missing flag False."""
    col = _array(col)
    if col.null_count:
        col = col.fill_null(np.nan if dtype is float else False if dtype is bool else 0)
    return col.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _lost(covered_a: pa.Array, statements_b: pa.Array,
          covered_b: pa.Array) -> tuple[np.ndarray, list[list[list[int]]]]:
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


def _flat(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A column of ``[first, last, ...]`` lists end to end, and each list's length (a
    missing list has none: Arrow's flatten leaves it out too)."""
    col = _array(col)
    return _np(pc.list_flatten(col), np.int64), _np(pc.list_value_length(col), np.int64)


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


def _totals(report: dict[str, Any]) -> dict[str, Any]:
    percent = report["percent"]
    return {"report_id": report["report_id"], "commit": report["commit_sha"],
            "created_at": str(report["created_at"]),
            "percent": None if percent is None or percent != percent else float(percent),
            "statements": int(report["statements"]), "covered": int(report["covered"])}
