"""Failure signatures: normalise a failure so that the same root cause groups together."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_VOLATILE = [
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
        "<TS>",
    ),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b"), "<TIME>"),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<UUID>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<ADDR>"),
    (re.compile(r"(/tmp|/var/folders|/private/var)/[^\s'\":]+"), "<TMP>"),
    (re.compile(r"[A-Za-z]:\\[^\s'\"]*\\Temp\\[^\s'\"]+"), "<TMP>"),
    (re.compile(r"\b[0-9a-f]{12,}\b", re.I), "<HEX>"),
    (re.compile(r"(?<![A-Za-z_])[-+]?\d+(\.\d+)?(e[-+]?\d+)?"), "<N>"),
]

# (regex, groups) for stack frames: (path, func) of the common runtimes.
_FRAMES = [
    re.compile(r'File "(?P<path>[^"]+)", line \d+, in (?P<func>\S+)'),  # Python traceback
    None,  # pytest's own traceback: read by _pytest_frames (needs the entry's source lines)
    re.compile(r"\bat (?P<func>[\w$.<>/]+)\((?P<path>[\w$.-]+\.(?:java|kt|scala|groovy)):\d+\)"),
    re.compile(r"\bat (?P<func>[\w$.<>\[\]`,]+)\(.*?\) in (?P<path>.+?):line \d+"),  # .NET
    re.compile(r"\bat (?:(?P<func>[\w$.<>\[\] ]+) \()?(?P<path>[^\s()]+\.[cm]?[jt]sx?):\d+:\d+"),
    re.compile(r"^\s*(?P<path>[\w./-]+\.go):\d+(?P<func>)", re.M),  # Go
]
_INNER_FIRST = {2, 3, 4}
#: What a trace must hold for each pattern to match: a cheap test first. (.NET's frames
#: always end ":line N"; " in " alone let every Python trace run its pattern: 10 µs each.)
_MARKERS = ('File "', ".py:", "at ", ":line ", "at ", ".go:")
#: ``type=`` values that name a category, not an exception (Node's ``testCodeFailure``).
GENERIC_TYPES = frozenset({"failure", "error", "assertion", "testcodefailure", "hookfailure"})
# Node's test runner wraps the thrown error: ``cause: TypeError [Error]: bad type``.
_NODE_CAUSE = re.compile(r"^\s*cause: (?P<exc>[A-Za-z_$][\w$.]*)\b", re.M)
_TYPE_NAME = re.compile(r"^[A-Za-z_$][\w.$]*$")
_EXC_LINE = re.compile(
    r"^(?:E\s+)?(?P<exc>(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Failure|Exit|Interrupt|Warning|Fault))"
    r"\b(?::|$)",
    re.M,
)
_FRAMEWORK = re.compile(
    r"site-packages|dist-packages|node_modules|/usr/lib/|<frozen|_pytest|pluggy|unittest/"
    r"|^java\.|^javax\.|^jdk\.|^sun\.|java\.base/|^org\.junit|^junit\.|^org\.hamcrest"
    r"|^org\.apache\.maven|^org\.gradle|^kotlin\.|^scala\.|^System\.|^NUnit\.|^Microsoft\."
    r"|^Xunit\.|testing\.tRunner|^runtime/|/runtime/|/testing/|internal/|^async |^new Promise"
    # The standard library wherever Python lives (pyenv, /usr/local, a venv's base, Windows).
    r"|/lib/python\d[\d.]*/|\\Lib\\",
)
# pytest ends each traceback entry with ``path.py:LINE: in func`` (short entries) or
# ``path.py:LINE: `` / ``path.py:LINE: ExcType`` (long entries, whose function is named by
# the ``def`` line of the source shown above it; the last entry names the exception raised).
_PYTEST_LOC = re.compile(r"^(?P<path>[^\s:]+\.py):\d+: ?(?P<msg>.*)$")
_PYTEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(?P<func>\w+)\s*\(")
# pytest's JUnit writer wraps a setup/teardown error's message; reportlog and the plugin
# carry the bare message. Unwrapped, one failure gets one signature whatever carried it.
_PYTEST_PHASE = re.compile(r'^failed on (?:setup|teardown) with "(?P<inner>.*)"$', re.S)
# What varies between the occurrences of one bug but not its message's template: the
# class, attribute, key, value, path or object a message names ('HypClass' object has no
# attribute 'b'). Applied after the volatile parts above (so addresses read <ADDR>).
# Written in the part of regular-expression syntax that Python's re (ASCII) and DuckDB's
# RE2 read alike (no look-around; \1 in replacements), so that the store re-keys stored
# failures with these same rules (workbench.store.schema, schema 14).
NAME_RULES: list[tuple[str, str]] = [
    # object reprs: <tests.Foo object at <ADDR>>, <function f at <ADDR>>, <class 'int'>,
    # <member 'y' of 'C1Slots' objects>
    (r"<[A-Za-z_][^<>\n]* at <ADDR>>", "<OBJ>"),
    (r"<[A-Za-z_][\w.]* [^<>\n]*>", "<OBJ>"),
    # quoted names and values ('b', "key", `name`); an apostrophe inside a word is no quote
    (r"(^|[^\w'\"`])'[^'\n]*'", r"\1<Q>"),
    (r"(^|[^\w'\"`])\"[^\"\n]*\"", r"\1<Q>"),
    (r"(^|[^\w'\"`])`[^`\n]*`", r"\1<Q>"),
    # paths of two or more parts: src/attr/_funcs.py, C:\src\shop\cart.py
    (r"(^|[^\w.<>/\\-])(?:[A-Za-z]:)?[\w.-]*(?:[/\\][\w.-]+){2,}", r"\1<PATH>"),
    # qualified names: tests.strategies.HypClass, java.lang.String, C.__init__
    (r"\b[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+\b", "<ID>"),
    # a function named by a call: total() takes 1 positional argument
    (r"\b[A-Za-z_]\w*\(\)", "<ID>()"),
    # the names JavaScript's templates put first: x is not a function, y is not defined
    (
        r"(^|[\s(])[A-Za-z_$][\w$]*"
        r"( is not (?:a function|defined|iterable|a constructor)| is (?:undefined|null)\b)",
        r"\1<ID>\2",
    ),
]
# What a text must hold for each rule to match: most messages skip most rules.
_NEEDLES = [("<",), ("<",), ("'",), ('"',), ("`",), ("/", "\\"), (".",), ("()",), (" is ",)]
_NAMES = [
    (re.compile(p, re.ASCII), r, needles)
    for (p, r), needles in zip(NAME_RULES, _NEEDLES, strict=True)
]
#: A suspect as stored (``func (path)``) → the function, and the file's name without its
#: folders (paths differ between machines and report formats; the file's name does not).
SUSPECT_PARTS = r"^(.*?) \((?:.*[/\\])?([^/\\]*)\)$"
_SUSPECT = re.compile(SUSPECT_PARTS)
#: How much of a message's first line a signature keeps.
MESSAGE_CHARS = 240
_TESTISH = re.compile(
    r"(^|[/\\._])tests?([/\\._]|$)|_test\.|Test[s]?\.|\.spec\.|\.test\.|Spec\.", re.I
)


@dataclass(frozen=True)
class Signature:
    """What two failures must share to count as the same cause."""

    signature: str
    exception: str | None
    normalized: str
    suspect: str | None


def normalize_text(text: str) -> str:
    """Strip colour codes and the parts of a message that vary run to run."""
    text = ANSI.sub("", text)
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return re.sub(r"\s+", " ", text).strip()


def normalize_names(text: str) -> str:
    """Replace the names a message template fills in (:data:`NAME_RULES`) by placeholders."""
    for pattern, repl, needles in _NAMES:
        if any(n in text for n in needles):
            text = pattern.sub(repl, text)
    return text


def normalize_message(text: str) -> str:
    """A message's first line as its template: volatile parts and names replaced, at most
    :data:`MESSAGE_CHARS` characters (cut before the names too, so that the store's SQL,
    which starts from the stored text, gets the same)."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if len(first) > _CACHED_LINE:
        return _normalize_line.__wrapped__(first)
    return _normalize_line(first)


