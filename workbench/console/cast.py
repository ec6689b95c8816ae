"""Recordings of project shells as asciicast v2 files (what asciinema plays).

A header line (JSON), then one JSON array per event: ``[seconds, "o", text]`` for output,
``"i"`` for what was typed, ``"r"`` for a resize to ``"COLSxROWS"``. Bytes are decoded as
UTF-8 incrementally, so a character split between two reads is written whole.
See https://docs.asciinema.org/manual/asciicast/v2/.
"""

from __future__ import annotations

import codecs
import json
import re
import time
from pathlib import Path
from typing import Any

#: A recording's file name: the console's name and the time it started.
NAME = re.compile(r"[\w.-]+\.cast")


class Recorder:
    def __init__(self, path: Path, cols: int, rows: int, title: str,
                 env: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.name = path, path.name
        self._file = path.open("w", encoding="utf-8", buffering=1)  # (a line: an event)
        self._start = time.monotonic()
        self._out = codecs.getincrementaldecoder("utf-8")("replace")
        self._in = codecs.getincrementaldecoder("utf-8")("replace")
        header = {"version": 2, "width": cols, "height": rows, "timestamp": int(time.time()),
                  "title": title, "env": {k: env[k] for k in ("SHELL", "TERM") if k in env}}
        self._line(header)

    def _line(self, value: Any) -> None:
        self._file.write(json.dumps(value, ensure_ascii=False) + "\n")

    def _event(self, code: str, text: str) -> None:
        if text and not self._file.closed:
            self._line([round(time.monotonic() - self._start, 6), code, text])

    def output(self, data: bytes) -> None:
        self._event("o", self._out.decode(data))

    def input(self, data: bytes) -> None:
        self._event("i", self._in.decode(data))
        self._file.flush()  # what was typed is the audit trail: on disk at once

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """A recording's header and events (ValueError naming the file and line when it is
    not asciicast v2)."""
    header: dict[str, Any] | None = None
    events: list[list[Any]] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path.name}:{number}: not JSON ({err.msg})") from None
            if header is None:
                if not isinstance(value, dict) or value.get("version") != 2:
                    raise ValueError(f"{path.name}:1: not an asciicast v2 header")
                header = value
            elif isinstance(value, list) and len(value) == 3:
                events.append(value)
            else:
                raise ValueError(f"{path.name}:{number}: not an event [time, code, data]")
    if header is None:
        raise ValueError(f"{path.name}: empty")
    return header, events
