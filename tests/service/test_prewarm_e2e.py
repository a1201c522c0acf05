"""Pre-warm against the emulated cluster (tests/harness/kube): the service's own step, with the real
kubernetes_asyncio client over HTTP, scales the placeholder Deployment through its scale
subresource and nothing else; a scale the cluster's RBAC denies, or an API that is down, is
logged once, tried again at every step and works once allowed, the service never raising."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from traitlets.config import Config

from jupyterhub_workshop.schedule import Schedule
from jupyterhub_workshop.service.app import WorkshopService
from jupyterhub_workshop.service.prewarm import DeploymentScale, Prewarmer

from ..harness.hub import free_port
from ..harness.kube import KubeHarness

# the service runs in the hub z2jh 4.4.0 ships (JupyterHub 5.5): there too
pytestmark = [pytest.mark.e2e, pytest.mark.jh55]

NAMESPACE = "hackweek"
DEPLOYMENTS = "apps/v1/deployments"
SCALE_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/workshop-prewarm/scale"
PLACEHOLDERS = {
    "metadata": {"name": "workshop-prewarm", "labels": {"app.kubernetes.io/component": "prewarm"}},
    "spec": {
        "replicas": 0,
        "selector": {"matchLabels": {"app.kubernetes.io/component": "prewarm"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/component": "prewarm"}},
            "spec": {
                "priorityClassName": "workshop-prewarm",
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "pause",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "3500m", "memory": "28Gi"}},
                    }
                ],
            },
        },
    },
}
# a class of 10 on Tuesday 2026-07-14, 09:00-17:00 UTC, 4 people per node
SCHEDULE = {
    "timeZone": "UTC",
    "expected": 10,
    "sessions": [{"days": ["2026-07-14"], "start": "09:00", "end": "17:00"}],
}


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 7, 14, hour, minute, tzinfo=UTC)


def replicas(kube) -> int:
    return kube.get(DEPLOYMENTS, "workshop-prewarm", NAMESPACE)["spec"]["replicas"]


@pytest.fixture
def cluster(tmp_path):
    with KubeHarness(tmp_path / "kube", namespace=NAMESPACE, kubelet=False) as kube:
        kube.create(DEPLOYMENTS, copy.deepcopy(PLACEHOLDERS))
        yield kube


def service_settings(tmp_path, **extra) -> dict:
    return {
        "db_url": f"sqlite:///{tmp_path / 'usage.sqlite'}",
        "schedule": SCHEDULE,
        "users_per_node": 4,
        "prewarm_deployment": "workshop-prewarm",
        "prewarm_namespace": NAMESPACE,
        **extra,
    }


async def test_the_service_scales_placeholders_before_inside_and_after_a_session(
    cluster, tmp_path, monkeypatch
):
    kube = cluster
    # outside a pod: the kubeconfig of $KUBECONFIG (the in-cluster one is tried first)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    service = WorkshopService(config=Config({"WorkshopService": service_settings(tmp_path)}))
    service.initialize([])
    before = kube.get(DEPLOYMENTS, "workshop-prewarm", NAMESPACE)
    try:
        steps = [
            (at(8, 0), 0, 0),  # before the stretch
            (at(8, 40), 0, 3),  # lead: 10 people without a server, 4 per node
            (at(8, 41), 1, 3),  # 9: still 3
            (at(9, 5), 7, 1),  # 3 people still to come
            (at(9, 30), 7, 0),  # hold is over
            (at(12, 0), 9, 0),  # inside the session, past the hold
            (at(18, 0), 0, 0),  # after
        ]
        for now, running, wanted in steps:
            status = await service.prewarmer.step(now, running)
            assert (status.decided, status.replicas, replicas(kube)) == (wanted, wanted, wanted), now
            assert status.error is None
    finally:
        await service.prewarmer.close()
        service.hub.close()
        service.store.close()
    # only the scale subresource was asked for: a GET every step, a PATCH per change
    requests = kube.requests()
    assert {path for _, path in requests} == {SCALE_PATH}
    assert [method for method, _ in requests] == [
        "GET",
        "GET",
        "PATCH",
        "GET",
        "GET",
        "PATCH",
        "GET",
        "PATCH",
    ] + [
        "GET",
        "GET",
    ]
    after = kube.get(DEPLOYMENTS, "workshop-prewarm", NAMESPACE)
    assert int(after["metadata"]["resourceVersion"]) == int(before["metadata"]["resourceVersion"]) + 3
    # the placeholders' pod template, selector and labels are as the chart made them
    assert after["spec"]["template"] == PLACEHOLDERS["spec"]["template"]
    assert after["spec"]["selector"] == PLACEHOLDERS["spec"]["selector"]
    assert after["metadata"]["labels"] == PLACEHOLDERS["metadata"]["labels"]
    text = service.metrics.render().decode()
    assert "workshop_prewarm_placeholders 0.0" in text and "workshop_prewarm_active 0.0" in text


ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "workshop-prewarm"},
    # everything on Deployments, but not their scale subresource
    "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}],
}
BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "workshop-prewarm"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "workshop-prewarm"},
    "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": NAMESPACE}],
}


def allow(kube, *verbs: str) -> None:
    """The Role grants ``verbs`` on this one Deployment's scale subresource (least privilege)."""
    rule = {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale"],
        "resourceNames": ["workshop-prewarm"],
        "verbs": list(verbs),
    }
    kube.patch("rbac.authorization.k8s.io/v1/roles", "workshop-prewarm", {"rules": [*ROLE["rules"], rule]})


