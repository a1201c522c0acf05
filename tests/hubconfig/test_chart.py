"""configure(c, settings): the chart's `workshop:` settings onto a traitlets Config, without
Zero to JupyterHub (tests/chart/ runs it inside z2jh's own hub configuration)."""

from __future__ import annotations

import copy
import json
import logging
import stat
import sys
import tempfile
import types
from pathlib import Path

import argon2
import pytest
import yaml
from traitlets.config import Config

from jupyterhub_workshop.hubconfig import chart
from jupyterhub_workshop.hubconfig.chart import (
    WorkshopConfigError,
    configure,
    configure_from_z2jh,
)
from jupyterhub_workshop.hubconfig.services import ROLE_SCOPES
from jupyterhub_workshop.login.accounts import Account, save_accounts

pytestmark = pytest.mark.jh55  # the hub image runs JupyterHub 5.5: this runs there
ROOT = Path(__file__).resolve().parents[2]
# what the chart's templates add as custom.workshop.wiring (names resolved from `jupyterhub:`)
WIRING = {
    "accountsFile": "/etc/workshop/accounts/accounts.yaml",
    "readmeConfigMap": "workshop-readme",
    "readmeKey": "README.md",
    "servicePort": 10101,
    "databaseFromSecret": False,
    "databaseSecret": "workshop-db",
    "sqliteUrl": "sqlite:////srv/jupyterhub/workshop-usage.sqlite",
}


def chart_settings(**changes) -> dict:
    """The chart's default `workshop:` values as the hub receives them, with ``changes`` merged."""
    settings = yaml.safe_load((ROOT / "helm-chart" / "values.yaml").read_text())["workshop"]
    for key in ("grafanaDashboard",):
        settings.pop(key)
    settings["accounts"].pop("file")
    settings["readme"].pop("content")
    settings["service"]["database"].pop("url")
    settings["wiring"] = dict(WIRING)

    def merge(base, extra):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = copy.deepcopy(value)

    merge(settings, changes)
    return settings


def configured(tmp_path, settings=None, c=None, **kwargs) -> Config:
    c = Config() if c is None else c
    kwargs.setdefault("environ", {})
    configure(c, chart_settings() if settings is None else settings, service_config_dir=tmp_path, **kwargs)
    return c


def service_entry(c) -> dict:
    [entry] = [s for s in c.JupyterHub.services if s["name"] == "workshop"]
    return entry


def service_file(c) -> dict:
    command = service_entry(c)["command"]
    assert (
        command[:4] == [sys.executable, "-m", "jupyterhub_workshop.service", "--config"] and len(command) == 5
    )
    return json.loads(Path(command[4]).read_text())["WorkshopService"]


