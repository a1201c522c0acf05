"""``helm install`` of helm-chart/ onto the emulated cluster, and the pods it starts.

:class:`Release` renders the chart with the real Zero to JupyterHub 4.4.0 subchart
(tests/chart/helpers.py) and stores every object in the emulated API server, the organizer's
Secrets (``kubectl create secret``) first; ``upgrade`` renders again and applies the difference,
keeping the values z2jh generated at install (its templates find them with ``lookup`` on a real
upgrade). :class:`Installation` is one release on a fresh cluster: the API server over TLS
with RBAC (the chart's Roles are what the hub may do) and metrics-server's pod metrics, the
kubelet stand-in running user pods from the single-user environment, and the proxy and hub pods run from their rendered Deployments
(``pods.PodProcess``), reachable through their Services (``network``).

Everything here runs inside the rehearsal's namespaces (see ``tests/deploy/__init__.py``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from tests.chart.helpers import NAMESPACE, find, manifests, render
from tests.harness.hub import http_status, wait_for
from tests.harness.kube import KubeHarness, resource_of

from .needs import HUB_ENV, PROXY_BIN, SINGLEUSER_ENV
from .network import SERVICE_HOST, ServicePorts, forwards, hosts_text, write_in_place
from .pods import Image, PodProcess

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
API_PORT = 443  # KUBERNETES_SERVICE_PORT, as on a cluster
# z2jh generates these into Secret `hub` and keeps them on upgrade (its templates' `lookup`)
GENERATED_HUB_KEYS_EXCEPT = {"values.yaml", "hub.db.password"}

# What the images give their containers (see images/hub/Dockerfile and z2jh's hub image:
# python:3.12-slim, user jovyan, WORKDIR /srv/jupyterhub).
HUB_IMAGE = Image(
    env={"PATH": f"{HUB_ENV / 'bin'}:{SYSTEM_PATH}", "LANG": "C.UTF-8", "HOME": "/home/jovyan"},
    workdir="/srv/jupyterhub",
    directories=("/home/jovyan", "/srv/jupyterhub"),
    host_paths=(str(HUB_ENV),),
)


def proxy_image() -> Image:
    node = shutil.which("node")
    path = [str(PROXY_BIN)] + ([str(Path(node).parent)] if node else []) + [SYSTEM_PATH]
    return Image(
        env={"PATH": ":".join(path), "LANG": "C.UTF-8", "HOME": "/tmp"},
        workdir="/",
        host_paths=(str(PROXY_BIN.parent), *([str(Path(node).parent)] if node else [])),
    )


def singleuser_environment(config_dir: Path) -> dict[str, str]:
    """The single-user image's environment for the kubelet's pods. The pods run as root here
    (not as the image's jovyan), which Jupyter Server refuses without ``allow_root``: a config
    directory on ``JUPYTER_CONFIG_PATH`` allows it, leaving the pod's command as KubeSpawner
    made it."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"allow_root": True}}))
    return {
        "PATH": f"{SINGLEUSER_ENV / 'bin'}:{SYSTEM_PATH}",
        "LANG": "C.UTF-8",
        "SHELL": "/bin/sh",
        "JUPYTER_CONFIG_PATH": str(config_dir),
    }


def claims_bound(cluster: KubeHarness, pod_spec: Mapping) -> None:
    """The scheduler's wait: a pod starts once every claim it mounts is bound."""
    for volume in pod_spec.get("volumes") or []:
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            wait_for(
                lambda claim=claim: (
                    (cluster.get("persistentvolumeclaims", claim) or {}).get("status", {}).get("phase")
                    == "Bound"
                ),
                30,
                message=f"claim {claim} to bind",
            )


class Release:
    """The chart installed as release ``workshop`` in namespace ``hackweek`` of ``cluster``."""

    def __init__(
        self, cluster: KubeHarness, values: Mapping, organizer_secrets: Mapping[str, Mapping[str, str]]
    ):
        self.cluster = cluster
        self.values = copy.deepcopy(dict(values))
        self.organizer_secrets = organizer_secrets
        self.objects: list[dict] = []
        self.revision = 0  # Helm's: 1 at install, one more at each upgrade

    def find(self, kind: str, name: str) -> dict:
        return find(self.objects, kind, name)

    def _store(self, obj: dict) -> None:
        res = resource_of(obj)
        name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace")  # e.g. Grafana's
        stored = self.cluster.get(res, name, namespace)
        if stored is None:
            self.cluster.create(res, obj, namespace)
            return
        obj = copy.deepcopy(obj)
        if "status" in stored:  # manifests carry no status: what controllers set stays
            obj["status"] = stored["status"]
        self.cluster.call(self.cluster.api.replace, res, name, obj, self.cluster._ns(namespace, res))

    def install(self) -> Release:
        # what the cluster's controllers and the organizer provide before `helm install`
        self.cluster.create("serviceaccounts", {"metadata": {"name": "default"}})
        for name, data in self.organizer_secrets.items():
            self.cluster.create(
                "secrets", {"metadata": {"name": name}, "type": "Opaque", "stringData": dict(data)}
            )
        self.revision = 1
        self.objects = manifests(render(self.values, self.revision))
        for obj in self.objects:
            self._store(obj)
        return self

    def _collect_garbage(self, owner_uid: str) -> None:
        """The garbage collector: pods owned by a deleted object (a Job's) are deleted with it."""
        for pod in self.cluster.list("pods"):
            if any(ref.get("uid") == owner_uid for ref in pod["metadata"].get("ownerReferences") or []):
                self.cluster.delete("pods", pod["metadata"]["name"])

    def upgrade(self, values: Mapping) -> Release:
        """``helm upgrade`` with new values: changed objects replaced, vanished ones deleted."""
        old = {(o["kind"], o["metadata"]["name"]): o for o in self.objects}
        self.values = copy.deepcopy(dict(values))
        self.revision += 1
        new = manifests(render(self.values, self.revision))
        hub_secret = old.get(("Secret", "hub"))
        for obj in new:
            if hub_secret is not None and (obj["kind"], obj["metadata"]["name"]) == ("Secret", "hub"):
                for key, value in (hub_secret.get("data") or {}).items():
                    if key not in GENERATED_HUB_KEYS_EXCEPT and key in obj.get("data", {}):
                        obj["data"][key] = value
        for obj in new:
            if old.get((obj["kind"], obj["metadata"]["name"])) != obj:  # helm leaves the rest alone
                self._store(obj)
        kept = {(o["kind"], o["metadata"]["name"]) for o in new}
        for (kind, name), obj in old.items():
            if (kind, name) not in kept:
                namespace = obj["metadata"].get("namespace")
                stored = self.cluster.get(resource_of(obj), name, namespace)
                self.cluster.delete(resource_of(obj), name, namespace)
                if stored is not None:
                    self._collect_garbage(stored["metadata"]["uid"])
        self.objects = new
        return self


class Installation:
    """One release of the chart on a fresh emulated cluster, with its hub and proxy running.

    ``Installation(root, values, organizer_secrets, hosts_file).start()`` ... ``.stop()``.
    ``hub_url`` is the public URL with z2jh's ``hub.baseUrl``; ``service_url(name, port)`` any
    Service's address."""

    def __init__(
        self,
        root: Path,
        values: Mapping,
        organizer_secrets: Mapping[str, Mapping[str, str]],
        hosts_file: Path,
    ):
        self.root = Path(root)
        self.values = values
        self.organizer_secrets = organizer_secrets
        self.hosts_file = hosts_file
        self.cluster: KubeHarness | None = None
        self.release: Release | None = None
        self.pods: dict[str, PodProcess] = {}
        self.ports: ServicePorts | None = None
        self.hub_starts = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> Installation:
        try:
            self.cluster = KubeHarness(
                self.root / "kube",
                namespace=NAMESPACE,
                host=SERVICE_HOST,
                port=API_PORT,
                tls=True,
                authorize=True,
                metrics_server=True,  # metrics.k8s.io: the user pods' memory and CPU
                pvc_bind_delay=0.2,
                post_start_timeout=60,
                python=str(SINGLEUSER_ENV / "bin" / "python"),
                base_env=singleuser_environment(self.root / "singleuser-jupyter-config"),
            ).start()
            self.release = Release(self.cluster, self.values, self.organizer_secrets).install()
            services = [o["metadata"]["name"] for o in self.release.objects if o["kind"] == "Service"]
            write_in_place(self.hosts_file, hosts_text(services, NAMESPACE))
            self.start_pod("proxy", proxy_image())
            self.start_pod("hub", HUB_IMAGE)
            self.ports = ServicePorts()
            wanted = forwards(
                [o for o in self.release.objects if o["kind"] == "Service"],
                [self.release.find("Deployment", name)["spec"]["template"] for name in self.pods],
            )
            self.cluster.run(self.ports.start(wanted))
            self.wait_hub(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_pod(self, deployment: str, image: Image) -> PodProcess:
        workload = self.release.find("Deployment", deployment)
        template = json.dumps(workload["spec"]["template"], sort_keys=True).encode()
        name = f"{deployment}-{hashlib.sha256(template).hexdigest()[:10]}-{secrets.token_hex(3)[:5]}"
        claims_bound(self.cluster, workload["spec"]["template"]["spec"])
        pod = PodProcess(
            self.cluster,
            workload,
            name=name,
            image=image,
            root=self.root / "pods",
            hosts_file=self.hosts_file,
        )
        self.pods[deployment] = pod
        pod.start()
        if deployment == "hub":
            self.hub_starts += 1
        return pod

    def restart_hub(self, timeout: float = 120.0) -> PodProcess:
        """``kubectl rollout restart deployment/hub``: the hub pod replaced (same volumes)."""
        old = self.pods.pop("hub")
        code = old.stop()
        if code not in (0, 128 + 15, -15):
            raise AssertionError(f"the hub exited with {code} when stopped:\n{old.log_text()[-3000:]}")
        pod = self.start_pod("hub", HUB_IMAGE)
        self.wait_hub(timeout)
        return pod

    def wait_hub(self, timeout: float) -> None:
        """Until the hub is ready: /hub/health answers through the proxy (z2jh's readiness
        probe), and the hub has finished starting (services up, routes added, signals handled)."""
        hub = self.pods["hub"]

        def gone():
            for name, pod in self.pods.items():
                if not pod.alive():
                    return f"the {name} pod exited:\n{pod.log_text()[-4000:]}"
            return None

        wait_for(
            lambda: http_status(f"{self.hub_url}/hub/health") == 200,
            timeout,
            interval=0.2,
            message="/hub/health",
            failed=gone,
        )
        wait_for(
            lambda: "JupyterHub is now running" in hub.log_text(),
            timeout,
            interval=0.2,
            message="the hub to start",
            failed=gone,
        )

    def stop(self) -> dict[str, int | None]:
        """Stop the hub, the proxy, the user pods and the API server; the pods' exit codes."""
        codes = {}
        for name in ("hub", "proxy"):
            if name in self.pods:
                codes[name] = self.pods.pop(name).stop()
        if self.ports is not None and self.cluster is not None:
            self.cluster.run(self.ports.stop())
            self.ports = None
        if self.cluster is not None:
            self.cluster.stop()
        return codes

    # ---- addresses -----------------------------------------------------------------------

    def service(self, name: str) -> dict:
        return self.release.find("Service", name)

    def service_url(self, name: str, port: int | None = None) -> str:
        port = port or self.service(name)["spec"]["ports"][0]["port"]
        return f"http://{name}" + ("" if port == 80 else f":{port}")

    @property
    def base_url(self) -> str:
        return ((self.values.get("jupyterhub") or {}).get("hub") or {}).get("baseUrl") or "/"

    @property
    def public_url(self) -> str:
        """proxy-public when it leads to the proxy; with z2jh's HTTPS it leads to autohttps
        (Traefik, not run here), and the proxy's own HTTP Service is used instead."""
        selector = self.service("proxy-public")["spec"].get("selector") or {}
        if selector.get("component") == "proxy":
            return self.service_url("proxy-public")
        return self.service_url("proxy-http")

    @property
    def hub_url(self) -> str:
        return self.public_url + self.base_url.rstrip("/")
