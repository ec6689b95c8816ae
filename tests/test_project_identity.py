"""A project has one identity (issue 21, item 6) and starting a running agent is a no-op
(item 8), with real producers: git repositories made here, the pytest plugin and
``observatory ingest`` reading branch and commit from git, the CLI on a file and through a
served workbench, the API's roles and audit log, and the projects page in Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from workbench.store import Store

from .conftest import ROLE_ENV, TOKENS, Served, role_client, wait_for, write_tree
from .test_cli import observatory

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

GIT = ("git", "-c", "user.name=t", "-c", "user.email=t@example.com")


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def project(path: Path, remote: str | None = None, commits: int = 2) -> Path:
    """A src-layout python project in git (``commits`` commits on ``main``)."""
    write_tree(path, {
        "pyproject.toml": '[project]\nname = "lite"\nversion = "0"\n\n'
                          '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
        "src/lite/__init__.py": "def double(x):\n    return 2 * x\n",
        "tests/test_double.py": "from lite import double\n\n\ndef test_double():\n"
                                "    assert double(2) == 4\n",
        ".gitignore": "__pycache__/\n"})
    git(path, "init", "-q", "-b", "main")
    for i in range(commits):
        (path / "CHANGES").write_text(f"change {i}\n")
        git(path, "add", ".")
        git(path, "commit", "-qm", f"change {i}")
    if remote:
        git(path, "remote", "add", "origin", remote)
    return path


def scanned(db: Path) -> dict[str, dict]:
    with Store(db, read_only=True) as s:
        rows = s.query("scanned_projects").to_dict(orient="records")
    return {r["name"]: r for r in rows}


def pytest_in(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], cwd=repo, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in __import__("os").environ.items()
                               if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))})


def test_runs_under_another_name_find_their_folder(tmp_path):
    """The issue's case: a folder scanned as ``attrs-24.2.0``, runs arriving as
    ``--project attrs``. The plugin reads the branch and commit from git; the runs came
    from the folder, so the folder goes by ``attrs``: the project page has its git history
    and source."""
    from workbench.coverage import lines
    from workbench.models.projects import ProjectsModel

    repo = project(tmp_path / "src" / "attrs-24.2.0")
    db = tmp_path / "w.duckdb"
    first = observatory("projects", "scan", str(tmp_path / "src"), "--db", str(db))
    assert first.returncode == 0 and first.stdout.startswith("attrs-24.2.0 "), first.stderr
    r = pytest_in(repo, f"--observatory-db={db}", "--observatory-project", "attrs")
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    head = git(repo, "rev-parse", "HEAD").strip()
    with Store(db, read_only=True) as s:
        run = s.sql("SELECT project, commit_sha, branch, source FROM runs").iloc[0]
    assert (run.project, run.commit_sha, run.branch) == ("attrs", head, "main")
    assert scanned(db)["attrs"]["path"] == str(repo)
    assert scanned(db)["attrs"]["named_by"] == "root"
    listed = observatory("projects", "list", "--db", str(db))
    assert re.search(r"^attrs +python +\S+attrs-24\.2\.0  \(the name of the runs that came "
                     r"from this folder\)$", listed.stdout, re.M), listed.stdout
    again = observatory("projects", "scan", str(tmp_path / "src"), "--db", str(db))
    assert again.stdout.startswith("attrs "), again.stdout  # the scan prints the name
    with Store(db, read_only=True) as s:
        m = ProjectsModel(store=s, project="attrs")
        assert m.info()["path"] == str(repo)
        commits = m.commits()
        assert commits["subject"].tolist() == ["change 1", "change 0"]
        assert commits["runs"].tolist() == [1, 0]  # the run's commit, read from git
        code, where = lines.source(s, "attrs", "src/lite/__init__.py", head)
        assert code == ["def double(x):", "    return 2 * x"] and where.startswith("git show")
        names = s.query("project_overview")["project"].tolist()
    assert "attrs" in names and "attrs-24.2.0" not in names


def test_ingest_reads_branch_and_commit_from_git(tmp_path):
    repo = project(tmp_path / "svc")
    git(repo, "checkout", "-q", "-b", "feature")
    db = tmp_path / "i.duckdb"

    def report(name: str) -> str:  # (the same bytes twice would be one stored run)
        path = tmp_path / f"{name}.xml"
        path.write_text(f'<testsuite name="{name}"><testcase classname="c" name="t"/>'
                        '</testsuite>')
        return str(path)

    r = observatory("ingest", "tests", report("a"), "--project", "svc", "--db", str(db),
                    cwd=repo)
    assert r.returncode == 0, r.stderr
    given = observatory("ingest", "tests", report("b"), "--project", "svc2", "--commit",
                        "abc", "--branch", "rel", "--db", str(db), cwd=repo)
    assert given.returncode == 0, given.stderr
    ci = observatory("ingest", "tests", report("c"), "--project", "svc3", "--db", str(db),
                     cwd=repo, env={"GITLAB_CI": "true", "CI_COMMIT_SHA": "f00d",
                                    "CI_COMMIT_REF_NAME": "ci-branch"})
    assert ci.returncode == 0, ci.stderr
    outside = observatory("ingest", "tests", report("d"), "--project", "svc4", "--db",
                          str(db), cwd=tmp_path)
    assert outside.returncode == 0, outside.stderr
    with Store(db, read_only=True) as s:
        got = {p: (c, b) for p, c, b in s.sql(
            "SELECT project, coalesce(commit_sha, '-'), coalesce(branch, '-') "
            "FROM runs").itertuples(index=False)}
    assert got == {"svc": (git(repo, "rev-parse", "HEAD").strip(), "feature"),
                   "svc2": ("abc", "rel"), "svc3": ("f00d", "ci-branch"),
                   "svc4": ("-", "-")}


def test_git_is_asked_once_and_each_caller_keeps_its_own_answer(tmp_path, monkeypatch):
    """A CI commit other than the checkout's drops the checkout's branch from that run's
    metadata, and only from that run's: a later run from the same folder has it."""
    from workbench.ingest import ci_env

    for detect_var, _ in ci_env._PROVIDERS.values():  # (this test's CI is not the one read)
        monkeypatch.delenv(detect_var, raising=False)
    repo = project(tmp_path / "once")
    git(repo, "checkout", "-q", "-b", "topic")
    head = git(repo, "rev-parse", "HEAD").strip()
    ci_env.ask_git_early(repo)  # (as `ingest tests` does before it reads its reports)
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_COMMIT_SHA", "f00d")
    ci = ci_env.detect(folder=repo)
    assert ci["commit"] == "f00d" and "branch" not in ci
    monkeypatch.delenv("GITLAB_CI")
    assert ci_env.detect(folder=repo) == {"commit": head, "branch": "topic"}