def test_the_chart_defaults(tmp_path):
    c = configured(tmp_path, hub_host="hub")
    assert c.JupyterHub.authenticator_class == "workshop" and c.JupyterHub.spawner_class == "workshop"
    assert c.WorkshopAuthenticator.accounts_file == "/etc/workshop/accounts/accounts.yaml"
    assert c.WorkshopAuthenticator.desk_file == "/srv/jupyterhub/accounts-desk.yaml"
    assert c.WorkshopAuthenticator.seen_file == "/srv/jupyterhub/workshop-cards-seen.json"
    assert "workshop_title" not in c.WorkshopAuthenticator  # empty title: the authenticator's default
    spawner = c.WorkshopKubeSpawner
    assert spawner.home_storage == {"mode": "dynamic", "capacity": "10Gi", "sub_path": "{username}"}
    assert spawner.home_storage_for_groups == {}
    assert spawner.home_mount_path == "/home/jovyan" and spawner.home_claim_bind_timeout == 120
    assert spawner.shared_data == {} and spawner.shared_writer_groups == ["instructors"]
    assert spawner.readme_config_map == "workshop-readme" and spawner.kernel_idle_timeout == 3600
    assert spawner.high_performance == {}
    # a pod that ends outside the hub is noted on the service's board, on the hub's volume
    assert spawner.board_file == "/srv/jupyterhub/workshop-board.json"
    # per-user resources and profiles are z2jh's (singleuser.cpu/memory/profileList): not touched
    assert "KubeSpawner" not in c

    entry = service_entry(c)
    assert entry["url"] == "http://hub:10101"  # the proxy reaches the service through the hub Service
    assert entry["environment"] == {} and entry["display"] is True
    assert service_file(c) == {
        "service_url": "http://0.0.0.0:10101",  # every interface of the hub pod
        "idle_timeout": 3600,
        "cull_every": 60,
        "max_age": 0,
        "concurrency": 10,
        "exempt_groups": ["instructors"],
        "dry_run": False,
        "night_start": "",
        "night_end": "",
        "timezone": "UTC",
        "staff_groups": ["instructors"],
        "users_per_node": 0,
        "price_per_node_hour": 0,
        "currency": "USD",
        "accounts_file": "/etc/workshop/accounts/accounts.yaml",  # the authenticator's, for attendance
        # the card desk's changes on the hub's volume, which a helm upgrade keeps
        "desk_file": "/srv/jupyterhub/accounts-desk.yaml",
        "card_desk_groups": ["instructors"],
        "db_url": "sqlite:////srv/jupyterhub/workshop-usage.sqlite",  # on the hub's volume
        # the hub's server events, written beside it by the handler the hub installs
        "events_file": "/srv/jupyterhub/workshop-events.jsonl",
        # announcements and stop notices: on the hub's volume, the service writes, the hub reads
        "board_file": "/srv/jupyterhub/workshop-board.json",
        # each server's memory and CPU from the pod metrics (of the hub's namespace, $POD_NAMESPACE)
        "server_resources": "kubernetes",
    }
    [spool] = c.EventLogger.handlers
    assert spool.baseFilename == "/srv/jupyterhub/workshop-events.jsonl"
    assert not Path("/srv/jupyterhub/workshop-events.jsonl").exists()  # made at the first event, not here
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["workshop-service"]["scopes"] == ROLE_SCOPES and roles["workshop-service"]["services"] == [
        "workshop"
    ]
    assert "access:services!service=workshop" in roles["user"]["scopes"]
    # no night window, no closing: the banner is the board's alone (nothing posted yet: empty)
    assert c.JupyterHub.template_vars["announcement"](None) == ""


def test_storage_in_z2jh_shape_becomes_the_spawner_home_storage(tmp_path):
    c = configured(
        tmp_path,
        chart_settings(
            storage={
                "type": "dynamic",
                "capacity": "20Gi",
                "homeMountPath": "/home/user",
                "claimBindTimeout": 90,
                "dynamic": {"storageClass": "rook-ceph-block"},
                "forGroups": {
                    "instructors": {"dynamic": {"storageClass": "fast-ssd"}},
                    "guests": {"type": "none"},
                },
            }
        ),
    )
    spawner = c.WorkshopKubeSpawner
    assert spawner.home_storage == {
        "mode": "dynamic",
        "capacity": "20Gi",
        "storage_class": "rook-ceph-block",
        "sub_path": "{username}",
    }
    assert spawner.home_storage_for_groups == {
        "instructors": {"storage_class": "fast-ssd"},
        "guests": {"mode": "none"},
    }
    assert spawner.home_mount_path == "/home/user" and spawner.home_claim_bind_timeout == 90

    c = configured(
        tmp_path,
        chart_settings(
            storage={"type": "static", "static": {"pvcName": "nfs-homes", "subPath": "homes/{username}"}}
        ),
    )
    assert c.WorkshopKubeSpawner.home_storage == {
        "mode": "static",
        "capacity": "10Gi",
        "claim": "nfs-homes",
        "sub_path": "homes/{username}",
    }


@pytest.mark.parametrize(
    "storage, message",
    [
        ({"type": "static"}, "home storage mode 'static' needs 'claim'"),
        ({"forGroups": {"tas": {"type": "static"}}}, "home storage mode 'static' needs 'claim'"),
        ({"type": "nfs"}, "home storage mode 'nfs' must be one of dynamic, static, none"),
    ],
)
def test_storage_is_checked_by_the_spawner_parser_when_the_hub_starts(tmp_path, storage, message):
    with pytest.raises(ValueError, match=message):
        configured(tmp_path, chart_settings(storage=storage))


