"""One workbench, reached from anywhere: the same database from every directory, the server
that holds it found by every client by itself, and clear words where something is wrong."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from workbench import config
from workbench.discovery import advert_path, find_server

from .conftest import ROOT, Served
from .test_cli import observatory

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

REPORT = (b'<testsuite name="s"><testcase classname="c" name="ok"/>'
          b'<testcase classname="c" name="bad"><failure message="boom"/></testcase></testsuite>')


@pytest.fixture
def report(tmp_path) -> Path:
    path = tmp_path / "elsewhere" / "r.xml"
    path.parent.mkdir()
    path.write_bytes(REPORT)
    return path


def test_default_database_is_the_same_from_every_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("OBSERVATORY_HOME", raising=False)
    monkeypatch.delenv("OBSERVATORY_DB", raising=False)
    first = config.db_path()
    monkeypatch.chdir(tmp_path)
    assert config.db_path() == first == ROOT / "data" / "observatory.duckdb"
    monkeypatch.setenv("OBSERVATORY_HOME", str(tmp_path / "home"))
    assert config.db_path() == tmp_path / "home" / "observatory.duckdb"
    # A relative --db is made absolute once, so messages name the real file.
    assert config.db_path("x.duckdb") == tmp_path / "x.duckdb"


def test_ingest_from_another_directory_finds_the_same_file_and_says_so(tmp_path, report):
    home = tmp_path / "home"
    env = {"OBSERVATORY_HOME": str(home)}
    env.pop("OBSERVATORY_DB", None)
    first = observatory("ingest", "tests", str(report), env={**env, "OBSERVATORY_DB": ""},
                        cwd=report.parent)
    assert first.returncode == 0, first.stderr
    db = home / "observatory.duckdb"
    assert f"created a new database {db}" in first.stderr
    assert f"1 new run(s) stored in {db}" in first.stderr
    assert not (report.parent / "data").exists()
    other = tmp_path / "other"
    other.mkdir()
    again = observatory("runs", "list", "--json", env={**env, "OBSERVATORY_DB": ""}, cwd=other)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stderr
    assert [json.loads(line)["tests"] for line in again.stdout.splitlines()] == [2]


@pytest.fixture
def held(tmp_path):
    """A real server holding a database with no demo data, on a random port."""
    db = tmp_path / "held.duckdb"
    s = Served(db, extra_args=("--no-demo",), ready_path="/api/health")
    yield s
    s.stop()


def test_every_client_finds_the_server_holding_the_file(held, report, tmp_path):
    env = {"OBSERVATORY_DB": str(held.db), "OBSERVATORY_URL": ""}
    # The server advertises its real URL (a random port, not 5006) beside the file.
    assert json.loads(advert_path(held.db).read_text())["url"] == held.url
    assert find_server(held.db) == held.url

    r = observatory("ingest", "tests", str(report), "--project", "shop", env=env,
                    cwd=report.parent)
    assert r.returncode == 0, r.stderr
    assert f"stored in {held.url}" in r.stderr

    project = tmp_path / "proj"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                        "--observatory", "--observatory-project", "proj"],
                       cwd=project, env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"in {held.url}" in p.stdout

    code = ("import workbench; s = workbench.connect(); "
            "print(type(s).__name__, sorted(s.query('projects').project))")
    nb = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                        text=True, env={**os.environ, **env}, timeout=60)
    assert nb.stdout.split() == ["RemoteStore", "['proj',", "'shop']"], nb.stderr


def test_a_held_file_without_an_advert_names_its_holder(held, report):
    """Opening the file directly while a server holds it names the real URL."""
    from workbench.store import Store, StoreLockedError

    with pytest.raises(StoreLockedError, match=held.url.replace(".", r"\.")):
        Store(held.db)


def test_stale_advert_is_ignored(tmp_path):
    db = tmp_path / "x.duckdb"
    advert_path(db).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 2**22 + 7,
                                           "db": str(db)}))
    assert find_server(db) is None


def test_runs_list_and_delete_through_the_server(held, report):
    env = {"OBSERVATORY_DB": str(held.db), "OBSERVATORY_URL": ""}
    observatory("ingest", "tests", str(report), env=env)
    runs = httpx.get(f"{held.url}/api/runs").json()["runs"]
    assert len(runs) == 1
    run_id = runs[0]["run_id"]
    bad = httpx.get(f"{held.url}/api/runs", params={"limit": "-1"})
    assert bad.status_code == 400 and "limit" in bad.json()["error"]
    gone = observatory("runs", "delete", run_id, "nope", env=env)
    assert gone.returncode == 1
    assert f"deleted run {run_id} from {held.url}" in gone.stdout
    assert "no run 'nope'" in gone.stderr
    assert httpx.get(f"{held.url}/api/runs").json()["runs"] == []
    assert httpx.delete(f"{held.url}/api/runs/{run_id}").status_code == 404


def test_runs_delete_on_the_file(tmp_path, report):
    db = tmp_path / "f.duckdb"
    observatory("ingest", "tests", str(report), "--db", str(db))
    listed = observatory("runs", "list", "--db", str(db), "--json")
    run_id = json.loads(listed.stdout.splitlines()[0])["run_id"]
    r = observatory("runs", "delete", run_id, "--db", str(db))
    assert r.returncode == 0, r.stderr
    from workbench.store import Store

    with Store(db) as s:
        assert s.sql("SELECT count(*) AS n FROM results").n[0] == 0
        assert s.sql("SELECT count(*) AS n FROM runs").n[0] == 0


class _NotTheAPI(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802  (http.server's naming)
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html><body>404: Not Found</body></html>")

    def log_message(self, *args):
        pass


def test_ingest_url_at_a_server_without_the_api_says_what_is_wrong(report):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotTheAPI)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        r = observatory("ingest", "tests", str(report), "--url", url)
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.returncode == 1
    assert "Expecting value" not in r.stderr
    assert "not serving the workbench API" in r.stderr
    assert "--plugins workbench.server.plugin" in r.stderr


def test_the_plugin_reports_the_test_running_now(held, tmp_path):
    """A real pytest run with a slow test: while it runs, the workbench knows which test
    has started; once the run ends nothing is left running."""
    import time

    from workbench.client import RemoteStore

    project = tmp_path / "slowproj"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_s.py").write_text(
        "import time\n\ndef test_fast():\n    pass\n\ndef test_slow():\n    time.sleep(4)\n")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "--observatory-url", held.url, "--observatory-project", "slowproj"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    try:
        with RemoteStore(held.url) as r:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not seen:
                runs = r.query("runs", project="slowproj", limit=5)
                if not runs.empty:
                    seen = r.query("running_tests", run_id=runs.run_id.iloc[0]).test_id.tolist()
                time.sleep(0.3)
            assert proc.wait(60) == 0
            assert seen == ["tests.test_s::test_slow"]
            run_id = r.query("runs", project="slowproj", limit=5).run_id.iloc[0]
            assert r.query("running_tests", run_id=run_id).empty
            assert r.query("run", run_id=run_id).tests.iloc[0] == 2
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
