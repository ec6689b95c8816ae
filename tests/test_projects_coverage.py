"""A project's coverage explored with real producers: a git repository built here with two
commits, its tests run by pytest (through the workbench's plugin, twice on the first commit
so that one test is proven flaky) and under coverage.py with per-test contexts at each
commit, the reports ingested, the folder found by a scan. Checked against coverage.py's own
data: the coverage map's totals, the lines the second commit left uncovered, the patch
coverage of the change, the lines only the flaky test runs (coverage at risk), the file view
with its source from ``git show``, and the tests of a line with their last outcome — through
the model, the API (with roles), and the MCP servers a project declares (approved first,
audited)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import coverage
import httpx
import pandas as pd
import pytest

from workbench.coverage import CoverageReport, FileCoverage, tree
from workbench.coverage.diff import diff_reports
from workbench.models.projects import ProjectsModel
from workbench.store import Store
from workbench.store.coverage_writes import store_report

from .conftest import ROLE_ENV, TOKENS, Served, role_client, write_tree
from .test_coverage_ingest import CART, TESTS, line_of, observatory, run

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

FLAKY_TESTS = TESTS.replace(
    "def test_discount():\n",
    "def test_discount():\n    import os\n    assert os.environ.get('FLIP') != '1'\n")
NEW_CODE = '''

def gift_wrap(cart):
    wrapped = dict(cart)
    wrapped["wrap"] = 1
    return wrapped
'''
ECHO_SERVER = '''\
import os
from mcp.server.mcpserver import MCPServer


server = MCPServer("echo")


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper() + os.environ.get("SUFFIX", "")


server.run("stdio")
'''


def git(repo: Path, *args: str) -> str:
    return run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@example.com",
               *args).strip()


def measure(repo: Path, db: Path, commit: str) -> dict:
    """Run the tests under coverage.py with per-test contexts, ingest the data file."""
    run(repo, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-p", "no:observatory", "--cov=shop", "--cov-context=test", "--cov-branch",
        "--cov-report=", "tests")
    result = json.loads(observatory("ingest", "coverage", str(repo / ".coverage"),
                                    "--project", "shop", "--commit", commit, "--db", str(db),
                                    "--json").stdout)
    assert result["ok"], result
    data = coverage.CoverageData(basename=str(repo / ".coverage"))
    data.read()
    cart = next(f for f in data.measured_files() if f.endswith("cart.py"))
    cov = coverage.Coverage(data_file=str(repo / ".coverage"))
    cov.load()
    _, statements, _, missing, _ = cov.analysis2(cart)
    result["truth"] = {"statements": set(statements), "covered": set(statements) - set(missing),
                       "contexts": {n: {c.rsplit("|", 1)[0] for c in ctx if c}
                                    for n, ctx in data.contexts_by_lineno(cart).items()}}
    return result


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("projects")
    repo = write_tree(root / "shop", {
        "shop/__init__.py": "", "shop/cart.py": CART, "tests/__init__.py": "",
        "tests/test_cart.py": FLAKY_TESTS, "echo_server.py": ECHO_SERVER,
        "pyproject.toml": '[project]\nname = "shop"\nversion = "0"\n',
        ".mcp.json": json.dumps({"mcpServers": {"echo": {
            "command": sys.executable, "args": ["echo_server.py"], "env": {"SUFFIX": "!"}}}})})
    run(repo, "git", "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "shop")
    c1 = git(repo, "rev-parse", "HEAD")
    db = root / "p.duckdb"
    for flip in ("1", "0"):  # the same commit sees test_discount fail, then pass: flaky
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--observatory-db", str(db), "--observatory-project", "shop",
                        "--observatory-commit", c1, "tests"], cwd=repo, timeout=120,
                       env={**os.environ, "FLIP": flip}, capture_output=True)
    first = measure(repo, db, c1)
    # The second commit adds an untested function and drops the test of the refusal.
    (repo / "shop" / "cart.py").write_text(CART + NEW_CODE)
    tests = FLAKY_TESTS.split("def test_refuse():")[0] + "class TestCart:" + \
        FLAKY_TESTS.split("class TestCart:")[1]
    (repo / "tests" / "test_cart.py").write_text(tests)
    git(repo, "commit", "-qam", "gift wrap; drop the refusal test")
    c2 = git(repo, "rev-parse", "HEAD")
    second = measure(repo, db, c2)
    r = observatory("projects", "scan", str(root), "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return {"db": db, "repo": repo, "c1": c1, "c2": c2, "first": first, "second": second}


def model(store) -> ProjectsModel:
    m = ProjectsModel(store=store)
    m.project = "shop"
    return m


def test_overview_links_runs_coverage_and_the_scanned_folder(shop):
    with Store(shop["db"], read_only=True) as s:
        m = model(s)
        row = m.overview().set_index("project").loc["shop"]
        commits = m.commits()
    assert row["path"] == str(shop["repo"]) and row["kind"] == "python"
    assert row["runs"] == 2 and row["coverage_reports"] == 2 and row["mcp"] == 1
    assert row["flaky"] == 1  # test_discount: passed and failed on one commit
    assert row["coverage"] == shop["second"]["percent"]
    assert row["coverage_before"] == shop["first"]["percent"]
    by_sha = commits.set_index("sha")
    assert list(commits["sha"]) == [shop["c2"], shop["c1"]]  # git log, newest first
    assert by_sha.loc[shop["c1"], "runs"] == 2 and by_sha.loc[shop["c1"], "failed"] == 1
    assert by_sha.loc[shop["c2"], "coverage"] == shop["second"]["percent"]


def test_sessions_sharing_frames_make_the_overview_once(shop):
    """A served page's model is built on frames shared with the other sessions on the same
    data version (DashboardShell.frames): the second page load reads no project's test
    history again, and a new version reads it anew. A notebook's model (no cache given)
    reads the store each time."""
    from workbench.models.cache import FrameCache, Frames

    frames = Frames(64)

    def shared(number: int) -> FrameCache:
        cache = FrameCache()
        cache.share(frames, ("tests", number), datetime.now(UTC))
        return cache

    with Store(shop["db"], read_only=True) as s:
        asked: list[str] = []
        query = s.query

        def counting(name, **params):
            asked.append(name)
            return query(name, **params)

        s.query = counting
        first = ProjectsModel(store=s, cache=shared(1))
        made = asked.count("test_run_stats")
        second = ProjectsModel(store=s, cache=shared(1))
        again = asked.count("test_run_stats")
        ProjectsModel(store=s, cache=shared(2))
        newer = asked.count("test_run_stats")
        ProjectsModel(store=s)
        ProjectsModel(store=s)
        notebook = asked.count("test_run_stats") - newer
    assert made >= 1 and again == made  # (one per project; none the second time)
    assert newer == 2 * made and notebook == 2 * made
    assert first.project == second.project == "shop"
    assert first.overview().equals(second.overview())


def test_the_overview_opens_the_project_clicked(shop):
    """The overview's rows are HTML (views/paged_table.py): a click on a row is a message
    naming the project; one it does not show opens nothing."""
    from workbench.views.projects import ProjectsOverview

    with Store(shop["db"], read_only=True) as s:
        m = ProjectsModel(store=s, project="(none)")
        view = ProjectsOverview(model=m)
        opened: list[bool] = []
        view.param.watch(lambda e: opened.append(True), "opened")
        assert 'data-open="shop"' in view._table.html and "python" in view._table.html
        view._table._handle_msg({"open": "not-a-project"})
        assert m.project == "(none)" and opened == []
        view._table._handle_msg({"open": "shop"})
        assert m.project == "shop" and opened == [True]
        assert 'data-open="shop" class="sel"' in view._table.html


def test_coverage_map_levels_add_up_to_the_report(shop):
    with Store(shop["db"], read_only=True) as s:
        m = model(s)
        top = m.level()
        m.folder = "shop"
        inside = m.level()
    # The only top folder ("shop") is skipped over: its files are the first level.
    assert list(top["path"]) == ["shop/cart.py", "shop/__init__.py"] or \
        set(top["path"]) == {"shop/cart.py"}
    assert top.equals(inside)
    truth = shop["second"]["truth"]
    cart = top.set_index("path").loc["shop/cart.py"]
    assert (cart["statements"], cart["covered"]) == (len(truth["statements"]),
                                                     len(truth["covered"]))
    assert top["statements"].sum() == shop["second"]["statements"]


def test_treemap_layout_fills_the_map_and_keeps_many_files_readable():
    files = pd.DataFrame({"path": [f"pkg{i % 50}/mod{i}.py" for i in range(10_000)],
                          "statements": [(i * 37) % 400 + 1 for i in range(10_000)],
                          "covered": [(i * 37) % 400 // 2 for i in range(10_000)]})
    top = tree.children(files)
    assert len(top) == 50 and top["files"].sum() == 10_000
    assert top["statements"].sum() == files["statements"].sum()
    rects = tree.layout(top, 100, 60)
    assert abs((rects["dx"] * rects["dy"]).sum() - 6000) < 1e-6
    big = rects.iloc[0]
    assert abs(big["dx"] * big["dy"] / 6000 - big["statements"] / top["statements"].sum()) \
        < 1e-9
    flat = tree.children(files.assign(path=[f"m{i}.py" for i in range(10_000)]))
    capped = tree.layout(flat, 100, 60)
    assert len(capped) == tree.MAX_TILES
    more = capped[capped["kind"] == "more"].iloc[0]
    assert more["files"] == 10_000 - tree.MAX_TILES + 1
    assert capped["statements"].sum() == files["statements"].sum()


def test_the_second_commit_left_uncovered_what_coveragepy_says(shop):
    with Store(shop["db"], read_only=True) as s:
        result = model(s).diff()
    a, b = shop["first"]["truth"], shop["second"]["truth"]
    lost = (a["covered"] & b["statements"]) - b["covered"]
    assert lost and line_of("refused") in lost
    cart = next(f for f in result["files"] if f["path"] == "shop/cart.py")
    got = {n for first, last in cart["newly_uncovered"] for n in range(first, last + 1)}
    assert got == lost
    assert result["base"]["commit"] == shop["c1"] and result["head"]["commit"] == shop["c2"]
    assert result["delta"] == round(shop["second"]["percent"] - shop["first"]["percent"], 2)


def reckon(old: dict[str, tuple[set, set]], new: dict[str, tuple[set, set]]) -> list[dict]:
    """The comparison's file rows the plain way, from (statements, covered) per path."""
    def percent(st: set, cov: set) -> float | None:
        return round(100.0 * len(cov & st) / len(st), 2) if st else None

    rows = []
    for path in old.keys() | new.keys():
        a, b = old.get(path), new.get(path)
        row = {"path": path, "change": "added" if a is None else "removed" if b is None
               else "changed", "base_percent": None, "head_percent": None,
               "base_statements": 0, "head_statements": 0, "newly_uncovered": [],
               "newly_uncovered_lines": 0}
        if a is not None:
            row.update(base_percent=percent(*a), base_statements=len(a[0]))
        if b is not None:
            row.update(head_percent=percent(*b), head_statements=len(b[0]))
        if a is not None and b is not None:
            lost = sorted(((a[1] & a[0]) & b[0]) - (b[1] & b[0]))
            runs: list[list[int]] = []
            for n in lost:
                if runs and runs[-1][1] == n - 1:
                    runs[-1][1] = n
                else:
                    runs.append([n, n])
            row.update(newly_uncovered=runs, newly_uncovered_lines=len(lost))
            if not lost and (row["base_percent"], row["base_statements"]) == \
                    (row["head_percent"], row["head_statements"]):
                continue
        rows.append(row)
    delta = {id(r): r["head_percent"] - r["base_percent"]
             if None not in (r["base_percent"], r["head_percent"]) else 0.0 for r in rows}
    return sorted(rows, key=lambda r: (-r["newly_uncovered_lines"], delta[id(r)], r["path"]))


