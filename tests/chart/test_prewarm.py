"""Warm before the bell, and spawn limits for the crowd: what the chart renders for
workshop.prewarm (the placeholder Deployment, its PriorityClass, the Role that lets the
workshop service scale it) and the limits the hub configuration sets, with the real Zero to
JupyterHub 4.4.0 render (its own templates and jupyterhub_config.py) as the reference for
where user pods go, which service account the hub runs as and what the hub sees.
"""

from __future__ import annotations

import itertools
import re

import helm_python
import kmock
import kubernetes_validate
import pytest
import yaml

from jupyterhub_workshop.schedule import placeholders_for
from tests.harness.kube.auth import allowed, service_account_user

from .helpers import (
    NAMESPACE,
    ci_values,
    deep_merge,
    find,
    manifests,
    render,
    run_hub_configuration,
    secret_data,
    user_pod,
)

K8S_VERSION = "1.32"
NAME = "workshop-prewarm"
PRIORITY_CLASS = f"{NAMESPACE}-workshop-prewarm"  # namespace, then release
CI_FILE = "prewarm-values.yaml"
SCHEDULE = {"timeZone": "America/Denver", "sessions": [{"days": ["Mon"], "start": "09:00", "end": "17:00"}]}
# what pre-warm needs: a schedule, users per node, each user's guarantees
PREWARM = {
    "workshop": {"schedule": SCHEDULE, "prewarm": {"enabled": True}, "service": {"usersPerNode": 4}},
    "jupyterhub": {"singleuser": {"cpu": {"guarantee": 1.75}, "memory": {"guarantee": "7G"}}},
}


def values(*overrides: dict, base: str = "minimal-values.yaml") -> dict:
    merged = ci_values(base)
    for override in overrides:
        merged = deep_merge(merged, override)
    return merged


def objects_of(*overrides: dict) -> list[dict]:
    return manifests(render(values(PREWARM, *overrides)))


def prewarm_objects(objects: list[dict]) -> list[dict]:
    return [
        o
        for o in objects
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "prewarm"
    ]


def placeholder_pod(objects: list[dict]) -> dict:
    return find(objects, "Deployment", NAME)["spec"]["template"]["spec"]


def hub_settings(objects: list[dict]) -> dict:
    secret = find(objects, "Secret", "workshop-hub-settings")
    return yaml.safe_load(secret_data(secret)["values.yaml"])["custom"]["workshop"]


def z2jh_values(objects: list[dict]) -> dict:
    """The values z2jh's hub reads (Secret `hub`), after Helm merged ours into z2jh's defaults."""
    return yaml.safe_load(secret_data(find(objects, "Secret", "hub"))["values.yaml"])


def refusal(*overrides: dict) -> str:
    with pytest.raises(helm_python.HelmRenderError) as refused:
        objects_of(*overrides)
    return str(refused.value)


def quantity(text: str) -> float:
    """A Kubernetes quantity of the forms the chart writes (cores, millicores, bytes, Ki..Ti)."""
    match = re.fullmatch(r"([0-9]+)(m|Ki|Mi|Gi|Ti)?", str(text))
    assert match, text
    scale = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[match[2]]
    return int(match[1]) * scale


# --- on and off ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {},
        # a schedule alone: the service shows it and scales nothing
        {"workshop": {"schedule": SCHEDULE, "service": {"usersPerNode": 4}}},
        # pre-warm off: what it would need may be missing
        {"workshop": {"prewarm": {"enabled": False, "priority": 5}}},
    ],
    ids=["defaults", "schedule-only", "off"],
)
def test_without_prewarm_there_are_no_prewarm_objects(change):
    objects = manifests(render(values(change)))
    assert prewarm_objects(objects) == []
    assert not [o for o in objects if NAME in o["metadata"]["name"] or o["kind"] == "PriorityClass"]
    assert hub_settings(objects)["wiring"]["prewarmDeployment"] == ""


