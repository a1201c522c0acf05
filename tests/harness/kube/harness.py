"""The emulator hosted in a background thread, for sync tests; kubeconfig and KubeSpawner helpers."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import yaml

from .apiserver import KubeAPIServer
from .auth import UserInfo, admin_user, service_account_user
from .kubelet import Kubelet, PodRecord
from .pki import KUBERNETES_NAMES, ServerPKI, make_server_pki
from .resources import CLUSTER_SCOPED_PLURALS, as_resource


def write_kubeconfig(
    path: str | os.PathLike,
    server: str,
    *,
    namespace: str = "default",
    name: str = "kube-harness",
    certificate_authority: str | os.PathLike | None = None,
    token: str | None = None,
) -> Path:
    """Write a kubeconfig for ``server`` (e.g. ``http://127.0.0.1:PORT``); return its path.
    No auth unless ``token``; an ``https`` server is verified against ``certificate_authority``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cluster = {"server": server}
    if certificate_authority is not None:
        cluster["certificate-authority"] = str(certificate_authority)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token} if token else {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def reset_kubespawner() -> None:
    """For in-process KubeSpawner tests: stop its class-level reflectors and drop its cached
    config and clients, so the next spawner talks to the current emulator.  (Set ``KUBECONFIG``
    before ``kubernetes_asyncio`` is first imported, or ``c.KubeSpawner.k8s_api_host = kube.url``
    with some kubeconfig present; stop the hub before the harness.)"""
    from kubespawner import KubeSpawner, clients

    await KubeSpawner._stop_all_reflectors()
    clients.load_config.cache_clear()
    clients._client_cache.clear()


class KubeHarness:
    """Emulated API server + kubelet on a loopback port, served from a background thread.

    ``KubeHarness(root, pvc_bind_delay=1.0, mocksu=True).start()`` … ``.stop()``, or use it as a
    context manager.  ``env`` is what the hub process needs (``{"KUBECONFIG": path}``).
    All sync methods are thread-safe (they run in the harness's loop and return copies).

    Closer to a real API server, for clients that use a pod's in-cluster configuration:

    * ``tls=True`` serves HTTPS with a certificate from a CA made for this harness
      (``ca_file``; the certificate names ``host``, ``localhost`` and ``kubernetes.default.svc``
      and its variants, plus ``tls_hosts``);
    * ``authenticate=True`` answers 401 without a known bearer token; tokens come from
      :meth:`service_account_token` (a pod's service account) and the harness's own kubeconfig
      carries an admin token (``system:masters``);
    * ``authorize=True`` (implies ``authenticate``) answers 403 to what the stored RBAC objects do
      not allow (``auth``); ``api.refused`` lists every 401 and 403.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        namespace: str = "default",
        host: str = "127.0.0.1",
        port: int = 0,
        kubelet: bool = True,
        pvc_bind_delay: float | None = 0.0,
        mocksu: bool = False,
        post_start_timeout: float = 30.0,
        tls: bool = False,
        tls_hosts: tuple[str, ...] = (),
        authenticate: bool = False,
        authorize: bool = False,
        metrics_server: bool = False,
        **kubelet_options,
    ):
        self.root = Path(root)
        self.namespace = namespace
        self.host, self._port = host, port
        self.tls, self._tls_hosts = tls, tuple(tls_hosts)
        self.authorize = authorize
        self.metrics_server = metrics_server
        self.authenticate = authenticate or authorize
        self.pki: ServerPKI | None = None
        self.admin_token: str | None = None
        self._with_kubelet = kubelet
        self._kubelet_options = dict(
            pvc_bind_delay=pvc_bind_delay,
            mocksu=mocksu,
            post_start_timeout=post_start_timeout,
            **kubelet_options,
        )
        self.api: KubeAPIServer | None = None
        self.kubelet: Kubelet | None = None
        self.kubeconfig: Path | None = None
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: aiohttp.web.BaseRunner | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients verify the server with (``tls=True``), else None."""
        return self.pki.ca_file if self.pki else None

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    def start(self) -> KubeHarness:
        if self._thread is not None:
            raise RuntimeError("already started")
        self.root.mkdir(parents=True, exist_ok=True)
        if self.tls:
            self.pki = make_server_pki(
                self.root / "pki", [self.host, "localhost", *KUBERNETES_NAMES, *self._tls_hosts]
            )
        if self.authenticate:
            self.admin_token = secrets.token_urlsafe(32)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-harness", daemon=True)
        self._thread.start()
        try:
            self.run(self._astart(), timeout=30)
        except BaseException:
            self.stop()
            raise
        self.kubeconfig = write_kubeconfig(
            self.root / "kubeconfig.yaml",
            self.url,
            namespace=self.namespace,
            certificate_authority=self.ca_file,
            token=self.admin_token,
        )
        return self

    async def _astart(self) -> None:
        tokens = {self.admin_token: admin_user()} if self.authenticate else None
        self.api = KubeAPIServer(default_namespace=self.namespace, tokens=tokens, authorize=self.authorize)
        await self.api.__aenter__()
        server = aiohttp.web.Server(self.api, handler_cancellation=True)
        self._runner = aiohttp.web.ServerRunner(server, shutdown_timeout=2.0)
        await self._runner.setup()
        ssl_context = self.pki.server_context() if self.pki else None
        site = aiohttp.web.TCPSite(self._runner, self.host, self._port, ssl_context=ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self._with_kubelet:
            self.kubelet = Kubelet(self.api, self.root, **self._kubelet_options)
            self.kubelet.attach()
            if self.metrics_server:  # pod metrics of the kubelet's processes (metrics.k8s.io)
                self.api.pod_metrics = self.kubelet.pod_metrics

    async def _astop(self) -> None:
        if self.kubelet is not None:
            await self.kubelet.shutdown()
        if self.api is not None:
            self.api.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.api is not None and self.api.active:
            await self.api.__aexit__(None, None, None)

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._loop.is_running():
            try:
                self.run(self._astop(), timeout=60)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> KubeHarness:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- running things in the harness loop ------------------------------------------------

    def run(self, coro, timeout: float | None = 30):
        """Run a coroutine in the harness loop and return its result."""
        if self._loop is None:
            raise RuntimeError("the harness is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable, *args, **kwargs):
        """Run a plain function in the harness loop (where all state lives); return its result."""

        async def _call():
            return fn(*args, **kwargs)

        return self.run(_call())

    @contextlib.asynccontextmanager
    async def api_client(self):
        """A ``kubernetes_asyncio`` ``ApiClient`` for the caller's loop, configured from our kubeconfig."""
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            yield api

    # ---- credentials ------------------------------------------------------------------------

    def service_account_token(self, name: str, namespace: str | None = None) -> str:
        """A new bearer token for service account ``name`` (what the token controller mounts
        into a pod at /var/run/secrets/kubernetes.io/serviceaccount/token)."""
        if not self.authenticate:
            raise RuntimeError("started without authenticate=True: no tokens are checked")
        token = secrets.token_urlsafe(32)
        self.add_token(token, service_account_user(self._ns(namespace), name))
        return token

    def add_token(self, token: str, user: UserInfo) -> None:
        self.call(self.api.tokens.__setitem__, token, user)

    def refused(self) -> list[dict]:
        """Every request the API answered 401 or 403 (with ``authenticate``/``authorize``)."""
        return copy.deepcopy(self.call(lambda: self.api.refused))

    def requests_by_user(self) -> dict[str, int]:
        return self.call(lambda: dict(self.api.requests_by_user))

    def requests(self) -> list[tuple[str, str]]:
        """``(method, path with query)`` of the most recent requests served or refused (the
        last 200), oldest first."""
        return self.call(lambda: list(self.api.recent_requests))

    # ---- objects (copies) ---------------------------------------------------------------

    def _ns(self, namespace: str | None, res: Any = None) -> str | None:
        if res is not None and as_resource(res).plural in CLUSTER_SCOPED_PLURALS:
            return None  # cluster-scoped kinds live outside any namespace
        return self.namespace if namespace is None else namespace

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict | None:
        ns = self._ns(namespace, res)
        return copy.deepcopy(self.call(lambda: self.api.find(res, name, ns)))

    def list(
        self,
        res: Any,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict]:
        return copy.deepcopy(self.call(self.api.list, res, namespace, label_selector, field_selector))

    def create(self, res: Any, obj: dict, namespace: str | None = None) -> dict:
        return copy.deepcopy(self.call(self.api.create, res, obj, self._ns(namespace, res)))

    def patch(self, res: Any, name: str, patch: Any, namespace: str | None = None, **kw) -> dict:
        return copy.deepcopy(self.call(self.api.patch, res, name, patch, self._ns(namespace, res), **kw))

    def delete(
        self, res: Any, name: str, namespace: str | None = None, grace_period_seconds: int | None = None
    ) -> dict:
        return copy.deepcopy(
            self.call(
                self.api.delete,
                res,
                name,
                self._ns(namespace, res),
                grace_period_seconds=grace_period_seconds,
            )
        )

    # ---- kubelet views ------------------------------------------------------------------

    def _rec(self, name: str, namespace: str | None) -> PodRecord:
        if self.kubelet is None:
            raise RuntimeError("started without a kubelet")
        return self.kubelet.record(name, self._ns(namespace))

    def end_pod(self, name: str, reason: str, namespace: str | None = None) -> None:
        """End a running pod as the cluster would: ``OOMKilled`` or ``Evicted`` (whatever its
        ``restartPolicy``: see :meth:`oom_kill` for a container restarted in place)."""
        self.run(self.kubelet.end_pod(name, self._ns(namespace), reason))

    def oom_kill(self, name: str, namespace: str | None = None) -> None:
        """Kill the pod's container as its cgroup's OOM killer would; the kubelet restarts it in
        the same pod (``restartPolicy`` ``OnFailure``/``Always``, ``lastState.terminated.reason``
        ``OOMKilled``) or, with ``Never``, ends the pod."""
        self.run(self.kubelet.oom_kill(name, self._ns(namespace)))

    def pod(self, name: str, namespace: str | None = None) -> dict:
        """The kubelet's view of a pod: state, ip, port, pid, argv, env, cwd, home, mounts, post_start…"""
        return self.call(lambda: self._rec(name, namespace).snapshot())

    def pod_paths(self, name: str, namespace: str | None = None) -> dict[str, Path]:
        """``{mountPath: local directory}`` for the pod's first container, plus its HOME path."""

        def paths():
            rec = self._rec(name, namespace)
            result = dict(rec.mounts)
            if rec.home is not None:
                result.setdefault(rec.pod_home, rec.home)
            return result

        return self.call(paths)

    def translate(self, name: str, pod_path: str, namespace: str | None = None) -> Path:
        """The local directory/file that plays ``pod_path`` inside the pod."""
        return self.call(lambda: self._rec(name, namespace).translate(pod_path))

    def pod_home(self, name: str, namespace: str | None = None) -> Path:
        return self.call(lambda: self._rec(name, namespace).home)

    def pod_ip(self, name: str, namespace: str | None = None) -> str | None:
        return self.call(lambda: self._rec(name, namespace).ip)

    def pod_pid(self, name: str, namespace: str | None = None) -> int | None:
        return self.call(lambda: self._rec(name, namespace).pid)

    def pod_alive(self, name: str, namespace: str | None = None) -> bool:
        return self.call(lambda: self._rec(name, namespace).alive())

    def pod_log(self, name: str, namespace: str | None = None) -> str:
        path = self.call(lambda: self._rec(name, namespace).log_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def post_start(self, name: str, namespace: str | None = None) -> dict | None:
        """``{"command", "exit_code", "output", "timed_out", "seconds"}`` or ``None`` (no hook / not yet)."""
        return self.call(lambda: copy.deepcopy(self._rec(name, namespace).post_start))

    def events(self, pod_name: str | None = None, namespace: str | None = None) -> list[dict]:
        selector = f"involvedObject.name={pod_name}" if pod_name else None
        return self.list("events", self._ns(namespace), field_selector=selector)

    # ---- PVCs / settings ------------------------------------------------------------------

    def pvc_path(self, claim_name: str, sub_path: str | None = None) -> Path:
        return self.root / "volumes" / claim_name / (sub_path or "")

    def bind_pvc(self, name: str, namespace: str | None = None) -> dict:
        return copy.deepcopy(self.call(self.kubelet.bind_pvc, name, self._ns(namespace)))

    @property
    def pvc_bind_delay(self) -> float | None:
        return self.kubelet.pvc_bind_delay if self.kubelet else self._kubelet_options["pvc_bind_delay"]

    @pvc_bind_delay.setter
    def pvc_bind_delay(self, value: float | None) -> None:
        self._kubelet_options["pvc_bind_delay"] = value
        if self.kubelet is not None:
            self.call(setattr, self.kubelet, "pvc_bind_delay", value)

    @property
    def mocksu(self) -> bool:
        return self.kubelet.mocksu if self.kubelet else self._kubelet_options["mocksu"]

    @mocksu.setter
    def mocksu(self, value: bool) -> None:
        self._kubelet_options["mocksu"] = value
        if self.kubelet is not None:
            self.call(setattr, self.kubelet, "mocksu", value)

    def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 30.0,
        interval: float = 0.05,
        message: str = "condition",
    ):
        """Poll ``predicate`` (called in the test thread) until truthy."""
        from ..hub import wait_for

        return wait_for(predicate, timeout, interval, message)

    def wait_pod_phase(
        self, name: str, phase: str, timeout: float = 30.0, namespace: str | None = None
    ) -> dict:
        def check():
            pod = self.get("pods", name, namespace)
            return pod if pod and (pod.get("status") or {}).get("phase") == phase else None

        return self.wait_for(check, timeout, message=f"pod {name} to be {phase}")
