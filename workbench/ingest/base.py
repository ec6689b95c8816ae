"""What every test-result parser produces, and the registry that picks a parser."""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from ..analysis.identity import split_params, test_id
from ..analysis.signatures import GENERIC_TYPES, signature
from . import arrow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

OUTCOMES = ("passed", "failed", "error", "skipped")


RESULT_SCHEMA = pa.schema(
    [
        ("test_id", pa.string()),
        ("suite", pa.string()),
        ("classname", pa.string()),
        ("name", pa.string()),
        ("params", pa.string()),
        ("file", pa.string()),
        ("attempt", pa.int16()),
        ("final", pa.bool_()),
        ("outcome", pa.string()),
        ("duration_s", pa.float64()),
        ("message", pa.string()),
        ("error_type", pa.string()),
        ("details", pa.string()),
        ("signature", pa.string()),
    ]
)
SIGNATURE_SCHEMA = pa.schema(
    [
        ("signature", pa.string()),
        ("exception", pa.string()),
        ("normalized", pa.string()),
        ("suspect", pa.string()),
    ]
)


def result_table(data: dict[str, list]) -> pa.Table:
    """Arrow table of result columns (plus ``run_id`` when present)."""
    fields = [*RESULT_SCHEMA, *([pa.field("run_id", pa.string())] if "run_id" in data else [])]
    return arrow.table(data, pa.schema(fields))


def signature_table(sigs: dict[str, tuple]) -> pa.Table:
    """Arrow table of distinct failure signatures."""
    cols = list(zip(*sigs.values(), strict=True)) if sigs else [()] * len(SIGNATURE_SCHEMA)
    return arrow.table({f.name: list(col) for col, f in zip(cols, SIGNATURE_SCHEMA, strict=True)},
                       SIGNATURE_SCHEMA)


class IngestError(ValueError):
    """Input that cannot be stored; the message is one line naming the reason."""

    def __init__(self, message: str):
        # Parser libraries put newlines in their messages; ours stay one line.
        super().__init__(" ".join(str(message).split()))


# -- client values -------------------------------------------------------------------------
# Every field a parser reads from client input goes through one of these before use: a
# value of the wrong type is an IngestError naming the report (or request), the line or
# record, and the field, never a TypeError or an OverflowError further on. ``where`` is the
# report and line (``r.jsonl:3``) or request, ``field`` the path of the field in it.

#: Whole numbers a store column holds (BIGINT); JSON numbers have no limit.
INT64 = (-(2**63), 2**63 - 1)
#: Any finite float.
FINITE = (-sys.float_info.max, sys.float_info.max)
#: Seconds since 1970 that a datetime holds (up to the end of the year 9999).
EPOCH_SECONDS = (0, 253_402_300_799)