def test_comparing_two_reports_file_by_file_agrees_with_a_plain_reckoning(shop, tmp_path):
    """coverage.py's own lines of cart.py at both commits, spread over files that were
    added, removed, left alone, lost lines, gained statements or have none (percent None),
    and 400 random files (line 0, far lines, touching ranges): the comparison is what sets
    of lines computed here say, row for row and in order."""
    a, b = (shop[k]["truth"] for k in ("first", "second"))
    a, b = (a["statements"], a["covered"]), (b["statements"], b["covered"])
    nothing: tuple[set, set] = (set(), set())
    old = {"shop/cart.py": a, "shop/same.py": a, "shop/lost.py": a, "shop/grown.py": a,
           "shop/removed.py": a, "shop/blank.py": nothing, "shop/filled.py": nothing,
           "shop/emptied.py": a}
    new = {"shop/cart.py": b, "shop/same.py": a, "shop/lost.py": (a[0], b[1] & a[0]),
           "shop/grown.py": (b[0], a[1]), "shop/added.py": b, "shop/blank.py": nothing,
           "shop/filled.py": b, "shop/emptied.py": nothing}
    rng = random.Random(26)
    for i in range(400):
        lines = set(rng.sample(range(0, 3000 if i % 50 else 100_000), rng.randint(0, 300)))
        cov = {n for n in lines if rng.random() < 0.7}
        old[f"gen/m{i:03d}.py"] = (lines, cov)
        kind = i % 5  # the same, a few lines lost, a line moved, other lines, gone
        if kind == 0:
            new[f"gen/m{i:03d}.py"] = (lines, cov)
        elif kind == 1:
            new[f"gen/m{i:03d}.py"] = (lines, {n for n in cov if rng.random() < 0.9})
        elif kind == 2:
            new[f"gen/m{i:03d}.py"] = (lines | {max(lines, default=0) + 1}, cov)
        elif kind == 3:
            more = set(rng.sample(range(0, 3000), 200))
            new[f"gen/m{i:03d}.py"] = (lines | more, {n for n in lines | more
                                                     if rng.random() < 0.7})
    with Store(tmp_path / "diff.duckdb") as s:
        for rid, files in (("base", old), ("head", new)):
            rep = CoverageReport("coverage.py")
            for path, (st, cov) in files.items():
                rep.add(FileCoverage(path, statements=set(st), covered=set(cov)))
            store_report(s, rep, rid, {"project": "shop", "commit": rid}, "test")
        s.settle()
        result = diff_reports(s, "base", "head")
    expected = reckon(old, new)
    assert result["files"] == expected
    assert [list(r) for r in result["files"]] == [list(r) for r in expected]  # key order
    assert result["newly_uncovered_lines"] == sum(r["newly_uncovered_lines"] for r in expected)
    by_path = {r["path"]: r for r in result["files"]}
    assert {"shop/same.py", "shop/blank.py"}.isdisjoint(by_path)
    assert by_path["shop/added.py"]["change"] == "added"
    assert by_path["shop/removed.py"]["change"] == "removed"
    assert by_path["shop/filled.py"]["base_percent"] is None
    assert by_path["shop/emptied.py"]["head_percent"] is None
    assert by_path["shop/grown.py"]["head_statements"] > by_path["shop/grown.py"][
        "base_statements"]
    assert line_of("refused") in {n for first, last in by_path["shop/cart.py"][
        "newly_uncovered"] for n in range(first, last + 1)}
    assert by_path["shop/lost.py"]["newly_uncovered_lines"] > 0


