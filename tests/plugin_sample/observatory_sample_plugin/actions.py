"""An alert action, a webhook format and an export target."""

from __future__ import annotations

import json
import os


def append_to_file(alert: dict) -> None:
    """Append the alert as a JSON line to the file $SAMPLE_PLUGIN_ALERTS names."""
    with open(os.environ["SAMPLE_PLUGIN_ALERTS"], "a", encoding="utf-8") as f:
        f.write(json.dumps(alert) + "\n")


def teams(event: dict) -> dict:
    """A message card body (Microsoft Teams' incoming webhooks)."""
    data = event.get("data") or {}
    return {"@type": "MessageCard", "summary": event["type"],
            "title": data.get("title") or event["type"], "text": json.dumps(data)[:500]}


def runs_jsonl(store, flt, dest: str) -> str:
    """The stored runs as JSON lines in the file ``dest``."""
    frame = store.query("runs", project=flt.project, limit=100_000, offset=0)
    frame.to_json(dest, orient="records", lines=True, date_format="iso")
    return f"{dest}: {len(frame)} runs"
