"""A rendered workload's pod, run the way a kubelet runs it, at the paths it expects.

From a Deployment's pod template and the objects stored in the emulated cluster, build what its
first container sees: every Secret, ConfigMap, PersistentVolumeClaim and emptyDir volume at its
``mountPath`` (``subPath``, ``items``, modes and ``readOnly`` honoured), the service account's
token, namespace and CA at ``/var/run/secrets/kubernetes.io/serviceaccount``, the cluster's
``/etc/hosts``, and a private ``/tmp`` (the image's programs kept in it when they live under
``/tmp``); the environment Kubernetes gives it (the image's, the
service links of every Service in the namespace and of the API server, the container's
``envFrom`` Secrets and ConfigMaps, its ``env`` with ``value``/``secretKeyRef``/``configMapKeyRef``/
``fieldRef`` and ``$(VAR)`` expansion); and
its command (``command``/``args`` with ``$(VAR)`` expansion, the image's working directory).

Then run it as root in private mount and pid namespaces (``nsinit.py``): files appear at their
real paths for that process tree only, nothing is created on the host's file systems, and when
the container's process exits everything it started dies with the namespace.

Not emulated: ``runAsUser``/``fsGroup`` (processes run as root), probes, resources and
restarts, ``projected``/``hostPath``/``downwardAPI`` volumes, Secret and
ConfigMap updates reaching a running pod.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.kube import KubeHarness, expand_vars

NSINIT = Path(__file__).with_name("nsinit.py")
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class PodError(RuntimeError):
    """The pod cannot start, for the reason a kubelet would report (a missing Secret, ...)."""


@dataclass(frozen=True)
class Image:
    """What a container image supplies: its environment, working directory, directories of
    its own (made empty and writable here), and the host paths its programs live at (kept
    visible, read-only, in the pod's private /tmp when they are under /tmp, as in a checkout
    there)."""

    env: Mapping[str, str]
    workdir: str = "/"
    directories: tuple[str, ...] = ()
    host_paths: tuple[str, ...] = ()


def _env_name(service_name: str) -> str:
    return service_name.upper().replace("-", "_")


def service_links(services: Iterable[dict], host: str) -> dict[str, str]:
    """The variables Kubernetes sets for each Service of the pod's namespace (enableServiceLinks):
    ``{NAME}_SERVICE_HOST``, ``{NAME}_SERVICE_PORT`` (first port), ``{NAME}_SERVICE_PORT_{PORT}``
    per named port, and the Docker-link style ``{NAME}_PORT*``. Every Service's cluster IP is
    ``host`` here."""
    env: dict[str, str] = {}
    for service in services:
        spec = service.get("spec") or {}
        ports = spec.get("ports") or []
        if spec.get("clusterIP") == "None" or not ports:
            continue  # headless Services get no variables
        name = _env_name(service["metadata"]["name"])
        first = ports[0]
        env[f"{name}_SERVICE_HOST"] = host
        env[f"{name}_SERVICE_PORT"] = str(first["port"])
        env[f"{name}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{host}:{first['port']}"
        for port in ports:
            protocol = port.get("protocol", "TCP")
            if port.get("name"):
                env[f"{name}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
            prefix = f"{name}_PORT_{port['port']}_{protocol}"
            env[prefix] = f"{protocol.lower()}://{host}:{port['port']}"
            env[f"{prefix}_PROTO"] = protocol.lower()
            env[f"{prefix}_PORT"] = str(port["port"])
            env[f"{prefix}_ADDR"] = host
    return env


def api_server_links(host: str, port: int) -> dict[str, str]:
    """The variables every pod gets for the API server's Service (``default/kubernetes``)."""
    return service_links(
        [{"metadata": {"name": "kubernetes"}, "spec": {"ports": [{"name": "https", "port": port}]}}], host
    )


def decoded(obj: Mapping) -> dict[str, bytes]:
    """A Secret's or ConfigMap's keys and contents."""
    data: dict[str, bytes] = {}
    if obj.get("kind") == "Secret":
        data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    else:
        data.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