def test_patch_coverage_of_the_change_through_the_api(shop):
    served = Served(shop["db"], extra_args=("--no-demo",),
                    env=ROLE_ENV)
    try:
        viewer = role_client(served, "viewer")
        patch = viewer.get("/api/coverage/patch", params={
            "project": "shop", "base": shop["c1"], "head": shop["c2"]}).json()
        new_lines = set(range(len(CART.splitlines()) + 1,
                              len((CART + NEW_CODE).splitlines()) + 1))
        truth = shop["second"]["truth"]
        expected = new_lines & truth["statements"]
        assert patch["ok"] and patch["statements"] == len(expected) > 0
        assert patch["covered"] == len(expected & truth["covered"])
        bad = viewer.get("/api/coverage/patch", params={"project": "shop",
                                                        "base": "no-such-rev"})
        assert bad.status_code == 400 and "no-such-rev" in bad.json()["error"]
        assert viewer.get("/api/coverage/patch", params={"project": "shop"}).status_code == 400
        assert httpx.get(f"{served.url}/api/coverage/patch", params={
            "project": "shop", "base": shop["c1"]}).status_code == 401  # no token
        level = viewer.get("/api/coverage/map", params={"project": "shop"}).json()["items"]
        assert {i["path"] for i in level} >= {"shop/cart.py"}
        risk = viewer.get("/api/coverage/at-risk", params={"project": "shop"}).json()
        assert any(f["path"] == "shop/cart.py" for f in risk["files"])
        viewer.close()
    finally:
        served.stop()