async def test_a_denied_scale_is_logged_once_retried_and_works_once_allowed(tmp_path, caplog):
    with KubeHarness(tmp_path / "kube", namespace=NAMESPACE, kubelet=False, tls=True, authorize=True) as kube:
        kube.create(DEPLOYMENTS, copy.deepcopy(PLACEHOLDERS))
        kube.create("rbac.authorization.k8s.io/v1/roles", ROLE)
        kube.create("rbac.authorization.k8s.io/v1/rolebindings", BINDING)
        # inside the hub pod: the in-cluster configuration (service account token, CA, HTTPS)
        token = tmp_path / "serviceaccount" / "token"
        token.parent.mkdir()
        token.write_text(kube.service_account_token("hub"))
        scale = DeploymentScale(
            "workshop-prewarm",
            NAMESPACE,
            environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(kube.port)},
            token_file=str(token),
            ca_file=str(kube.ca_file),
        )
        log = logging.getLogger("test-prewarm-e2e")
        warm = Prewarmer(
            Schedule.parse(SCHEDULE),
            lead=timedelta(minutes=20),
            hold=timedelta(minutes=30),
            users_per_node=4,
            scale=scale,
            log=log,
        )
        try:
            with caplog.at_level(logging.INFO, log.name):
                for minute in (40, 41, 42):  # denied: logged once, tried at every step
                    status = await warm.step(at(8, minute), 0)
                    assert status.decided == 3 and status.replicas is None and status.error
                denied = [r.getMessage() for r in caplog.records if r.name == log.name]
                assert len(denied) == 1 and denied[0].startswith(
                    "Pre-warm: the Kubernetes API refused to read the scale of Deployment "
                    "hackweek/workshop-prewarm (403 Forbidden: deployments/scale "
                    '"workshop-prewarm" is forbidden: User "system:serviceaccount:hackweek:hub" cannot get'
                )
                assert "the chart renders them in the Role workshop-prewarm" in denied[0]
                assert status.error_since == at(8, 40)

                allow(kube, "get")  # read, but not change: a new failure, logged once
                for minute in (43, 44):
                    status = await warm.step(at(8, minute), 0)
                    assert status.replicas == 0 and "refused to change" in status.error
                assert len([r for r in caplog.records if r.name == log.name]) == 2 and replicas(kube) == 0

                allow(kube, "get", "patch")
                status = await warm.step(at(8, 45), 0)
                assert (status.replicas, status.error, replicas(kube)) == (3, None, 3)
                assert status.change.at == at(8, 45)
                messages = [r.getMessage() for r in caplog.records if r.name == log.name][2:]
                assert any("works again (failing since 2026-07-14T08:40:00+00:00)" in m for m in messages)
                assert any("scaled from 0 to 3 placeholders" in m for m in messages)
        finally:
            await warm.close()
        refused = kube.refused()
        assert [(r["code"], r["method"], r["path"]) for r in refused] == [
            (403, "GET", SCALE_PATH),
            (403, "GET", SCALE_PATH),
            (403, "GET", SCALE_PATH),
            (403, "PATCH", SCALE_PATH),
            (403, "PATCH", SCALE_PATH),
        ]
        assert {path for _, path in kube.requests()} == {SCALE_PATH}
        assert kube.requests_by_user() == {"system:serviceaccount:hackweek:hub": 9}  # 3 + 2 × 2 + 2