def test_a_ci_name_finds_the_folder_of_its_remote(store, tmp_path):
    """CI names a project by its repository's path (GITHUB_REPOSITORY): the scanned
    folder whose origin is that repository goes by it. A user and password in the remote's
    URL are never stored."""
    from workbench.intake import LocalIntake
    from workbench.projects.scan import scan, store_projects

    project(tmp_path / "work" / "app", remote="https://me:s3cret@github.com/team/app.git")
    project(tmp_path / "work" / "other", remote="git@github.com:team/other.git")
    store_projects(store, scan([tmp_path / "work"])[0])
    report = b'<testsuite name="s"><testcase classname="c" name="t"/></testsuite>'
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "team/app", "GITHUB_SHA": "ab12"}
    LocalIntake(store, ci_env=env).report(report, "r.xml", {})
    rows = store.query("scanned_projects").set_index("path")
    app = rows.loc[str(tmp_path / "work" / "app")]
    assert (app["name"], app["named_by"]) == ("team/app", "remote")
    assert app["remote"] == "https://github.com/team/app.git"
    other = rows.loc[str(tmp_path / "work" / "other")]
    assert (other["name"], other["named_by"]) == ("other", "folder")  # no runs of its own
    assert "s3cret" not in store.sql("SELECT * FROM projects").to_json(date_format="iso")