@pytest.mark.parametrize(
    "shared, expected",
    [
        (
            {"nfs": {"server": "10.0.0.5", "path": "/export/shared"}, "writerGroups": ["instructors", "tas"]},
            {
                "nfs_server": "10.0.0.5",
                "nfs_path": "/export/shared",
                "mount_path": "/srv/shared",
                "writable_mount_path": "/srv/shared-readwrite",
            },
        ),
        (
            {"pvcName": "hackweek-shared", "mountPath": "/data"},
            {
                "claim": "hackweek-shared",
                "mount_path": "/data",
                "writable_mount_path": "/srv/shared-readwrite",
            },
        ),
        ({}, {}),
    ],
    ids=["nfs", "claim", "none"],
)
def test_shared_data(tmp_path, shared, expected):
    c = configured(tmp_path, chart_settings(sharedData=shared))
    assert c.WorkshopKubeSpawner.shared_data == expected
    assert c.WorkshopKubeSpawner.shared_writer_groups == shared.get("writerGroups", ["instructors"])


def test_high_performance_profile(tmp_path):
    c = configured(
        tmp_path,
        chart_settings(
            highPerformance={
                "enabled": True,
                "groups": ["instructors", "gpu"],
                "nodeSelector": {"pool": "big"},
                "gpus": 1,
                "tolerations": [
                    {"key": "dedicated", "operator": "Equal", "value": "big", "effect": "NoSchedule"}
                ],
                "cpu": {"guarantee": 14, "limit": 16},
                "memory": {"guarantee": "56G", "limit": None},
            }
        ),
    )
    assert c.WorkshopKubeSpawner.high_performance == {
        "node_selector": {"pool": "big"},
        "gpus": 1,
        "cpu_guarantee": 14,
        "cpu_limit": 16,
        "mem_guarantee": "56G",
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "big", "effect": "NoSchedule"}],
    }
    assert c.WorkshopKubeSpawner.high_performance_groups == ["instructors", "gpu"]


def test_cull_settings_use_z2jh_names_and_reach_the_service_file(tmp_path):
    c = configured(
        tmp_path,
        chart_settings(
            cull={
                "timeout": 1800,
                "every": 120,
                "maxAge": 43200,
                "concurrency": 5,
                "kernelIdleTimeout": 1200,
                "exemptGroups": [],
                "dryRun": True,
                "night": {"start": "7:00", "end": "9:30", "timeZone": "Europe/Berlin"},
            },
            service={
                "staffGroups": ["staff"],
                "usersPerNode": 4,
                "pricePerNodeHour": 0.384,
                "currency": "EUR",
            },
        ),
        base_url="/workshop/",
    )
    settings = service_file(c)
    assert {k: settings[k] for k in ("idle_timeout", "cull_every", "max_age", "concurrency", "dry_run")} == {
        "idle_timeout": 1800,
        "cull_every": 120,
        "max_age": 43200,
        "concurrency": 5,
        "dry_run": True,
    }
    assert settings["exempt_groups"] == []  # nobody exempt: an empty list stays a list
    assert (settings["night_start"], settings["night_end"], settings["timezone"]) == (
        "7:00",
        "9:30",
        "Europe/Berlin",
    )
    assert (
        settings["staff_groups"],
        settings["users_per_node"],
        settings["price_per_node_hour"],
        settings["currency"],
    ) == (["staff"], 4, 0.384, "EUR")
    assert c.WorkshopKubeSpawner.kernel_idle_timeout == 1200
    banner = c.JupyterHub.template_vars["announcement"]
    assert callable(banner) and banner(None) == ""
    # the command line holds the file's name only
    assert service_entry(c)["command"][3:] == ["--config", str(tmp_path / "workshop-service.json")]


