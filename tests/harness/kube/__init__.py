"""Kubernetes emulated over HTTP on loopback, so the *real* KubeSpawner can spawn servers here.

No cluster and no container engine exist on the test machines.  This package provides:

* :class:`KubeAPIServer` (``apiserver``) — an API server speaking the real Kubernetes REST paths
  and JSON that ``kubernetes_asyncio`` (and therefore KubeSpawner) uses.  It subclasses kmock
  0.8's ``KubernetesEmulator`` (pin ``kmock==0.8``: it builds on its object store) and replaces
  its request path for resource requests: kmock matches every request by scanning its
  ever-growing request log, treats only ``?watch=true`` (not ``True``) as a watch, ignores
  selectors, stamps nothing, and replays a watch *before* subscribing to live events.  Here:
  ``watch=True|true|1``; ``labelSelector`` and ``fieldSelector`` (``selectors``);
  ``metadata.namespace/uid/creationTimestamp/resourceVersion/generation`` on create, a new
  ``resourceVersion`` on every change; ``kind: <Kind>List`` with a list ``resourceVersion``;
  watches subscribe first and then replay (atomically: the event loop does not switch between
  the two); ``resourceVersion``/``timeoutSeconds`` on watches; merge, strategic-merge
  (approximated as merge) and JSON patches (``patches``); PUT; ``/status`` subresources; the
  ``/scale`` subresource of Deployments, StatefulSets, ReplicaSets and ReplicationControllers
  (GET an ``autoscaling/v1`` Scale; PATCH/PUT set ``spec.replicas`` and nothing else);
  graceful pod deletion (``deletionTimestamp`` until the kubelet has killed the process);
  finalizers.  Non-resource paths (``/version``, ``/api``, discovery) fall through to kmock.

* :class:`Kubelet` (``kubelet``) — runs pods as local processes on loopback addresses
  ``127.0.A.B`` (from ``127.0.1.1`` upwards; never ``127.0.0.1``), emulates ``postStart`` hooks,
  volume mounts (as directories), PVC binding with a configurable delay, and pod deletion.

* :func:`write_kubeconfig` (``harness``) — a kubeconfig pointing at the emulator (no auth, or
  the harness's admin token and CA).

* ``pki`` and ``auth`` — optional, for clients that use a pod's in-cluster configuration:
  ``KubeHarness(tls=True)`` serves HTTPS with a certificate from a CA of its own (``ca_file``),
  ``authenticate=True`` wants bearer tokens (:meth:`KubeHarness.service_account_token`), and
  ``authorize=True`` enforces the RBAC objects stored in the emulator (a chart's Role and
  RoleBinding), answering 401/403 as kube-apiserver does and listing them in ``api.refused``.

* :class:`KubeHarness` (``harness``) — runs both in a background thread with its own event
  loop, so sync tests and fixtures can use them; ``start()``/``stop()`` or a ``with`` block.

Typical use with a separate hub process (see ``tests/harness/hub.py``)::

    with KubeHarness(tmp_path / "kube", pvc_bind_delay=1.0) as kube:
        hub = HubProcess(tmp_path / "hub", config, env=kube.env).start()   # env = {"KUBECONFIG": ...}
        ...
        kube.pod_paths("jupyter-alice")       # {"/home/jovyan": "<root>/volumes/claim-alice", ...}
        kube.post_start("jupyter-alice")      # {"exit_code": 0, "output": "...", ...}

Filesystem layout under ``root``::

    root/kubeconfig.yaml
    root/pods/<pod>/container.log             stdout+stderr of the pod's process
    root/pods/<pod>/rootfs/<path>             pod paths that are neither mounted nor under HOME
    root/homes/<pod>                          the pod's HOME when no volume is mounted there
    root/volumes/<claimName>[/<subPath>]      persistentVolumeClaim volumes (outlive the pod)
    root/volumes/emptydir-<pod>-<volume>      emptyDir; configmap-<name>, secret-<name>, hostpath-<path>

**HOME and working directory rule.**  The pod-side home path ``H`` is the container's env
``HOME`` (a plain ``value``) if set, else the container's ``workingDir``, else ``/home/jovyan``.
Pod paths translate to local paths through the container's ``volumeMounts`` (longest matching
``mountPath`` wins, ``subPath`` honoured); a path under ``H`` that no mount covers lives in
``root/homes/<pod>``; anything else in ``root/pods/<pod>/rootfs``.  The process gets
``HOME=translate(H)`` and runs in ``translate(workingDir or H)``.  So with KubeSpawner's usual
home PVC mounted at ``/home/jovyan``, ``$HOME`` *is* the PVC's directory.  Processes also get
``KUBE_HARNESS_MOUNTS`` (JSON ``{mountPath: local_dir}``), ``KUBE_HARNESS_ROOTFS``,
``KUBE_HARNESS_POD_NAME`` and ``KUBE_HARNESS_POD_IP``.  Hook commands are not rewritten: write
them against ``$HOME`` (as z2jh users should anyway), not literal pod paths.

In-process KubeSpawner (not the main use): ``kubernetes_asyncio`` reads ``$KUBECONFIG`` when it
is imported and KubeSpawner caches its config, clients and reflectors at class level, so set
``KUBECONFIG`` before anything imports it and call :func:`reset_kubespawner` between tests.  For
direct client access use :meth:`KubeHarness.api_client`, which configures a client from the
kubeconfig without touching global state.

Restarts follow ``restartPolicy`` (default ``Always``): an ended container restarts in the same
pod (same uid and IP, ``restartCount`` up, ``lastState.terminated`` with ``Error``, ``Completed``
or, after :meth:`KubeHarness.oom_kill`, ``OOMKilled``), the first at once, later ones after a
CrashLoopBackOff delay (``restart_backoff``); with ``Never`` it leaves the pod
``Succeeded``/``Failed``, as :meth:`KubeHarness.end_pod` does whatever the policy.

Limits: one node; a failed postStart hook fails the pod (no restart); no readiness probes (ready once postStart succeeded); only ``exec``
postStart hooks; ``valueFrom``/``envFrom`` are not resolved; strategic-merge patches are applied
as JSON merge patches (lists replace); a watch does not send ``DELETED`` when an object stops
matching its label selector; PVC data stays on disk when the PVC is deleted.
"""