def test_with_prewarm_the_objects_render_and_validate_strictly():
    objects = objects_of()
    assert {(o["kind"], o["metadata"]["name"]) for o in prewarm_objects(objects)} == {
        ("Deployment", NAME),
        ("PriorityClass", PRIORITY_CLASS),
        ("Role", NAME),
        ("RoleBinding", NAME),
    }
    for obj in objects:
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True), (
            obj["kind"],
            obj["metadata"]["name"],
        )
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys))
    # the service learns the Deployment's name from the chart
    assert hub_settings(objects)["wiring"]["prewarmDeployment"] == NAME


def test_the_shipped_ci_values_turn_prewarm_on():
    objects = manifests(render(ci_values(CI_FILE)))
    assert len(prewarm_objects(objects)) == 4
    ws = ci_values(CI_FILE)["workshop"]
    assert ws["prewarm"]["enabled"] and ws["schedule"]["sessions"] and ws["service"]["usersPerNode"]


# --- the placeholders ---------------------------------------------------------------------------


def test_the_deployment_starts_empty_for_the_service_to_scale():
    deployment = find(objects_of(), "Deployment", NAME)
    spec = deployment["spec"]
    assert spec["replicas"] == 0  # the service sets it; none run until it does
    assert spec["strategy"] == {"type": "Recreate"}  # no surge of node-sized pods on a change
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    assert selector["app.kubernetes.io/component"] == "prewarm"


def test_a_placeholder_is_zero_to_jupyterhubs_pause_container_locked_down():
    objects = objects_of()
    pod = placeholder_pod(objects)
    z2jh = find(objects, "StatefulSet", "user-placeholder")["spec"]["template"]["spec"]
    [pause] = pod["containers"]
    assert pause["image"] == z2jh["containers"][0]["image"] == "registry.k8s.io/pause:3.10.1"
    assert pause["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pause["securityContext"] == z2jh["containers"][0]["securityContext"]
    assert pod["automountServiceAccountToken"] is False and pod["terminationGracePeriodSeconds"] == 0
    assert "command" not in pause and "ports" not in pause and "volumes" not in pod


@pytest.mark.parametrize(
    "users, cpu, memory, requests",
    [
        (4, 1.75, "7G", {"cpu": "7", "memory": "28Gi"}),  # the ICESat-2 hackweek's sizes
        (3, 1.75, "1.5G", {"cpu": "5250m", "memory": "4608Mi"}),
        (8, 0.1, "512M", {"cpu": "800m", "memory": "4Gi"}),
        (3, 2, 1500000000, {"cpu": "6", "memory": "4500000000"}),  # bytes, as KubeSpawner takes them
        (1, 0.5, "1T", {"cpu": "500m", "memory": "1Ti"}),
        (5, 1, "1K", {"cpu": "5", "memory": "5Ki"}),
    ],
)
def test_a_placeholder_requests_a_whole_nodes_users(users, cpu, memory, requests):
    from jupyterhub.traitlets import ByteSpecification

    objects = objects_of(
        {
            "workshop": {"service": {"usersPerNode": users}},
            "jupyterhub": {"singleuser": {"cpu": {"guarantee": cpu}, "memory": {"guarantee": memory}}},
        }
    )
    resources = placeholder_pod(objects)["containers"][0]["resources"]
    assert resources == {"requests": requests, "limits": requests}
    # usersPerNode x what KubeSpawner reserves for one user (its 1024-based K, M, G, T)
    assert quantity(requests["cpu"]) == pytest.approx(users * cpu)
    assert quantity(requests["memory"]) == users * ByteSpecification().validate(None, memory)


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
async def test_placeholders_go_where_user_pods_go_and_are_as_big_as_a_nodes_users(tmp_path):
    """The placeholder's scheduling is the user pod's, as z2jh's configuration makes KubeSpawner
    build it: the same scheduler, tolerations, node selector and affinity; and it requests
    exactly usersPerNode user pods' worth."""
    scheduling = {
        "jupyterhub": {
            "singleuser": {
                "nodeSelector": {"cloud.google.com/gke-nodepool": "users"},
                "extraTolerations": [
                    {"key": "workshop", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}
                ],
                "extraNodeAffinity": {
                    "required": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
                },
                "extraPodAntiAffinity": {
                    "preferred": [
                        {
                            "weight": 10,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": {"noisy": "yes"}},
                            },
                        }
                    ]
                },
            }
        }
    }
    for change in (
        {},
        scheduling,
        deep_merge(
            scheduling,
            {
                "jupyterhub": {
                    "scheduling": {
                        "userPods": {"nodeAffinity": {"matchNodePurpose": "require"}},
                        "userScheduler": {"enabled": False},
                    }
                }
            },
        ),
    ):
        objects = objects_of(change)
        placeholder = placeholder_pod(objects)
        c = run_hub_configuration(objects, tmp_path)
        _, pod, _ = await user_pod(c, "ws001", ["participants"])
        user = pod["spec"]
        for key in ("schedulerName", "tolerations", "nodeSelector", "affinity"):
            assert placeholder.get(key) == user.get(key), key
        requests = placeholder["containers"][0]["resources"]["requests"]
        for resource in ("cpu", "memory"):
            mine = user["containers"][0]["resources"]["requests"][resource]
            assert quantity(requests[resource]) == pytest.approx(4 * float(mine)), resource
    assert placeholder.get("schedulerName") is None  # the last: z2jh's user scheduler off


