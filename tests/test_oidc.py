"""Single sign-on: a real served workbench logs people in through an OpenID Connect
provider (a stand-in on loopback speaking the real protocol: discovery, authorization
code, token, JWKS), checks the id_token's signature, and maps groups to roles."""

from __future__ import annotations

import pytest

from .conftest import Served
from .standins.oidc import OIDCProvider

pytestmark = pytest.mark.slow

USERS = {"alice": {"email": "alice@example.com", "groups": ["platform", "devs"]},
         "bob": {"email": "bob@example.com", "groups": ["devs"]},
         "carol": {"email": "carol@example.com", "groups": ["sales"]}}


@pytest.fixture(scope="module")
def sso(tmp_path_factory):
    with OIDCProvider("observatory", "client-secret-1", USERS) as idp:
        served = Served(tmp_path_factory.mktemp("sso") / "sso.duckdb", env={
            "OBSERVATORY_OIDC_ISSUER": idp.issuer,
            "OBSERVATORY_OIDC_CLIENT_ID": "observatory",
            "OBSERVATORY_OIDC_CLIENT_SECRET": "client-secret-1",
            "OBSERVATORY_OIDC_ROLES": "platform:admin,devs:operator"},
            extra_args=("--no-demo",))
        try:
            yield served, idp
        finally:
            served.stop()


def sign_in(browser, served, user: str):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(served.url + "/storage")
    page.get_by_text(f"Sign in as {user}").click()  # (the provider's page)
    page.wait_for_load_state()
    return page


def test_groups_map_to_roles(sso, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    served, idp = sso
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        alice = sign_in(browser, served, "alice")
        alice.get_by_text("role: admin").wait_for(timeout=60_000)
        session = alice.evaluate("fetch('./api/session').then(r => r.json())")
        assert session["user"] == "alice@example.com" and session["role"] == "admin"
        assert not alice.get_by_role("button", name="Back up now").is_disabled()
        alice.screenshot(path=output_dir / "sso-admin.png")
        assert ("POST", "/token") in idp.requests and ("GET", "/jwks") in idp.requests

        bob = browser.new_context().new_page()
        bob.goto(served.url + "/storage")
        bob.get_by_text("Sign in as bob").click()
        bob.get_by_text("role: operator").wait_for(timeout=60_000)
        assert bob.get_by_role("button", name="Back up now").is_disabled()
        denied = bob.evaluate("""fetch('./api/store/backup', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)""")
        assert denied == 403  # (no X-XSRF-Token: refused before the role is even asked)

        carol = browser.new_context().new_page()
        carol.goto(served.url + "/tests")
        carol.get_by_text("Sign in as carol").click()
        carol.get_by_text("in no group that has a role").wait_for(timeout=30_000)
        carol.screenshot(path=output_dir / "sso-refused.png")
        browser.close()


def test_a_forged_id_token_is_refused(sso, chromium):
    from playwright.sync_api import sync_playwright

    served, idp = sso
    idp.forge = True
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(served.url + "/tests")
            page.get_by_text("Sign in as alice").click()
            page.get_by_text("id_token was refused").wait_for(timeout=30_000)
            status = page.evaluate("fetch('./api/session').then(r => r.status)")
            assert status == 401
            browser.close()
    finally:
        idp.forge = False