def kind(value: Any) -> str:
    """A JSON value's type as messages name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    for types, name in ((str, "a string"), (int | float, "a number"), (list, "a list"),
                        (dict, "an object")):
        if isinstance(value, types):
            return name
    return type(value).__name__


def wrong_type(where: str, field: str, expected: str, value: Any) -> IngestError:
    """The error for ``field`` holding a value of the wrong type."""
    return IngestError(f"{where}: {field} must be {expected}, not {kind(value)}")


def valid_unicode(value: str) -> bool:
    """Whether ``value`` can be stored: JSON's ``\\ud800`` escapes (and bytes that
    ``surrogateescape`` decoded) make strings with lone surrogates, which UTF-8 cannot hold."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(value: Any, where: str, field: str, *, numbers: bool = False) -> str | None:
    """A string field (``None`` when null or absent); with ``numbers``, a JSON number is
    taken as its text too (build numbers)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not valid_unicode(value):
            raise IngestError(f"{where}: {field} is not valid Unicode (a lone surrogate)")
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(number(value, where, field))
    raise wrong_type(where, field, "a string or a number" if numbers else "a string", value)


def number(value: Any, where: str, field: str, *, integer: bool = False,
           bounds: tuple[float, float] = INT64) -> Any:
    """A number field (``None`` when null or absent) within ``bounds``: never a boolean,
    a string, NaN or infinity; ``integer``: a whole number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise wrong_type(where, field, "a whole number" if integer else "a number", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise IngestError(f"{where}: {field} must be a finite number, not {value}")
    low, high = bounds
    # (comparing a huge int with a float is exact in Python; converting it would overflow)
    if not low <= value <= high:
        raise IngestError(f"{where}: {field} must be a number from {_shown(low)} to "
                          f"{_shown(high)}, not {_shown(value)}")
    return value


def _shown(n: float) -> str:
    """A number for a message (a 400-digit integer as ``1.00e+399``, without a float)."""
    if not isinstance(n, int) or abs(n) < 10**15:
        return f"{n:g}" if isinstance(n, float) else str(n)
    digits = str(abs(n))
    return f"{'-' if n < 0 else ''}{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"


def obj(value: Any, where: str, field: str) -> dict:
    """An object field (``{}`` when null or absent)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise wrong_type(where, field, "an object", value)
    return value


def items(value: Any, where: str, field: str) -> list:
    """A list field (``[]`` when null or absent)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise wrong_type(where, field, "a list", value)
    return value


def load_json(data: bytes, where: str) -> Any:
    """Parse JSON or raise IngestError naming ``where`` (bad UTF-8, bad syntax, nesting
    deeper than Python's recursion limit, an integer of over 4300 digits: all one line)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise IngestError(f"{where}: not valid JSON: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise IngestError(f"{where}: not valid JSON: {err}") from None


#: Deepest nesting of arrays and objects a request body may have (deeper ones were a
#: RecursionError, a 500, on two dozen routes).
MAX_DEPTH = 32
#: What a value the store cannot hold may come from: a lone surrogate's escape or raw
#: UTF-8, a long run of digits, a big exponent, NaN or Infinity. A body without any of them
#: is not walked.
_SUSPECT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]|\d{19}|[eE][+-]?\d{3}|NaN|Infinity")


def _check_values(value: Any, source: str) -> None:
    """Refuse, naming its field, a string (value or key) with a lone surrogate, an integer
    beyond 64 bits, a number that is not finite, or nesting deeper than
    :data:`MAX_DEPTH`, anywhere in ``value`` (walked without recursion)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict | list) and depth >= MAX_DEPTH:
            raise IngestError(f"{source}: {(path or 'the body')[:120]} is nested more than "
                              f"{MAX_DEPTH} deep")
        if isinstance(node, str):
            text(node, source, path or "the body")
        elif isinstance(node, int | float) and not isinstance(node, bool):
            number(node, source, path or "the body",
                   bounds=INT64 if isinstance(node, int) else FINITE)
        elif isinstance(node, dict):
            for k, v in node.items():
                text(k, source, f"a key in {path or 'the body'}")
                stack.append((v, f"{path}.{k}" if path else k, depth + 1))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))


def checked_json(body: bytes, source: str) -> Any:
    """A request body as JSON, or :class:`IngestError` naming ``source`` and the field —
    the one reader of every JSON request (the API's body parser is this).

    Whatever a field is for, a request holds nothing the store cannot: no integer beyond
    64 bits, no NaN or Infinity, no string with a lone surrogate, nothing nested deeper
    than :data:`MAX_DEPTH` (each was a 500)."""
    value = load_json(body, source)
    if _SUSPECT.search(body) or body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        _check_values(value, source)
    return value


@dataclass
class Attempt:
    """One execution of a test."""

    outcome: str
    duration_s: float | None = None
    message: str | None = None
    error_type: str | None = None
    details: str | None = None


def seconds(value: Any, scale: float = 1.0) -> float | None:
    """Parse a duration; tolerate decimal commas and placeholders (``<<computed>>``)."""
    if value is None or value == "":
        return None
    try:
        out = float(value) * scale
    except OverflowError:  # an integer too big for a float
        return None
    except (TypeError, ValueError):
        try:
            out = float(str(value).strip().replace(",", ".")) * scale
        except ValueError:
            return None
    return out if math.isfinite(out) and out >= 0 else None


#: A header's test count as the store's INTEGER column holds it.
_INT32 = (-(2**31), 2**31 - 1)


