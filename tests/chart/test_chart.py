"""The Helm chart (helm-chart/) and the images (images/).

Offline, without a helm binary: helm-python-sdk embeds Helm's engine (lint, render, schema),
kubernetes-validate checks every rendered object against Kubernetes 1.32's schemas. The
Zero to JupyterHub dependency is not downloaded here, so a render holds this chart's own
objects; what the chart hands to z2jh (its `jupyterhub:` values, the settings Secret, the hub
configuration) is checked as values and by executing the hub configuration.
"""

from __future__ import annotations

import json
import re
import zoneinfo

import helm_python
import kubernetes_validate
import pytest
import yaml

from .helpers import (
    CHART,
    CI_DIR,
    GLUE,
    NAMESPACE,
    ROOT,
    chart,
    ci_values,
    deep_merge,
    find,
    hub_values,
    manifests,
    named,
    render,
    run_glue,
    secret_data,
    user_pod,
)

CI_FILES = ["minimal-values.yaml", "nfs-shared-values.yaml", "dynamic-homes-values.yaml",
            "postgres-db-values.yaml", "night-culling-values.yaml"]
K8S_VERSION = "1.32"
PORT = 10101  # the workshop service's port in values.yaml (hub.service.extraPorts "workshop")


@pytest.fixture(scope="module", params=CI_FILES)
def ci(request):
    """(file name, values, rendered objects) for each shipped values file."""
    values = ci_values(request.param)
    return request.param, values, manifests(render(values))


def values_for(*overrides: dict) -> dict:
    values = ci_values("minimal-values.yaml")
    for override in overrides:
        values = deep_merge(values, override)
    return values


def settings(objects) -> dict:
    """custom.workshop as the hub receives it, from the rendered settings Secret."""
    secret = find(objects, "Secret", "workshop-hub-settings")
    return yaml.safe_load(secret_data(secret)["values.yaml"])["custom"]["workshop"]


# --- the chart itself ----------------------------------------------------------------------

def test_chart_declares_z2jh_440_and_matches_the_package():
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == "jupyterhub-workshop"
    assert meta["dependencies"] == [
        {"name": "jupyterhub", "version": "4.4.0", "repository": "https://jupyterhub.github.io/helm-chart/"}]
    # Helm sees it too; "missing" until `helm dependency update helm-chart` fetches it
    [dep] = helm_python.dependency_list(str(CHART))
    assert (dep["name"], dep["version"]) == ("jupyterhub", "4.4.0")
    assert dep["status"] in {"missing", "ok", "unpacked"}
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert meta["appVersion"] == version
    defaults = chart().values["jupyterhub"]
    assert defaults["hub"]["image"]["tag"] == defaults["singleuser"]["image"]["tag"] == version


def test_ci_values_files_are_the_tested_ones():
    assert sorted(p.name for p in CI_DIR.glob("*.yaml")) == sorted(CI_FILES)


@pytest.mark.parametrize("name", CI_FILES)
def test_lint(name):
    report = helm_python.lint(str(CHART), ci_values(name), namespace=NAMESPACE)
    assert report["errors"] == []
    missing_dependency = "chart directory is missing these dependencies: jupyterhub"
    problems = [m for m in report["messages"] if m["severity"] >= 2 and m["error"] != missing_dependency]
    assert problems == []


def test_every_rendered_object_validates_strictly(ci):
    name, values, objects = ci
    assert objects, name
    for obj in objects:
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), keys
    kinds = {o["kind"] for o in objects}
    assert {"Secret", "ConfigMap", "Service"} <= kinds


# --- the wiring, on the rendered objects ----------------------------------------------------

def test_the_hub_gets_the_settings_and_its_configuration(ci):
    name, values, objects = ci
    jh = chart().merge_values(values)["jupyterhub"]
    hub = jh["hub"]
    # the settings reach the hub: z2jh merges the values.yaml of hub.existingSecret into get_config()
    secret = find(objects, "Secret", hub["existingSecret"])
    ws = yaml.safe_load(secret_data(secret)["values.yaml"])["custom"]["workshop"]
    assert ws["title"] == values["workshop"]["title"]
    assert "file" not in ws["accounts"] and "url" not in ws["service"]["database"]
    assert ws["wiring"]["servicePort"] == PORT
    assert ws["wiring"]["accountsFile"] == named(hub["extraVolumeMounts"], "workshop-accounts")["mountPath"] + "/accounts.yaml"
    # the hub configuration is mounted where z2jh loads extra configuration, from this ConfigMap
    volume = named(hub["extraVolumes"], "workshop-hub-config")
    mount = named(hub["extraVolumeMounts"], "workshop-hub-config")
    assert mount["mountPath"] == "/usr/local/etc/jupyterhub/jupyterhub_config.d/workshop.py"
    config_map = find(objects, "ConfigMap", volume["configMap"]["name"])
    assert config_map["data"][mount["subPath"]] == GLUE.read_text()


