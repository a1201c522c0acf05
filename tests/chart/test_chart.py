"""The Helm chart (helm-chart/) and the hub image (images/hub/).

Offline, without a helm binary: helm-python-sdk embeds Helm's engine (lint, render, both
charts' schemas), kubernetes-validate checks every rendered object against Kubernetes 1.32's
schemas. Renders hold our templates and Zero to JupyterHub 4.4.0's; the hub configuration is
run as z2jh's hub container runs it, from the rendered objects (tests/chart/helpers.py).
"""

from __future__ import annotations

import json
import re
import tempfile
import zoneinfo
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml

from .helpers import (
    CHART,
    CI_DIR,
    DB_URL,
    GLUE,
    HUB_ETC,
    NAMESPACE,
    ORGANIZER_SECRETS,
    ROOT,
    _module,
    chart,
    chart_copy,
    ci_values,
    deep_merge,
    find,
    manifests,
    render,
    run_hub_configuration,
    secret_data,
    user_pod,
)

CI_FILES = [
    "minimal-values.yaml",
    "nfs-shared-values.yaml",
    "dynamic-homes-values.yaml",
    "postgres-db-values.yaml",
    "night-culling-values.yaml",
    "prewarm-values.yaml",
]
K8S_VERSION = "1.32"
PORT = 10101  # the workshop service's port in values.yaml (hub.service.extraPorts "workshop")
CONFIG_D = f"{HUB_ETC}/jupyterhub_config.d"


@pytest.fixture(scope="module", params=CI_FILES)
def ci(request):
    """(file name, values, rendered objects) for each shipped values file."""
    values = ci_values(request.param)
    return request.param, values, manifests(render(values))


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory):
    """A copy of the chart with z2jh in charts/, for what needs a directory (lint)."""
    return chart_copy(tmp_path_factory.mktemp("chart"))


def values_for(*overrides: dict) -> dict:
    values = ci_values("minimal-values.yaml")
    for override in overrides:
        values = deep_merge(values, override)
    return values


def settings(objects) -> dict:
    """custom.workshop as the hub receives it, from the rendered settings Secret."""
    secret = find(objects, "Secret", "workshop-hub-settings")
    return yaml.safe_load(secret_data(secret)["values.yaml"])["custom"]["workshop"]


def hub_pod(objects) -> dict:
    return find(objects, "Deployment", "hub")["spec"]["template"]["spec"]


# --- the chart itself ----------------------------------------------------------------------


def test_chart_declares_z2jh_440():
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == "jupyterhub-workshop"
    assert meta["dependencies"] == [
        {"name": "jupyterhub", "version": "4.4.0", "repository": "https://jupyterhub.github.io/helm-chart/"}
    ]
    # Helm sees it too; "missing" until fetched (tests/chart/z2jh.py, or `helm dependency build`)
    [dep] = helm_python.dependency_list(str(CHART))
    assert (dep["name"], dep["version"]) == ("jupyterhub", "4.4.0")
    assert dep["status"] in {"missing", "ok", "unpacked"}
    # a dependency, like a package from PyPI: never committed (tests copy it into a temporary chart)
    assert "charts/*.tgz" in (CHART / ".gitignore").read_text().split()


def test_chart_package_and_images_carry_one_version():
    """The chart's appVersion is the package the hub image installs (its build fails otherwise)
    and the tag of both images."""
    import jupyterhub_workshop

    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert app_version == jupyterhub_workshop.__version__
    assert (
        re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
        == app_version
    )
    images = yaml.safe_load((CHART / "values.yaml").read_text())["jupyterhub"]
    assert images["hub"]["image"]["tag"] == images["singleuser"]["image"]["tag"] == app_version
    dockerfile = (ROOT / "images" / "hub" / "Dockerfile").read_text()
    assert re.findall(r"^ARG WORKSHOP_VERSION=(\S+)$", dockerfile, re.M) == [app_version]


def test_ci_values_files_are_the_tested_ones():
    assert sorted(p.name for p in CI_DIR.glob("*.yaml")) == sorted(CI_FILES)


@pytest.mark.parametrize("name", CI_FILES)
def test_lint(chart_dir, name):
    report = helm_python.lint(str(chart_dir), ci_values(name), namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_rendered_object_validates_strictly(ci):
    name, values, objects = ci
    for obj in objects:
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True), (
            obj["kind"],
            obj["metadata"]["name"],
        )
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), keys
    # ours and z2jh's
    assert {
        ("Deployment", "hub"),
        ("Deployment", "proxy"),
        ("Secret", "workshop-hub-settings"),
        ("ConfigMap", "workshop-hub-config"),
        ("Service", "workshop-metrics"),
    } <= set(keys)


def test_z2jh_schema_applies_to_the_jupyterhub_values():
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(
            values_for({"jupyterhub": {"hub": {"extraPort": []}, "singleuser": {"storage": {"typ": "none"}}}})
        )
    assert "jupyterhub:" in str(refused.value) and "'extraPort' not allowed" in str(refused.value)
    assert "'typ' not allowed" in str(refused.value)


# --- the wiring: what the hub's pod mounts is what its configuration expects ----------------


