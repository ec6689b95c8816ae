"""A real served workbench on 127.0.0.1: pages, the report API, auth, bad requests."""

from __future__ import annotations

import gzip
import sys

import httpx
import pytest

from workbench.client import RemoteStore, connect

from .conftest import FIXTURES, Served, log_in

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


def runs_count(remote) -> int:
    return len(remote.query("runs", limit=100000))


def test_dashboard_and_its_javascript_are_served_locally(server):
    page = httpx.get(server.url + "/tests", timeout=30)
    assert page.status_code == 200
    assert "cdn.bokeh.org" not in page.text and "cdn.holoviz.org" not in page.text
    assert "static/js/bokeh" in page.text
    assert httpx.get(server.url + "/", timeout=30).status_code == 200


def test_report_upload_is_stored_and_queryable(server, remote):
    before = runs_count(remote)
    r = httpx.post(
        server.url + "/api/tests/reports",
        content=(FIXTURES / "retries.xml").read_bytes(),
        params={"project": "api-test", "branch": "main", "filename": "retries.xml"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["tests"] == 7 and body["errors"] == 1
    assert runs_count(remote) == before + 1
    run = remote.query("run", run_id=body["run_id"]).iloc[0]
    assert (run.project, run.branch, run.attempts) == ("api-test", "main", 11)


def test_gzip_upload(server):
    data = gzip.compress((FIXTURES / "ctrf.json").read_bytes())
    r = httpx.post(
        server.url + "/api/tests/reports",
        content=data,
        headers={"Content-Encoding": "gzip"},
        params={"project": "gz"},
    )
    assert r.status_code == 200 and r.json()["tests"] == 3


@pytest.mark.parametrize(
    "body,headers,status,message",
    [
        (b"<testsuite><testcase", {}, 400, "not well-formed XML"),
        ((FIXTURES / "xxe.xml").read_bytes(), {}, 400, "DTD"),
        (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}, 400, "gzip"),
        (
            gzip.compress((FIXTURES / "passing.xml").read_bytes(), mtime=0)[:-12],
            {"Content-Encoding": "gzip"},
            400,
            "truncated gzip",
        ),
        (b"x", {"Content-Encoding": "br"}, 415, "unsupported Content-Encoding"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(server, remote, body, headers, status, message):
    before = runs_count(remote)
    r = httpx.post(server.url + "/api/tests/reports", content=body, headers=headers)
    assert r.status_code == status and message in r.json()["error"]
    assert runs_count(remote) == before
    assert httpx.get(server.url + "/api/health").json()["ok"]


def test_live_batch_with_one_bad_item_stores_nothing(server, remote):
    started = httpx.post(server.url + "/api/tests/live", json={"project": "live-bad"}).json()
    run_id, writer = started["run_id"], {"X-Observatory-Run-Secret": started["secret"]}
    bad = {
        "tests": [
            {"name": "ok", "attempts": [{"outcome": "passed"}]},
            {"name": "no", "attempts": [{"outcome": "bogus"}]},
        ]
    }
    r = httpx.post(f"{server.url}/api/tests/live/{run_id}/results", json=bad, headers=writer)
    assert r.status_code == 400 and "tests[1]" in r.json()["error"]
    assert remote.query("run_results", run_id=run_id).empty
    missing = httpx.post(f"{server.url}/api/tests/live/live-nope/finish", json={})
    assert missing.status_code == 404


def test_a_live_run_is_written_only_by_its_starter_and_only_while_running(server, remote):
    started = httpx.post(server.url + "/api/tests/live", json={"project": "live-own"}).json()
    run_id, writer = started["run_id"], {"X-Observatory-Run-Secret": started["secret"]}
    batch = {"tests": [{"name": "t", "attempts": [{"outcome": "passed", "duration_s": 0.1}]}]}
    url = f"{server.url}/api/tests/live/{run_id}"
    for headers in ({}, {"X-Observatory-Run-Secret": "guess"}):
        r = httpx.post(f"{url}/results", json=batch, headers=headers)
        assert r.status_code == 403 and "only the client that started" in r.json()["error"]
        assert httpx.post(f"{url}/finish", json={}, headers=headers).status_code == 403
    negative = {"tests": [{"name": "t", "attempts": [{"outcome": "passed",
                                                      "duration_s": -5}]}]}
    r = httpx.post(f"{url}/results", json=negative, headers=writer)
    assert r.status_code == 400 and "duration_s" in r.json()["error"]
    assert httpx.post(f"{url}/results", json=batch, headers=writer).status_code == 200
    slow = {"tests": [], "running": ["live::slow"]}
    assert httpx.post(f"{url}/results", json=slow, headers=writer).status_code == 200
    assert remote.query("running_tests", run_id=run_id).test_id.tolist() == ["live::slow"]
    bad = httpx.post(f"{url}/results", json={"tests": [], "running": "x"}, headers=writer)
    assert bad.status_code == 400 and "running: Input should be a valid list" in \
        bad.json()["error"]
    assert httpx.post(f"{url}/finish", json={"duration_s": 1}, headers=writer).status_code == 200
    assert remote.query("running_tests", run_id=run_id).empty
    late = httpx.post(f"{url}/results", json=batch, headers=writer)
    assert late.status_code == 409 and "only while a run is running" in late.json()["error"]
    # A complete report is not a live run at all: nobody can append to it.
    report = httpx.post(server.url + "/api/tests/reports", params={"project": "fixed"},
                        content=b'<testsuite><testcase name="a"/></testsuite>').json()
    r = httpx.post(f"{server.url}/api/tests/live/{report['run_id']}/results", json=batch,
                   headers=writer)
    assert r.status_code == 403
    assert int(remote.query("run", run_id=run_id).tests.iloc[0]) == 1


def test_unknown_query_is_a_clear_error(remote):
    with pytest.raises(RuntimeError, match="HTTP 404: unknown query 'nope'"):
        remote.query("nope")


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("runs", {"limit": "many"}, "query 'runs': bad parameter"),
        ("run", {}, "query 'run' needs the parameter 'run_id'"),
    ],
)
def test_bad_query_parameters_are_400s(remote, name, params, message):
    with pytest.raises(RuntimeError, match=f"HTTP 400: {message}"):
        remote.query(name, **params)
    assert not remote.query("projects").empty


def test_notebook_connect_goes_through_the_server_holding_the_file(server):
    from workbench.store import Store, StoreLockedError

    with connect(server.db) as live:
        assert isinstance(live, RemoteStore) and live.url == server.url
        assert not live.query("projects").empty
    # Opening the file itself names the server that holds it, with its real port.
    with pytest.raises(StoreLockedError, match=f"the workbench at {server.url}"):
        Store(server.db)


def test_tokens_are_required_when_configured(tmp_path):
    served = Served(
        tmp_path / "auth.duckdb",
        env={"OBSERVATORY_TOKENS": "s3cret,other", "OBSERVATORY_NO_DEMO": "1"},
    )
    try:
        url = served.url + "/api/health"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer other"}).status_code == 200
        with RemoteStore(served.url, token="s3cret") as r:
            assert r.query("projects").empty  # no demo
    finally:
        served.stop()


def test_plain_panel_serve_of_the_dashboards_works(tmp_path):
    served = Served(
        tmp_path / "plain.duckdb",
        env={"OBSERVATORY_DB": str(tmp_path / "plain.duckdb")},
        argv=[
            sys.executable,
            "-m",
            "panel",
            "serve",
            "dashboards/tests.py",
            "--address",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
    )
    try:
        page = httpx.get(served.url + "/tests", timeout=60)
        assert page.status_code == 200
    finally:
        served.stop()


def test_login_cookie_opens_the_api_and_the_dashboards(tmp_path):
    db = tmp_path / "login.duckdb"
    served = Served(
        db,
        env={"OBSERVATORY_TOKENS": "tok", "OBSERVATORY_NO_DEMO": "1"},
        extra_args=("--basic-auth", "pa55word"),
        ready_path="/login",
    )
    try:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            page = client.get("/tests")
            assert page.status_code == 302 and "/login" in page.headers["location"]
            assert client.get("/api/health").status_code == 401
            bad = log_in(client, "ann", "nope")
            assert "user" not in client.cookies and bad.status_code in (302, 200)
            log_in(client, "ann", "pa55word")
            assert "user" in client.cookies
            assert client.get("/api/health").json()["ok"] is True
            assert client.get("/tests").status_code == 200
    finally:
        served.stop()