def test_accounts_secret_mounted_in_the_hub(ci, tmp_path):
    name, values, objects = ci
    hub = chart().merge_values(values)["jupyterhub"]["hub"]
    secret_name = named(hub["extraVolumes"], "workshop-accounts")["secret"]["secretName"]
    mount = named(hub["extraVolumeMounts"], "workshop-accounts")
    assert "subPath" not in mount and mount["readOnly"] is True  # Secret updates reach the hub
    accounts = values["workshop"]["accounts"]
    rendered = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == secret_name]
    if accounts.get("file"):
        from jupyterhub_workshop.login.accounts import load_accounts

        [secret] = rendered
        content = secret_data(secret)["accounts.yaml"]
        assert content == accounts["file"]
        (tmp_path / "accounts.yaml").write_text(content)
        assert len(load_accounts(str(tmp_path / "accounts.yaml"))) == 3  # a valid accounts file
    else:
        assert accounts["existingSecret"] == secret_name and rendered == []


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


def test_z2jh_values_wire_spawner_service_port_network_policy_and_culler(ci):
    name, values, objects = ci
    jh = chart().merge_values(values)["jupyterhub"]
    hub = jh["hub"]
    assert jh["singleuser"]["storage"]["type"] == "none"  # the workshop spawner mounts homes
    assert jh["cull"]["enabled"] is False  # the workshop service culls
    assert hub["config"]["JupyterHub"]["authenticator_class"] == "workshop"
    assert hub["config"]["JupyterHub"]["spawner_class"] == "workshop"
    assert hub["services"]["workshop"] == {}  # z2jh makes and keeps its API token
    assert named(hub["service"]["extraPorts"], "workshop") == {
        "name": "workshop", "port": PORT, "targetPort": PORT, "protocol": "TCP"}
    from_proxy = [rule for rule in hub["networkPolicy"]["ingress"]
                  if {"port": PORT} in rule["ports"]
                  and {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "proxy"}}} in rule["from"]]
    assert from_proxy, "the proxy must reach the service for the Services-menu link"
    env = hub["extraEnv"]["WORKSHOP_DB_URL"]["valueFrom"]["secretKeyRef"]
    assert env == {"name": "workshop-db", "key": "url", "optional": True}
    assert hub["image"]["name"].endswith("/hub")


def test_metrics_service_for_prometheus(ci):
    name, values, objects = ci
    service = find(objects, "Service", "workshop-metrics")
    base_url = values.get("jupyterhub", {}).get("hub", {}).get("baseUrl", "/").rstrip("/")
    assert service["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
        "prometheus.io/path": f"{base_url}/services/workshop/metrics"}
    assert service["spec"]["selector"] == {"component": "hub", "app": "jupyterhub", "release": "workshop"}
    assert service["spec"]["ports"] == [{"name": "metrics", "port": PORT, "targetPort": PORT, "protocol": "TCP"}]
    hub = chart().merge_values(values)["jupyterhub"]["hub"]
    scrapers = [rule for rule in hub["networkPolicy"]["ingress"] if {"port": PORT} in rule["ports"]
                and any(peer.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "prometheus"}
                        for peer in rule["from"])]
    assert scrapers and {"port": 8081} in scrapers[0]["ports"]


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
    assert "https://hub.example.org/workshop/" in notes and "America/Denver" in notes


# --- the hub configuration, executed as z2jh's hub runs it ---------------------------------

def service_entry(c):
    [entry] = [s for s in c.JupyterHub.services if s["name"] == "workshop"]
    return entry


def parsed_service(entry):
    """The service's own command line parser, on the arguments the hub will start it with."""
    from jupyterhub_workshop.service.app import WorkshopService

    assert entry["command"][1:3] == ["-m", "jupyterhub_workshop.service"]
    service = WorkshopService()
    service.parse_command_line(entry["command"][3:])
    service.build_policy()
    return service


