"""The archive Job (workshop.archive): off by default; home claims mounted read-only, the
destination claim or the S3 Secret as environment, nothing secret on its command line; refusals
name the values to change. Rendered with the real Zero to JupyterHub 4.4.0 and validated strictly."""

from __future__ import annotations

import json

import helm_python
import kubernetes_validate
import pytest

from jupyterhub_workshop.cli import main
from tests.harness.kube import KubeHarness
from tests.homes.helpers import fill_home

from .helpers import NAMESPACE, ci_values, deep_merge, manifests, render

K8S_VERSION = "1.32"
CLAIMS = ["claim-esip001", "claim-esip002", "claim-esipinstructor01"]


def values(*overrides: dict) -> dict:
    merged = ci_values("minimal-values.yaml")
    for override in overrides:
        merged = deep_merge(merged, override)
    return merged


def archive(**settings) -> dict:
    return {"workshop": {"archive": {"enabled": True, **settings}}}


def archive_objects(objects):
    return [
        o for o in objects if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "archive"
    ]


def job_of(*overrides):
    objects = manifests(render(values(*overrides)))
    [job] = [
        o for o in objects if o["kind"] == "Job" and o["metadata"]["name"].startswith("workshop-archive")
    ]
    return job, objects


def test_off_by_default():
    assert archive_objects(manifests(render(values()))) == []


def test_to_a_claim_mounts_every_home_read_only_and_validates():
    job, objects = job_of(archive(pvcName="workshop-archive", claims=CLAIMS))
    for obj in archive_objects(objects):
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True), (
            obj["kind"],
            obj["metadata"]["name"],
        )
    assert job["metadata"]["name"] == "workshop-archive-1"  # a new Job per revision: upgrade to run again
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"].startswith("ghcr.io/jupyterhub-workshop/hub:")  # the package and boto3
    assert container["command"] == ["jupyterhub-workshop"]
    assert container["args"] == [
        "homes", "archive", "--homes", "/homes", "--to", "/archive", "--namespace", NAMESPACE,
        "--only", CLAIMS[0], "--only", CLAIMS[1], "--only", CLAIMS[2],
    ]  # fmt: skip
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for claim in CLAIMS:
        mount = mounts[f"/homes/{claim}"]
        assert mount["readOnly"] is True
        assert volumes[mount["name"]]["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    assert volumes[mounts["/archive"]["name"]]["persistentVolumeClaim"] == {"claimName": "workshop-archive"}
    assert not mounts["/archive"].get("readOnly")
    assert container["securityContext"] == {"runAsUser": 1000, "runAsGroup": 100}
    assert pod["securityContext"] == {"fsGroup": 100}  # the destination claim writable to that user
    assert pod["serviceAccountName"] == "workshop-archive"
    [role] = [o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "workshop-archive"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["list"]}]


