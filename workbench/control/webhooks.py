"""Outgoing webhooks: every alert, agent state change, approval request and task outcome
can be sent to a team's own systems, signed, retried, and logged per delivery.

A delivery is one POST of a JSON payload (see README, "Webhooks")::

    {"id": "ev-…", "type": "alert.fired", "created_at": "…", "agent_id": "ag-…", "data": {…}}

or, for ``"format": "slack"``, a Slack incoming-webhook body (``{"text": …}``). Each carries
``X-Observatory-Signature: t=UNIX_SECONDS,v1=HEX``, HEX being HMAC-SHA256 with the webhook's
secret over ``"{t}.{raw body}"``; ``t`` is the time of that attempt, so a receiver can
refuse old ones (replays). A delivery that gets no 2xx is retried after
``OBSERVATORY_WEBHOOK_BACKOFF_S`` seconds, doubling, at most :data:`MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import heapq
import hmac
import ipaddress
import json
import logging
import threading
import time
import uuid
from hashlib import sha256
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import config, plugins
from ..config import utcnow
from ..store import control_writes

log = logging.getLogger("workbench.control")

EVENT_TYPES = ("alert.fired", "alert.acknowledged", "alert.resolved", "agent.state",
               "approval.requested", "task.done", "task.failed", "task.cancelled")
#: Body formats: the built-in ones, and those other packages add
#: (``happy_observatory.webhook_formats``: ``fn(event) -> dict``, by name).
PLUGIN_FORMATS: dict[str, Any] = {
    name: fn for name, fn in plugins.working("happy_observatory.webhook_formats").items()
    if name not in ("json", "slack")}
FORMATS = ("json", "slack", *PLUGIN_FORMATS)
MAX_ATTEMPTS = 10
MAX_DELAY_S = 300.0
SIGNATURE_HEADER = "X-Observatory-Signature"
#: Sent with every delivery; the workbench's own API refuses any request that carries it,
#: so a webhook aimed at the workbench (by any name or address) cannot drive it.
DELIVERY_HEADER = "X-Observatory-Delivery"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def sign(secret: str, t: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``t``."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance_s: float = 300,
           now: float | None = None) -> bool:
    """What a receiver does: the signature matches and ``t`` is recent (Python receivers
    may import this)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - t) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, t, body), f"t={t},v1={parts.get('v1', '')}")


def _is_self(url: str, own_url: str | None) -> bool:
    """Whether ``url`` names this workbench: a loopback host (or this server's own host
    name) on this server's port."""
    if not own_url:
        return False
    target, own = urlsplit(url), urlsplit(own_url)
    port = target.port or (443 if target.scheme == "https" else 80)
    own_port = own.port or (443 if own.scheme == "https" else 80)
    if port != own_port:
        return False
    host = (target.hostname or "").lower()
    if host in _LOOPBACK_NAMES or host == (own.hostname or "").lower():
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(
            host).is_unspecified
    except ValueError:
        return False


