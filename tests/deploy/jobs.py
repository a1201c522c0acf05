"""The chart's Jobs run the way Kubernetes' Job controller and a node's kubelet run them.

:func:`run_job` reads a Job as ``helm install``/``upgrade`` stored it in the emulated API server
and plays the Job controller: for each attempt it creates the Job's Pod (the template's labels
and spec, Kubernetes' ``job-name``/``controller-uid`` labels, owned by the Job) bound to a node
of its own (:data:`JOB_NODE`, which the kubelet stand-in of user pods leaves to its kubelet),
then plays that node's kubelet: the pod is run with :class:`pods.PodProcess` (its volumes at
their real paths, its service account's token, ``env`` and ``envFrom``) and its phase and
container status are written back; then the Job's status and its ``Complete`` or ``Failed``
condition, as the controller writes them. With ``restartPolicy: Never`` a failed attempt's pod
stays and the next attempt is a new pod, up to ``backoffLimit`` failures.

Not emulated: the delay between attempts (10 s, doubling, on a cluster), ``parallelism`` and
``completions`` above 1, ``activeDeadlineSeconds`` (``timeout`` stands in), and
``ttlSecondsAfterFinished``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from tests.harness.hub import wait_for
from tests.harness.kube import resource_of
from tests.harness.kube.resources import timestamp

from .install import Installation, claims_bound
from .pods import Image, PodProcess

JOB_NODE = "rehearsal-jobs"


@dataclass
class Attempt:
    """One pod of a Job: its name, the container's exit status, its log and what was run."""

    pod: str
    exit_code: int | None
    log: str
    spec: dict = field(repr=False)


@dataclass
class JobRun:
    name: str
    attempts: list[Attempt]
    status: dict  # the Job's status, as stored at the end

    @property
    def complete(self) -> bool:
        return any(
            c["type"] == "Complete" and c["status"] == "True" for c in self.status.get("conditions", [])
        )

    def logs(self) -> str:
        return "\n".join(f"--- {a.pod} (exit {a.exit_code})\n{a.log}" for a in self.attempts)


def _pod_of(job: dict, name: str) -> dict:
    meta, template = job["metadata"], job["spec"]["template"]
    job_name, uid = meta["name"], meta["uid"]
    labels = {
        **((template.get("metadata") or {}).get("labels") or {}),
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": job_name,
        "controller-uid": uid,
        "job-name": job_name,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": job["apiVersion"],
                    "kind": "Job",
                    "name": job_name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {**template["spec"], "nodeName": JOB_NODE},
    }


def _terminated(pod: dict, code: int | None) -> dict:
    container = pod["spec"]["containers"][0]
    reason = "Completed" if code == 0 else ("DeadlineExceeded" if code is None else "Error")
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": -1 if code is None else code, "reason": reason}},
            }
        ],
    }


def run_job(installation: Installation, name: str, image: Image, timeout: float = 180.0) -> JobRun:
    """Run Job ``name`` of the installation to its end: complete, or failed ``backoffLimit``+1 times."""
    cluster = installation.cluster
    stored = installation.release.find("Job", name)
    res = resource_of(stored)
    job = cluster.get(res, name)
    assert job is not None, f"job {name} is not in the cluster"
    backoff_limit = job["spec"].get("backoffLimit", 6)
    attempts: list[Attempt] = []
    status = {"startTime": timestamp(), "active": 0, "failed": 0, "succeeded": 0}
    while True:
        pod = _pod_of(job, f"{name}-{secrets.token_hex(4)[:5]}")
        pod_name = pod["metadata"]["name"]
        cluster.create("pods", pod)
        status["active"] = 1
        cluster.patch(res, name, {"status": status}, subresource="status")
        claims_bound(cluster, pod["spec"])
        process = PodProcess(
            cluster,
            {"spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}}},
            name=pod_name,
            image=image,
            root=installation.root / "pods",
            hosts_file=installation.hosts_file,
        )
        process.start()
        cluster.patch(
            "pods", pod_name, {"status": {"phase": "Running", "startTime": timestamp()}}, subresource="status"
        )
        try:
            wait_for(
                lambda process=process: not process.alive(),
                timeout,
                interval=0.1,
                message=f"pod {pod_name} to finish",
            )
            code = process.stop()
        except TimeoutError:
            process.stop(grace=5)
            code = None
        cluster.patch("pods", pod_name, {"status": _terminated(pod, code)}, subresource="status")
        attempts.append(Attempt(pod_name, code, process.log_text(), process.spec))
        status["active"] = 0
        if code == 0:
            status["succeeded"] = 1
            status["completionTime"] = timestamp()
            status["conditions"] = [{"type": "Complete", "status": "True"}]
        else:
            status["failed"] += 1
            if status["failed"] > backoff_limit:
                status["conditions"] = [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                    }
                ]
        cluster.patch(res, name, {"status": status}, subresource="status")
        if "conditions" in status:
            return JobRun(name, attempts, cluster.get(res, name)["status"])
