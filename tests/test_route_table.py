"""The route table is the only way a route exists: the live application serves nothing it
does not declare, and every declared route refuses exactly who its role says — tried on a
real server for every route × no token, a wrong token, each role, a login cookie without
its X-XSRF-Token, a foreign Origin and a cross-site fetch."""

from __future__ import annotations

import re

import httpx
import pytest

from workbench.config import allows
from workbench.server.pages import PAGES
from workbench.server.routes import BINARY, ROUTES, Route, tornado_rules

from .conftest import TOKENS, Served, log_in

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

ENV = {"OBSERVATORY_TOKENS": ",".join(f"{t}:{r}" for r, t in TOKENS.items())}


def sample_path(route: Route) -> str:
    """A concrete path for ``route``: each parameter's first choice, else ``x``."""
    path = route.template
    for name, choices in route.params():
        spelled = f"{{{name}:{'|'.join(choices)}}}" if choices else f"{{{name}}}"
        path = path.replace(spelled, choices[0] if choices else "x")
    return path


def send(client: httpx.Client, route: Route, **headers: str) -> httpx.Response:
    """``route`` called with a body no route accepts (``[]``: not an object), so that an
    admitted request goes no further than its parser."""
    method = "GET" if route.method == "WS" else route.method
    kw = {}
    if route.body is not None and method != "GET":
        kw["content"] = b"[]"
        headers.setdefault("Content-Type", "application/octet-stream" if route.body is BINARY
                           else "application/json")
    return client.request(method, sample_path(route), headers=headers, **kw)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("routes") / "r.duckdb",
               env={**ENV, "OBSERVATORY_NO_DEMO": "1"})
    yield s
    s.stop()


def test_the_table_is_consistent():
    seen = set()
    for route in ROUTES:
        key = (route.method, route.pattern)
        assert key not in seen, f"{route.name} declared twice"
        seen.add(key)
        if route.method in ("GET", "WS"):
            assert not route.changes, route.name
        assert route.summary, route.name
        re.compile(route.pattern)
    rules = tornado_rules()
    assert sum(len(r[2]["routes"]) for r in rules) == len(ROUTES)


def test_every_live_route_is_declared(served):
    with httpx.Client(base_url=served.url, timeout=30,
                      headers={"Authorization": f"Bearer {TOKENS['admin']}"}) as admin:
        live = admin.get("/api/routes").json()
    assert live["undeclared"] == [], live["undeclared"]
    patterns = {r["pattern"] for r in live["rules"]}
    for route in ROUTES:
        assert route.pattern in patterns, f"{route.name} is declared but not served"
    served_pages = {r["pattern"] for r in live["rules"] if r["page"]}
    assert served_pages <= set(PAGES)
    assert {"/tests/?", "/tests/ws", "/static/(.*)", "/login"} <= served_pages


def login_cookie(url: str) -> httpx.Client:
    """A browser-like client logged in to the dashboards with the admin token."""
    c = httpx.Client(base_url=url, timeout=30)
    r = log_in(c, "me", TOKENS["admin"])
    assert r.status_code in (200, 302), r.text
    assert c.cookies.get("user"), "no login cookie"
    return c


def test_role_matrix(served):
    """Every declared API route against every kind of caller; the counts go in the note."""
    counted: dict[str, int] = {}

    def expect(case: str, route: Route, r: httpx.Response, allowed: bool) -> None:
        counted[case] = counted.get(case, 0) + 1
        where = f"{case}: {route.name} -> {r.status_code} {r.text[:200]}"
        assert r.status_code < 500, where
        if allowed:
            assert r.status_code not in (401, 403), where
        else:
            assert r.status_code in (401, 403), where
            assert r.content, where  # (the reason: JSON, or OTLP's own Status message)

    anonymous = httpx.Client(base_url=served.url, timeout=30)
    wrong = httpx.Client(base_url=served.url, timeout=30,
                         headers={"Authorization": "Bearer not-a-token"})
    roles = {role: httpx.Client(base_url=served.url, timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
             for role, token in TOKENS.items()}
    browser = login_cookie(served.url)
    for route in ROUTES:
        expect("no token", route, send(anonymous, route), False)
        expect("wrong token", route, send(wrong, route), False)
        for role, c in roles.items():
            r = send(c, route)
            expect(role, route, r, allows(role, route.role))
            if not allows(role, route.role):
                assert r.status_code == 403 and route.role in r.text
        # (a console's websocket asks more of the cookie: an Origin and ?xsrf=, the
        # anti-forgery token; tested in test_console_browser.py)
        expect("cookie without X-XSRF-Token", route, send(browser, route),
               not route.changes and route.method in ("GET", "WS")
               and route.name != "WS /ws/console/{name}")
        expect("foreign Origin", route,
               send(roles["admin"], route, Origin="http://evil.example"), False)
        expect("cross-site fetch", route,
               send(roles["admin"], route, **{"Sec-Fetch-Site": "cross-site"}), False)
    print("role matrix:", counted, "routes:", len(ROUTES))
    assert counted["no token"] == len(ROUTES)
    # The refusals are in the audit log, with who was refused.
    audit = roles["admin"].get("/api/audit", params={"limit": 10_000}).json()["audit"]
    refused = [a for a in audit if a["outcome"].startswith("refused")]
    assert {a["role"] for a in refused} >= {"viewer", "ingest", "operator", "-"}
    assert any("DELETE /api/runs/{run_id}" == a["action"] and a["role"] == "viewer"
               for a in refused)
    for c in (anonymous, wrong, browser, *roles.values()):
        c.close()


def test_a_cookie_write_with_its_xsrf_token_passes(served):
    browser = login_cookie(served.url)
    xsrf = browser.get("/api/session").json()["xsrf"]
    r = browser.post("/api/agents", json={"name": "by-cookie", "backend": "process",
                                          "command": "true"}, headers={"X-XSRF-Token": xsrf})
    assert r.status_code == 201, r.text
    browser.close()


def test_the_login_form_has_its_own_anti_forgery_token(served):
    with httpx.Client(base_url=served.url, timeout=30) as c:
        c.get("/login")
        # A form posted from another site carries no token (and cannot know it).
        r = c.post("/login", data={"username": "x", "password": TOKENS["admin"]})
        assert r.status_code == 403 and "anti-forgery" in r.text
        assert not c.cookies.get("user")
    with httpx.Client(base_url=served.url, timeout=30) as c:
        r = c.post("/login", data={"username": "x", "password": TOKENS["admin"]},
                   headers={"Origin": "http://evil.example"})
        assert r.status_code == 403


def test_the_reference_is_generated_from_the_table(served):
    with httpx.Client(base_url=served.url, timeout=30,
                      headers={"Authorization": f"Bearer {TOKENS['ingest']}"}) as c:
        doc = c.get("/api/openapi.json").json()
        page = c.get("/api/docs")
    assert doc["openapi"].startswith("3.1")
    ops = [op for path in doc["paths"].values() for op in path.values()]
    assert len(ops) == len(ROUTES)
    agents = doc["paths"]["/api/agents"]["post"]
    assert agents["x-role"] == "operator" and agents["x-audit"] == "action"
    schema = doc["components"]["schemas"]["AgentDefinition"]
    assert {"name", "backend", "policy"} <= set(schema["properties"])
    assert doc["paths"]["/api/runs/{run_id}"]["delete"]["x-role"] == "operator"
    assert page.status_code == 200 and "DELETE" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
