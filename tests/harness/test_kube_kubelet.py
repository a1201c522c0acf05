"""The emulated kubelet (tests/harness/kube/kubelet.py): pods as local processes on loopback
addresses, PVC gating, volumes as directories, postStart hooks and deletion."""

from __future__ import annotations

import json

import pytest

from tests.harness.hub import http_status, wait_for
from tests.harness.kube import IPPool, KubeHarness, expand_vars
from tests.harness.kube.testing import pod_manifest, process_gone


def test_ip_pool_hands_out_loopback_addresses_in_order_and_reuses_after_wrap_around():
    pool = IPPool()
    first, second = pool.allocate(), pool.allocate()
    assert (first, second) == ("127.0.1.1", "127.0.1.2")
    pool.release(first)
    assert pool.allocate() == "127.0.1.3"  # not reused before the pool wraps around
    assert pool.in_use == {"127.0.1.2", "127.0.1.3"}
    assert IPPool.address(253) == "127.0.1.254" and IPPool.address(254) == "127.0.2.1"


def test_expand_vars_follows_kubernetes_rules():
    env = {"A": "1", "B": "x"}
    assert expand_vars("$(A)-$(B)", env) == "1-x"
    assert expand_vars("$(UNKNOWN)", env) == "$(UNKNOWN)"
    assert expand_vars("$$(A)", env) == "$(A)"


@pytest.fixture
def kube(tmp_path):
    with KubeHarness(tmp_path / "kube", mocksu=True, pvc_bind_delay=None) as kube:
        yield kube


