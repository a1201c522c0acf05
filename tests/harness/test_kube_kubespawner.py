"""The real KubeSpawner spawning through the emulated Kubernetes from a real hub process."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.request

import pytest

from tests.harness.hub import HubProcess, http_status, wait_for
from tests.harness.kube import KubeHarness
from tests.harness.kube.testing import process_gone

pytestmark = pytest.mark.e2e

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
    wait_for(
        lambda: not hub.api(f"/users/{name}")["servers"],
        timeout,
        interval=0.1,
        message=f"{name}'s server to stop",
    )


def user_token(hub: HubProcess, name: str) -> str:
    body = json.dumps(
        {"note": "kube harness test", "expires_in": 600, "scopes": [f"access:servers!user={name}"]}
    ).encode()
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
        assert wait_for(
            lambda: proxied_status(hub, "alice", token) == 200,
            20,
            message="a proxied request to alice's server",
        )
        with urllib.request.urlopen(
            urllib.request.Request(f"{hub.url}/user/alice/api", headers={"Authorization": f"token {token}"}),
            timeout=10,
        ) as r:
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