@pytest.mark.parametrize(
    "night, message",
    [
        ({"start": "22:00", "end": "22:00"}, "it needs a duration"),
        ({"start": "22:00", "end": ""}, "night window end '' is not a 24-hour HH:MM time"),
        ({"start": "", "end": "06:00"}, "night window start '' is not a 24-hour HH:MM time"),
        (
            {"start": "22:00", "end": "06:00", "timeZone": "America/Denvr"},
            "unknown time zone 'America/Denvr'",
        ),
    ],
)
def test_the_night_window_is_checked_by_the_service_parser_when_the_hub_starts(tmp_path, night, message):
    with pytest.raises(ValueError, match=message):
        configured(tmp_path, chart_settings(cull={"night": night}))
    assert not (tmp_path / "workshop-service.json").exists()


def test_database_url_goes_by_environment_never_into_the_file(tmp_path):
    settings = chart_settings(wiring={"databaseFromSecret": True})
    url = "postgresql+psycopg://workshop:s3cret@db:5432/workshop"
    c = configured(tmp_path, settings, environ={"WORKSHOP_DB_URL": url})
    assert service_entry(c)["environment"] == {"WORKSHOP_DB_URL": url}
    assert "db_url" not in service_file(c)
    assert "s3cret" not in (tmp_path / "workshop-service.json").read_text()
    assert not any("s3cret" in part for part in service_entry(c)["command"])
    with pytest.raises(WorkshopConfigError, match=r"WORKSHOP_DB_URL is empty in the hub.*'workshop-db'"):
        configured(tmp_path, settings, environ={})


def test_the_service_file_is_private_in_a_private_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp puts the default directory
    c = Config()
    configure(c, chart_settings(), environ={})
    path = Path(service_entry(c)["command"][4])
    assert path.parent.parent == tmp_path and path.parent.name.startswith("workshop-service-")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_what_z2jh_set_before_is_extended_not_replaced(tmp_path):
    c = Config()
    c.JupyterHub.services = [{"name": "workshop", "api_token": "from-z2jh-secret"}, {"name": "other"}]
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "read:users:name"]}]
    c.JupyterHub.template_vars = {"org": "ESIP"}
    own_events = logging.StreamHandler()  # e.g. from hub.extraConfig
    c.EventLogger.handlers = [own_events]
    configured(tmp_path, chart_settings(cull={"night": {"start": "22:00", "end": "06:00"}}), c=c)
    assert c.EventLogger.handlers[0] is own_events and len(c.EventLogger.handlers) == 2
    entry = service_entry(c)
    assert entry["api_token"] == "from-z2jh-secret" and entry["url"] == "http://hub:10101"
    assert [s["name"] for s in c.JupyterHub.services] == ["workshop", "other"]
    [user] = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
    assert user["scopes"] == ["self", "read:users:name", "access:services!service=workshop"]
    assert c.JupyterHub.template_vars["org"] == "ESIP" and callable(
        c.JupyterHub.template_vars["announcement"]
    )


def test_without_the_chart_settings_the_hub_says_what_is_missing(tmp_path):
    for settings in (None, {"title": "no wiring"}):
        with pytest.raises(WorkshopConfigError, match="did not receive the chart's workshop settings"):
            configure(Config(), settings, environ={}, service_config_dir=tmp_path)


def test_from_z2jh_reads_settings_names_and_base_url(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    values = {
        "custom": {
            "workshop": chart_settings(title="ESIP", cull={"night": {"start": "22:00", "end": "06:00"}})
        },
        "hub": {"baseUrl": "/esip/"},
    }

    def get_config(key, default=None):
        value = values
        for level in key.split("."):
            if not isinstance(value, dict) or level not in value:
                return default
            value = value[level]
        return value

    warnings = []

    def night_warning(*args, **kwargs):
        warnings.append((args, kwargs))
        return real_night_warning(*args, **kwargs)

    real_night_warning = chart.night_warning
    monkeypatch.setattr(chart, "night_warning", night_warning)
    z2jh = types.SimpleNamespace(get_config=get_config, get_name={"hub": "esip-hub"}.__getitem__)
    c = Config()
    configure_from_z2jh(c, z2jh)
    assert c.WorkshopAuthenticator.workshop_title == "ESIP"
    assert service_entry(c)["url"] == "http://esip-hub:10101"
    # the banner links to the service below the hub's base URL
    assert warnings == [(("22:00", "06:00", "UTC"), {"service_path": "/esip/services/workshop/"})]
    assert c.JupyterHub.template_vars["announcement"] is not None


# --- the schedule and pre-warm --------------------------------------------------------------------

SCHEDULE = {
    "timeZone": "America/Denver",
    "from": "2026-07-13",
    "until": "2026-07-16",
    "sessions": [{"days": ["Mon", "Tue"], "start": "09:00", "end": "17:00"}],
}
POD_ENV = {
    "POD_NAMESPACE": "hackweek",
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
}


def test_a_schedule_alone_is_shown_and_nothing_is_scaled(tmp_path):
    c = configured(tmp_path, chart_settings(schedule=SCHEDULE, service={"usersPerNode": 4}), environ=POD_ENV)
    settings = service_file(c)
    assert settings["schedule"] == SCHEDULE
    # the service shows the pre-warm stretches it would keep
    assert (settings["prewarm_lead"], settings["prewarm_hold"]) == (20, 30)
    assert "prewarm_deployment" not in settings and "prewarm_namespace" not in settings
    # nothing scaled, but the service reads the servers' pod metrics: the API server's address
    assert service_entry(c)["environment"] == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
    }