async def test_an_api_that_is_down_is_logged_once_and_scaled_when_it_is_back(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    first = KubeHarness(tmp_path / "kube", namespace=NAMESPACE, kubelet=False).start()
    port = first.port
    monkeypatch.setenv("KUBECONFIG", str(first.kubeconfig))
    log = logging.getLogger("test-prewarm-e2e")
    warm = Prewarmer(
        Schedule.parse(SCHEDULE),
        lead=timedelta(minutes=20),
        hold=timedelta(minutes=30),
        users_per_node=4,
        scale=DeploymentScale("workshop-prewarm", NAMESPACE),
        log=log,
    )
    again = None
    try:
        first.create(DEPLOYMENTS, copy.deepcopy(PLACEHOLDERS))
        assert (await warm.step(at(8, 0), 0)).replicas == 0
        first.stop()  # the API goes away
        with caplog.at_level(logging.INFO, log.name):
            for minute in (40, 41, 42):
                status = await warm.step(at(8, minute), 0)
                assert status.decided == 3 and status.replicas == 0  # as last read
                assert status.error.startswith(
                    f"the Kubernetes API at http://127.0.0.1:{port} is unreachable"
                )
            mine = [r.getMessage() for r in caplog.records if r.name == log.name]
            assert len(mine) == 1 and "unreachable" in mine[0]
            again = KubeHarness(
                tmp_path / "kube-again", namespace=NAMESPACE, kubelet=False, port=port
            ).start()
            again.create(DEPLOYMENTS, copy.deepcopy(PLACEHOLDERS))
            status = await warm.step(at(8, 43), 0)
        assert (status.error, status.replicas, replicas(again)) == (None, 3, 3)
        assert any("works again" in r.getMessage() for r in caplog.records if r.name == log.name)
    finally:
        await warm.close()
        first.stop()
        if again is not None:
            again.stop()


async def test_the_running_service_keeps_placeholders_on_its_own_timer(cluster, tmp_path, monkeypatch):
    """The service as it runs: its own pre-warm timer, against a session that starts soon."""
    kube = cluster
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-workshop")  # what the hub gives its service
    start = (datetime.now(UTC) + timedelta(minutes=10)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=1)
    soon = {
        "timeZone": "UTC",
        "expected": 9,
        "sessions": [{"days": [start.date().isoformat()], "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}],
    }
    settings = service_settings(
        tmp_path,
        schedule=soon,
        prewarm_every=0.2,
        cull_every=3600,
        api_url="http://127.0.0.1:9/hub/api",  # no hub: passes fail, pre-warm goes on
        api_token="not-a-real-token",
        api_retries=0,
        api_timeout=1,
        service_url=f"http://127.0.0.1:{free_port()}",
    )
    service = WorkshopService(config=Config({"WorkshopService": settings}))
    service.initialize([])
    stopping = asyncio.Event()
    serving = asyncio.create_task(service.serve(stopping))
    try:
        deadline = time.monotonic() + 20
        while replicas(kube) != 3 and time.monotonic() < deadline:  # 9 people, 4 per node
            await asyncio.sleep(0.05)
        assert replicas(kube) == 3
        assert service.prewarmer.status.warming and service.prewarmer.status.error is None
    finally:
        stopping.set()
        await asyncio.wait_for(serving, 10)
    assert {path for _, path in kube.requests()} == {SCALE_PATH}
    assert service.prewarmer.scale._client is None  # closed with the service
