"""Homes on the emulated cluster: claims made by the real KubeSpawner (spawned through a real hub),
archived to a claim and to moto's S3 server, verified, restored byte for byte; deleting the claims
refused until a verified archive covers every one and nobody uses them."""

import json
import sys
import time
from urllib.parse import quote

import pytest

from jupyterhub_workshop.cli import main

from ..harness.hub import HubProcess, wait_for
from ..harness.kube import KubeHarness
from .helpers import assert_same_tree, fill_home

pytestmark = [pytest.mark.e2e]

USERS = ["ws001", "ana.maría"]  # the second's claim name is escaped; the manifest keeps her name

CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "workshop"
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.KubeSpawner.namespace = "default"
c.KubeSpawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.KubeSpawner.start_timeout = 60
c.KubeSpawner.pvc_name_template = "claim-{{username}}"
c.WorkshopKubeSpawner.home_storage = {{"mode": "dynamic", "capacity": "1Gi"}}
"""


def spawn(hub, cluster, name):
    hub.api(f"/users/{quote(name)}/server", method="POST", data=b"{}")
    wait_for(
        lambda: (hub.api(f"/users/{quote(name)}")["servers"].get("") or {}).get("ready"),
        60,
        message=f"{name}'s server",
    )


def stop(hub, cluster, name):
    hub.api(f"/users/{quote(name)}/server", method="DELETE")
    wait_for(lambda: not hub.api(f"/users/{quote(name)}")["servers"], 30, message=f"{name}'s server to stop")


def claim_of(cluster, user):
    [claim] = [
        c
        for c in cluster.list("persistentvolumeclaims")
        if c["metadata"]["annotations"].get("hub.jupyter.org/username") == user
    ]
    return claim["metadata"]["name"]


def test_homes_archived_to_a_claim_and_to_s3_then_deleted_only_when_covered(
    tmp_path, s3, monkeypatch, capsys
):
    endpoint, _ = s3
    started = time.monotonic()
    with KubeHarness(tmp_path / "kube", mocksu=True) as cluster:
        monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)  # as the chart's Job gets it
        hub = HubProcess(tmp_path / "hub", CONFIG, env=cluster.env).start()
        try:
            for user in USERS:
                hub.api(f"/users/{quote(user)}", method="POST", data=b"{}")
                spawn(hub, cluster, user)
            claims = {user: claim_of(cluster, user) for user in USERS}
            assert claims["ws001"] == "claim-ws001" and claims["ana.maría"] != "claim-ana.maría"
            for i, user in enumerate(USERS):
                fill_home(cluster.pvc_path(claims[user]), seed=i)
            stop(hub, cluster, "ws001")

            # the organizer's destination claim, and the directory where the claims are mounted
            cluster.create("persistentvolumeclaims", {"metadata": {"name": "workshop-archive"}, "spec": {}})
            wait_for(
                lambda: (
                    cluster.get("persistentvolumeclaims", "workshop-archive")["status"].get("phase")
                    == "Bound"
                ),
                10,
                message="the archive claim to bind",
            )
            to_claim = cluster.pvc_path("workshop-archive")
            mounted = cluster.pvc_path(claims["ws001"]).parent  # root/volumes/<claim>, as /homes/<claim>
            homes = ["--homes", str(mounted), "--namespace", "default"]

            # deleting before any archive: refused, claim by claim
            assert main(["homes", "delete", *homes, "--archive", str(to_claim), "--yes"]) == 1
            err = capsys.readouterr().err
            assert f"{claims['ana.maría']} is in use by jupyter-" in err
            assert "claim-ws001 has no verified archive" in err

            # claims not mounted where the archive looks: those mounted are archived, the others named
            (tmp_path / "some").mkdir()
            (tmp_path / "some" / "claim-ws001").symlink_to(cluster.pvc_path("claim-ws001"))
            partial = tmp_path / "partial-archive"
            partial.mkdir()
            some = ["--homes", str(tmp_path / "some"), "--namespace", "default", "--to", str(partial)]
            assert main(["homes", "archive", *some]) == 1
            out, err = capsys.readouterr()
            assert "1 home archived and verified" in out
            assert f"1 home claim of namespace default not found under {tmp_path / 'some'}" in err
            assert claims["ana.maría"] in err

            assert main(["homes", "archive", *homes, "--to", str(to_claim)]) == 0
            s3_url = "s3://workshop-archive/esip/homes"
            assert main(["homes", "archive", *homes, "--to", s3_url]) == 0
            out = capsys.readouterr().out
            assert "2 homes archived and verified" in out

            manifest = json.loads((to_claim / "manifest.json").read_text())
            assert {r["user"]: r["home"] for r in manifest["homes"]} == {u: claims[u] for u in USERS}
            for user in USERS:
                claim = claims[user]
                home = cluster.pvc_path(claim)
                into = tmp_path / "restored" / claim
                assert main(["homes", "restore", "--archive", str(to_claim), claim, "--into", str(into)]) == 0
                assert_same_tree(into, home)
                into_s3 = tmp_path / "restored-s3" / claim
                assert main(["homes", "restore", "--archive", s3_url, claim, "--into", str(into_s3)]) == 0
                assert_same_tree(into_s3, home)

            # still in use: refused; a new claim since the archive: refused, named
            assert main(["homes", "delete", "--namespace", "default", "--archive", s3_url, "--yes"]) == 1
            assert "is in use by jupyter-" in capsys.readouterr().err
            stop(hub, cluster, "ana.maría")
            hub.api("/users/late", method="POST", data=b"{}")
            spawn(hub, cluster, "late")
            stop(hub, cluster, "late")
            assert main(["homes", "verify", "--namespace", "default", "--archive", s3_url]) == 1
            assert "claim-late: no verified archive" in capsys.readouterr().err
            assert main(["homes", "delete", "--namespace", "default", "--archive", s3_url, "--yes"]) == 1
            assert "claim-late has no verified archive" in capsys.readouterr().err
            assert len(cluster.list("persistentvolumeclaims")) == 4

            assert main(["homes", "archive", *homes, "--to", s3_url]) == 0
            assert "1 home archived and verified" in capsys.readouterr().out
            delete = ["homes", "delete", "--namespace", "default", "--archive", s3_url]
            assert main(delete) == 0
            assert "would delete 3 homes" in capsys.readouterr().out
            assert main([*delete, "--yes"]) == 0
            print(f"took {time.monotonic() - started:.1f} s")
            left = [c["metadata"]["name"] for c in cluster.list("persistentvolumeclaims")]
            assert left == ["workshop-archive"]
        finally:
            hub.stop()