def test_by_default_placeholders_tolerate_user_nodes_and_use_the_user_scheduler():
    objects = objects_of()
    pod = placeholder_pod(objects)
    assert pod["schedulerName"] == "workshop-user-scheduler"  # z2jh's, for release `workshop`
    dedicated = {"operator": "Equal", "value": "user", "effect": "NoSchedule"}
    assert pod["tolerations"] == [
        {"key": "hub.jupyter.org/dedicated", **dedicated},
        {"key": "hub.jupyter.org_dedicated", **dedicated},  # both spellings z2jh uses
    ]
    # z2jh's own placeholders agree
    z2jh = find(objects, "StatefulSet", "user-placeholder")["spec"]["template"]["spec"]
    for key in ("schedulerName", "tolerations", "affinity"):
        assert pod[key] == z2jh[key], key


# --- priority -----------------------------------------------------------------------------------


def test_the_priority_class_lets_users_preempt_and_never_preempts():
    objects = objects_of({"workshop": {"prewarm": {"priority": -7}}})
    priority = find(objects, "PriorityClass", PRIORITY_CLASS)
    assert priority["value"] == -7
    assert priority["preemptionPolicy"] == "Never" and priority["globalDefault"] is False
    assert placeholder_pod(objects)["priorityClassName"] == PRIORITY_CLASS


@pytest.mark.parametrize(
    "pod_priority, priority, user_priority",
    [
        ({}, -10, 0),  # podPriority off: user pods have no class, priority 0
        ({}, -1, 0),
        ({"enabled": True}, -10, 0),  # z2jh's default-priority class, defaultPriority 0
        ({"enabled": True, "defaultPriority": 100}, 50, 100),
        ({"enabled": True, "defaultPriority": -5}, -10, -5),
    ],
)
def test_consistent_priorities_render(pod_priority, priority, user_priority):
    objects = objects_of(
        {
            "workshop": {"prewarm": {"priority": priority}},
            "jupyterhub": {"scheduling": {"podPriority": pod_priority}},
        }
    )
    assert find(objects, "PriorityClass", PRIORITY_CLASS)["value"] == priority < user_priority
    if pod_priority.get("enabled"):  # what user pods get (KubeSpawner's priority_class_name)
        assert find(objects, "PriorityClass", "workshop-default-priority")["value"] == user_priority


@pytest.mark.parametrize(
    "pod_priority, priority, message",
    [
        (
            {},
            0,
            "workshop.prewarm.priority is 0, not below the user pods' priority (jupyterhub.scheduling.podPriority.enabled is false, so user pods have no priority class: 0)",
        ),
        (
            {},
            10,
            "workshop.prewarm.priority is 10, not below the user pods' priority (jupyterhub.scheduling.podPriority.enabled is false",
        ),
        (
            {"enabled": True, "defaultPriority": -10},
            -10,
            "workshop.prewarm.priority is -10, not below the user pods' priority (jupyterhub.scheduling.podPriority.defaultPriority, with podPriority.enabled: -10)",
        ),
        (
            {"enabled": True, "defaultPriority": -20},
            -10,
            "workshop.prewarm.priority is -10, not below the user pods' priority (jupyterhub.scheduling.podPriority.defaultPriority, with podPriority.enabled: -20)",
        ),
    ],
)
def test_a_placeholder_that_would_outrank_user_pods_is_refused(pod_priority, priority, message):
    text = refusal(
        {
            "workshop": {"prewarm": {"priority": priority}},
            "jupyterhub": {"scheduling": {"podPriority": pod_priority}},
        }
    )
    assert message in text
    assert "Set workshop.prewarm.priority below" in text


