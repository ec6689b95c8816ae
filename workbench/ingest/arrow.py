"""Arrow columns from Python lists, without importing pandas.

``pa.array(a_list)`` first asks pyarrow's pandas shim whether the list is a pandas object,
and that imports pandas: 0.3-0.5 s the first time in a process, more than parsing a
100,000-case report takes. The ingest path never needs pandas, so the columns a report
becomes are built here from buffers (numpy comes with pyarrow). The values are those
``pa.array(values, type=type)`` would take: ``None`` is null; strings are ``str``.
"""

from __future__ import annotations

import operator
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

#: Most bytes one ``string`` array holds.
_MAX_STRING_BYTES = 2**31 - 1
#: numpy dtypes of the fixed-width Arrow types the ingest tables hold.
_NUMPY = {
    pa.float64(): np.float64,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
}


def strings(values: list[str | None]) -> pa.Array:
    """A ``string`` array of ``values``: the bytes joined at C speed, the offsets summed
    by numpy (Arrow's string builder, one Python call per value, took 0.2 s a report)."""
    n = len(values)
    if None in values:
        valid = [v is not None for v in values]
        if not any(valid):
            return pa.nulls(n, pa.string())
        validity, nulls = _bitmap(valid), n - sum(valid)
        values = [v if v is not None else "" for v in values]
    else:
        validity, nulls = None, 0
    try:
        text = "".join(values)
        if text.isascii():  # a character is a byte: the lengths are the strings' own
            data, lengths = text.encode(), map(len, values)
        else:
            parts = [v.encode() for v in values]
            data, lengths = b"".join(parts), map(len, parts)
    except (TypeError, UnicodeEncodeError):  # not strings: let pyarrow say what is wrong
        return pa.array(values, type=pa.string())
    if len(data) > _MAX_STRING_BYTES:  # (Arrow's string offsets are 32-bit)
        return pa.array(values, type=pa.string())
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.fromiter(lengths, dtype=np.int32, count=n), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets),
                                                  pa.py_buffer(data)], null_count=nulls)


def _bitmap(flags: list[bool] | np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(np.asarray(flags, dtype=bool), bitorder="little"))


_EPOCH, _MICROSECOND = datetime(1970, 1, 1), timedelta(microseconds=1)


def _micros(t: datetime) -> int:
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return (t - _EPOCH) // _MICROSECOND


def column(values: list[Any], type: pa.DataType) -> pa.Array:
    """``values`` as an Arrow array of ``type`` (string, bool, float64, an integer, or a
    ``timestamp("us")`` of datetimes)."""
    if "pandas" in sys.modules:  # (loaded already: pyarrow's own conversion costs nothing)
        return pa.array(values, type=type)
    n = len(values)
    if pa.types.is_string(type):
        return strings(values)
    if pa.types.is_timestamp(type):
        values = [None if v is None else _micros(v) for v in values]
    if None in values:
        valid = [v is not None for v in values]
        validity = _bitmap(valid)
        nulls = n - sum(valid)
        values = [v if v is not None else 0 for v in values]
    else:
        validity, nulls = None, 0
    if pa.types.is_boolean(type):
        data = _bitmap(values)
    else:
        # (an integer the type cannot hold raises OverflowError, as pa.array raises)
        data = pa.py_buffer(np.array(values, dtype=_NUMPY.get(type, np.int64)))
    return pa.Array.from_buffers(type, n, [validity, data], null_count=nulls)


def table(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` from one list per field."""
    return pa.Table.from_arrays([column(columns[f.name], f.type) for f in schema],
                                schema=schema)


def repeat(value: str, n: int) -> pa.Array:
    """A ``string`` array of ``value`` ``n`` times (a run id beside its results)."""
    data = value.encode()
    offsets = np.arange(0, (n + 1) * len(data), len(data) or 1, dtype=np.int32)[: n + 1]
    if not data:
        offsets = np.zeros(n + 1, np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(data * n)])


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows with different keys as one table of every key. (``Table.from_pylist`` takes
    its columns from the first row alone: a metrics request whose first point was a
    counter stored its histograms with no counts and no buckets.)"""
    first = rows[0].keys()
    if all(row.keys() == first for row in rows):
        # (the usual case, every span of a request alike: transposed in C, not a Python
        # loop per column, which was a fifth of an OTLP request's cost)
        keys = list(first)
        if len(keys) == 1:
            return _inferred_table({keys[0]: [row[keys[0]] for row in rows]})
        columns = zip(*map(operator.itemgetter(*keys), rows), strict=True)
        return _inferred_table(dict(zip(keys, map(list, columns), strict=True)))
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return _inferred_table({k: [row.get(k) for row in rows] for k in keys})


#: The Arrow type ``pa.array`` infers for a column whose values are all of one of these
#: Python types (or None).
_INFERRED = {frozenset({str}): pa.string(), frozenset({bool}): pa.bool_(),
             frozenset({int}): pa.int64(), frozenset({float}): pa.float64(),
             frozenset({datetime}): pa.timestamp("us")}


_MIXED = frozenset({int, float})


def _floats(values: list[Any]) -> list[Any]:
    """A column of whole and fractional numbers (a metric's points: ``as_int`` beside
    ``as_double``) as floats: pyarrow refused a whole number past 2^53 beside a fraction
    (an error for the whole request); the store's column is a DOUBLE all the same."""
    return [None if v is None else float(v) for v in values]


def _kinds(values: list[Any]) -> frozenset:
    return frozenset(map(type, values)) - {type(None)}


def _inferred_table(columns: dict[str, list[Any]]) -> pa.Table:
    """``pa.Table.from_pydict(columns)`` without pandas: the simple columns' types are
    read here, the rest (lists: histogram buckets) left to pyarrow. (The OTLP flattening
    process would otherwise import pandas for nothing: 0.4 s and 45 MB.)"""
    if "pandas" in sys.modules:
        try:
            return pa.Table.from_pydict(columns)
        except pa.ArrowInvalid:  # (below: whole and fractional numbers in one column)
            columns = {k: _floats(v) if _kinds(v) == _MIXED else v
                       for k, v in columns.items()}
            return pa.Table.from_pydict(columns)
    arrays = []
    for values in columns.values():
        kinds = _kinds(values)
        if not kinds:
            arrays.append(pa.nulls(len(values)))
        elif kinds == _MIXED:
            arrays.append(column(_floats(values), pa.float64()))
        elif kinds in _INFERRED:
            arrays.append(column(values, _INFERRED[kinds]))
        else:
            arrays.append(pa.array(values))
    return pa.Table.from_arrays(arrays, names=list(columns))
