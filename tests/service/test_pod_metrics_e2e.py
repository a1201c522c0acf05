"""Each server's memory and CPU on Kubernetes: the emulated API server serves metrics.k8s.io pod
metrics of the kubelet's processes, and the service reads them with the real kubernetes_asyncio
client, configured the in-cluster way (HTTPS, the hub's service account token) — refused
without the chart's Role, read with it, and "metrics-server not available" without the API."""

from __future__ import annotations

import sys

import psutil
import pytest

from jupyterhub_workshop.service.resource_sources import PodMetrics
from jupyterhub_workshop.service.resources import near_limit
from tests.chart.helpers import NAMESPACE, ci_values, deep_merge, find, manifests, render
from tests.harness.hub import wait_for
from tests.harness.kube import KubeHarness
from tests.harness.kube.testing import pod_manifest

pytestmark = pytest.mark.e2e

ROLE = "workshop-pod-metrics"
HOG = "import sys, time; b = b'x' * (80 << 20); print('ready', flush=True); time.sleep(600)"


def server_pod(name: str, user: str, memory_limit: str) -> dict:
    """A pod as KubeSpawner makes it: its labels, its user's annotation, its limits."""
    pod = pod_manifest(name, labels={"component": "singleuser-server", "hub.jupyter.org/username": user})
    pod["metadata"]["annotations"] = {"hub.jupyter.org/username": user}
    [container] = pod["spec"]["containers"]
    container.update(command=[sys.executable, "-c", HOG], resources={"limits": {"memory": memory_limit}})
    return pod


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


async def test_pod_metrics_with_the_charts_role_and_refused_without_it(tmp_path):
    chart = manifests(render(ci_values("minimal-values.yaml")))
    role, binding = find(chart, "Role", ROLE), find(chart, "RoleBinding", ROLE)
    assert role["rules"] == [
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]}
    ]
    [subject] = binding["subjects"]
    with KubeHarness(
        tmp_path / "kube", namespace=NAMESPACE, tls=True, authorize=True, metrics_server=True
    ) as kube:
        # the hub's own Role lets it read pods (z2jh's); the pod metrics only the chart's Role
        kube.create(
            "rbac.authorization.k8s.io/v1/roles",
            {
                "metadata": {"name": "hub"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            },
        )
        kube.create(
            "rbac.authorization.k8s.io/v1/rolebindings",
            {**binding, "metadata": {"name": "hub"}, "roleRef": {**binding["roleRef"], "name": "hub"}},
        )
        kube.create("pods", server_pod("jupyter-ana", "ana", "70Mi"))
        kube.create("pods", {**pod_manifest("not-a-server")})
        wait_for(lambda: "ready" in kube.pod_log("jupyter-ana"), 30, message="the server's memory in use")
        token = tmp_path / "serviceaccount" / "token"
        token.parent.mkdir()
        token.write_text(kube.service_account_token(subject["name"]))
        source = PodMetrics(
            NAMESPACE,
            environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(kube.port)},
            token_file=str(token),
            ca_file=str(kube.ca_file),
        )
        try:
            refused = await source.usage()
            assert refused.usage == {} and refused.error.startswith("Reading pod metrics was refused (403)")
            assert [(r["code"], r["path"]) for r in kube.refused()] == [
                (403, f"/apis/metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods")
            ]

            kube.create("rbac.authorization.k8s.io/v1/roles", role)
            kube.create("rbac.authorization.k8s.io/v1/rolebindings", binding)
            found = await source.usage()
            assert not found.error and set(found.usage) == {("ana", "")}
            usage = found.usage["ana", ""]
            assert usage.memory == pytest.approx(tree_rss(kube.pod_pid("jupyter-ana")), rel=0.10)
            assert usage.limit == 70 * 2**20 and near_limit(usage)  # 80 MiB and more of 70 MiB
            assert usage.cpu is not None and usage.cpu >= 0

            kube.call(setattr, kube.api, "pod_metrics", None)  # a cluster without metrics-server
            missing = await source.usage()
            assert missing.usage == {} and missing.error.startswith("metrics-server not available")
        finally:
            await source.close()
        assert len(kube.refused()) == 1


def test_no_pod_metrics_role_when_rbac_is_managed_by_the_operator():
    values = deep_merge(ci_values("minimal-values.yaml"), {"jupyterhub": {"rbac": {"create": False}}})
    assert not [o for o in manifests(render(values)) if o["metadata"]["name"] == ROLE]
