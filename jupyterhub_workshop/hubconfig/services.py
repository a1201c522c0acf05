"""Hub-side configuration for the workshop service: the managed-service entry and its roles.

    from jupyterhub_workshop.hubconfig.services import workshop_roles, workshop_service
    c.JupyterHub.services = [workshop_service(args=["--night-start=22:00", "--night-end=06:00",
                                                    "--timezone=America/Denver"])]
    c.JupyterHub.load_roles = workshop_roles()
"""

from __future__ import annotations

import sys

# Least privilege: list users and their servers, read names/admin flag, groups and activity,
# stop servers. Nothing that deletes users, volumes or data; no token or admin scopes.
ROLE_SCOPES = [
    "list:users",
    "read:users:name",
    "read:users:groups",
    "read:users:activity",
    "read:servers",
    "delete:servers",
]


def workshop_service(name: str = "workshop", port: int = 10101, args: list[str] = (),
                     environment: dict | None = None, host: str = "127.0.0.1") -> dict:
    """A ``c.JupyterHub.services`` entry that runs the service as a managed service."""
    return {
        "name": name,
        "url": f"http://{host}:{port}",
        "command": [sys.executable, "-m", "jupyterhub_workshop.service", *args],
        "environment": dict(environment or {}),
        "display": True,  # in the hub's Services menu, for those with access
        "oauth_no_confirm": True,  # our own service: no "authorize" page
    }


def workshop_roles(name: str = "workshop") -> list[dict]:
    """The service's role, and the default ``user`` role extended so every participant can
    open the service (their opt-out page). Admins can already; the page itself decides who
    sees the admin view."""
    return [
        {"name": f"{name}-service", "description": "The workshop service: cull servers and record usage",
         "scopes": list(ROLE_SCOPES), "services": [name]},
        {"name": "user", "description": "Standard user privileges, plus the workshop page",
         "scopes": ["self", f"access:services!service={name}"]},
    ]


def night_warning(night_start: str, night_end: str, timezone: str, warn_before: int = 1800,
                  service_path: str = "/services/workshop/", clock=None):
    """A ``c.JupyterHub.template_vars["announcement"]`` callable: the night-stop warning as a
    banner on every hub page (home, spawn, spawn-pending, token...) from ``warn_before``
    seconds before the night window until it ends, with a link to the opt-out page.

    It is evaluated per request in the hub, so it needs no service round-trip; it does not
    know who opted out (the opt-out page does).
    """
    from datetime import datetime, timedelta, timezone as tz
    from html import escape

    from ..service.policy import CullPolicy, NightWindow, warning

    policy = CullPolicy(idle_timeout=None, night=NightWindow.parse(night_start, night_end, timezone),
                        warn_before=timedelta(seconds=warn_before))
    now = clock or (lambda: datetime.now(tz.utc))

    def announcement(user):
        if user is None or not any(s.active for s in getattr(user, "spawners", {}).values()):
            return ""
        text = warning(True, False, False, policy, now())
        if not text:
            return ""
        text = escape(text).replace("opt out for tonight", f'<a href="{escape(service_path)}">opt out for tonight</a>')
        return text

    return announcement
