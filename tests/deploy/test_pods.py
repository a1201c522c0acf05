"""What a rehearsal pod's container is given (tests/deploy/pods.py), read from the emulated
cluster's objects without starting it: ``envFrom`` and read-only claims, as the archive Job uses."""

from __future__ import annotations

import pytest

from tests.harness.kube import KubeHarness

from .pods import Image, PodError, PodProcess


@pytest.fixture
def cluster(tmp_path):
    with KubeHarness(tmp_path / "kube", namespace="ws", kubelet=False, tls=True, authenticate=True) as kube:
        kube.create("serviceaccounts", {"metadata": {"name": "default"}})
        yield kube


def job_pod(cluster, tmp_path, container: dict, volumes: list | None = None) -> PodProcess:
    workload = {
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "containers": [{"name": "c", "command": ["true"], **container}],
                    "volumes": volumes or [],
                },
            }
        }
    }
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    return PodProcess(
        cluster,
        workload,
        name="job-abcde",
        image=Image(env={"PATH": "/bin"}),
        root=tmp_path,
        hosts_file=hosts,
    )


def test_env_from_a_secret_and_a_config_map_and_env_entries_win(cluster, tmp_path):
    cluster.create(
        "secrets", {"metadata": {"name": "s3"}, "stringData": {"AWS_ACCESS_KEY_ID": "k", "SHARED": "secret"}}
    )
    cluster.create("configmaps", {"metadata": {"name": "settings"}, "data": {"LEVEL": "debug"}})
    pod = job_pod(
        cluster,
        tmp_path,
        {
            "envFrom": [
                {"secretRef": {"name": "s3"}},
                {"configMapRef": {"name": "settings"}, "prefix": "APP_"},
                {"secretRef": {"name": "absent", "optional": True}},
            ],
            "env": [{"name": "SHARED", "value": "from env"}],
        },
    )
    env = pod.environment()
    assert env["AWS_ACCESS_KEY_ID"] == "k" and env["APP_LEVEL"] == "debug" and env["SHARED"] == "from env"
    assert "LEVEL" not in env

    missing = job_pod(cluster, tmp_path, {"envFrom": [{"secretRef": {"name": "absent"}}]})
    with pytest.raises(PodError, match="CreateContainerConfigError: secret 'absent' not found"):
        missing.environment()


def test_a_claim_mounted_read_only_by_its_volume_or_its_mount(cluster, tmp_path):
    for name in ("claim-a", "claim-b"):
        cluster.create("persistentvolumeclaims", {"metadata": {"name": name}, "spec": {}})
        cluster.patch("persistentvolumeclaims", name, {"status": {"phase": "Bound"}}, subresource="status")
    pod = job_pod(
        cluster,
        tmp_path,
        {
            "volumeMounts": [
                {"name": "a", "mountPath": "/homes/claim-a"},
                {"name": "b", "mountPath": "/homes/claim-b"},
            ]
        },
        [
            {"name": "a", "persistentVolumeClaim": {"claimName": "claim-a", "readOnly": True}},
            {"name": "b", "persistentVolumeClaim": {"claimName": "claim-b"}},
        ],
    )
    mounts = {m["target"]: m for m in pod.mounts()}
    assert mounts["/homes/claim-a"]["readOnly"] is True and mounts["/homes/claim-b"]["readOnly"] is False
    assert mounts["/homes/claim-a"]["source"] == str(cluster.pvc_path("claim-a"))


def test_an_empty_dir_is_a_fresh_tmpfs_that_keeps_the_images_programs_it_covers(cluster, tmp_path):
    pod = job_pod(
        cluster,
        tmp_path,
        {"volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "cache", "mountPath": "/cache"}]},
        [{"name": "work", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
    )
    pod.image = Image(env={}, host_paths=("/work/checkout/.venv-hub", "/opt/node"))
    mounts = {m["target"]: m for m in pod.mounts()}
    assert mounts["/work"] == {"target": "/work", "tmpfs": True, "keep": ["/work/checkout/.venv-hub"]}
    assert mounts["/cache"] == {"target": "/cache", "tmpfs": True}
