"""Transport and identity for a team's service: HTTPS on every listener with a
certificate the client checks, HSTS, and signed expiring tokens (JWT)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from workbench import tokens

from .conftest import ROLE_ENV, ROOT, TOKENS, Served, free_port, log_in

SECRET = "a-test-secret-of-at-least-32-bytes!!"


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate it signed for 127.0.0.1 and localhost:
    ``(ca.pem, server.pem, server.key)``."""
    now = dt.datetime.now(dt.UTC)

    def key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    ca_key, srv_key = key(), key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Observatory test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    srv = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
           .issuer_name(ca_name).public_key(srv_key.public_key())
           .serial_number(x509.random_serial_number())
           .not_valid_before(now - dt.timedelta(minutes=5))
           .not_valid_after(now + dt.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName([
               x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
               critical=False)
           .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                          critical=False)
           .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(srv_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


@pytest.mark.slow
def test_https_on_every_listener(tmp_path):
    ca, cert, key = make_ca(tmp_path)
    otlp_port = free_port()
    served = Served(tmp_path / "tls.duckdb", ca=ca, env=ROLE_ENV,
                    extra_args=("--certfile", str(cert), "--keyfile", str(key),
                                "--otlp-port", str(otlp_port), "--no-demo"))
    try:
        auth = {"Authorization": f"Bearer {TOKENS['admin']}"}
        with httpx.Client(verify=served.verify, headers=auth, timeout=30) as c:
            r = c.get(served.url + "/api/health")
            assert r.status_code == 200 and r.headers["strict-transport-security"]
            page = c.get(served.url + "/login")
            assert page.status_code == 200 and "max-age" in page.headers[
                "strict-transport-security"]
            # The standard OTLP port speaks TLS too, with the same certificate.
            r = c.post(f"https://127.0.0.1:{otlp_port}/v1/traces", content=b"{}",
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            # The login cookie is Secure: never sent back over plain HTTP.
            login = c.post(served.url + "/login", data={"username": "x",
                                                        "password": TOKENS["viewer"]})
            assert all("secure" in v.lower() for v in login.headers.get_list("set-cookie")
                       if v.startswith("user="))
        # A client that does not trust the CA is refused by its own check...
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(served.url + "/api/health", timeout=10)
        # ...and plain HTTP gets no answer at all.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{served.port}/api/health", timeout=10)
        # The server advertises its https URL beside the file, and clients follow it.
        env = {"SSL_CERT_FILE": str(ca), "OBSERVATORY_TOKEN": TOKENS["admin"]}
        done = subprocess.run([sys.executable, "-m", "workbench.cli", "storage", "--db",
                               str(served.db), "--json"], capture_output=True, text=True,
                              cwd=ROOT, env={**__import__("os").environ, **env})
        assert done.returncode == 0, done.stderr
        r = httpx.get(served.url + "/api/health", verify=served.verify, headers=auth)
        assert r.json()["ok"]
    finally:
        served.stop()


def test_serve_refuses_a_wrong_certificate(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "serve", "--db",
                           str(tmp_path / "x.duckdb"), "--certfile", str(bad), "--keyfile",
                           str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "not a certificate and its key" in done.stderr
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "serve", "--certfile",
                           str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "go together" in done.stderr


def test_signed_tokens_hs256_and_rs256(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATORY_JWT_SECRET", SECRET)
    token, claims = tokens.issue("alice", "operator", tokens.parse_ttl("2h"))
    assert tokens.verify(token)["role"] == "operator" and claims["exp"] - claims["iat"] == 7200
    for bad, why in [(token[:-4] + "AAAA", "invalid token"),
                     (jwt.encode({**claims, "role": "admin"}, "another-secret-of-32-bytes!!!!!!",
                                 algorithm="HS256"), "Signature verification failed"),
                     (jwt.encode({**claims, "role": "god"}, SECRET, algorithm="HS256"),
                      "role 'god'"),
                     (jwt.encode({**claims, "exp": int(time.time()) - 5}, SECRET,
                                 algorithm="HS256"), "expired"),
                     (jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET,
                                 algorithm="HS256"), "exp"),
                     (jwt.encode(claims, None, algorithm="none"), "invalid token")]:
        with pytest.raises(tokens.TokenError, match=why):
            tokens.verify(bad)
    for ttl in ("0", "400d", "1y", "-5"):
        with pytest.raises(ValueError, match="ttl"):
            tokens.parse_ttl(ttl)
    # RS256: the private key signs; a server holding only the public key checks.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = tmp_path / "jwt.key", tmp_path / "jwt.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    monkeypatch.delenv("OBSERVATORY_JWT_SECRET")
    monkeypatch.setenv("OBSERVATORY_JWT_PRIVATE_KEY", str(private))
    signed, _ = tokens.issue("ci", "ingest", 60)
    assert jwt.get_unverified_header(signed)["alg"] == "RS256"
    monkeypatch.delenv("OBSERVATORY_JWT_PRIVATE_KEY")
    monkeypatch.setenv("OBSERVATORY_JWT_PUBLIC_KEY", str(public))
    assert tokens.verify(signed)["sub"] == "ci"
    with pytest.raises(tokens.TokenError, match="no signing key"):
        tokens.issue("x", "admin", 60)
    # A token signed with the shared secret is not accepted where RS256 is expected.
    with pytest.raises(tokens.TokenError, match="invalid token"):
        tokens.verify(jwt.encode(claims, SECRET, algorithm="HS256"))


@pytest.mark.slow
def test_signed_tokens_on_a_server(tmp_path):
    served = Served(tmp_path / "jwt.duckdb", env={**ROLE_ENV, "OBSERVATORY_JWT_SECRET": SECRET},
                    extra_args=("--no-demo",))
    try:
        admin = httpx.Client(base_url=served.url, timeout=30,
                             headers={"Authorization": f"Bearer {TOKENS['admin']}"})
        r = admin.post("/api/tokens", json={"sub": "ci-bot", "role": "viewer", "ttl": "1h"})
        assert r.status_code == 201, r.text
        viewer_jwt, jti = r.json()["token"], r.json()["claims"]["jti"]
        short = admin.post("/api/tokens", json={"sub": "brief", "role": "ingest", "ttl": 1}
                           ).json()["token"]
        bad = admin.post("/api/tokens", json={"sub": "x", "role": "root", "ttl": "1h"})
        assert bad.status_code == 400 and "role" in bad.text

        def call(token, method="GET", path="/api/runs", headers=None, **kw):
            return httpx.request(method, served.url + path, timeout=30, headers={
                "Authorization": f"Bearer {token}", **(headers or {})}, **kw)

        ok = call(viewer_jwt)
        assert ok.status_code == 200
        # Not a password: a login session would outlive its expiry and its revocation.
        with httpx.Client(base_url=served.url, timeout=30) as browser:
            log_in(browser, "x", viewer_jwt)
            assert browser.get("/api/session").status_code == 401
        who = call(viewer_jwt, path="/api/session").json()
        assert who["role"] == "viewer" and who["who"] == "jwt:ci-bot"
        denied = call(viewer_jwt, "POST", "/api/agents", json={"name": "x", "backend":
                                                               "process", "command": ["true"]})
        assert denied.status_code == 403 and "operator" in denied.text
        forged = jwt.encode({**jwt.decode(viewer_jwt, options={"verify_signature": False}),
                             "role": "admin"}, "not-the-secret-but-32-bytes-long!!",
                            algorithm="HS256")
        assert call(forged).status_code == 401
        assert "Signature" in call(forged).json()["error"]
        time.sleep(2.1)
        expired = call(short, "POST", "/v1/traces", content=b"{}",
                       headers={"Content-Type": "application/json"})
        assert expired.status_code == 401
        assert call(short).json()["error"] == "the token has expired"
        assert admin.post(f"/api/tokens/{jti}/revoke", json={}).status_code == 200
        r = call(viewer_jwt)
        assert r.status_code == 401 and r.json()["error"] == "the token was revoked"
        assert admin.post(f"/api/tokens/{jti}/revoke", json={}).status_code == 409
        # A token signed with the same key elsewhere (another file, offline) is revoked
        # here too.
        import os
        os.environ["OBSERVATORY_JWT_SECRET"] = SECRET
        try:
            elsewhere, claims = tokens.issue("offline", "viewer", 3600)
        finally:
            del os.environ["OBSERVATORY_JWT_SECRET"]
        assert call(elsewhere).status_code == 200
        r = admin.post(f"/api/tokens/{claims['jti']}/revoke", json={})
        assert r.status_code == 200 and r.json()["issued_here"] is False
        assert call(elsewhere).json()["error"] == "the token was revoked"
        listed = admin.get("/api/tokens").json()["tokens"]
        assert {t["sub"] for t in listed} == {"ci-bot", "brief", "?"}
        assert all("token" not in t for t in listed)
        audit = admin.get("/api/audit", params={"limit": 50}).json()["audit"]
        assert any(a["action"] == "POST /api/tokens/{jti}/revoke" for a in audit)
        admin.close()
    finally:
        served.stop()


def test_a_single_sign_on_login_without_its_role_cookie_is_a_viewer(monkeypatch):
    """The role of an SSO login travels in a signed cookie bound to the user: another
    user's cookie, a forged one, or none at all never falls back to the configured default
    role (admin) while single sign-on is on."""
    from tornado.web import create_signed_value

    from workbench.server import auth

    secret = "cookie-secret-for-the-test"
    good = create_signed_value(secret, auth.ROLE_COOKIE,
                               auth.role_cookie_value("alice@x", "operator")).decode()
    assert auth.login_role("alice@x", good, secret) == "operator"
    monkeypatch.setenv("OBSERVATORY_DEFAULT_ROLE", "admin")
    monkeypatch.setenv("OBSERVATORY_OIDC_ISSUER", "http://127.0.0.1:1")
    assert auth.login_role("bob@x", good, secret) == "viewer"  # (alice's cookie)
    assert auth.login_role("alice@x", good[:-4] + "AAAA", secret) == "viewer"
    assert auth.login_role("alice@x", None, secret) == "viewer"
    monkeypatch.setenv("OBSERVATORY_OIDC_DEFAULT_ROLE", "ingest")
    assert auth.login_role("alice@x", None, secret) == "ingest"
    monkeypatch.delenv("OBSERVATORY_OIDC_ISSUER")
    assert auth.login_role("alice@x", None, secret) == "admin"  # (no SSO: the login's)
