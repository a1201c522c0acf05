"""The hub configuration the Helm chart runs: the chart's ``workshop:`` settings onto a
traitlets ``Config``.

The chart hands the hub its ``workshop:`` values as ``custom.workshop`` (through the Secret named
by ``jupyterhub.hub.existingSecret``), without the contents that have Secrets of their own and
with ``wiring``: the names and paths the chart resolved from its ``jupyterhub:`` values.
``helm-chart/files/workshop_config.py``, which Zero to JupyterHub runs from
``jupyterhub_config.d/``, only calls :func:`configure_from_z2jh`.

Settings are not checked here: ``values.schema.json`` checks them when Helm renders, and the
package's own parsers (the service's traits, night window and schedule, the spawner's storage
and shared data) when this runs, so the hub refuses to start with their message.

The hub's spawn limits for the crowd are set here too (:func:`crowd_limits`, the rule
``jupyterhub-workshop plan`` prints), unless the operator set them: the chart gives z2jh
``hub.concurrentSpawnLimit: -1`` (:data:`SPAWN_LIMIT_FROM_WORKSHOP`) instead of its 64.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from ..board import BOARD_FILE_NAME
from ..closing import DEFAULT_NOTICE_DAYS
from ..login.overlay import DESK_FILE_NAME
from ..login.seen import SEEN_FILE_NAME
from ..schedule import Schedule
from ..spawn_limits import SpawnLimits, spawn_limits
from .services import (
    announcements,
    board_banner,
    closing_banner,
    install_server_events,
    night_warning,
    workshop_roles,
    workshop_service,
)

SERVICE_NAME = "workshop"
SERVICE_CONFIG_NAME = "workshop-service.json"
EVENTS_FILE_NAME = "workshop-events.jsonl"
PREWARM_DEPLOYMENT = "workshop-prewarm"  # the chart's placeholder Deployment (wiring.prewarmDeployment)
# where a pod finds the Kubernetes API (in-cluster configuration)
KUBERNETES_ENV = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
# jupyterhub.hub.concurrentSpawnLimit in the chart's values.yaml: "the workshop sets it" (a limit
# no operator means: JupyterHub would refuse every spawn). Not null, which Helm does not reliably
# let a parent chart's values.yaml use to erase z2jh's default, 64.
SPAWN_LIMIT_FROM_WORKSHOP = -1
# workshop.arrival's defaults (helm-chart/values.yaml), as `jupyterhub-workshop plan` has them
ARRIVAL_DEFAULTS = {"minutes": 10, "podStartSeconds": 30, "nodeBootMinutes": 5}


class WorkshopConfigError(ValueError):
    """The hub did not receive what the chart should have handed it."""


def configure_from_z2jh(c, z2jh=None) -> None:
    """:func:`configure` with what Zero to JupyterHub's hub offers: its ``z2jh`` helper module
    (values, resource names) and the hub's environment."""
    if z2jh is None:
        import z2jh  # z2jh's hub puts its helper module beside jupyterhub_config.py
    configure(
        c,
        z2jh.get_config("custom.workshop"),
        hub_host=z2jh.get_name("hub"),
        base_url=z2jh.get_config("hub.baseUrl") or "/",
        environ=os.environ,
    )


def configure(
    c,
    settings: Mapping,
    *,
    hub_host: str = "hub",
    base_url: str = "/",
    environ: Mapping[str, str] | None = None,
    service_config_dir: str | os.PathLike | None = None,
    events_file: str | os.PathLike | None = None,
) -> None:
    """Apply the chart's ``workshop:`` settings (with their ``wiring``) to the config ``c``.

    ``hub_host`` is the hub's Service name (the proxy reaches the workshop service through it),
    ``base_url`` the hub's base URL, ``environ`` the hub's environment (for ``WORKSHOP_DB_URL``).
    The service's configuration file goes to ``service_config_dir``; by default a new private
    temporary directory, because the file is rebuilt from the settings at every hub start and
    must outlive nothing but this hub process (which restarts the service from it).
    ``events_file`` is the spool of the hub's server events the service reads; by default
    beside the chart's SQLite file, on the hub's own volume (:func:`events_file_for`), so events
    written while the service restarts wait there.
    """
    if not isinstance(settings, Mapping) or not isinstance(settings.get("wiring"), Mapping):
        raise WorkshopConfigError(
            "custom.workshop (with its wiring) is missing: the hub did not receive the chart's "
            "workshop settings. Is jupyterhub.hub.existingSecret the Secret the jupyterhub-workshop "
            "chart writes (default workshop-hub-settings)?"
        )
    environ = os.environ if environ is None else environ
    wiring = settings["wiring"]
    _configure_login(c, settings, wiring)
    _configure_spawner(c, settings, wiring)
    if service_config_dir is None:
        service_config_dir = tempfile.mkdtemp(prefix="workshop-service-")  # mode 0700
    _configure_service(
        c,
        settings,
        wiring,
        hub_host=hub_host,
        base_url=base_url,
        environ=environ,
        config_file=Path(service_config_dir) / SERVICE_CONFIG_NAME,
        events_file=Path(events_file) if events_file is not None else events_file_for(wiring),
    )
    _configure_spawn_limits(c, settings, wiring)