def check(spec: Any, own_url: str | None = None) -> dict[str, Any]:
    """A webhook definition from a client (ValueError naming the field). A URL of this
    workbench itself (``own_url``) is refused: a delivery would act on its own API."""
    if not isinstance(spec, dict):
        raise ValueError("a webhook must be a JSON object")
    unknown = sorted(set(spec) - {"url", "secret", "events", "format"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (known: events, format, secret, url)")
    url = spec.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") \
            or not urlsplit(url).hostname:
        raise ValueError("url: an http:// or https:// URL is required")
    if _is_self(url, own_url):
        raise ValueError(f"url: {url[:100]} is this workbench itself; a webhook may not call "
                         "its own API")
    secret = spec.get("secret")
    if not isinstance(secret, str) or len(secret) < 8:
        raise ValueError("secret: a string of at least 8 characters is required")
    events = spec.get("events", ["*"])
    if not isinstance(events, list) or not events or not all(
            e == "*" or e in EVENT_TYPES for e in events):
        raise ValueError(f"events: a non-empty list of \"*\" or {', '.join(EVENT_TYPES)}")
    fmt = spec.get("format", "json")
    if fmt not in FORMATS:
        raise ValueError(f"format: one of {', '.join(FORMATS)}")
    return {"url": url, "secret": secret, "events": events, "format": fmt}


def body_of(fmt: str, event: dict[str, Any]) -> Any:
    """The JSON body a webhook of format ``fmt`` is sent for ``event``."""
    if fmt == "slack":
        return {"text": slack_text(event), "observatory": event}
    if fmt in PLUGIN_FORMATS:
        return PLUGIN_FORMATS[fmt](event)
    return event


def slack_text(event: dict[str, Any]) -> str:
    data = event["data"]
    title = data.get("title") or data.get("text") or ""
    who = f" · agent {event['agent_id']}" if event.get("agent_id") else ""
    return f"*{event['type']}*{who}" + (f"\n{title}" if title else "")


class Webhooks:
    """The webhooks and their delivery queue (one thread; deliveries in time order)."""

    def __init__(self, store, backoff_s: float | None = None,
                 own_url: str | None = None) -> None:
        self.store = store
        self.own_url = own_url
        self.backoff_s = float(config.get("OBSERVATORY_WEBHOOK_BACKOFF_S", backoff_s))
        self.hooks: dict[str, dict[str, Any]] = {}
        for row in store.sql("SELECT * FROM webhooks ORDER BY created_at").to_dict("records"):
            row["events"] = json.loads(row["events"])
            self.hooks[row["webhook_id"]] = row
        self._due: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._closed = False
        self._client = httpx.Client(timeout=10, follow_redirects=False)
        threading.Thread(target=self._run, name="webhooks", daemon=True).start()

    # -- defining -----------------------------------------------------------------------
    def add(self, spec: Any, who: str) -> dict[str, Any]:
        hook = {"webhook_id": "wh-" + uuid.uuid4().hex[:10], **check(spec, self.own_url),
                "created_by": who,
                "created_at": utcnow()}
        self.hooks[hook["webhook_id"]] = hook
        control_writes.submit(self.store, "INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?, ?)", [
            hook["webhook_id"], hook["url"], hook["secret"], json.dumps(hook["events"]),
            hook["format"], who, hook["created_at"]])
        return public(hook)

    def delete(self, webhook_id: str) -> None:
        if self.hooks.pop(webhook_id, None) is None:
            raise KeyError(f"no webhook {webhook_id!r}")
        control_writes.submit(self.store, "DELETE FROM webhooks WHERE webhook_id = ?", [webhook_id])

    def list(self) -> list[dict[str, Any]]:
        return [public(h) for h in self.hooks.values()]

    # -- sending ------------------------------------------------------------------------
    def publish(self, event_type: str, agent_id: str | None, data: dict[str, Any]) -> dict:
        """Queue ``event_type`` for every webhook that wants it; returns the event."""
        event = {"id": "ev-" + uuid.uuid4().hex[:12], "type": event_type,
                 "created_at": utcnow().isoformat() + "Z", "agent_id": agent_id, "data": data}
        for hook in list(self.hooks.values()):
            if "*" in hook["events"] or event_type in hook["events"]:
                delivery = {"delivery_id": "dl-" + uuid.uuid4().hex[:12],
                            "webhook_id": hook["webhook_id"], "event": event, "attempts": 0,
                            "created_at": utcnow()}
                self._record(delivery, "pending", None, None)
                self._schedule(delivery, 0.0)
        return event

    def _schedule(self, delivery: dict[str, Any], delay: float) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._due, (time.monotonic() + delay, self._seq, delivery))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._due or
                                            self._due[0][0] > time.monotonic()):
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._closed:
                    self._client.close()
                    return
                _, _, delivery = heapq.heappop(self._due)
            try:
                self._attempt(delivery)
            except Exception:  # one bad delivery must not stop the others
                log.exception("webhook delivery")

    def _attempt(self, delivery: dict[str, Any]) -> None:
        hook = self.hooks.get(delivery["webhook_id"])
        if hook is None:
            self._record(delivery, "failed", None, "the webhook was deleted")
            return
        event = delivery["event"]
        try:
            payload = body_of(hook["format"], event)
        except Exception as err:  # noqa: BLE001  (a plugin format that fails)
            self._record(delivery, "failed", None, f"format {hook['format']}: {err}"[:300])
            return
        body = json.dumps(payload, default=str, separators=(",", ":")).encode()
        delivery["attempts"] += 1
        headers = {"Content-Type": "application/json", "User-Agent": "happy-observatory",
                   "X-Observatory-Event": event["type"],
                   DELIVERY_HEADER: delivery["delivery_id"],
                   SIGNATURE_HEADER: sign(hook["secret"], int(time.time()), body)}
        status, error = None, None
        try:
            response = self._client.post(hook["url"], content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"[:300]
        if error is None:
            self._record(delivery, "delivered", status, None)
        elif delivery["attempts"] >= MAX_ATTEMPTS:
            self._record(delivery, "failed", status, error)
        else:
            self._record(delivery, "retrying", status, error)
            self._schedule(delivery, min(self.backoff_s * 2 ** (delivery["attempts"] - 1),
                                         MAX_DELAY_S))

    def _record(self, delivery: dict[str, Any], state: str, status: int | None,
                error: str | None) -> None:
        event = delivery["event"]
        control_writes.submit(self.store, f"INSERT OR REPLACE INTO webhook_deliveries VALUES "
                              f"({', '.join('?' * 10)})", [
            delivery["delivery_id"], delivery["webhook_id"], event["id"], event["type"], state,
            delivery["attempts"], status, error, delivery["created_at"], utcnow()])

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()


def public(hook: dict[str, Any]) -> dict[str, Any]:
    """A webhook as the API shows it: the secret is never read back."""
    return {"id": hook["webhook_id"], "url": hook["url"], "events": hook["events"],
            "format": hook["format"], "created_by": hook["created_by"],
            "created_at": str(hook["created_at"]), "secret": "********"}