def test_to_s3_credentials_come_from_the_secret_never_the_command_line():
    job, objects = job_of(
        archive(
            url="s3://hackweek-archive/2026/homes",
            endpointUrl="https://s3.example.org",
            existingSecret="workshop-archive-s3",
            claims=CLAIMS,
        )
    )
    for obj in archive_objects(objects):
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][container["args"].index("--to") + 1] == "s3://hackweek-archive/2026/homes"
    assert container["envFrom"] == [{"secretRef": {"name": "workshop-archive-s3"}}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env == {"TMPDIR": "/work", "AWS_ENDPOINT_URL_S3": "https://s3.example.org"}
    assert "/archive" not in {m["mountPath"] for m in container["volumeMounts"]}
    assert not any("AWS" in arg or "secret" in arg.lower() for arg in container["args"])


def test_static_homes_mount_the_one_claim_and_archive_its_directories():
    static = {
        "workshop": {
            "storage": {"type": "static", "static": {"pvcName": "nfs-homes", "subPath": "home/{username}"}}
        }
    }
    job, _ = job_of(static, archive(pvcName="workshop-archive"))
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["homes", "archive", "--homes", "/homes/nfs-homes/home", "--to", "/archive"]
    assert {m["mountPath"]: m.get("readOnly") for m in container["volumeMounts"]}["/homes/nfs-homes"] is True


@pytest.mark.parametrize(
    "change, message",
    [
        (archive(), "needs a destination: workshop.archive.pvcName"),
        (
            archive(pvcName="a", url="s3://bucket/c"),
            "give workshop.archive.pvcName or workshop.archive.url, not both",
        ),
        (archive(pvcName="a", endpointUrl="https://s3.example.org"), "endpointUrl is for an S3 destination"),
        (archive(pvcName="claim-esip001", claims=CLAIMS), "is also a home claim"),
        (deep_merge(archive(pvcName="a"), {"workshop": {"storage": {"type": "none"}}}), "nothing to archive"),
        (
            deep_merge(
                archive(pvcName="a"),
                {
                    "workshop": {
                        "storage": {
                            "type": "static",
                            "static": {"pvcName": "n", "subPath": "{username}/home"},
                        }
                    }
                },
            ),
            "must end in /{username}",
        ),
    ],
)
def test_refusals_name_the_values(change, message):
    with pytest.raises(helm_python.HelmRenderError, match=message):
        render(values(change))


@pytest.mark.parametrize("url", ["https://bucket/x", "s3://KEY:SECRET@bucket/x"])
def test_the_schema_takes_only_s3_urls_without_credentials(url):
    with pytest.raises(helm_python.HelmValuesError, match="/workshop/archive/url"):
        render(values(archive(url=url)))


def test_the_rendered_job_archives_the_emulated_clusters_homes_to_s3(s3, tmp_path, monkeypatch, capsys):
    """The Job's command line and environment, as rendered, run against the emulated cluster's
    claims (its mounts played by the claims' directories) and moto's S3 server."""
    endpoint, client = s3
    job, _ = job_of(
        archive(
            url="s3://workshop-archive/homes", endpointUrl=endpoint, existingSecret="s3", claims=CLAIMS[:2]
        )
    )
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    with KubeHarness(tmp_path / "kube", namespace=NAMESPACE) as cluster:
        for i, claim in enumerate(CLAIMS):
            cluster.create(
                "persistentvolumeclaims",
                {
                    "metadata": {
                        "name": claim,
                        "labels": {"component": "singleuser-storage"},
                        "annotations": {"hub.jupyter.org/username": claim.removeprefix("claim-")},
                    },
                    "spec": {},
                },
            )
            cluster.bind_pvc(claim)
            fill_home(cluster.pvc_path(claim), seed=i)
        # the pod's mounts: /homes/<claim> is the claim's directory
        volumes = {v["name"]: v for v in pod["volumes"]}
        root = tmp_path / "pod"
        for mount in container["volumeMounts"]:
            claim = (volumes[mount["name"]].get("persistentVolumeClaim") or {}).get("claimName")
            local = cluster.pvc_path(claim) if claim else root / "work"
            target = root / mount["mountPath"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if claim:
                target.symlink_to(local)
            else:
                target.mkdir()
        args = [str(root / a.lstrip("/")) if a.startswith("/") else a for a in container["args"]]
        monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
        for entry in container["env"]:
            value = entry["value"]
            monkeypatch.setenv(
                entry["name"], str(root / value.lstrip("/")) if value.startswith("/") else value
            )
        # the Secret's keys (envFrom) are the moto credentials already in the environment
        assert main(args) == 0
    assert "2 homes archived and verified" in capsys.readouterr().out
    manifest = json.loads(
        client.get_object(Bucket="workshop-archive", Key="homes/manifest.json")["Body"].read()
    )
    assert [(r["home"], r["user"]) for r in manifest["homes"]] == [
        (c, c.removeprefix("claim-")) for c in CLAIMS[:2]
    ]