def desk_file_for(wiring: Mapping) -> Path:
    """The card desk's file: ``wiring.deskFile`` if the chart names one, else on the hub's own
    volume beside the SQLite file (``/srv/jupyterhub``), where the authenticator (the hub) and the
    managed service (in the hub container) both reach it and a ``helm upgrade`` keeps it — not
    in the accounts Secret, which the organizer's next upgrade replaces."""
    if wiring.get("deskFile"):
        return Path(wiring["deskFile"])
    return hub_volume(wiring) / DESK_FILE_NAME


def hub_volume(wiring: Mapping) -> Path:
    """The hub's own volume (``/srv/jupyterhub``): where the SQLite file the chart names is."""
    sqlite_url = str(wiring.get("sqliteUrl") or "sqlite:////srv/jupyterhub/workshop-usage.sqlite")
    return Path(sqlite_url.split(":///", 1)[-1]).parent


def events_file_for(wiring: Mapping) -> Path:
    """Where the hub writes its server events for the service: ``wiring.eventsFile`` if the
    chart names one, else beside the SQLite file the chart names (``/srv/jupyterhub``, the
    hub's volume, in the hub container the managed service runs in too)."""
    if wiring.get("eventsFile"):
        return Path(wiring["eventsFile"])
    return hub_volume(wiring) / EVENTS_FILE_NAME


def board_file_for(events_file: Path) -> Path:
    """The board the service writes and the hub's pages read: beside the events file, on the
    hub's persistent volume (/srv/jupyterhub), in the one container both run in (the hub's)."""
    return Path(events_file).parent / BOARD_FILE_NAME


def _section(settings: Mapping, *keys: str) -> Mapping:
    value = settings
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _given(mapping: Mapping) -> dict:
    """``mapping`` without unset values (None; "" where the chart means "not set")."""
    return {key: value for key, value in mapping.items() if value is not None and value != ""}


def typed_time_text(value) -> str:
    """A time from the values as the text the settings take: YAML reads an unquoted
    2026-07-17T18:00:00-06:00 as a datetime (written back with its offset; one without an
    offset stays without, and is refused by the parser that reads it)."""
    from datetime import datetime

    return value.isoformat() if isinstance(value, datetime) else str(value)


def _configure_login(c, settings: Mapping, wiring: Mapping) -> None:
    c.JupyterHub.authenticator_class = "workshop"
    c.WorkshopAuthenticator.accounts_file = wiring["accountsFile"]
    c.WorkshopAuthenticator.desk_file = str(desk_file_for(wiring))
    # what the hub last saw of each card, for a change made while it was down: on its volume,
    # which a restart and an upgrade keep (the default, relative to its working directory,
    # would be the same place on z2jh; named here so it does not depend on the image's workdir)
    c.WorkshopAuthenticator.seen_file = str(hub_volume(wiring) / SEEN_FILE_NAME)
    if settings.get("title"):
        c.WorkshopAuthenticator.workshop_title = settings["title"]
    if settings.get("loginHint"):
        c.WorkshopAuthenticator.login_hint = settings["loginHint"]
    closing = _section(settings, "closing")
    if closing.get("at"):
        # the authenticator's own parser: a bad time stops the hub at start, saying why
        c.WorkshopAuthenticator.closing = typed_time_text(closing["at"])
    if closing.get("message"):
        c.WorkshopAuthenticator.closing_message = closing["message"]


def home_storage(storage: Mapping) -> dict:
    """``workshop.storage`` (z2jh's shape) as the spawner's ``home_storage`` keys; only the
    keys given, so a group's settings merge over everyone's."""
    dynamic, static = _section(storage, "dynamic"), _section(storage, "static")
    return _given(
        {
            "mode": storage.get("type"),
            "capacity": storage.get("capacity"),
            "storage_class": dynamic.get("storageClass"),  # null or "": the cluster's default class
            "claim": static.get("pvcName"),
            "sub_path": static.get("subPath"),
        }
    )


