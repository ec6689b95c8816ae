"""Shared fixtures: small stores, a demo database, real served workbenches, Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings

from workbench.demo import load_demo
from workbench.store import Store

# Hypothesis never decides CI by chance: the test command runs the derandomised "ci"
# profile (the same examples every run, after each @example that once found a bug); the
# wide random search is its own command, HYPOTHESIS_PROFILE=fuzz python3 -m pytest
# tests/test_fuzz.py (FUZZ_EXAMPLES per test; failures are kept in .hypothesis/ and
# replayed first).
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", derandomize=True, database=None, max_examples=150,
                          deadline=None, suppress_health_check=_HEALTH)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", 5000)),
                          deadline=None, suppress_health_check=_HEALTH, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
OUTPUT = ROOT / "test-output"
IN_CI = bool(os.environ.get("CI"))
# Nothing a test runs may write into this checkout's data/ (the default database's home);
# each pytest-xdist worker has its own (a worker inherits the controller's environment).
if os.environ.get("PYTEST_XDIST_WORKER") or "OBSERVATORY_HOME" not in os.environ:
    os.environ["OBSERVATORY_HOME"] = tempfile.mkdtemp(prefix="observatory-home-")


#: Fixtures that start a real served workbench or Chromium: a test using one is not quick.
SLOW_FIXTURES = frozenset({"server", "remote", "chromium"})


def pytest_collection_modifyitems(config, items):
    """``-m quick``: every test that starts no real process — no browser, no served
    workbench, agent, pytest run or kernel (those are marked ``browser`` or ``slow``, or use
    a :data:`SLOW_FIXTURES` fixture). The contributor's inner loop; CI runs everything."""
    for item in items:
        if not (item.get_closest_marker("browser") or item.get_closest_marker("slow")
                or SLOW_FIXTURES & set(item.fixturenames)):
            item.add_marker(pytest.mark.quick)


@pytest.fixture(autouse=True)
def _reset_server_state():
    """The served store is a process singleton; tests never share one."""
    from workbench.server import state

    yield
    if state._housekeeping is not None:
        state._housekeeping.close()
        state._housekeeping = None
    if state._supervisor is not None:
        state._supervisor.close()
        state._supervisor = None
    if state._store is not None:
        state._store.close()
        state._store = None


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "t.duckdb") as s:
        yield s


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory) -> Path:
    """A closed DuckDB file holding the demo dataset (copy it before writing)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Store(path) as s:
        load_demo(s)
    return path


@pytest.fixture
def demo_store(demo_path, tmp_path):
    copy = tmp_path / "demo.duckdb"
    shutil.copy(demo_path, copy)
    with Store(copy) as s:
        yield s


def documentation() -> str:
    """What a user can read: the README and every page of the documentation site."""
    return "\n".join(p.read_text() for p in [ROOT / "README.md",
                                            *sorted((ROOT / "docs").rglob("*.md"))])


def wait_for(fn, timeout: float = 60, what: str = "", every: float = 0.2):
    """``fn()`` once it is truthy (polled every ``every`` s); fails after ``timeout``
    seconds."""
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(every)
    return value


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path → text) under ``root``, folders as needed."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def claude() -> str:
    """The real Claude Code CLI (npm @anthropic-ai/claude-code): CI installs it."""
    from workbench.control.claude_code import find_binary

    binary = find_binary()
    if binary:
        return binary
    if IN_CI:
        pytest.fail("the claude CLI is missing (.ci/run installs @anthropic-ai/claude-code)")
    pytest.skip("the claude CLI is not installed: npm install @anthropic-ai/claude-code")


def page_log_in(page, url: str, role: str) -> None:
    """Log a Playwright page in to the dashboards with ``role``'s token as the password."""
    page.goto(url + "/login")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", TOKENS[role])
    page.click("button[type=submit]")
    page.wait_for_load_state()


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie has): no race between asking whether it
    exists and asking its state."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: A token per role, and the server setting that grants them (servers that check roles).
TOKENS = {"admin": "tok-admin", "operator": "tok-operator", "viewer": "tok-viewer",
          "ingest": "tok-ingest"}
ROLE_ENV = {"OBSERVATORY_TOKENS": ",".join(f"{t}:{r}" for r, t in TOKENS.items())}


def role_client(served: Served, role: str) -> httpx.Client:
    """An API client of ``served`` holding ``role``'s token."""
    return httpx.Client(base_url=served.url, timeout=30,
                        headers={"Authorization": f"Bearer {TOKENS[role]}"})


class Served:
    """A real `observatory serve` process on 127.0.0.1."""

    def __init__(self, db: Path, env: dict[str, str] | None = None, argv: list[str] | None = None,
                 ready_path: str = "/tests", extra_args: tuple[str, ...] = (),
                 ca: Path | None = None):
        """``extra_args`` go after the default ``observatory serve`` command; ``argv``
        replaces the command altogether (``{port}`` in it is filled in). ``ca``: the server
        speaks HTTPS with a certificate this CA signed (clients check it)."""
        self.port = free_port()
        self.ca = ca
        self.url = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"
        self.db = db
        self.log = db.with_suffix(".log")
        self._log_file = self.log.open("w")
        full_env = {**os.environ, **(env or {})}
        cmd = argv or [
            sys.executable,
            "-m",
            "workbench.cli",
            "serve",
            "--address",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(db),
            *extra_args,
        ]
        self.proc = subprocess.Popen(
            [c.replace("{port}", str(self.port)) for c in cmd],
            cwd=ROOT,
            env=full_env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait(ready_path)

    @property
    def verify(self):
        """What a client checks the server's certificate with."""
        if self.ca is None:
            return True
        import ssl

        return ssl.create_default_context(cafile=str(self.ca))

    def _wait(self, path: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                # (a page behind the login redirects to it: ready all the same). A quick
                # connect, but a page may take seconds to build on a loaded machine: a
                # short read timeout gave up on each build and asked again, so builds
                # queued behind each other and the page never came (CI, 2026-12-07)
                if httpx.get(self.url + path, timeout=httpx.Timeout(60, connect=2),
                             follow_redirects=True,
                             verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the server, and every process it started that is still running (agents,
        test runs, MCP servers outlive a workbench by design; a test's must not outlive
        the test, or a forgotten busy agent slows every test after it)."""
        import psutil

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(children, timeout=5)
        if not self._log_file.closed:
            self._log_file.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One workbench with the demo dataset, shared by the served tests."""
    s = Served(tmp_path_factory.mktemp("served") / "served.duckdb")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def remote(server):
    """The served workbench's query API."""
    from workbench.client import RemoteStore

    with RemoteStore(server.url) as r:
        yield r


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if IN_CI:
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium package)")
    pytest.skip("chromium not installed: `apt-get install chromium` to run browser tests")


@pytest.fixture
def output_dir(request) -> Path:
    path = OUTPUT / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Log ``client`` in to the dashboards as a browser does: the login form first (it
    sets the form's anti-forgery token), then the form posted with it."""
    import re

    form = client.get("/login").text
    token = re.search(r'name="observatory_login_xsrf" value="([^"]+)"', form).group(1)
    return client.post("/login", data={"username": username, "password": password,
                                       "observatory_login_xsrf": token})


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MiB tmpfs of its own (needs CAP_SYS_ADMIN: skipped, with the reason, without)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount(8) on this machine: cannot make a small file system to fill")
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs was refused (needs CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True, timeout=30)


def fill(folder: Path) -> Path:
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\1" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\1" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)
    return ballast
