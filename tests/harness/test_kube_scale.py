"""The emulated API server's ``scale`` subresource (tests/harness/kube/apiserver.py), through the
real kubernetes_asyncio client and raw HTTP: an ``autoscaling/v1`` Scale whose ``spec.replicas``
is the object's, and that changes nothing else."""

from __future__ import annotations

import asyncio
import copy
import json

import aiohttp
import pytest

from tests.harness.kube import KubeHarness

pytestmark = pytest.mark.e2e

DEPLOYMENTS = "apps/v1/deployments"
PLACEHOLDERS = {
    "metadata": {"name": "workshop-prewarm", "labels": {"app": "workshop", "component": "prewarm"}},
    "spec": {
        "replicas": 0,
        "selector": {"matchLabels": {"component": "prewarm", "app": "workshop"}},
        "template": {
            "metadata": {"labels": {"app": "workshop", "component": "prewarm"}},
            "spec": {
                "priorityClassName": "workshop-prewarm",
                "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}],
            },
        },
    },
}


@pytest.fixture
def api_only(tmp_path):
    with KubeHarness(tmp_path / "kube", namespace="hackweek", kubelet=False) as kube:
        yield kube


async def test_scale_reads_and_sets_only_the_replicas(api_only):
    from kubernetes_asyncio import client, watch

    kube = api_only
    created = kube.create(DEPLOYMENTS, copy.deepcopy(PLACEHOLDERS))
    async with kube.api_client() as api:
        apps = client.AppsV1Api(api)
        raw = json.loads(
            await (
                await apps.read_namespaced_deployment_scale(
                    "workshop-prewarm", "hackweek", _preload_content=False
                )
            ).read()
        )
        assert (raw["kind"], raw["apiVersion"]) == ("Scale", "autoscaling/v1")
        assert raw["metadata"]["name"] == "workshop-prewarm" and raw["metadata"]["namespace"] == "hackweek"
        assert raw["metadata"]["uid"] == created["metadata"]["uid"]
        assert raw["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert raw["spec"] == {"replicas": 0}
        assert raw["status"] == {"replicas": 0, "selector": "app=workshop,component=prewarm"}

        # a watch on Deployments hears the change as it hears any other update
        events = []
        w = watch.Watch()

        async def follow():
            async with w.stream(
                apps.list_namespaced_deployment,
                namespace="hackweek",
                resource_version=created["metadata"]["resourceVersion"],
                timeout_seconds=10,
            ) as stream:
                async for event in stream:
                    events.append((event["type"], event["raw_object"]["spec"]["replicas"]))
                    return

        watching = asyncio.ensure_future(follow())
        scaled = await apps.patch_namespaced_deployment_scale(
            "workshop-prewarm", "hackweek", {"spec": {"replicas": 3}}
        )
        await asyncio.wait_for(watching, 10)
        assert events == [("MODIFIED", 3)]
        assert scaled.spec.replicas == 3 and scaled.kind == "Scale"
        after = kube.get(DEPLOYMENTS, "workshop-prewarm")
        assert after["spec"]["replicas"] == 3
        assert int(after["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
        assert scaled.metadata.resource_version == after["metadata"]["resourceVersion"]
        assert after["metadata"]["generation"] == 2
        # everything but the count is as it was
        assert {**after, "spec": {**after["spec"], "replicas": 0}, "metadata": created["metadata"]} == created

        # the same count again is no update: the resourceVersion stays
        again = await apps.patch_namespaced_deployment_scale(
            "workshop-prewarm", "hackweek", {"spec": {"replicas": 3}}
        )
        assert again.metadata.resource_version == after["metadata"]["resourceVersion"]

        # PUT replaces the Scale, refusing a stale resourceVersion
        stale = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": "workshop-prewarm",
                "resourceVersion": created["metadata"]["resourceVersion"],
            },
            "spec": {"replicas": 5},
        }
        with pytest.raises(client.ApiException) as conflict:
            await apps.replace_namespaced_deployment_scale("workshop-prewarm", "hackweek", stale)
        assert conflict.value.status == 409
        current = {
            **stale,
            "metadata": {**stale["metadata"], "resourceVersion": after["metadata"]["resourceVersion"]},
        }
        replaced = await apps.replace_namespaced_deployment_scale("workshop-prewarm", "hackweek", current)
        assert (
            replaced.spec.replicas == 5 and kube.get(DEPLOYMENTS, "workshop-prewarm")["spec"]["replicas"] == 5
        )

        with pytest.raises(client.ApiException) as negative:
            await apps.patch_namespaced_deployment_scale(
                "workshop-prewarm", "hackweek", {"spec": {"replicas": -1}}
            )
        assert negative.value.status == 422 and "spec.replicas" in json.loads(negative.value.body)["message"]
        with pytest.raises(client.ApiException) as missing:
            await apps.read_namespaced_deployment_scale("nothing-here", "hackweek")
        assert missing.value.status == 404

    async with aiohttp.ClientSession() as http:
        url = f"{kube.url}/apis/apps/v1/namespaces/hackweek/deployments/workshop-prewarm/scale"
        ops = [{"op": "replace", "path": "/spec/replicas", "value": 2}]
        headers = {"Content-Type": "application/json-patch+json"}
        async with http.patch(url, data=json.dumps(ops), headers=headers) as resp:
            assert resp.status == 200 and (await resp.json())["spec"]["replicas"] == 2
        # pods have no scale subresource
        kube.create("pods", {"metadata": {"name": "p"}, "spec": {"containers": []}})
        async with http.get(f"{kube.url}/api/v1/namespaces/hackweek/pods/p/scale") as resp:
            assert resp.status == 404
    assert kube.get(DEPLOYMENTS, "workshop-prewarm")["spec"]["replicas"] == 2