@dataclass
class PodProcess:
    """One replica of a rendered workload (a Deployment, or a Job's pod), run from the emulated
    cluster's objects.

    ``PodProcess(cluster, deployment, name="hub-0", image=Image(...), root=dir, hosts_file=f,
    service_host="127.0.0.1").start()``; ``stop()``; ``log_text()``. ``spec`` is what was run
    (mounts, environment, argv), for assertions."""

    cluster: KubeHarness
    workload: dict
    name: str
    image: Image
    root: Path
    hosts_file: Path
    service_host: str = "127.0.0.1"
    pod_ip: str = "127.0.0.1"
    proc: subprocess.Popen | None = field(default=None, init=False)
    spec: dict = field(default_factory=dict, init=False)
    started_at: float | None = field(default=None, init=False)
    uid: str = field(default_factory=lambda: str(uuid.uuid4()), init=False)

    # ---- what the pod is ------------------------------------------------------------------

    @property
    def template(self) -> dict:
        return self.workload["spec"]["template"]

    @property
    def pod_spec(self) -> dict:
        return self.template["spec"]

    @property
    def container(self) -> dict:
        return self.pod_spec["containers"][0]

    @property
    def namespace(self) -> str:
        return self.cluster.namespace

    @property
    def pod_dir(self) -> Path:
        return self.root / self.name

    @property
    def log_path(self) -> Path:
        return self.pod_dir / "container.log"

    def _object(self, plural: str, name: str) -> dict | None:
        return self.cluster.get(plural, name)

    def _key_of(self, plural: str, ref: Mapping) -> bytes | None:
        obj = self._object(plural, ref["name"])
        value = decoded(obj).get(ref["key"]) if obj else None
        if value is None and not ref.get("optional"):
            raise PodError(
                f"CreateContainerConfigError: {plural[:-1]} {ref['name']!r} "
                f"{'has no key ' + repr(ref['key']) if obj else 'not found'}"
            )
        return value

    def _field(self, path: str) -> str:
        meta = self.template.get("metadata") or {}
        values = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": self.cluster.kubelet.node_name if self.cluster.kubelet else "kube-harness",
            "spec.serviceAccountName": self.pod_spec.get("serviceAccountName") or "default",
            "status.podIP": self.pod_ip,
            "status.hostIP": self.pod_ip,
        }
        if path in values:
            return values[path]
        for key in ("labels", "annotations"):
            prefix = f"metadata.{key}['"
            if path.startswith(prefix) and path.endswith("']"):
                return str((meta.get(key) or {}).get(path[len(prefix) : -2], ""))
        raise PodError(f"fieldRef {path!r} is not emulated")

    def environment(self) -> dict[str, str]:
        """The container's environment: image, service links, then its own ``env``."""
        links = {
            **service_links(self.cluster.list("services", self.namespace), self.service_host),
            **api_server_links(self.service_host, self.cluster.port),
        }
        own: dict[str, str] = {}
        for source in self.container.get("envFrom") or []:  # every key; ``env`` entries win
            for plural, key in (("secrets", "secretRef"), ("configmaps", "configMapRef")):
                if key not in source:
                    continue
                obj = self._object(plural, source[key]["name"])
                if obj is None:
                    if source[key].get("optional"):
                        continue
                    raise PodError(
                        f"CreateContainerConfigError: {plural[:-1]} {source[key]['name']!r} not found"
                    )
                prefix = source.get("prefix", "")
                own.update({prefix + k: v.decode() for k, v in decoded(obj).items()})
        for entry in self.container.get("env") or []:
            if "value" in entry or "valueFrom" not in entry:
                own[entry["name"]] = expand_vars(str(entry.get("value") or ""), {**links, **own})
                continue
            source = entry["valueFrom"]
            if "secretKeyRef" in source:
                value = self._key_of("secrets", source["secretKeyRef"])
            elif "configMapKeyRef" in source:
                value = self._key_of("configmaps", source["configMapKeyRef"])
            elif "fieldRef" in source:
                value = self._field(source["fieldRef"]["fieldPath"]).encode()
            else:
                raise PodError(f"env {entry['name']}: {sorted(source)} is not emulated")
            if value is not None:  # an optional key that is missing leaves the variable unset
                own[entry["name"]] = value.decode()
        return {**self.image.env, **links, **own, "HOSTNAME": self.name}

    def command(self, env: Mapping[str, str]) -> list[str]:
        """``command`` + ``args`` with ``$(VAR)`` expanded (the images here have no entrypoint
        that matters: z2jh's runs tini, which just executes them)."""
        argv = [expand_vars(str(a), env) for a in (self.container.get("command") or [])]
        argv += [expand_vars(str(a), env) for a in (self.container.get("args") or [])]
        if not argv:
            raise PodError(f"{self.name}: the container gives no command (the image's is not emulated)")
        return argv

    # ---- volumes --------------------------------------------------------------------------

    def _write_keys(self, directory: Path, data: Mapping[str, bytes], source: Mapping) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        default_mode = source.get("defaultMode", 0o644)
        items = source.get("items")
        chosen = (
            [(i["key"], i["path"], i.get("mode", default_mode)) for i in items]
            if items
            else [(key, key, default_mode) for key in data]
        )
        for key, path, mode in chosen:
            if key not in data:
                if source.get("optional"):
                    continue
                raise PodError(f"volume key {key!r} not found")
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[key])
            target.chmod(mode)

    def _volume_dir(self, name: str, volume: Mapping) -> Path:
        """The local directory that plays a volume (filled, for Secrets and ConfigMaps)."""
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            pvc = self._object("persistentvolumeclaims", claim)
            if not pvc or (pvc.get("status") or {}).get("phase") != "Bound":
                raise PodError(f"persistentvolumeclaim {claim!r} is not bound")
            return self.cluster.pvc_path(claim)
        directory = self.pod_dir / "volumes" / name
        if "emptyDir" in volume:
            directory.mkdir(parents=True, exist_ok=True)
            return directory
        for plural, key, ref_name in (
            ("secrets", "secret", "secretName"),
            ("configmaps", "configMap", "name"),
        ):
            if key in volume:
                source = volume[key]
                obj = self._object(plural, source[ref_name])
                if obj is None and not source.get("optional"):
                    raise PodError(f"MountVolume.SetUp failed: {key} {source[ref_name]!r} not found")
                self._write_keys(directory, decoded(obj) if obj else {}, source)
                return directory
        raise PodError(f"volume {name!r}: {sorted(set(volume) - {'name'})} is not emulated")

    def _service_account_dir(self) -> Path | None:
        if self.pod_spec.get("automountServiceAccountToken") is False:
            return None
        account = self.pod_spec.get("serviceAccountName") or "default"
        if self._object("serviceaccounts", account) is None:
            raise PodError(f'serviceaccount "{account}" not found')
        directory = self.pod_dir / "serviceaccount"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "token").write_text(self.cluster.service_account_token(account))
        (directory / "namespace").write_text(self.namespace)
        (directory / "ca.crt").write_bytes(Path(self.cluster.ca_file).read_bytes())
        return directory

    def mounts(self) -> list[dict]:
        """nsinit mounts: the image's own directories, the volumes (parents first), the service
        account, /etc/hosts, and last a private /tmp (bind sources may live under /tmp), which
        keeps the image's host paths that lie under /tmp."""
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes") or []}
        mounts = [{"target": d, "tmpfs": True, "options": "mode=0755"} for d in self.image.directories]
        volume_mounts = sorted(
            self.container.get("volumeMounts") or [], key=lambda m: m["mountPath"].rstrip("/").count("/")
        )
        for mount in volume_mounts:
            target = mount["mountPath"].rstrip("/") or "/"
            if "emptyDir" in volumes[mount["name"]] and not mount.get("subPath"):
                # a fresh tmpfs, keeping the image's programs visible when it covers them (a
                # Job's /work over a checkout under /work)
                under = [p for p in self.image.host_paths if os.path.normpath(p).startswith(target + "/")]
                mounts.append({"target": target, "tmpfs": True, **({"keep": under} if under else {})})
                continue
            source = self._volume_dir(mount["name"], volumes[mount["name"]])
            if mount.get("subPath"):
                source = source / mount["subPath"]
                if not source.exists():  # the kubelet creates a missing subPath as a directory
                    source.mkdir(parents=True)
            claim = volumes[mount["name"]].get("persistentVolumeClaim") or {}
            mounts.append(
                {
                    "target": target,
                    "source": str(source),
                    "readOnly": bool(mount.get("readOnly") or claim.get("readOnly")),
                }
            )
        account = self._service_account_dir()
        if account is not None:
            mounts.append({"target": SERVICE_ACCOUNT_DIR, "source": str(account), "readOnly": True})
        mounts.append({"target": "/etc/hosts", "source": str(self.hosts_file), "readOnly": True})
        keep = [p for p in self.image.host_paths if os.path.normpath(p).startswith("/tmp/")]
        mounts.append({"target": "/tmp", "tmpfs": True, **({"keep": keep} if keep else {})})
        return mounts

    # ---- running ---------------------------------------------------------------------------

    def start(self) -> PodProcess:
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        (self.pod_dir / "scratch").mkdir(exist_ok=True)
        env = self.environment()
        self.spec = {
            "scratch": str(self.pod_dir / "scratch"),
            "mounts": self.mounts(),
            "cwd": self.container.get("workingDir") or self.image.workdir,
            "argv": self.command(env),
            "env": env,
        }
        spec_path = self.pod_dir / "nsinit.json"
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds secrets
        with os.fdopen(fd, "w") as f:
            json.dump(self.spec, f, indent=1)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation=private",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--mount-proc",
                    "--",
                    sys.executable,
                    str(NSINIT),
                    str(spec_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM (forwarded by the pod's init to its process), SIGKILL after ``grace``
        seconds; the pod's pid namespace takes everything else with it. The exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                self.proc.wait(10)
        code, self.proc = self.proc.returncode, None
        return code
