"""The documentation site builds with no warning (a broken link, a page left out of the
navigation), loads nothing from another host, and its API reference lists every route of
the route table."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from workbench.server.openapi import _openapi_path
from workbench.server.routes import ROUTES

from .conftest import ROOT

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    assert "WARNING" not in build.stderr, build.stderr[-3000:]
    return out


def test_every_page_is_built(site):
    pages = {p.relative_to(ROOT / "docs").with_suffix("") for p in (ROOT / "docs").rglob("*.md")}
    for page in pages:
        target = site / page / "index.html" if page.name != "index" else site / "index.html"
        assert target.is_file(), page


def test_nothing_loads_from_another_host(site):
    loads = re.compile(r"""<(?:script|img|iframe)[^>]+src=["'](https?:)?//|"""
                       r"""<link[^>]+rel=["'](?:stylesheet|preload|preconnect|icon)["'][^>]*"""
                       r"""href=["'](https?:)?//|url\((["']?)(https?:)?//""", re.I)
    for path in [*site.rglob("*.html"), *site.rglob("*.css")]:
        text = path.read_text(errors="replace")
        found = loads.search(text)
        assert found is None, (path, text[max(0, found.start() - 80):found.end() + 80]
                               if found else "")


def test_the_api_reference_is_the_route_table(site):
    page = (site / "reference" / "api" / "index.html").read_text()
    for route in ROUTES:
        path = _openapi_path(route).replace("{", "{").replace("}", "}")
        assert f"<code>{path}</code>" in page, route.name
    assert "AgentDefinition" in page and "policy" in page