def shared_data(shared: Mapping) -> dict:
    """``workshop.sharedData`` as the spawner's ``shared_data`` (empty: no shared data)."""
    nfs = _section(shared, "nfs")
    if nfs.get("server"):
        source = _given({"nfs_server": nfs["server"], "nfs_path": nfs.get("path")})
    elif shared.get("pvcName"):
        source = {"claim": shared["pvcName"]}
    else:
        return {}
    return {
        **source,
        **_given(
            {"mount_path": shared.get("mountPath"), "writable_mount_path": shared.get("writableMountPath")}
        ),
    }


def high_performance(fast: Mapping) -> dict:
    """``workshop.highPerformance`` as the spawner's ``high_performance`` (empty: no profile)."""
    if not fast.get("enabled"):
        return {}
    cpu, memory = _section(fast, "cpu"), _section(fast, "memory")
    return _given(
        {
            "node_selector": fast.get("nodeSelector") or None,
            "tolerations": fast.get("tolerations") or None,
            "gpus": fast.get("gpus") or None,
            "cpu_guarantee": cpu.get("guarantee"),
            "cpu_limit": cpu.get("limit"),
            "mem_guarantee": memory.get("guarantee"),
            "mem_limit": memory.get("limit"),
        }
    )


def _configure_spawner(c, settings: Mapping, wiring: Mapping) -> None:
    from ..spawner.pod import HomeStorage, SharedData, home_storage_for

    c.JupyterHub.spawner_class = "workshop"
    spawner = c.WorkshopKubeSpawner

    storage = _section(settings, "storage")
    everyone = home_storage(storage)
    by_group = {
        group: home_storage(_section(storage, "forGroups", group)) for group in storage.get("forGroups") or {}
    }
    # the spawner's own parser, now rather than at someone's spawn
    base = HomeStorage.from_config(everyone)
    for group in by_group:
        home_storage_for([group], base, by_group)
    spawner.home_storage = everyone
    spawner.home_storage_for_groups = by_group
    if storage.get("homeMountPath"):
        spawner.home_mount_path = storage["homeMountPath"]
    if storage.get("claimBindTimeout") is not None:
        spawner.home_claim_bind_timeout = storage["claimBindTimeout"]

    shared = _section(settings, "sharedData")
    shared_volume = shared_data(shared)
    SharedData.from_config(shared_volume)
    spawner.shared_data = shared_volume
    if shared.get("writerGroups") is not None:
        spawner.shared_writer_groups = list(shared["writerGroups"])

    spawner.readme_config_map = wiring.get("readmeConfigMap") or ""
    spawner.readme_config_map_key = wiring.get("readmeKey") or "README.md"

    cull = _section(settings, "cull")
    if cull.get("kernelIdleTimeout") is not None:
        spawner.kernel_idle_timeout = cull["kernelIdleTimeout"]

    fast = _section(settings, "highPerformance")
    spawner.high_performance = high_performance(fast)
    if fast.get("enabled") and fast.get("groups") is not None:
        spawner.high_performance_groups = list(fast["groups"])


def schedule_setting(schedule) -> dict:
    """``workshop.schedule`` as the service's ``schedule`` trait: {} for none, and dates that
    YAML read as dates (an unquoted 2026-07-14) written back as text, as the file holds them."""

    def plain(value):
        if isinstance(value, Mapping):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value.isoformat() if isinstance(value, date) else value

    return plain(schedule) if isinstance(schedule, Mapping) and schedule else {}