def test_the_hub_deployment_mounts_what_the_configuration_expects(ci):
    name, values, objects = ci
    pod = hub_pod(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    container = pod["containers"][0]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    ws = settings(objects)

    # our settings, as the Secret z2jh merges into what get_config() sees
    assert volumes["existing-secret"]["secret"]["secretName"] == "workshop-hub-settings"
    assert mounts["existing-secret"]["mountPath"] == f"{HUB_ETC}/existing-secret/"
    # the hub configuration, where z2jh loads jupyterhub_config.d/*.py
    config = mounts["workshop-hub-config"]
    assert config["mountPath"] == f"{CONFIG_D}/workshop.py" and config["subPath"] == "workshop_config.py"
    config_map = find(objects, "ConfigMap", volumes["workshop-hub-config"]["configMap"]["name"])
    assert config_map["data"]["workshop_config.py"] == GLUE.read_text()
    # the accounts file, as a directory (Secret updates reach a running hub), where the
    # authenticator is told to look
    accounts = mounts["workshop-accounts"]
    assert "subPath" not in accounts and accounts["readOnly"] is True
    assert ws["wiring"]["accountsFile"] == f"{accounts['mountPath']}/accounts.yaml"
    secret_name = volumes["workshop-accounts"]["secret"]["secretName"]
    if values["workshop"]["accounts"].get("existingSecret"):
        assert values["workshop"]["accounts"]["existingSecret"] == secret_name
    else:
        assert "accounts.yaml" in secret_data(find(objects, "Secret", secret_name))
    # the database URL by environment, from the Secret the chart names
    env = {e["name"]: e for e in container["env"]}
    assert env["WORKSHOP_DB_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "workshop-db",
        "key": "url",
        "optional": True,
    }
    assert ws["wiring"]["databaseSecret"] == "workshop-db"
    # the hub's volume for SQLite usage records
    assert mounts["pvc"]["mountPath"] == "/srv/jupyterhub"
    assert ws["wiring"]["sqliteUrl"] == "sqlite:////srv/jupyterhub/workshop-usage.sqlite"
    # the hub image is ours, at the chart's appVersion
    assert container["image"] == f"ghcr.io/jupyterhub-workshop/hub:{chart().metadata['appVersion']}"


def test_the_proxy_and_prometheus_reach_the_service(ci):
    name, values, objects = ci
    ports = find(objects, "Service", "hub")["spec"]["ports"]
    assert {"name": "workshop", "port": PORT, "targetPort": PORT, "protocol": "TCP"} in ports
    ingress = find(objects, "NetworkPolicy", "hub")["spec"]["ingress"]
    from_proxy = [
        r
        for r in ingress
        if {"port": PORT} in r["ports"]
        and {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "proxy"}}} in r["from"]
    ]
    assert from_proxy, "the proxy must reach the service for the Services-menu link"
    scrapers = [
        r
        for r in ingress
        if {"port": PORT} in r["ports"]
        and {"port": 8081} in r["ports"]
        and any(
            p.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "prometheus"}
            for p in r["from"]
        )
    ]
    assert scrapers


def test_z2jh_is_told_to_leave_homes_and_culling_to_the_workshop(ci):
    name, values, objects = ci
    z2jh_values = yaml.safe_load(secret_data(find(objects, "Secret", "hub"))["values.yaml"])
    assert z2jh_values["singleuser"]["storage"]["type"] == "none"  # the workshop spawner mounts homes
    assert z2jh_values["cull"]["enabled"] is False  # the workshop service culls
    assert z2jh_values["hub"]["config"]["JupyterHub"]["spawner_class"] == "workshop"
    assert z2jh_values["hub"]["services"]["workshop"] == {}
    assert "hub.services.workshop.apiToken" in secret_data(find(objects, "Secret", "hub"))


def test_settings_secret_holds_no_contents_with_secrets_of_their_own(ci):
    name, values, objects = ci
    ws = settings(objects)
    assert ws["title"] == values["workshop"]["title"]
    assert "file" not in ws["accounts"] and "url" not in ws["service"]["database"]
    assert "content" not in ws["readme"] and "grafanaDashboard" not in ws
    assert ws["wiring"]["servicePort"] == PORT


def test_readme_config_map(ci):
    name, values, objects = ci
    readme = find(objects, "ConfigMap", "workshop-readme")["data"]["README.md"]
    custom = values["workshop"].get("readme", {}).get("content")
    if custom:
        assert readme == custom
    else:  # the chart's default is the package's quickstart README
        assert readme == (ROOT / "jupyterhub_workshop" / "spawner" / "quickstart-README.md").read_text()
    assert settings(objects)["wiring"]["readmeConfigMap"] == "workshop-readme"


def test_no_readme_when_disabled():
    objects = manifests(render(values_for({"workshop": {"readme": {"enabled": False}}})))
    assert not [o for o in objects if o["metadata"]["name"] == "workshop-readme"]
    assert settings(objects)["wiring"]["readmeConfigMap"] == ""


