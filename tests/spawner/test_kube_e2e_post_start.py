"""An operator's failing postStart hook, end to end: the real hub and KubeSpawner against the
emulated cluster, whose kubelet kills a container when its postStart hook fails. The server
still starts, with the home set up first and the failure in the setup log."""

import os
import sys

import pytest

from ..harness.hub import HubProcess, wait_for
from ..harness.kube import KubeHarness

pytestmark = [pytest.mark.e2e, pytest.mark.jh55]

README = "# Welcome to the hackweek\n"
# an operator's hook (say, a git puller without network): sees the home, then fails
THEIRS = 'ls "$HOME" > "$HOME/.workshop/seen"; echo "could not reach github.com" >&2; exit 3'

CONFIG = f"""
c.JupyterHub.authenticator_class = "null"  # servers are started through the API here
c.JupyterHub.spawner_class = "workshop"
c.KubeSpawner.namespace = "default"
c.KubeSpawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.KubeSpawner.args = {["--allow-root"] if os.geteuid() == 0 else []!r}
c.KubeSpawner.start_timeout = 60
c.KubeSpawner.http_timeout = 60
c.KubeSpawner.pvc_name_template = "claim-{{username}}"
# as z2jh sets singleuser.lifecycleHooks
c.KubeSpawner.lifecycle_hooks = {{"postStart": {{"exec": {{"command": ["sh", "-c", {THEIRS!r}]}}}}}}
c.WorkshopKubeSpawner.home_storage = {{"mode": "dynamic", "storage_class": "fast", "capacity": "1Gi"}}
c.WorkshopKubeSpawner.readme_config_map = "workshop-readme"
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with KubeHarness(tmp_path_factory.mktemp("kube"), pvc_bind_delay=0.2) as kube:
        kube.create("configmaps", {"metadata": {"name": "workshop-readme"}, "data": {"README.md": README}})
        yield kube


@pytest.fixture(scope="module")
def hub(cluster, tmp_path_factory):
    hub = HubProcess(tmp_path_factory.mktemp("hub"), CONFIG, env=cluster.env)
    hub.start()
    yield hub
    hub.stop()


def test_a_failing_operator_hook_runs_after_the_home_setup_and_the_server_starts(cluster, hub):
    name = "ws001"
    hub.api(f"/users/{name}", method="POST", data=b"{}")
    hub.api(f"/users/{name}/server", method="POST", data=b"{}")
    try:
        wait_for(
            lambda: (hub.api(f"/users/{name}")["servers"].get("") or {}).get("ready"),
            60,
            message=f"{name}'s server to be ready",
        )
        assert cluster.post_start(f"jupyter-{name}")["exit_code"] == 0  # a failing hook kills the container
        home = cluster.pvc_path(f"claim-{name}")
        assert (home / "README.md").read_text() == README
        assert (home / ".workshop" / "seen").read_text().split() == ["README.md"]  # theirs ran after ours
        assert "could not reach github.com" in (home / ".workshop" / "post-start.log").read_text()
        assert "the postStart command sh exited 3; the server starts anyway" in (
            (home / ".workshop" / "setup.log").read_text()
        )
    finally:
        hub.api(f"/users/{name}/server", method="DELETE")
        wait_for(lambda: cluster.get("pods", f"jupyter-{name}") is None, 30, message="the pod to go")