def service_settings(settings: Mapping, wiring: Mapping, environ: Mapping[str, str] | None = None) -> dict:
    """``workshop.cull``, ``workshop.service``, ``workshop.schedule`` and ``workshop.prewarm`` as
    ``WorkshopService`` traits (the service's configuration file), without the database URL
    when it comes from a Secret. The schedule goes with its pre-warm lead and hold (the service
    shows the stretches even when it scales nothing); the Deployment to scale only with
    ``prewarm.enabled``, in the hub's namespace (``$POD_NAMESPACE`` of ``environ``); the servers'
    memory and CPU from the pod metrics of that namespace."""
    cull, night, service, prewarm, closing = (
        _section(settings, "cull"),
        _section(settings, "cull", "night"),
        _section(settings, "service"),
        _section(settings, "prewarm"),
        _section(settings, "closing"),
    )
    traits = {
        # listen on every interface of the hub pod: the proxy comes through the hub Service
        "service_url": f"http://0.0.0.0:{int(wiring['servicePort'])}",
        "idle_timeout": cull.get("timeout"),
        "cull_every": cull.get("every"),
        "max_age": cull.get("maxAge"),
        "concurrency": cull.get("concurrency"),
        "exempt_groups": cull.get("exemptGroups"),
        "dry_run": cull.get("dryRun"),
        "night_start": night.get("start"),
        "night_end": night.get("end"),
        "timezone": night.get("timeZone"),
        "staff_groups": service.get("staffGroups"),
        "users_per_node": service.get("usersPerNode"),
        "price_per_node_hour": service.get("pricePerNodeHour"),
        "currency": service.get("currency"),
        "accounts_file": wiring["accountsFile"],  # the attendance's cards, the authenticator's file
        "closing": typed_time_text(closing["at"]) if closing.get("at") else None,
        "closing_notice_days": closing.get("noticeDays") if closing.get("at") else None,
        "desk_file": str(desk_file_for(wiring)),  # the card desk writes it, the authenticator merges it
        "card_desk_groups": service.get("cardDeskGroups"),
        # each server's memory and CPU on the admin page: the server pods' metrics (the chart's
        # Role workshop-pod-metrics; without metrics-server the page says so)
        "server_resources": "kubernetes",
        "server_resources_namespace": (environ or {}).get("POD_NAMESPACE") or None,
    }
    if not wiring.get("databaseFromSecret"):
        traits["db_url"] = wiring["sqliteUrl"]
    schedule = schedule_setting(settings.get("schedule"))
    if schedule:
        traits.update(schedule=schedule, prewarm_lead=prewarm.get("lead"), prewarm_hold=prewarm.get("hold"))
    if prewarm.get("enabled"):
        traits["prewarm_deployment"] = wiring.get("prewarmDeployment") or PREWARM_DEPLOYMENT
        traits["prewarm_namespace"] = (environ or {}).get("POD_NAMESPACE") or None
    return {key: value for key, value in traits.items() if value is not None}


def _configure_service(
    c,
    settings: Mapping,
    wiring: Mapping,
    *,
    hub_host: str,
    base_url: str,
    environ: Mapping[str, str],
    config_file: Path,
    events_file: Path,
) -> None:
    environment = {}
    if wiring.get("databaseFromSecret"):
        # a managed service does not inherit the hub's environment (nor hub.extraEnv)
        url = environ.get("WORKSHOP_DB_URL", "")
        if not url:
            raise WorkshopConfigError(
                "workshop.service.database is set but $WORKSHOP_DB_URL is empty in the hub: does the "
                f"Secret {wiring.get('databaseSecret')!r} exist, with the URL under the key "
                "jupyterhub.hub.extraEnv.WORKSHOP_DB_URL names?"
            )
        environment["WORKSHOP_DB_URL"] = url
    # the service reads the servers' pod metrics (server_resources, always) and scales the
    # pre-warm placeholders with the pod's in-cluster configuration, which needs the API
    # server's address from the environment (like WORKSHOP_DB_URL, not inherited)
    environment.update({key: environ[key] for key in KUBERNETES_ENV if environ.get(key)})

    traits = service_settings(settings, wiring, environ)
    board_file = board_file_for(events_file)
    traits["board_file"] = str(board_file)
    # the spawner notes there a pod that ended outside the hub (OOMKilled, Evicted, deleted)
    c.WorkshopKubeSpawner.board_file = str(board_file)
    entry = workshop_service(
        traits,
        config_file,
        name=SERVICE_NAME,
        environment=environment,
        url=f"http://{hub_host}:{int(wiring['servicePort'])}",
        events_file=events_file,
    )
    install_server_events(c, events_file)
    services = list(c.JupyterHub.services) if "services" in c.JupyterHub else []
    for existing in services:
        if existing.get("name") == SERVICE_NAME:
            # z2jh's entry from hub.services.workshop: keep its api_token (kept in Secret `hub`)
            existing.update(entry)
            break
    else:
        services.append(entry)
    c.JupyterHub.services = services

    roles = list(c.JupyterHub.load_roles) if "load_roles" in c.JupyterHub else []
    for role in workshop_roles(SERVICE_NAME):
        same = next((r for r in roles if r.get("name") == role["name"]), None)
        if same is None:
            roles.append(role)
        else:  # e.g. a `user` role from hub.loadRoles: add our scopes to it
            for key in ("scopes", "services"):
                merged = list(same.get(key) or [])
                merged += [item for item in role.get(key, []) if item not in merged]
                if merged:
                    same[key] = merged
    c.JupyterHub.load_roles = roles

    service_path = f"{base_url.rstrip('/')}/services/{SERVICE_NAME}/"
    parts = [board_banner(board_file, traits.get("timezone", "UTC"))]
    if traits.get("night_start") or traits.get("night_end"):
        parts.append(
            night_warning(
                traits.get("night_start", ""),
                traits.get("night_end", ""),
                traits.get("timezone", "UTC"),
                service_path=service_path,
            )
        )
    if traits.get("closing"):
        parts.append(
            closing_banner(
                traits["closing"],
                traits.get("closing_notice_days", DEFAULT_NOTICE_DAYS),
                traits.get("timezone", "UTC"),
                service_path=service_path,
            )
        )
    template_vars = dict(c.JupyterHub.template_vars) if "template_vars" in c.JupyterHub else {}
    template_vars.setdefault("announcement", parts[0] if len(parts) == 1 else announcements(*parts))
    c.JupyterHub.template_vars = template_vars