#: First lines up to this long are remembered: one report repeats a few messages many
#: times, and ten regular expressions a line cost more than the rest of a signature.
_CACHED_LINE = 1024


@lru_cache(maxsize=8192)
def _normalize_line(first: str) -> str:
    return normalize_names(normalize_text(first)[:MESSAGE_CHARS])[:MESSAGE_CHARS]


def cluster_key(exception: str | None, suspect: str | None, normalized: str) -> str:
    """The signature of a failure from its exception type, suspect and normalised message.

    With a suspect frame, the exception type and that frame (function and file name) decide
    and the message does not: one bug reached through many classes says many things. The
    message counts only when there is no frame, or no exception type to tell kinds apart.
    Mirrored in SQL by the store's schema 14 (re-keying what is stored): change both together.
    """
    func = base = ""
    if suspect:
        m = _SUSPECT.match(suspect)
        if m:
            func, base = m.groups()
    text = "" if suspect and exception else normalized
    key = "\x1f".join([exception or "", func, base, text])
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:16]


def frames(details: str) -> list[tuple[str, str]]:
    """``(path, func)`` for every recognised stack frame, innermost last.

    Python and Go print the innermost frame last; Java, .NET and JavaScript print it first.
    """
    outer_first: list[tuple[int, str, str]] = []
    inner_first: list[tuple[int, str, str]] = []
    for i, pattern in enumerate(_FRAMES):
        if _MARKERS[i] not in details:
            continue  # cheap test first: most patterns cannot match most traces
        bucket = inner_first if i in _INNER_FIRST else outer_first
        if pattern is None:
            bucket.extend(_pytest_frames(details))
            continue
        for m in pattern.finditer(details):
            bucket.append((m.start(), m.group("path"), m.group("func") or ""))
    outer_first.sort()
    inner_first.sort(reverse=True)
    return [(p, f) for _, p, f in outer_first + inner_first]


