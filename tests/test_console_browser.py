"""The Console page in headless Chromium against a real `observatory serve` with logins
(issue 23): an admin opens a project shell and types into it; a reload shows the same
screen without running anything again; a second page watches read-only and cannot type; a
viewer cannot open the shell's websocket; a page of another origin cannot either, though
the browser sends it the admin's cookie; a cookie without an Origin is refused; ending
the shell ends every process it started. Screenshots in both themes."""

from __future__ import annotations

import http.server
import re
import threading

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from .conftest import ROLE_ENV, Served, free_port, gone, page_log_in, role_client, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARGS = ["--no-sandbox", "--disable-gpu"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import subprocess

    folder = tmp_path_factory.mktemp("webshell")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    s = Served(tmp_path_factory.mktemp("console-ui") / "c.duckdb",
               env={**ROLE_ENV, "OBSERVATORY_NO_DEMO": "1", "OBSERVATORY_CONSOLE_GRACE_S": "5"},
               ready_path="/login")
    with role_client(s, "admin") as c:
        assert c.post("/api/projects/link", json={"path": str(folder),
                                                  "name": "webshell"}).status_code == 200
    yield s
    s.stop()


@pytest.fixture(scope="module")
def evil_site():
    """Another origin on this machine (another port): a page that tries the console's
    websocket with whatever cookies the browser sends along."""
    port = free_port()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            target = self.path.split("?target=", 1)[-1]
            body = f"""<html><body><script>
              const ws = new WebSocket({target!r});
              ws.onopen = () => {{ document.title = 'opened'; ws.send('echo pwned\\r') }};
              ws.onclose = (e) => {{ if (document.title !== 'opened') document.title =
                                     'refused ' + e.code }};
            </script></body></html>""".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def screen_text(page) -> str:
    return page.locator(".xterm-rows").first.inner_text()


def test_a_project_shell_in_the_browser(served, evil_site, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, role_client(served, "admin") as api:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        admin = browser.new_context(viewport={"width": 1440, "height": 900})
        page = admin.new_page()
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
            (served.url, "data:", "blob:", served.url.replace("http", "ws"))) else None)
        page_log_in(page, served.url, "admin")
        page.goto(served.url + "/console?project=webshell")
        page.get_by_role("button", name="Open a shell").click()
        page.locator(".xterm-helper-textarea").wait_for(timeout=20_000)
        wait_for(lambda: "webshell" in screen_text(page), 15, "the prompt")
        page.locator(".xterm-helper-textarea").focus()
        page.keyboard.type("echo hello-$RANDOM\n")
        said = wait_for(lambda: re.search(r"hello-(\d+)", screen_text(page)), 15, "the echo")
        hello = said.group(0)
        consoles = api.get("/api/console").json()["consoles"]
        shell = next(c for c in consoles if c["kind"] == "shell")
        assert f"console={shell['name']}" in page.url  # (what a reload reattaches to)
        page.screenshot(path=str(output_dir / "shell-light.png"))

        # A reload: the same screen, nothing run again.
        page.reload()
        page.locator(".xterm-rows").first.wait_for(timeout=20_000)
        wait_for(lambda: hello in screen_text(page), 15, "the screen after a reload")
        assert screen_text(page).count(hello) == 1

        # A second page watches read-only: it sees the output, and its keys go nowhere.
        watcher = admin.new_page()
        watcher.goto(served.url + f"/console?console={shell['name']}&mode=read&theme=dark")
        wait_for(lambda: watcher.locator(".xterm-rows").count() and hello in screen_text(
            watcher), 20, "the watcher's screen")
        assert watcher.get_by_text("read-only until you press Type").is_visible()
        watcher.locator(".xterm-helper-textarea").focus()
        watcher.keyboard.type("echo intruder\n")
        page.locator(".xterm-helper-textarea").focus()
        page.keyboard.type("echo after-$((2+3))\n")
        wait_for(lambda: "after-5" in screen_text(watcher), 15, "the watcher sees more")
        assert "intruder" not in screen_text(page)
        watcher.screenshot(path=str(output_dir / "watcher-dark.png"))

        # A viewer: no shell, and the websocket refused on the upgrade.
        viewer = browser.new_context().new_page()
        page_log_in(viewer, served.url, "viewer")
        viewer.goto(served.url + "/console")
        assert viewer.get_by_role("button", name="Open a shell").is_disabled()
        assert shell["name"] not in viewer.content()
        opened = viewer.evaluate("""async (name) => {
            const s = await (await fetch('/api/session')).json()
            return await new Promise((done) => {
              const ws = new WebSocket(`ws://${location.host}/ws/console/${name}?xsrf=${s.xsrf}`)
              ws.onopen = () => done('opened')
              ws.onclose = (e) => done('closed ' + e.code)
            })
        }""", shell["name"])
        assert opened == "closed 1006", opened
        viewer.screenshot(path=str(output_dir / "viewer.png"))

        # Another origin's page, with the admin's cookie: refused (Origin).
        evil = admin.new_page()
        ws_url = served.url.replace("http", "ws") + f"/ws/console/{shell['name']}?mode=write"
        evil.goto(f"{evil_site}/?target={ws_url}")
        wait_for(lambda: evil.title().startswith(("refused", "opened")), 15, "the evil page")
        assert evil.title().startswith("refused"), evil.title()
        # The cookie alone, without an Origin (not a browser) or without the xsrf: refused.
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in admin.cookies())
        for headers, why in (({}, b"needs an Origin header"),
                             ({"Origin": served.url}, b"needs ?xsrf=")):
            with pytest.raises(InvalidStatus) as refused:
                connect(ws_url, additional_headers={"Cookie": cookie, **headers})
            assert refused.value.response.status_code == 403 and why in \
                refused.value.response.body
        audit = api.get("/api/audit", params={"limit": 500}).json()["audit"]
        assert [a for a in audit if a["outcome"].startswith("refused") and
                "cross-origin" in a["outcome"] and "/ws/console/" in a["action"]]

        # The commands offered beside it (bash's own history): a click types one in.
        page.get_by_placeholder("search the commands").fill("after")
        offered = page.get_by_role("button", name="echo after-$((2+3))")
        wait_for(lambda: offered.count(), 15, "the command offered")
        offered.first.click()
        wait_for(lambda: screen_text(page).count("echo after-$((2+3))") == 2, 15,
                 "the command typed at the prompt")
        page.locator(".xterm-helper-textarea").first.focus()
        page.keyboard.press("Enter")
        wait_for(lambda: screen_text(page).count("after-5") == 2, 15, "it ran again")

        # Ending the shell ends its whole session.
        page.get_by_role("button", name="End shell").click()
        wait_for(lambda: gone(shell["pid"]), 15, "the shell's end")
        wait_for(lambda: "ended" in page.locator(".wb-state").first.inner_text(), 15,
                 "the page says so")
        page.screenshot(path=str(output_dir / "ended-light.png"))
        # Its recording, replayed on the page (admins).
        page.get_by_role("button", name="↻ Refresh").click()
        page.get_by_role("button", name="Replay").first.click()
        # (played at its own pace, each pause cut to a second at most: the commands of
        # the shell's first seconds are enough)
        replayed = page.locator(".xterm-rows").last
        wait_for(lambda: "after-5" in replayed.inner_text(), 90, "the replay")
        assert hello in replayed.inner_text() and "intruder" not in replayed.inner_text()
        page.screenshot(path=str(output_dir / "replay-light.png"))
        assert outside == []
        browser.close()
