"""The demo's projects page: a small checkout-service repository written beside the database
(``demo-projects/checkout-service``, a real git repository with a few commits when git is
installed), registered as a scanned project, and a coverage report per commit with per-test
contexts that name the demo's own pytest tests — so that the coverage map, the file view
with its source, coverage over commits, the comparison of two reports and coverage at risk
all have something to show on first start. The numbers are made up; the shapes are real."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from . import launcher
from .coverage.model import CoverageReport, FileCoverage
from .coverage.risk import untrusted_tests

PROJECT = "checkout-service"
FILES = ("service", "models", "rules")
COMMITS = ("Add checkout service skeleton", "Price rules for discounts",
           "Refund flow and inventory holds", "Tidy up error handling")


def _function(rng: random.Random, mod: str, n: int) -> list[str]:
    verb = rng.choice(["apply", "compute", "validate", "reserve", "refund", "render", "load"])
    name = f"{verb}_{mod}_{n}"
    body = [f"def {name}(order, options=None):",
            f'    """{verb.title()} the {mod} part of an order."""',
            "    options = options or {}",
            "    total = 0"]
    for i in range(rng.randint(2, 5)):
        body += [f"    if options.get('{rng.choice(['strict', 'fast', 'eur', 'gift'])}_{i}'):",
                 f"        total += order.get('line_{i}', 0) * {rng.randint(2, 9)}",
                 "    else:",
                 f"        total -= {rng.randint(1, 5)}"]
    body += ["    return total", "", ""]
    return body


def _source(rng: random.Random, mod: str, stage: int) -> str:
    lines = [f'"""checkout.{mod}: generated for the demo."""', "", ""]
    for n in range(4 + stage):
        lines += _function(rng, mod, n)
    return "\n".join(lines).rstrip() + "\n"


def _git(repo: Path, *args: str, when: datetime | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "Demo Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Demo Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
           "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(repo)}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    out = launcher.run(["git", "-C", str(repo), *args], env=launcher.child_env(env))
    if out.returncode:
        raise subprocess.CalledProcessError(out.returncode, out.args, out.stdout, out.stderr)
    return out.stdout.strip()


def _report(repo: Path, modules: tuple[str, ...], tests: dict[str, list[str]],
            untrusted: set[str], rng: random.Random) -> CoverageReport:
    """Coverage of the files as they are in ``repo`` now: each test runs a few functions of
    its module; one function per module is run only by an untrusted test, if it has one."""
    report = CoverageReport(format="coverage.py")
    for mod in modules:
        names = tests.get(mod, [])
        for file in FILES:
            rel = f"src/checkout/{mod}/{file}.py"
            text = (repo / rel).read_text().splitlines()
            funcs: list[tuple[int, int]] = []
            for i, line in enumerate(text, 1):
                if line.startswith("def "):
                    funcs.append((i, i))
                elif funcs and line.strip():
                    funcs[-1] = (funcs[-1][0], i)
            fc = FileCoverage(rel)
            fc.statements = {i for i, line in enumerate(text, 1)
                             if line.strip() and not line.lstrip().startswith(('"""', "#"))}
            fc.covered = {first for first, _ in funcs}  # def lines run at import
            bad = [t for t in names if t in untrusted]
            for k, (first, last) in enumerate(funcs):
                body = set(range(first + 1, last + 1)) & fc.statements
                if k == len(funcs) - 1:
                    continue  # the newest function: never tested (coverage drops)
                runners = bad[:1] if bad and k == 1 else rng.sample(names, min(len(names),
                                                                                rng.randint(1, 4)))
                ran = {n for n in body if not text[n - 1].strip().startswith("else")
                       and "-=" not in text[n - 1] or rng.random() < 0.5}
                fc.covered |= ran
                fc.partial |= {n for n in ran if text[n - 1].strip().startswith("if ")
                               and rng.random() < 0.3}
                for t in runners:
                    node = f"tests/test_{mod}.py::{t.split('::', 1)[1]}"
                    report.contexts.setdefault(node, {}).setdefault(rel, set()).update(
                        ran | {first})
            fc.functions, fc.functions_covered = len(funcs), len(funcs) - 1
            report.files[rel] = fc
    return report


def load_demo_coverage(store, end: datetime, modules: tuple[str, ...]) -> int:
    """Write the demo repository of the project whose ``modules`` are given and store one
    coverage report per commit; the number of reports (0 when the database is not a file,
    or git is missing)."""
    from .projects.scan import describe, store_projects
    from .store.coverage_writes import report_id, store_report

    if not isinstance(store.path, Path) or shutil.which("git") is None:
        return 0
    repo = store.path.parent / "demo-projects" / PROJECT
    if repo.exists():
        shutil.rmtree(repo)
    (repo / "tests").mkdir(parents=True)
    modules = modules[:5]
    stats = store.query("test_run_stats", project=PROJECT)
    ids = store.query("last_outcomes", project=PROJECT)["test_id"].tolist()
    tests = {mod: sorted(t for t in ids if t.startswith(f"tests.test_{mod}::")
                         and "[" not in t) for mod in modules}
    untrusted = {t for t in stats["test_id"] if _key(t) in untrusted_tests(store, PROJECT)} \
        if not stats.empty else set()
    (repo / "pyproject.toml").write_text('[project]\nname = "checkout-service"\n'
                                         'version = "0.1.0"\n')
    # The workbench's own MCP server, declared as Claude Code reads it: the project page
    # lists it, and an operator can approve it and call its tools.
    (repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"observatory": {
        "command": sys.executable,
        "args": ["-m", "workbench", "mcp", "--db", str(store.path)]}}}, indent=2) + "\n")
    (repo / "README.md").write_text("# checkout-service\n\nDemo project of Happy Observatory."
                                    "\n")
    _git(repo, "init", "-q", "-b", "main")
    stored = 0
    for stage, message in enumerate(COMMITS):
        rng = random.Random(100 + stage)
        for mod in modules:
            folder = repo / "src" / "checkout" / mod
            folder.mkdir(parents=True, exist_ok=True)
            for file in FILES:
                (folder / f"{file}.py").write_text(_source(random.Random(f"{mod}{file}"),
                                                           mod, stage))
        when = end - timedelta(days=2 * (len(COMMITS) - stage))
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", message, when=when)
        sha = _git(repo, "rev-parse", "HEAD")
        report = _report(repo, modules, tests, untrusted, rng)
        meta = {"project": PROJECT, "commit": sha, "branch": "main",
                "created_at": when + timedelta(minutes=20)}
        store_report(store, report, report_id(sha.encode(), meta), meta, "demo")
        stored += 1
    found = describe(repo)
    store_projects(store, [found])
    return stored


def _key(test_id: str) -> str:
    from .analysis.culprits import test_key

    return test_key(test_id)
