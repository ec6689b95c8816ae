"""A deterministic demo dataset: several projects, 200+ runs over six weeks, plus agent
telemetry (see :mod:`workbench.demo_telemetry`).

It has what a real team's history has: tests that flake (some caught by a retry in the
same run), a test that breaks on one commit and is fixed days later, recurring failure
clusters whose messages differ only in ports, ids and timings, a duration regression,
parametrised tests, OS/Python variants, and a few real reports from public projects.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING

from .config import utcnow
from .ingest import Attempt, ParsedRun, parse_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

    from .store import Store

DAYS = 42


@dataclass(frozen=True)
class _Project:
    name: str
    runner: str
    variants: tuple[str, ...]
    modules: tuple[str, ...]
    runs: int


PROJECTS = (
    _Project(
        "checkout-service",
        "pytest",
        ("linux-py3.11", "linux-py3.12"),
        ("cart", "payments", "inventory", "api", "db", "auth", "pricing", "shipping"),
        96,
    ),
    _Project(
        "web-frontend",
        "jest",
        ("chrome", "firefox"),
        ("Header", "CartPage", "Checkout", "Search", "ProductCard", "i18n"),
        72,
    ),
    _Project(
        "ledger-jvm",
        "surefire",
        ("jdk17",),
        ("LedgerService", "AccountRepository", "PostingEngine", "ReportExporter"),
        56,
    ),
)

_CONN_RESET = (
    "ConnectionResetError: [Errno 104] Connection reset by peer",
    "Traceback (most recent call last):\n"
    '  File "/home/ci/work/checkout/tests/test_db.py", line {l1}, in {name}\n'
    "    rows = repo.fetch(order_id={oid})\n"
    '  File "/home/ci/work/checkout/src/checkout/db/pool.py", line {l2}, in fetch\n'
    "    conn = self._acquire(timeout={t})\n"
    '  File "/home/ci/.venv/lib/python3.11/site-packages/psycopg/pool.py", line 812, in getconn\n'
    "    raise e\n"
    "ConnectionResetError: [Errno 104] Connection reset by peer (127.0.0.1:{port})",
)
_TIMEOUT = (
    "TimeoutError: timed out after {t}s waiting for payment gateway 0x{addr:x}",
    "Traceback (most recent call last):\n"
    '  File "/home/ci/work/checkout/tests/test_payments.py", line {l1}, in {name}\n'
    "    resp = gateway.charge(amount={oid})\n"
    '  File "/home/ci/work/checkout/src/checkout/payments/gateway.py", line {l2}, in charge\n'
    "    return self._client.post(url, timeout={t})\n"
    "TimeoutError: timed out after {t}s waiting for payment gateway 0x{addr:x}",
)
_JEST_SNAPSHOT = (
    "expect(received).toMatchSnapshot()\n\nSnapshot name: `{name} 1`",
    "Error: expect(received).toMatchSnapshot()\n"
    "    at Object.<anonymous> (src/components/{mod}.test.tsx:{l1}:{l2})\n"
    "    at renderPrice (src/lib/price.ts:{l2}:7)\n"
    "    at node_modules/jest-circus/build/utils.js:298:28",
)
_JEST_EXPECT = (
    "expect(received).toBe(expected) // Object.is equality\n\nExpected: {a}\nReceived: {b}",
    "Error: expect(received).toBe(expected) // Object.is equality\n"
    "    at Object.<anonymous> (src/components/{mod}.test.tsx:{l1}:{l2})\n"
    "    at node_modules/jest-circus/build/utils.js:298:28",
)
_NPE = (
    'Cannot invoke "Account.balance()" because "account" is null',
    'java.lang.NullPointerException: Cannot invoke "Account.balance()" because "account" is null\n'
    "\tat com.acme.ledger.PostingEngine.apply(PostingEngine.java:{l1})\n"
    "\tat com.acme.ledger.PostingEngineTest.{name}(PostingEngineTest.java:{l2})\n"
    "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(Unknown Source)\n"
    "\tat org.junit.platform.commons.util.ReflectionUtils.invokeMethod(ReflectionUtils.java:725)",
)
_ASSERT = (
    "AssertionError: assert {a} == {b}",
    "tests/test_{mod}.py:{l1}: in {name}\n    assert total == expected\n"
    "E   AssertionError: assert {a} == {b}",
)


def _fill(template: tuple[str, str], rng: random.Random, **kw: object) -> tuple[str, str]:
    values = dict(
        l1=rng.randint(20, 400),
        l2=rng.randint(10, 300),
        oid=rng.randint(1000, 99999),
        t=round(rng.uniform(2, 30), 1),
        port=rng.randint(30000, 60000),
        addr=rng.randint(0x7F0000000000, 0x7FFFFFFFFFFF),
        a=rng.randint(1, 99),
        b=rng.randint(100, 200),
        name="x",
        mod="x",
    )
    values.update(kw)
    return template[0].format(**values), template[1].format(**values)


def _tests(p: _Project, rng: random.Random) -> list[tuple[str, str, str, float]]:
    """(classname, name, module, base duration) for every test of a project."""
    out = []
    for mod in p.modules:
        for i in range(rng.randint(18, 34)):
            verb = rng.choice(
                [
                    "creates",
                    "updates",
                    "rejects",
                    "lists",
                    "totals",
                    "renders",
                    "validates",
                    "retries",
                    "exports",
                    "handles",
                ]
            )
            noun = rng.choice(
                [
                    "order",
                    "item",
                    "discount",
                    "refund",
                    "session",
                    "token",
                    "address",
                    "invoice",
                    "currency",
                    "locale",
                ]
            )
            if p.runner == "pytest":
                cls, name = f"tests.test_{mod}", f"test_{verb}_{noun}_{i}"
                if i % 7 == 0:
                    name += f"[{rng.choice(['eur', 'usd', 'gbp'])}-{i}]"
            elif p.runner == "jest":
                cls, name = f"{mod} component", f"{verb} {noun} correctly ({i})"
            else:
                cls, name = f"com.acme.ledger.{mod}Test", f"{verb}{noun.title()}{i}"
            out.append((cls, name, mod, round(rng.lognormvariate(-2.5, 1.2), 4)))
    if p.runner == "pytest":
        # Data, never markup: a test whose name would inject HTML if rendered unescaped.
        out.append(
            ("tests.test_render", "test_escapes[<b>bold</b>&<script>x</script>]", "render", 0.01)
        )
    return out


def _project_runs(p: _Project, end: datetime, seed: int) -> list[tuple[ParsedRun, dict]]:
    rng = random.Random(seed)
    tests = _tests(p, rng)
    flaky = {t[1]: rng.uniform(0.08, 0.25) for t in rng.sample(tests, 5)}
    cluster_tests = [
        t for t in tests if t[2] in ("db", "LedgerService", "PostingEngine", "Checkout")
    ][:6]
    payment_tests = [t for t in tests if t[2] in ("payments", "CartPage")][:4]
    broken = rng.choice(tests)
    slow = rng.choice(tests)
    out = []
    branches = ["main"] * 6 + ["feature/faster-cart", "fix/flaky-db-pool", "renovate/deps"]
    heads: dict[str, str] = {}
    was_broken: dict[str, bool] = {}
    for i in range(p.runs):
        when = (
            end
            - timedelta(days=DAYS)
            + timedelta(seconds=int(DAYS * 86400 * (i + rng.random()) / p.runs))
        )
        branch = rng.choice(branches)
        frac = i / p.runs
        # Breaking and fixing a test comes with a new commit.
        broken_now = (0.3 < frac < 0.4 and branch == "main") or frac > 0.9
        if rng.random() < 0.45 or branch not in heads or broken_now != was_broken.get(branch):
            heads[branch] = hashlib.sha1(f"{p.name}-{branch}-{i}".encode()).hexdigest()
        commit = heads[branch]
        was_broken[branch] = broken_now
        variant = p.variants[i % len(p.variants)]
        outage = 0.45 < frac < 0.55  # a bad week for the shared database
        run = ParsedRun(
            p.runner if p.runner != "surefire" else "junit",
            f"demo://{p.name}/{i}",
            hashlib.sha256(f"demo:{p.name}:{i}".encode()).hexdigest(),
            when,
        )
        total = 0.0
        for cls, name, mod, base in tests:
            dur = base * rng.uniform(0.8, 1.25)
            if (cls, name) == slow[:2] and frac > 0.7:
                dur *= 3.5  # a duration regression lands late in the history
            attempts: list[Attempt] = []
            fail: tuple[str, str] | None = None
            if name in flaky and rng.random() < flaky[name]:
                tpl = {"pytest": _ASSERT, "jest": _JEST_EXPECT}.get(p.runner, _NPE)
                fail = _fill(tpl, rng, name=name, mod=mod)
            if (cls, name, mod, base) in cluster_tests and (
                outage and rng.random() < 0.6 or rng.random() < 0.03
            ):
                tpl = (
                    _CONN_RESET
                    if p.runner == "pytest"
                    else (_NPE if p.runner == "surefire" else _JEST_SNAPSHOT)
                )
                fail = _fill(tpl, rng, name=name.split("[")[0], mod=mod)
            if (cls, name, mod, base) in payment_tests and rng.random() < 0.05:
                fail = _fill(
                    _TIMEOUT if p.runner == "pytest" else _JEST_SNAPSHOT, rng, name=name, mod=mod
                )
            # broken on main for a while and fixed; broken everywhere at the end, still open
            if (cls, name) == broken[:2] and broken_now:
                fail = _fill(_NPE if p.runner == "surefire" else _ASSERT, rng, name=name, mod=mod)
            if fail:
                kind = "error" if "Connection" in fail[0] else "failed"
                last = fail[1].strip().splitlines()[-1].removeprefix("E").strip()
                etype = last.split(":")[0] if p.runner == "pytest" else None
                attempts.append(Attempt(kind, dur, fail[0], etype, fail[1]))
                # A retry plugin reruns failures; flaky ones often pass the second time.
                if name in flaky and rng.random() < 0.5:
                    attempts.append(Attempt("passed", dur))
            elif rng.random() < 0.01:
                attempts.append(Attempt("skipped", 0.0, "requires network"))
            else:
                attempts.append(Attempt("passed", dur))
            total += sum(a.duration_s or 0 for a in attempts)
            run.add(name, attempts, classname=cls, suite=mod)
        run.duration_s = round(total, 3)
        meta = {
            "project": p.name,
            "branch": branch,
            "commit": commit,
            "variant": variant,
            "build": str(1000 + i),
            "ci_provider": "github",
        }
        out.append((run, meta))
    return out


def _sample_runs(end: datetime) -> list[tuple[ParsedRun, dict]]:
    out = []
    folder = resources.files("workbench") / "samples"
    for i, entry in enumerate(sorted(folder.iterdir(), key=lambda e: e.name)):
        if entry.name.endswith((".xml", ".json")):
            run = parse_bytes(entry.read_bytes(), f"samples/{entry.name}")
            # Each sample is a different suite: a branch of its own keeps them from being
            # compared with each other.
            meta = {
                "project": "samples",
                "branch": entry.name.rsplit(".", 1)[0],
                "build": "1",
                "started_at": end - timedelta(hours=6 * (i + 1)),
            }
            out.append((run, meta))
    return out


def load_demo(
    store: Store, end: datetime | None = None, progress: Callable[[int, int], None] | None = None
) -> int:
    """Fill ``store`` with the demo dataset; return how many runs were stored.

    ``end`` is when the history stops (default: today at midnight), so the demo always
    looks recent while its content stays the same.
    """
    end = end or utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    batches = [_project_runs(p, end, seed=17 + n) for n, p in enumerate(PROJECTS)]
    runs = [r for batch in batches for r in batch] + _sample_runs(end)
    from .intake import LocalIntake

    # Through the intake like every other writer (the demo has parsed runs, not files).
    intake = LocalIntake(store, ci_env={})
    pending = [intake.submit_parsed(run, meta) for run, meta in runs]
    intake.flush()
    stored = 0
    for n, fut in enumerate(pending, 1):
        result = fut.result()
        if not result["ok"]:
            raise RuntimeError(f"demo run not stored: {result['error']}")
        stored += not result["duplicate"]
        if progress:
            progress(n, len(runs))
    counts = store.query("telemetry_counts").iloc[0]
    if counts["spans"] == 0 and counts["logs"] == 0:
        from .demo_telemetry import load_demo_telemetry

        load_demo_telemetry(store)  # ends now, so the last hours have activity
    if store.query("coverage_reports", limit=1).empty:
        from .demo_coverage import PROJECT, load_demo_coverage

        load_demo_coverage(store, end, next(p for p in PROJECTS if p.name == PROJECT).modules)
    return stored


def is_empty(store: Store) -> bool:
    """Whether the store has no runs yet."""
    return store.query("runs", limit=1).empty
