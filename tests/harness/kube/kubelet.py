"""The emulated kubelet: runs each pod's first container as a local process on its own loopback address."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import logging
import os
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import kmock

from .apiserver import KubeAPIServer
from .resources import EVENTS, PODS, PVCS, timestamp

log = logging.getLogger("kube-harness")

# a pod annotation "true"/"false" overrides Kubelet.mocksu for that pod
# (e.g. KubeSpawner's extra_annotations in one profile)
MOCKSU_ANNOTATION = "kube-harness/mocksu"
# the kubelet reports a pod's postStart result here (exit code, timeout, output tail)
POST_START_ANNOTATION = "kube-harness/post-start"

# the kubelet's CrashLoopBackOff: the first restart at once, then 10 s, 20 s, 40 s … up to 5 min
# (Kubelet.restart_backoff scales the base: tests that restart often want it small)
MAX_RESTART_BACKOFF = 300.0

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_vars(text: str, env: dict) -> str:
    """Kubernetes ``$(VAR)`` expansion: known vars expand, unknown stay, ``$$`` escapes."""

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, text)


def restarts(policy: str | None, exit_code: int) -> bool:
    """Whether the kubelet restarts a container that ended with ``exit_code`` under the pod's
    ``restartPolicy`` (Kubernetes' default, when unset, is ``Always``)."""
    policy = policy or "Always"
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def restart_delay(restart_count: int, base: float = 10.0) -> float:
    """Seconds before the ``restart_count``-th restart (1: the first): none for the first, then
    ``base`` doubling each time, at most MAX_RESTART_BACKOFF (the kubelet's CrashLoopBackOff)."""
    if restart_count <= 1:
        return 0.0
    return min(base * 2 ** (restart_count - 2), MAX_RESTART_BACKOFF)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _container_name(container: dict) -> str:
    return container.get("name", "notebook")


@dataclass
class PodRecord:
    """What the kubelet knows about one pod (kept after deletion until a pod of that name returns)."""

    namespace: str
    name: str
    uid: str
    root: Path  # root/pods/<pod>
    state: str = "pending"  # pending | waiting-for-volumes | starting | running | restarting | failed | exited | terminated
    ip: str | None = None
    port: int | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    home: Path | None = None
    pod_home: str = "/home/jovyan"
    mounts: dict[str, Path] = field(default_factory=dict)  # mountPath -> local dir
    ignored_env: list[str] = field(default_factory=list)  # valueFrom entries not resolved
    post_start: dict | None = None  # {"command", "exit_code", "output", "timed_out", "seconds"}
    exit_code: int | None = None
    pid: int | None = None
    started_at: float | None = None
    started_timestamp: str | None = None  # the container's startedAt, as its status reports it
    running_at: float | None = None
    proc: Any = field(default=None, repr=False)
    hook_proc: Any = field(default=None, repr=False)
    task: Any = field(default=None, repr=False)
    terminating: bool = False
    end_reason: str | None = None  # end_pod: OOMKilled or Evicted, as the cluster would report it
    kill_reason: str | None = None  # oom_kill: why the process died (the cgroup's OOM kill)
    restart_policy: str = "Always"  # the pod's spec.restartPolicy (Kubernetes' default)
    restart_count: int = 0
    last_state: dict = field(default_factory=dict)  # the container's lastState after a restart

    @property
    def log_path(self) -> Path:
        return self.root / "container.log"

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def homes(self) -> Path:
        """Where pod paths under HOME that no volume covers live: root/homes/<pod>."""
        return self.root.parent.parent / "homes" / self.name

    def translate(self, pod_path: str) -> Path:
        """Where a path inside the pod lives on the local disk."""
        pod_path = "/" + pod_path.strip("/")
        best = None
        for mount_path in self.mounts:
            mp = "/" + mount_path.strip("/")
            if _under(pod_path, mp):
                if best is None or len(mp) > len(best[0]):
                    best = (mp, self.mounts[mount_path])
        if best is not None:
            rest = pod_path[len(best[0]) :].strip("/")
            return best[1] / rest if rest else best[1]
        home = "/" + self.pod_home.strip("/")
        if _under(pod_path, home):
            rest = pod_path[len(home) :].strip("/")
            return self.homes / rest if rest else self.homes
        return self.rootfs / pod_path.strip("/")

    def under_mount(self, pod_path: str) -> bool:
        return any(_under(pod_path, mp) for mp in self.mounts)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def snapshot(self) -> dict:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "state": self.state,
            "ip": self.ip,
            "port": self.port,
            "pid": self.pid,
            "argv": list(self.argv),
            "env": dict(self.env),
            "cwd": self.cwd,
            "home": self.home,
            "pod_home": self.pod_home,
            "mounts": dict(self.mounts),
            "post_start": copy.deepcopy(self.post_start),
            "exit_code": self.exit_code,
            "alive": self.alive(),
            "log_path": self.log_path,
            "ignored_env": list(self.ignored_env),
            "restart_count": self.restart_count,
            "last_state": copy.deepcopy(self.last_state),
        }


