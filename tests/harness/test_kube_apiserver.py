"""The emulated API server (tests/harness/kube/apiserver.py), through the real
kubernetes_asyncio client and raw HTTP."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.harness.kube import KubeHarness
from tests.harness.kube.testing import pod_manifest

pytestmark = pytest.mark.e2e


@pytest.fixture
def api_only(tmp_path):
    with KubeHarness(tmp_path / "kube", kubelet=False) as kube:
        yield kube


async def test_api_server_semantics(api_only):
    from kubernetes_asyncio import client, watch

    kube = api_only
    async with kube.api_client() as api:
        v1 = client.CoreV1Api(api)
        created = await v1.create_namespaced_pod(
            "default", pod_manifest("a", labels={"component": "singleuser-server", "tier": "x"})
        )
        await v1.create_namespaced_pod("default", pod_manifest("b", labels={"component": "other"}))
        await v1.create_namespaced_pod("default", pod_manifest("c"))

        meta = created.metadata
        assert meta.namespace == "default" and meta.uid and meta.creation_timestamp and meta.resource_version
        assert created.status.phase == "Pending"

        raw = json.loads(await (await v1.list_namespaced_pod("default", _preload_content=False)).read())
        assert raw["kind"] == "PodList" and raw["apiVersion"] == "v1"
        assert int(raw["metadata"]["resourceVersion"]) >= int(meta.resource_version)

        async def names(**kw):
            return sorted(p.metadata.name for p in (await v1.list_namespaced_pod("default", **kw)).items)

        assert await names() == ["a", "b", "c"]
        assert await names(label_selector="component=singleuser-server") == ["a"]
        assert await names(label_selector="component=singleuser-server,tier=x") == ["a"]
        assert await names(label_selector="component=singleuser-server,tier=y") == []
        assert await names(label_selector="component") == ["a", "b"]
        assert await names(label_selector="!component") == ["c"]
        assert await names(label_selector="component!=other") == ["a", "c"]
        assert await names(label_selector="component in (other, nope)") == ["b"]
        assert await names(field_selector="metadata.name=b") == ["b"]

        with pytest.raises(client.ApiException) as conflict:
            await v1.create_namespaced_pod("default", pod_manifest("a"))
        assert conflict.value.status == 409
        with pytest.raises(client.ApiException) as missing:
            await v1.read_namespaced_pod("zzz", "default")
        assert missing.value.status == 404 and json.loads(missing.value.body)["reason"] == "NotFound"

        # status patch bumps the resourceVersion and keeps identity
        patched = await v1.patch_namespaced_pod_status("a", "default", {"status": {"phase": "Running"}})
        assert patched.status.phase == "Running" and patched.metadata.uid == meta.uid
        assert int(patched.metadata.resource_version) > int(meta.resource_version)

        # a watch resumed at a list's resourceVersion sees only later changes (selector applied)
        listed = json.loads(
            await (
                await v1.list_namespaced_pod("default", label_selector="component", _preload_content=False)
            ).read()
        )
        seen = []
        w = watch.Watch()

        async def consume():
            async with w.stream(
                v1.list_namespaced_pod,
                namespace="default",
                label_selector="component",
                resource_version=listed["metadata"]["resourceVersion"],
                timeout_seconds=5,
            ) as stream:
                async for event in stream:
                    seen.append((event["type"], event["raw_object"]["metadata"]["name"]))
                    if event["type"] == "DELETED":
                        return

        # no need to wait for the watch to connect: it resumes at the list's resourceVersion
        consumer = asyncio.ensure_future(consume())
        await v1.patch_namespaced_pod(
            "c", "default", {"metadata": {"annotations": {"x": "1"}}}
        )  # not selected
        await v1.patch_namespaced_pod("b", "default", {"metadata": {"annotations": {"x": "1"}}})
        await v1.delete_namespaced_pod("b", "default")
        await asyncio.wait_for(consumer, 10)
        assert seen == [("MODIFIED", "b"), ("DELETED", "b")]

        # PVCs and (empty) events are served too
        pvc = await v1.create_namespaced_persistent_volume_claim(
            "default",
            {
                "metadata": {"name": "claim-x"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            },
        )
        assert pvc.status.phase == "Pending"  # no kubelet, nobody binds it
        assert (
            await v1.list_namespaced_event("default", field_selector="involvedObject.kind=Pod")
        ).items == []

    # kubernetes_asyncio spells it watch=True; a raw watch replays existing objects, then streams
    async with aiohttp.ClientSession() as http:
        url = f"{kube.url}/api/v1/namespaces/default/pods?watch=True&labelSelector=component%3Dsingleuser-server"
        async with http.get(url) as resp:
            assert resp.status == 200
            first = json.loads(await asyncio.wait_for(resp.content.readline(), 5))
            assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "a"
            kube.patch("pods", "a", {"metadata": {"labels": {"extra": "1"}}})
            second = json.loads(await asyncio.wait_for(resp.content.readline(), 5))
            assert second["type"] == "MODIFIED" and second["object"]["metadata"]["labels"]["extra"] == "1"


async def test_json_patch_over_http(api_only):
    kube = api_only
    kube.create("pods", pod_manifest("a"))
    url = f"{kube.url}/api/v1/namespaces/default/pods/a"
    headers = {"Content-Type": "application/json-patch+json"}
    async with aiohttp.ClientSession() as http:
        ops = [{"op": "add", "path": "/metadata/labels/x", "value": "1"}]
        async with http.patch(url, data=json.dumps(ops), headers=headers) as resp:
            assert resp.status == 200
            patched = await resp.json()
        assert patched["metadata"]["labels"] == {"x": "1"}

        ops = [
            {"op": "test", "path": "/metadata/labels/x", "value": "2"},
            {"op": "add", "path": "/metadata/labels/y", "value": "1"},
        ]
        async with http.patch(url, data=json.dumps(ops), headers=headers) as resp:
            assert resp.status == 422
            assert (await resp.json())["reason"] == "Invalid"

        async with http.patch(url, data=json.dumps({"op": "add"}), headers=headers) as resp:
            assert resp.status == 400  # a JSON patch is a list of operations

    unchanged = kube.get("pods", "a")
    assert unchanged["metadata"]["labels"] == {"x": "1"}
    assert unchanged["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