def test_metrics_service_for_prometheus(ci):
    name, values, objects = ci
    service = find(objects, "Service", "workshop-metrics")
    base_url = values.get("jupyterhub", {}).get("hub", {}).get("baseUrl", "/").rstrip("/")
    assert service["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": f"{base_url}/services/workshop/metrics",
    }
    # it selects z2jh's hub pod
    selector = service["spec"]["selector"]
    labels = find(objects, "Deployment", "hub")["spec"]["template"]["metadata"]["labels"]
    assert selector == {"component": "hub", "app": "jupyterhub", "release": "workshop"}
    assert selector.items() <= labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": PORT, "targetPort": PORT, "protocol": "TCP"}
    ]


def test_grafana_dashboard_config_map_only_when_enabled(ci):
    name, values, objects = ci
    maps = [o for o in objects if o["metadata"]["name"] == "workshop-grafana-dashboard"]
    if not values["workshop"].get("grafanaDashboard", {}).get("enabled"):
        assert maps == []
        return
    [config_map] = maps
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == values["workshop"]["grafanaDashboard"]["namespace"]
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Workshops"}
    dashboard = json.loads(config_map["data"]["jupyterhub-workshop.json"])
    assert dashboard == json.loads((CHART / "files" / "grafana-dashboard.json").read_text())


def test_database_url_goes_to_a_secret_not_to_the_hub_values():
    url = "postgresql+psycopg://workshop:s3cret@db:5432/workshop"
    objects = manifests(render(values_for({"workshop": {"service": {"database": {"url": url}}}})))
    assert secret_data(find(objects, "Secret", "workshop-db")) == {"url": url}
    assert "s3cret" not in json.dumps(settings(objects))
    assert "s3cret" not in secret_data(find(objects, "Secret", "hub"))["values.yaml"]
    assert settings(objects)["wiring"]["databaseFromSecret"] is True
    # with a Secret of your own, the chart makes none
    objects = manifests(render(ci_values("postgres-db-values.yaml")))
    assert not [o for o in objects if o["metadata"]["name"] == "workshop-db"]
    assert settings(objects)["wiring"]["databaseFromSecret"] is True


def notes_of(values) -> str:
    """NOTES.txt as one line of words (shell continuations joined)."""
    text = render(values)["jupyterhub-workshop/templates/NOTES.txt"]
    return " ".join(text.replace("\\\n", " ").split())


def test_notes_give_the_url_and_the_cards():
    notes = notes_of(ci_values("minimal-values.yaml"))
    assert "kubectl --namespace=hackweek get service proxy-public" in notes
    assert "port-forward service/proxy-public" in notes
    assert "jupyterhub-workshop credentials generate" in notes
    assert "create secret generic workshop-accounts --from-file=accounts.yaml=cards/accounts.yaml" in notes
    notes = notes_of(ci_values("nfs-shared-values.yaml"))
    assert "--set-file workshop.accounts.file=cards/accounts.yaml" in notes
    notes = notes_of(ci_values("night-culling-values.yaml"))
    assert "https://hub.example.org/workshop/" in notes
    assert "stopped from 22:00 to 06:00 (America/Denver)" in notes
    assert "kept warm" not in notes
    notes = notes_of(ci_values("prewarm-values.yaml"))
    assert "Nodes are kept warm from 20 minutes before each session of the schedule until 30 minutes" in notes
    assert "deployment/workshop-prewarm" in notes


# --- the hub configuration, run as z2jh's hub container runs it -----------------------------


def service_entry(c):
    [entry] = [s for s in c.JupyterHub.services if s["name"] == "workshop"]
    return entry