def header_count(value: str | None) -> int | None:
    """A report header's test count (an XML attribute); None when it is not a whole
    number a count column can hold (``tests="²"`` or 10^20 were a crash)."""
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:  # (also the over-4300-digit limit)
        return None
    return n if _INT32[0] <= n <= _INT32[1] else None


_COLS = (
    "test_id",
    "suite",
    "classname",
    "name",
    "file",
    "outcome",
    "duration_s",
    "message",
    "error_type",
    "details",
)
_RAW_SCHEMA = pa.schema([(c, pa.float64() if c == "duration_s" else pa.string()) for c in _COLS])
#: Attempts kept as Python lists before they are packed into an Arrow chunk: what bounds a
#: parse's memory (a million attempts as Python objects took ~500 MB; as Arrow, ~100 MB).
CHUNK_ROWS = 200_000


_EARLIEST, _LATEST = datetime(1, 1, 2), datetime(9999, 12, 30)


def timestamp(value: str | None) -> datetime | None:
    """Parse an ISO-8601 time as reports write it (``Z``, offsets, a space for ``T``)."""
    if not value:
        return None
    try:
        out = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    # A time within a day of datetime's limits overflows when moved to UTC.
    return out if _EARLIEST <= out.replace(tzinfo=None) <= _LATEST else None


#: A mapped report is hashed and read in steps of this size, each step's pages given back.
_STEP = 16 * 1024 * 1024


def release(data: Any, start: int, end: int) -> None:
    """Give a mapped report's pages ``[start, end)`` back to the system (they are the file's,
    read again from it if needed): read once, a big report must not stay in memory."""
    if isinstance(data, mmap.mmap) and end > start:
        start -= start % mmap.PAGESIZE
        data.madvise(mmap.MADV_DONTNEED, start, end - start)


def digest(data: Any) -> str:
    """SHA-256 of a report's bytes; a mapped report is hashed step by step, its pages given
    back as it goes."""
    if not isinstance(data, mmap.mmap):
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    for start in range(0, len(data), _STEP):
        h.update(data[start:start + _STEP])
        release(data, start, min(start + _STEP, len(data)))
    return h.hexdigest()