@pytest.mark.e2e
def test_kubelet_pvc_gating_mounts_and_failed_post_start(kube):
    kube.create(
        "persistentvolumeclaims",
        {
            "metadata": {"name": "claim-ana"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    kube.create(
        "pods",
        pod_manifest(
            "jupyter-ana",
            volumes=[
                {"name": "home", "persistentVolumeClaim": {"claimName": "claim-ana"}},
                {"name": "scratch", "emptyDir": {}},
            ],
            mounts=[
                {"name": "home", "mountPath": "/home/jovyan"},
                {"name": "scratch", "mountPath": "/tmp/scratch"},
            ],
            env=[
                {"name": "GREETING", "value": "hi"},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {}}},
            ],
            post_start=["sh", "-c", 'echo "$GREETING" > "$HOME/hook-ran"'],
        ),
    )

    # the PVC never binds by itself (pvc_bind_delay=None): the pod stays Pending, no process
    wait_for(
        lambda: any(e["reason"] == "FailedScheduling" for e in kube.events("jupyter-ana")),
        10,
        message="FailedScheduling",
    )
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
    assert (
        terminated["reason"] == "PostStartHookError"
        and bad["status"]["containerStatuses"][0]["ready"] is False
    )
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


@pytest.mark.e2e
def test_a_pod_bound_to_another_node_is_left_to_that_nodes_kubelet(kube):
    elsewhere = pod_manifest("job-pod")
    elsewhere["spec"]["nodeName"] = "another-node"
    kube.create("pods", elsewhere)
    kube.create("pods", pod_manifest("jupyter-ben"))  # events reach the kubelet in order
    kube.wait_pod_phase("jupyter-ben", "Running", timeout=20)
    assert kube.call(lambda: ("default", "job-pod") in kube.kubelet.pods) is False
    stored = kube.get("pods", "job-pod")
    assert stored["spec"]["nodeName"] == "another-node" and stored["status"].get("phase") == "Pending"
    assert kube.events("job-pod") == []


@pytest.fixture
def restarting(tmp_path):
    # a small CrashLoopBackOff base: a test that restarts a container three times waits 0.2 + 0.4 s
    with KubeHarness(tmp_path / "kube", mocksu=True, pvc_bind_delay=None, restart_backoff=0.2) as kube:
        yield kube


def notebook_status(kube, name):
    return kube.get("pods", name)["status"]["containerStatuses"][0]


def restarted(kube, name, count):
    """The pod's notebook container running again after its ``count``-th restart."""
    status = notebook_status(kube, name)
    return (
        status
        if status["restartCount"] == count and status["ready"] and "running" in status["state"]
        else None
    )


@pytest.mark.e2e
def test_an_oom_killed_container_restarts_in_the_same_pod_saying_why(restarting):
    kube = restarting
    kube.create("pods", pod_manifest("jupyter-cleo"))  # restartPolicy OnFailure, as KubeSpawner's
    pod = kube.wait_pod_phase("jupyter-cleo", "Running", timeout=20)
    ip, uid, pid = pod["status"]["podIP"], pod["metadata"]["uid"], kube.pod_pid("jupyter-cleo")
    assert notebook_status(kube, "jupyter-cleo")["restartCount"] == 0
    wait_for(lambda: http_status(f"http://{ip}:8888/x") == 200, 20, message="mocksu to answer")

    kube.oom_kill("jupyter-cleo")
    status = wait_for(lambda: restarted(kube, "jupyter-cleo", 1), 20, message="the first restart")
    terminated = status["lastState"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137
    assert terminated["finishedAt"] >= terminated["startedAt"]
    pod = kube.get("pods", "jupyter-cleo")
    assert pod["status"]["phase"] == "Running"
    assert (pod["status"]["podIP"], pod["metadata"]["uid"]) == (ip, uid)  # the same pod
    assert process_gone(pid) and kube.pod_pid("jupyter-cleo") != pid
    wait_for(lambda: http_status(f"http://{ip}:8888/x") == 200, 20, message="mocksu to answer again")
    assert kube.pod("jupyter-cleo")["restart_count"] == 1

    # killed by something else (not the cgroup): Error, 128 + SIGKILL; the second restart backs off
    import os
    import signal

    os.killpg(kube.pod_pid("jupyter-cleo"), signal.SIGKILL)
    status = wait_for(lambda: restarted(kube, "jupyter-cleo", 2), 20, message="the second restart")
    assert status["lastState"]["terminated"]["reason"] == "Error"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert any(e["reason"] == "BackOff" for e in kube.events("jupyter-cleo"))
    assert kube.get("pods", "jupyter-cleo")["status"]["podIP"] == ip

    # deletion still ends it for good: no restart of a deleted pod's container
    pid = kube.pod_pid("jupyter-cleo")
    kube.delete("pods", "jupyter-cleo", grace_period_seconds=1)
    wait_for(lambda: kube.get("pods", "jupyter-cleo") is None, 15, message="pod removal")
    assert process_gone(pid) and kube.pod("jupyter-cleo")["state"] == "terminated"


@pytest.mark.e2e
def test_restart_policy_never_and_a_clean_exit_end_the_pod(restarting):
    kube = restarting
    never = pod_manifest("jupyter-dora")
    never["spec"]["restartPolicy"] = "Never"
    kube.create("pods", never)
    kube.wait_pod_phase("jupyter-dora", "Running", timeout=20)
    kube.oom_kill("jupyter-dora")
    pod = kube.wait_pod_phase("jupyter-dora", "Failed", timeout=20)
    status = pod["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["reason"] == "OOMKilled" and status["restartCount"] == 0
    assert not kube.pod_alive("jupyter-dora")

    # OnFailure: a process that exits 0 by itself is done (Succeeded), not restarted
    done = pod_manifest("jupyter-eli")
    done["metadata"]["annotations"] = {"kube-harness/mocksu": "false"}
    done["spec"]["containers"][0]["command"] = ["sh", "-c", "exit 0"]
    kube.create("pods", done)
    pod = kube.wait_pod_phase("jupyter-eli", "Succeeded", timeout=20)
    status = pod["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["reason"] == "Completed" and status["restartCount"] == 0

    # … and one that fails by itself is restarted, counting up, with CrashLoopBackOff between
    crash = pod_manifest("jupyter-fay")
    crash["metadata"]["annotations"] = {"kube-harness/mocksu": "false"}
    crash["spec"]["containers"][0]["command"] = ["sh", "-c", "exit 3"]
    kube.create("pods", crash)
    wait_for(
        lambda: notebook_status(kube, "jupyter-fay")["restartCount"] >= 2,
        20,
        message="two restarts of a crashing container",
    )
    status = notebook_status(kube, "jupyter-fay")
    assert status["lastState"]["terminated"] == {
        **status["lastState"]["terminated"],
        "reason": "Error",
        "exitCode": 3,
    }
    assert kube.get("pods", "jupyter-fay")["status"]["phase"] == "Running"
    kube.delete("pods", "jupyter-fay", grace_period_seconds=0)
    wait_for(lambda: kube.get("pods", "jupyter-fay") is None, 15, message="pod removal")
