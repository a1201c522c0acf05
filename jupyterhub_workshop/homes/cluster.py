"""The cluster's side of homes (thin IO over the Kubernetes API): which home claims exist, which
pods mount them, and deleting them. Configuration as kubectl finds it ($KUBECONFIG, else
~/.kube/config), else a pod's in-cluster service account."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

# KubeSpawner labels every home claim it makes (z2jh: claim-{username}) with this
HOME_CLAIM_SELECTOR = "component=singleuser-storage"
USERNAME_ANNOTATION = "hub.jupyter.org/username"


@dataclass(frozen=True)
class Claim:
    name: str
    user: str  # "" when the claim does not say


class ClusterError(RuntimeError):
    """The Kubernetes API refused or failed a request; the message says what, and why, in a line."""


def refusal(what: str, status: int | None, reason: str, body: str | bytes | None) -> ClusterError:
    """The error for a request the API answered with ``status``: the API's own message, and for a
    403 where the permission comes from (the usual cause)."""
    message = ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        message = json.loads(body).get("message", "")
    text = f"the Kubernetes API refused to {what} ({status} {reason})"
    if message:
        text += f": {message}"
    if status == 403:
        text += (
            " — the chart's archive Job has this from its Role workshop-archive; from your machine, "
            "your kubectl user needs it"
        )
    return ClusterError(text)


@contextlib.asynccontextmanager
async def _asking(what: str):
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        yield
    except ApiException as e:
        raise refusal(what, e.status, e.reason, e.body) from None


async def _client():
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if Path(kubeconfig.split(os.pathsep)[0]).is_file():
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration=configuration)


async def _home_claims(namespace: str) -> list[Claim]:
    from kubernetes_asyncio import client

    async with await _client() as api, _asking(f"list persistentvolumeclaims in namespace {namespace}"):
        found = await client.CoreV1Api(api).list_namespaced_persistent_volume_claim(
            namespace, label_selector=HOME_CLAIM_SELECTOR
        )
    return sorted(
        (
            Claim(c.metadata.name, (c.metadata.annotations or {}).get(USERNAME_ANNOTATION, ""))
            for c in found.items
        ),
        key=lambda c: c.name,
    )


async def _claims_in_use(namespace: str) -> dict[str, list[str]]:
    from kubernetes_asyncio import client

    async with await _client() as api, _asking(f"list pods in namespace {namespace}"):
        pods = await client.CoreV1Api(api).list_namespaced_pod(namespace)
    users: dict[str, list[str]] = {}
    for pod in pods.items:
        if pod.status and pod.status.phase in ("Succeeded", "Failed"):
            continue
        for volume in pod.spec.volumes or []:
            if volume.persistent_volume_claim is not None:
                users.setdefault(volume.persistent_volume_claim.claim_name, []).append(pod.metadata.name)
    return users


async def _delete_claim(namespace: str, name: str) -> None:
    from kubernetes_asyncio import client

    async with (
        await _client() as api,
        _asking(f"delete persistentvolumeclaim {name} in namespace {namespace}"),
    ):
        await client.CoreV1Api(api).delete_namespaced_persistent_volume_claim(name, namespace)


def home_claims(namespace: str) -> list[Claim]:
    return asyncio.run(_home_claims(namespace))


def claims_in_use(namespace: str) -> dict[str, list[str]]:
    return asyncio.run(_claims_in_use(namespace))


def delete_claim(namespace: str, name: str) -> None:
    asyncio.run(_delete_claim(namespace, name))