@dataclass(frozen=True)
class VolumeMount:
    """One container volumeMount resolved to the local directories that play it."""

    mount_path: str
    volume: dict  # the pod's volume entry ({} if the pod does not declare it)
    source_dir: Path  # root/volumes/<source>
    local_dir: Path  # source_dir/<subPath>, what the mount shows


class IPPool:
    """127.0.A.B, A in 1..255, B in 1..254, handed out in order; freed ones reused after wrap-around."""

    SIZE = 255 * 254

    def __init__(self):
        self._next = 0
        self._free: list[int] = []
        self._used: set[int] = set()

    @staticmethod
    def address(index: int) -> str:
        return f"127.0.{1 + index // 254}.{1 + index % 254}"

    def allocate(self) -> str:
        if self._next < self.SIZE:
            index, self._next = self._next, self._next + 1
        elif self._free:
            index = min(self._free)
            self._free.remove(index)
        else:
            raise RuntimeError("out of loopback pod addresses")
        self._used.add(index)
        return self.address(index)

    def release(self, ip: str) -> None:
        a, b = (int(x) for x in ip.split(".")[2:])
        index = (a - 1) * 254 + (b - 1)
        if index in self._used:
            self._used.remove(index)
            self._free.append(index)

    @property
    def in_use(self) -> set[str]:
        return {self.address(i) for i in self._used}