def test_coverage_at_risk_is_what_only_the_flaky_test_runs(shop):
    with Store(shop["db"], read_only=True) as s:
        risk = model(s).at_risk()
    contexts = shop["second"]["truth"]["contexts"]
    flaky = "tests/test_cart.py::test_discount"
    expected = {n for n, tests in contexts.items() if tests == {flaky}}
    assert line_of("discounted") in expected
    row = risk.set_index("path").loc["shop/cart.py"]
    got = {n for first, last in row["ranges"] for n in range(first, last + 1)}
    assert got == expected and row["tests"] == [flaky]


def test_file_view_shows_the_commit_source_and_who_ran_each_line(shop):
    with Store(shop["db"], read_only=True) as s:
        m = model(s)
        m.path = "shop/cart.py"
        frame, where = m.file_view()
        m.line = line_of("cart[item] =")
        tests = m.line_tests()
    assert where.startswith(f"git show {shop['c2'][:12]}:shop/cart.py")
    lines = frame.set_index("line")
    assert lines.loc[line_of("dead"), "status"] == "miss"
    assert lines.loc[line_of("discounted"), "status"] == "hit"
    assert lines.loc[line_of("def total"), "code"] == "def total(prices, discount=0):"
    truth = shop["second"]["truth"]["contexts"]
    assert set(tests["test"]) == truth[line_of("cart[item] =")]
    assert set(tests["last_outcome"]) == {"passed"}