def test_prewarm_hands_the_service_the_deployment_in_the_hubs_namespace(tmp_path):
    settings = chart_settings(
        schedule=SCHEDULE,
        service={"usersPerNode": 4},
        prewarm={"enabled": True, "lead": 45, "hold": 15},
        wiring={"prewarmDeployment": "workshop-prewarm"},
    )
    c = configured(tmp_path, settings, environ={**POD_ENV, "PATH": "/usr/bin"})
    service = service_file(c)
    assert (service["prewarm_lead"], service["prewarm_hold"]) == (45, 15)
    assert (service["prewarm_deployment"], service["prewarm_namespace"]) == ("workshop-prewarm", "hackweek")
    assert service["users_per_node"] == 4
    # a managed service does not inherit the hub's environment: the in-cluster configuration's
    # API server address goes with it, and nothing else of the hub's
    assert service_entry(c)["environment"] == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
    }
    # outside a pod: the service falls back to its own namespace default
    c = configured(tmp_path, settings, environ={})
    assert "prewarm_namespace" not in service_file(c) and service_entry(c)["environment"] == {}


def test_schedule_dates_that_yaml_read_as_dates_are_written_as_text(tmp_path):
    import datetime

    schedule = {
        "from": datetime.date(2026, 7, 13),
        "until": datetime.date(2026, 7, 16),
        "sessions": [{"days": ["Mon", datetime.date(2026, 7, 17)], "start": "09:00", "end": "12:00"}],
    }
    c = configured(tmp_path, chart_settings(schedule=schedule, service={"usersPerNode": 4}))
    assert service_file(c)["schedule"] == {
        "from": "2026-07-13",
        "until": "2026-07-16",
        "sessions": [{"days": ["Mon", "2026-07-17"], "start": "09:00", "end": "12:00"}],
    }


@pytest.mark.parametrize(
    "schedule, message",
    [
        (
            {"sessions": [{"days": ["Mon"], "start": "09:00", "end": "09:00"}]},
            r"sessions\[0\]: starts and ends at 09:00; a session needs a duration",
        ),
        (
            {"from": "2026-07-16", "until": "2026-07-13", "sessions": []},
            r"until \(2026-07-13\) is before from",
        ),
        ({"timeZone": "America/Denvr", "sessions": []}, "unknown time zone 'America/Denvr'"),
    ],
)
def test_a_bad_schedule_stops_the_hub_with_the_parser_message(tmp_path, schedule, message):
    from traitlets import TraitError

    with pytest.raises((ValueError, TraitError), match=message):
        configured(tmp_path, chart_settings(schedule=schedule, service={"usersPerNode": 4}))
    assert not (tmp_path / "workshop-service.json").exists()


# --- spawn limits for the crowd -------------------------------------------------------------------

HASH = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("not-a-card")


def write_accounts(path: Path, participants: int, instructors: int = 2, revoked: int = 0) -> Path:
    accounts = [Account(f"p{i:03d}", HASH, "participant", revoked=i < revoked) for i in range(participants)]
    accounts += [Account(f"i{i:02d}", HASH, "instructor") for i in range(instructors)]
    save_accounts(path, accounts)
    return path