@dataclass
class ParsedRun:
    """A whole report: run metadata plus every attempt of every test, kept as columns.

    Tests that appear more than once (rerun plugins repeat the testcase) are merged: each
    appearance is one attempt, in document order, and the last is the final outcome.
    """

    format: str
    source: str
    content_hash: str
    started_at: datetime | None = None
    duration_s: float | None = None
    header_tests: int | None = None
    #: Test elements the parser counted in the document; fewer stored attempts is an error.
    expected_tests: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _cols: dict[str, list] = field(default_factory=lambda: {c: [] for c in _COLS}, repr=False)
    _unnamed: int = field(default=0, repr=False)
    #: Attempts already packed (see :meth:`compact`), in order, before those in ``_cols``.
    _chunks: list[pa.Table] = field(default_factory=list, repr=False)
    _flushed: int = field(default=0, repr=False)
    #: Each test's last attempt (global row index), in first-seen order, and every row's
    #: outcome: what counts and final flags need, kept for rows up to ``_indexed``.
    _last: dict[str, int] = field(default_factory=dict, repr=False)
    _outcomes: list[str] = field(default_factory=list, repr=False)
    _indexed: int = field(default=0, repr=False)
    #: A streamed run hands each packed chunk to ``sink`` (the store, inside the run's
    #: transaction) and keeps nothing: its counts and final flags are computed in SQL.
    sink: Callable[[pa.Table], None] | None = field(default=None, repr=False)
    #: The failure signatures of the chunks a streamed run has handed on.
    signatures: dict[str, tuple] = field(default_factory=dict, repr=False)

    def add_row(
        self,
        tid: str,
        suite: str | None,
        classname: str | None,
        name: str,
        file: str | None,
        outcome: str,
        duration_s: float | None = None,
        message: str | None = None,
        error_type: str | None = None,
        details: str | None = None,
    ) -> None:
        """Append one attempt of test ``tid`` (the parsers' fast path)."""
        c = self._cols
        c["test_id"].append(tid)
        c["suite"].append(suite)
        c["classname"].append(classname)
        c["name"].append(name)
        c["file"].append(file)
        c["outcome"].append(outcome)
        c["duration_s"].append(duration_s)
        c["message"].append(message)
        c["error_type"].append(error_type)
        c["details"].append(details)

    def test_name(self, name: str | None) -> str:
        """``name``, or a unique placeholder for a nameless test case."""
        if name:
            return name
        self._unnamed += 1
        return f"<unnamed #{self._unnamed}>"

    def add(
        self,
        name: str | None,
        attempts: Iterable[Attempt],
        classname: str | None = None,
        file: str | None = None,
        suite: str | None = None,
    ) -> None:
        """Record a test's attempts (merged with earlier appearances of the same test)."""
        name = self.test_name(name)
        self.add_attempts(test_id(classname, file, name), suite, classname, name, file, attempts)

    def add_attempts(self, tid: str, suite: str | None, classname: str | None, name: str,
                     file: str | None, attempts: Iterable[Attempt]) -> None:
        """Append attempts of a test whose id the caller has already made."""
        for a in attempts:
            self.add_row(tid, suite, classname, name, file, a.outcome, a.duration_s, a.message,
                         a.error_type, a.details)
        if len(self._cols["test_id"]) >= CHUNK_ROWS:
            self.compact()

    def compact(self) -> None:
        """Pack the attempts held as Python lists into an Arrow chunk (parsers call this
        every :data:`CHUNK_ROWS` attempts, so memory stays bounded by the report's Arrow
        size). The lists are emptied in place: parsers may hold their ``append``."""
        c = self._cols
        n = len(c["test_id"])
        if not n:
            return
        if self.sink is not None:
            self.sink(self._result_table(c, [None] * n, [None] * n, self.signatures))
        else:
            self._index()
            self._chunks.append(arrow.table(c, _RAW_SCHEMA))
        for col in c.values():
            col.clear()
        self._flushed += n

    def _index(self) -> None:
        """Bring ``_last`` and ``_outcomes`` up to the rows appended since last time."""
        tids, outcomes = self._cols["test_id"], self._cols["outcome"]
        start, base = self._indexed - self._flushed, self._flushed
        # A later attempt overwrites an earlier one; the first-seen order stays.
        self._last.update(zip(tids[start:], range(base + start, base + len(tids)),
                              strict=True))
        self._outcomes.extend(outcomes[start:])
        self._indexed = base + len(tids)

    @property
    def chunked(self) -> bool:
        """Whether some attempts are packed in Arrow chunks (a big report)."""
        return bool(self._chunks)

    @property
    def attempt_count(self) -> int:
        return self._flushed + len(self._cols["test_id"])

    def _finals(self) -> dict[str, int]:
        """Row index of each test's last attempt, in first-seen order."""
        if self.sink is not None:
            raise RuntimeError(f"{self.source}: a streamed run's tests are counted in the store")
        self._index()
        return self._last

    def _rows(self) -> Iterator[tuple[int, dict[str, list]]]:
        """``(index of the first row, columns)`` of every chunk, then of the open lists."""
        offset = 0
        for chunk in self._chunks:
            yield offset, chunk.to_pydict()
            offset += chunk.num_rows
        yield offset, self._cols

    def attempts(self, tid: str) -> list[Attempt]:
        """Every attempt of one test, in order."""
        return [
            Attempt(c["outcome"][i], c["duration_s"][i], c["message"][i], c["error_type"][i],
                    c["details"][i])
            for _, c in self._rows()
            for i, t in enumerate(c["test_id"])
            if t == tid
        ]

    def test_ids(self) -> list[str]:
        """Distinct tests, in first-seen order."""
        return list(self._finals())

    def counts(self) -> dict[str, int]:
        """``tests, passed, failed, errors, skipped`` by final outcome.

        A retried test counts once.
        """
        finals = self._finals()
        out = dict.fromkeys(OUTCOMES, 0)
        out.update(Counter(map(self._outcomes.__getitem__, finals.values())))
        return {
            "tests": len(finals),
            "passed": out["passed"],
            "failed": out["failed"],
            "errors": out["error"],
            "skipped": out["skipped"],
        }

    def result_chunks(self, sigs: dict[str, tuple]) -> Iterator[pa.Table]:
        """Result tables (as :data:`RESULT_SCHEMA`, without run id), one per chunk, made as
        they are asked for (only one chunk is held as Python objects, and the store inserts
        each before the next is made); the failure signatures are added to ``sigs``."""
        last = self._finals()
        retries = len(last) != self.attempt_count
        seen: dict[str, int] = {}
        made = 0
        for offset, c in self._rows():
            tids = c["test_id"]
            if not tids and made:
                continue
            made += 1
            if not retries:  # every test has exactly one attempt: each row is its last
                final, attempt = [True] * len(tids), [1] * len(tids)
            else:
                final = [last[t] == offset + i for i, t in enumerate(tids)]
                attempt = []
                for tid in tids:
                    n = seen.get(tid, 0) + 1
                    seen[tid] = n
                    attempt.append(n)
            yield self._result_table(c, final, attempt, sigs)

    @staticmethod
    def _result_table(c: dict[str, list], final: list, attempt: list,
                      sigs: dict[str, tuple]) -> pa.Table:
        """One chunk's rows as :data:`RESULT_SCHEMA`, its signatures added to ``sigs``."""
        sig_col: list[str | None] = [None] * len(c["test_id"])
        # Formats that carry no exception type (pytest's JUnit, reportlog, the plugin, most
        # JS runners) get the one the signature read from the traceback: one column, every
        # format.
        error_type = list(c["error_type"])
        failing = [i for i, o in enumerate(c["outcome"]) if o == "failed" or o == "error"]
        for i in failing:
            s = signature(c["message"][i], c["error_type"][i], c["details"][i])
            sig_col[i] = s.signature
            sigs.setdefault(s.signature, (s.signature, s.exception, s.normalized, s.suspect))
            if not error_type[i] or error_type[i].strip().lower() in GENERIC_TYPES:
                error_type[i] = s.exception or error_type[i]
        return result_table({
            **{k: c[k] for k in ("test_id", "suite", "classname", "name")},
            "params": [split_params(n)[1] if n and n[-1] in "])" else None for n in c["name"]],
            "file": c["file"],
            "attempt": attempt,
            "final": final,
            **{k: c[k] for k in ("outcome", "duration_s", "message")},
            "error_type": error_type,
            "details": c["details"],
            "signature": sig_col,
        })

    def columns(self) -> tuple[dict[str, list], dict[str, tuple]]:
        """Result columns as lists (small runs and tests; the store takes
        :meth:`result_chunks`) and signatures by key."""
        sigs: dict[str, tuple] = {}
        return pa.concat_tables(self.result_chunks(sigs)).to_pydict(), sigs

    def tables(self) -> tuple[pa.Table, pa.Table]:
        """``(results, signatures)`` Arrow tables ready for the store."""
        sigs: dict[str, tuple] = {}
        results = pa.concat_tables(self.result_chunks(sigs))
        return results, signature_table(sigs)

    def check_header(self, n: int) -> None:
        """Note when the report's own ``tests=`` count disagrees with its ``n`` test cases."""
        if self.header_tests is not None and self.header_tests != n:
            self.warnings.append(
                f"header says {self.header_tests} tests but the report holds {n} test cases"
            )


class Parser:
    """Base of the format registry: subclasses set ``format`` and implement two methods."""

    format: ClassVar[str] = ""
    #: How people name the format in messages ("JUnit XML").
    title: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()
    registry: ClassVar[dict[str, type[Parser]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.format:
            Parser.registry[cls.format] = cls

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        """Whether the first 64 KiB of a file (and its name) look like this format."""
        raise NotImplementedError

    def parse(self, data: bytes, source: str) -> ParsedRun:
        """Turn the bytes of one report into a :class:`ParsedRun` or raise IngestError."""
        raise NotImplementedError

    #: Set by the store for a streamed read (see :attr:`ParsedRun.sink`).
    sink: Callable[[pa.Table], None] | None = None

    def new_run(self, data: bytes, source: str) -> ParsedRun:
        return ParsedRun(self.format, source, digest(data), sink=self.sink)
