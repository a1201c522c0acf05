"""WorkshopKubeSpawner end to end: real hub + real proxy + workshop cards + the emulated cluster."""

import html
import json
import os
import re
import sys
import urllib.request

import pytest

from jupyterhub_workshop.board import load_board
from jupyterhub_workshop.login.issuing import Batch, generate
from jupyterhub_workshop.login.printing import read_cards_csv

from ..harness.browser import login, new_session
from ..harness.hub import HubProcess, poll, wait_for
from ..harness.kube import KubeHarness

pytestmark = [pytest.mark.e2e, pytest.mark.jh55]

README_V1 = "# Welcome to the hackweek (v1)\n"
README_V2 = "# Welcome to the hackweek (v2: new data paths)\n"

CONFIG = f"""
c.JupyterHub.authenticator_class = "workshop"
c.WorkshopAuthenticator.accounts_file = "ACCOUNTS_FILE"
c.JupyterHub.spawner_class = "workshop"
# answer spawn requests at once (202) so progress can be followed from the start
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.KubeSpawner.namespace = "default"
c.KubeSpawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.KubeSpawner.args = {["--allow-root"] if os.geteuid() == 0 else []!r}
c.KubeSpawner.start_timeout = 60
c.KubeSpawner.http_timeout = 60
c.KubeSpawner.pvc_name_template = "claim-{{username}}"
c.WorkshopKubeSpawner.home_storage = {{"mode": "dynamic", "storage_class": "fast", "capacity": "1Gi"}}
c.WorkshopKubeSpawner.home_claim_bind_timeout = 6
c.WorkshopKubeSpawner.readme_config_map = "workshop-readme"
c.WorkshopKubeSpawner.shared_data = {{"nfs_server": "nfs.example.org", "nfs_path": "/export/shared"}}
# a pod that ends outside the hub is noted on the board, and the user's next page says why
from jupyterhub_workshop.hubconfig.services import board_banner
c.WorkshopKubeSpawner.board_file = "BOARD_FILE"
c.JupyterHub.template_vars = {{"announcement": board_banner("BOARD_FILE", "America/Denver")}}
c.Spawner.poll_interval = 1  # the hub notices a pod that ended within a second or two
# servers outlive a hub restart, as with z2jh (whose hub sets this too)
c.JupyterHub.cleanup_servers = False
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with KubeHarness(tmp_path_factory.mktemp("kube"), pvc_bind_delay=0.5) as kube:
        kube.create("configmaps", {"metadata": {"name": "workshop-readme"}, "data": {"README.md": README_V1}})
        yield kube


@pytest.fixture(scope="module")
def workshop(cluster, tmp_path_factory):
    cards_dir = tmp_path_factory.mktemp("cards")
    generate(cards_dir, Batch("ws", 4, 1))
    cards = {c.username: c for c in read_cards_csv(cards_dir / "cards.csv")}
    board = tmp_path_factory.mktemp("board") / "workshop-board.json"
    hub = HubProcess(
        tmp_path_factory.mktemp("hub"),
        CONFIG.replace("ACCOUNTS_FILE", str(cards_dir / "accounts.yaml")).replace("BOARD_FILE", str(board)),
        env=cluster.env,
    )
    hub.board_file = board
    hub.start()
    yield hub, cards
    hub.stop()


async def spawn_from_the_home_page(session, hub, name):
    async with session.get(f"{hub.url}/hub/spawn") as r:  # what the home page's button does
        assert r.status == 200
    await open_lab(session, hub, name)


async def open_lab(session, hub, name, timeout=60):
    async def lab_open():
        async with session.get(f"{hub.url}/user/{name}/lab") as r:
            return r.status == 200 and r.url.path == f"/user/{name}/lab"

    await poll(lab_open, timeout, message=f"{name}'s JupyterLab through the proxy")


def stop_server(hub, cluster, name):
    hub.api(f"/users/{name}/server", method="DELETE")
    wait_for(lambda: not hub.api(f"/users/{name}")["servers"], 30, message=f"{name}'s server to stop")
    wait_for(lambda: cluster.get("pods", f"jupyter-{name}") is None, 30, message="the pod to go")


async def test_card_login_spawns_a_ready_home_that_keeps_user_edits(cluster, workshop):
    hub, cards = workshop
    name = "ws001"
    async with new_session() as s:
        assert (await login(s, hub.url, name, cards[name].password)).ok
        await spawn_from_the_home_page(s, hub, name)

        pod = cluster.get("pods", f"jupyter-{name}")
        mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert mounts["/srv/shared"]["readOnly"] is True and "/srv/shared-readwrite" not in mounts
        assert cluster.post_start(f"jupyter-{name}")["exit_code"] == 0
        home = cluster.pvc_path(f"claim-{name}")
        assert cluster.pod_home(f"jupyter-{name}") == home
        assert (home / "README.md").read_text() == README_V1
        assert os.readlink(home / "shared") == str(cluster.translate(f"jupyter-{name}", "/srv/shared"))
        assert "linked ~/shared" in (home / ".workshop" / "setup.log").read_text()

        stop_server(hub, cluster, name)
        claim = cluster.get("persistentvolumeclaims", f"claim-{name}")
        assert claim is not None and claim["spec"]["storageClassName"] == "fast"

        (home / "README.md").write_text(README_V1 + "\nmy notes\n")
        cluster.patch("configmaps", "workshop-readme", {"data": {"README.md": README_V2}})
        try:
            await spawn_from_the_home_page(s, hub, name)
            assert (home / "README.md").read_text() == README_V1 + "\nmy notes\n"
            assert (home / "README-updated.md").read_text() == README_V2
        finally:
            cluster.patch("configmaps", "workshop-readme", {"data": {"README.md": README_V1}})
            stop_server(hub, cluster, name)


async def test_instructors_get_the_shared_data_writable(cluster, workshop):
    hub, cards = workshop
    name = "wsinstructor01"
    async with new_session() as s:
        assert (await login(s, hub.url, name, cards[name].password)).ok
        await spawn_from_the_home_page(s, hub, name)
    try:
        pod = cluster.get("pods", f"jupyter-{name}")
        mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert mounts["/srv/shared"]["readOnly"] is True
        assert not mounts["/srv/shared-readwrite"].get("readOnly", False)
        home = cluster.pvc_path(f"claim-{name}")
        assert os.readlink(home / "shared-readwrite") == str(
            cluster.translate(f"jupyter-{name}", "/srv/shared-readwrite")
        )
    finally:
        stop_server(hub, cluster, name)


def progress_events(hub, name, timeout=60):
    request = urllib.request.Request(
        f"{hub.url}/hub/api/users/{name}/server/progress", headers={"Authorization": f"token {hub.api_token}"}
    )
    events = []
    with urllib.request.urlopen(request, timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1].get("failed") or events[-1].get("ready"):
                    break
    return events


def test_a_claim_that_never_binds_fails_the_spawn_naming_the_storage_class(cluster, workshop):
    hub, _ = workshop
    name = "ws002"
    cluster.pvc_bind_delay = None
    try:
        hub.api(f"/users/{name}", method="POST", data=b"{}")
        hub.api(f"/users/{name}/server", method="POST", data=b"{}")
        events = progress_events(hub, name)
    finally:
        cluster.pvc_bind_delay = 0.5
    messages = [e.get("message", "") for e in events]
    assert any("Waiting for your home volume claim-ws002 (storage class 'fast')" in m for m in messages), (
        messages
    )
    assert events[-1]["failed"] is True
    assert (
        "storage class 'fast'" in events[-1]["message"]
        and "not provisioned within 6 seconds" in events[-1]["message"]
    )
    wait_for(
        lambda: cluster.get("pods", f"jupyter-{name}") is None, 30, message="the failed pod to be removed"
    )
    assert cluster.get("persistentvolumeclaims", f"claim-{name}") is not None  # never deleted


async def test_a_pod_ended_by_the_cluster_is_explained_on_the_next_hub_page(cluster, workshop):
    """Out of memory, evicted, deleted (its node replaced): the hub's poll finds the pod ended,
    the spawner notes what the pod said, and the participant's next hub page says it, until
    they start their server again."""
    hub, cards = workshop
    name = "ws003"

    async def home(session) -> str:
        async with session.get(f"{hub.url}/hub/home") as r:
            page = await r.text()
        found = re.search(r'<span class="workshop-stop">(.*?)</span>', page, re.S)
        return html.unescape(found.group(1)) if found else ""

    async with new_session() as s:
        assert (await login(s, hub.url, name, cards[name].password)).ok
        for end, said in (
            ("OOMKilled", "because it ran out of memory (the notebook used more than the server's limit)"),
            ("Evicted", "by the cluster, which needed the room (the server was evicted)"),
            ("deleted", "outside the hub (its machine was replaced or the server was removed)"),
        ):
            await spawn_from_the_home_page(s, hub, name)
            assert await home(s) == ""  # running: nothing to tell, the last notice gone with the start
            if end == "deleted":
                cluster.delete("pods", f"jupyter-{name}")
            else:
                cluster.end_pod(f"jupyter-{name}", end)
            wait_for(lambda: not hub.api(f"/users/{name}")["servers"], 30, message=f"the hub to see {end}")
            sentence = await home(s)
            assert re.fullmatch(
                rf"Your server was stopped at \d\d:\d\d {re.escape(said)}\. "
                r"Your files are safe — start it again below\.",
                sentence,
            ), (end, sentence)
            assert await home(s) == sentence  # until they start it again
            wait_for(lambda: cluster.get("pods", f"jupyter-{name}") is None, 30, message="the pod to go")


async def test_a_server_restarted_in_place_is_explained_while_it_runs_and_once(cluster, workshop):
    """Out of memory, the kubelet restarts the server's container in the same pod
    (KubeSpawner's ``restartPolicy: OnFailure``): the hub still sees it running, so the spawner's
    poll notes the restart, and the participant's next hub page says what happened while the
    server keeps running. A hub restart does not announce it again. Last in the module: it
    restarts the module's hub."""
    hub, cards = workshop
    name = "ws004"
    pod_name = f"jupyter-{name}"
    said = (
        r"Your server ran out of memory at \d\d:\d\d and was restarted: the notebooks' kernels were "
        r"stopped, your files are safe\.{} Save your work and close notebooks you do not need\."
    )

    async def notice(session, kind="restart") -> str:
        async with session.get(f"{hub.url}/hub/home") as r:
            page = await r.text()
        found = re.search(rf'<span class="workshop-{kind}">(.*?)</span>', page, re.S)
        return html.unescape(found.group(1)) if found else ""

    def restarted(count):
        status = cluster.get("pods", pod_name)["status"]["containerStatuses"][0]
        return status["restartCount"] == count and status["ready"]

    def announced() -> int:
        return hub.log_text().count("restarted in place by the cluster: OOMKilled")

    async with new_session() as s:
        assert (await login(s, hub.url, name, cards[name].password)).ok
        await spawn_from_the_home_page(s, hub, name)
        try:
            assert await notice(s) == ""
            pod = cluster.get("pods", pod_name)
            where = (pod["status"]["podIP"], pod["metadata"]["uid"])

            cluster.oom_kill(pod_name)
            wait_for(lambda: restarted(1), 30, message="the kubelet to restart the server in place")
            sentence = await poll(lambda: notice(s), 30, message="the hub page to explain the restart")
            assert re.fullmatch(said.format(""), sentence), sentence
            assert await notice(s, "stop") == ""  # not a stop: the server runs
            # the server keeps running, in the same pod, and answers again
            assert hub.api(f"/users/{name}")["servers"][""]["ready"] is True
            await open_lab(s, hub, name)
            pod = cluster.get("pods", pod_name)
            assert (pod["status"]["podIP"], pod["metadata"]["uid"]) == where
            noted = load_board(hub.board_file).restarts[name]
            assert (noted.reason, noted.count, noted.pod) == ("OOMKilled", 1, where[1])
            assert announced() == 1

            # the hub restarts (a helm upgrade): its first poll of the server, as it comes up,
            # finds the same restart, which the board says it has seen: not announced again
            hub.stop()
            hub.start()
            assert hub.api(f"/users/{name}")["servers"][""]["ready"] is True
            assert load_board(hub.board_file).restarts[name] == noted and announced() == 1
            assert re.fullmatch(said.format(""), await notice(s))  # the same notice, still true

            # a second restart after the hub's is news: noted and said, with the count
            cluster.oom_kill(pod_name)
            wait_for(lambda: restarted(2), 30, message="the second restart in place")
            sentence = await poll(_second(notice, s), 30, message="the second restart explained")
            assert re.fullmatch(said.format(" It has restarted 2 times since you started it\\."), sentence)
            assert announced() == 2
            await open_lab(s, hub, name)
        finally:
            stop_server(hub, cluster, name)
        assert await notice(s) == ""  # stopped: the restart notice is about a run that ended


def _second(notice, session):
    async def says_twice():
        sentence = await notice(session)
        return sentence if "2 times" in sentence else ""

    return says_twice
