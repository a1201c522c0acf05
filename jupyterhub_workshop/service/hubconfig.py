"""Hub-side configuration for the workshop service: the managed-service entry and its roles.

    from jupyterhub_workshop.service.hubconfig import workshop_roles, workshop_service
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
        "command": [sys.executable, "-m", "jupyterhub_workshop.cli", "service", *args],
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