def test_a_projects_mcp_server_needs_an_approval_and_every_call_is_audited(shop):
    served = Served(shop["db"], extra_args=("--no-demo",),
                    env=ROLE_ENV)
    base = "/api/projects/shop/mcp"
    try:
        viewer, operator = role_client(served, "viewer"), role_client(served, "operator")
        listed = viewer.get(base).json()["servers"]
        assert [(s["name"], s["approved"], s["env"]) for s in listed] == [
            ("echo", False, ["SUFFIX"])]  # the variable's name, never its value
        assert viewer.post(f"{base}/echo/approve").status_code == 403
        early = operator.post(f"{base}/echo/tools")
        assert early.status_code == 403 and "not approved" in early.json()["error"]
        assert operator.post(f"{base}/echo/approve").json()["ok"]
        tools = operator.post(f"{base}/echo/tools").json()["tools"]
        assert [t["name"] for t in tools] == ["shout"]
        called = operator.post(f"{base}/echo/call", json={"tool": "shout",
                                                          "arguments": {"text": "hi"}}).json()
        assert called["text"] == "HI!" and not called["is_error"]
        unknown = operator.post(f"{base}/echo/call", json={"tool": "nope"}).json()
        assert unknown["is_error"]
        assert operator.post(f"{base}/echo/call", content=b"{").status_code == 400
        assert operator.post(f"{base}/nope/tools").status_code == 404
        # A server over streamable HTTP: this workbench's own /mcp, with a token header.
        spec = json.loads((shop["repo"] / ".mcp.json").read_text())
        spec["mcpServers"]["self"] = {"type": "http", "url": f"{served.url}/mcp",
                                      "headers": {"Authorization": f"Bearer {TOKENS['viewer']}"}}
        (shop["repo"] / ".mcp.json").write_text(json.dumps(spec))
        assert operator.post(f"{base}/self/approve").json()["ok"]
        remote = operator.post(f"{base}/self/tools").json()["tools"]
        assert "covering_tests" in {t["name"] for t in remote}
        health = operator.post(f"{base}/self/call", json={
            "tool": "project_health", "arguments": {"project": "shop"}}).json()
        assert health["structured"]["coverage"]["percent"] == shop["second"]["percent"]
        # A changed declaration is another program: approve it again.
        spec = json.loads((shop["repo"] / ".mcp.json").read_text())
        spec["mcpServers"]["echo"]["env"]["SUFFIX"] = "?"
        (shop["repo"] / ".mcp.json").write_text(json.dumps(spec))
        assert operator.post(f"{base}/echo/tools").status_code == 403
        with role_client(served, "admin") as admin:
            audit = admin.get("/api/audit", params={"limit": 50}).json()
        actions = [(e["action"], e["outcome"]) for e in audit["audit"]
                   if e["action"].startswith("mcp") or "/mcp/" in e["action"]]
        assert ("mcp-approve", "ok") in actions and ("mcp-call", "ok") in actions
        assert ("mcp-call", "tool error") in actions
        # the viewer's approval, refused by the route's role
        assert any(a.endswith("{action:approve}") and o.startswith("refused")
                   for a, o in actions)
        viewer.close()
        operator.close()
    finally:
        spec = json.loads((shop["repo"] / ".mcp.json").read_text())
        spec["mcpServers"]["echo"]["env"]["SUFFIX"] = "!"
        spec["mcpServers"].pop("self", None)
        (shop["repo"] / ".mcp.json").write_text(json.dumps(spec))
        served.stop()