@pytest.fixture
def db_url(monkeypatch):
    monkeypatch.setenv("WORKSHOP_DB_URL", "postgresql+psycopg://workshop:pw@db:5432/workshop")


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
@pytest.mark.usefixtures("db_url")
async def test_hub_configuration_from_every_values_file(ci):
    name, values, objects = ci
    config = hub_values(values)
    c = run_glue(config)
    ws = values["workshop"]

    assert c.JupyterHub.authenticator_class == "workshop"
    assert c.WorkshopAuthenticator.accounts_file == "/etc/workshop/accounts/accounts.yaml"
    assert c.WorkshopAuthenticator.workshop_title == ws["title"]
    assert c.JupyterHub.spawner_class == "workshop"
    assert c.WorkshopKubeSpawner.readme_config_map == "workshop-readme"

    entry = service_entry(c)
    assert entry["url"] == f"http://hub:{PORT}"  # the proxy reaches it through the hub Service
    assert entry["api_token"] == "token-of-workshop"  # z2jh's, kept
    assert entry["display"] is True and entry["oauth_no_confirm"] is True
    from jupyterhub.services.service import Service

    assert set(entry) <= set(Service.class_traits(input=True))  # else the hub: "No such service field"
    service = parsed_service(entry)
    assert service.service_url == f"http://0.0.0.0:{PORT}"  # listens on the pod's interfaces
    culling = ws.get("culling", {})
    assert service.idle_timeout == culling.get("idleTimeout", 3600)
    assert service.exempt_groups == culling.get("exemptGroups", ["instructors"])
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    from jupyterhub_workshop.hubconfig.services import ROLE_SCOPES

    assert roles["workshop-service"] == {
        "name": "workshop-service", "description": roles["workshop-service"]["description"],
        "scopes": ROLE_SCOPES, "services": ["workshop"]}
    assert "access:services!service=workshop" in roles["user"]["scopes"]

    if ws.get("service", {}).get("database"):
        assert entry["environment"] == {"WORKSHOP_DB_URL": "postgresql+psycopg://workshop:pw@db:5432/workshop"}
        assert not any(a.startswith("--db-url") for a in entry["command"])
        assert service.users_per_node == 4 and service.price_per_node_hour == 0.384
    else:
        assert entry["environment"] == {}
        assert service.db_url == "sqlite:////srv/jupyterhub/workshop-usage.sqlite"  # the hub's volume

    # the pods the spawner makes from this configuration
    for username, groups in (("ws001", ["participants"]), ("wsinstructor01", ["instructors"])):
        spawner, pod, pvc = await user_pod(c, username, groups)
        assert kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        container = pod["spec"]["containers"][0]
        hook = container["lifecycle"]["postStart"]["exec"]["command"]
        assert hook[:2] == ["sh", "-c"] and username not in hook[2]  # constant text, env inputs
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["WORKSHOP_README_SOURCE"] == "/etc/workshop/readme/README.md"
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["workshop-readme"]["configMap"] == {"name": "workshop-readme", "optional": True}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        homes = [m for m in container["volumeMounts"] if m["mountPath"] == "/home/jovyan"]
        assert len(homes) == 1, "exactly one home volume"
        kernel_timeout = culling.get("kernelIdleTimeout", 3600)
        assert f"--MappingKernelManager.cull_idle_timeout={kernel_timeout}" in container["args"]
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
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": 1.75, "memory": 7 * 2**30}
    assert resources["limits"] == {"cpu": 4, "memory": 8 * 2**30}
    assert "workshop-shared" not in volumes


def check_night(c, username, groups, pod, pvc, volumes, mounts):
    service = parsed_service(service_entry(c))
    assert (service.night_start, service.night_end, service.timezone) == ("22:00", "06:00", "America/Denver")
    assert service.max_age == 43200 and service.staff_groups == ["instructors", "staff"]
    assert callable(c.JupyterHub.template_vars["announcement"])  # the night warning banner