def test_names_a_person_gives(tmp_path):
    """``scan --name``, ``rename``, ``link``, ``remove``, ``list`` on the file: a given
    name survives rescans, names one folder, and never renames runs."""
    one = project(tmp_path / "a" / "checkout-1")
    two = project(tmp_path / "b" / "checkout-2", commits=1)
    db = tmp_path / "n.duckdb"
    both = observatory("projects", "scan", str(tmp_path), "--name", "shop", "--db", str(db))
    assert both.returncode == 2 and "a name names one project; the scan found 2" in both.stderr
    named = observatory("projects", "scan", str(one), "--name", "shop", "--db", str(db))
    assert named.returncode == 0 and named.stdout.startswith("shop "), named.stderr
    assert observatory("projects", "scan", str(tmp_path), "--db", str(db)).returncode == 0
    assert {n: r["path"] for n, r in scanned(db).items()} == {"shop": str(one),
                                                            "checkout-2": str(two)}
    assert scanned(db)["shop"]["named_by"] == "given"
    report = tmp_path / "r.xml"
    report.write_text('<testsuite name="s"><testcase classname="c" name="t"/></testsuite>')
    observatory("ingest", "tests", str(report), "--project", "shop", "--db", str(db))
    r = observatory("projects", "rename", "shop", "shop-api", "--db", str(db))
    assert r.returncode == 0 and r.stdout.strip() == f"shop is now shop-api: {one}", r.stderr
    # the name moves to the other folder: a name names one folder
    r = observatory("projects", "link", "shop-api", str(two), "--db", str(db))
    assert r.returncode == 0 and r.stdout.strip() == f"shop-api: {two}", r.stderr
    assert {n: r["path"] for n, r in scanned(db).items()} == {"shop-api": str(two),
                                                            "checkout-1": str(one)}
    bad = observatory("projects", "link", "x", str(tmp_path), "--db", str(db))
    assert bad.returncode == 1 and "is not a git repository" in bad.stderr
    gone = observatory("projects", "remove", "shop-api", "--db", str(db))
    assert gone.returncode == 0 and "(its runs stay)" in gone.stdout
    again = observatory("projects", "remove", "shop-api", "--db", str(db))
    assert again.returncode == 1 and "no folder known for project 'shop-api'" in again.stderr
    listed = [json.loads(x) for x in observatory("projects", "list", "--db", str(db),
                                                 "--json").stdout.splitlines()]
    assert [(p["name"], p["named_by"]) for p in listed] == [("checkout-1", "folder")]
    with Store(db, read_only=True) as s:
        assert s.sql("SELECT project FROM runs")["project"].tolist() == ["shop"]
        audit = s.sql("SELECT action, target, outcome FROM audit ORDER BY ts")
    assert [tuple(x) for x in audit.values] == [
        ("project-rename", "shop", "ok"), ("project-link", "shop-api", "ok"),
        ("project-remove", "shop-api", "ok")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("ident")
    repo = project(root / "src" / "lite-0.1")
    other = project(root / "src" / "lite-fork", commits=1)
    db = root / "w.duckdb"
    assert observatory("projects", "scan", str(root / "src"), "--db", str(db)).returncode == 0
    s = Served(db, env=ROLE_ENV, extra_args=("--no-demo",), ready_path="/projects")
    yield {"served": s, "repo": repo, "other": other, "db": db}
    s.stop()


def test_identity_through_the_api(served):
    s = served["served"]
    with role_client(s, "viewer") as viewer:
        assert viewer.put("/api/projects/lite-0.1", json={"name": "x"}).status_code == 403
        assert viewer.delete("/api/projects/lite-0.1").status_code == 403
        assert viewer.post("/api/projects/link", json={"name": "x", "path": "/"}
                           ).status_code == 403
    with role_client(s, "operator") as op:
        r = op.put("/api/projects/lite-0.1", json={"name": "lite"})
        assert r.status_code == 200 and r.json()["project"]["name"] == "lite", r.text
        assert op.put("/api/projects/nope", json={"name": "y"}).status_code == 404
        assert op.put("/api/projects/lite", json={}).status_code == 400
        bad = op.post("/api/projects/link", json={"name": "z", "path": "relative"})
        assert bad.status_code == 400 and "absolute" in bad.json()["error"]
        r = op.post("/api/projects/link", json={"name": "fork",
                                                "path": str(served["other"])})
        assert r.status_code == 200 and r.json()["project"]["named_by"] == "given"
        names = {p["name"]: p["path"] for p in op.get("/api/projects").json()["projects"]}
        assert names == {"lite": str(served["repo"]), "fork": str(served["other"])}
        assert op.delete("/api/projects/fork").status_code == 200
    r = observatory("projects", "rename", "lite", "lite-core", "--url", s.url,
                    env={"OBSERVATORY_TOKEN": TOKENS["operator"]})
    assert r.returncode == 0 and "lite is now lite-core" in r.stdout, r.stderr
    r = observatory("projects", "scan", str(served["other"]), "--name", "fork", "--url",
                    s.url, env={"OBSERVATORY_TOKEN": TOKENS["operator"]})
    assert r.returncode == 0 and r.stdout.startswith("fork "), r.stdout + r.stderr
    with role_client(s, "admin") as admin:
        audit = admin.get("/api/audit", params={"limit": 500}).json()["audit"]
    done = {(a["action"], a["target"]) for a in audit if a["outcome"] == "ok"}
    assert {("project-rename", "lite-0.1"), ("project-link", "fork"),
            ("project-remove", "fork"), ("project-rename", "lite")} <= done
    refused = {a["action"] for a in audit if a["outcome"].startswith("refused")}
    assert {"PUT /api/projects/{project}", "DELETE /api/projects/{project}",
            "POST /api/projects/link"} <= refused


def test_a_person_renames_and_links_on_the_projects_page(served, chromium, output_dir):
    """Headless Chromium: open a project known only from its runs, link its folder, and
    rename it — the page then shows its commits."""
    from playwright.sync_api import sync_playwright

    s = served["served"]
    report = b'<testsuite name="s"><testcase classname="c" name="t"/></testsuite>'
    with role_client(s, "ingest") as ingest:
        assert ingest.post("/api/tests/reports", params={"project": "from-ci"},
                           content=report).status_code == 200
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(s.url + "/login?next=/projects")  # an operator, by the token's role
        page.locator("input[name=username]").fill("ops")
        page.locator("input[name=password]").fill(TOKENS["operator"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r".*/projects.*"))
        page.get_by_role("gridcell", name="from-ci", exact=True).first.click()
        page.get_by_text("no folder known").wait_for()
        page.screenshot(path=str(output_dir / "no-folder.png"), full_page=True)
        page.get_by_label("Folder (a git repository)").fill(str(served["repo"]))
        page.get_by_label("Folder (a git repository)").press("Enter")
        page.get_by_role("button", name="Link folder").click()
        page.get_by_text(f"is {served['repo']}").wait_for()
        page.locator(".tabulator-cell", has_text="change 1").first.wait_for()
        page.get_by_label("Name", exact=True).fill("lite-from-ci")
        page.get_by_label("Name", exact=True).press("Enter")
        page.get_by_role("button", name="Rename").click()
        page.get_by_text("from-ci is now lite-from-ci").wait_for()
        page.get_by_text("named by a person").wait_for()
        page.locator(".tabulator-cell", has_text="change 1").first.wait_for()
        wait_for(lambda: page.locator("select").first.input_value() == "lite-from-ci", 15,
                 "the project chosen in the sidebar")
        page.screenshot(path=str(output_dir / "renamed.png"), full_page=True)
        browser.close()
    assert errors == []
    with role_client(s, "viewer") as viewer:
        names = {p["name"] for p in viewer.get("/api/projects").json()["projects"]}
    assert "lite-from-ci" in names


# -- item 8: starting a running agent -----------------------------------------------------
def test_starting_a_running_agent_is_a_no_op_that_says_so(served):
    s = served["served"]
    env = {"OBSERVATORY_TOKEN": TOKENS["operator"]}
    with role_client(s, "operator") as op:
        agent = op.post("/api/agents", json={"name": "sleeper", "backend": "process",
                                              "command": "sleep 60"}).json()["agent"]
        first = op.post(f"/api/agents/{agent['id']}/start")
        assert first.status_code == 200 and "note" not in first.json()["agent"]
        wait_for(lambda: op.get(f"/api/agents/{agent['id']}").json()["agent"]["state"]
                 == "running", 30, "the agent running")
        again = op.post(f"/api/agents/{agent['id']}/start")
        assert again.status_code == 200, again.text
        assert again.json()["agent"]["note"] == (f"agent {agent['id']} is already running: "
                                                 "not started again")
        cli = observatory("agents", "start", agent["id"], "--url", s.url, env=env)
        assert cli.returncode == 0 and "running" in cli.stdout, cli.stderr
        # A worker the queue starts as soon as it is defined, with --start behind it.
        task = op.post("/api/tasks", json={"command": ["sleep", "30"],
                                           "labels": ["noop-test"]}).json()["task"]
        add = observatory("agents", "add", "worker", "--spec",
                          json.dumps({"labels": ["noop-test"]}), "--start", "--url", s.url,
                          env=env)
        # Whoever started it first (the queue, mostly: the case of the issue), it exits 0;
        # when the queue did, it says so.
        assert add.returncode == 0, add.stderr
        assert add.stderr == "" or re.fullmatch(
            r"observatory agents add: agent ag-\w+ is already (running|starting): not "
            r"started again\n",
            add.stderr), add.stderr
        wait_for(lambda: op.get(f"/api/tasks/{task['id']}").json()["task"]["state"]
                 == "running", 30, "the task on the worker")
        for a in op.get("/api/agents").json()["agents"]:
            if a["state"] == "running":
                op.post(f"/api/agents/{a['id']}/stop")
    with role_client(s, "admin") as admin:
        audit = admin.get("/api/audit", params={"limit": 500}).json()["audit"]
    starts = [a["outcome"] for a in audit if a["action"] == "start"
              and a["target"] == agent["id"]]
    assert sorted(starts) == ["ok", "ok: agent " + agent["id"] + " is already running: "
                              "not started again", "ok: agent " + agent["id"] + " is already "
                              "running: not started again"]
    assert not any(a["action"] == "start" and a["outcome"].startswith("failed")
                   for a in audit)
    assert httpx.get(s.url + "/api/agents").status_code == 401