from .apiserver import ApiError, KubeAPIServer, Listener, Watcher, not_found
from .auth import UserInfo, admin_user, service_account_user
from .harness import KubeHarness, reset_kubespawner, write_kubeconfig
from .kubelet import (
    MOCKSU_ANNOTATION,
    POST_START_ANNOTATION,
    IPPool,
    Kubelet,
    PodRecord,
    VolumeMount,
    expand_vars,
)
from .patches import PatchError, json_patch, merge_patch
from .pki import ServerPKI, make_server_pki
from .resources import (
    CORE_PLURALS,
    EVENTS,
    KINDS,
    PODS,
    PVCS,
    api_version,
    as_resource,
    kind_of,
    plural_of,
    resource_of,
    timestamp,
)
from .selectors import (
    SelectorError,
    field_value,
    parse_field_selector,
    parse_label_selector,
)

__all__ = [
    "ApiError",
    "CORE_PLURALS",
    "EVENTS",
    "IPPool",
    "KINDS",
    "KubeAPIServer",
    "KubeHarness",
    "Kubelet",
    "Listener",
    "MOCKSU_ANNOTATION",
    "PODS",
    "POST_START_ANNOTATION",
    "PVCS",
    "PatchError",
    "PodRecord",
    "SelectorError",
    "ServerPKI",
    "UserInfo",
    "VolumeMount",
    "Watcher",
    "admin_user",
    "api_version",
    "as_resource",
    "expand_vars",
    "field_value",
    "json_patch",
    "kind_of",
    "make_server_pki",
    "merge_patch",
    "not_found",
    "parse_field_selector",
    "parse_label_selector",
    "plural_of",
    "reset_kubespawner",
    "resource_of",
    "service_account_user",
    "timestamp",
    "write_kubeconfig",
]