def test_the_schema_bounds_the_priority_as_kubernetes_does():
    for priority in (1000000001, -2147483649, 1.5):
        with pytest.raises(helm_python.HelmValuesError, match="/workshop/prewarm/priority"):
            render(values(PREWARM, {"workshop": {"prewarm": {"priority": priority}}}))


# --- what pre-warm needs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, messages",
    [
        (
            {"workshop": {"service": {"usersPerNode": 0}}},
            ["workshop.service.usersPerNode is 0: set how many users' guarantees fit on one node"],
        ),
        (
            {"jupyterhub": {"singleuser": {"cpu": {"guarantee": None}}}},
            ["jupyterhub.singleuser.cpu.guarantee is not set"],
        ),
        (
            {"jupyterhub": {"singleuser": {"memory": {"guarantee": None}}}},
            ["jupyterhub.singleuser.memory.guarantee is not set"],
        ),
        (
            {"jupyterhub": {"singleuser": {"memory": {"guarantee": "7Gi"}, "cpu": {"guarantee": 0}}}},
            [
                'jupyterhub.singleuser.memory.guarantee is "7Gi": give bytes or a number with K, M, G or T',
                "jupyterhub.singleuser.cpu.guarantee is 0: it must be more than 0 cores",
            ],
        ),
    ],
    ids=["no-users-per-node", "no-cpu", "no-memory", "unreadable"],
)
def test_prewarm_without_a_placeholder_size_is_refused_naming_the_values(change, messages):
    text = refusal(change)
    assert "workshop.prewarm.enabled is true, and each placeholder reserves a whole node's users" in text
    for message in messages:
        assert message in text


def test_z2jhs_default_guarantees_are_not_enough():
    # z2jh sets no CPU guarantee (and 1G of memory): pre-warm needs the operator's sizes
    with pytest.raises(helm_python.HelmRenderError) as refused:
        render(values({"workshop": PREWARM["workshop"]}))
    text = str(refused.value)
    assert "jupyterhub.singleuser.cpu.guarantee is not set" in text
    assert "jupyterhub.singleuser.memory.guarantee" not in text  # z2jh's 1G is a size


def test_prewarm_without_a_schedule_is_refused():
    text = refusal({"workshop": {"schedule": None}})
    assert "workshop.prewarm.enabled is true but workshop.schedule has no sessions" in text


# --- RBAC: the service may scale the placeholders, and nothing more -----------------------------


class RenderedRBAC:
    """The RBAC objects of a render, as the harness's authorizer reads them from an API server
    (namespaced ones in the release's namespace)."""

    KINDS = {
        "roles": "Role",
        "rolebindings": "RoleBinding",
        "clusterroles": "ClusterRole",
        "clusterrolebindings": "ClusterRoleBinding",
    }

    def __init__(self, objects: list[dict]):
        self.objects = objects

    def list(self, res, namespace=None):
        kind = self.KINDS[res.plural]
        cluster = kind.startswith("Cluster")
        return [o for o in self.objects if o["kind"] == kind and (cluster or namespace in (None, NAMESPACE))]

    def find(self, res, name, namespace):
        return next((o for o in self.list(res, namespace) if o["metadata"]["name"] == name), None)


def hub_account(objects: list[dict]) -> str:
    """The service account z2jh runs the hub pod as (and so the workshop service in it)."""
    [hub] = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["labels"].get("component") == "hub"
    ]
    return hub["spec"]["template"]["spec"].get("serviceAccountName", "default")


