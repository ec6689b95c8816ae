"""Alert rules that act, through a real server: a silent agent is paused by a staleness
rule and resumed from its alert; an agent that dies fires the shipped "error or lost"
rule; new failing tests (from a real pytest run) fire test health; signed webhooks reach a
real receiver on 127.0.0.1, retried through 500s and through a receiver that is down and
comes back; rules, alerts and webhooks are role-checked and refuse bad input with 400."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from workbench.control.alerts import TEST_QUERY_S

from .conftest import ROLE_ENV, Served, free_port, role_client, wait_for
from .standins.webhook_receiver import Receiver

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

SECRET = "s3cret-for-tests"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    env = {**ROLE_ENV, "OBSERVATORY_WEBHOOK_BACKOFF_S": "0.3"}
    s = Served(tmp_path_factory.mktemp("alerts") / "a.duckdb", env=env,
               extra_args=("--no-demo",))
    yield s
    s.stop()


def client(served, role: str = "admin") -> httpx.Client:
    return role_client(served, role)


def until(fn, timeout: float = 15, what: str = ""):
    return wait_for(fn, timeout, what, every=0.05)


def alerts_for(c: httpx.Client, agent_id: str, rule_id: str | None = None) -> list[dict]:
    return [a for a in c.get("/api/alerts", params={"state": "open"}).json()["alerts"]
            if a["agent_id"] == agent_id and (rule_id is None or a["rule_id"] == rule_id)]


def signature_ok(request: dict, secret: str = SECRET) -> bool:
    """What a receiver does, written out here rather than imported."""
    header = request["headers"]["X-Observatory-Signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + request["body"],
                        hashlib.sha256).hexdigest()
    return abs(time.time() - int(parts["t"])) < 60 and hmac.compare_digest(expected,
                                                                            parts["v1"])


def test_shipped_rules_are_there_and_editable(served):
    with client(served) as c:
        rules = {r["rule_id"]: r for r in c.get("/api/alert-rules").json()["rules"]}
        assert rules["agent-error-or-lost"]["states"] == ["error", "lost"]
        assert rules["tool-loop"]["count"] == 5 and rules["tool-loop"]["window_s"] == 600
        assert "pause" in rules["tool-loop"]["actions"]
        assert rules["cost-per-hour"]["metric"] == "cost_per_hour"
        edited = c.put("/api/alert-rules/cost-per-hour",
                       json={**rules["cost-per-hour"], "threshold": 12.5})
        assert edited.status_code == 200 and edited.json()["rule"]["threshold"] == 12.5
        assert {r["rule_id"]: r for r in c.get("/api/alert-rules").json()["rules"]}[
            "cost-per-hour"]["threshold"] == 12.5


def test_stale_agent_is_paused_and_resumed_from_the_alert(served):
    with client(served) as c:
        r = c.post("/api/alert-rules", json={
            "rule_id": "quiet", "name": "silent for a second", "kind": "stale",
            "minutes": 0.02, "agents": "quiet-*", "actions": ["notify", "pause"]})
        assert r.status_code == 201, r.text
        agent = c.post("/api/agents", json={
            "name": "quiet-one", "backend": "process",
            "command": [sys.executable, "-c", "import time; time.sleep(120)"]}).json()["agent"]
        c.post(f"/api/agents/{agent['id']}/start")
        alert = until(lambda: alerts_for(c, agent["id"], "quiet"), what="the stale alert")[0]
        assert alert["state"] == "firing" and "silent" in alert["title"]
        paused = until(lambda: (a := c.get(f"/api/agents/{agent['id']}").json()["agent"])[
            "state"] == "paused" and a, what="the pause")
        assert psutil.Process(paused["pid"]).status() == psutil.STATUS_STOPPED
        with client(served, "viewer") as v:
            assert v.post(f"/api/alerts/{alert['id']}/resume").status_code == 403
        with client(served, "operator") as op:
            r = op.post(f"/api/alerts/{alert['id']}/resume")
            assert r.status_code == 200, r.text
            assert r.json()["alert"]["state"] == "acknowledged"
            assert r.json()["alert"]["agent"]["state"] == "running"
            assert op.post(f"/api/alerts/{alert['id']}/resolve").json()["alert"][
                "state"] == "resolved"
        audit = c.get("/api/audit").json()["audit"]
        by_rule = [a for a in audit if a["who"] == "rule:quiet" and a["action"] == "pause"]
        by_person = [a for a in audit if a["action"] == "resume" and a["who"] != "rule:quiet"
                     and a["target"] == agent["id"]]
        assert by_rule and by_rule[0]["outcome"] == "ok" and by_person
        c.delete("/api/alert-rules/quiet")
        c.post(f"/api/agents/{agent['id']}/stop")


def test_signed_webhook_retried_through_500s(served):
    with Receiver(fail_first=2) as rx, client(served) as c:
        hook = c.post("/api/webhooks", json={"url": rx.url, "secret": SECRET,
                                             "events": ["alert.fired"]}).json()["webhook"]
        assert hook["secret"] == "********"
        agent = c.post("/api/agents", json={
            "name": "dies", "backend": "process",
            "command": [sys.executable, "-c", "import sys; sys.exit(4)"]}).json()["agent"]
        c.post(f"/api/agents/{agent['id']}/start")
        got = until(lambda: [r for r in rx.requests if r["status"] == 200], timeout=20,
                    what="a delivery answered 200")
        assert [r["status"] for r in rx.requests] == [500, 500, 200]
        payload = json.loads(got[0]["body"])
        assert payload["type"] == "alert.fired" and payload["agent_id"] == agent["id"]
        assert payload["data"]["rule_id"] == "agent-error-or-lost"
        assert "exit status 4" in payload["data"]["title"]
        assert all(signature_ok(r) for r in rx.requests)
        assert not signature_ok(got[0], "another-secret")
        ts = [int(dict(p.split("=", 1) for p in r["headers"]["X-Observatory-Signature"]
                       .split(","))["t"]) for r in rx.requests]
        assert ts == sorted(ts)  # each attempt signed at its own time
        log = until(lambda: [d for d in c.get(f"/api/webhooks/{hook['id']}/deliveries").json()[
            "deliveries"] if d["state"] == "delivered"], what="the delivery log")
        assert log[0]["attempts"] == 3 and log[0]["last_status"] == 200
        c.delete(f"/api/webhooks/{hook['id']}")


def test_receiver_down_then_back_gets_the_slack_payload(served):
    port = free_port()
    with client(served) as c:
        hook = c.post("/api/webhooks", json={
            "url": f"http://127.0.0.1:{port}/hook", "secret": SECRET, "events": ["*"],
            "format": "slack"}).json()["webhook"]
        agent = c.post("/api/agents", json={
            "name": "dies-too", "backend": "process",
            "command": [sys.executable, "-c", "raise SystemExit(2)"]}).json()["agent"]
        c.post(f"/api/agents/{agent['id']}/start")
        until(lambda: [d for d in c.get(f"/api/webhooks/{hook['id']}/deliveries").json()[
            "deliveries"] if d["state"] == "retrying" and "Connect" in (d["last_error"] or "")],
              what="a failed attempt")
        with Receiver(port) as rx:
            until(lambda: any(json.loads(r["body"])["observatory"]["type"] == "alert.fired"
                              for r in rx.requests), timeout=20, what="the alert, delivered")
            fired = [json.loads(r["body"]) for r in rx.requests
                     if json.loads(r["body"])["observatory"]["type"] == "alert.fired"][0]
            assert fired["text"].startswith("*alert.fired*") and "dies-too" in fired["text"]
            # (each delivery keeps its own back-off: the state changes may come a little later)
            until(lambda: "error" in [json.loads(r["body"])["observatory"]["data"].get("to")
                                      for r in rx.requests if json.loads(r["body"])[
                                          "observatory"]["type"] == "agent.state"],
                  timeout=20, what="the agent's error state, delivered")
        c.delete(f"/api/webhooks/{hook['id']}")


def _suite(path, broken: bool) -> None:
    path.mkdir(exist_ok=True)
    (path / "test_th.py").write_text(
        "def test_steady():\n    assert True\n\n"
        f"def test_breaks():\n    assert {'1 == 2' if broken else 'True'}\n")


def _report(served, folder, tag: str) -> None:
    junit = folder / f"{tag}.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-p", "no:observatory", f"--junitxml={junit}", str(folder)],
                   capture_output=True, timeout=120, cwd=folder)
    with client(served, "operator") as c:
        r = c.post("/api/tests/reports", params={"project": "th", "format": "junit"},
                   content=junit.read_bytes())
        assert r.status_code in (200, 201), r.text


def test_new_failures_in_the_agents_project_fire_test_health(served, tmp_path):
    suite = tmp_path / "th"
    _suite(suite, broken=False)
    _report(served, suite, "before")
    with client(served) as c:
        c.post("/api/alert-rules", json={"rule_id": "health", "name": "tests broke",
                                         "kind": "test_health", "agents": "th-*"})
        c.post("/api/alert-rules", json={"rule_id": "rerun", "name": "re-run, no edit",
                                         "kind": "test_loop", "count": 2, "agents": "th-*"})
        agent = c.post("/api/agents", json={
            "name": "th-agent", "backend": "process", "project": "th",
            "command": [sys.executable, "-c", "import time; time.sleep(60)"]}).json()["agent"]
        c.post(f"/api/agents/{agent['id']}/start")
        time.sleep(1.0)
        assert not alerts_for(c, agent["id"], "health")
        _suite(suite, broken=True)
        _report(served, suite, "after")
        alert = until(lambda: alerts_for(c, agent["id"], "health"), timeout=15,
                      what="the test health alert")[0]
        assert [e["test_id"].rsplit(".", 1)[-1].rsplit(":", 1)[-1]
                for e in alert["evidence"]] == ["test_breaks"]
        time.sleep(TEST_QUERY_S)
        assert not alerts_for(c, agent["id"], "rerun")  # failed once since the start
        _report(served, suite, "again")  # the same failure, and the agent edited nothing
        rerun = until(lambda: alerts_for(c, agent["id"], "rerun"), timeout=15,
                      what="the test loop alert")[0]
        assert "test_breaks failed 2 times" in rerun["title"] and len(rerun["evidence"]) == 2
        c.post(f"/api/agents/{agent['id']}/stop")
        c.delete("/api/alert-rules/health")
        c.delete("/api/alert-rules/rerun")


@pytest.mark.parametrize("route, body, error", [
    ("/api/alert-rules", {"name": "x", "kind": "telepathy"}, "kind"),
    ("/api/alert-rules", {"kind": "state"}, "name"),
    ("/api/alert-rules", {"name": "x", "actions": ["explode"]}, "actions"),
    ("/api/alert-rules", {"name": "x", "window_s": -1}, "rule.window_s"),
    ("/api/webhooks", {"url": "ftp://x", "secret": SECRET}, "url"),
    ("/api/webhooks", {"url": "http://127.0.0.1:9/x", "secret": "short"}, "secret"),
    ("/api/webhooks", {"url": "http://127.0.0.1:9/x", "secret": SECRET,
                       "events": ["agent.sneezed"]}, "events"),
    ("/api/webhooks", {"url": "http://127.0.0.1:9/x", "secret": SECRET, "format": "xml"},
     "format"),
])
def test_bad_rules_and_webhooks_are_400(served, route, body, error):
    with client(served) as c:
        r = c.post(route, json=body)
        assert r.status_code == 400 and error in r.json()["error"], r.text


def test_roles_on_rules_webhooks_and_alerts(served):
    rule = {"name": "r", "kind": "state"}
    hook = {"url": "http://127.0.0.1:9/x", "secret": SECRET}
    with client(served, "operator") as c:
        assert c.get("/api/alert-rules").status_code == 200
        assert c.post("/api/alert-rules", json=rule).status_code == 403
        assert c.get("/api/webhooks").status_code == 403
        assert c.post("/api/webhooks", json=hook).status_code == 403
        assert c.post("/api/alerts/al-nope/ack").status_code == 404
    with client(served, "viewer") as c:
        assert c.get("/api/alerts").status_code == 200
        assert c.post("/api/alerts/al-nope/ack").status_code == 403
        assert c.get("/api/alerts", params={"state": "sideways"}).status_code == 400
