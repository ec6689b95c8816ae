"""The HTTP client every client of a workbench's API uses (notebooks, the CLI, the remote
intake, the devkit backend): its base URL and the bearer token."""

from __future__ import annotations

import httpx

from . import config


def http_client(url: str, token: str | None = None, timeout: float = 60.0) -> httpx.Client:
    """An HTTP client for a workbench's API, sending ``token`` (default
    ``$OBSERVATORY_TOKEN``) as a bearer token."""
    token = token or config.get("OBSERVATORY_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