def permissions(objects: list[dict]) -> set[tuple]:
    """What the hub's service account may do, over a grid of requests."""
    user = service_account_user(NAMESPACE, hub_account(objects))
    rbac = RenderedRBAC(objects)
    resources = [
        ("apps", "deployments", None),
        ("apps", "deployments", "scale"),
        ("apps", "deployments", "status"),
        ("apps", "statefulsets", "scale"),
        ("apps", "replicasets", "scale"),
        ("", "pods", None),
        ("", "replicationcontrollers", "scale"),
        ("autoscaling", "horizontalpodautoscalers", None),
        ("scheduling.k8s.io", "priorityclasses", None),
        ("rbac.authorization.k8s.io", "roles", None),
    ]
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
    names = [None, NAME, "hub", "user-scheduler", "user-placeholder"]
    found = set()
    for (group, plural, sub), verb, name, namespace in itertools.product(
        resources, verbs, names, [NAMESPACE, "other"]
    ):
        if allowed(rbac, user, verb, kmock.resource(group, "v1", plural), namespace, name, sub):
            found.add((verb, group, plural, sub, name, namespace))
    return found


def test_the_role_allows_only_get_and_patch_of_the_placeholders_scale():
    objects = objects_of()
    assert find(objects, "Role", NAME)["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "resourceNames": [NAME],
            "verbs": ["get", "patch"],
        }
    ]
    binding = find(objects, "RoleBinding", NAME)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub", "namespace": NAMESPACE}]
    assert hub_account(objects) == "hub"  # the account z2jh runs the hub pod (and the service) as
    assert not [o for o in prewarm_objects(objects) if o["kind"].startswith("Cluster")]


def test_with_prewarm_the_hub_gains_exactly_the_placeholders_scale():
    before = permissions(manifests(render(values({"workshop": {"schedule": SCHEDULE}}))))
    after = permissions(objects_of())
    assert after - before == {
        ("get", "apps", "deployments", "scale", NAME, NAMESPACE),
        ("patch", "apps", "deployments", "scale", NAME, NAMESPACE),
    }
    assert before <= after


@pytest.mark.parametrize(
    "account, expected",
    [
        ({"name": "workshop-hub"}, "workshop-hub"),
        ({"create": False}, "default"),
        ({"create": False, "name": "existing-hub"}, "existing-hub"),
    ],
)
def test_the_binding_follows_z2jhs_hub_service_account(account, expected):
    objects = objects_of({"jupyterhub": {"hub": {"serviceAccount": account}}})
    assert hub_account(objects) == expected
    [subject] = find(objects, "RoleBinding", NAME)["subjects"]
    assert subject["name"] == expected


def test_the_binding_follows_z2jhs_names_with_a_fullname():
    # with z2jh's own naming (our values use names without a prefix; some override it)
    objects = objects_of({"jupyterhub": {"fullnameOverride": "ws"}})
    assert hub_account(objects) == "ws-hub"
    assert find(objects, "RoleBinding", NAME)["subjects"][0]["name"] == "ws-hub"
    assert placeholder_pod(objects)["schedulerName"] == "ws-user-scheduler"


def test_no_role_when_rbac_is_managed_by_the_operator():
    objects = objects_of({"jupyterhub": {"rbac": {"create": False}}})
    kinds = {o["kind"] for o in prewarm_objects(objects)}
    assert kinds == {"Deployment", "PriorityClass"}


# --- spawn limits for the crowd -----------------------------------------------------------------