class Kubelet:
    """Runs the emulator's pods as local processes (one node, ``kube-harness``).

    * ``pvc_bind_delay``: seconds until a new PVC is ``Bound`` (``None`` = never; bind by hand
      with :meth:`bind_pvc`).  Pods mounting an unbound or missing PVC stay ``Pending`` with a
      ``FailedScheduling`` event and their process is not started until it binds.
    * ``mocksu``: run ``python -m jupyterhub.tests.mocksu`` (a minimal single-user stand-in that
      listens on ``JUPYTERHUB_SERVICE_URL``) instead of the container's command; a pod annotation
      ``kube-harness/mocksu: "true"|"false"`` overrides it per pod.
    * ``image_entrypoint``/``image_cmd``: what "the image" supplies when the container has no
      ``command``/``args`` (default: no entrypoint, ``python -m jupyterhub.singleuser``);
      KubeSpawner puts ``Spawner.cmd + args`` into ``args``.
    * ``post_start_timeout``: seconds a ``postStart`` exec hook may run (a timeout is a failure).
    * ``termination_grace_cap``: upper bound on the SIGTERM→SIGKILL wait at pod deletion.
    * ``restart_backoff``: the CrashLoopBackOff base in seconds (see :func:`restart_delay`).

    A container whose process ends is restarted in the same pod (same uid and IP) as the pod's
    ``restartPolicy`` says (``Always``, the default; ``OnFailure`` for a non-zero exit), its
    ``restartCount`` incremented and ``lastState.terminated`` saying why (``Error``,
    ``Completed``, or ``OOMKilled`` after :meth:`oom_kill`); with ``Never`` the pod ends.
    """

    def __init__(
        self,
        api: KubeAPIServer,
        root: Path,
        *,
        pvc_bind_delay: float | None = 0.0,
        mocksu: bool = False,
        post_start_timeout: float = 30.0,
        default_port: int = 8888,
        default_home: str = "/home/jovyan",
        termination_grace_cap: float = 10.0,
        python: str = sys.executable,
        image_entrypoint: list[str] | None = None,
        image_cmd: list[str] | None = None,
        base_env: dict[str, str] | None = None,
        emit_events: bool = True,
        node_name: str = "kube-harness",
        restart_backoff: float = 10.0,
    ):
        self.api = api
        self.root = Path(root)
        self.pvc_bind_delay = pvc_bind_delay
        self.mocksu = mocksu
        self.post_start_timeout = post_start_timeout
        self.default_port = default_port
        self.default_home = default_home
        self.termination_grace_cap = termination_grace_cap
        self.python = python
        # what "the image" would supply: no ENTRYPOINT (tini just execs its arguments) and the
        # single-user server as CMD; Kubernetes' command/args rules apply on top
        self.image_entrypoint = list(image_entrypoint or [])
        self.image_cmd = list(image_cmd or [python, "-m", "jupyterhub.singleuser"])
        self.emit_events = emit_events
        self.node_name = node_name
        self.restart_backoff = restart_backoff
        self.base_env = self._default_base_env(python) if base_env is None else base_env
        self.pods: dict[tuple[str, str], PodRecord] = {}
        self.ips = IPPool()
        self._pvc_cond: asyncio.Condition | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task] = set()
        self._closing = False

    @staticmethod
    def _default_base_env(python: str) -> dict[str, str]:
        """A container does not inherit the test's environment: only locale, time zone, paths,
        and ``python``'s bin directory first on PATH (so its console scripts are found)."""
        env = {
            k: os.environ[k]
            for k in ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "TMPDIR")
            if k in os.environ
        }
        env["PATH"] = os.pathsep.join(
            [str(Path(python).parent), env.get("PATH", "/usr/local/bin:/usr/bin:/bin")]
        )
        env.setdefault("LANG", "C.UTF-8")
        return env

    # ---- wiring ------------------------------------------------------------------------

    def attach(self) -> None:
        """Subscribe to the API server (call inside its event loop)."""
        self._pvc_cond = asyncio.Condition()
        self.api.add_listener(self._on_change)
        self.api.deletion_hooks["pods"] = self._terminate_pod
        for obj in self.api.list(PVCS):
            self._on_change("ADDED", PVCS, obj)
        for obj in self.api.list(PODS):
            self._on_change("ADDED", PODS, obj)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_change(self, event_type: str, res: kmock.resource, obj: dict) -> None:
        if self._closing:
            return
        if res == PVCS:
            self._on_pvc_change(event_type, obj)
        elif res == PODS:
            self._on_pod_change(event_type, obj)

    def _on_pvc_change(self, event_type: str, obj: dict) -> None:
        meta = obj["metadata"]
        if event_type == "ADDED" and (obj.get("status") or {}).get("phase") != "Bound":
            if self.pvc_bind_delay is not None:
                handle = asyncio.get_running_loop().call_later(
                    max(0.0, self.pvc_bind_delay),
                    self._bind_if_same,
                    meta.get("namespace"),
                    meta["name"],
                    meta["uid"],
                )
                self._timers.append(handle)
        # pods waiting for their volumes re-check on every PVC change
        self._spawn(self._notify_pvc())

    def _on_pod_change(self, event_type: str, obj: dict) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace"), meta["name"])
        node = (obj.get("spec") or {}).get("nodeName")
        if node and node != self.node_name:
            return  # bound to another node: its kubelet runs it (as the deployment rehearsal's Jobs)
        rec = self.pods.get(key)
        if event_type == "ADDED" and (rec is None or rec.uid != meta["uid"]):
            rec = PodRecord(namespace=key[0], name=key[1], uid=meta["uid"], root=self.root / "pods" / key[1])
            self.pods[key] = rec
            rec.task = self._spawn(self._run_pod(rec, obj))
        elif event_type == "DELETED" and rec is not None and rec.uid == meta["uid"] and not rec.terminating:
            # removed without the graceful path (e.g. a test removed it directly)
            self._spawn(self._terminate_pod(obj, 0))

    async def _notify_pvc(self) -> None:
        async with self._pvc_cond:
            self._pvc_cond.notify_all()

    # ---- PVCs --------------------------------------------------------------------------

    def _bind_if_same(self, namespace: str | None, name: str, uid: str) -> None:
        """The delayed bind: skip it if the claim was deleted (or replaced) meanwhile."""
        obj = self.api.find(PVCS, name, namespace)
        if obj is not None and obj["metadata"]["uid"] == uid:
            self.bind_pvc(name, namespace)

    def bind_pvc(self, name: str, namespace: str = "default") -> dict:
        """Mark a PVC ``Bound`` now (creates its directory)."""
        obj = self.api.get(PVCS, name, namespace)
        if (obj.get("status") or {}).get("phase") == "Bound":
            return obj
        spec = obj.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage") or "1Gi"
        self.volume_dir(name).mkdir(parents=True, exist_ok=True)
        return self.api.patch(
            PVCS,
            name,
            {
                "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
                "spec": {"volumeName": f"pvc-{obj['metadata']['uid']}"},
                "status": {
                    "phase": "Bound",
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "capacity": {"storage": storage},
                },
            },
            namespace,
        )

    def volume_dir(self, source_name: str, sub_path: str | None = None) -> Path:
        path = self.root / "volumes" / source_name
        return path / sub_path.strip("/") if sub_path else path

    def _pvc_bound(self, namespace: str, claim: str) -> bool:
        obj = self.api.find(PVCS, claim, namespace)
        return obj is not None and (obj.get("status") or {}).get("phase") == "Bound"

    # ---- talking to the API server -------------------------------------------------------

    def _live_pod(self, rec: PodRecord) -> dict | None:
        """The pod object this record runs, or ``None`` once it (or that incarnation) is gone."""
        obj = self.api.find(PODS, rec.name, rec.namespace)
        if obj is None or obj["metadata"]["uid"] != rec.uid:
            return None
        return obj

    def _patch_pod(self, rec: PodRecord, patch: dict, subresource: str | None = "status") -> None:
        if self._live_pod(rec) is None:
            return
        self.api.patch(PODS, rec.name, patch, rec.namespace, subresource=subresource)

    def _event(
        self,
        rec: PodRecord,
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = "kubelet",
        container: str | None = None,
    ) -> None:
        if not self.emit_events:
            return
        now = timestamp()
        involved = {
            "kind": "Pod",
            "namespace": rec.namespace,
            "name": rec.name,
            "uid": rec.uid,
            "apiVersion": "v1",
        }
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        self.api.create(
            EVENTS,
            {
                "metadata": {"name": f"{rec.name}.{uuid.uuid4().hex[:16]}", "namespace": rec.namespace},
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": type_,
                "source": {"component": component, "host": self.node_name},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "eventTime": None,
                "count": 1,
                "reportingComponent": component,
                "reportingInstance": self.node_name,
            },
            rec.namespace,
        )

    @staticmethod
    def _container_status(
        container: dict, *, ready: bool, state: dict, started: bool, rec: PodRecord | None = None
    ) -> dict:
        return {
            "name": _container_name(container),
            "ready": ready,
            "started": started,
            "restartCount": rec.restart_count if rec is not None else 0,
            "image": container.get("image", "kube-harness/local"),
            "imageID": "",
            "containerID": f"harness://{uuid.uuid4().hex[:12]}",
            "state": state,
            "lastState": copy.deepcopy(rec.last_state) if rec is not None else {},
        }

    def _mark_failed(self, rec: PodRecord, container: dict, terminated: dict, **status) -> None:
        """Report the container as terminated and the pod as ``Failed``."""
        self._patch_pod(
            rec,
            {
                "status": {
                    "phase": "Failed",
                    **status,
                    "containerStatuses": [
                        self._container_status(
                            container, ready=False, started=False, state={"terminated": terminated}, rec=rec
                        )
                    ],
                }
            },
        )

    # ---- running a pod -------------------------------------------------------------------

    async def _run_pod(self, rec: PodRecord, pod: dict) -> None:
        """A kubelet bug fails the pod visibly (event + ``Failed``) instead of leaving it Pending."""
        try:
            await self._run_pod_steps(rec, pod)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("kubelet failed to run pod %s", rec.name)
            rec.state = "failed"
            with contextlib.suppress(Exception):
                self._event(rec, "Failed", f"kube-harness kubelet error: {e}", "Warning")
                self._patch_pod(
                    rec, {"status": {"phase": "Failed", "reason": "KubeletError", "message": str(e)}}
                )

    async def _run_pod_steps(self, rec: PodRecord, pod: dict) -> None:
        spec = pod.get("spec") or {}
        container = (spec.get("containers") or [{}])[0]
        rec.restart_policy = spec.get("restartPolicy") or "Always"

        await self._wait_for_volumes(rec, spec)
        if self._live_pod(rec) is None:
            return
        self._prepare_sandbox(rec, container)
        mounts = self._resolve_volumes(rec, spec, container)
        rec.mounts = self._materialize_volumes(rec, mounts)
        pod_env = self._declared_env(rec, container)
        self._place_home(rec, container, pod_env)
        rec.env = self._build_environment(rec, pod_env)
        rec.argv = self._command(pod, container, pod_env)
        self._mark_scheduled(rec, container)
        if self._live_pod(rec) is None or rec.terminating:
            return

        if not await self._start_process(rec, container):
            return
        if not await self._post_start(rec, container):
            return
        if rec.proc.returncode is None:
            self._mark_running(rec, container)
        await self._watch_for_exit(rec, container)

    async def _wait_for_volumes(self, rec: PodRecord, spec: dict) -> None:
        """Scheduling: a pod does not start until every PVC it mounts exists and is Bound."""
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in spec.get("volumes") or []
            if v.get("persistentVolumeClaim")
        ]
        if not claims:
            return
        announced = False
        async with self._pvc_cond:
            while True:
                unbound = [c for c in claims if not self._pvc_bound(rec.namespace, c)]
                if not unbound:
                    return
                if not announced:
                    announced = True
                    self._announce_unschedulable(rec, unbound)
                await self._pvc_cond.wait()

    def _announce_unschedulable(self, rec: PodRecord, unbound: list[str]) -> None:
        """What KubeSpawner shows while waiting: the scheduler's condition and event."""
        rec.state = "waiting-for-volumes"
        missing = [c for c in unbound if self.api.find(PVCS, c, rec.namespace) is None]
        message = (
            f'persistentvolumeclaim "{missing[0]}" not found'
            if missing
            else "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        )
        self._patch_pod(
            rec,
            {
                "status": {
                    "phase": "Pending",
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": message,
                            "lastTransitionTime": timestamp(),
                            "lastProbeTime": None,
                        }
                    ],
                }
            },
        )
        self._event(rec, "FailedScheduling", message, "Warning", component="default-scheduler")

    def _prepare_sandbox(self, rec: PodRecord, container: dict) -> None:
        """The pod's own address and port, and its directory on disk."""
        rec.state = "starting"
        rec.ip = self.ips.allocate()
        ports = container.get("ports") or []
        rec.port = (
            int(ports[0]["containerPort"]) if ports and ports[0].get("containerPort") else self.default_port
        )
        rec.root.mkdir(parents=True, exist_ok=True)
        rec.rootfs.mkdir(parents=True, exist_ok=True)

    def _resolve_volumes(self, rec: PodRecord, spec: dict, container: dict) -> list[VolumeMount]:
        """Which local directory plays each of the container's volumeMounts."""
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        mounts = []
        for vm in container.get("volumeMounts") or []:
            volume = volumes.get(vm["name"], {})
            source = self._volume_source(rec, vm["name"], volume)
            mounts.append(
                VolumeMount(
                    mount_path=vm["mountPath"],
                    volume=volume,
                    source_dir=self.volume_dir(source),
                    local_dir=self.volume_dir(source, vm.get("subPath")),
                )
            )
        return mounts

    @staticmethod
    def _volume_source(rec: PodRecord, mount_name: str, volume: dict) -> str:
        """The name of a volume's directory under root/volumes: shared by every pod that mounts
        the same claim, ConfigMap, Secret or host path; private to the pod for an emptyDir."""
        if "persistentVolumeClaim" in volume:
            return volume["persistentVolumeClaim"]["claimName"]
        if "configMap" in volume:
            return f"configmap-{volume['configMap'].get('name', mount_name)}"
        if "secret" in volume:
            return f"secret-{volume['secret'].get('secretName', mount_name)}"
        if "hostPath" in volume:
            return "hostpath-" + volume["hostPath"].get("path", "").strip("/").replace("/", "_")
        if "emptyDir" in volume:
            return f"emptydir-{rec.name}-{mount_name}"
        return mount_name

    def _materialize_volumes(self, rec: PodRecord, mounts: list[VolumeMount]) -> dict[str, Path]:
        """Create the mounted directories and fill ConfigMap/Secret volumes; ``{mountPath: dir}``."""
        result: dict[str, Path] = {}
        for mount in mounts:
            mount.local_dir.mkdir(parents=True, exist_ok=True)
            self._write_volume_keys(rec, mount.volume, mount.source_dir)
            result[mount.mount_path] = mount.local_dir
        return result

    def _write_volume_keys(self, rec: PodRecord, volume: dict, local: Path) -> None:
        """Write configMap/secret keys as files, as the real kubelet does."""
        if "configMap" in volume:
            obj = self.api.find("configmaps", volume["configMap"].get("name", ""), rec.namespace)
            if obj:
                for key, value in (obj.get("data") or {}).items():
                    (local / key).write_text(value)
                for key, value in (obj.get("binaryData") or {}).items():
                    (local / key).write_bytes(base64.b64decode(value))
        elif "secret" in volume:
            obj = self.api.find("secrets", volume["secret"].get("secretName", ""), rec.namespace)
            if obj:
                for key, value in (obj.get("data") or {}).items():
                    (local / key).write_bytes(base64.b64decode(value))
                for key, value in (obj.get("stringData") or {}).items():
                    (local / key).write_text(value)

    @staticmethod
    def _declared_env(rec: PodRecord, container: dict) -> dict[str, str]:
        """The container's ``env`` with ``$(VAR)`` expanded; ``valueFrom`` entries are skipped
        (and listed in ``rec.ignored_env``) because nothing here resolves them."""
        pod_env: dict[str, str] = {}
        for entry in container.get("env") or []:
            if "valueFrom" in entry and "value" not in entry:
                rec.ignored_env.append(entry["name"])
                continue
            pod_env[entry["name"]] = expand_vars(str(entry.get("value") or ""), pod_env)
        return pod_env

    def _place_home(self, rec: PodRecord, container: dict, pod_env: dict[str, str]) -> None:
        """Pick the pod's HOME and working directory and create their local directories."""
        rec.pod_home = pod_env.get("HOME") or container.get("workingDir") or self.default_home
        rec.home = rec.translate(rec.pod_home)
        rec.home.mkdir(parents=True, exist_ok=True)
        rec.cwd = rec.translate(container["workingDir"]) if container.get("workingDir") else rec.home
        rec.cwd.mkdir(parents=True, exist_ok=True)

    def _build_environment(self, rec: PodRecord, pod_env: dict[str, str]) -> dict[str, str]:
        """The process environment: the pod's env with paths and URLs made to work on this host."""
        service_url = pod_env.get("JUPYTERHUB_SERVICE_URL")
        if service_url:
            parts = urlsplit(service_url)
            service_url = urlunsplit(
                ("http", f"{rec.ip}:{rec.port}", parts.path, parts.query, parts.fragment)
            )
        else:
            service_url = f"http://{rec.ip}:{rec.port}"
        # processes cannot really see mounts at their pod paths: an env value naming a path
        # inside a mount is handed over as the mount's local directory instead
        mounted_env = {
            key: str(rec.translate(value))
            for key, value in pod_env.items()
            if key != "HOME" and value.startswith("/") and rec.under_mount(value)
        }
        return {
            **self.base_env,
            "HOSTNAME": rec.name,
            **pod_env,
            **mounted_env,
            "HOME": str(rec.home),
            "JUPYTERHUB_SERVICE_URL": service_url,
            "KUBE_HARNESS_POD_NAME": rec.name,
            "KUBE_HARNESS_POD_IP": rec.ip,
            "KUBE_HARNESS_ROOTFS": str(rec.rootfs),
            "KUBE_HARNESS_MOUNTS": json.dumps({k: str(v) for k, v in rec.mounts.items()}),
        }

    def _command(self, pod: dict, container: dict, pod_env: dict[str, str]) -> list[str]:
        """The argv to run: the mocksu stand-in if asked for, else what Kubernetes would exec."""
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        mocksu = {"true": True, "false": False}.get(
            str(annotations.get(MOCKSU_ANNOTATION, "")).lower(), self.mocksu
        )
        if mocksu:
            return [self.python, "-m", "jupyterhub.tests.mocksu"]
        # Kubernetes: command replaces the image ENTRYPOINT, args replace its CMD, and a
        # command without args drops CMD (KubeSpawner puts its cmd in args)
        command = [expand_vars(str(a), pod_env) for a in container.get("command") or []]
        args = [expand_vars(str(a), pod_env) for a in container.get("args") or []]
        if command:
            return command + args
        return self.image_entrypoint + (args or self.image_cmd)

    def _mark_scheduled(self, rec: PodRecord, container: dict) -> None:
        """Publish the node, the pod IP and ``ContainerCreating``, as the scheduler and kubelet do."""
        self._patch_pod(
            rec,
            {
                "spec": {"nodeName": self.node_name},
                "status": {
                    "phase": "Pending",
                    "hostIP": "127.0.0.1",
                    "podIP": rec.ip,
                    "podIPs": [{"ip": rec.ip}],
                    "startTime": timestamp(),
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "True",
                            "lastTransitionTime": timestamp(),
                            "lastProbeTime": None,
                        }
                    ],
                    "containerStatuses": [
                        self._container_status(
                            container,
                            ready=False,
                            started=False,
                            state={"waiting": {"reason": "ContainerCreating"}},
                        )
                    ],
                },
            },
            subresource=None,
        )
        self._event(
            rec,
            "Scheduled",
            f"Successfully assigned {rec.namespace}/{rec.name} to {self.node_name}",
            component="default-scheduler",
        )

    async def _start_process(self, rec: PodRecord, container: dict) -> bool:
        """Start the container's process in its own session (so deletion can kill the whole
        group); output goes to container.log.  ``False`` if it could not start (pod ``Failed``)."""
        cname = _container_name(container)
        with open(rec.log_path, "ab") as logf:
            try:
                rec.proc = await asyncio.create_subprocess_exec(
                    *rec.argv,
                    cwd=str(rec.cwd),
                    env=rec.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=logf,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as e:
                rec.state = "failed"
                rec.exit_code = 128
                self._event(
                    rec,
                    "Failed",
                    f"Error: failed to start container {cname!r}: {e}",
                    "Warning",
                    container=cname,
                )
                self._mark_failed(
                    rec,
                    container,
                    {
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": str(e),
                        "startedAt": None,
                        "finishedAt": timestamp(),
                    },
                )
                return False
        rec.pid = rec.proc.pid
        rec.started_at = time.monotonic()
        rec.started_timestamp = timestamp()
        self._event(rec, "Started", f"Started container {cname}", container=cname)
        return True

    async def _post_start(self, rec: PodRecord, container: dict) -> bool:
        """Run the postStart hook next to the process: the container is not Running until it is
        done, and a failing hook kills the container.  ``False`` if the pod should go no further."""
        hook = (container.get("lifecycle") or {}).get("postStart") or {}
        if not hook:
            return True
        result = await self._exec_post_start(rec, hook)
        rec.post_start = result
        summary = {
            "exitCode": result["exit_code"],
            "timedOut": result["timed_out"],
            "output": result["output"][-1000:],
        }
        self._patch_pod(
            rec, {"metadata": {"annotations": {POST_START_ANNOTATION: json.dumps(summary)}}}, subresource=None
        )
        if rec.terminating or self._live_pod(rec) is None:
            return False
        if result["exit_code"] == 0:
            return True
        await self._kill(rec, 0)
        rec.state = "failed"
        rec.exit_code = 137
        cname = _container_name(container)
        why = "timed out" if result["timed_out"] else f"exited with {result['exit_code']}"
        message = (
            f"Exec lifecycle hook ({result['command']}) for Container {cname!r} in Pod "
            f"{rec.name!r} failed - error: command {why}, message: {result['output'][-500:]!r}"
        )
        self._event(rec, "FailedPostStartHook", message, "Warning", container=cname)
        self._mark_failed(
            rec,
            container,
            {
                "exitCode": 137,
                "reason": "PostStartHookError",
                "message": message,
                "startedAt": rec.started_timestamp,
                "finishedAt": timestamp(),
            },
            conditions=[
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            ],
        )
        return False

    async def _exec_post_start(self, rec: PodRecord, hook: dict) -> dict:
        """Run an ``exec`` hook with the container's cwd and env; only ``exec`` hooks are emulated."""
        command = ((hook.get("exec") or {}).get("command")) or []
        t0 = time.monotonic()
        if not command:
            return {
                "command": hook,
                "exit_code": None,
                "output": "only exec postStart hooks are emulated",
                "timed_out": False,
                "seconds": 0.0,
                "unsupported": True,
            }
        timed_out = False
        try:
            rec.hook_proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=str(rec.cwd),
                env=rec.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            return {
                "command": command,
                "exit_code": 126,
                "output": str(e),
                "timed_out": False,
                "seconds": time.monotonic() - t0,
            }
        proc = rec.hook_proc
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.post_start_timeout)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            out = b""
        rec.hook_proc = None
        code = proc.returncode if not timed_out else 137
        return {
            "command": command,
            "exit_code": code,
            "output": (out or b"").decode(errors="replace"),
            "timed_out": timed_out,
            "seconds": time.monotonic() - t0,
        }

    def _mark_running(self, rec: PodRecord, container: dict) -> None:
        """Ready as soon as the process runs and postStart succeeded (no readiness probes)."""
        rec.state = "running"
        rec.running_at = time.monotonic()
        self._patch_running(rec, container, {"running": {"startedAt": rec.started_timestamp}})

    def _patch_running(self, rec: PodRecord, container: dict, state: dict) -> None:
        """The pod ``Running``, its container in ``state``: ready when running, else (waiting
        to restart) not ready."""
        now = timestamp()
        ready = "running" in state
        self._patch_pod(
            rec,
            {
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {
                            "type": t,
                            "status": "True" if ready or t in ("Initialized", "PodScheduled") else "False",
                            "lastTransitionTime": now,
                            "lastProbeTime": None,
                        }
                        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
                    ],
                    "containerStatuses": [
                        self._container_status(container, ready=ready, started=ready, state=state, rec=rec)
                    ],
                }
            },
        )

    async def end_pod(self, name: str, namespace: str, reason: str) -> None:
        """End a running pod as the cluster would for ``reason``: ``OOMKilled`` (the container
        killed, exit 137, its termination reason OOMKilled) or ``Evicted`` (the pod Failed with
        status.reason Evicted). The pod ends whatever its ``restartPolicy`` (an eviction does;
        for an out-of-memory kill this is a pod that cannot restart, e.g. ``Never``: see
        :meth:`oom_kill` for what the kubelet does with KubeSpawner's ``OnFailure``). The pod
        object stays, as on a real node, until deleted."""
        rec = self.pods[(namespace, name)]
        rec.end_reason = reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec.proc.pid, signal.SIGKILL)

    async def oom_kill(self, name: str, namespace: str) -> None:
        """What the kernel does when the container's cgroup reaches its memory limit (cgroup v2:
        the whole container): SIGKILL its processes; the kubelet then reads ``OOMKilled`` from
        the cgroup and restarts the container in place or ends the pod, as ``restartPolicy``
        says."""
        rec = self.pods[(namespace, name)]
        if not rec.alive():
            raise RuntimeError(f"pod {namespace}/{name} has no running container to kill")
        rec.kill_reason = "OOMKilled"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec.proc.pid, signal.SIGKILL)

    async def _watch_for_exit(self, rec: PodRecord, container: dict) -> None:
        """A process that ends by itself (not deleted) is restarted in the same pod when its
        ``restartPolicy`` says so; otherwise it ends the pod."""
        while True:
            code = await rec.proc.wait()
            if rec.terminating:
                return
            if code < 0:  # killed by a signal: the container runtime reports 128 + its number
                code = 128 - code
            killed, rec.kill_reason = rec.kill_reason, None
            if killed == "OOMKilled":
                code = 137
            if rec.end_reason is None and restarts(rec.restart_policy, code):
                reason = killed or ("Completed" if code == 0 else "Error")
                if not await self._restart(rec, container, code, reason):
                    return
                continue
            break
        ended = rec.end_reason or killed  # end_pod or oom_kill: what the cluster would say
        if ended == "OOMKilled":
            code = 137
        rec.exit_code = code
        rec.state = "exited"
        cname = _container_name(container)
        self._event(
            rec,
            "BackOff" if code else "Completed",
            f"Container {cname} exited with {code}",
            "Warning" if code else "Normal",
            container=cname,
        )
        self._patch_pod(
            rec,
            {
                "status": {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    **(
                        {"reason": "Evicted", "message": "The node was low on resource: memory."}
                        if ended == "Evicted"
                        else {}
                    ),
                    "conditions": [
                        {"type": "Ready", "status": "False", "reason": "PodCompleted"},
                        {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"},
                        {"type": "PodScheduled", "status": "True"},
                    ],
                    "containerStatuses": [
                        self._container_status(
                            container,
                            ready=False,
                            started=False,
                            state={
                                "terminated": {
                                    "exitCode": code,
                                    "reason": "OOMKilled"
                                    if ended == "OOMKilled"
                                    else ("Completed" if code == 0 else "Error"),
                                    "startedAt": rec.started_timestamp,
                                    "finishedAt": timestamp(),
                                }
                            },
                            rec=rec,
                        )
                    ],
                }
            },
        )

    async def _restart(self, rec: PodRecord, container: dict, code: int, reason: str) -> bool:
        """Restart the ended container in its pod (same uid and IP): ``restartCount`` up,
        ``lastState.terminated`` saying why, after the CrashLoopBackOff delay. The pod stays
        ``Running`` and its container ``waiting`` meanwhile, never ``terminated``: KubeSpawner's
        poll takes a terminated notebook container for a stopped server. ``False`` when the pod
        should go no further (deleted meanwhile, or the new process failed)."""
        cname = _container_name(container)
        rec.state = "restarting"
        rec.restart_count += 1
        rec.last_state = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": rec.started_timestamp,
                "finishedAt": timestamp(),
            }
        }
        delay = restart_delay(rec.restart_count, self.restart_backoff)
        waiting = {"reason": "CrashLoopBackOff" if delay else "ContainerCreating"}
        if delay:
            waiting["message"] = f"back-off {delay:g}s restarting failed container={cname} pod={rec.name}"
            self._event(rec, "BackOff", "Back-off restarting failed container", "Warning", container=cname)
        self._patch_running(rec, container, {"waiting": waiting})
        if delay:
            await asyncio.sleep(delay)  # the kubelet's back-off, not a test's synchronisation
        if rec.terminating or self._live_pod(rec) is None:
            return False
        if not await self._start_process(rec, container):
            return False
        if not await self._post_start(rec, container):
            return False
        if rec.proc.returncode is None:
            self._mark_running(rec, container)
        return True

    # ---- stopping pods -------------------------------------------------------------------

    async def _kill(self, rec: PodRecord, grace: float) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` (capped) seconds; reap it."""
        for proc in (rec.hook_proc, rec.proc):
            if proc is None or proc.returncode is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), max(0.0, min(grace, self.termination_grace_cap)) or 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            # leftovers in the group (children that ignored SIGTERM)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _terminate_pod(self, obj: dict, grace: int | None) -> None:
        """The API server's deletion hook: stop the container, free the address."""
        meta = obj["metadata"]
        rec = self.pods.get((meta.get("namespace"), meta["name"]))
        if rec is None or rec.uid != meta["uid"]:
            return
        rec.terminating = True
        if rec.proc is not None and rec.proc.returncode is None:
            self._event(rec, "Killing", f"Stopping container {rec.name}", container=None)
        await self._kill(rec, float(grace or 0))
        task = rec.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._kill(rec, 0)  # in case the task started something while being cancelled
        if rec.ip:
            self.ips.release(rec.ip)
        if rec.proc is not None:
            rec.exit_code = rec.proc.returncode
        rec.state = "terminated"

    async def shutdown(self) -> None:
        """Kill every pod process (used when the harness stops)."""
        self._closing = True
        for handle in self._timers:
            handle.cancel()
        for rec in list(self.pods.values()):
            rec.terminating = True
            await self._kill(rec, 0)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for rec in self.pods.values():
            await self._kill(rec, 0)
            rec.state = "terminated"

    # ---- metrics-server ----------------------------------------------------------------

    def pod_metrics(self, pod: dict) -> list | None:
        """The pod's container usage as metrics-server reports it (memory: the resident set of
        the container's process tree in ``Ki``; CPU: its cores since it started, in nanocores
        ``n``), None unless its container runs."""
        import psutil

        meta = pod.get("metadata") or {}
        rec = self.pods.get((meta.get("namespace"), meta.get("name")))
        if rec is None or not rec.alive() or rec.uid != meta.get("uid"):
            return None
        try:
            root = psutil.Process(rec.pid)
            tree = [root, *root.children(recursive=True)]
            lived = max(time.time() - root.create_time(), 1e-3)
        except psutil.Error:
            return None
        memory = cpu = 0.0
        for process in tree:
            try:
                memory += process.memory_info().rss
                times = process.cpu_times()
                cpu += times.user + times.system
            except psutil.Error:
                continue
        name = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "notebook")
        return [
            {
                "name": name,
                "usage": {"cpu": f"{int(cpu / lived * 1e9)}n", "memory": f"{int(memory // 1024)}Ki"},
            }
        ]

    # ---- queries -----------------------------------------------------------------------

    def record(self, name: str, namespace: str = "default") -> PodRecord:
        try:
            return self.pods[(namespace, name)]
        except KeyError:
            raise KeyError(f"the kubelet has not seen pod {namespace}/{name}") from None