def service_of(entry):
    """The service's own parser, on the command and the configuration file the hub runs it with."""
    from jupyterhub_workshop.service.app import WorkshopService

    assert (
        entry["command"][1:4] == ["-m", "jupyterhub_workshop.service", "--config"]
        and len(entry["command"]) == 5
    )
    service = WorkshopService()
    service.parse_command_line(entry["command"][3:])
    service.load_config_file(service.config_file)
    service.build_policy()
    return service


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
async def test_hub_configuration_from_every_values_file(ci, tmp_path):
    name, values, objects = ci
    c = run_hub_configuration(objects, tmp_path)
    ws = values["workshop"]

    assert c.JupyterHub.authenticator_class == "workshop"
    assert c.WorkshopAuthenticator.accounts_file == "/etc/workshop/accounts/accounts.yaml"
    assert c.WorkshopAuthenticator.workshop_title == ws["title"]
    assert c.JupyterHub.spawner_class == "workshop"
    assert c.WorkshopKubeSpawner.readme_config_map == "workshop-readme"

    entry = service_entry(c)
    assert entry["url"] == f"http://hub:{PORT}"  # the proxy reaches it through the hub Service
    token = secret_data(find(objects, "Secret", "hub"))["hub.services.workshop.apiToken"]
    assert entry["api_token"] == token  # z2jh's, kept
    assert entry["display"] is True and entry["oauth_no_confirm"] is True
    from jupyterhub.services.service import Service

    assert set(entry) <= set(Service.class_traits(input=True))  # else the hub: "No such service field"
    config_file = Path(entry["command"][4])
    assert config_file.parent.parent == tmp_path  # a private temporary directory
    service = service_of(entry)
    assert service.service_url == f"http://0.0.0.0:{PORT}"  # listens on the pod's interfaces
    cull = ws.get("cull", {})
    assert service.idle_timeout == cull.get("timeout", 3600)
    assert service.cull_every == cull.get("every", 60) and service.concurrency == cull.get("concurrency", 10)
    assert service.exempt_groups == cull.get("exemptGroups", ["instructors"])
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    from jupyterhub_workshop.hubconfig.services import ROLE_SCOPES

    assert roles["workshop-service"] == {
        "name": "workshop-service",
        "description": roles["workshop-service"]["description"],
        "scopes": ROLE_SCOPES,
        "services": ["workshop"],
    }
    assert "access:services!service=workshop" in roles["user"]["scopes"]

    if ws.get("service", {}).get("database"):
        assert entry["environment"] == {"WORKSHOP_DB_URL": DB_URL}
        assert "pw@" not in config_file.read_text()
        assert service.users_per_node == 4 and service.price_per_node_hour == 0.384
    else:
        assert entry["environment"] == {}
        assert service.db_url == "sqlite:////srv/jupyterhub/workshop-usage.sqlite"  # the hub's volume

    # the pods the spawner makes from this configuration
    for username, groups in (("ws001", ["participants"]), ("wsinstructor01", ["instructors"])):
        spawner, pod, pvc = await user_pod(c, username, groups)
        assert kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        assert spawner.namespace == NAMESPACE  # z2jh's, from the pod's POD_NAMESPACE
        container = pod["spec"]["containers"][0]
        assert (
            container["image"] == f"ghcr.io/jupyterhub-workshop/singleuser:{chart().metadata['appVersion']}"
        )
        hook = container["lifecycle"]["postStart"]["exec"]["command"]
        assert hook[:2] == ["sh", "-c"] and username not in hook[2]  # constant text, env inputs
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["WORKSHOP_README_SOURCE"] == "/etc/workshop/readme/README.md"
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["workshop-readme"]["configMap"] == {"name": "workshop-readme", "optional": True}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        homes = [m for m in container["volumeMounts"] if m["mountPath"] == "/home/jovyan"]
        assert len(homes) == 1, "exactly one home volume"
        assert (
            f"--MappingKernelManager.cull_idle_timeout={cull.get('kernelIdleTimeout', 3600)}"
            in container["args"]
        )
        if pvc is not None:
            assert kubernetes_validate.validate(pvc, K8S_VERSION, strict=True)
        check = CHECKS.get(name)
        if check:
            check(c, username, groups, pod, pvc, volumes, mounts)


def check_nfs(c, username, groups, pod, pvc, volumes, mounts):
    assert volumes["workshop-shared"]["nfs"] == {"server": "10.0.0.5", "path": "/export/shared"}
    assert mounts["/srv/shared"]["readOnly"] is True
    assert ("/srv/shared-readwrite" in mounts) is ("instructors" in groups)  # instructors (and tas) write
    assert c.WorkshopKubeSpawner.shared_writer_groups == ["instructors", "tas"]
    assert volumes["workshop-home"]["persistentVolumeClaim"]["claimName"] == "nfs-homes"
    assert mounts["/home/jovyan"]["subPath"] == f"homes/{username}"
    assert pvc is None


def check_dynamic(c, username, groups, pod, pvc, volumes, mounts):
    expected_class = "fast-ssd" if "instructors" in groups else "rook-ceph-block"
    assert pvc["spec"]["storageClassName"] == expected_class
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert volumes["workshop-home"]["persistentVolumeClaim"]["claimName"] == f"claim-{username}"
    assert c.WorkshopKubeSpawner.home_claim_bind_timeout == 90
    # z2jh's own singleuser.cpu/memory, set by z2jh's configuration
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": 1.75, "memory": 7 * 2**30}
    assert resources["limits"] == {"cpu": 4, "memory": 8 * 2**30}
    assert "workshop-shared" not in volumes


def check_postgres(c, username, groups, pod, pvc, volumes, mounts):
    assert volumes["workshop-shared"]["persistentVolumeClaim"] == {"claimName": "hackweek-shared"}
    assert mounts["/srv/shared"]["readOnly"] is True


def check_night(c, username, groups, pod, pvc, volumes, mounts):
    service = service_of(service_entry(c))
    assert (service.night_start, service.night_end, service.timezone) == ("22:00", "06:00", "America/Denver")
    assert service.max_age == 43200 and service.staff_groups == ["instructors", "staff"]
    assert callable(c.JupyterHub.template_vars["announcement"])  # the night warning banner


def check_prewarm(c, username, groups, pod, pvc, volumes, mounts):
    service = service_of(service_entry(c))
    assert service.schedule["expected"] == 320 and len(service.schedule["sessions"]) == 2
    assert (service.prewarm_lead, service.prewarm_hold) == (20, 30)
    assert (service.prewarm_deployment, service.prewarm_namespace) == ("workshop-prewarm", NAMESPACE)
    # the hub's limits for 320 people in 10 minutes on warm nodes (tests/chart/test_prewarm.py)
    assert c.JupyterHub.concurrent_spawn_limit == 32 and "active_server_limit" not in c.JupyterHub
    # the placeholders reserve 4 of these pods' requests each
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": 1.75, "memory": 7 * 2**30}


