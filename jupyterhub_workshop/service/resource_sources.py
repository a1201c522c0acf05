"""Where each server's memory and CPU come from (IO around :mod:`.resources`).

- :class:`PodMetrics` (Kubernetes): ``metrics.k8s.io/v1beta1`` pod metrics, as ``kubectl top``
  reads them, with the real kubernetes_asyncio client; the pods themselves (KubeSpawner's
  ``component=singleuser-server`` label) say whose server each is (its ``hub.jupyter.org/username``
  and ``servername`` annotations, unescaped) and its memory limit (the containers' limits).
  Needs a Role for get/list of ``pods`` in ``metrics.k8s.io`` (the chart's); a cluster without
  metrics-server answers 404 for the group, and the page says so.
- :class:`ProcessTree` (the local twin): the local spawner notes each server's process id in
  a file (``WorkshopLocalSpawner.pid_dir``); memory is the resident set of that process and
  all its descendants (the kernels), CPU the cores used since the last look.

Why a file per server rather than the hub's spawner state: the state is readable only with
``admin:server_state``, which would hand this service every server's state (on Kubernetes too);
scanning ``/proc`` for ``JUPYTERHUB_USER`` finds kernels as well as servers and reads every
process on the machine on each page view. The spawner knows its process; it says so, once.
"""

from __future__ import annotations

import json
import os
import time

from .resources import Resources, Usage, pod_memory_limit, pod_usage

METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"
SERVER_PODS = "component=singleuser-server"
KUBE_TIMEOUT = 5.0


class ProcessTree:
    """Memory and CPU of local servers from their process trees (``pid_dir`` as the local
    spawner writes it)."""

    def __init__(self, pid_dir: str):
        self.pid_dir = pid_dir
        self._cpu: dict[tuple[int, float], tuple[float, float]] = {}  # (pid, started) -> (cpu s, at)

    def servers(self) -> list[dict]:
        try:
            names = os.listdir(self.pid_dir)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.pid_dir, name)) as f:
                    found.append(json.load(f))
            except (OSError, ValueError):
                continue  # being replaced or removed right now
        return found

    def usage_of(self, pid: int, limit: int | None) -> Usage | None:
        import psutil

        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
            started = root.create_time()
        except psutil.Error:
            return None
        memory, cpu_seconds = 0, 0.0
        for process in tree:
            try:
                memory += process.memory_info().rss
                times = process.cpu_times()
                cpu_seconds += times.user + times.system
            except psutil.Error:
                continue  # ended while being read
        now = time.time()
        key = (pid, started)
        seen, at = self._cpu.get(key, (0.0, started))
        self._cpu[key] = (cpu_seconds, now)
        cpu = max(0.0, cpu_seconds - seen) / (now - at) if now > at else None
        return Usage(memory, limit or None, cpu)

    def read(self) -> Resources:
        usage = {}
        for record in self.servers():
            try:
                found = self.usage_of(int(record["pid"]), record.get("mem_limit"))
            except (KeyError, TypeError, ValueError):
                continue
            if found is not None:
                usage[record["user"], record.get("server", "")] = found
        live = {(pid, started) for pid, started in self._cpu if _alive(pid)}
        self._cpu = {k: v for k, v in self._cpu.items() if k in live}
        return Resources(usage)

    async def usage(self) -> Resources:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.read)

    async def close(self) -> None:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def match_pods(pods: list[dict], metrics: list[dict]) -> dict:
    """Usage by (user, server name) from server pods and their PodMetrics (matched by name)."""
    by_name = {m["metadata"]["name"]: m for m in metrics}
    usage = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        user = annotations.get("hub.jupyter.org/username")
        found = by_name.get(meta.get("name"))
        if not user or found is None:
            continue
        memory, cpu = pod_usage(found.get("containers") or [])
        limit = pod_memory_limit((pod.get("spec") or {}).get("containers") or [])
        usage[user, annotations.get("hub.jupyter.org/servername", "")] = Usage(memory, limit, cpu)
    return usage


class PodMetrics:
    """Memory and CPU of the server pods in ``namespace`` from the metrics API."""

    def __init__(self, namespace: str, *, timeout: float = KUBE_TIMEOUT, **in_cluster):
        from .prewarm import DeploymentScale

        # the same configuration as pre-warm: the pod's own service account, else $KUBECONFIG
        # (``in_cluster``: environ, token_file, ca_file, for tests)
        self._config = DeploymentScale("", namespace, timeout=timeout, **in_cluster)
        self.namespace, self.timeout = namespace, timeout

    async def usage(self) -> Resources:
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException
        from kubernetes_asyncio.config.config_exception import ConfigException

        try:
            await self._config._apps()
            api = self._config._client
            metrics = await client.CustomObjectsApi(api).list_namespaced_custom_object(
                METRICS_GROUP, METRICS_VERSION, self.namespace, "pods", _request_timeout=self.timeout
            )
            response = await client.CoreV1Api(api).list_namespaced_pod(
                self.namespace,
                label_selector=SERVER_PODS,
                _preload_content=False,
                _request_timeout=self.timeout,
            )
            pods = json.loads(await response.read())
        except ApiException as e:
            if e.status == 404:
                return Resources({}, "metrics-server not available: the cluster has no metrics.k8s.io API")
            if e.status == 403:
                return Resources(
                    {},
                    f"Reading pod metrics was refused (403): the hub's service account needs get/list of "
                    f"pods in metrics.k8s.io in {self.namespace} (the chart's Role)",
                )
            return Resources({}, f"The metrics API answered {e.status} {e.reason}")
        except ConfigException as e:
            return Resources({}, f"No Kubernetes configuration for pod metrics: {e}")
        except (TimeoutError, OSError) as e:
            return Resources({}, f"The metrics API did not answer: {e or type(e).__name__}")
        return Resources(match_pods(pods.get("items") or [], metrics.get("items") or []))

    async def close(self) -> None:
        await self._config.close()