def limits_of(c) -> tuple:
    return tuple(c.JupyterHub.get(trait) for trait in ("concurrent_spawn_limit", "active_server_limit"))


@pytest.mark.parametrize(
    "changes, people, prewarmed, capacity",
    [
        # 320 people in 10 minutes: warm nodes, 4 per node
        ({"schedule": {"expected": 320}, "prewarm": {"enabled": True}}, 320, True, 320),
        # cold: every spawn also waits for a node
        ({"schedule": {"expected": 320}}, 320, False, 320),
        # the most any session expects: its own number, else the schedule's
        (
            {
                "schedule": {
                    "expected": 40,
                    "sessions": [*SCHEDULE["sessions"], {**SCHEDULE["sessions"][0], "expected": 90}],
                }
            },
            90,
            False,
            92,
        ),
        ({"schedule": {"expected": 30}, "arrival": {"minutes": 2, "podStartSeconds": 60}}, 30, False, 32),
        ({"schedule": {"expected": 30}, "service": {"usersPerNode": 0}}, 30, False, 0),
    ],
    ids=["warm", "cold", "largest-session", "fast-arrival", "no-nodes"],
)
def test_spawn_limits_for_the_people_expected(tmp_path, changes, people, prewarmed, capacity):
    from jupyterhub_workshop.spawn_limits import spawn_limits

    base = {"schedule": SCHEDULE, "service": {"usersPerNode": 4}}
    c = configured(
        tmp_path,
        chart_settings(**{key: {**base.get(key, {}), **changes.get(key, {})} for key in {*base, *changes}}),
    )
    arrival = {"minutes": 10, "podStartSeconds": 30, "nodeBootMinutes": 5, **changes.get("arrival", {})}
    expected = spawn_limits(
        people,
        arrival["minutes"],
        arrival["podStartSeconds"],
        arrival["nodeBootMinutes"],
        prewarmed,
        capacity,
    )
    assert limits_of(c) == (expected.concurrent_spawn_limit, None)  # the active limit is the operator's


def test_without_a_number_in_the_schedule_the_participant_cards_count(tmp_path):
    accounts = write_accounts(tmp_path / "accounts.yaml", participants=45, instructors=3, revoked=5)
    wiring = {"accountsFile": str(accounts)}
    # 40 participant cards in use (revoked ones are not), as the service counts them for pre-warm
    c = configured(tmp_path, chart_settings(wiring=wiring, service={"usersPerNode": 4}))
    assert limits_of(c) == (40, None)  # 4 arrivals a minute x 5.5 min per cold spawn x 2: 44, at most 40
    c = configured(tmp_path, chart_settings(wiring=wiring, schedule=SCHEDULE, service={"usersPerNode": 4}))
    assert limits_of(c) == (40, None)
    # a session with a number of its own, the others the cards
    sessions = [*SCHEDULE["sessions"], {**SCHEDULE["sessions"][0], "expected": 90}]
    c = configured(
        tmp_path,
        chart_settings(
            wiring=wiring, schedule={**SCHEDULE, "sessions": sessions}, service={"usersPerNode": 4}
        ),
    )
    assert limits_of(c) == (90, None)  # the session's 90 people, all of them pending at once


@pytest.mark.parametrize("accounts", [None, "missing.yaml", "broken.yaml"])
def test_without_a_number_of_people_the_limits_are_left_alone(tmp_path, accounts):
    (tmp_path / "broken.yaml").write_text("version: 1\naccounts: [{username: Not A Card}]\n")
    wiring = {"accountsFile": str(tmp_path / accounts) if accounts else ""}
    c = configured(tmp_path, chart_settings(wiring=wiring))
    assert "concurrent_spawn_limit" not in c.JupyterHub and "active_server_limit" not in c.JupyterHub
    # the chart's mark for z2jh (instead of its 64) goes too: JupyterHub's own defaults apply
    c = Config()
    c.JupyterHub.concurrent_spawn_limit = chart.SPAWN_LIMIT_FROM_WORKSHOP
    configured(tmp_path, chart_settings(wiring=wiring), c=c)
    assert "concurrent_spawn_limit" not in c.JupyterHub


