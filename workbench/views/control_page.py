"""Building the control page for one session: whose session it is decides the role."""

from __future__ import annotations

import panel as pn

from ..models.control import ControlModel
from .control import ControlDashboard


def session_principal():
    """The session's principal: the logged-in user and their role, else (nothing
    configured, so only loopback reaches the page) the loopback admin."""
    from ..control.access import Principal
    from ..server.auth import ROLE_COOKIE, login_role

    user = pn.state.user
    client = _remote_ip()
    if user:
        cookies = pn.state.cookies or {}
        return Principal(user, login_role(user, cookies.get(ROLE_COOKIE),
                                          pn.config.cookie_secret), client)
    return Principal("loopback", "admin", client)


def _remote_ip() -> str:
    """The browser's address, as the audit log records it for an API client."""
    context = pn.state.curdoc.session_context if pn.state.curdoc else None
    request = getattr(getattr(context, "request", None), "_request", None)
    return f"{getattr(request, 'remote_ip', '') or '?'} (dashboard)"


def control_page(store) -> pn.template.BaseTemplate:
    from ..control.local import LocalControl
    from ..server.state import get_supervisor

    supervisor = get_supervisor()
    dashboard = ControlDashboard(model=ControlModel(
        control=LocalControl(supervisor, session_principal())))
    dashboard.subscribe(supervisor)
    agent = (pn.state.session_args or {}).get("agent")
    if agent:  # ?agent=ag-…: that agent's detail (a workflow step links here)
        dashboard.model.selected = agent[0].decode(errors="replace")
    return dashboard.template()
