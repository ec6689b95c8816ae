"""What every test-result parser produces, and the registry that picks a parser."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from ..analysis.identity import split_params, test_id
from ..analysis.signatures import signature

if TYPE_CHECKING:
    from collections.abc import Iterable

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


class IngestError(ValueError):
    """Input that cannot be stored; the message is one line naming the reason."""


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
        out = float(str(value).strip().replace(",", ".")) * scale
    except ValueError:
        return None
    return out if math.isfinite(out) and out >= 0 else None


@dataclass
class ParsedRun:
    """A whole report: run metadata plus every attempt of every test, as Arrow tables.

    Tests that appear more than once (rerun plugins repeat the testcase) are merged: each
    appearance is one attempt, in document order, and the last is the final outcome.
    """

    format: str
    source: str
    content_hash: str
    started_at: datetime | None = None
    duration_s: float | None = None
    header_tests: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _tests: dict[str, tuple[tuple, list[Attempt]]] = field(default_factory=dict, repr=False)

    def add(
        self,
        name: str | None,
        attempts: Iterable[Attempt],
        classname: str | None = None,
        file: str | None = None,
        suite: str | None = None,
    ) -> None:
        """Record a test's attempts (merged with earlier appearances of the same test)."""
        name = name if name else f"<unnamed #{len(self._tests) + 1}>"
        tid = test_id(classname, file, name)
        entry = self._tests.get(tid)
        if entry is None:
            self._tests[tid] = ((suite, classname, name, file), list(attempts))
        else:
            entry[1].extend(attempts)

    @property
    def attempt_count(self) -> int:
        return sum(len(a) for _, a in self._tests.values())

    def counts(self) -> dict[str, int]:
        """``tests, passed, failed, errors, skipped`` by final outcome; a retried test counts once."""
        out = dict.fromkeys(OUTCOMES, 0)
        for _, attempts in self._tests.values():
            out[attempts[-1].outcome] += 1
        return {"tests": len(self._tests), "passed": out["passed"], "failed": out["failed"],
                "errors": out["error"], "skipped": out["skipped"]}

    def tables(self) -> tuple[pa.Table, pa.Table]:
        """``(results, signatures)`` Arrow tables ready for the store."""
        cols: dict[str, list] = {f.name: [] for f in RESULT_SCHEMA}
        sigs: dict[str, tuple] = {}
        for tid, ((suite, classname, name, file), attempts) in self._tests.items():
            params = split_params(name)[1]
            last = len(attempts) - 1
            for i, a in enumerate(attempts):
                sig = None
                if a.outcome in ("failed", "error"):
                    s = signature(a.message, a.error_type, a.details)
                    sig = s.signature
                    sigs.setdefault(sig, (s.signature, s.exception, s.normalized, s.suspect))
                row = (tid, suite, classname, name, params, file, i + 1, i == last, a.outcome,
                       a.duration_s, a.message, a.error_type, a.details, sig)
                for col, val in zip(cols.values(), row, strict=True):
                    col.append(val)
        results = pa.table(cols, schema=RESULT_SCHEMA)
        sig_cols = list(zip(*sigs.values(), strict=True)) if sigs else [[], [], [], []]
        sig_table = pa.table(
            {f.name: list(c) for f, c in zip(SIGNATURE_SCHEMA, sig_cols, strict=True)},
            schema=SIGNATURE_SCHEMA,
        )
        return results, sig_table

    def check_header(self, n: int) -> None:
        """Note when the report's own ``tests=`` count disagrees with its ``n`` test cases."""
        if self.header_tests is not None and self.header_tests != n:
            self.warnings.append(
                f"header says {self.header_tests} tests but the report holds {n} test cases"
            )


class Parser:
    """Base of the format registry: subclasses set ``format`` and implement two methods."""

    format: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()
    registry: ClassVar[dict[str, type[Parser]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.format:
            Parser.registry[cls.format] = cls

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        """Whether the first KiB of a file (and its name) look like this format."""
        raise NotImplementedError

    def parse(self, data: bytes, source: str) -> ParsedRun:
        """Turn the bytes of one report into a :class:`ParsedRun` or raise IngestError."""
        raise NotImplementedError

    def new_run(self, data: bytes, source: str) -> ParsedRun:
        return ParsedRun(self.format, source, hashlib.sha256(data).hexdigest())
