"""The emulated Kubernetes (tests/harness/kube.py): its API semantics, its kubelet, and the real
KubeSpawner spawning through it from a real hub process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import urllib.request

import aiohttp
import pytest

from tests.harness.hub import HubProcess, http_status, wait_for
from tests.harness.kube import KubeHarness

pytestmark = pytest.mark.e2e


def pod_manifest(name, *, labels=None, volumes=None, mounts=None, env=None, post_start=None):
    container = {
        "name": "notebook",
        "image": "example/notebook",
        "ports": [{"name": "notebook-port", "containerPort": 8888}],
        "env": env or [],
        "volumeMounts": mounts or [],
    }
    if post_start:
        container["lifecycle"] = {"postStart": {"exec": {"command": post_start}}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [container], "volumes": volumes or [], "restartPolicy": "OnFailure"},
    }


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --------------------------------------------------------------------------------------------
# API server semantics, through the real kubernetes_asyncio client and raw HTTP


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
            "default", pod_manifest("a", labels={"component": "singleuser-server", "tier": "x"}))
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
        listed = json.loads(await (await v1.list_namespaced_pod(
            "default", label_selector="component", _preload_content=False)).read())
        seen = []
        w = watch.Watch()

        async def consume():
            async with w.stream(v1.list_namespaced_pod, namespace="default", label_selector="component",
                                resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=5) as stream:
                async for event in stream:
                    seen.append((event["type"], event["raw_object"]["metadata"]["name"]))
                    if event["type"] == "DELETED":
                        return

        # no need to wait for the watch to connect: it resumes at the list's resourceVersion
        consumer = asyncio.ensure_future(consume())
        await v1.patch_namespaced_pod("c", "default", {"metadata": {"annotations": {"x": "1"}}})  # not selected
        await v1.patch_namespaced_pod("b", "default", {"metadata": {"annotations": {"x": "1"}}})
        await v1.delete_namespaced_pod("b", "default")
        await asyncio.wait_for(consumer, 10)
        assert seen == [("MODIFIED", "b"), ("DELETED", "b")]

        # PVCs and (empty) events are served too
        pvc = await v1.create_namespaced_persistent_volume_claim("default", {
            "metadata": {"name": "claim-x"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        assert pvc.status.phase == "Pending"  # no kubelet, nobody binds it
        assert (await v1.list_namespaced_event("default", field_selector="involvedObject.kind=Pod")).items == []

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


# --------------------------------------------------------------------------------------------
# the kubelet, with the mocksu stand-in


@pytest.fixture
def kube(tmp_path):
    with KubeHarness(tmp_path / "kube", mocksu=True, pvc_bind_delay=None) as kube:
        yield kube


def test_kubelet_pvc_gating_mounts_and_failed_post_start(kube):
    kube.create("persistentvolumeclaims", {
        "metadata": {"name": "claim-ana"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    kube.create("pods", pod_manifest(
        "jupyter-ana",
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "claim-ana"}},
                 {"name": "scratch", "emptyDir": {}}],
        mounts=[{"name": "home", "mountPath": "/home/jovyan"},
                {"name": "scratch", "mountPath": "/tmp/scratch"}],
        env=[{"name": "GREETING", "value": "hi"}, {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {}}}],
        post_start=["sh", "-c", 'echo "$GREETING" > "$HOME/hook-ran"']))

    # the PVC never binds by itself (pvc_bind_delay=None): the pod stays Pending, no process
    wait_for(lambda: any(e["reason"] == "FailedScheduling" for e in kube.events("jupyter-ana")),
             10, message="FailedScheduling")
    record = kube.pod("jupyter-ana")
    assert record["state"] == "waiting-for-volumes" and record["pid"] is None
    assert kube.get("pods", "jupyter-ana")["status"]["phase"] == "Pending"

    kube.bind_pvc("claim-ana")
    pod = kube.wait_pod_phase("jupyter-ana", "Running", timeout=20)
    ip = pod["status"]["podIP"]
    assert ip.startswith("127.0.") and not ip.startswith("127.0.0.")
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    assert kube.get("persistentvolumeclaims", "claim-ana")["status"]["phase"] == "Bound"

    paths = kube.pod_paths("jupyter-ana")
    home = kube.pvc_path("claim-ana")
    assert paths["/home/jovyan"] == home
    assert paths["/tmp/scratch"] == kube.root / "volumes" / "emptydir-jupyter-ana-scratch"
    record = kube.pod("jupyter-ana")
    assert record["env"]["HOME"] == str(home) and record["cwd"] == home
    assert record["env"]["JUPYTERHUB_SERVICE_URL"] == f"http://{ip}:8888"
    assert record["ignored_env"] == ["FROM_SECRET"]
    assert json.loads(record["env"]["KUBE_HARNESS_MOUNTS"])["/home/jovyan"] == str(home)
    assert kube.post_start("jupyter-ana")["exit_code"] == 0
    assert (home / "hook-ran").read_text() == "hi\n"
    annotation = json.loads(pod["metadata"]["annotations"]["kube-harness/post-start"])
    assert annotation["exitCode"] == 0
    # the stand-in really listens on the pod address
    wait_for(lambda: http_status(f"http://{ip}:8888/anything") == 200, 20, message="mocksu to answer")

    # a failing postStart kills the container, visibly
    kube.create("pods", pod_manifest("jupyter-bad", post_start=["sh", "-c", "echo broken; exit 3"]))
    bad = kube.wait_pod_phase("jupyter-bad", "Failed", timeout=20)
    terminated = bad["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "PostStartHookError" and bad["status"]["containerStatuses"][0]["ready"] is False
    result = kube.post_start("jupyter-bad")
    assert result["exit_code"] == 3 and "broken" in result["output"]
    assert not kube.pod_alive("jupyter-bad") and process_gone(kube.pod_pid("jupyter-bad"))
    assert any(e["reason"] == "FailedPostStartHook" for e in kube.events("jupyter-bad"))

    # deletion kills the process group and frees the address; the PVC and its data stay
    pid = kube.pod_pid("jupyter-ana")
    kube.delete("pods", "jupyter-ana", grace_period_seconds=1)
    wait_for(lambda: kube.get("pods", "jupyter-ana") is None, 15, message="pod removal")
    assert process_gone(pid) and kube.pod("jupyter-ana")["state"] == "terminated"
    assert ip not in kube.call(lambda: kube.kubelet.ips.in_use)
    assert kube.get("persistentvolumeclaims", "claim-ana") is not None
    assert (home / "hook-ran").exists()


# --------------------------------------------------------------------------------------------
# the real KubeSpawner in a real hub process

# The default profile is plain KubeSpawner running the real single-user server without storage.
# The "home" profile adds a home PVC (KubeSpawner creates it) and a postStart hook; its pods run
# the mocksu stand-in (per-pod annotation) because importing jupyter_server costs ~4 s here.
HUB_CONFIG = f"""
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "not-used-here"
c.Authenticator.allow_all = True
c.KubeSpawner.namespace = "default"
c.KubeSpawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.KubeSpawner.args = ["--allow-root"]
c.KubeSpawner.start_timeout = 60
c.KubeSpawner.http_timeout = 60
c.KubeSpawner.storage_pvc_ensure = False
c.KubeSpawner.pvc_name_template = "claim-{{username}}"
c.KubeSpawner.profile_list = [
    {{"display_name": "plain", "slug": "plain", "default": True}},
    {{"display_name": "with home", "slug": "home", "kubespawner_override": {{
        "storage_pvc_ensure": True,
        "storage_capacity": "1Gi",
        "volumes": [{{"name": "home", "persistentVolumeClaim": {{"claimName": "claim-{{username}}"}}}}],
        "volume_mounts": [{{"name": "home", "mountPath": "/home/jovyan"}}],
        "lifecycle_hooks": {{"postStart": {{"exec": {{"command": ["sh", "-c", 'echo hi > "$HOME/hook-ran"']}}}}}},
        "extra_annotations": {{"kube-harness/mocksu": "true"}},
    }}}},
]
"""


@contextlib.contextmanager
def hub_log_on_failure(hub: HubProcess):
    try:
        yield
    except BaseException:
        print(hub.log_text()[-8000:])
        raise


def spawn_and_wait(hub: HubProcess, name: str, profile: str = "plain", timeout: float = 45.0) -> dict:
    hub.api(f"/users/{name}", method="POST", data=b"{}")
    hub.api(f"/users/{name}/server", method="POST", data=json.dumps({"profile": profile}).encode())

    def ready():
        server = hub.api(f"/users/{name}")["servers"].get("")
        return server if server and server.get("ready") else None

    return wait_for(ready, timeout, interval=0.1, message=f"{name}'s server to be ready")


def stop_and_wait(hub: HubProcess, name: str, timeout: float = 30.0) -> None:
    hub.api(f"/users/{name}/server", method="DELETE")
    wait_for(lambda: not hub.api(f"/users/{name}")["servers"], timeout, interval=0.1,
             message=f"{name}'s server to stop")


def user_token(hub: HubProcess, name: str) -> str:
    body = json.dumps({"note": "kube harness test", "expires_in": 600,
                       "scopes": [f"access:servers!user={name}"]}).encode()
    return hub.api(f"/users/{name}/tokens", method="POST", data=body)["token"]


def proxied_status(hub: HubProcess, name: str, token: str) -> int | None:
    return http_status(f"{hub.url}/user/{name}/api", {"Authorization": f"token {token}"})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with KubeHarness(tmp_path_factory.mktemp("kube"), pvc_bind_delay=1.0) as kube:
        yield kube


@pytest.fixture(scope="module")
def hub(cluster, tmp_path_factory):
    hub = HubProcess(tmp_path_factory.mktemp("hub"), HUB_CONFIG, env=cluster.env)
    try:
        yield hub.start()
    except BaseException:
        print(hub.log_text()[-8000:])
        raise
    finally:
        hub.stop()


def test_kubespawner_spawns_through_the_emulator(cluster, hub):
    with hub_log_on_failure(hub):
        t0 = time.monotonic()
        spawn_and_wait(hub, "alice")
        spawn_seconds = time.monotonic() - t0
        pod = cluster.get("pods", "jupyter-alice")
        assert pod["status"]["phase"] == "Running"
        assert pod["metadata"]["labels"]["component"] == "singleuser-server"
        assert cluster.get("persistentvolumeclaims", "claim-alice") is None  # storage_pvc_ensure = False
        record = cluster.pod("jupyter-alice")
        assert record["argv"][1:] == ["-m", "jupyterhub.singleuser", "--allow-root"]

        token = user_token(hub, "alice")
        assert wait_for(lambda: proxied_status(hub, "alice", token) == 200, 20,
                        message="a proxied request to alice's server")
        with urllib.request.urlopen(urllib.request.Request(
                f"{hub.url}/user/alice/api", headers={"Authorization": f"token {token}"}), timeout=10) as r:
            assert "version" in json.loads(r.read())  # jupyter_server's answer, through the proxy

        pid = record["pid"]
        assert not process_gone(pid)
        stop_and_wait(hub, "alice")
        wait_for(lambda: cluster.get("pods", "jupyter-alice") is None, 15, message="pod deletion")
        wait_for(lambda: process_gone(pid), 10, message="the server process to die")
        assert cluster.pod("jupyter-alice")["state"] == "terminated"
        print(f"\nreal single-user server spawned through the emulator in {spawn_seconds:.1f}s")


def test_kubespawner_pvc_waits_for_binding_and_outlives_the_server(cluster, hub):
    with hub_log_on_failure(hub):
        t0 = time.monotonic()
        spawn_and_wait(hub, "bob", profile="home")
        spawn_seconds = time.monotonic() - t0
        pvc = cluster.get("persistentvolumeclaims", "claim-bob")
        assert pvc["status"]["phase"] == "Bound"
        assert pvc["metadata"]["labels"]["component"] == "singleuser-storage"
        # the pod waited for the claim (pvc_bind_delay=1.0) before its process started
        assert any(e["reason"] == "FailedScheduling" for e in cluster.events("jupyter-bob"))
        assert spawn_seconds >= 1.0
        assert cluster.pod_paths("jupyter-bob")["/home/jovyan"] == cluster.pvc_path("claim-bob")

        token = user_token(hub, "bob")
        assert wait_for(lambda: proxied_status(hub, "bob", token) == 200, 20, message="a proxied request")

        pid = cluster.pod_pid("jupyter-bob")
        stop_and_wait(hub, "bob")
        wait_for(lambda: cluster.get("pods", "jupyter-bob") is None, 15, message="pod deletion")
        wait_for(lambda: process_gone(pid), 10, message="the server process to die")
        # KubeSpawner does not delete PVCs on stop
        assert cluster.get("persistentvolumeclaims", "claim-bob")["status"]["phase"] == "Bound"
        print(f"\nspawn with a PVC bound after 1 s (mocksu): {spawn_seconds:.1f}s")


def test_kubespawner_post_start_hook_runs_in_the_pod_home(cluster, hub):
    with hub_log_on_failure(hub):
        spawn_and_wait(hub, "carol", profile="home")
        result = cluster.post_start("jupyter-carol")
        assert result["exit_code"] == 0 and not result["timed_out"]
        assert result["command"] == ["sh", "-c", 'echo hi > "$HOME/hook-ran"']
        home = cluster.pod_home("jupyter-carol")
        assert home == cluster.pvc_path("claim-carol")
        assert cluster.translate("jupyter-carol", "/home/jovyan/hook-ran") == home / "hook-ran"
        assert (home / "hook-ran").read_text() == "hi\n"
        stop_and_wait(hub, "carol")
