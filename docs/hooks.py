"""MkDocs hook: the API reference page is generated from the route table, so the
documentation cannot drift from what the server serves (``mkdocs build --strict``)."""

from __future__ import annotations

MARKER = "<!-- the route table -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from workbench.server.openapi import markdown as reference
    from workbench.server.routes import ROUTES

    return markdown.replace(MARKER, reference(ROUTES))