def test_a_person_goes_from_the_overview_to_the_tests_of_a_line(shop, chromium, output_dir):
    """Headless Chromium: the projects overview, the project, its coverage map (a click on
    the treemap opens the file), the file with its source, and the tests of one line."""
    from playwright.sync_api import sync_playwright

    served = Served(shop["db"], extra_args=("--no-demo",), ready_path="/projects")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            # The project tab renders git history, coverage and the MCP declarations: 18 s
            # for the whole walk alone, and one step took over 30 s beside the suite's
            # chDB tests on 2 cores (CI, 2026-12-07). A step may take a minute there.
            page.set_default_timeout(60_000)
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
                (served.url, "data:", "blob:")) else None)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(served.url + "/projects")
            page.get_by_role("gridcell", name="shop", exact=True).first.click()
            page.locator(".tabulator-cell", has_text=shop["c2"][:10]).first.wait_for()
            page.get_by_text("MCP servers the project declares").wait_for()
            page.locator(".tabulator-cell", has_text="echo").first.wait_for()
            page.screenshot(path=str(output_dir / "project.png"), full_page=True)
            page.locator(".bk-tab", has_text="Coverage map").click()
            page.get_by_text("tests with contexts").wait_for()
            canvas = page.locator("canvas").filter(visible=True)
            box = max((c.bounding_box() for c in canvas.all()), key=lambda b: b["height"])
            assert box["height"] > 400  # the treemap, not a toolbar icon
            page.screenshot(path=str(output_dir / "coverage-map.png"), full_page=True)
            # The tab's text arrives before Bokeh has drawn the treemap and wired its tap
            # tool; on a loaded machine a first click can land on an empty canvas, so a
            # person would click again. Up to five tries, each waiting 6 s for the file.
            opened = page.get_by_text(f"git show {shop['c2'][:12]}:shop/cart.py")
            for _ in range(5):
                page.mouse.click(box["x"] + box["width"] / 3, box["y"] + box["height"] / 2)
                try:
                    opened.wait_for(timeout=6_000)
                    break
                except Exception:  # playwright's TimeoutError: try the click again
                    continue
            opened.wait_for()
            page.locator(".tabulator-cell", has_text="subtotal -= subtotal").first.click()
            page.get_by_text(f"1 test ran line {line_of('discounted')}").wait_for()
            page.locator(".tabulator-cell", has_text="tests/test_cart.py::test_discount") \
                .first.wait_for()
            page.screenshot(path=str(output_dir / "file-and-line.png"), full_page=True)
            page.locator(".bk-tab", has_text="Changes").click()
            page.get_by_text("1 line newly uncovered").wait_for()
            page.locator(".tabulator-cell", has_text="shop/cart.py").first.wait_for()
            page.screenshot(path=str(output_dir / "changes.png"), full_page=True)
            browser.close()
        assert outside == [] and errors == []
    finally:
        served.stop()
