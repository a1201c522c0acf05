"""The emulated API server over TLS, with bearer tokens and RBAC (tests/harness/kube/pki.py,
auth.py), through the real kubernetes_asyncio client configured the in-cluster way."""

from __future__ import annotations

import json
import ssl

import aiohttp
import pytest

from tests.harness.kube import KubeHarness
from tests.harness.kube.testing import pod_manifest

pytestmark = pytest.mark.e2e

ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "hub"},
    "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["allowed"]},
    ],
}
BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "hub"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hub"},
    "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": "ns1"}],
}


@pytest.fixture
def secured(tmp_path):
    with KubeHarness(tmp_path / "kube", namespace="ns1", kubelet=False, tls=True, authorize=True) as kube:
        yield kube


def in_cluster_configuration(kube, token: str):
    """What kubernetes_asyncio's load_incluster_config() builds from a pod's files."""
    from kubernetes_asyncio import client

    configuration = client.Configuration()
    configuration.host = kube.url
    configuration.ssl_ca_cert = str(kube.ca_file)
    configuration.api_key["BearerToken"] = f"Bearer {token}"
    return configuration


async def test_tls_certificate_verifies_against_the_harness_ca_only(secured):
    kube = secured
    assert kube.url.startswith("https://127.0.0.1:")
    trusting = ssl.create_default_context(cafile=str(kube.ca_file))
    headers = {"Authorization": f"Bearer {kube.admin_token}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{kube.url}/api/v1/namespaces/ns1/pods", ssl=trusting, headers=headers) as r:
            assert r.status == 200 and (await r.json())["kind"] == "PodList"
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{kube.url}/version", ssl=ssl.create_default_context())


async def test_tokens_and_rbac_decide_like_kube_apiserver(secured):
    from kubernetes_asyncio import client

    kube = secured
    kube.create("rbac.authorization.k8s.io/v1/roles", ROLE)
    kube.create("rbac.authorization.k8s.io/v1/rolebindings", BINDING)
    kube.create("configmaps", {"metadata": {"name": "allowed"}, "data": {}})
    kube.create("configmaps", {"metadata": {"name": "other"}, "data": {}})
    token = kube.service_account_token("hub")

    async with client.ApiClient(in_cluster_configuration(kube, token)) as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod("ns1", pod_manifest("a"))
        assert [p.metadata.name for p in (await v1.list_namespaced_pod("ns1")).items] == ["a"]
        assert (await v1.read_namespaced_config_map("allowed", "ns1")).metadata.name == "allowed"

        with pytest.raises(client.ApiException) as patch:
            await v1.patch_namespaced_pod("a", "ns1", {"metadata": {"labels": {"x": "y"}}})
        assert patch.value.status == 403
        assert json.loads(patch.value.body)["message"] == (
            'pods "a" is forbidden: User "system:serviceaccount:ns1:hub" cannot patch resource '
            '"pods" in API group "" in the namespace "ns1"'
        )
        with pytest.raises(client.ApiException) as named:
            await v1.read_namespaced_config_map("other", "ns1")
        assert named.value.status == 403
        with pytest.raises(client.ApiException) as elsewhere:
            await v1.list_namespaced_pod("default")
        assert elsewhere.value.status == 403

    async with client.ApiClient(in_cluster_configuration(kube, "not-a-token")) as api:
        with pytest.raises(client.ApiException) as unknown:
            await client.CoreV1Api(api).list_namespaced_pod("ns1")
        assert unknown.value.status == 401

    # the harness's own kubeconfig is an admin (system:masters): RBAC does not apply
    async with kube.api_client() as api:
        assert await client.CoreV1Api(api).patch_namespaced_pod(
            "a", "ns1", {"metadata": {"labels": {"x": "y"}}}
        )

    refused = kube.refused()
    assert [(r["code"], r["method"], r["user"]) for r in refused] == [
        (403, "PATCH", "system:serviceaccount:ns1:hub"),
        (403, "GET", "system:serviceaccount:ns1:hub"),
        (403, "GET", "system:serviceaccount:ns1:hub"),
        (401, "GET", None),
    ]
    assert kube.requests_by_user()["system:serviceaccount:ns1:hub"] == 6


async def test_cluster_role_binding_grants_every_namespace(secured):
    from kubernetes_asyncio import client

    kube = secured
    kube.create(
        "rbac.authorization.k8s.io/v1/clusterroles",
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["list"]}],
        },
    )
    kube.create(
        "rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ns1"}],
        },
    )
    assert (
        kube.get("rbac.authorization.k8s.io/v1/clusterroles", "reader")["metadata"].get("namespace") is None
    )
    async with client.ApiClient(in_cluster_configuration(kube, kube.service_account_token("x"))) as api:
        v1 = client.CoreV1Api(api)
        assert (await v1.list_namespaced_pod("default")).items == []
        with pytest.raises(client.ApiException) as get:
            await v1.read_namespaced_pod("a", "default")
        assert get.value.status == 403