CHECKS = {"nfs-shared-values.yaml": check_nfs, "dynamic-homes-values.yaml": check_dynamic,
          "night-culling-values.yaml": check_night}


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
async def test_high_performance_profile_and_extra_profiles():
    c = run_glue(hub_values(ci_values("dynamic-homes-values.yaml")))
    participant, _, _ = await user_pod(c, "ws001", ["participants"])
    instructor, _, _ = await user_pod(c, "wsinstructor01", ["instructors"])
    assert [p["slug"] for p in participant.profile_list(participant)] == ["standard", "r"]
    assert [p["slug"] for p in instructor.profile_list(instructor)] == ["standard", "high-performance", "r"]
    _, pod, _ = await user_pod(c, "wsinstructor01", ["instructors"], profile="high-performance")
    assert kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["spec"]["nodeSelector"] == {"node.kubernetes.io/instance-type": "m5.4xlarge"}
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["tolerations"][-1]["key"] == "hub.jupyter.org/dedicated"


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
async def test_z2jh_volumes_given_as_dicts_still_work():
    """z2jh hands KubeSpawner its volumes keyed by name; the workshop spawner adds list entries."""
    values = values_for({"jupyterhub": {"singleuser": {"storage": {
        "extraVolumes": {"scratch": {"name": "scratch", "emptyDir": {}}},
        "extraVolumeMounts": {"scratch": {"name": "scratch", "mountPath": "/scratch"}}}}}})
    assert z2jh_rejects(values["jupyterhub"]) == []
    c = run_glue(hub_values(values))
    _, pod, _ = await user_pod(c, "ws001", ["participants"])
    assert {"scratch", "workshop-home", "workshop-readme"} <= {v["name"] for v in pod["spec"]["volumes"]}


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
def test_existing_roles_and_template_vars_are_extended_not_replaced():
    values = values_for({"jupyterhub": {"hub": {
        "loadRoles": {"user": {"scopes": ["self", "read:users:name"]}},
        "templateVars": {"org": "ESIP"}}}},
        ci_values("night-culling-values.yaml"))
    config = hub_values(values)
    c = run_glue(config)
    user = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
    assert len(user) == 1 and user[0]["scopes"] == ["self", "read:users:name", "access:services!service=workshop"]
    assert c.JupyterHub.template_vars["org"] == "ESIP" and callable(c.JupyterHub.template_vars["announcement"])


@pytest.mark.jh55
@pytest.mark.parametrize("change, message", [
    ({"culling": {"night": {"timeZone": "America/Denvr"}}}, "'America/Denvr' is not an IANA time zone"),
    ({"culling": {"night": {"start": "22:00", "end": ""}}}, "needs both start and end"),
])
def test_hub_configuration_checks_the_night_window_itself(change, message):
    config = hub_values(ci_values("night-culling-values.yaml"))
    config["custom"]["workshop"] = deep_merge(config["custom"]["workshop"], change)
    with pytest.raises(ValueError, match=re.escape(message)):
        run_glue(config)


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
def test_hub_configuration_needs_the_settings_and_the_database_url(monkeypatch):
    config = hub_values(ci_values("minimal-values.yaml"))
    del config["custom"]
    with pytest.raises(ValueError, match="did not receive the chart's workshop settings"):
        run_glue(config)
    monkeypatch.delenv("WORKSHOP_DB_URL", raising=False)
    with pytest.raises(ValueError, match="WORKSHOP_DB_URL is empty in the hub.*'workshop-db'"):
        run_glue(hub_values(ci_values("postgres-db-values.yaml")))


# --- the schema and the render-time checks refuse bad settings -----------------------------