def test_the_operators_limits_win(tmp_path):
    settings = chart_settings(schedule={**SCHEDULE, "expected": 320}, service={"usersPerNode": 4})
    c = Config()
    c.JupyterHub.concurrent_spawn_limit = 100  # z2jh's hub.concurrentSpawnLimit, or hub.config
    configured(tmp_path, settings, c=c)
    assert limits_of(c) == (100, None)
    c = Config()
    c.JupyterHub.active_server_limit = 0  # no limit, deliberately
    c.JupyterHub.concurrent_spawn_limit = 0
    configured(tmp_path, settings, c=c)
    assert limits_of(c) == (0, 0)
    # the chart's own value for z2jh is no operator's: ours replaces it
    c = Config()
    c.JupyterHub.concurrent_spawn_limit = chart.SPAWN_LIMIT_FROM_WORKSHOP
    configured(tmp_path, settings, c=c)
    assert limits_of(c) == (320, None)


def test_the_chart_marks_z2jhs_spawn_limit_for_the_hub_configuration():
    values = yaml.safe_load((ROOT / "helm-chart" / "values.yaml").read_text())
    assert values["jupyterhub"]["hub"]["concurrentSpawnLimit"] == chart.SPAWN_LIMIT_FROM_WORKSHOP
    assert "activeServerLimit" not in values["jupyterhub"]["hub"]  # z2jh sets none
    assert values["workshop"]["arrival"] == chart.ARRIVAL_DEFAULTS


def test_the_closing_reaches_the_authenticator_the_service_and_every_hub_page(tmp_path):
    import datetime

    from jupyterhub_workshop.login.authenticator import WorkshopAuthenticator

    at = datetime.datetime(2026, 7, 17, 18, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-6)))
    settings = chart_settings(
        closing={
            "at": at,
            "noticeDays": 1,
            "message": "Ended: write to hub-admins@example.org.",
        },  # unquoted YAML
        cull={"night": {"start": "22:00", "end": "06:00", "timeZone": "America/Denver"}},
    )
    c = configured(tmp_path, settings)
    assert c.WorkshopAuthenticator.closing == "2026-07-17T18:00:00-06:00"
    assert c.WorkshopAuthenticator.closing_message == "Ended: write to hub-admins@example.org."
    assert WorkshopAuthenticator(
        config=c, accounts_file=str(write_accounts(tmp_path / "a.yaml", 1))
    )._closing()
    assert (service_file(c)["closing"], service_file(c)["closing_notice_days"]) == (
        "2026-07-17T18:00:00-06:00",
        1,
    )
    # one announcement: the night warning and the closing banner, each when its time comes
    announcement = c.JupyterHub.template_vars["announcement"]
    assert announcement(None) in ("", "This hub closes on Fri 17 Jul at 18:00 (America/Denver).")
    closing = chart.closing_banner(
        "2026-07-17T18:00:00-06:00", 1, "America/Denver", clock=lambda: at - datetime.timedelta(hours=2)
    )
    user = types.SimpleNamespace(spawners={})
    assert closing(user) == (
        "This hub closes on Fri 17 Jul at 18:00 (America/Denver). Download your work: "
        '<a href="/services/workshop/download">your whole home as one archive</a>.'
    )
    assert closing(None) == "This hub closes on Fri 17 Jul at 18:00 (America/Denver)."
    early = chart.closing_banner(
        "2026-07-17T18:00:00-06:00", 1, clock=lambda: at - datetime.timedelta(days=1, seconds=1)
    )
    assert early(user) == ""
    # without a closing nothing changes; a time without an offset stops the hub, saying why
    (tmp_path / "none").mkdir()
    (tmp_path / "bad").mkdir()
    assert "closing" not in service_file(configured(tmp_path / "none", chart_settings()))
    with pytest.raises(Exception, match="no UTC offset"):
        configured(tmp_path / "bad", chart_settings(closing={"at": "2026-07-17T18:00:00"}))