# --- spawn limits for the crowd -----------------------------------------------------------------


def participant_cards(accounts_file) -> int | None:
    """Participant cards not revoked in the accounts file (whom the service pre-warms for when
    the schedule says no number); None when the file cannot be read (the authenticator, which
    reads it too, says why)."""
    from ..login.accounts import load_accounts

    if not accounts_file:
        return None
    try:
        book = load_accounts(accounts_file)
    except (OSError, ValueError):  # AccountsFileError is a ValueError
        return None
    return sum(1 for account in book.values() if account.role == "participant" and not account.revoked)


def expected_people(settings: Mapping, wiring: Mapping) -> int | None:
    """People expected at once: the most any session of ``workshop.schedule`` expects (its own
    number, else the schedule's, else the participant cards), or without a schedule the
    participant cards; None when nothing says."""
    cards: list[int | None] = []

    def card_count() -> int | None:
        if not cards:
            cards.append(participant_cards(wiring.get("accountsFile")))
        return cards[0]

    schedule = schedule_setting(settings.get("schedule"))
    if not schedule:
        return card_count()
    parsed = Schedule.parse(schedule, "workshop.schedule")
    counts = []
    for session in parsed.sessions:
        people = session.expected if session.expected is not None else parsed.expected
        if people is None:
            people = card_count()
        if people is not None:
            counts.append(people)
    return max(counts, default=None)


def crowd_limits(settings: Mapping, wiring: Mapping) -> SpawnLimits | None:
    """:func:`~jupyterhub_workshop.spawn_limits.spawn_limits` for the people expected
    (:func:`expected_people`) arriving as ``workshop.arrival`` says, on a pre-warmed cluster
    with ``workshop.prewarm.enabled``, with capacity in whole nodes of
    ``workshop.service.usersPerNode`` (none without it); None when no number of people is known."""
    people = expected_people(settings, wiring)
    if people is None:
        return None
    arrival = {**ARRIVAL_DEFAULTS, **_given(_section(settings, "arrival"))}
    per_node = int(_section(settings, "service").get("usersPerNode") or 0)
    return spawn_limits(
        people,
        arrival_minutes=arrival["minutes"],
        pod_start_seconds=arrival["podStartSeconds"],
        node_boot_minutes=arrival["nodeBootMinutes"],
        prewarmed=bool(_section(settings, "prewarm").get("enabled")),
        capacity=math.ceil(people / per_node) * per_node if per_node > 0 else 0,
    )


def _configure_spawn_limits(c, settings: Mapping, wiring: Mapping) -> None:
    """JupyterHub's concurrent spawn limit from :func:`crowd_limits`, unless the operator set
    one: the operator's z2jh hub.concurrentSpawnLimit, or hub.config.JupyterHub, is in ``c``
    already (the chart's own value is :data:`SPAWN_LIMIT_FROM_WORKSHOP`), and hub.extraConfig
    runs after this and wins. Without a number of people, JupyterHub's own default.

    The active server limit is left to the operator (``plan`` prints one): a limit taken from
    the cards would turn away the instructors and late attendees it does not count."""
    if c.JupyterHub.get("concurrent_spawn_limit") == SPAWN_LIMIT_FROM_WORKSHOP:
        del c.JupyterHub["concurrent_spawn_limit"]
    if "concurrent_spawn_limit" in c.JupyterHub:
        return
    limits = crowd_limits(settings, wiring)
    if limits is not None:
        c.JupyterHub.concurrent_spawn_limit = limits.concurrent_spawn_limit