@pytest.mark.parametrize("change, messages", [
    ({"bogus": 1}, ["at '/workshop'", "additional properties 'bogus' not allowed"]),
    ({"culling": {"nightWindow": {}}}, ["at '/workshop/culling'", "'nightWindow' not allowed"]),
    ({"culling": {"night": {"start": "22:00", "end": "06:00", "timeZone": "Mountain Time"}}},
     ["at '/workshop/culling/night/timeZone'", "'Mountain Time' does not match pattern"]),
    ({"culling": {"night": {"start": "22:00", "end": "06:00", "timeZone": "MST"}}},
     ["at '/workshop/culling/night/timeZone'", "'MST' does not match"]),
    ({"culling": {"night": {"start": "22:00", "end": "06:00", "timeZone": "america/denver"}}},
     ["at '/workshop/culling/night/timeZone'", "'america/denver' does not match"]),
    ({"culling": {"night": {"start": "22:00", "end": "06:00", "timeZone": "GMT-7"}}},
     ["at '/workshop/culling/night/timeZone'", "'GMT-7' does not match"]),
    ({"culling": {"night": {"start": "25:00", "end": "06:00"}}},
     ["at '/workshop/culling/night/start'", "'25:00' does not match pattern"]),
    ({"culling": {"night": {"start": "10pm", "end": "6am"}}},
     ["at '/workshop/culling/night/start'", "'10pm' does not match", "at '/workshop/culling/night/end'"]),
    ({"culling": {"night": {"start": "22:00"}}}, ["at '/workshop/culling/night/end'", "minLength: got 0, want 1"]),
    ({"culling": {"idleTimeout": -1}}, ["at '/workshop/culling/idleTimeout'", "minimum: got -1, want 0"]),
    ({"culling": {"maxAge": -60}}, ["at '/workshop/culling/maxAge'", "minimum: got -60, want 0"]),
    ({"culling": {"kernelIdleTimeout": -1}}, ["at '/workshop/culling/kernelIdleTimeout'", "minimum"]),
    ({"homeStorage": {"claimBindTimeout": -5}}, ["at '/workshop/homeStorage/claimBindTimeout'", "exclusiveMinimum"]),
    ({"homeStorage": {"mode": "nfs"}},
     ["at '/workshop/homeStorage/mode'", "value must be one of 'dynamic', 'static', 'none'"]),
    ({"homeStorage": {"mode": "static"}}, ["at '/workshop/homeStorage/existingClaim'", "minLength"]),
    ({"homeStorage": {"capacity": "10 GB"}}, ["at '/workshop/homeStorage/capacity'", "'10 GB' does not match"]),
    ({"accounts": {"existingSecret": ""}},
     ["at '/workshop/accounts'", "oneOf", "at '/workshop/accounts/file'", "at '/workshop/accounts/existingSecret'"]),
    ({"accounts": {"file": "version: 1"}}, ["at '/workshop/accounts'", "oneOf"]),
    ({"sharedData": {"nfs": {"server": "10.0.0.5"}, "existingClaim": "shared"}},
     ["at '/workshop/sharedData/existingClaim'", "maxLength: got 6, want 0"]),
    ({"service": {"database": {"url": "postgresql://x", "existingSecret": "workshop-db"}}},
     ["at '/workshop/service/database/existingSecret'", "maxLength: got 11, want 0"]),
    ({"resources": {"memory": {"limit": "8GB"}}}, ["at '/workshop/resources/memory/limit'", "'8GB' does not match"]),
    ({"title": 42}, ["at '/workshop/title'", "got number, want string"]),
    ({"accounts": {"existingSecret": "Workshop_Accounts"}},
     ["at '/workshop/accounts/existingSecret'", "'Workshop_Accounts' does not match"]),
], ids=[
    "unknown-key", "unknown-nested-key", "tz-words", "tz-abbreviation", "tz-lowercase",
    "tz-offset", "night-hour-25", "night-am-pm", "night-start-without-end",
    "negative-idle-timeout", "negative-max-age", "negative-kernel-timeout",
    "negative-claim-timeout", "unknown-storage-mode", "static-without-claim", "bad-capacity",
    "missing-accounts-source", "two-accounts-sources", "two-shared-sources",
    "two-database-sources", "bad-memory", "title-not-text", "bad-secret-name",
])
def test_schema_refuses_with_a_clear_message(change, messages):
    values = values_for({"workshop": change})
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(values)
    text = str(refused.value)
    for message in messages:
        assert message in text, text


def test_schema_refuses_a_missing_workshop_block_key():
    with pytest.raises(helm_python.HelmValuesError, match="additional properties 'workshp' not allowed"):
        render(deep_merge(ci_values("minimal-values.yaml"), {"workshp": {}}))


def test_time_zone_pattern_takes_every_canonical_zone():
    pattern = re.compile(json.loads((CHART / "values.schema.json").read_text())
                         ["properties"]["workshop"]["properties"]["culling"]["properties"]
                         ["night"]["properties"]["timeZone"]["pattern"])
    areas = ("Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/", "Australia/",
             "Europe/", "Indian/", "Pacific/")
    zones = [z for z in zoneinfo.available_timezones() if z.startswith(areas)] + ["UTC"]
    if len(zones) < 300:
        pytest.skip("no IANA time zone database here")
    assert [z for z in zones if not pattern.match(z)] == []