CHECKS = {
    "nfs-shared-values.yaml": check_nfs,
    "dynamic-homes-values.yaml": check_dynamic,
    "postgres-db-values.yaml": check_postgres,
    "night-culling-values.yaml": check_night,
    "prewarm-values.yaml": check_prewarm,
}


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
async def test_profiles_from_z2jh_profile_list_with_allowed_groups_and_high_performance(tmp_path):
    c = run_hub_configuration(manifests(render(ci_values("dynamic-homes-values.yaml"))), tmp_path)
    participant, _, _ = await user_pod(c, "ws001", ["participants"])
    instructor, _, _ = await user_pod(c, "wsinstructor01", ["instructors"])
    assert [p["slug"] for p in await participant.offered_profiles()] == ["standard", "r"]
    assert [p["slug"] for p in await instructor.offered_profiles()] == [
        "standard",
        "high-performance",
        "r",
        "preview",
    ]
    _, pod, _ = await user_pod(c, "wsinstructor01", ["instructors"], profile="high-performance")
    assert kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["spec"]["nodeSelector"] == {"node.kubernetes.io/instance-type": "m5.4xlarge"}
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["tolerations"][-1]["key"] == "hub.jupyter.org/dedicated"
    _, pod, _ = await user_pod(c, "wsinstructor01", ["instructors"], profile="preview")
    assert pod["spec"]["containers"][0]["image"] == "ghcr.io/jupyterhub-workshop/singleuser:0.2.0.dev0"


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
async def test_z2jh_volumes_given_as_dicts_still_work(tmp_path):
    """z2jh hands KubeSpawner its volumes keyed by name; the workshop spawner adds list entries."""
    values = values_for(
        {
            "jupyterhub": {
                "singleuser": {
                    "storage": {
                        "extraVolumes": {"scratch": {"name": "scratch", "emptyDir": {}}},
                        "extraVolumeMounts": {"scratch": {"name": "scratch", "mountPath": "/scratch"}},
                    }
                }
            }
        }
    )
    c = run_hub_configuration(manifests(render(values)), tmp_path)
    _, pod, _ = await user_pod(c, "ws001", ["participants"])
    assert {"scratch", "workshop-home", "workshop-readme"} <= {v["name"] for v in pod["spec"]["volumes"]}


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
def test_existing_roles_and_template_vars_are_extended_and_extra_config_runs_after_us(tmp_path):
    values = values_for(
        {
            "jupyterhub": {
                "hub": {
                    "loadRoles": {"user": {"scopes": ["self", "read:users:name"]}},
                    "templateVars": {"org": "ESIP"},
                    "extraConfig": {
                        "late": "c.WorkshopKubeSpawner.home_mount_path = '/home/' + c.WorkshopAuthenticator.workshop_title"
                    },
                }
            }
        },
        ci_values("night-culling-values.yaml"),
    )
    c = run_hub_configuration(manifests(render(values)), tmp_path)
    user = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
    assert len(user) == 1 and user[0]["scopes"] == [
        "self",
        "read:users:name",
        "access:services!service=workshop",
    ]
    assert c.JupyterHub.template_vars["org"] == "ESIP" and callable(
        c.JupyterHub.template_vars["announcement"]
    )
    assert c.WorkshopKubeSpawner.home_mount_path == "/home/Night owls"  # hub.extraConfig saw ours, and won


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
def test_hub_configuration_needs_the_settings_and_the_database_url(tmp_path):
    objects = [
        o
        for o in manifests(render(ci_values("minimal-values.yaml")))
        if o["metadata"]["name"] != "workshop-hub-settings"
    ]
    wrong_secret = {"workshop-hub-settings": {"values.yaml": "custom: {}\n"}}  # someone else's Secret
    with pytest.raises(ValueError, match="did not receive the chart's workshop settings"):
        run_hub_configuration(objects, tmp_path, {**ORGANIZER_SECRETS, **wrong_secret})
    objects = manifests(render(ci_values("postgres-db-values.yaml")))
    no_database = {k: v for k, v in ORGANIZER_SECRETS.items() if k != "workshop-db"}  # not made yet
    with pytest.raises(ValueError, match="WORKSHOP_DB_URL is empty in the hub.*'workshop-db'"):
        run_hub_configuration(objects, tmp_path, no_database)


@pytest.mark.jh55
def test_a_bad_setting_past_the_schema_stops_the_hub_with_the_parser_message(tmp_path):
    # the schema cannot compare two values; the service's night-window parser can
    objects = manifests(
        render(values_for({"workshop": {"cull": {"night": {"start": "22:00", "end": "22:00"}}}}))
    )
    with pytest.raises(ValueError, match="night window starts and ends at 22:00; it needs a duration"):
        run_hub_configuration(objects, tmp_path)


def test_the_hub_configuration_leaks_no_names_into_z2jh_globals(tmp_path):
    import types
    from unittest import mock

    from traitlets.config import Config

    ws = settings(manifests(render(ci_values("minimal-values.yaml"))))
    z2jh = types.ModuleType("z2jh")
    z2jh.get_config = lambda key, default=None: {"custom.workshop": ws}.get(key, default)
    z2jh.get_name = {"hub": "hub"}.__getitem__
    namespace = {"c": Config(), "__name__": "__main__"}
    with _module("z2jh", z2jh), mock.patch.object(tempfile, "tempdir", str(tmp_path)):
        exec(compile(GLUE.read_text(), "workshop.py", "exec"), namespace)
    assert set(namespace) == {"c", "__name__", "__builtins__"}
    assert namespace["c"].JupyterHub.spawner_class == "workshop"