def test_z2jh_gets_the_workshops_mark_instead_of_its_own_spawn_limit():
    """z2jh would give the hub a concurrent spawn limit of 64. The chart's values.yaml gives it
    -1, which the hub configuration replaces; null would not do: Helm does not erase z2jh's
    default with a null from our values.yaml (only with one from the operator's)."""
    from jupyterhub_workshop.hubconfig.chart import SPAWN_LIMIT_FROM_WORKSHOP

    assert (
        z2jh_values(manifests(render(values())))["hub"]["concurrentSpawnLimit"] == SPAWN_LIMIT_FROM_WORKSHOP
    )
    explicit = values({"jupyterhub": {"hub": {"concurrentSpawnLimit": 100}}})
    assert z2jh_values(manifests(render(explicit)))["hub"]["concurrentSpawnLimit"] == 100
    # the operator's null: z2jh sets none (and the hub configuration sets ours)
    erased = values({"jupyterhub": {"hub": {"concurrentSpawnLimit": None}}})
    assert "concurrentSpawnLimit" not in z2jh_values(manifests(render(erased)))["hub"]


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5
@pytest.mark.parametrize(
    "change, concurrent, active",
    [
        # 320 people in 10 minutes on warm nodes: 32 a minute x 30 s pending, twice for clumps
        ({}, 32, None),
        # cold: each spawn also waits for a node (5 minutes): all 320 may be pending at once
        ({"workshop": {"prewarm": {"enabled": False}}}, 320, None),
        # the operator's own numbers win
        ({"jupyterhub": {"hub": {"concurrentSpawnLimit": 100}}}, 100, None),
        ({"jupyterhub": {"hub": {"concurrentSpawnLimit": 0}}}, 0, None),  # 0: no limit, the operator's
        ({"jupyterhub": {"hub": {"concurrentSpawnLimit": None}}}, 32, None),
        ({"jupyterhub": {"hub": {"activeServerLimit": 500}}}, 32, 500),
        ({"jupyterhub": {"hub": {"config": {"JupyterHub": {"concurrent_spawn_limit": 50}}}}}, 50, None),
        # 30 minutes of arrivals: 10.7 a minute x 30 s, twice
        ({"workshop": {"arrival": {"minutes": 30}}}, 11, None),
        # 322 expected: 32.2 a minute x 30 s, twice
        ({"workshop": {"schedule": {"expected": 322}}}, 33, None),
    ],
    ids=[
        "ours",
        "cold",
        "explicit-100",
        "explicit-0",
        "explicit-null",
        "explicit-active",
        "hub-config",
        "slow-arrival",
        "more-people",
    ],
)
def test_the_hubs_spawn_limits(tmp_path, change, concurrent, active):
    from jupyterhub_workshop.spawn_limits import spawn_limits

    c = run_hub_configuration(manifests(render(values(change, base=CI_FILE))), tmp_path)
    # the active server limit is the operator's alone (plan prints one to set)
    assert (c.JupyterHub.concurrent_spawn_limit, c.JupyterHub.get("active_server_limit")) == (
        concurrent,
        active,
    )
    if not change:  # what `jupyterhub-workshop plan` prints for the same crowd
        plan = spawn_limits(320, 10, 30, 5, prewarmed=True, capacity=placeholders_for(320, 4) * 4)
        assert plan.concurrent_spawn_limit == concurrent


@pytest.mark.jh55
def test_without_a_number_of_people_the_limits_are_jupyterhubs(tmp_path):
    # no schedule expected, and no accounts file here to count cards in: JupyterHub's defaults,
    # not the chart's mark for z2jh (the hub has the file; tests/hubconfig counts cards)
    c = run_hub_configuration(
        manifests(render(values({"workshop": {"schedule": SCHEDULE, "service": {"usersPerNode": 4}}}))),
        tmp_path,
    )
    assert "concurrent_spawn_limit" not in c.JupyterHub and "active_server_limit" not in c.JupyterHub


# --- the hub configuration hands the service its pre-warm settings ----------------------------


@pytest.mark.jh55
def test_the_service_gets_the_schedule_and_the_deployment_to_scale(tmp_path, monkeypatch):
    from jupyterhub.services.service import Service

    from jupyterhub_workshop.service.app import WorkshopService

    # the hub pod's in-cluster address, which a managed service does not inherit
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    c = run_hub_configuration(manifests(render(ci_values(CI_FILE))), tmp_path)
    [entry] = [s for s in c.JupyterHub.services if s["name"] == "workshop"]
    assert set(entry) <= set(Service.class_traits(input=True))
    assert entry["environment"] == {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    service = WorkshopService()
    service.load_config_file(entry["command"][4])
    service.build_policy()  # the service's own checks, as at its start (night window clear)
    assert service.schedule == ci_values(CI_FILE)["workshop"]["schedule"]
    assert (service.prewarm_lead, service.prewarm_hold) == (20, 30)
    assert service.prewarm_deployment == NAME and service.prewarm_namespace == NAMESPACE
    assert service.users_per_node == 4