@pytest.mark.parametrize("change, message", [
    ({"jupyterhub": {"singleuser": {"storage": {"type": "dynamic"}}}},
     'jupyterhub.singleuser.storage.type is "dynamic": it must be "none"'),
    ({"jupyterhub": {"cull": {"enabled": True}}}, "jupyterhub.cull.enabled must be false"),
    ({"workshop": {"accounts": {"existingSecret": "my-cards"}}},
     'workshop.accounts.existingSecret is "my-cards" but the hub mounts the Secret "workshop-accounts"'),
    ({"workshop": {"service": {"database": {"existingSecret": "pg"}}}},
     'workshop.service.database.existingSecret is "pg" but the hub reads WORKSHOP_DB_URL from the Secret "workshop-db"'),
    ({"workshop": {"culling": {"night": {"start": "22:00", "end": "22:00"}}}},
     'workshop.culling.night: start and end are both "22:00"'),
    ({"jupyterhub": {"hub": {"service": {"extraPorts": []}}}},
     "jupyterhub.hub.service.extraPorts needs an entry named `workshop`"),
    ({"jupyterhub": {"hub": {"networkPolicy": {"ingress": []}}}},
     "jupyterhub.hub.networkPolicy.ingress has no rule for port 10101"),
    ({"jupyterhub": {"hub": {"existingSecret": ""}}}, "jupyterhub.hub.existingSecret must name the Secret"),
    ({"jupyterhub": {"hub": {"db": {"type": "postgres"}}}},
     'jupyterhub.hub.db.type is "postgres", so the hub has no persistent /srv/jupyterhub'),
])
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


# --- z2jh 4.4.0 would accept our `jupyterhub:` values ---------------------------------------

# The key paths of z2jh 4.4.0's strict values schema (jupyterhub/values.schema.yaml in
# https://github.com/jupyterhub/zero-to-jupyterhub-k8s at tag 4.4.0) that our values.yaml and
# helm-chart/ci/*.yaml use, read off that schema: each exact path is a property there, and a
# path ending in ".*" is one of its open maps (additionalProperties or patternProperties ".*").
# `hub.config.<Class>.*` stands for its patternProperties "^[A-Z].*$". Lists are leaves.
Z2JH_440_KEYS = {
    "fullnameOverride", "nameOverride", "custom.*",
    "hub.image.name", "hub.image.tag", "hub.image.pullPolicy", "hub.image.pullSecrets",
    "hub.existingSecret", "hub.baseUrl", "hub.authenticatePrometheus",
    "hub.config.<Class>.*", "hub.services.*", "hub.loadRoles.*", "hub.templateVars.*",
    "hub.extraConfig.*", "hub.extraEnv.*", "hub.extraVolumes", "hub.extraVolumeMounts",
    "hub.service.extraPorts", "hub.networkPolicy.ingress", "hub.db.type",
    "singleuser.image.name", "singleuser.image.tag", "singleuser.defaultUrl",
    "singleuser.storage.type", "singleuser.storage.extraVolumes", "singleuser.storage.extraVolumeMounts",
    "cull.enabled",
    "proxy.https.enabled", "proxy.https.hosts", "proxy.https.letsencrypt.contactEmail",
    "scheduling.userPlaceholder.enabled", "scheduling.userPlaceholder.replicas",
}


def z2jh_rejects(values: dict, path: str = "") -> list[str]:
    """Key paths under `values` that are not in Z2JH_440_KEYS."""
    bad = []
    for key, value in values.items():
        here = f"{path}{key}"
        generic = re.sub(r"^hub\.config\.[A-Z][A-Za-z0-9_]*", "hub.config.<Class>", here)
        if any(generic == allowed[:-2] or generic.startswith(allowed[:-1])
               for allowed in Z2JH_440_KEYS if allowed.endswith(".*")):
            continue  # inside an open map
        if isinstance(value, dict) and value and here not in Z2JH_440_KEYS:
            bad += z2jh_rejects(value, here + ".")
        elif here not in Z2JH_440_KEYS:
            bad.append(here)
    return bad


@pytest.mark.parametrize("source", ["values.yaml", *CI_FILES])
def test_jupyterhub_values_use_only_keys_z2jh_440_allows(source):
    values = yaml.safe_load((CHART / source if source == "values.yaml" else CI_DIR / source).read_text())
    assert z2jh_rejects(values.get("jupyterhub") or {}) == []


def test_the_allow_list_check_catches_mistakes():
    assert z2jh_rejects({"hub": {"extraPort": []}, "cull": {"enable": False},
                         "hub.config": {}, "singleuser": {"storage": {"typ": "none"}}}) == [
        "hub.extraPort", "cull.enable", "hub.config", "singleuser.storage.typ"]
    assert z2jh_rejects({"hub": {"config": {"loadRoles": {}}}}) == ["hub.config.loadRoles"]
    assert z2jh_rejects({"hub": {"config": {"WorkshopAuthenticator": {"x": 1}}}, "custom": {"a": {"b": 1}}}) == []