# --- the schema and the render-time checks refuse bad settings -----------------------------


@pytest.mark.parametrize(
    "change, messages",
    [
        ({"bogus": 1}, ["at '/workshop'", "additional properties 'bogus' not allowed"]),
        ({"cull": {"nightWindow": {}}}, ["at '/workshop/cull'", "'nightWindow' not allowed"]),
        (
            {"cull": {"night": {"start": "22:00", "end": "06:00", "timeZone": "Mountain Time"}}},
            ["at '/workshop/cull/night/timeZone'", "'Mountain Time' does not match pattern"],
        ),
        (
            {"cull": {"night": {"start": "25:00", "end": "06:00"}}},
            ["at '/workshop/cull/night/start'", "'25:00' does not match pattern"],
        ),
        (
            {"cull": {"night": {"start": "22:00"}}},
            ["at '/workshop/cull/night/end'", "minLength: got 0, want 1"],
        ),
        ({"cull": {"timeout": -1}}, ["at '/workshop/cull/timeout'", "minimum: got -1, want 0"]),
        ({"cull": {"maxAge": -60}}, ["at '/workshop/cull/maxAge'", "minimum: got -60, want 0"]),
        ({"cull": {"every": 0}}, ["at '/workshop/cull/every'", "exclusiveMinimum"]),
        ({"cull": {"concurrency": 0}}, ["at '/workshop/cull/concurrency'", "minimum: got 0, want 1"]),
        ({"cull": {"kernelIdleTimeout": -1}}, ["at '/workshop/cull/kernelIdleTimeout'", "minimum"]),
        ({"culling": {"idleTimeout": 60}}, ["at '/workshop'", "additional properties 'culling' not allowed"]),
        (
            {"storage": {"claimBindTimeout": -5}},
            ["at '/workshop/storage/claimBindTimeout'", "exclusiveMinimum"],
        ),
        (
            {"storage": {"type": "nfs"}},
            ["at '/workshop/storage/type'", "value must be one of 'dynamic', 'static', 'none'"],
        ),
        ({"storage": {"type": "static"}}, ["at '/workshop/storage/static/pvcName'", "minLength"]),
        ({"storage": {"capacity": "10 GB"}}, ["at '/workshop/storage/capacity'", "'10 GB' does not match"]),
        (
            {"storage": {"forGroups": {"instructors": {"storageClass": "fast"}}}},
            ["at '/workshop/storage/forGroups/instructors'", "'storageClass' not allowed"],
        ),
        (
            {"homeStorage": {"mode": "dynamic"}},
            ["at '/workshop'", "additional properties 'homeStorage' not allowed"],
        ),
        (
            {"resources": {"cpu": {"limit": 4}}},
            ["at '/workshop'", "additional properties 'resources' not allowed"],
        ),
        ({"profiles": []}, ["at '/workshop'", "additional properties 'profiles' not allowed"]),
        (
            {"accounts": {"existingSecret": ""}},
            [
                "at '/workshop/accounts'",
                "oneOf",
                "at '/workshop/accounts/file'",
                "at '/workshop/accounts/existingSecret'",
            ],
        ),
        ({"accounts": {"file": "version: 1"}}, ["at '/workshop/accounts'", "oneOf"]),
        (
            {"sharedData": {"nfs": {"server": "10.0.0.5"}, "pvcName": "shared"}},
            ["at '/workshop/sharedData/pvcName'", "maxLength: got 6, want 0"],
        ),
        ({"sharedData": {"existingClaim": "shared"}}, ["'existingClaim' not allowed"]),
        (
            {"service": {"database": {"url": "postgresql://x", "existingSecret": "workshop-db"}}},
            ["at '/workshop/service/database/existingSecret'", "maxLength: got 11, want 0"],
        ),
        (
            {"highPerformance": {"memory": {"limit": "8GB"}}},
            ["at '/workshop/highPerformance/memory/limit'", "'8GB' does not match"],
        ),
        ({"title": 42}, ["at '/workshop/title'", "got number, want string"]),
        (
            {"accounts": {"existingSecret": "Workshop_Accounts"}},
            ["at '/workshop/accounts/existingSecret'", "'Workshop_Accounts' does not match"],
        ),
    ],
    ids=[
        "unknown-key",
        "unknown-nested-key",
        "tz-words",
        "night-hour-25",
        "night-start-without-end",
        "negative-timeout",
        "negative-max-age",
        "zero-every",
        "zero-concurrency",
        "negative-kernel-timeout",
        "old-culling-name",
        "negative-claim-timeout",
        "unknown-storage-type",
        "static-without-pvc",
        "bad-capacity",
        "group-storage-flat-class",
        "old-home-storage-name",
        "old-resources",
        "old-profiles",
        "missing-accounts-source",
        "two-accounts-sources",
        "two-shared-sources",
        "old-shared-claim-name",
        "two-database-sources",
        "bad-memory",
        "title-not-text",
        "bad-secret-name",
    ],
)
def test_schema_refuses_with_a_clear_message(change, messages):
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(values_for({"workshop": change}))
    text = str(refused.value)
    for message in messages:
        assert message in text, text


