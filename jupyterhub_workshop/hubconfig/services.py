"""Hub-side configuration for the workshop service: its configuration file, the managed-service
entry that runs it, its roles, and the night warning banner.

    from jupyterhub_workshop.hubconfig.services import (
        install_server_events, workshop_roles, workshop_service,
    )
    events = "/srv/jupyterhub/workshop-events.jsonl"
    c.JupyterHub.services = [workshop_service(
        {"night_start": "22:00", "night_end": "06:00", "timezone": "America/Denver"},
        "/srv/jupyterhub/workshop-service.json",
        events_file=events,
    )]
    c.JupyterHub.load_roles = workshop_roles()
    install_server_events(c, events)

The settings are ``WorkshopService`` traits (``jupyterhub-workshop-service --help-all``). They
reach the service as a JSON configuration file (``--config``), not as a command line: a command
line is visible to every local user (``ps``), and one file keeps lists and numbers typed.

The hub's ``server-action`` events (every start and stop the hub makes) reach the service
through a spool file the hub appends to (:mod:`jupyterhub_workshop.service.events`); the
service runs beside the hub (a managed service), so both see the same file.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

from ..files import write_atomically

# Least privilege: list users and their servers, read their models, stop servers. Nothing that
# deletes users, volumes or data; no token, auth-state or admin scopes.
# read:users is the only scope that shows a user's `created` (when they first signed in: the
# attendance); it is read:users:name, :groups and :activity (which the culler needs) plus the
# user's roles, server URL, pending action and `created`.
ROLE_SCOPES = [
    "list:users",
    "read:users",
    "read:servers",
    "delete:servers",
]

SERVICE_MODULE = "jupyterhub_workshop.service"
SERVICE_CLASS = "WorkshopService"  # the section of the configuration file


def service_config(settings: Mapping) -> dict:
    """The service's configuration document, ``{"WorkshopService": settings}``.

    The service's own traits and night-window parser check it here, so a bad setting stops the
    hub at start with the service's message rather than a service that dies at every restart.
    Secrets are refused: the hub hands those over in the service's environment.
    """
    from traitlets.config import Config

    from ..service.app import WorkshopService

    settings = json.loads(json.dumps(dict(settings)))  # exactly what the service will read back
    known = set(WorkshopService.class_trait_names(config=True))
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown workshop service setting(s) {unknown}; known: {sorted(known)}")
    if "api_token" in settings:
        raise ValueError(
            "the service's api_token comes from the hub (JUPYTERHUB_API_TOKEN), never from a file"
        )
    if urlsplit(str(settings.get("db_url", ""))).password:
        raise ValueError(
            "db_url holds a password: give it in the service's environment as WORKSHOP_DB_URL, "
            "never in a file or on a command line"
        )
    document = {SERVICE_CLASS: settings}
    WorkshopService(config=Config(document)).build_policy()
    return document


def write_service_config(path: str | os.PathLike, settings: Mapping) -> Path:
    """Write the checked configuration document to ``path`` (owner-only, atomically)."""
    path = Path(path)
    write_atomically(path, json.dumps(service_config(settings), indent=2, sort_keys=True) + "\n", mode=0o600)
    return path


def workshop_service(
    settings: Mapping,
    config_file: str | os.PathLike,
    *,
    name: str = "workshop",
    url: str = "http://127.0.0.1:10101",
    environment: Mapping | None = None,
    events_file: str | os.PathLike | None = None,
) -> dict:
    """Write ``settings`` to ``config_file`` and return the ``c.JupyterHub.services`` entry
    that runs the service as a managed service with ``--config config_file``.

    ``url`` is where the hub and the proxy reach the service; the service listens there too
    unless ``settings`` give ``service_url``. ``environment`` is for secrets such as
    ``WORKSHOP_DB_URL``: a managed service does not inherit the hub's environment.
    ``events_file``: the spool file of the hub's server events (made absolute, as the hub
    resolves it), which :func:`install_server_events` must get too.
    """
    if events_file is not None:
        settings = {**settings, "events_file": str(Path(events_file).absolute())}
    config_file = write_service_config(config_file, settings)
    return {
        "name": name,
        "url": url,
        "command": [sys.executable, "-m", SERVICE_MODULE, "--config", str(config_file)],
        "environment": dict(environment or {}),
        "display": True,  # in the hub's Services menu, for those with access
        "oauth_no_confirm": True,  # our own service: no "authorize" page
    }


def install_server_events(c, events_file: str | os.PathLike, *, max_bytes: int | None = None):
    """Add the handler that writes the hub's server events to ``events_file`` (JSON lines) to
    ``c.EventLogger.handlers``, keeping any handlers already there; returns it. Installing the
    same file twice installs one handler.

    The handler never blocks or breaks the hub: a line appended to a local file per server
    start or stop; a write that fails is one warning in the hub's log (the service's next pass
    reconciles). The file turns over at ``max_bytes`` (16 MiB), one previous file kept.
    """
    from ..service.events import DEFAULT_MAX_BYTES, ServerEventSpool

    path = Path(events_file).absolute()
    handlers = c.EventLogger.handlers if "handlers" in c.EventLogger else []
    handlers = list(handlers() if callable(handlers) else handlers or [])
    for handler in handlers:
        if isinstance(handler, ServerEventSpool) and Path(handler.baseFilename) == path:
            return handler
    handler = ServerEventSpool(path, max_bytes=max_bytes or DEFAULT_MAX_BYTES)
    c.EventLogger.handlers = [*handlers, handler]
    return handler


def workshop_roles(name: str = "workshop") -> list[dict]:
    """The service's role, and the default ``user`` role extended so every participant can
    open the service (their opt-out page). Admins can already; the page itself decides who
    sees the admin view."""
    return [
        {
            "name": f"{name}-service",
            "description": "The workshop service: cull servers and record usage",
            "scopes": list(ROLE_SCOPES),
            "services": [name],
        },
        {
            "name": "user",
            "description": "Standard user privileges, plus the workshop page",
            "scopes": ["self", f"access:services!service={name}"],
        },
    ]


def night_warning(
    night_start: str,
    night_end: str,
    timezone: str,
    warn_before: int = 1800,
    service_path: str = "/services/workshop/",
    clock=None,
):
    """A ``c.JupyterHub.template_vars["announcement"]`` callable: the night-stop warning as a
    banner on every hub page (home, spawn, spawn-pending, token...) from ``warn_before``
    seconds before the night window until it ends, with a link to the opt-out page.

    It is evaluated per request in the hub, so it needs no service round-trip; it does not
    know who opted out (the opt-out page does).
    """
    from datetime import datetime, timedelta
    from html import escape

    from ..service.policy import CullPolicy, NightWindow, warning

    policy = CullPolicy(
        idle_timeout=None,
        night=NightWindow.parse(night_start, night_end, timezone),
        warn_before=timedelta(seconds=warn_before),
    )
    now = clock or (lambda: datetime.now(UTC))

    def announcement(user):
        if user is None or not any(s.active for s in getattr(user, "spawners", {}).values()):
            return ""
        text = warning(True, False, False, policy, now())
        if not text:
            return ""
        text = escape(text).replace(
            "opt out for tonight", f'<a href="{escape(service_path)}">opt out for tonight</a>'
        )
        return text

    return announcement


def closing_banner(
    closing: str,
    notice_days: float = 2.0,
    timezone: str = "UTC",
    service_path: str = "/services/workshop/",
    clock=None,
):
    """A ``c.JupyterHub.template_vars["announcement"]`` callable: from ``notice_days`` before
    ``closing`` (ISO 8601 with its offset) until it, every hub page says when the hub closes,
    with the signed-in user's link to download their whole home (through the service, which
    counts it, to their own server's archive). Evaluated per request in the hub, with no
    service round-trip: a comparison of two times."""
    from datetime import datetime

    from ..closing import Closing

    rule = Closing.parse(closing, notice_days, timezone)
    if rule is None:
        raise ValueError("closing_banner needs a closing time")
    now = clock or (lambda: datetime.now(UTC))
    download = f"{service_path}download"

    def announcement(user):
        if not rule.announced(now()):
            return ""
        return rule.banner(download if user is not None else None)

    return announcement


def board_banner(board_file: str | os.PathLike, timezone: str = "UTC", clock=None):
    """A ``c.JupyterHub.template_vars["announcement"]`` callable: the staff's announcements
    (newest first) on every hub page, and to a participant whose server stopped without them,
    why and when (until they next start a server); to one whose server the cluster restarted in
    place, that it did and why, while that server runs (until the notice's end,
    ``WorkshopKubeSpawner.restart_notice_minutes``). It reads the board file the service and
    the spawner write (:mod:`jupyterhub_workshop.board`) only when the file changed: one
    ``stat`` per page."""
    from datetime import datetime
    from html import escape

    from ..board import BoardReader, banner, restart_sentence, restart_to_show, stop_sentence, stop_to_show

    reader = BoardReader(board_file)
    now = clock or (lambda: datetime.now(UTC))

    def started_at(spawner) -> datetime | None:
        orm = getattr(spawner, "orm_spawner", None)
        started = orm.started if orm is not None else None
        return started.replace(tzinfo=UTC) if started is not None and started.tzinfo is None else started

    def announcement(user):
        board = reader.read()
        moment = now()
        parts = [banner(board, moment)] if board.announcements else []
        stop = board.stops.get(user.name) if user is not None and board.stops else None
        restart = board.restarts.get(user.name) if user is not None and board.restarts else None
        spawners = getattr(user, "spawners", {}) if user is not None else {}
        if stop is not None:
            # a server running or starting now: the notice is old news (the service removes it
            # from the board when it reads the hub's start event)
            started = [t for t in (started_at(s) for s in spawners.values()) if t]
            if stop_to_show(stop, max(started, default=None), any(s.active for s in spawners.values())):
                parts.insert(
                    0, f'<span class="workshop-stop">{escape(stop_sentence(stop, timezone, moment))}</span>'
                )
        if restart is not None:
            # about the server that restarted, only while it runs the run that restarted
            server = spawners.get(restart.server)
            if server is not None and restart_to_show(restart, started_at(server), server.active, moment):
                sentence = escape(restart_sentence(restart, timezone, moment))
                parts.insert(0, f'<span class="workshop-restart">{sentence}</span>')
        return "<br>".join(part for part in parts if part)

    return announcement


def announcements(*parts):
    """One ``announcement`` callable from several (the night warning, the closing banner):
    what each says now, one after another."""
    parts = [part for part in parts if part is not None]

    def announcement(user):
        texts = [part(user) if callable(part) else part for part in parts]
        return "<br>".join(text for text in texts if text)

    return announcement