def _pytest_frames(details: str) -> list[tuple[int, str, str]]:
    """``(offset, path, func)`` of each entry of a pytest traceback, outermost first."""
    out: list[tuple[int, str, str]] = []
    # A long entry shows its function's source from the ``def`` line on: the first ``def``
    # is the entry's function, later ones are functions or methods defined inside it.
    entry_def = ""
    offset = 0
    for line in details.splitlines(keepends=True):
        m = _PYTEST_LOC.match(line.rstrip("\r\n"))
        if m:
            msg = m.group("msg").strip()
            func = msg[3:].strip() if msg.startswith("in ") else entry_def
            out.append((offset, m.group("path"), func))
            entry_def = ""
        elif not entry_def:
            d = _PYTEST_DEF.match(line)
            if d:
                entry_def = d.group("func")
        offset += len(line)
    return out


def _pytest_raised(details: str) -> str | None:
    """The exception type pytest names on the last entry (``cart.py:4: KeyError``)."""
    for line in reversed(details.splitlines()):
        m = _PYTEST_LOC.match(line)
        if m:
            msg = m.group("msg").strip()
            return msg if _TYPE_NAME.match(msg) and not msg.startswith("in ") else None
    return None


@lru_cache(maxsize=65536)
def _is_framework(path: str, func: str) -> bool:
    # A path in angle brackets is code made at run time (<string>, <attrs generated init
    # tests.C>), named after what made it: no file of the project's.
    return bool(path.startswith("<") or _FRAMEWORK.search(path) or _FRAMEWORK.search(func))


def _project_frames(all_frames: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(p, f) for p, f in all_frames if not _is_framework(p, f)]


def _exception(error_type: str | None, message: str, details: str) -> str | None:
    if (
        error_type
        and _TYPE_NAME.match(error_type.strip())
        and error_type.strip().lower() not in GENERIC_TYPES
    ):
        return error_type.strip()
    m = _NODE_CAUSE.search(details or "")
    if m:
        return m.group("exc")
    if ".py:" in (details or ""):
        raised = _pytest_raised(details)
        if raised:
            return raised
    # The last one printed is the one raised (chained tracebacks print causes first).
    m = next(reversed(list(_EXC_LINE.finditer(details or ""))), None)
    if m:
        return m.group("exc")
    m = _EXC_LINE.search(message or "")
    return m.group("exc") if m else None


@lru_cache(maxsize=65536)
def _is_test_frame(path: str, func: str) -> bool:
    return bool(_TESTISH.search(path) or _TESTISH.search(func.rsplit(".", 1)[0]))


def signature(message: str | None, error_type: str | None, details: str | None) -> Signature:
    """Group key for one failure.

    The suspect is the innermost in-project frame outside the tests (or, when the failure
    is raised in the test itself, its innermost test frame); framework, standard-library
    and generated frames are skipped. The key is the exception type and the suspect's
    function and file name (:func:`cluster_key`); the message's first line, normalised
    (:func:`normalize_message`), takes part only when there is no suspect or no type.
    """
    message = ANSI.sub("", message or "")
    wrapped = _PYTEST_PHASE.match(message)
    if wrapped:
        message = wrapped.group("inner")
    details = ANSI.sub("", details or "")
    exc = _exception(error_type, message, details)
    normalized = normalize_message(message or details)
    proj = _project_frames(frames(details))
    non_test = [(p, f) for p, f in proj if not _is_test_frame(p, f)]
    # The same cause reached from many tests shares its innermost non-test frame; an
    # assertion in the test itself has none, and then the test's own frame says which.
    pick = (non_test or proj)[-1:]
    suspect = f"{pick[0][1] or '?'} ({pick[0][0]})" if pick else None
    return Signature(cluster_key(exc, suspect, normalized), exc, normalized, suspect)