def test_schema_refuses_a_misspelt_top_level_key():
    with pytest.raises(helm_python.HelmValuesError, match="additional properties 'workshp' not allowed"):
        render(deep_merge(ci_values("minimal-values.yaml"), {"workshp": {}}))


def test_time_zone_pattern_takes_every_canonical_zone():
    pattern = re.compile(
        json.loads((CHART / "values.schema.json").read_text())["properties"]["workshop"]["properties"][
            "cull"
        ]["properties"]["night"]["properties"]["timeZone"]["pattern"]
    )
    areas = (
        "Africa/",
        "America/",
        "Antarctica/",
        "Arctic/",
        "Asia/",
        "Atlantic/",
        "Australia/",
        "Europe/",
        "Indian/",
        "Pacific/",
    )
    zones = [z for z in zoneinfo.available_timezones() if z.startswith(areas)] + ["UTC"]
    if len(zones) < 300:
        pytest.skip("no IANA time zone database here")
    assert [z for z in zones if not pattern.match(z)] == []


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"jupyterhub": {"singleuser": {"storage": {"type": "dynamic"}}}},
            'jupyterhub.singleuser.storage.type is "dynamic": it must be "none"',
        ),
        ({"jupyterhub": {"cull": {"enabled": True}}}, "jupyterhub.cull.enabled must be false"),
        (
            {"workshop": {"accounts": {"existingSecret": "my-cards"}}},
            'workshop.accounts.existingSecret is "my-cards" but the hub mounts the Secret "workshop-accounts"',
        ),
        (
            {"workshop": {"service": {"database": {"existingSecret": "pg"}}}},
            'workshop.service.database.existingSecret is "pg" but the hub reads WORKSHOP_DB_URL from the Secret "workshop-db"',
        ),
        (
            {"jupyterhub": {"hub": {"service": {"extraPorts": []}}}},
            "jupyterhub.hub.service.extraPorts needs an entry named `workshop`",
        ),
        (
            {"jupyterhub": {"hub": {"networkPolicy": {"ingress": []}}}},
            "jupyterhub.hub.networkPolicy.ingress has no rule for port 10101",
        ),
        (
            {"jupyterhub": {"hub": {"existingSecret": ""}}},
            "jupyterhub.hub.existingSecret must name the Secret",
        ),
        (
            {"jupyterhub": {"hub": {"db": {"type": "sqlite-memory"}}}},
            'jupyterhub.hub.db.type is "sqlite-memory", so the hub has no persistent /srv/jupyterhub',
        ),
    ],
)
def test_render_refuses_halves_that_would_not_meet(change, message):
    with pytest.raises(helm_python.HelmRenderError) as refused:
        render(values_for(change))
    assert message in str(refused.value)


def test_every_workshop_setting_is_described():
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["workshop"]

    def walk(node, path):
        assert node.get("description"), f"{path} has no description"
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("properties"):
            walk(extra, f"{path}.*")

    walk(schema, "workshop")

    def leaves(values, node, path):
        for key, value in values.items():
            props = node.get("properties") or {}
            assert key in props, f"{path}.{key} (values.yaml) is not in the schema"
            if isinstance(value, dict) and props[key].get("properties"):
                leaves(value, props[key], f"{path}.{key}")

    leaves(chart().values["workshop"], schema, "workshop")


