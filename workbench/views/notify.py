"""Notifications: the one way a view tells a person what an action did.

Panel's notifications are Notyf toasts, which set their message as ``innerHTML``: a
message is HTML, and an agent's name in it would be markup. Every message is made text by
:func:`notification_text` (see :mod:`.escape`) before it is sent.
"""

from __future__ import annotations

import logging
from typing import Any

import panel as pn

from .escape import escape

log = logging.getLogger("workbench.views")

#: Characters of a message shown (cut before escaping: no reference is cut in two).
MAX_CHARS = 300


def notification_text(message: object) -> str:
    """What a notification shows for ``message``: its first :data:`MAX_CHARS` characters,
    escaped."""
    return escape(str(message)[:MAX_CHARS])


def _area():
    """The session's notification area (None outside a served page or a notebook's)."""
    return pn.state.notifications


def notify(message: object, kind: str = "success", duration: int = 2500) -> None:
    """Show ``message`` as text in a notification of ``kind`` (success, error, info,
    warning) for ``duration`` ms; nothing where there is no notification area."""
    area = _area()
    if area is not None:
        area.send(notification_text(message), duration=duration, type=kind)


def attempt(fn, *args, ok: str | None = None) -> Any:
    """``fn(*args)``, for an action a person asked for: its result, or None when it was
    refused or failed — then a notification says why, never a broken page. ``ok``: what
    a notification says when it was done."""
    try:
        result = fn(*args)
    except (ValueError, KeyError, PermissionError, RuntimeError) as err:
        if isinstance(err, RuntimeError):  # not a refusal: keep the traceback
            log.exception("control action failed")
        notify(err.args[0] if err.args else err, "error", duration=6000)
        return None
    if ok:
        notify(ok)
    return result