def test_the_whole_chart_when_the_dependency_is_present():
    """After `helm dependency update helm-chart` (not possible offline here), Helm checks our
    `jupyterhub:` values with z2jh's real schema and renders z2jh's objects too."""
    [dep] = helm_python.dependency_list(str(CHART))
    if dep["status"] not in {"ok", "unpacked"}:
        pytest.skip("z2jh 4.4.0 not in helm-chart/charts/ (run `helm dependency update helm-chart`)")
    full = helm_python.Chart.load(str(CHART))
    assert [d["version"] for d in full.dependencies] == ["4.4.0"]
    for name in CI_FILES:
        objects = manifests(full.render(ci_values(name), name="workshop", namespace=NAMESPACE))
        for obj in objects:
            assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        hub = find(objects, "Deployment", "hub")
        volumes = {v["name"] for v in hub["spec"]["template"]["spec"]["volumes"]}
        assert {"workshop-hub-config", "workshop-accounts", "existing-secret"} <= volumes
        ports = find(objects, "Service", "hub")["spec"]["ports"]
        assert {"name": "workshop", "port": PORT, "targetPort": PORT, "protocol": "TCP"} in ports


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
    assert {"workshop_running_servers", "workshop_culls_total", "workshop_cost",
            "jupyterhub_running_servers", "jupyterhub_server_spawn_duration_seconds_bucket"} <= used
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


# --- the images -----------------------------------------------------------------------------

def instructions(dockerfile: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in (raw.strip() for raw in text.splitlines()) if line and not line.startswith("#")]


def test_hub_image_is_z2jh_hub_plus_this_package():
    steps = instructions((ROOT / "images" / "hub" / "Dockerfile").read_text())
    froms = [arg for op, arg in steps if op == "FROM"]
    assert froms == ["quay.io/jupyterhub/k8s-hub:4.4.0"]
    users = [(i, arg) for i, (op, arg) in enumerate(steps) if op == "USER"]
    pip = [i for i, (op, arg) in enumerate(steps) if op == "RUN" and "pip install" in arg]
    assert pip and users[0][1] == "root" and users[0][0] < pip[0]
    assert users[-1][1] == "1000" and users[-1][0] > pip[-1]
    install = " ".join(steps[i][1] for i in pip)
    assert "[postgres]" in install  # the service's PostgreSQL driver
    assert "tzdata" in install  # zoneinfo's time zones for the night window
    assert "jupyterhub==" in install or "constraint" in install  # never changes the hub's JupyterHub


def test_singleuser_image_installs_the_locked_environment():
    folder = ROOT / "images" / "singleuser"
    environment = yaml.safe_load((folder / "environment.yml").read_text())
    specs = [d for d in environment["dependencies"] if isinstance(d, str)]
    # z2jh 4.4.0's hub runs JupyterHub 5.5: the single-user side matches its major.minor
    assert [s for s in specs if re.match(r"^jupyterhub(-base|-singleuser)?\s*=", s)] == ["jupyterhub-singleuser=5.5.*"]
    assert environment["channels"] == ["conda-forge"]
    steps = instructions((folder / "Dockerfile").read_text())
    copies = [arg for op, arg in steps if op == "COPY"]
    assert any("conda-lock.yml" in arg for arg in copies)
    assert any(op == "RUN" and "--file /tmp/conda-lock.yml" in arg for op, arg in steps)
    assert [arg for op, arg in steps if op == "USER"][-1] in {"${NB_UID}", "1000"}
    guide = (folder / "README.md").read_text()
    assert "conda-lock lock --file environment.yml" in guide
    lock = folder / "conda-lock.yml"
    if lock.exists():  # once generated: a real lock, pinning the same JupyterHub
        data = yaml.safe_load(lock.read_text())
        assert data["version"] == 1 and "linux-64" in data["metadata"]["platforms"]
        packages = {p["name"]: p for p in data["package"] if p["platform"] == "linux-64"}
        assert packages["jupyterhub-base"]["version"].startswith("5.5.")
        assert all(p["url"].startswith("https://") and (p["hash"].get("sha256") or p["hash"].get("md5"))
                   for p in data["package"])