# --- the Grafana dashboard ------------------------------------------------------------------


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
def test_dashboard_queries_only_metrics_that_exist():
    import jupyterhub.metrics  # noqa: F401  (registers the hub's metrics in REGISTRY)
    from prometheus_client import REGISTRY

    from jupyterhub_workshop.service.metrics import WorkshopMetrics

    known = set()
    for registry in (WorkshopMetrics().registry, REGISTRY):
        for family in registry.collect():
            known |= {sample.name for sample in family.samples}
            known |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum", "_total")}
    dashboard = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] == "jupyterhub-workshop"
    assert [v["type"] for v in dashboard["templating"]["list"]] == ["datasource"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    used = {name for expr in exprs for name in re.findall(r"\b((?:workshop|jupyterhub)_[a-z_]+)\b", expr)}
    assert used - known == set()
    assert {
        "workshop_active_users",
        "workshop_culls_total",
        "workshop_node_seconds_total",
        "workshop_cost_total",
        "workshop_prewarm_placeholders",
        "workshop_prewarm_active",
        "jupyterhub_running_servers",
        "jupyterhub_server_spawn_duration_seconds_bucket",
    } <= used
    # the service's counters are read as counters (..._total), in base units; running servers
    # are the hub's own metric, which the service does not duplicate
    counters = {
        family.name
        for family in WorkshopMetrics().registry.collect()
        if family.type in ("counter", "histogram")
    }
    assert not {name for name in used if name in counters}  # never a counter without its suffix
    assert not any("hour" in name for name in used) and "workshop_running_servers" not in used
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


# --- the images -----------------------------------------------------------------------------


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_hub_image_is_z2jh_hub_plus_this_package():
    steps = instructions((ROOT / "images" / "hub" / "Dockerfile").read_text())
    froms = [arg for op, arg in steps if op == "FROM"]
    assert froms == ["quay.io/jupyterhub/k8s-hub:4.4.0"]
    users = [(i, arg) for i, (op, arg) in enumerate(steps) if op == "USER"]
    pip = [i for i, (op, arg) in enumerate(steps) if op == "RUN" and "pip install" in arg]
    assert pip and users[0][1] == "root" and users[0][0] < pip[0]
    assert users[-1][1] == "1000" and users[-1][0] > pip[-1]
    install = " ".join(steps[i][1] for i in pip)
    assert "[postgres,s3]" in install  # the service's PostgreSQL driver; boto3 for the archive Job
    assert "tzdata" in install  # zoneinfo's time zones for the night window
    assert "jupyterhub==" in install or "constraint" in install  # never changes the hub's JupyterHub
    # the build stops unless the installed package is WORKSHOP_VERSION (the chart's appVersion)
    assert "__version__" in install and '"$WORKSHOP_VERSION"' in install and "sys.exit(" in install
    assert (
        "import zoneinfo, jupyterhub_workshop.hubconfig.chart" in install
    )  # what files/workshop_config.py imports


def test_hub_image_version_check_refuses_another_version(tmp_path):
    """The build's version check, run here against the installed package."""
    import subprocess
    import sys

    import jupyterhub_workshop

    steps = instructions((ROOT / "images" / "hub" / "Dockerfile").read_text())
    [run] = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    [check] = [part.strip() for part in run.split(" && ") if "$WORKSHOP_VERSION" in part]
    check = check.replace("python3 -c", f"{sys.executable} -c", 1)
    for version, ok in ((jupyterhub_workshop.__version__, True), ("9.9.9", False)):
        done = subprocess.run(
            ["sh", "-c", check], env={"WORKSHOP_VERSION": version}, capture_output=True, text=True
        )
        assert (done.returncode == 0) is ok, done.stderr
    assert "WORKSHOP_VERSION is 9.9.9" in done.stderr


def test_singleuser_image_installs_the_locked_environment():
    """images/singleuser: requirements.in locked with hashes into requirements.txt (for Linux
    x86_64 and Python 3.12), installed as locked; offline, from the files alone."""
    import hashlib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    folder = ROOT / "images" / "singleuser"
    wanted = [
        Requirement(line.split("#", 1)[0].strip())
        for line in (folder / "requirements.in").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    lock = (folder / "requirements.txt").read_text()
    # the lock was made from this requirements.in (its header records the input's sha256)
    recorded = re.search(r"^#.*requirements\.in sha256:([0-9a-f]{64})$", lock, re.M)
    assert recorded, (
        "requirements.txt has no requirements.in sha256 in its header: lock it with images/singleuser/lock"
    )
    assert recorded.group(1) == hashlib.sha256((folder / "requirements.in").read_bytes()).hexdigest(), (
        "requirements.in changed since requirements.txt was locked: run images/singleuser/lock"
    )
    # every package pinned to one version, each with sha256 hashes
    pins, hashes, current = {}, {}, None
    for line in lock.splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(\s*\\)?$", line):
            current = canonicalize_name(m.group(1))
            assert current not in pins, f"{current} pinned twice"
            pins[current], hashes[current] = Version(m.group(2)), 0
        elif line.strip().startswith("--hash=sha256:"):
            hashes[current] += 1
        else:
            assert not line.strip() or line.lstrip().startswith("#"), f"unexpected line in the lock: {line!r}"
    assert pins and all(hashes.values()), [name for name, n in hashes.items() if not n]
    # every top-level requirement met by its pinned version
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} (requirements.in) is not in the lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])
    # z2jh 4.4.0's hub runs JupyterHub 5.5: the single-user side matches its major.minor
    assert str(next(r for r in wanted if r.name == "jupyterhub").specifier) == "==5.5.*"
    assert pins["jupyterhub"].release[:2] == (5, 5)
    assert pins["jupyterlab"].release[:2] == (4, 4)
    # locked for the image's platform and Python, with hashes, from PyPI
    compile_command = (folder / "lock").read_text()
    for option in ("--generate-hashes", "--python-version 3.12", "--python-platform x86_64-manylinux_2_28"):
        assert option in compile_command
    assert "requirements.in sha256:" in compile_command

    steps = instructions((folder / "Dockerfile").read_text())
    base = [arg for op, arg in steps if op == "ARG" and arg.startswith("BASE_IMAGE=")]
    assert base == ["BASE_IMAGE=python:3.12-slim-bookworm"]
    assert [arg for op, arg in steps if op == "COPY"] == ["requirements.txt /tmp/requirements.txt"]
    [install] = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    assert "pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt" in install
    users = [arg for op, arg in steps if op == "ARG" and "NB_UID" in arg]
    assert users and "NB_UID=1000" in users[0] and "NB_GID=100" in users[0]
    assert any(op == "RUN" and "useradd" in arg and "--home-dir /home/${NB_USER}" in arg for op, arg in steps)
    assert [arg for op, arg in steps if op == "USER"] == ["1000"]
    assert not (folder / "environment.yml").exists() and "conda-lock.yml" not in install
