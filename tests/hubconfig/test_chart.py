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
    assert "workshop_title" not in c.WorkshopAuthenticator  # empty title: the authenticator's default
    spawner = c.WorkshopKubeSpawner
    assert spawner.home_storage == {"mode": "dynamic", "capacity": "10Gi", "sub_path": "{username}"}
    assert spawner.home_storage_for_groups == {}
    assert spawner.home_mount_path == "/home/jovyan" and spawner.home_claim_bind_timeout == 120
    assert spawner.shared_data == {} and spawner.shared_writer_groups == ["instructors"]
    assert spawner.readme_config_map == "workshop-readme" and spawner.kernel_idle_timeout == 3600
    assert spawner.high_performance == {}
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
        "db_url": "sqlite:////srv/jupyterhub/workshop-usage.sqlite",  # on the hub's volume
        # the hub's server events, written beside it by the handler the hub installs
        "events_file": "/srv/jupyterhub/workshop-events.jsonl",
    }
    [spool] = c.EventLogger.handlers
    assert spool.baseFilename == "/srv/jupyterhub/workshop-events.jsonl"
    assert not Path("/srv/jupyterhub/workshop-events.jsonl").exists()  # made at the first event, not here
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["workshop-service"]["scopes"] == ROLE_SCOPES and roles["workshop-service"]["services"] == [
        "workshop"
    ]
    assert "access:services!service=workshop" in roles["user"]["scopes"]
    assert "template_vars" not in c.JupyterHub  # no night window, no banner


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
